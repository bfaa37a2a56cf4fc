/*
 * CPU models, CPUID feature names and the KVM CPUID table builder.
 *
 * Spec: Intel SDM vol. 2A, CPUID instruction (leaves 01H, 04H, 07H, 0BH,
 * 0DH, 1FH and the 8000_00xxH range); AMD APM vol. 3 appendix E
 * (80000001H ECX bits, 80000008H ECX core count, 8000001EH); KVM paravirt
 * leaves from Linux's uapi asm/kvm_para.h (40000000H signature
 * "KVMKVMKVM", 40000001H feature bits).  Fix-ups follow the table in
 * /work/shared/docs/kvm-api.md §1.7.
 *
 * Not modelled: cache descriptors of our own (leaves 2/4/0x80000005-6 are
 * the host's, with only the sharing counts rewritten), multiple sockets or
 * SMT (we present one package of nr_cpus cores, one thread each), PMU
 * (leaf 0xA zeroed for named models).
 */
#include "accel/kvm/kvm-cpuid.h"

#include <string.h>

/* ---- feature words ---- */

const X86FeatureWordInfo x86_feature_words[FEAT__COUNT] = {
    [FEAT_1_EDX]         = { 0x00000001, 0, CPUID_EDX, "CPUID.01H:EDX" },
    [FEAT_1_ECX]         = { 0x00000001, 0, CPUID_ECX, "CPUID.01H:ECX" },
    [FEAT_7_0_EBX]       = { 0x00000007, 0, CPUID_EBX, "CPUID.07H.0:EBX" },
    [FEAT_7_0_ECX]       = { 0x00000007, 0, CPUID_ECX, "CPUID.07H.0:ECX" },
    [FEAT_7_0_EDX]       = { 0x00000007, 0, CPUID_EDX, "CPUID.07H.0:EDX" },
    [FEAT_7_1_EAX]       = { 0x00000007, 1, CPUID_EAX, "CPUID.07H.1:EAX" },
    [FEAT_D_1_EAX]       = { 0x0000000d, 1, CPUID_EAX, "CPUID.0DH.1:EAX" },
    [FEAT_8000_0001_EDX] = { 0x80000001, 0, CPUID_EDX, "CPUID.80000001H:EDX" },
    [FEAT_8000_0001_ECX] = { 0x80000001, 0, CPUID_ECX, "CPUID.80000001H:ECX" },
    [FEAT_8000_0007_EDX] = { 0x80000007, 0, CPUID_EDX, "CPUID.80000007H:EDX" },
    [FEAT_KVM]           = { 0x40000001, 0, CPUID_EAX, "CPUID.40000001H:EAX" },
};

/*
 * Feature names.  The first entry for a bit is its canonical name; later
 * entries with the same bit are aliases.  Bits that software may not choose
 * are absent on purpose: HTT (follows the topology), OSXSAVE and OSPKE
 * (mirror CR4, KVM keeps them up to date).
 */
