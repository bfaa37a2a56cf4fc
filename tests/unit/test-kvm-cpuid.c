/*
 * The KVM accelerator's pure logic, tested without /dev/kvm
 * (/work/shared/docs/kvm-api.md §8): CPU model filtering of a fake
 * KVM_GET_SUPPORTED_CPUID table, -cpu feature parsing, X86CPUState <->
 * kvm_regs/kvm_sregs conversion, reset-state builders (LAPIC, FPU, MSRs),
 * the IRQ0 -> GSI 2 routing table, memory slot bookkeeping against a fake
 * ioctl that enforces KVM's slot rules, and port I/O / MMIO exit decoding
 * on a fake kvm_run.
 */
#include "accel/kvm/kvm-internal.h"
#include "kestrel/ioport.h"
#include "tests/testlib.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

/* ---- a fake KVM_GET_SUPPORTED_CPUID answer: an AVX2-class Intel host ---- */

static struct kvm_cpuid2 *fake_supported(void)
{
    static const struct kvm_cpuid_entry2 e[] = {
        { .function = 0, .eax = 0x1f, .ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69 },
        { .function = 1, .eax = 0x000906ea, .ebx = 0x00000800,
          /* sse3 pclmul ssse3 fma cx16 pcid sse4.1 sse4.2 x2apic movbe popcnt aes xsave avx
           * f16c rdrand hypervisor */
          .ecx = 0xf7fa3203, .edx = 0x0f8bfbff },
        { .function = 2, .eax = 0x00feff01 },
        { .function = 4, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0x1c004121, .ebx = 0x01c0003f, .ecx = 0x3f },
        { .function = 4, .index = 3, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0x1c03c163, .ebx = 0x02c0003f, .ecx = 0x3fff },
        { .function = 6, .eax = 0x4 },
        { .function = 7, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0, .ebx = 0x029c6fbf /* includes avx2 (5), no avx512f (16) */,
          .ecx = 0x40000000, .edx = 0xbc000400 },
        { .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 1, .ebx = 2, .ecx = 0x100, .edx = 0 },
        { .function = 0xd, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0x7, .ebx = 0x340, .ecx = 0x340, .edx = 0 },
        { .function = 0xd, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0xf },
        { .function = 0xd, .index = 2, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0x100, .ebx = 0x240 },
        { .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b },
        { .function = 0x40000001, .eax = 0x01007afb },
        { .function = 0x80000000, .eax = 0x80000008 },
        { .function = 0x80000001, .ecx = 0x121, .edx = 0x2c100800 },
        { .function = 0x80000002, .eax = 0x65746e49 },
        { .function = 0x80000006, .ecx = 0x01006040 },
        { .function = 0x80000007, .edx = 0x100 },
        { .function = 0x80000008, .eax = 0x00003027 },
    };
    struct kvm_cpuid2 *c = kvm_cpuid_alloc(ARRAY_LEN(e));
    memcpy(c->entries, e, sizeof(e));
    return c;
}

static struct kvm_cpuid2 *build(const char *spec_str, uint32_t apic_id, unsigned nr,
                                bool tsc_deadline, X86FeatureSet missing)
{
    X86CPUSpec spec;
    GError *err = NULL;
    bool ok = x86_cpu_spec_parse(spec_str, &spec, &err);
    CHECK_MSG(ok, "parse \"%s\": %s", spec_str, err ? err->message : "?");
    struct kvm_cpuid2 *sup = fake_supported();
    KvmCpuidConfig cfg = { .apic_id = apic_id, .nr_cpus = nr, .tsc_deadline = tsc_deadline };
    struct kvm_cpuid2 *c = kvm_cpuid_build(sup, &spec, &cfg, missing);
    g_free(sup);
    return c;
}

static struct kvm_cpuid_entry2 *leaf(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
    struct kvm_cpuid_entry2 *e = kvm_cpuid_find(c, fn, idx);
    CHECK_MSG(e, "CPUID leaf 0x%x.%u missing from the built table", fn, idx);
    return e;
}

#define BIT(n) (1u << (n))

/* ---- feature names and -cpu parsing ---- */

static void test_feature_names_ignore_case_and_separators(void)
{
    const X86FeatureName *a = x86_feature_lookup("sse4.1");
    CHECK(a != NULL);
    CHECK(x86_feature_lookup("SSE4_1") == a);
    CHECK(x86_feature_lookup("sse4-1") == a);
    CHECK_EQ("sse4.1 word", FEAT_1_ECX, a->word);
    CHECK_EQ("sse4.1 mask", BIT(19), a->mask);
    CHECK_EQ("pni is sse3", BIT(0), x86_feature_lookup("pni")->mask);
    CHECK_EQ("lm word", FEAT_8000_0001_EDX, x86_feature_lookup("lm")->word);
    CHECK_EQ("avx512f mask", BIT(16), x86_feature_lookup("avx512f")->mask);
    CHECK_EQ("kvmclock mask", BIT(0) | BIT(3), x86_feature_lookup("kvmclock")->mask);
    CHECK(x86_feature_lookup("frobnicate") == NULL);
    CHECK(x86_feature_lookup("") == NULL);
    /* OSXSAVE mirrors CR4 and HTT the topology: not user-selectable */
    CHECK(x86_feature_lookup("osxsave") == NULL);
    CHECK(x86_feature_lookup("ht") == NULL);
}

static void test_parse_model_plus_minus(void)
{
    X86CPUSpec spec;
    GError *err = NULL;
    CHECK(x86_cpu_spec_parse("kestrel64,+avx,-sse4.2", &spec, &err));
    CHECK_STREQ("model", "kestrel64", spec.model->name);
    CHECK_EQ("plus CPUID.01H:ECX", BIT(28), spec.plus[FEAT_1_ECX]);
    CHECK_EQ("minus CPUID.01H:ECX", BIT(20), spec.minus[FEAT_1_ECX]);
    for (int w = 0; w < FEAT__COUNT; w++) {
        if (w != FEAT_1_ECX) {
            CHECK_EQ("other plus words", 0, spec.plus[w]);
            CHECK_EQ("other minus words", 0, spec.minus[w]);
        }
    }
}

static void test_parse_last_setting_wins_and_on_off(void)
{
    X86CPUSpec spec;
    CHECK(x86_cpu_spec_parse("host,+avx2,-avx2,x2apic=on,nx=off", &spec, NULL));
    CHECK(spec.model->host);
    CHECK_EQ("avx2 plus", 0, spec.plus[FEAT_7_0_EBX] & BIT(5));
    CHECK_EQ("avx2 minus", BIT(5), spec.minus[FEAT_7_0_EBX] & BIT(5));
    CHECK_EQ("x2apic plus", BIT(21), spec.plus[FEAT_1_ECX]);
    CHECK_EQ("nx minus", BIT(20), spec.minus[FEAT_8000_0001_EDX]);
}

static void test_parse_default_model(void)
{
    X86CPUSpec spec;
    CHECK(x86_cpu_spec_parse(NULL, &spec, NULL));
    CHECK_STREQ("default model", X86_CPU_DEFAULT_MODEL, spec.model->name);
    CHECK(x86_cpu_spec_parse("", &spec, NULL));
    CHECK_STREQ("empty -cpu", X86_CPU_DEFAULT_MODEL, spec.model->name);
    CHECK(x86_cpu_spec_parse("QEMU64", &spec, NULL));
    CHECK_STREQ("case-insensitive model", "qemu64", spec.model->name);
}