#define F(word, bit, name) { name, word, 1u << (bit) }
static const X86FeatureName feature_names[] = {
    /* CPUID.01H:EDX (SDM vol. 2A Table 3-11) */
    F(FEAT_1_EDX, 0, "fpu"), F(FEAT_1_EDX, 1, "vme"), F(FEAT_1_EDX, 2, "de"),
    F(FEAT_1_EDX, 3, "pse"), F(FEAT_1_EDX, 4, "tsc"), F(FEAT_1_EDX, 5, "msr"),
    F(FEAT_1_EDX, 6, "pae"), F(FEAT_1_EDX, 7, "mce"), F(FEAT_1_EDX, 8, "cx8"),
    F(FEAT_1_EDX, 9, "apic"), F(FEAT_1_EDX, 11, "sep"), F(FEAT_1_EDX, 12, "mtrr"),
    F(FEAT_1_EDX, 13, "pge"), F(FEAT_1_EDX, 14, "mca"), F(FEAT_1_EDX, 15, "cmov"),
    F(FEAT_1_EDX, 16, "pat"), F(FEAT_1_EDX, 17, "pse36"), F(FEAT_1_EDX, 18, "pn"),
    F(FEAT_1_EDX, 19, "clflush"), F(FEAT_1_EDX, 21, "ds"), F(FEAT_1_EDX, 22, "acpi"),
    F(FEAT_1_EDX, 23, "mmx"), F(FEAT_1_EDX, 24, "fxsr"), F(FEAT_1_EDX, 25, "sse"),
    F(FEAT_1_EDX, 26, "sse2"), F(FEAT_1_EDX, 27, "ss"), F(FEAT_1_EDX, 29, "tm"),
    F(FEAT_1_EDX, 31, "pbe"),
    /* CPUID.01H:ECX (SDM vol. 2A Table 3-10) */
    F(FEAT_1_ECX, 0, "sse3"), F(FEAT_1_ECX, 0, "pni"),
    F(FEAT_1_ECX, 1, "pclmulqdq"), F(FEAT_1_ECX, 1, "pclmuldq"),
    F(FEAT_1_ECX, 2, "dtes64"), F(FEAT_1_ECX, 3, "monitor"), F(FEAT_1_ECX, 4, "ds-cpl"),
    F(FEAT_1_ECX, 5, "vmx"), F(FEAT_1_ECX, 6, "smx"), F(FEAT_1_ECX, 7, "est"),
    F(FEAT_1_ECX, 8, "tm2"), F(FEAT_1_ECX, 9, "ssse3"), F(FEAT_1_ECX, 10, "cid"),
    F(FEAT_1_ECX, 12, "fma"), F(FEAT_1_ECX, 13, "cx16"), F(FEAT_1_ECX, 14, "xtpr"),
    F(FEAT_1_ECX, 15, "pdcm"), F(FEAT_1_ECX, 17, "pcid"), F(FEAT_1_ECX, 18, "dca"),
    F(FEAT_1_ECX, 19, "sse4.1"), F(FEAT_1_ECX, 20, "sse4.2"),
    F(FEAT_1_ECX, 21, "x2apic"), F(FEAT_1_ECX, 22, "movbe"), F(FEAT_1_ECX, 23, "popcnt"),
    F(FEAT_1_ECX, 24, "tsc-deadline"), F(FEAT_1_ECX, 24, "tsc-deadline-timer"),
    F(FEAT_1_ECX, 25, "aes"), F(FEAT_1_ECX, 26, "xsave"), F(FEAT_1_ECX, 28, "avx"),
    F(FEAT_1_ECX, 29, "f16c"), F(FEAT_1_ECX, 30, "rdrand"), F(FEAT_1_ECX, 31, "hypervisor"),
    /* CPUID.(EAX=07H,ECX=0):EBX */
    F(FEAT_7_0_EBX, 0, "fsgsbase"), F(FEAT_7_0_EBX, 1, "tsc-adjust"),
    F(FEAT_7_0_EBX, 2, "sgx"), F(FEAT_7_0_EBX, 3, "bmi1"), F(FEAT_7_0_EBX, 4, "hle"),
    F(FEAT_7_0_EBX, 5, "avx2"), F(FEAT_7_0_EBX, 7, "smep"), F(FEAT_7_0_EBX, 8, "bmi2"),
    F(FEAT_7_0_EBX, 9, "erms"), F(FEAT_7_0_EBX, 10, "invpcid"), F(FEAT_7_0_EBX, 11, "rtm"),
    F(FEAT_7_0_EBX, 14, "mpx"), F(FEAT_7_0_EBX, 16, "avx512f"),
    F(FEAT_7_0_EBX, 17, "avx512dq"), F(FEAT_7_0_EBX, 18, "rdseed"),
    F(FEAT_7_0_EBX, 19, "adx"), F(FEAT_7_0_EBX, 20, "smap"),
    F(FEAT_7_0_EBX, 21, "avx512ifma"), F(FEAT_7_0_EBX, 23, "clflushopt"),
    F(FEAT_7_0_EBX, 24, "clwb"), F(FEAT_7_0_EBX, 25, "intel-pt"),
    F(FEAT_7_0_EBX, 26, "avx512pf"), F(FEAT_7_0_EBX, 27, "avx512er"),
    F(FEAT_7_0_EBX, 28, "avx512cd"), F(FEAT_7_0_EBX, 29, "sha-ni"),
    F(FEAT_7_0_EBX, 30, "avx512bw"), F(FEAT_7_0_EBX, 31, "avx512vl"),
    /* CPUID.(EAX=07H,ECX=0):ECX */
    F(FEAT_7_0_ECX, 0, "prefetchwt1"), F(FEAT_7_0_ECX, 1, "avx512vbmi"),
    F(FEAT_7_0_ECX, 2, "umip"), F(FEAT_7_0_ECX, 3, "pku"), F(FEAT_7_0_ECX, 5, "waitpkg"),
    F(FEAT_7_0_ECX, 6, "avx512vbmi2"), F(FEAT_7_0_ECX, 8, "gfni"),
    F(FEAT_7_0_ECX, 9, "vaes"), F(FEAT_7_0_ECX, 10, "vpclmulqdq"),
    F(FEAT_7_0_ECX, 11, "avx512vnni"), F(FEAT_7_0_ECX, 12, "avx512bitalg"),
    F(FEAT_7_0_ECX, 14, "avx512-vpopcntdq"), F(FEAT_7_0_ECX, 16, "la57"),
    F(FEAT_7_0_ECX, 22, "rdpid"), F(FEAT_7_0_ECX, 25, "cldemote"),
    F(FEAT_7_0_ECX, 27, "movdiri"), F(FEAT_7_0_ECX, 28, "movdir64b"),
    /* CPUID.(EAX=07H,ECX=0):EDX */
    F(FEAT_7_0_EDX, 2, "avx512-4vnniw"), F(FEAT_7_0_EDX, 3, "avx512-4fmaps"),
    F(FEAT_7_0_EDX, 4, "fsrm"), F(FEAT_7_0_EDX, 8, "avx512-vp2intersect"),
    F(FEAT_7_0_EDX, 10, "md-clear"), F(FEAT_7_0_EDX, 14, "serialize"),
    F(FEAT_7_0_EDX, 16, "tsx-ldtrk"), F(FEAT_7_0_EDX, 22, "amx-bf16"),
    F(FEAT_7_0_EDX, 23, "avx512-fp16"), F(FEAT_7_0_EDX, 24, "amx-tile"),
    F(FEAT_7_0_EDX, 25, "amx-int8"), F(FEAT_7_0_EDX, 26, "spec-ctrl"),
    F(FEAT_7_0_EDX, 27, "stibp"), F(FEAT_7_0_EDX, 28, "flush-l1d"),
    F(FEAT_7_0_EDX, 29, "arch-capabilities"), F(FEAT_7_0_EDX, 30, "core-capability"),
    F(FEAT_7_0_EDX, 31, "ssbd"),
    /* CPUID.(EAX=07H,ECX=1):EAX */
    F(FEAT_7_1_EAX, 4, "avx-vnni"), F(FEAT_7_1_EAX, 5, "avx512-bf16"),
    F(FEAT_7_1_EAX, 10, "fzrm"), F(FEAT_7_1_EAX, 11, "fsrs"), F(FEAT_7_1_EAX, 12, "fsrc"),
    F(FEAT_7_1_EAX, 21, "amx-fp16"), F(FEAT_7_1_EAX, 23, "avx-ifma"),
    /* CPUID.(EAX=0DH,ECX=1):EAX */
    F(FEAT_D_1_EAX, 0, "xsaveopt"), F(FEAT_D_1_EAX, 1, "xsavec"),
    F(FEAT_D_1_EAX, 2, "xgetbv1"), F(FEAT_D_1_EAX, 3, "xsaves"),
    /* CPUID.80000001H:EDX */
    F(FEAT_8000_0001_EDX, 11, "syscall"), F(FEAT_8000_0001_EDX, 20, "nx"),
    F(FEAT_8000_0001_EDX, 20, "xd"), F(FEAT_8000_0001_EDX, 22, "mmxext"),
    F(FEAT_8000_0001_EDX, 25, "fxsr-opt"), F(FEAT_8000_0001_EDX, 25, "ffxsr"),
    F(FEAT_8000_0001_EDX, 26, "pdpe1gb"), F(FEAT_8000_0001_EDX, 27, "rdtscp"),
    F(FEAT_8000_0001_EDX, 29, "lm"), F(FEAT_8000_0001_EDX, 29, "i64"),
    F(FEAT_8000_0001_EDX, 30, "3dnowext"), F(FEAT_8000_0001_EDX, 31, "3dnow"),
    /* CPUID.80000001H:ECX (AMD APM vol. 3 E.4.2) */
    F(FEAT_8000_0001_ECX, 0, "lahf-lm"), F(FEAT_8000_0001_ECX, 1, "cmp-legacy"),
    F(FEAT_8000_0001_ECX, 2, "svm"), F(FEAT_8000_0001_ECX, 3, "extapic"),
    F(FEAT_8000_0001_ECX, 4, "cr8legacy"), F(FEAT_8000_0001_ECX, 5, "abm"),
    F(FEAT_8000_0001_ECX, 5, "lzcnt"),
    F(FEAT_8000_0001_ECX, 6, "sse4a"), F(FEAT_8000_0001_ECX, 7, "misalignsse"),
    F(FEAT_8000_0001_ECX, 8, "3dnowprefetch"), F(FEAT_8000_0001_ECX, 9, "osvw"),
    F(FEAT_8000_0001_ECX, 10, "ibs"), F(FEAT_8000_0001_ECX, 11, "xop"),
    F(FEAT_8000_0001_ECX, 12, "skinit"), F(FEAT_8000_0001_ECX, 13, "wdt"),
    F(FEAT_8000_0001_ECX, 15, "lwp"), F(FEAT_8000_0001_ECX, 16, "fma4"),
    F(FEAT_8000_0001_ECX, 17, "tce"), F(FEAT_8000_0001_ECX, 19, "nodeid-msr"),
    F(FEAT_8000_0001_ECX, 21, "tbm"), F(FEAT_8000_0001_ECX, 22, "topoext"),
    F(FEAT_8000_0001_ECX, 23, "perfctr-core"), F(FEAT_8000_0001_ECX, 24, "perfctr-nb"),
    /* CPUID.80000007H:EDX */
    F(FEAT_8000_0007_EDX, 8, "invtsc"),
    /* CPUID.40000001H:EAX (asm/kvm_para.h KVM_FEATURE_*) */
    { "kvmclock", FEAT_KVM, (1u << 0) | (1u << 3) },  /* CLOCKSOURCE + CLOCKSOURCE2 */
    F(FEAT_KVM, 1, "kvm-nopiodelay"), F(FEAT_KVM, 4, "kvm-asyncpf"),
    F(FEAT_KVM, 5, "kvm-steal-time"), F(FEAT_KVM, 6, "kvm-pv-eoi"),
    F(FEAT_KVM, 7, "kvm-pv-unhalt"), F(FEAT_KVM, 9, "kvm-pv-tlb-flush"),
    F(FEAT_KVM, 10, "kvm-asyncpf-vmexit"), F(FEAT_KVM, 11, "kvm-pv-ipi"),
    F(FEAT_KVM, 12, "kvm-poll-control"), F(FEAT_KVM, 13, "kvm-pv-sched-yield"),
    F(FEAT_KVM, 14, "kvm-asyncpf-int"), F(FEAT_KVM, 15, "kvm-msi-ext-dest-id"),
    F(FEAT_KVM, 24, "kvmclock-stable-bit"),
};
#undef F