static void test_parse_unknown_feature_names_it(void)
{
    X86CPUSpec spec;
    GError *err = NULL;
    CHECK(!x86_cpu_spec_parse("kestrel64,+avx,+frobnicate", &spec, &err));
    CHECK(err != NULL);
    CHECK_MSG(strstr(err->message, "'frobnicate'"), "message: %s", err->message);
    g_clear_error(&err);
    CHECK(!x86_cpu_spec_parse("kestrel64,-warp-drive", &spec, &err));
    CHECK_MSG(strstr(err->message, "'warp-drive'"), "message: %s", err->message);
    g_clear_error(&err);
    CHECK(!x86_cpu_spec_parse("kestrel64,avx", &spec, &err));
    CHECK_MSG(strstr(err->message, "'avx'") && strstr(err->message, "+FEATURE"),
              "message: %s", err->message);
    g_clear_error(&err);
    CHECK(!x86_cpu_spec_parse("kestrel64,avx=maybe", &spec, &err));
    CHECK_MSG(strstr(err->message, "on or off"), "message: %s", err->message);
    g_clear_error(&err);
}

static void test_parse_unknown_model_lists_known(void)
{
    X86CPUSpec spec;
    GError *err = NULL;
    CHECK(!x86_cpu_spec_parse("pentium9,+avx", &spec, &err));
    CHECK_MSG(strstr(err->message, "'pentium9'") && strstr(err->message, "kestrel64") &&
              strstr(err->message, "host"), "message: %s", err->message);
    g_clear_error(&err);
}

static void test_feature_set_describe(void)
{
    X86FeatureSet set = { 0 };
    set[FEAT_1_ECX] = BIT(28);
    set[FEAT_7_0_EBX] = BIT(16);
    set[FEAT_KVM] = BIT(0) | BIT(3);
    char *s = x86_feature_set_describe(set);
    CHECK_STREQ("described set", "avx, avx512f, kvmclock", s);
    g_free(s);
}

/* ---- the CPUID builder ---- */

static void test_kestrel64_clamps_levels_and_sets_signature(void)
{
    struct kvm_cpuid2 *c = build("kestrel64", 0, 1, false, NULL);
    CHECK_EQ("CPUID.0:EAX max leaf", 0xd, leaf(c, 0, 0)->eax);
    CHECK_EQ("CPUID.0:EBX vendor kept", 0x756e6547, leaf(c, 0, 0)->ebx);
    CHECK_EQ("CPUID.80000000H:EAX", 0x80000008, leaf(c, 0x80000000, 0)->eax);
    CHECK_EQ("CPUID.01H:EAX family 15 model 107 stepping 1", 0x00060fb1, leaf(c, 1, 0)->eax);
    CHECK(kvm_cpuid_find(c, 0x1f, 0) == NULL);          /* beyond the model's level */
    char brand[17] = { 0 };
    struct kvm_cpuid_entry2 *b = leaf(c, 0x80000002, 0);
    st32_le(brand, b->eax);
    st32_le(brand + 4, b->ebx);
    st32_le(brand + 8, b->ecx);
    st32_le(brand + 12, b->edx);
    CHECK_STREQ("brand string", "Kestrel Virtual ", brand);
    CHECK_EQ("CPUID.80000008H:EAX phys bits kept", 0x3027, leaf(c, 0x80000008, 0)->eax);
    CHECK_EQ("CPUID.06H:EAX zeroed", 0, leaf(c, 6, 0)->eax);
    CHECK_EQ("CPUID.80000007H:EDX invtsc not in kestrel64", 0, leaf(c, 0x80000007, 0)->edx);
    g_free(c);
}

static void test_kestrel64_features_are_model_and_host(void)
{
    struct kvm_cpuid2 *c = build("kestrel64", 0, 1, false, NULL);
    struct kvm_cpuid_entry2 *l1 = leaf(c, 1, 0);
    CHECK_MSG(l1->ecx & BIT(31), "hypervisor bit clear: ECX=%08x", l1->ecx);
    CHECK_MSG(l1->ecx & BIT(20), "sse4.2 clear: ECX=%08x", l1->ecx);
    CHECK_MSG(!(l1->ecx & BIT(28)), "avx set but not in kestrel64: ECX=%08x", l1->ecx);
    CHECK_MSG(!(l1->ecx & BIT(26)), "xsave set: ECX=%08x", l1->ecx);
    CHECK_MSG(!(l1->ecx & BIT(27)), "osxsave must never be set: ECX=%08x", l1->ecx);
    CHECK_MSG(l1->edx & BIT(9), "APIC bit clear: EDX=%08x", l1->edx);
    CHECK_MSG(l1->edx & BIT(25), "sse clear: EDX=%08x", l1->edx);
    CHECK_EQ("CPUID.07H.0:EBX (no leaf-7 features in kestrel64)", 0, leaf(c, 7, 0)->ebx);
    struct kvm_cpuid_entry2 *x1 = leaf(c, 0x80000001, 0);
    CHECK_EQ("CPUID.80000001H:EDX syscall nx lm", BIT(11) | BIT(20) | BIT(29), x1->edx);
    CHECK_EQ("CPUID.80000001H:ECX lahf-lm", BIT(0), x1->ecx);
    /* no xsave in the model: the XSAVE leaf is empty */
    CHECK_EQ("CPUID.0DH.0:EAX", 0, leaf(c, 0xd, 0)->eax);
    CHECK(kvm_cpuid_find(c, 0xd, 2) == NULL);
    g_free(c);
}

static void test_plus_minus_applied_to_table(void)
{
    struct kvm_cpuid2 *c = build("kestrel64,+avx,+xsave,-sse4.2,+avx2", 0, 1, false, NULL);
    struct kvm_cpuid_entry2 *l1 = leaf(c, 1, 0);
    CHECK_MSG(l1->ecx & BIT(28), "+avx not applied: ECX=%08x", l1->ecx);
    CHECK_MSG(!(l1->ecx & BIT(20)), "-sse4.2 not applied: ECX=%08x", l1->ecx);
    CHECK_EQ("CPUID.07H.0:EBX avx2", BIT(5), leaf(c, 7, 0)->ebx);
    /* XSAVE on with AVX: x87|SSE|AVX components and the AVX sub-leaf */
    CHECK_EQ("CPUID.0DH.0:EAX", 0x7, leaf(c, 0xd, 0)->eax);
    CHECK_EQ("CPUID.0DH.0:ECX size", 0x340, leaf(c, 0xd, 0)->ecx);
    CHECK_EQ("CPUID.0DH.2:EAX", 0x100, leaf(c, 0xd, 2)->eax);
    CHECK_EQ("CPUID.0DH.1:EAX (no xsaveopt asked)", 0, leaf(c, 0xd, 1)->eax);
    g_free(c);
}