/* Names compare equal ignoring case and the separators '-', '_' and '.'. */
static bool feature_name_equal(const char *a, const char *b)
{
    for (;;) {
        while (*a == '-' || *a == '_' || *a == '.') {
            a++;
        }
        while (*b == '-' || *b == '_' || *b == '.') {
            b++;
        }
        if (!*a || !*b) {
            return !*a && !*b;
        }
        if (g_ascii_tolower(*a) != g_ascii_tolower(*b)) {
            return false;
        }
        a++;
        b++;
    }
}

const X86FeatureName *x86_feature_lookup(const char *name)
{
    if (!name || !*name) {
        return NULL;
    }
    for (size_t i = 0; i < ARRAY_LEN(feature_names); i++) {
        if (feature_name_equal(feature_names[i].name, name)) {
            return &feature_names[i];
        }
    }
    return NULL;
}

const char *x86_feature_bit_name(X86FeatureWord w, unsigned bit)
{
    for (size_t i = 0; i < ARRAY_LEN(feature_names); i++) {
        if (feature_names[i].word == w && (feature_names[i].mask & (1u << bit))) {
            return feature_names[i].name;
        }
    }
    return NULL;
}

char *x86_feature_set_describe(const X86FeatureSet set)
{
    GString *s = g_string_new(NULL);
    for (int w = 0; w < FEAT__COUNT; w++) {
        uint32_t bits = set[w];
        while (bits) {
            unsigned bit = __builtin_ctz(bits);
            const char *name = x86_feature_bit_name(w, bit);
            const X86FeatureName *f = name ? x86_feature_lookup(name) : NULL;
            if (s->len) {
                g_string_append(s, ", ");
            }
            if (name) {
                g_string_append(s, name);
                bits &= ~f->mask;        /* a multi-bit name is listed once */
            } else {
                g_string_append_printf(s, "%s[%u]", x86_feature_words[w].desc, bit);
            }
            bits &= ~(1u << bit);
        }
    }
    return g_string_free(s, false);
}

/* ---- CPU models ---- */

/*
 * CPUID.01H:EDX of every x86-64 CPU: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36
 * clflush mmx fxsr sse sse2: bits 0-9, 11-17, 19, 23-26.
 */
#define EDX_BASELINE ((1u << 0) | (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | \
                      (1u << 5) | (1u << 6) | (1u << 7) | (1u << 8) | (1u << 9) | \
                      (1u << 11) | (1u << 12) | (1u << 13) | (1u << 14) | (1u << 15) | \
                      (1u << 16) | (1u << 17) | (1u << 19) | (1u << 23) | (1u << 24) | \
                      (1u << 25) | (1u << 26))
#define KVM_PV_BASELINE ((1u << 0) | (1u << 1) | (1u << 3) | (1u << 24))

/*
 * Bits the named models below are built from (SDM vol. 2A Tables 3-10 and
 * 3-11, Table 3-8 for leaf 07H, AMD APM vol. 3 E.4.2 for 80000001H).
 */
#define CPUID_1_EDX_ACPI        (1u << 22)
#define CPUID_1_EDX_SS          (1u << 27)
/* QEMU's PPRO_FEATURES: fpu de pse tsc msr pae mce cx8 apic sep pge cmov pat mmx fxsr sse sse2 */
#define PPRO_FEATURES ((1u << 0) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | \
                       (1u << 6) | (1u << 7) | (1u << 8) | (1u << 9) | (1u << 11) | \
                       (1u << 13) | (1u << 15) | (1u << 16) | (1u << 23) | (1u << 24) | \
                       (1u << 25) | (1u << 26))
#define CPUID_1_ECX_SSE3        (1u << 0)
#define CPUID_1_ECX_PCLMULQDQ   (1u << 1)
#define CPUID_1_ECX_MONITOR     (1u << 3)
#define CPUID_1_ECX_SSSE3       (1u << 9)
#define CPUID_1_ECX_FMA         (1u << 12)
#define CPUID_1_ECX_CX16        (1u << 13)
#define CPUID_1_ECX_PCID        (1u << 17)
#define CPUID_1_ECX_SSE41       (1u << 19)
#define CPUID_1_ECX_SSE42       (1u << 20)
#define CPUID_1_ECX_MOVBE       (1u << 22)
#define CPUID_1_ECX_POPCNT      (1u << 23)
#define CPUID_1_ECX_AES         (1u << 25)
#define CPUID_1_ECX_F16C        (1u << 29)
#define CPUID_1_ECX_RDRAND      (1u << 30)
#define NEHALEM_ECX (CPUID_1_ECX_SSE3 | CPUID_1_ECX_SSSE3 | CPUID_1_ECX_CX16 | \
                     CPUID_1_ECX_SSE41 | CPUID_1_ECX_SSE42 | CPUID_1_ECX_POPCNT)
#define WESTMERE_ECX (NEHALEM_ECX | CPUID_1_ECX_AES | CPUID_1_ECX_PCLMULQDQ)
#define SANDYBRIDGE_ECX (WESTMERE_ECX | CPUID_1_ECX_X2APIC | CPUID_1_ECX_TSC_DEADLINE | \
                         CPUID_1_ECX_XSAVE | CPUID_1_ECX_AVX)
/* fsgsbase bmi1 hle avx2 smep bmi2 erms invpcid rtm */
#define HASWELL_7_0_EBX ((1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 7) | \
                         (1u << 8) | (1u << 9) | (1u << 10) | (1u << 11))
#define XSAVE_XSAVEOPT          (1u << 0)           /* CPUID.(EAX=0DH,ECX=1):EAX */
#define EXT_EDX_SYSCALL_NX_LM   ((1u << 11) | (1u << 20) | (1u << 29))
#define EXT_EDX_RDTSCP          (1u << 27)
#define EXT_ECX_LAHF_LM         (1u << 0)
#define EXT_ECX_ABM             (1u << 5)