static void test_unsupported_explicit_feature_reported(void)
{
    X86FeatureSet missing;
    struct kvm_cpuid2 *c = build("kestrel64,+avx512f,+avx", 0, 1, false, missing);
    CHECK_EQ("missing CPUID.07H.0:EBX", BIT(16), missing[FEAT_7_0_EBX]);
    CHECK_EQ("avx is supported", 0, missing[FEAT_1_ECX]);
    CHECK_EQ("avx512f not in table", 0, leaf(c, 7, 0)->ebx & BIT(16));
    g_free(c);
    /* model features the host lacks are dropped without a report */
    c = build("qemu64", 0, 1, false, missing);
    for (int w = 0; w < FEAT__COUNT; w++) {
        CHECK_EQ("qemu64 missing (none explicit)", 0, missing[w]);
    }
    CHECK_EQ("sse4a dropped (Intel host)", 0, leaf(c, 0x80000001, 0)->ecx & BIT(6));
    g_free(c);
}

static void test_apic_id_and_topology_per_vcpu(void)
{
    struct kvm_cpuid2 *c = build("kestrel64", 3, 4, false, NULL);
    struct kvm_cpuid_entry2 *l1 = leaf(c, 1, 0);
    CHECK_EQ("CPUID.01H:EBX[31:24] APIC ID", 3, l1->ebx >> 24);
    CHECK_EQ("CPUID.01H:EBX[23:16] logical count", 4, (l1->ebx >> 16) & 0xff);
    CHECK_EQ("CPUID.01H:EBX[15:8] CLFLUSH kept", 8, (l1->ebx >> 8) & 0xff);
    CHECK_MSG(l1->edx & BIT(28), "HTT clear with 4 CPUs: EDX=%08x", l1->edx);

    struct kvm_cpuid_entry2 *t0 = leaf(c, 0xb, 0), *t1 = leaf(c, 0xb, 1), *t2 = leaf(c, 0xb, 2);
    CHECK(t0->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
    CHECK_EQ("0BH.0 EDX x2APIC id", 3, t0->edx);
    CHECK_EQ("0BH.0 ECX type SMT", 0x100, t0->ecx);
    CHECK_EQ("0BH.0 EBX threads", 1, t0->ebx);
    CHECK_EQ("0BH.1 EAX shift", 2, t1->eax);
    CHECK_EQ("0BH.1 EBX cores", 4, t1->ebx);
    CHECK_EQ("0BH.1 ECX type core", 0x201, t1->ecx);
    CHECK_EQ("0BH.1 EDX", 3, t1->edx);
    CHECK_EQ("0BH.2 ECX invalid level", 2, t2->ecx);
    CHECK_EQ("04H.0 EAX[31:26] cores-1", 3, leaf(c, 4, 0)->eax >> 26);
    CHECK_EQ("04H.0 EAX[25:14] L1 sharing-1", 0, (leaf(c, 4, 0)->eax >> 14) & 0xfff);
    CHECK_EQ("04H.3 EAX[25:14] L3 sharing-1", 3, (leaf(c, 4, 3)->eax >> 14) & 0xfff);
    CHECK_EQ("80000008H ECX[7:0] NC", 3, leaf(c, 0x80000008, 0)->ecx & 0xff);
    g_free(c);

    c = build("kestrel64", 0, 1, false, NULL);
    CHECK_EQ("HTT with 1 CPU", 0, leaf(c, 1, 0)->edx & BIT(28));
    CHECK_EQ("0BH.1 EAX shift with 1 CPU", 0, leaf(c, 0xb, 1)->eax);
    g_free(c);
}

static void test_kvm_signature_and_kvmclock(void)
{
    struct kvm_cpuid2 *c = build("kestrel64", 0, 1, false, NULL);
    struct kvm_cpuid_entry2 *s = leaf(c, 0x40000000, 0);
    char sig[13] = { 0 };
    st32_le(sig, s->ebx);
    st32_le(sig + 4, s->ecx);
    st32_le(sig + 8, s->edx);
    CHECK_STREQ("hypervisor signature", "KVMKVMKVM", sig);
    CHECK_EQ("40000000H:EAX max leaf", 0x40000001, s->eax);
    /* kvmclock (0,3), nopiodelay (1), stable bit (24); nothing else from the host's 0x01007afb */
    CHECK_EQ("40000001H:EAX", BIT(0) | BIT(1) | BIT(3) | BIT(24), leaf(c, 0x40000001, 0)->eax);
    g_free(c);
    c = build("kestrel64,-kvmclock", 0, 1, false, NULL);
    CHECK_EQ("40000001H:EAX without kvmclock", BIT(1) | BIT(24), leaf(c, 0x40000001, 0)->eax);
    g_free(c);
    c = build("host", 0, 1, false, NULL);
    CHECK_EQ("40000001H:EAX host = all KVM offers", 0x01007afb, leaf(c, 0x40000001, 0)->eax);
    g_free(c);
}

static void test_host_model_takes_everything_supported(void)
{
    struct kvm_cpuid2 *c = build("host", 1, 2, true, NULL);
    CHECK_EQ("CPUID.0:EAX host level", 0x1f, leaf(c, 0, 0)->eax);
    CHECK_EQ("CPUID.01H:EAX host signature", 0x000906ea, leaf(c, 1, 0)->eax);
    struct kvm_cpuid_entry2 *l1 = leaf(c, 1, 0);
    CHECK_MSG(l1->ecx & BIT(28), "avx: ECX=%08x", l1->ecx);
    CHECK_MSG(l1->ecx & BIT(24), "tsc-deadline with the cap: ECX=%08x", l1->ecx);
    CHECK_EQ("CPUID.07H.0:EBX", 0x029c6fbf, leaf(c, 7, 0)->ebx);
    CHECK_EQ("CPUID.0DH.1:EAX", 0xf, leaf(c, 0xd, 1)->eax);
    CHECK_EQ("1FH.0 EDX", 1, leaf(c, 0x1f, 0)->edx);
    CHECK_EQ("0BH.0 EDX replaced", 1, leaf(c, 0xb, 0)->edx);
    /* exactly one 0BH.0 entry: KVM's own topology leaf was replaced, not duplicated */
    int n = 0;
    for (uint32_t i = 0; i < c->nent; i++) {
        n += c->entries[i].function == 0xb && c->entries[i].index == 0;
    }
    CHECK_EQ("0BH.0 entries", 1, n);
    CHECK_EQ("invtsc kept for host", 0x100, leaf(c, 0x80000007, 0)->edx);
    g_free(c);

    c = build("host", 0, 1, false, NULL);
    CHECK_EQ("no tsc-deadline without the cap", 0, leaf(c, 1, 0)->ecx & BIT(24));
    g_free(c);
}

/* ---- register conversion ---- */

static void fill_pattern(X86CPUState *s)
{
    x86_cpu_state_reset(s, true);
    for (int i = 0; i < 16; i++) {
        s->regs[i] = 0x1111111111111111ull * (i + 1);
    }
    s->rip = 0xffffffff81000000ull;
    s->rflags = 0x246;
    for (int i = 0; i < SEG__COUNT; i++) {
        s->seg[i] = (X86Segment){ .selector = 0x10 + 8 * i, .base = 0x1000 * i,
                                  .limit = 0xfffff, .type = i == SEG_CS ? 0xb : 0x3,
                                  .s = 1, .dpl = 0, .present = 1, .l = i == SEG_CS,
                                  .db = i != SEG_CS, .g = 1 };
    }
    s->seg[SEG_FS].unusable = 1;
    s->seg[SEG_FS].present = 0;
    s->ldt = (X86Segment){ .selector = 0, .type = 2, .present = 1, .limit = 0xffff };
    s->tr = (X86Segment){ .selector = 0x40, .base = 0x5000, .limit = 0x67, .type = 0xb,
                          .present = 1 };
    s->gdt = (X86DescTable){ 0x9000, 0x3f };
    s->idt = (X86DescTable){ 0xa000, 0xfff };
    s->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_WP | X86_CR0_ET;
    s->cr2 = 0xdead000;
    s->cr3 = 0x100000;
    s->cr4 = X86_CR4_PAE;
    s->cr8 = 5;
    s->efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_SCE;
    s->apic_base = 0xfee00900;
    s->dr[0] = 0x1000;
    s->dr[1] = 0x2000;
    s->dr[2] = 0x3000;
    s->dr[3] = 0x4000;
    s->dr[4] = s->dr[6] = 0xffff0ff1;
    s->dr[5] = s->dr[7] = 0x401;
}

static void test_state_round_trips_through_kvm_structs(void)
{
    X86CPUState a, b;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_debugregs dregs;

    fill_pattern(&a);
    memset(&sregs, 0xa5, sizeof(sregs));              /* what a GET would have filled */
    kvm_state_from_x86(&a, &regs, &sregs, &dregs);
    kvm_state_to_x86(&regs, &sregs, &dregs, &b);

    for (int i = 0; i < 16; i++) {
        CHECK_EQ("GPR", a.regs[i], b.regs[i]);
    }
    CHECK_EQ("RIP", a.rip, b.rip);
    CHECK_EQ("RFLAGS", a.rflags, b.rflags);
    static const char *names[] = { "ES", "CS", "SS", "DS", "FS", "GS" };
    for (int i = 0; i < SEG__COUNT; i++) {
        CHECK_MSG(!memcmp(&a.seg[i], &b.seg[i], sizeof(X86Segment)),
                  "segment %s differs after round trip", names[i]);
    }
    CHECK(!memcmp(&a.ldt, &b.ldt, sizeof(X86Segment)));
    CHECK(!memcmp(&a.tr, &b.tr, sizeof(X86Segment)));
    CHECK_EQ("FS unusable", 1, b.seg[SEG_FS].unusable);
    CHECK_EQ("GDT base", a.gdt.base, b.gdt.base);
    CHECK_EQ("GDT limit", a.gdt.limit, b.gdt.limit);
    CHECK_EQ("IDT base", a.idt.base, b.idt.base);
    CHECK_EQ("IDT limit", a.idt.limit, b.idt.limit);
    CHECK_EQ("CR0", a.cr0, b.cr0);
    CHECK_EQ("CR2", a.cr2, b.cr2);
    CHECK_EQ("CR3", a.cr3, b.cr3);
    CHECK_EQ("CR4", a.cr4, b.cr4);
    CHECK_EQ("CR8", a.cr8, b.cr8);
    CHECK_EQ("EFER", a.efer, b.efer);
    CHECK_EQ("APIC base", a.apic_base, b.apic_base);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ("DR", a.dr[i], b.dr[i]);
    }
    /* named kvm_sregs fields land where KVM expects them */
    CHECK_EQ("sregs.cs.selector", 0x18, sregs.cs.selector);
    CHECK_EQ("sregs.cs.l", 1, sregs.cs.l);
    CHECK_EQ("sregs.ss.selector", 0x20, sregs.ss.selector);
    CHECK_EQ("sregs.es.selector", 0x10, sregs.es.selector);
    CHECK_EQ("sregs.gs.base", 0x5000, sregs.gs.base);
    CHECK_EQ("regs.rdx", a.regs[R_EDX], regs.rdx);
    CHECK_EQ("regs.rsp", a.regs[R_ESP], regs.rsp);
    CHECK_EQ("segment padding zero", 0, sregs.cs.padding);
}