static const X86CPUModel cpu_models[] = {
    {
        .name = "kestrel64",
        .desc = "Kestrel baseline x86-64 (x86-64-v2 + kvmclock), the default",
        .level = 0xd, .xlevel = 0x80000008,
        .family = 15, .model = 107, .stepping = 1,
        .model_id = "Kestrel Virtual CPU",
        .features = {
            [FEAT_1_EDX] = EDX_BASELINE,
            /* sse3 ssse3 cx16 sse4.1 sse4.2 popcnt hypervisor */
            [FEAT_1_ECX] = (1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) |
                           (1u << 20) | (1u << 23) | CPUID_1_ECX_HYPERVISOR,
            /* syscall nx lm */
            [FEAT_8000_0001_EDX] = (1u << 11) | (1u << 20) | (1u << 29),
            [FEAT_8000_0001_ECX] = (1u << 0),          /* lahf-lm */
            [FEAT_KVM] = KVM_PV_BASELINE,
        },
    },
    {
        .name = "qemu64",
        .desc = "QEMU's qemu64 feature set (SSE3, CX16; AMD extras where the host has them)",
        .level = 0xd, .xlevel = 0x80000008,
        .family = 15, .model = 107, .stepping = 1,
        .model_id = "QEMU Virtual CPU version 2.5+",
        .features = {
            [FEAT_1_EDX] = EDX_BASELINE,
            [FEAT_1_ECX] = (1u << 0) | (1u << 13) | CPUID_1_ECX_HYPERVISOR,
            [FEAT_8000_0001_EDX] = (1u << 11) | (1u << 20) | (1u << 29),
            /* lahf-lm abm sse4a */
            [FEAT_8000_0001_ECX] = (1u << 0) | (1u << 5) | (1u << 6),
            [FEAT_KVM] = KVM_PV_BASELINE,
        },
    },
    /*
     * QEMU's named models (target/i386/cpu.c builtin_x86_defs, version 1 of
     * each): the same family/model/stepping, brand string and feature words,
     * so guests and test suites that key on them see what they see under
     * QEMU.  All are GenuineIntel.  Like kestrel64 they add the hypervisor
     * bit and kvmclock & co. (QEMU's KVM defaults); the software CPU drops
     * those and whatever else it does not implement, with one warning line.
     */
    {
        .name = "qemu32",
        .desc = "QEMU's qemu32: 32-bit Pentium Pro class with SSE3",
        .level = 4, .xlevel = 0x80000004,
        .family = 6, .model = 6, .stepping = 3,
        .model_id = "QEMU Virtual CPU version 2.5+",
        .features = {
            [FEAT_1_EDX] = PPRO_FEATURES,
            [FEAT_1_ECX] = CPUID_1_ECX_SSE3 | CPUID_1_ECX_HYPERVISOR,
            [FEAT_KVM] = KVM_PV_BASELINE,
        },
    },
    {
        .name = "kvm64",
        .desc = "QEMU's kvm64: Common KVM processor (x86-64, SSE3, CX16)",
        .level = 0xd, .xlevel = 0x80000008,
        .family = 15, .model = 6, .stepping = 1,
        .model_id = "Common KVM processor",
        .features = {
            [FEAT_1_EDX] = EDX_BASELINE,
            [FEAT_1_ECX] = CPUID_1_ECX_SSE3 | CPUID_1_ECX_CX16 | CPUID_1_ECX_HYPERVISOR,
            [FEAT_8000_0001_EDX] = EXT_EDX_SYSCALL_NX_LM,
            [FEAT_KVM] = KVM_PV_BASELINE,
        },
    },
    {
        .name = "kvm32",
        .desc = "QEMU's kvm32: Common 32-bit KVM processor",
        .level = 5, .xlevel = 0x80000008,
        .family = 15, .model = 6, .stepping = 1,
        .model_id = "Common 32-bit KVM processor",
        .features = {
            [FEAT_1_EDX] = EDX_BASELINE,
            [FEAT_1_ECX] = CPUID_1_ECX_SSE3 | CPUID_1_ECX_HYPERVISOR,
            [FEAT_KVM] = KVM_PV_BASELINE,
        },
    },
    {
        .name = "core2duo",
        .desc = "QEMU's core2duo: Intel Core 2 Duo T7700",
        .level = 10, .xlevel = 0x80000008,
        .family = 6, .model = 15, .stepping = 11,
        .model_id = "Intel(R) Core(TM)2 Duo CPU     T7700  @ 2.40GHz",
        .features = {
            [FEAT_1_EDX] = EDX_BASELINE | CPUID_1_EDX_ACPI | CPUID_1_EDX_SS,
            [FEAT_1_ECX] = CPUID_1_ECX_SSE3 | CPUID_1_ECX_MONITOR | CPUID_1_ECX_SSSE3 |
                           CPUID_1_ECX_CX16 | CPUID_1_ECX_HYPERVISOR,
            [FEAT_8000_0001_EDX] = EXT_EDX_SYSCALL_NX_LM,
            [FEAT_8000_0001_ECX] = EXT_ECX_LAHF_LM,
            [FEAT_KVM] = KVM_PV_BASELINE,
        },
    },
    {
        .name = "Conroe",
        .desc = "QEMU's Conroe: Intel Celeron_4x0 (Conroe/Merom Class Core 2)",
        .level = 10, .xlevel = 0x80000008,
        .family = 6, .model = 15, .stepping = 3,
        .model_id = "Intel Celeron_4x0 (Conroe/Merom Class Core 2)",
        .features = {
            [FEAT_1_EDX] = EDX_BASELINE,
            [FEAT_1_ECX] = CPUID_1_ECX_SSE3 | CPUID_1_ECX_SSSE3 | CPUID_1_ECX_HYPERVISOR,
            [FEAT_8000_0001_EDX] = EXT_EDX_SYSCALL_NX_LM,
            [FEAT_8000_0001_ECX] = EXT_ECX_LAHF_LM,
            [FEAT_KVM] = KVM_PV_BASELINE,
        },
    },
    {
        .name = "Penryn",
        .desc = "QEMU's Penryn: Intel Core 2 Duo P9xxx (Penryn Class Core 2)",
        .level = 10, .xlevel = 0x80000008,
        .family = 6, .model = 23, .stepping = 3,
        .model_id = "Intel Core 2 Duo P9xxx (Penryn Class Core 2)",
        .features = {
            [FEAT_1_EDX] = EDX_BASELINE,
            [FEAT_1_ECX] = CPUID_1_ECX_SSE3 | CPUID_1_ECX_SSSE3 | CPUID_1_ECX_CX16 |
                           CPUID_1_ECX_SSE41 | CPUID_1_ECX_HYPERVISOR,
            [FEAT_8000_0001_EDX] = EXT_EDX_SYSCALL_NX_LM,
            [FEAT_8000_0001_ECX] = EXT_ECX_LAHF_LM,
            [FEAT_KVM] = KVM_PV_BASELINE,
        },
    },
    {
        .name = "Nehalem",
        .desc = "QEMU's Nehalem: Intel Core i7 9xx (Nehalem Class Core i7)",
        .level = 11, .xlevel = 0x80000008,
        .family = 6, .model = 26, .stepping = 3,
        .model_id = "Intel Core i7 9xx (Nehalem Class Core i7)",
        .features = {
            [FEAT_1_EDX] = EDX_BASELINE,
            [FEAT_1_ECX] = NEHALEM_ECX | CPUID_1_ECX_HYPERVISOR,
            [FEAT_8000_0001_EDX] = EXT_EDX_SYSCALL_NX_LM,
            [FEAT_8000_0001_ECX] = EXT_ECX_LAHF_LM,
            [FEAT_KVM] = KVM_PV_BASELINE,
        },
    },
    {
        .name = "Westmere",
        .desc = "QEMU's Westmere: Westmere E56xx/L56xx/X56xx (Nehalem-C)",
        .level = 11, .xlevel = 0x80000008,
        .family = 6, .model = 44, .stepping = 1,
        .model_id = "Westmere E56xx/L56xx/X56xx (Nehalem-C)",
        .features = {
            [FEAT_1_EDX] = EDX_BASELINE,
            [FEAT_1_ECX] = WESTMERE_ECX | CPUID_1_ECX_HYPERVISOR,
            [FEAT_8000_0001_EDX] = EXT_EDX_SYSCALL_NX_LM,
            [FEAT_8000_0001_ECX] = EXT_ECX_LAHF_LM,
            [FEAT_KVM] = KVM_PV_BASELINE,
        },
    },
    {
        .name = "SandyBridge",
        .desc = "QEMU's SandyBridge: Intel Xeon E312xx (Sandy Bridge)",
        .level = 0xd, .xlevel = 0x80000008,
        .family = 6, .model = 42, .stepping = 1,
        .model_id = "Intel Xeon E312xx (Sandy Bridge)",
        .features = {
            [FEAT_1_EDX] = EDX_BASELINE,
            [FEAT_1_ECX] = SANDYBRIDGE_ECX | CPUID_1_ECX_HYPERVISOR,
            [FEAT_8000_0001_EDX] = EXT_EDX_SYSCALL_NX_LM | EXT_EDX_RDTSCP,
            [FEAT_8000_0001_ECX] = EXT_ECX_LAHF_LM,
            [FEAT_D_1_EAX] = XSAVE_XSAVEOPT,
            [FEAT_KVM] = KVM_PV_BASELINE,
        },
    },
    {
        .name = "Haswell",
        .desc = "QEMU's Haswell: Intel Core Processor (Haswell)",
        .level = 0xd, .xlevel = 0x80000008,
        .family = 6, .model = 60, .stepping = 4,
        .model_id = "Intel Core Processor (Haswell)",
        .features = {
            [FEAT_1_EDX] = EDX_BASELINE,
            [FEAT_1_ECX] = SANDYBRIDGE_ECX | CPUID_1_ECX_FMA | CPUID_1_ECX_MOVBE |
                           CPUID_1_ECX_PCID | CPUID_1_ECX_F16C | CPUID_1_ECX_RDRAND |
                           CPUID_1_ECX_HYPERVISOR,
            [FEAT_7_0_EBX] = HASWELL_7_0_EBX,
            [FEAT_8000_0001_EDX] = EXT_EDX_SYSCALL_NX_LM | EXT_EDX_RDTSCP,
            [FEAT_8000_0001_ECX] = EXT_ECX_LAHF_LM | EXT_ECX_ABM,
            [FEAT_D_1_EAX] = XSAVE_XSAVEOPT,
            [FEAT_KVM] = KVM_PV_BASELINE,
        },
    },
    {
        .name = "host",
        .desc = "everything the host CPU and KVM support",
        .host = true,
    },
    {
        .name = "max",
        .desc = "all features KVM can provide (same as host under KVM)",
        .host = true,
    },
};