static void test_state_from_x86_fixups(void)
{
    X86CPUState s;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_debugregs dregs;

    x86_cpu_state_reset(&s, false);
    s.rflags = 0;                               /* bit 1 forgotten */
    s.cr0 = X86_CR0_PE | X86_CR0_PG;
    s.cr4 = X86_CR4_PAE;
    s.efer = X86_EFER_LME;                      /* LMA forgotten */
    s.apic_base = 0;                            /* "keep KVM's" */
    s.tr.type = 0;                              /* never filled in */
    memset(&sregs, 0, sizeof(sregs));
    sregs.apic_base = 0xfee00800;
    sregs.tr.type = 0xb;
    sregs.tr.present = 1;
    sregs.interrupt_bitmap[1] = 0x80;
    kvm_state_from_x86(&s, &regs, &sregs, &dregs);
    CHECK_EQ("RFLAGS bit 1 forced", 2, regs.rflags);
    CHECK_EQ("EFER.LMA with LME+PG", X86_EFER_LME | X86_EFER_LMA, sregs.efer);
    CHECK_EQ("apic_base kept", 0xfee00800, sregs.apic_base);
    CHECK_EQ("TR kept", 0xb, sregs.tr.type);
    CHECK_EQ("interrupt_bitmap cleared", 0, sregs.interrupt_bitmap[1]);
    CHECK_EQ("DR7 bit 10 fixed", 0x400, dregs.dr7 & 0x400);
    CHECK_EQ("debugregs.flags", 0, dregs.flags);

    /* the power-on state itself: CS F000 base FFFF0000, RIP FFF0 */
    x86_cpu_state_reset(&s, true);
    memset(&sregs, 0, sizeof(sregs));
    kvm_state_from_x86(&s, &regs, &sregs, &dregs);
    CHECK_EQ("reset CS selector", 0xf000, sregs.cs.selector);
    CHECK_EQ("reset CS base", 0xffff0000, sregs.cs.base);
    CHECK_EQ("reset RIP", 0xfff0, regs.rip);
    CHECK_EQ("reset CR0", 0x60000010, sregs.cr0);
    CHECK_EQ("reset APIC base with BSP", 0xfee00900, sregs.apic_base);
}

/* ---- reset-state builders ---- */

static void test_lapic_reset_bsp_virtual_wire(void)
{
    struct kvm_lapic_state st;
    memset(&st, 0x5a, sizeof(st));
    kvm_lapic_set_reg(&st, APIC_LVR, 0x01050014);
    kvm_lapic_reset_state(&st, 0, true);
    CHECK_EQ("version kept", 0x01050014, kvm_lapic_get_reg(&st, APIC_LVR));
    CHECK_EQ("ID", 0, kvm_lapic_get_reg(&st, APIC_ID));
    CHECK_EQ("LINT0 ExtINT unmasked", 0x700, kvm_lapic_get_reg(&st, APIC_LVT_LINT0));
    CHECK_EQ("LINT1 NMI unmasked", 0x400, kvm_lapic_get_reg(&st, APIC_LVT_LINT1));
    CHECK_EQ("SVR", 0xff, kvm_lapic_get_reg(&st, APIC_SVR));
    CHECK_EQ("DFR", 0xffffffff, kvm_lapic_get_reg(&st, APIC_DFR));
    CHECK_EQ("LVT timer masked", APIC_LVT_MASKED, kvm_lapic_get_reg(&st, APIC_LVT_TIMER));
    CHECK_EQ("LVT error masked", APIC_LVT_MASKED, kvm_lapic_get_reg(&st, APIC_LVT_ERROR));
    CHECK_EQ("TPR", 0, kvm_lapic_get_reg(&st, APIC_TPR));
    CHECK_EQ("timer initial count", 0, kvm_lapic_get_reg(&st, APIC_TMICT));
    CHECK_EQ("ISR word 0", 0, kvm_lapic_get_reg(&st, 0x100));
}

static void test_lapic_reset_ap_all_masked(void)
{
    struct kvm_lapic_state st;
    memset(&st, 0, sizeof(st));
    kvm_lapic_reset_state(&st, 5, false);
    CHECK_EQ("APIC ID byte 35", 5, (uint8_t)st.regs[35]);
    CHECK_EQ("ID register", 5u << 24, kvm_lapic_get_reg(&st, APIC_ID));
    CHECK_EQ("LINT0 masked", APIC_LVT_MASKED, kvm_lapic_get_reg(&st, APIC_LVT_LINT0));
    CHECK_EQ("LINT1 masked", APIC_LVT_MASKED, kvm_lapic_get_reg(&st, APIC_LVT_LINT1));
}

static void test_fpu_reset_values(void)
{
    struct kvm_fpu fpu;
    memset(&fpu, 0xff, sizeof(fpu));
    kvm_fpu_reset_state(&fpu);
    CHECK_EQ("FCW", 0x37f, fpu.fcw);
    CHECK_EQ("MXCSR", 0x1f80, fpu.mxcsr);
    CHECK_EQ("FSW", 0, fpu.fsw);
    CHECK_EQ("FTWX (all empty)", 0, fpu.ftwx);
    CHECK_EQ("XMM0 byte", 0, fpu.xmm[0][0]);
}

static const struct kvm_msr_entry *find_msr(const struct kvm_msr_entry *e, unsigned n,
                                            uint32_t index)
{
    for (unsigned i = 0; i < n; i++) {
        if (e[i].index == index) {
            return &e[i];
        }
    }
    return NULL;
}

static void test_reset_msrs_filtered_by_index_list(void)
{
    struct kvm_msr_entry e[32];
    unsigned n = kvm_msrs_reset_list(e, 32, NULL);
    CHECK_MSG(n >= 10, "only %u reset MSRs", n);
    const struct kvm_msr_entry *misc = find_msr(e, n, MSR_IA32_MISC_ENABLE);
    CHECK(misc != NULL);
    CHECK_EQ("MISC_ENABLE fast strings", 1, misc->data);
    CHECK_EQ("PAT", PAT_POWER_ON, find_msr(e, n, MSR_IA32_CR_PAT)->data);
    CHECK_EQ("TSC", 0, find_msr(e, n, MSR_IA32_TSC)->data);
    CHECK(find_msr(e, n, MSR_KVM_SYSTEM_TIME_NEW) != NULL);
    /* writing the wall-clock MSR makes KVM store the time at that GPA: never at reset */
    CHECK(find_msr(e, n, MSR_KVM_WALL_CLOCK_NEW) == NULL);
    CHECK(find_msr(e, n, MSR_KVM_WALL_CLOCK) == NULL);

    struct kvm_msr_list *known = g_malloc0(sizeof(*known) + 3 * sizeof(known->indices[0]));
    known->nmsrs = 3;
    known->indices[0] = MSR_IA32_TSC;
    known->indices[1] = MSR_LSTAR;
    known->indices[2] = 0x12345;
    n = kvm_msrs_reset_list(e, 32, known);
    CHECK_EQ("filtered count", 2, n);
    CHECK(find_msr(e, n, MSR_IA32_TSC) && find_msr(e, n, MSR_LSTAR));
    CHECK(find_msr(e, n, MSR_IA32_CR_PAT) == NULL);
    CHECK_EQ("reserved", 0, e[0].reserved);
    g_free(known);
}

/*
 * RESET's MTRRs: all 0 without a state (power-on, MTRRs disabled), or a
 * direct boot's firmware-like state with PHYSMASK cut to the vCPU's
 * MAXPHYADDR (KVM #GPs on bits above it); the enable bits come last.
 */
static void test_reset_mtrrs_clip_mask_to_phys_bits(void)
{
    struct kvm_msr_entry e[64];
    unsigned n = kvm_msrs_mtrr_list(e, 64, NULL, 39);
    CHECK_EQ("DEF_TYPE + 11 fixed + 8 pairs", 28, n);
    for (unsigned i = 0; i < n; i++) {
        CHECK_MSG(e[i].data == 0, "power-on MSR 0x%x = 0x%llx, expected 0", e[i].index,
                  (unsigned long long)e[i].data);
    }
    CHECK(find_msr(e, n, 0x26f) && find_msr(e, n, 0x20f) && find_msr(e, n, 0x2ff));

    X86MTRRState st;
    x86_mtrr_state_firmware(&st, 1ull << 30);
    n = kvm_msrs_mtrr_list(e, 64, &st, 39);
    CHECK_EQ("count", 28, n);
    CHECK_EQ("last: DEF_TYPE", 0x2ff, e[n - 1].index);
    CHECK_EQ("DEF_TYPE E | FE | WB", 0xc06, e[n - 1].data);
    CHECK_EQ("FIX4K_C0000 WP", 0x0505050505050505ull, find_msr(e, n, 0x268)->data);
    CHECK_EQ("PHYSBASE0", 0x80000000ull, find_msr(e, n, 0x200)->data);
    CHECK_EQ("PHYSMASK0 at 39 bits", 0x7f80000800ull, find_msr(e, n, 0x201)->data);
    n = kvm_msrs_mtrr_list(e, 64, &st, 46);
    CHECK_EQ("PHYSMASK0 at 46 bits", 0x3fff80000800ull, find_msr(e, n, 0x201)->data);
    CHECK_EQ("bounded by max", 5, kvm_msrs_mtrr_list(e, 5, &st, 46));
}

static int route_pin(const struct kvm_irq_routing *r, uint32_t gsi, uint32_t chip)
{
    for (uint32_t i = 0; i < r->nr; i++) {
        const struct kvm_irq_routing_entry *e = &r->entries[i];
        if (e->gsi == gsi && e->type == KVM_IRQ_ROUTING_IRQCHIP &&
            e->u.irqchip.irqchip == chip) {
            return e->u.irqchip.pin;
        }
    }
    return -1;
}