const X86CPUModel *x86_cpu_model_find(const char *name)
{
    /* QEMU's versioned name for the same definition: "Nehalem-v1" is "Nehalem". */
    size_t len = strlen(name);
    bool v1 = len > 3 && g_ascii_strcasecmp(name + len - 3, "-v1") == 0;

    for (size_t i = 0; i < ARRAY_LEN(cpu_models); i++) {
        const char *n = cpu_models[i].name;
        if (g_ascii_strcasecmp(n, name) == 0) {
            return &cpu_models[i];
        }
        if (v1 && !cpu_models[i].host && strlen(n) == len - 3 &&
            g_ascii_strncasecmp(n, name, len - 3) == 0) {
            return &cpu_models[i];
        }
    }
    return NULL;
}

void x86_cpu_model_list(FILE *out)
{
    for (size_t i = 0; i < ARRAY_LEN(cpu_models); i++) {
        fprintf(out, "x86 %-12s %s\n", cpu_models[i].name, cpu_models[i].desc);
    }
}

uint32_t x86_cpu_model_signature(const X86CPUModel *m)
{
    /* Family > 15 goes into the extended family field; model's high nibble into ext model. */
    uint32_t fam = m->family > 15 ? 15 : m->family;
    uint32_t ext_fam = m->family > 15 ? m->family - 15 : 0;
    return (m->stepping & 0xf) | (m->model & 0xf) << 4 | fam << 8 |
           ((m->model >> 4) & 0xf) << 16 | (ext_fam & 0xff) << 20;
}

/* ---- -cpu parsing ---- */

static const char *model_names(void)
{
    static char buf[512];
    if (!buf[0]) {
        for (size_t i = 0; i < ARRAY_LEN(cpu_models); i++) {
            g_strlcat(buf, i ? ", " : "", sizeof(buf));
            g_strlcat(buf, cpu_models[i].name, sizeof(buf));
        }
    }
    return buf;
}

bool x86_cpu_spec_parse(const char *str, X86CPUSpec *spec, GError **errp)
{
    memset(spec, 0, sizeof(*spec));
    if (!str || !*str) {
        spec->model = x86_cpu_model_find(X86_CPU_DEFAULT_MODEL);
        return true;
    }

    char **items = g_strsplit(str, ",", -1);
    bool ok = false;

    spec->model = x86_cpu_model_find(items[0]);
    if (!spec->model) {
        kestrel_set_error(errp, "-cpu: unknown CPU model '%s' (known: %s)",
                          items[0], model_names());
        goto out;
    }
    for (int i = 1; items[i]; i++) {
        const char *item = items[i];
        char *name;
        bool on;

        if (!*item) {
            continue;                   /* "kestrel64,,+avx" */
        }
        if (item[0] == '+' || item[0] == '-') {
            on = item[0] == '+';
            name = g_strdup(item + 1);
        } else {
            const char *eq = strchr(item, '=');
            if (!eq) {
                kestrel_set_error(errp, "-cpu: '%s': expected +FEATURE, -FEATURE or "
                                  "FEATURE=on|off", item);
                goto out;
            }
            const char *val = eq + 1;
            if (!g_ascii_strcasecmp(val, "on") || !g_ascii_strcasecmp(val, "yes") ||
                !g_ascii_strcasecmp(val, "true")) {
                on = true;
            } else if (!g_ascii_strcasecmp(val, "off") || !g_ascii_strcasecmp(val, "no") ||
                       !g_ascii_strcasecmp(val, "false")) {
                on = false;
            } else {
                kestrel_set_error(errp, "-cpu: '%s': value must be on or off", item);
                goto out;
            }
            name = g_strndup(item, eq - item);
        }
        const X86FeatureName *f = x86_feature_lookup(name);
        if (!f) {
            kestrel_set_error(errp, "-cpu: unknown CPU feature '%s'", name);
            g_free(name);
            goto out;
        }
        g_free(name);
        if (on) {
            spec->plus[f->word] |= f->mask;
            spec->minus[f->word] &= ~f->mask;
        } else {
            spec->minus[f->word] |= f->mask;
            spec->plus[f->word] &= ~f->mask;
        }
    }
    ok = true;
out:
    g_strfreev(items);
    return ok;
}

/* ---- KVM CPUID table builder ---- */

struct kvm_cpuid2 *kvm_cpuid_alloc(unsigned nent)
{
    struct kvm_cpuid2 *c = g_malloc0(sizeof(*c) + nent * sizeof(c->entries[0]));
    c->nent = nent;
    return c;
}

struct kvm_cpuid_entry2 *kvm_cpuid_find(const struct kvm_cpuid2 *c,
                                        uint32_t function, uint32_t index)
{
    if (!c) {
        return NULL;
    }
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = (struct kvm_cpuid_entry2 *)&c->entries[i];
        if (e->function != function) {
            continue;
        }
        if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != index) {
            continue;
        }
        return e;
    }
    return NULL;
}

static uint32_t *entry_reg(struct kvm_cpuid_entry2 *e, int reg)
{
    switch (reg) {
    case CPUID_EAX: return &e->eax;
    case CPUID_EBX: return &e->ebx;
    case CPUID_ECX: return &e->ecx;
    default:        return &e->edx;
    }
}

static uint32_t supported_word(const struct kvm_cpuid2 *sup, X86FeatureWord w)
{
    const X86FeatureWordInfo *wi = &x86_feature_words[w];
    struct kvm_cpuid_entry2 *e = kvm_cpuid_find(sup, wi->function, wi->index);
    return e ? *entry_reg(e, wi->reg) : 0;
}

/* Number of bits needed to number n things (SDM vol. 3A 10.12.8 "width" of an ID field). */
static unsigned id_bits(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n) {
        b++;
    }
    return b;
}

typedef struct CpuidBuilder {
    struct kvm_cpuid2 *out;
    unsigned cap;
} CpuidBuilder;