static void test_gsi_routing_irq0_to_ioapic_pin2(void)
{
    struct kvm_irq_routing *r = kvm_gsi_routing_build();
    CHECK_EQ("route count", 15 + 23, r->nr);
    CHECK_EQ("flags", 0, r->flags);
    CHECK_EQ("GSI 0 -> IOAPIC pin", 2, route_pin(r, 0, KVM_IRQCHIP_IOAPIC));
    CHECK_EQ("GSI 0 -> PIC master pin", 0, route_pin(r, 0, KVM_IRQCHIP_PIC_MASTER));
    CHECK_EQ("GSI 2 -> IOAPIC", -1, route_pin(r, 2, KVM_IRQCHIP_IOAPIC));
    CHECK_EQ("GSI 2 -> PIC", -1, route_pin(r, 2, KVM_IRQCHIP_PIC_MASTER));
    CHECK_EQ("GSI 4 -> IOAPIC", 4, route_pin(r, 4, KVM_IRQCHIP_IOAPIC));
    CHECK_EQ("GSI 4 -> PIC master", 4, route_pin(r, 4, KVM_IRQCHIP_PIC_MASTER));
    CHECK_EQ("GSI 9 -> PIC slave", 1, route_pin(r, 9, KVM_IRQCHIP_PIC_SLAVE));
    CHECK_EQ("GSI 9 -> IOAPIC", 9, route_pin(r, 9, KVM_IRQCHIP_IOAPIC));
    CHECK_EQ("GSI 20 -> IOAPIC", 20, route_pin(r, 20, KVM_IRQCHIP_IOAPIC));
    CHECK_EQ("GSI 20 -> PIC", -1, route_pin(r, 20, KVM_IRQCHIP_PIC_SLAVE));
    g_free(r);
}

static void test_mmio_split_natural_alignment(void)
{
    unsigned sz[8];
    CHECK_EQ("aligned 4: pieces", 1, kvm_mmio_split(0x1000, 4, sz));
    CHECK_EQ("aligned 4: size", 4, sz[0]);
    CHECK_EQ("aligned 8", 1, kvm_mmio_split(0x1008, 8, sz));
    CHECK_EQ("aligned 8: size", 8, sz[0]);
    CHECK_EQ("3 at +1: pieces", 2, kvm_mmio_split(0x1001, 3, sz));
    CHECK_EQ("3 at +1: first", 1, sz[0]);
    CHECK_EQ("3 at +1: second", 2, sz[1]);
    CHECK_EQ("4 at +2: pieces", 2, kvm_mmio_split(0x1002, 4, sz));
    CHECK_EQ("4 at +2: sizes", 2, sz[0]);
    CHECK_EQ("4 at +2: sizes", 2, sz[1]);
    CHECK_EQ("7 at 0: pieces", 3, kvm_mmio_split(0x2000, 7, sz));
    CHECK_EQ("7 at 0: 4", 4, sz[0]);
    CHECK_EQ("7 at 0: 2", 2, sz[1]);
    CHECK_EQ("7 at 0: 1", 1, sz[2]);
    CHECK_EQ("len 0", 0, kvm_mmio_split(0x2000, 0, sz));
    CHECK_EQ("len 12 clamps to 8", 1, kvm_mmio_split(0x2000, 12, sz));
}

/* ---- memory slots against a fake KVM that enforces §1.5 ---- */

#define FAKE_SLOTS 4

static struct {
    struct kvm_userspace_memory_region slot[FAKE_SLOTS];
    int calls, deletes;
} fake_kvm;

static int fake_ioctl(int fd, unsigned long req, void *arg)
{
    if (req != KVM_SET_USER_MEMORY_REGION) {
        errno = ENOTTY;
        return -1;
    }
    const struct kvm_userspace_memory_region *r = arg;
    uint32_t id = r->slot & 0xffff;
    fake_kvm.calls++;
    if (id >= FAKE_SLOTS || (r->flags & ~KVM_MEM_READONLY) ||
        (r->guest_phys_addr | r->memory_size | r->userspace_addr) & 0xfff) {
        errno = EINVAL;
        return -1;
    }
    struct kvm_userspace_memory_region *cur = &fake_kvm.slot[id];
    if (r->memory_size == 0) {
        fake_kvm.deletes++;
        memset(cur, 0, sizeof(*cur));
        return 0;
    }
    if (cur->memory_size) {
        /* only moves and dirty-log toggles are allowed in place */
        if (cur->memory_size != r->memory_size || cur->userspace_addr != r->userspace_addr ||
            cur->flags != r->flags) {
            errno = EINVAL;
            return -1;
        }
    }
    for (int i = 0; i < FAKE_SLOTS; i++) {
        const struct kvm_userspace_memory_region *o = &fake_kvm.slot[i];
        if (i != (int)id && o->memory_size &&
            r->guest_phys_addr < o->guest_phys_addr + o->memory_size &&
            o->guest_phys_addr < r->guest_phys_addr + r->memory_size) {
            errno = EEXIST;
            return -1;
        }
    }
    *cur = *r;
    return 0;
}

typedef struct SlotTest {
    MemoryListener l;
    KvmSlotTable t;
    int errors;
} SlotTest;

static void st_add(MemoryListener *l, const FlatRange *fr)
{
    SlotTest *st = l->opaque;
    GError *err = NULL;
    if (!kvm_slots_region_add(&st->t, fr, &err)) {
        st->errors++;
        g_clear_error(&err);
    }
}

static void st_del(MemoryListener *l, const FlatRange *fr)
{
    SlotTest *st = l->opaque;
    kvm_slots_region_del(&st->t, fr);
}

static uint64_t unassigned_read(void *o, hwaddr off, unsigned size) { return 0; }
static void unassigned_write(void *o, hwaddr off, uint64_t v, unsigned size) { }
static const MemoryRegionOps nop_ops = { .read = unassigned_read, .write = unassigned_write };

static const struct kvm_userspace_memory_region *fake_slot_at(hwaddr gpa)
{
    for (int i = 0; i < FAKE_SLOTS; i++) {
        if (fake_kvm.slot[i].memory_size && fake_kvm.slot[i].guest_phys_addr == gpa) {
            return &fake_kvm.slot[i];
        }
    }
    return NULL;
}

static void test_slots_follow_the_memory_map(void)
{
    memset(&fake_kvm, 0, sizeof(fake_kvm));
    kvm_ioctl_fn = fake_ioctl;
    SlotTest st = { .l = { .region_add = st_add, .region_del = st_del } };
    st.l.opaque = &st;
    kvm_slots_init(&st.t, 99, FAKE_SLOTS, true);

    MemoryRegion *root = memory_region_new_container("root", UINT64_MAX);
    MemoryRegion *ram = memory_region_new_ram("ram", 1 << 20, NULL);
    MemoryRegion *rom = memory_region_new_rom("bios", 64 << 10, NULL);
    MemoryRegion *mmio = memory_region_new_mmio("vga", 128 << 10, &nop_ops, NULL);
    memory_region_add_subregion(root, 0, ram, 0);
    memory_region_add_subregion(root, 0xa0000, mmio, 1);   /* punches a hole in RAM */
    memory_region_add_subregion(root, 0xffff0000, rom, 0);
    AddressSpace *as = address_space_new("slots", root);
    address_space_add_listener(as, &st.l);

    CHECK_EQ("listener errors", 0, st.errors);
    const struct kvm_userspace_memory_region *lo = fake_slot_at(0);
    const struct kvm_userspace_memory_region *hi = fake_slot_at(0xc0000);
    const struct kvm_userspace_memory_region *bios = fake_slot_at(0xffff0000);
    CHECK_MSG(lo && hi && bios, "slots lo=%p hi=%p bios=%p", (void *)lo, (void *)hi,
              (void *)bios);
    CHECK_EQ("low RAM size (stops at the VGA hole)", 0xa0000, lo->memory_size);
    CHECK_EQ("RAM above the hole", 0x40000, hi->memory_size);
    CHECK_EQ("RAM slot writable", 0, lo->flags);
    CHECK_EQ("ROM slot read-only", KVM_MEM_READONLY, bios->flags);
    CHECK_EQ("ROM HVA", (uintptr_t)memory_region_host_ptr(rom), bios->userspace_addr);
    CHECK_EQ("RAM above hole HVA", (uintptr_t)memory_region_host_ptr(ram) + 0xc0000,
             hi->userspace_addr);
    CHECK(kvm_slots_lookup(&st.t, 0xa0000) == NULL);
    CHECK(kvm_slots_lookup(&st.t, 0x9ffff) != NULL);

    /* Removing the hole: two RAM slots go, one whole-RAM slot comes; ids are reused. */
    memory_region_del_subregion(root, mmio);
    CHECK_EQ("listener errors after unmap", 0, st.errors);
    lo = fake_slot_at(0);
    CHECK(lo != NULL);
    CHECK_EQ("whole RAM slot", 1 << 20, lo->memory_size);
    CHECK(fake_slot_at(0xc0000) == NULL);

    /* RAM made read-only (PAM shadowing): READONLY cannot toggle in place, so del + add. */
    MemoryRegion *shadow = memory_region_new_ram("shadow", 64 << 10, NULL);
    memory_region_add_subregion(root, 0x200000, shadow, 0);
    CHECK_EQ("shadow RAM writable", 0, fake_slot_at(0x200000)->flags);
    int deletes = fake_kvm.deletes;
    memory_region_set_readonly(shadow, true);
    CHECK_EQ("listener errors after readonly toggle", 0, st.errors);
    CHECK_MSG(fake_kvm.deletes > deletes, "slot not deleted before re-adding");
    CHECK(fake_slot_at(0x200000) != NULL);
    CHECK_EQ("shadow now read-only", KVM_MEM_READONLY, fake_slot_at(0x200000)->flags);
    memory_region_set_readonly(shadow, false);
    CHECK_EQ("shadow writable again", 0, fake_slot_at(0x200000)->flags);
    CHECK_EQ("listener errors", 0, st.errors);
    address_space_remove_listener(as, &st.l);
    kvm_slots_destroy(&st.t);
    kvm_ioctl_fn = kvm_ioctl_real;
}

static void test_slots_without_readonly_mem_map_rom_as_ram(void)
{
    memset(&fake_kvm, 0, sizeof(fake_kvm));
    kvm_ioctl_fn = fake_ioctl;
    KvmSlotTable t;
    kvm_slots_init(&t, 99, FAKE_SLOTS, false);
    static uint8_t page[2 * 4096] __attribute__((aligned(4096)));
    FlatRange fr = { .start = 0xfffe0000, .size = 4096, .host = page, .readonly = true };
    CHECK(kvm_slots_region_add(&t, &fr, NULL));
    CHECK_EQ("flags without READONLY_MEM", 0, fake_slot_at(0xfffe0000)->flags);
    kvm_slots_destroy(&t);
    kvm_ioctl_fn = kvm_ioctl_real;
}

static void test_slot_window_trims_to_pages(void)
{
    static uint8_t buf[5 * 4096] __attribute__((aligned(4096)));
    hwaddr gpa;
    uint64_t size, hva;
    FlatRange fr = { .start = 0x1800, .size = 0x3000, .host = buf + 0x800 };
    CHECK(kvm_slot_window(&fr, &gpa, &size, &hva));
    CHECK_EQ("trimmed GPA", 0x2000, gpa);
    CHECK_EQ("trimmed size", 0x2000, size);
    CHECK_EQ("trimmed HVA", (uintptr_t)buf + 0x1000, hva);
    fr = (FlatRange){ .start = 0x1800, .size = 0x600, .host = buf + 0x800 };
    CHECK(!kvm_slot_window(&fr, &gpa, &size, &hva));           /* no whole page */
    fr = (FlatRange){ .start = 0x1000, .size = 0x2000, .host = buf + 0x10 };
    CHECK(!kvm_slot_window(&fr, &gpa, &size, &hva));           /* offsets disagree */
    fr = (FlatRange){ .start = 0x1000, .size = 0x2000, .host = NULL };
    CHECK(!kvm_slot_window(&fr, &gpa, &size, &hva));           /* MMIO */
}

static void test_slots_run_out_cleanly(void)
{
    memset(&fake_kvm, 0, sizeof(fake_kvm));
    kvm_ioctl_fn = fake_ioctl;
    KvmSlotTable t;
    kvm_slots_init(&t, 99, 2, true);
    static uint8_t mem[4 * 4096] __attribute__((aligned(4096)));
    GError *err = NULL;
    for (int i = 0; i < 2; i++) {
        FlatRange fr = { .start = 0x10000 * (i + 1), .size = 4096, .host = mem + 4096 * i };
        CHECK(kvm_slots_region_add(&t, &fr, &err));
    }
    FlatRange fr = { .start = 0x30000, .size = 4096, .host = mem + 8192 };
    CHECK(!kvm_slots_region_add(&t, &fr, &err));
    CHECK_MSG(err && strstr(err->message, "out of memory slots"), "message: %s",
              err ? err->message : "(none)");
    g_clear_error(&err);
    /* an overlap rejected by KVM is reported with the reason */
    kvm_slots_destroy(&t);
    kvm_slots_init(&t, 99, 4, true);
    memset(&fake_kvm, 0, sizeof(fake_kvm));
    FlatRange a = { .start = 0x10000, .size = 8192, .host = mem };
    FlatRange b = { .start = 0x11000, .size = 4096, .host = mem + 8192 };
    CHECK(kvm_slots_region_add(&t, &a, NULL));
    CHECK(!kvm_slots_region_add(&t, &b, &err));
    CHECK_MSG(err && strstr(err->message, "overlaps"), "message: %s",
              err ? err->message : "(none)");
    g_clear_error(&err);
    kvm_slots_destroy(&t);
    kvm_ioctl_fn = kvm_ioctl_real;
}

/* ---- exit decoding on a fake kvm_run ---- */

static struct {
    uint32_t last_write[8];
    unsigned nwrites, nreads;
    unsigned size;
} io_dev;

static uint32_t io_read(void *o, uint16_t off, unsigned size)
{
    io_dev.size = size;
    return 0xa0 + io_dev.nreads++;
}

static void io_write(void *o, uint16_t off, uint32_t v, unsigned size)
{
    io_dev.size = size;
    if (io_dev.nwrites < 8) {
        io_dev.last_write[io_dev.nwrites] = v;
    }
    io_dev.nwrites++;
}

static const IoPortOps io_ops = { .read = io_read, .write = io_write, .max_access = 4 };

static struct kvm_run *fake_run(size_t *size)
{
    *size = 3 * 4096;
    void *p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    return p;
}