static struct kvm_cpuid_entry2 *builder_add(CpuidBuilder *b, const struct kvm_cpuid_entry2 *src)
{
    if (b->out->nent == b->cap) {
        b->cap *= 2;
        b->out = g_realloc(b->out, sizeof(*b->out) + b->cap * sizeof(b->out->entries[0]));
    }
    struct kvm_cpuid_entry2 *e = &b->out->entries[b->out->nent++];
    *e = *src;
    memset(e->padding, 0, sizeof(e->padding));
    return e;
}

static void builder_add_regs(CpuidBuilder *b, uint32_t function, uint32_t index, bool sig,
                             uint32_t eax, uint32_t ebx, uint32_t ecx, uint32_t edx)
{
    struct kvm_cpuid_entry2 e = {
        .function = function, .index = index,
        .flags = sig ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
        .eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx,
    };
    builder_add(b, &e);
}

/* XCR0 components (SDM vol. 1 13.1) a model may keep, given its final features. */
static uint64_t xcr0_allowed(const X86FeatureSet f, bool host)
{
    if (host) {
        return ~0ull;
    }
    uint64_t m = 0x3;                                   /* x87, SSE */
    if (f[FEAT_1_ECX] & CPUID_1_ECX_AVX) {
        m |= 1u << 2;                                   /* AVX (YMM_Hi128) */
    }
    if (f[FEAT_7_0_EBX] & CPUID_7_0_EBX_AVX512F) {
        m |= 0xe0;                                      /* opmask, ZMM_Hi256, Hi16_ZMM */
    }
    if (f[FEAT_7_0_ECX] & CPUID_7_0_ECX_PKU) {
        m |= 1u << 9;                                   /* PKRU */
    }
    if (f[FEAT_7_0_EDX] & CPUID_7_0_EDX_AMX_TILE) {
        m |= 3u << 17;                                  /* XTILECFG, XTILEDATA */
    }
    return m;
}

struct kvm_cpuid2 *kvm_cpuid_build(const struct kvm_cpuid2 *sup,
                                   const X86CPUSpec *spec,
                                   const KvmCpuidConfig *cfg,
                                   X86FeatureSet missing_explicit)
{
    const X86CPUModel *model = spec->model;
    bool host = model->host;
    unsigned nr = cfg->nr_cpus ? cfg->nr_cpus : 1;
    unsigned core_bits = id_bits(nr);
    X86FeatureSet final;

    /* 1. Feature words: wanted & supported. */
    for (int w = 0; w < FEAT__COUNT; w++) {
        uint32_t s = supported_word(sup, w);
        if (w == FEAT_1_ECX) {
            s |= CPUID_1_ECX_HYPERVISOR;                /* a CPUID bit only; always possible */
            if (cfg->tsc_deadline) {
                /* KVM_GET_SUPPORTED_CPUID never reports it (kvm-api.md §1.7) */
                s |= CPUID_1_ECX_TSC_DEADLINE;
            } else {
                s &= ~CPUID_1_ECX_TSC_DEADLINE;
            }
            s &= ~CPUID_1_ECX_OSXSAVE;                  /* dynamic: mirrors CR4.OSXSAVE */
        }
        if (w == FEAT_7_0_ECX) {
            s &= ~CPUID_7_0_ECX_OSPKE;                  /* dynamic: mirrors CR4.PKE */
        }
        if (cfg->userspace_apic && w == FEAT_1_ECX) {
            s &= ~CPUID_1_ECX_X2APIC;                   /* hw/pc/apic.c is xAPIC only */
        }
        if (cfg->userspace_apic && w == FEAT_KVM) {
            /* asm/kvm_para.h KVM_FEATURE_*: these work through KVM's in-kernel LAPIC */
            s &= ~((1u << 6) | (1u << 7) | (1u << 11) | (1u << 13) | (1u << 14));
        }
        if (w == FEAT_1_EDX) {
            s &= ~CPUID_1_EDX_HTT;                      /* set from the topology below */
        }
        uint32_t wanted = (host ? ~0u : model->features[w]) | spec->plus[w];
        wanted &= ~spec->minus[w];
        final[w] = wanted & s;
        if (missing_explicit) {
            missing_explicit[w] = spec->plus[w] & ~s;
        }
    }

    /* 2. Leaf ranges. */
    struct kvm_cpuid_entry2 *e0 = kvm_cpuid_find(sup, 0, 0);
    struct kvm_cpuid_entry2 *x0 = kvm_cpuid_find(sup, 0x80000000, 0);
    uint32_t sup_level = e0 ? e0->eax : 1;
    uint32_t sup_xlevel = x0 && x0->eax >= 0x80000000 ? x0->eax : 0;
    uint32_t level = host ? sup_level : MIN(model->level, sup_level);
    uint32_t xlevel = host ? sup_xlevel : MIN(model->xlevel, sup_xlevel);
    uint64_t xcr0_mask = (final[FEAT_1_ECX] & CPUID_1_ECX_XSAVE) ? xcr0_allowed(final, host) : 0;
    uint32_t sig = host ? 0 : x86_cpu_model_signature(model);

    CpuidBuilder b = { .out = kvm_cpuid_alloc(0), .cap = 16 };
    b.out = g_realloc(b.out, sizeof(*b.out) + b.cap * sizeof(b.out->entries[0]));

    /* 3. Basic and extended leaves taken from KVM's table, fixed up. */
    for (uint32_t i = 0; sup && i < sup->nent; i++) {
        const struct kvm_cpuid_entry2 *src = &sup->entries[i];
        uint32_t fn = src->function;
        bool basic = fn <= level;
        bool ext = fn >= 0x80000000 && fn <= xlevel && xlevel;
        if (!basic && !ext) {
            continue;                   /* out of range, or KVM's 0x4000000x (rebuilt below) */
        }
        if (fn == 0xb || fn == 0x1f) {
            continue;                   /* topology: rebuilt below */
        }
        if (!host) {
            /* Named models only pass through leaves we understand. */
            static const uint32_t keep[] = { 0, 1, 2, 4, 6, 7, 0xa, 0xd,
                                             0x80000000, 0x80000001, 0x80000002,
                                             0x80000003, 0x80000004, 0x80000005,
                                             0x80000006, 0x80000007, 0x80000008 };
            bool known = false;
            for (size_t k = 0; k < ARRAY_LEN(keep); k++) {
                known |= keep[k] == fn;
            }
            if (!known) {
                continue;
            }
        }
        if (fn == 0xd && !host && src->index >= 2 &&
            (src->index >= 64 || !(xcr0_mask & (1ull << src->index)))) {
            continue;                   /* XSAVE component the guest will not have */
        }
        if (fn == 7 && src->index >= 2 && !host) {
            continue;
        }

        struct kvm_cpuid_entry2 *e = builder_add(&b, src);
        switch (fn) {
        case 0:
            e->eax = level;
            break;
        case 1:
            if (!host) {
                e->eax = sig;
            }
            /* EBX: [31:24] initial APIC ID, [23:16] logical processors, [15:8] CLFLUSH */
            e->ebx = (e->ebx & 0x0000ffffu) | (cfg->apic_id & 0xff) << 24 |
                     MIN(nr, 255u) << 16;
            e->ecx = final[FEAT_1_ECX];
            e->edx = final[FEAT_1_EDX] | (nr > 1 ? CPUID_1_EDX_HTT : 0);
            break;
        case 4:
            if (e->eax & 0x1f) {
                /* EAX[31:26] cores per package - 1; [25:14] threads sharing this cache - 1 */
                unsigned level_of_cache = (e->eax >> 5) & 7;
                unsigned sharing = level_of_cache >= 3 ? (1u << core_bits) : 1;
                e->eax = (e->eax & 0x3fff) | ((sharing - 1) & 0xfff) << 14 |
                         (((1u << core_bits) - 1) & 0x3f) << 26;
            }
            break;
        case 6:
        case 0xa:
            if (!host) {
                e->eax = e->ebx = e->ecx = e->edx = 0;  /* no thermal/PMU for named models */
            }
            break;
        case 7:
            if (src->index == 0) {
                if (!host) {
                    e->eax = MIN(e->eax, final[FEAT_7_1_EAX] ? 1u : 0u);
                }
                e->ebx = final[FEAT_7_0_EBX];
                e->ecx = final[FEAT_7_0_ECX];
                e->edx = final[FEAT_7_0_EDX];
            } else if (src->index == 1) {
                e->eax = final[FEAT_7_1_EAX];
                if (!host) {
                    e->ebx = e->ecx = e->edx = 0;
                }
            }
            break;
        case 0xd:
            if (!xcr0_mask) {
                e->eax = e->ebx = e->ecx = e->edx = 0;
            } else if (src->index == 0) {
                e->eax &= (uint32_t)xcr0_mask;
                e->edx &= (uint32_t)(xcr0_mask >> 32);
                if (!host) {
                    /* ECX: size for every component EAX/EDX allows (SDM vol. 1 13.2) */
                    uint32_t size = 576;                /* legacy area + header */
                    for (unsigned c = 2; c < 32; c++) {
                        struct kvm_cpuid_entry2 *ce;
                        if ((e->eax & (1u << c)) && (ce = kvm_cpuid_find(sup, 0xd, c))) {
                            size = MAX(size, ce->eax + ce->ebx);
                        }
                    }
                    e->ecx = size;
                    e->ebx = MIN(e->ebx, size);         /* KVM recomputes it from XCR0 */
                }
            } else if (src->index == 1) {
                e->eax = final[FEAT_D_1_EAX];
                if (!host) {
                    e->ecx = e->edx = 0;                /* no supervisor (XSS) components */
                }
            }
            break;
        case 0x80000000:
            e->eax = xlevel;
            break;
        case 0x80000001:
            if (!host) {
                e->eax = sig;
                e->ebx = 0;
            }
            e->ecx = final[FEAT_8000_0001_ECX];
            e->edx = final[FEAT_8000_0001_EDX];
            break;
        case 0x80000002:
        case 0x80000003:
        case 0x80000004:
            if (!host) {
                char brand[48] = { 0 };
                strncpy(brand, model->model_id, sizeof(brand) - 1);
                const char *p = brand + (fn - 0x80000002) * 16;
                e->eax = ld32_le(p);
                e->ebx = ld32_le(p + 4);
                e->ecx = ld32_le(p + 8);
                e->edx = ld32_le(p + 12);
            }
            break;
        case 0x80000007:
            if (host) {
                e->edx = (e->edx & ~0x100u) | final[FEAT_8000_0007_EDX];
            } else {
                e->eax = e->ebx = e->ecx = 0;
                e->edx = final[FEAT_8000_0007_EDX];
            }
            break;
        case 0x80000008:
            /* EAX: address sizes stay the host's (guest MAXPHYADDR must match). */
            if (!host) {
                e->ebx = e->ecx = e->edx = 0;
            }
            /* ECX[7:0] NC = cores - 1, [15:12] ApicIdCoreIdSize (AMD APM vol. 3 E.4.7) */
            e->ecx = (e->ecx & ~0xf0ffu) | ((nr - 1) & 0xff) | (core_bits & 0xf) << 12;
            break;
        case 0x8000001e:
            /* AMD: extended APIC ID, core id, node id for this vCPU */
            e->eax = cfg->apic_id;
            e->ebx = (e->ebx & ~0xffffu) | (cfg->apic_id & 0xff);
            e->ecx = e->ecx & ~0x7ffu;
            break;
        default:
            break;
        }
    }

    /* 4. Topology (SDM vol. 2A CPUID leaf 0BH): level 0 SMT (1 thread), level 1 core. */
    static const uint32_t topo_leaves[] = { 0xb, 0x1f };
    for (size_t t = 0; t < ARRAY_LEN(topo_leaves); t++) {
        uint32_t fn = topo_leaves[t];
        if (fn > level) {
            break;
        }
        builder_add_regs(&b, fn, 0, true, 0, 1, 0 | 1u << 8, cfg->apic_id);
        builder_add_regs(&b, fn, 1, true, core_bits, nr, 1 | 2u << 8, cfg->apic_id);
        builder_add_regs(&b, fn, 2, true, 0, 0, 2, cfg->apic_id);
    }

    /* 5. KVM paravirt leaves: signature "KVMKVMKVM\0\0\0" and feature bits. */
    builder_add_regs(&b, 0x40000000, 0, false, 0x40000001,
                     ld32_le("KVMK"), ld32_le("VMKV"), ld32_le("M\0\0\0"));
    builder_add_regs(&b, 0x40000001, 0, false, final[FEAT_KVM], 0, 0, 0);

    return b.out;
}