static void test_io_exit_out_string_and_in(void)
{
    size_t size;
    struct kvm_run *run = fake_run(&size);
    GError *err = NULL;
    CHECK_MSG(ioport_register(0x510, 4, &io_ops, NULL, "test-io", &err), "register: %s",
              err ? err->message : "?");
    memset(&io_dev, 0, sizeof(io_dev));

    /* REP OUTSW of 3 words at the PIO page (§2.3) */
    run->exit_reason = KVM_EXIT_IO;
    run->io.direction = KVM_EXIT_IO_OUT;
    run->io.size = 2;
    run->io.port = 0x510;
    run->io.count = 3;
    run->io.data_offset = 4096;
    uint8_t *data = (uint8_t *)run + 4096;
    st16_le(data, 0x1111);
    st16_le(data + 2, 0x2222);
    st16_le(data + 4, 0x3333);
    CHECK(kvm_handle_io(run, size));
    CHECK_EQ("OUT count", 3, io_dev.nwrites);
    CHECK_EQ("OUT access size", 2, io_dev.size);
    CHECK_EQ("OUT item 0", 0x1111, io_dev.last_write[0]);
    CHECK_EQ("OUT item 2", 0x3333, io_dev.last_write[2]);

    /* IN dword x2 fills consecutive items */
    run->io.direction = KVM_EXIT_IO_IN;
    run->io.size = 4;
    run->io.count = 2;
    memset(data, 0, 16);
    CHECK(kvm_handle_io(run, size));
    CHECK_EQ("IN item 0", 0xa0, ld32_le(data));
    CHECK_EQ("IN item 1", 0xa1, ld32_le(data + 4));

    /* an unclaimed port reads as all-ones */
    run->io.port = 0x5f0;
    run->io.size = 1;
    run->io.count = 1;
    CHECK(kvm_handle_io(run, size));
    CHECK_EQ("unclaimed IN", 0xff, data[0]);

    /* malformed exits are refused, not followed */
    run->io.size = 3;
    CHECK(!kvm_handle_io(run, size));
    run->io.size = 4;
    run->io.count = 2048;                 /* exactly the 8 KiB after offset 4096 */
    CHECK(kvm_handle_io(run, size));
    run->io.count = 2049;                 /* 4 bytes beyond the mapping */
    CHECK(!kvm_handle_io(run, size));
    run->io.count = 1;
    run->io.data_offset = size;
    CHECK(!kvm_handle_io(run, size));
    munmap(run, size);
}

static struct {
    hwaddr off[8];
    unsigned size[8];
    uint64_t val[8];
    int n;
} mmio_log;

static uint64_t mmio_read(void *o, hwaddr off, unsigned size)
{
    if (mmio_log.n < 8) {
        mmio_log.off[mmio_log.n] = off;
        mmio_log.size[mmio_log.n] = size;
        mmio_log.n++;
    }
    return 0x8877665544332211ull >> (8 * (off & 7));
}

static void mmio_write(void *o, hwaddr off, uint64_t v, unsigned size)
{
    if (mmio_log.n < 8) {
        mmio_log.off[mmio_log.n] = off;
        mmio_log.size[mmio_log.n] = size;
        mmio_log.val[mmio_log.n] = v;
        mmio_log.n++;
    }
}

static const MemoryRegionOps mmio_ops = {
    .read = mmio_read, .write = mmio_write, .min_access = 1, .max_access = 8,
};

static void test_mmio_exit_read_write_split(void)
{
    size_t size;
    struct kvm_run *run = fake_run(&size);
    MemoryRegion *root = memory_region_new_container("root", UINT64_MAX);
    MemoryRegion *dev = memory_region_new_mmio("dev", 0x1000, &mmio_ops, NULL);
    memory_region_add_subregion(root, 0xfed00000, dev, 0);
    AddressSpace *as = address_space_new("mmio", root);

    memset(&mmio_log, 0, sizeof(mmio_log));
    run->exit_reason = KVM_EXIT_MMIO;
    run->mmio.phys_addr = 0xfed00010;
    run->mmio.len = 4;
    run->mmio.is_write = 1;
    st32_le(run->mmio.data, 0xcafef00d);
    CHECK(kvm_handle_mmio(as, run));
    CHECK_EQ("one access", 1, mmio_log.n);
    CHECK_EQ("write offset", 0x10, mmio_log.off[0]);
    CHECK_EQ("write size", 4, mmio_log.size[0]);
    CHECK_EQ("write value", 0xcafef00d, mmio_log.val[0]);

    /* a page-crossing fragment: 3 bytes at an odd address = 1 + 2 */
    memset(&mmio_log, 0, sizeof(mmio_log));
    run->mmio.phys_addr = 0xfed00021;
    run->mmio.len = 3;
    run->mmio.is_write = 0;
    memset(run->mmio.data, 0, 8);
    CHECK(kvm_handle_mmio(as, run));
    CHECK_EQ("split accesses", 2, mmio_log.n);
    CHECK_EQ("first piece size", 1, mmio_log.size[0]);
    CHECK_EQ("second piece offset", 0x22, mmio_log.off[1]);
    CHECK_EQ("second piece size", 2, mmio_log.size[1]);
    CHECK_EQ("data[0] from offset 0x21", 0x22, run->mmio.data[0]);
    CHECK_EQ("data[1..2] from offset 0x22", 0x4433, ld16_le(run->mmio.data + 1));

    /* 8-byte read fills all of data[] little-endian */
    run->mmio.phys_addr = 0xfed00000;
    run->mmio.len = 8;
    CHECK(kvm_handle_mmio(as, run));
    CHECK_EQ("8-byte read", 0x8877665544332211ull, ld64_le(run->mmio.data));

    run->mmio.len = 0;
    CHECK(!kvm_handle_mmio(as, run));
    munmap(run, size);
}

static const TestCase cases[] = {
    TEST_CASE(test_feature_names_ignore_case_and_separators),
    TEST_CASE(test_parse_model_plus_minus),
    TEST_CASE(test_parse_last_setting_wins_and_on_off),
    TEST_CASE(test_parse_default_model),
    TEST_CASE(test_parse_unknown_feature_names_it),
    TEST_CASE(test_parse_unknown_model_lists_known),
    TEST_CASE(test_feature_set_describe),
    TEST_CASE(test_kestrel64_clamps_levels_and_sets_signature),
    TEST_CASE(test_kestrel64_features_are_model_and_host),
    TEST_CASE(test_plus_minus_applied_to_table),
    TEST_CASE(test_unsupported_explicit_feature_reported),
    TEST_CASE(test_apic_id_and_topology_per_vcpu),
    TEST_CASE(test_kvm_signature_and_kvmclock),
    TEST_CASE(test_host_model_takes_everything_supported),
    TEST_CASE(test_state_round_trips_through_kvm_structs),
    TEST_CASE(test_state_from_x86_fixups),
    TEST_CASE(test_lapic_reset_bsp_virtual_wire),
    TEST_CASE(test_lapic_reset_ap_all_masked),
    TEST_CASE(test_fpu_reset_values),
    TEST_CASE(test_reset_msrs_filtered_by_index_list),
    TEST_CASE(test_reset_mtrrs_clip_mask_to_phys_bits),
    TEST_CASE(test_gsi_routing_irq0_to_ioapic_pin2),
    TEST_CASE(test_mmio_split_natural_alignment),
    TEST_CASE(test_slots_follow_the_memory_map),
    TEST_CASE(test_slots_without_readonly_mem_map_rom_as_ram),
    TEST_CASE(test_slot_window_trims_to_pages),
    TEST_CASE(test_slots_run_out_cleanly),
    TEST_CASE(test_io_exit_out_string_and_in),
    TEST_CASE(test_mmio_exit_read_write_split),
    { 0 },
};

int main(int argc, char **argv)
{
    return test_main("kvm-cpuid", cases, argc, argv);
}
