/*
 * System instructions of the software CPU: CPUID (the "kestrel64" model),
 * RDMSR/WRMSR, MOV to/from control and debug registers, descriptor-table
 * loads and stores (LGDT/LIDT/SGDT/SIDT/LLDT/LTR/SLDT/STR/SMSW/LMSW),
 * INVLPG/CLTS/SWAPGS, flag instructions, PUSHF/POPF, HLT, LAR/LSL,
 * plus power-on reset and conversion
 * to the machine-wide X86CPUState.
 *
 * CPUID model "kestrel64", the default, also for -cpu host and max (vendor
 * string GenuineIntel because the implementation follows Intel where vendors
 * differ: SYSENTER in long mode, SYSRET #GP in ring 0, 66h ignored on near
 * branches) advertises exactly what is implemented; another -cpu model gives
 * its signature and brand and its features less those not implemented
 * (tcg_cpuid_configure, with one warning line naming them):
 *   1:EAX   family 15 model 107 stepping 1 (as KVM's kestrel64)
 *   1:EDX   FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV
 *           PAT PSE36 CLFSH MMX FXSR SSE SSE2 (APIC only with a local APIC);
 *           VME covers CR4.VME and CR4.PVI (seg.c, excp.c, the flag ops below)
 *   1:ECX   SSE3 PCLMULQDQ SSSE3 CX16 SSE4.1 SSE4.2 MOVBE POPCNT
 *           TSC-deadline AES XSAVE (OSXSAVE mirrors CR4.OSXSAVE)
 *   0DH     XCR0 components x87 and SSE, standard 576-byte XSAVE area;
 *           sub-leaf 1: XSAVEOPT only (no XSAVEC, XGETBV1, XSAVES)
 *   7:EBX   ADX;  ECX  MOVDIRI MOVDIR64B;  EDX  ARCH_CAPABILITIES (MSR 10AH
 *           says: no speculative-execution bugs)
 *   8000_0001h:EDX  SYSCALL NX Page1GB RDTSCP LM;  ECX  LAHF-SAHF LZCNT
 *   8000_0008h:EAX  40 physical / 48 linear address bits
 * SDM 2A "CPUID", SDM 4 (MSRs), SDM 3A §2.5 (control registers).
 */
#include <time.h>
#include "accel/tcg/ops.h"
#include "accel/tcg/tcg-internal.h"
#include "kestrel/cpu-model.h"
#include "kestrel/log.h"

/* ---- CPUID ---- */
static const char cpuid_default_brand[48] = "Kestrel software CPU kestrel64";

/*
 * What the software CPU implements, per CPUID feature word: the most any
 * -cpu model can advertise here.  APIC and TSC-deadline only count while a
 * local APIC exists (tcg_has_apic).
 */
#define TCG_FEATURES_IMPLEMENTED { \
    [FEAT_1_EDX] = (1u << 0) | CPUID_1_EDX_VME /* CR4.VME, CR4.PVI */ | (1u << 2) /* DE: debug.c */ | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | CPUID_1_EDX_MCE | \
                   (1u << 8) | (1u << 9) | (1u << 11) | CPUID_1_EDX_MTRR | (1u << 13) | \
                   CPUID_1_EDX_MCA | (1u << 15) | (1u << 16) | \
                   (1u << 17) | (1u << 19) | (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26), \
    /* SSE3 PCLMULQDQ SSSE3 CX16 SSE4.1 SSE4.2 MOVBE POPCNT TSC-deadline AES XSAVE */ \
    [FEAT_1_ECX] = (1u << 0) | (1u << 1) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20) | \
                   (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25) | CPUID_1_ECX_XSAVE, \
    [FEAT_D_1_EAX] = 1u << 0, \
    [FEAT_7_0_EBX] = 1u << 19,                          /* ADX */ \
    [FEAT_7_0_ECX] = (1u << 27) | (1u << 28),           /* MOVDIRI MOVDIR64B */ \
    [FEAT_7_0_EDX] = 1u << 29, \
    [FEAT_8000_0001_EDX] = (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29), \
    [FEAT_8000_0001_ECX] = (1u << 0) | (1u << 5), \
}
static const X86FeatureSet tcg_supported = TCG_FEATURES_IMPLEMENTED;

/*
 * CPUID.01H:EAX of kestrel64 (SDM 2A "CPUID", Figure 3-6): family 15 model
 * 107 stepping 1, the signature KVM's kestrel64 (accel/kvm/kvm-cpuid.c) and
 * QEMU's qemu64 report, so a guest sees one CPU under either accelerator.
 * Not a family-6 model below 15: Linux clears PAT on Pentium Pro to Core
 * Yonah ("if (c->x86 == 6 && c->x86_model < 15)" in early_init_intel,
 * arch/x86/kernel/cpu/intel.c; erratum AN7), and the old 0x663 (family 6
 * model 6) left every guest without PAT.  tests/unit/test-tcg-cpu.c checks
 * that this matches the shared model table.
 */
#define TCG_KESTREL64_SIGNATURE 0x00060fb1u

/* The CPUID model of every software CPU of this process (-cpu; tcg_cpuid_configure). */
static struct {
    X86FeatureSet feat;
    uint32_t signature;          /* CPUID.01H:EAX */
    char brand[48];
} tcg_model = {
    .feat = TCG_FEATURES_IMPLEMENTED,     /* kestrel64 until -cpu says otherwise */
    .signature = TCG_KESTREL64_SIGNATURE,
};

/*
 * -cpu MODEL[,+feat,-feat] for the software CPU.  kestrel64 (the default),
 * host and max mean everything implemented; a named model gives its
 * signature, brand and features, less what is not implemented.  Features
 * the model or a +feat asks for that we lack are left out with one warning
 * line naming them (*dropped, caller frees), as QEMU does for TCG.
 */
bool tcg_cpuid_configure(const char *cpu_model, char **dropped, GError **errp)
{
    X86CPUSpec spec;
    *dropped = NULL;
    if (!x86_cpu_spec_parse(cpu_model, &spec, errp))
        return false;
    const X86CPUModel *m = spec.model;
    bool ours = m->host || !strcmp(m->name, X86_CPU_DEFAULT_MODEL);
    X86FeatureSet want, lack;
    for (int w = 0; w < FEAT__COUNT; w++) {
        want[w] = ((ours ? tcg_supported[w] : m->features[w]) | spec.plus[w]) & ~spec.minus[w];
        /* The hypervisor bit and KVM paravirt words describe KVM, not us. */
        if (w == FEAT_KVM)
            want[w] = 0;
        if (w == FEAT_1_ECX)
            want[w] &= ~CPUID_1_ECX_HYPERVISOR;
        lack[w] = want[w] & ~tcg_supported[w];
        tcg_model.feat[w] = want[w] & tcg_supported[w];
    }
    bool any = false;
    for (int w = 0; w < FEAT__COUNT; w++)
        any |= lack[w] != 0;
    if (any)
        *dropped = x86_feature_set_describe(lack);
    tcg_model.signature = ours ? TCG_KESTREL64_SIGNATURE : x86_cpu_model_signature(m);
    memset(tcg_model.brand, 0, sizeof(tcg_model.brand));     /* empty: cpuid_default_brand */
    if (!ours && m->model_id)
        g_strlcpy(tcg_model.brand, m->model_id, sizeof(tcg_model.brand));
    return true;
}

bool tcg_cpuid_feature(int word, uint32_t bits)
{
    return (tcg_model.feat[word] & bits) == bits;
}

/* CPUID.(EAX=0DH,ECX=1):EAX[0]: XSAVEOPT exists (ops-fpu.c: else #UD). */
bool tcg_cpuid_has_xsaveopt(void)
{
    return (tcg_model.feat[FEAT_1_ECX] & CPUID_1_ECX_XSAVE) && (tcg_model.feat[FEAT_D_1_EAX] & 1u);
}

static void cpuid_leaf(TCGCPU *cpu, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    r[0] = r[1] = r[2] = r[3] = 0;
    switch (leaf) {
    case 0:
        r[0] = 0x15;            /* leaves 2-0x14 not listed here read as zero */
        memcpy(&r[1], "Genu", 4);
        memcpy(&r[3], "ineI", 4);
        memcpy(&r[2], "ntel", 4);
        break;
    case 1:
        r[0] = tcg_model.signature;
        r[1] = ((uint32_t)cpu->id << 24) | (1u << 16) | (8u << 8);
        /* FPU (0): ops-fpu.c, softfloat80.c, fpu-trans.c; MMX (23), SSE (25), SSE2 (26):
         * ops-sse.c, ops-sse-fp.c; FXSR (24): FXSAVE/FXRSTOR. */
        r[2] = tcg_model.feat[FEAT_1_ECX];
        r[3] = tcg_model.feat[FEAT_1_EDX];
        if (!tcg_has_apic()) {
            r[3] &= ~(1u << 9);     /* APIC: the userspace local APIC (xAPIC only) */
            r[2] &= ~(1u << 24);    /* TSC-deadline timer mode */
        }
        /* OSXSAVE (27) reports CR4.OSXSAVE (SDM 2A "CPUID", Table 3-10). */
        if (cpu->cr4 & CR4_OSXSAVE)
            r[2] |= CPUID_1_ECX_OSXSAVE;
        break;
    case 7:
        /* Subleaf 0 EDX bit 29: IA32_ARCH_CAPABILITIES exists (SDM 2A, CPUID leaf 07H). */
        if (sub == 0) {
            r[1] = tcg_model.feat[FEAT_7_0_EBX];
            r[2] = tcg_model.feat[FEAT_7_0_ECX];
            r[3] = tcg_model.feat[FEAT_7_0_EDX];
        }
        break;
    case 0xd:
        /*
         * XSAVE features (SDM 1 §13.2): sub-leaf 0 gives the XCR0 bits that
         * may be set (EDX:EAX), the area size for the current XCR0 (EBX) and
         * for all of them (ECX); x87 and SSE live in the legacy region, so
         * both sizes are 512 + 64.  Sub-leaf 1 EAX: XSAVEOPT (0) only.
         */
        if (!(tcg_model.feat[FEAT_1_ECX] & CPUID_1_ECX_XSAVE))
            break;
        if (sub == 0) {
            r[0] = XCR0_SUPPORTED;
            r[1] = XSAVE_AREA_SIZE;
            r[2] = XSAVE_AREA_SIZE;
        } else if (sub == 1) {
            r[0] = tcg_model.feat[FEAT_D_1_EAX];
        }
        break;
    case 0x15:
        /*
         * TSC/crystal ratio (SDM 2A, CPUID leaf 15H): a 1 GHz crystal and a
         * 1:1 TSC, exactly cpu_rdtsc's rate and the APIC timer's, so Linux
         * need not calibrate against the PIT (which fails on a loaded host).
         */
        r[0] = 1;
        r[1] = 1;
        r[2] = 1000000000u;
        break;
    case 0x80000000:
        r[0] = 0x80000008;
        break;
    case 0x80000001:
        r[2] = tcg_model.feat[FEAT_8000_0001_ECX];
        r[3] = tcg_model.feat[FEAT_8000_0001_EDX];
        break;
    case 0x80000002: case 0x80000003: case 0x80000004:
        memcpy(r, (tcg_model.brand[0] ? tcg_model.brand : cpuid_default_brand) +
                  (leaf - 0x80000002) * 16, 16);
        break;
    case 0x80000008:
        r[0] = 0x3028;
        break;
    default:
        break;
    }
}

int helper_cpuid(TCGCPU *cpu, const DecodedOp *op)
{
    (void)op;
    uint32_t r[4];
    cpuid_leaf(cpu, (uint32_t)cpu->regs[R_EAX], (uint32_t)cpu->regs[R_ECX], r);
    cpu->regs[R_EAX] = r[0];
    cpu->regs[R_EBX] = r[1];
    cpu->regs[R_ECX] = r[2];
    cpu->regs[R_EDX] = r[3];
    return H_NEXT;
}

/* ---- TSC ---- */
static uint64_t host_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A nominal 1 GHz TSC that starts near 0 at reset. */
uint64_t cpu_rdtsc(TCGCPU *cpu)
{
    if (unlikely(cpu->tsc_counts_insns))
        return cpu->icount + (uint64_t)cpu->tsc_offset;
    return host_ns() + (uint64_t)cpu->tsc_offset;
}

/* ---- MSRs ---- */
static void require_cpl0(TCGCPU *cpu)
{
    if (cpu->pe && cpu->cpl != 0)
        raise_exception_err(cpu, EXCP_GP, 0);
}

int helper_rdmsr(TCGCPU *cpu, const DecodedOp *op)
{
    (void)op;
    require_cpl0(cpu);
    uint32_t msr = (uint32_t)cpu->regs[R_ECX];
    uint64_t v;
    switch (msr) {
    case MSR_IA32_TSC: v = cpu_rdtsc(cpu); break;
    case MSR_IA32_APIC_BASE: v = tcg_has_apic() ? tcg_apic_base_read(cpu) : cpu->apic_base; break;
    case MSR_IA32_TSC_DEADLINE:
        if (!tcg_has_apic())
            raise_exception_err(cpu, EXCP_GP, 0);
        v = tcg_apic_deadline_read(cpu);
        break;
    case MSR_IA32_SYSENTER_CS: v = cpu->sysenter_cs; break;
    case MSR_IA32_SYSENTER_ESP: v = cpu->sysenter_esp; break;
    case MSR_IA32_SYSENTER_EIP: v = cpu->sysenter_eip; break;
    case MSR_IA32_MISC_ENABLE: v = cpu->misc_enable; break;
    case MSR_IA32_ARCH_CAPABILITIES:
        /*
         * An interpreter executes nothing speculatively, so the "not
         * affected" bits are simply true (SDM 4, IA32_ARCH_CAPABILITIES):
         * RDCL_NO (0, Meltdown), SKIP_L1DFL_VMENTRY (3), SSB_NO (4), MDS_NO
         * (5), PSCHANGE_MC_NO (6), TAA_NO (8).  Linux then leaves page-table
         * isolation off, which otherwise flushes our block cache's jump
         * cache on every user/kernel switch.
         */
        v = (1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8);
        break;
    case MSR_IA32_PAT: v = cpu->pat; break;
    case MSR_EFER: v = cpu->efer; break;
    case MSR_STAR: v = cpu->star; break;
    case MSR_LSTAR: v = cpu->lstar; break;
    case MSR_CSTAR: v = cpu->cstar; break;
    case MSR_FMASK: v = cpu->fmask; break;
    case MSR_FS_BASE: v = cpu->seg[SEG_FS].base; break;
    case MSR_GS_BASE: v = cpu->seg[SEG_GS].base; break;
    case MSR_KERNEL_GS_BASE: v = cpu->kernel_gs_base; break;
    case MSR_TSC_AUX: v = cpu->tsc_aux; break;
    case MSR_IA32_BIOS_SIGN_ID: v = 0; break;      /* microcode revision 0 */
    /*
     * Read-only platform ID (SDM 4 Table 2-2): Linux's microcode driver reads
     * it on every Intel family-6 CPU and warns with a call trace on #GP.
     */
    case MSR_IA32_PLATFORM_ID: v = 0; break;
    default:
        if (mtrr_mca_rdmsr(cpu, msr, &v))
            break;
        LOG(LOG_UNIMP, "tcg: rdmsr %#x not implemented -> #GP\n", msr);
        raise_exception_err(cpu, EXCP_GP, 0);
    }
    cpu->regs[R_EAX] = (uint32_t)v;
    cpu->regs[R_EDX] = (uint32_t)(v >> 32);
    return H_NEXT;
}

int helper_wrmsr(TCGCPU *cpu, const DecodedOp *op)
{
    (void)op;
    require_cpl0(cpu);
    uint32_t msr = (uint32_t)cpu->regs[R_ECX];
    uint64_t v = (uint32_t)cpu->regs[R_EAX] | ((uint64_t)(uint32_t)cpu->regs[R_EDX] << 32);
    switch (msr) {
    case MSR_IA32_TSC: cpu->tsc_offset = (int64_t)(v - cpu_rdtsc(cpu) + (uint64_t)cpu->tsc_offset); break;
    case MSR_IA32_TSC_DEADLINE:
        if (!tcg_has_apic())
            raise_exception_err(cpu, EXCP_GP, 0);
        tcg_apic_deadline_write(cpu, v);
        break;
    case MSR_IA32_APIC_BASE:
        if (tcg_has_apic()) {
            if (!tcg_apic_base_write(cpu, v))
                raise_exception_err(cpu, EXCP_GP, 0);
            break;
        }
        if (v & ~(0xfffff000ull | 0x900ull) & ((1ull << 40) - 1))
            raise_exception_err(cpu, EXCP_GP, 0);
        cpu->apic_base = (v & (0xffffff000ull | 0x800ull)) | (cpu->apic_base & 0x100);
        break;
    case MSR_IA32_SYSENTER_CS: cpu->sysenter_cs = v & 0xffff; break;
    case MSR_IA32_SYSENTER_ESP:
    case MSR_IA32_SYSENTER_EIP:
        if (!canonical(v))
            raise_exception_err(cpu, EXCP_GP, 0);
        if (msr == MSR_IA32_SYSENTER_ESP) cpu->sysenter_esp = v; else cpu->sysenter_eip = v;
        break;
    case MSR_IA32_MISC_ENABLE: cpu->misc_enable = v; break;
    case MSR_IA32_PAT:
        for (int i = 0; i < 8; i++) {
            unsigned t = (v >> (8 * i)) & 0xff;
            if (t == 2 || t == 3 || t > 7)
                raise_exception_err(cpu, EXCP_GP, 0);
        }
        cpu->pat = v;
        break;
    case MSR_EFER: {
        uint64_t allowed = X86_EFER_SCE | X86_EFER_LME | X86_EFER_NXE;
        if (v & ~(allowed | X86_EFER_LMA))
            raise_exception_err(cpu, EXCP_GP, 0);
        /* LME may not change while paging is on (SDM 3A §9.8.5). */
        if ((cpu->cr0 & X86_CR0_PG) && ((v ^ cpu->efer) & X86_EFER_LME))
            raise_exception_err(cpu, EXCP_GP, 0);
        uint64_t old = cpu->efer;
        cpu->efer = (v & allowed) | (cpu->efer & X86_EFER_LMA);
        if ((old ^ cpu->efer) & X86_EFER_NXE)
            tlb_flush(cpu, true);
        cpu_update_hflags(cpu);
        break;
    }
    case MSR_STAR: cpu->star = v; break;
    case MSR_LSTAR: case MSR_CSTAR: case MSR_FS_BASE: case MSR_GS_BASE: case MSR_KERNEL_GS_BASE:
        if (!canonical(v))
            raise_exception_err(cpu, EXCP_GP, 0);
        if (msr == MSR_LSTAR) cpu->lstar = v;
        else if (msr == MSR_CSTAR) cpu->cstar = v;
        else if (msr == MSR_FS_BASE) cpu->seg[SEG_FS].base = v;
        else if (msr == MSR_GS_BASE) cpu->seg[SEG_GS].base = v;
        else cpu->kernel_gs_base = v;
        seg_compute_ok(cpu, SEG_FS);
        seg_compute_ok(cpu, SEG_GS);
        break;
    case MSR_FMASK: cpu->fmask = (uint32_t)v; break;
    case MSR_TSC_AUX: cpu->tsc_aux = (uint32_t)v; break;
    case MSR_IA32_BIOS_SIGN_ID: break;             /* no microcode to load */
    default: {
        int r = mtrr_mca_wrmsr(cpu, msr, v);
        if (r > 0)
            break;
        if (r < 0)
            raise_exception_err(cpu, EXCP_GP, 0);
        LOG(LOG_UNIMP, "tcg: wrmsr %#x <- %#" PRIx64 " not implemented -> #GP\n", msr, v);
        raise_exception_err(cpu, EXCP_GP, 0);
    }
    }
    return H_NEXT_END;
}

/* ---- Control registers ---- */
#define CR0_WRITABLE (X86_CR0_PE | X86_CR0_MP | X86_CR0_EM | X86_CR0_TS | X86_CR0_NE | \
                      X86_CR0_WP | X86_CR0_AM | X86_CR0_NW | X86_CR0_CD | X86_CR0_PG)
#define CR4_SUPPORTED (CR4_TSD | CR4_DE | X86_CR4_PSE | X86_CR4_PAE | CR4_MCE | X86_CR4_PGE | \
                       CR4_PCE | CR4_OSFXSR | CR4_OSXMMEXCPT)

bool cpu_write_cr0(TCGCPU *cpu, uint64_t v)
{
    if (v >> 32)
        return false;
    v &= CR0_WRITABLE;
    v |= X86_CR0_ET;
    if ((v & X86_CR0_PG) && !(v & X86_CR0_PE))
        return false;
    if ((v & X86_CR0_NW) && !(v & X86_CR0_CD))
        return false;
    uint64_t old = cpu->cr0;
    if ((v & X86_CR0_PG) && !(old & X86_CR0_PG) && (cpu->efer & X86_EFER_LME)) {
        /* Activating IA-32e mode: needs PAE and a non-64-bit CS. */
        if (!(cpu->cr4 & X86_CR4_PAE) || (cpu->seg[SEG_CS].attr & SEGA_L))
            return false;
        cpu->efer |= X86_EFER_LMA;
    }
    if (!(v & X86_CR0_PG) && (old & X86_CR0_PG) && (cpu->efer & X86_EFER_LMA)) {
        if (cpu->code64)
            return false;
        cpu->efer &= ~(uint64_t)X86_EFER_LMA;
    }
    if ((v & X86_CR0_PG) && !(old & X86_CR0_PG) && (cpu->cr4 & X86_CR4_PAE) &&
        !(cpu->efer & X86_EFER_LMA)) {
        if (!cpu_load_pdptes(cpu, cpu->cr3))
            return false;
    }
    cpu->cr0 = v;
    if ((old ^ v) & (X86_CR0_PG | X86_CR0_WP | X86_CR0_PE))
        tlb_flush(cpu, true);
    cpu_update_hflags(cpu);
    return true;
}

bool cpu_write_cr3(TCGCPU *cpu, uint64_t v)
{
    if (cpu->lma) {
        if (v & 0xfff0000000000000ull)
            return false;
    } else {
        v = (uint32_t)v;
    }
    if ((cpu->cr0 & X86_CR0_PG) && (cpu->cr4 & X86_CR4_PAE) && !cpu->lma) {
        if (!cpu_load_pdptes(cpu, v))
            return false;
    }
    cpu->cr3 = v;
    tlb_flush(cpu, false);
    return true;
}

bool cpu_write_cr4(TCGCPU *cpu, uint64_t v)
{
    uint64_t supported = CR4_SUPPORTED;
    /* OSXSAVE only with XSAVE advertised (SDM 3A §2.5: else MOV CR4 #GP). */
    if (tcg_model.feat[FEAT_1_ECX] & CPUID_1_ECX_XSAVE)
        supported |= CR4_OSXSAVE;
    /* VME and PVI likewise only with CPUID.01H:EDX.VME (SDM 3A §2.5, §20.3.3). */
    if (tcg_model.feat[FEAT_1_EDX] & CPUID_1_EDX_VME)
        supported |= CR4_VME | CR4_PVI;
    if (v & ~supported)
        return false;
    if (cpu->lma && !(v & X86_CR4_PAE))
        return false;
    uint64_t old = cpu->cr4;
    if ((v & X86_CR4_PAE) && !(old & X86_CR4_PAE) && (cpu->cr0 & X86_CR0_PG) && !cpu->lma) {
        uint64_t save = cpu->cr4;
        cpu->cr4 = v;
        bool ok = cpu_load_pdptes(cpu, cpu->cr3);
        cpu->cr4 = save;
        if (!ok)
            return false;
    }
    cpu->cr4 = v;
    if ((old ^ v) & (X86_CR4_PSE | X86_CR4_PAE | X86_CR4_PGE))
        tlb_flush(cpu, true);
    return true;
}

int helper_mov_cr(TCGCPU *cpu, const DecodedOp *op)
{
    int crn = op->reg;
    if (crn != 0 && crn != 2 && crn != 3 && crn != 4 && crn != 8)
        raise_exception(cpu, EXCP_UD);
    if (cpu->vm86 || (cpu->pe && cpu->cpl != 0))
        raise_exception_err(cpu, EXCP_GP, 0);
    int sz = cpu->code64 ? 3 : 2;
    if (op->sub == 0) {
        uint64_t v = 0;
        switch (crn) {
        case 0: v = cpu->cr0; break;
        case 2: v = cpu->cr2; break;
        case 3: v = cpu->cr3; break;
        case 4: v = cpu->cr4; break;
        case 8: v = tcg_has_apic() ? tcg_apic_cr8_read(cpu) : cpu->cr8; break;
        }
        reg_set(cpu, op->rm, sz, v);
        return H_NEXT;
    }
    uint64_t v = reg_get(cpu, op->rm, sz);
    bool ok = true;
    switch (crn) {
    case 0: ok = cpu_write_cr0(cpu, v); break;
    case 2: cpu->cr2 = v; break;
    case 3: ok = cpu_write_cr3(cpu, v); break;
    case 4: ok = cpu_write_cr4(cpu, v); break;
    case 8:
        if (v & ~0xfull)
            ok = false;
        else if (tcg_has_apic())
            tcg_apic_cr8_write(cpu, (uint8_t)v);     /* CR8 is TPR[7:4] (SDM 3A §10.8.6) */
        else
            cpu->cr8 = v;
        break;
    }
    if (!ok)
        raise_exception_err(cpu, EXCP_GP, 0);
    return H_NEXT_END;
}

/* MOV to/from debug registers: helper_mov_dr in debug.c. */

/* ---- 0F 00 / 0F 01 ---- */
int helper_grp6(TCGCPU *cpu, const DecodedOp *op)
{
    if (!cpu->pe || cpu->vm86)
        raise_exception(cpu, EXCP_UD);
    switch (op->sub) {
    case 0: case 1: {   /* SLDT, STR */
        uint16_t sel = op->sub == 0 ? cpu->ldt.sel : cpu->tr.sel;
        if (op->rm != NOREG)
            reg_set(cpu, op->rm, (op->pfx & PFX_REX) && cpu->code64 ? 3 : 2, sel);
        else
            rm_write(cpu, op, 1, sel);
        return H_NEXT_END;
    }
    case 2: case 3: {   /* LLDT, LTR */
        require_cpl0(cpu);
        uint16_t sel = (uint16_t)rm_read(cpu, op, 1);
        if (op->sub == 2)
            ldt_load(cpu, sel, EXCP_GP);
        else
            helper_ltr(cpu, sel);
        return H_NEXT_END;
    }
    default: {          /* VERR, VERW */
        uint16_t sel = (uint16_t)rm_read(cpu, op, 1);
        uint32_t lo, hi;
        bool ok = false;
        if ((sel & ~3u) && desc_fetch(cpu, sel, &lo, &hi)) {
            uint16_t attr = (uint16_t)((hi >> 8) & 0xf0ff);
            unsigned dpl = SEGA_DPL(attr);
            bool conf = (attr & SEGA_CODE) && (attr & SEGA_CONF_EXPD);
            if ((attr & SEGA_S) && (conf || (dpl >= cpu->cpl && dpl >= (sel & 3u)))) {
                if (op->sub == 4)
                    ok = !(attr & SEGA_CODE) || (attr & SEGA_RW);
                else
                    ok = !(attr & SEGA_CODE) && (attr & SEGA_RW);
            }
        }
        uint32_t f = cc_compute_all(cpu) & ~CC_Z;
        cc_set_flags(cpu, f | (ok ? CC_Z : 0));
        return H_NEXT_END;
    }
    }
}

/*
 * 0F 01 D0 XGETBV / 0F 01 D1 XSETBV (SDM 2C; decode.c passes them as the
 * register form of /2, op->rm bit 0 telling which).  ECX (32 bits) names
 * the XCR: only XCR0 exists, as there is no XGETBV1.  Both #UD without
 * CR4.OSXSAVE.  XSETBV needs CPL 0 (real mode counts, virtual-8086 mode is
 * CPL 3) and a valid XCR0 (SDM 1 §13.3): x87 (bit 0) set, no unsupported
 * bit, and AVX (bit 2) never without SSE (bit 1).
 */
static int helper_xgetbv_xsetbv(TCGCPU *cpu, const DecodedOp *op)
{
    if (!(cpu->cr4 & CR4_OSXSAVE))
        raise_exception(cpu, EXCP_UD);
    uint32_t xcr = (uint32_t)cpu->regs[R_ECX];
    if (!(op->rm & 1)) {
        if (xcr != 0)
            raise_exception_err(cpu, EXCP_GP, 0);
        cpu->regs[R_EAX] = (uint32_t)cpu->xcr0;
        cpu->regs[R_EDX] = (uint32_t)(cpu->xcr0 >> 32);
        return H_NEXT;
    }
    require_cpl0(cpu);
    uint64_t v = (uint32_t)cpu->regs[R_EAX] | ((uint64_t)(uint32_t)cpu->regs[R_EDX] << 32);
    if (xcr != 0 || !(v & XSTATE_X87) || (v & ~(uint64_t)XCR0_SUPPORTED) ||
        ((v & 4) && !(v & XSTATE_SSE)))
        raise_exception_err(cpu, EXCP_GP, 0);
    cpu->xcr0 = v;
    return H_NEXT_END;
}

int helper_grp7(TCGCPU *cpu, const DecodedOp *op)
{
    switch (op->idx) {
    case OP_CLTS:
        require_cpl0(cpu);
        if (cpu->vm86)
            raise_exception_err(cpu, EXCP_GP, 0);
        cpu->cr0 &= ~(uint64_t)X86_CR0_TS;
        return H_NEXT_END;
    case OP_INVLPG:
        require_cpl0(cpu);
        if (cpu->vm86)
            raise_exception_err(cpu, EXCP_GP, 0);
        tlb_flush_page(cpu, seg_lin(cpu, op->seg, op_ea(cpu, op), 1, ACC_READ));
        return H_NEXT_END;
    case OP_SWAPGS: {
        require_cpl0(cpu);
        uint64_t t = cpu->seg[SEG_GS].base;
        cpu->seg[SEG_GS].base = cpu->kernel_gs_base;
        cpu->kernel_gs_base = t;
        return H_NEXT;
    }
    default:
        break;
    }
    bool wide = cpu->code64;
    switch (op->sub) {
    case 0: case 1: {   /* SGDT, SIDT */
        if (op->rm != NOREG)
            raise_exception(cpu, EXCP_UD);
        X86DescTable *t = op->sub == 0 ? &cpu->gdt : &cpu->idt;
        uint64_t lin = op_lin(cpu, op, wide ? 10 : 6, ACC_WRITE);
        lin_probe_write(cpu, lin, wide ? 10 : 6);
        lin_st(cpu, lin, 1, t->limit);
        if (wide)
            lin_st(cpu, lin + 2, 3, t->base);
        else
            lin_st(cpu, lin + 2, 2, op->sz == 1 ? t->base & 0xffffff : (uint32_t)t->base);
        return H_NEXT_END;
    }
    case 2: case 3: {   /* LGDT, LIDT */
        if (op->sub == 2 && op->rm != NOREG)
            return helper_xgetbv_xsetbv(cpu, op);
        if (op->rm != NOREG)
            raise_exception(cpu, EXCP_UD);
        if (cpu->vm86)
            raise_exception_err(cpu, EXCP_GP, 0);
        require_cpl0(cpu);
        uint64_t lin = op_lin(cpu, op, wide ? 10 : 6, ACC_READ);
        uint16_t limit = (uint16_t)lin_ld(cpu, lin, 1);
        uint64_t base = wide ? lin_ld(cpu, lin + 2, 3) : lin_ld(cpu, lin + 2, 2);
        if (!wide && op->sz == 1)
            base &= 0xffffff;
        if (wide && !canonical(base))
            raise_exception_err(cpu, EXCP_GP, 0);
        X86DescTable *t = op->sub == 2 ? &cpu->gdt : &cpu->idt;
        t->base = base;
        t->limit = limit;
        return H_NEXT_END;
    }
    case 4:     /* SMSW */
        if (op->rm != NOREG)
            reg_set(cpu, op->rm, op->sz, cpu->cr0 & size_mask[op->sz]);
        else
            rm_write(cpu, op, 1, cpu->cr0 & 0xffff);
        return H_NEXT_END;
    case 6: {   /* LMSW: PE can be set but not cleared */
        if (cpu->vm86)
            raise_exception_err(cpu, EXCP_GP, 0);
        require_cpl0(cpu);
        uint64_t v = rm_read(cpu, op, 1) & 0xf;
        uint64_t ncr0 = (cpu->cr0 & ~0xeull) | v | (cpu->cr0 & X86_CR0_PE);
        if (!cpu_write_cr0(cpu, ncr0))
            raise_exception_err(cpu, EXCP_GP, 0);
        return H_NEXT_END;
    }
    default:
        raise_exception(cpu, EXCP_UD);
    }
}

int helper_lar_lsl(TCGCPU *cpu, const DecodedOp *op)
{
    if (!cpu->pe || cpu->vm86)
        raise_exception(cpu, EXCP_UD);
    uint16_t sel = (uint16_t)rm_read(cpu, op, 1);
    uint32_t lo, hi;
    bool ok = false;
    uint64_t val = 0;
    if ((sel & ~3u) && desc_fetch(cpu, sel, &lo, &hi)) {
        uint16_t attr = (uint16_t)((hi >> 8) & 0xf0ff);
        unsigned dpl = SEGA_DPL(attr), type = SEGA_TYPE(attr);
        bool conf = (attr & SEGA_CODE) && (attr & SEGA_CONF_EXPD);
        bool type_ok;
        if (attr & SEGA_S)
            type_ok = true;
        else if (op->idx == OP_LAR)
            type_ok = type == 1 || type == 2 || type == 3 || type == 4 || type == 5 ||
                      type == 9 || type == 11 || type == 12;
        else
            type_ok = type == 1 || type == 2 || type == 3 || type == 9 || type == 11;
        if (cpu->lma && !(attr & SEGA_S) && (type == 1 || type == 3 || type == 4 || type == 5))
            type_ok = false;
        if (type_ok && (conf || (dpl >= cpu->cpl && dpl >= (sel & 3u)))) {
            ok = true;
            if (op->idx == OP_LAR) {
                val = hi & 0x00f0ff00u;
            } else {
                uint32_t lim = (lo & 0xffff) | (hi & 0xf0000);
                val = (hi & (1u << 23)) ? (lim << 12) | 0xfff : lim;
            }
        }
    }
    if (ok)
        reg_set(cpu, op->reg, op->sz, val);
    uint32_t f = cc_compute_all(cpu) & ~CC_Z;
    cc_set_flags(cpu, f | (ok ? CC_Z : 0));
    return H_NEXT;
}

/* ---- Flags ---- */
static bool iopl_sensitive_fault(TCGCPU *cpu)
{
    unsigned iopl = (cpu->eflags & FL_IOPL) >> 12;
    if (cpu->vm86)
        return iopl < 3;
    return cpu->pe && cpu->cpl > iopl;
}

/*
 * Where CLI and STI that may not touch IF change VIF instead (SDM 2A "CLI",
 * 2B "STI", their decision tables): "VME mode" is v8086 with CR4.VME = 1 (SDM 3A
 * §20.3.2), "PVI mode" protected mode at CPL 3 with CR4.PVI = 1 (SDM 3A
 * §20.4; compatibility and 64-bit mode included).  Only consulted once
 * IOPL < CPL (v8086: IOPL < 3).
 */
static bool virtual_if_mode(const TCGCPU *cpu)
{
    if (cpu->vm86)
        return cpu->cr4 & CR4_VME;
    return cpu->pe && cpu->cpl == 3 && (cpu->cr4 & CR4_PVI);
}

/* v8086 with IOPL < 3: PUSHF, POPF, IRET and INT n go to the monitor or, with CR4.VME, use VIF. */
static bool vm86_iopl_below_3(const TCGCPU *cpu)
{
    return cpu->vm86 && ((cpu->eflags & FL_IOPL) >> 12) < 3;
}

int helper_flagop(TCGCPU *cpu, const DecodedOp *op)
{
    uint32_t f;
    switch (op->sub) {
    case 0: f = cc_compute_all(cpu); cc_set_flags(cpu, f ^ CC_C); return H_NEXT;
    case 1: f = cc_compute_all(cpu); cc_set_flags(cpu, f & ~CC_C); return H_NEXT;
    case 2: f = cc_compute_all(cpu); cc_set_flags(cpu, f | CC_C); return H_NEXT;
    case 3:
        if (iopl_sensitive_fault(cpu)) {
            if (!virtual_if_mode(cpu))
                raise_exception_err(cpu, EXCP_GP, 0);
            cpu->eflags &= ~FL_VIF;     /* IF, and so hardware interrupts, unchanged */
            return H_NEXT;
        }
        cpu->eflags &= ~FL_IF;
        return H_NEXT;
    case 4:
        if (iopl_sensitive_fault(cpu)) {
            /*
             * A virtual interrupt is pending (VIP, set by the monitor): #GP(0)
             * so that the monitor delivers it (SDM 3A §20.3.2, §20.4).
             * No interrupt shadow: IF does not change.
             */
            if (!virtual_if_mode(cpu) || (cpu->eflags & FL_VIP))
                raise_exception_err(cpu, EXCP_GP, 0);
            cpu->eflags |= FL_VIF;
            return H_NEXT;
        }
        if (!(cpu->eflags & FL_IF))
            cpu->intr_shadow = true;    /* STI; HLT is race-free */
        cpu->eflags |= FL_IF;
        return H_NEXT_END;
    case 5: cpu->eflags &= ~FL_DF; return H_NEXT;
    default: cpu->eflags |= FL_DF; return H_NEXT;
    }
}

int helper_pushf(TCGCPU *cpu, const DecodedOp *op)
{
    uint32_t image = cpu_get_eflags(cpu) & ~(FL_VM | FL_RF);
    if (vm86_iopl_below_3(cpu)) {
        /*
         * SDM 2B "PUSHF": only the 16-bit form with CR4.VME runs; it pushes
         * VIF in IF's place and IOPL as 3, so the 8086 program sees the flags
         * of a machine it owns.  PUSHFD, or no VME, traps to the monitor.
         */
        if (!(cpu->cr4 & CR4_VME) || op->sz != 1)
            raise_exception_err(cpu, EXCP_GP, 0);
        image = (image & ~FL_IF) | FL_IOPL | ((cpu->eflags & FL_VIF) ? FL_IF : 0);
    }
    cpu_push(cpu, op->sz, image);
    return H_NEXT;
}

/*
 * POPF in v8086 with IOPL < 3 and CR4.VME (SDM 2B "POPF", 16-bit operand
 * only): the popped IF goes to VIF, IF and IOPL stay; #GP(0), with nothing
 * popped, when the image has TF = 1 or when it sets IF while VIP = 1 (a
 * virtual interrupt is pending: the monitor delivers it, SDM 3A §20.3.2).
 */
static int popf_vme(TCGCPU *cpu)
{
    uint64_t sp = cpu->regs[R_ESP] & sp_mask(cpu);
    uint32_t v = (uint32_t)seg_ld(cpu, SEG_SS, sp, 1);
    if ((v & FL_TF) || ((v & FL_IF) && (cpu->eflags & FL_VIP)))
        raise_exception_err(cpu, EXCP_GP, 0);
    sp_set(cpu, sp + 2);
    cpu_set_eflags(cpu, v, CC_ALL | FL_TF | FL_DF | FL_NT);
    cpu->eflags = (cpu->eflags & ~(FL_VIF | FL_RF)) | ((v & FL_IF) ? FL_VIF : 0);
    return H_NEXT_END;
}

int helper_popf(TCGCPU *cpu, const DecodedOp *op)
{
    if (vm86_iopl_below_3(cpu)) {
        if (!(cpu->cr4 & CR4_VME) || op->sz != 1)
            raise_exception_err(cpu, EXCP_GP, 0);
        return popf_vme(cpu);
    }
    uint32_t v = (uint32_t)cpu_pop(cpu, op->sz);
    uint32_t mask = CC_ALL | FL_TF | FL_DF | FL_NT | FL_AC | FL_ID;
    unsigned iopl = (cpu->eflags & FL_IOPL) >> 12;
    if (!cpu->pe || (cpu->cpl == 0 && !cpu->vm86))
        mask |= FL_IOPL | FL_IF;
    else if (cpu->cpl <= iopl)
        mask |= FL_IF;
    if (op->sz == 1)
        mask &= 0xffff;
    cpu_set_eflags(cpu, v, mask);
    cpu->eflags &= ~FL_RF;
    return H_NEXT_END;
}

int helper_hlt(TCGCPU *cpu, const DecodedOp *op)
{
    (void)op;
    if (cpu->pe && cpu->cpl != 0)
        raise_exception_err(cpu, EXCP_GP, 0);
    cpu->halted = true;
    return H_NEXT_END;
}

/* ---- Reset and state conversion ---- */
static void seg_reset(SegCache *sc, uint16_t sel, uint64_t base, uint16_t attr)
{
    sc->sel = sel;
    sc->base = base;
    sc->limit = 0xffff;
    sc->attr = attr;
    sc->unusable = 0;
}

/* Power-on state (SDM 3A §9.1.1 Table 9-1). */
/*
 * What RESET and INIT both set (SDM 3A Table 10-1, "states following
 * power-up, reset, or INIT"); INIT leaves the x87/SSE state, XCR0, the
 * MTRRs, the machine-check banks and the TSC as they were.
 */
static void cpu_reset_common(TCGCPU *cpu, bool bsp)
{
    memset(cpu->regs, 0, sizeof(cpu->regs));
    cpu->regs[R_EDX] = tcg_model.signature;     /* = CPUID.01H:EAX (SDM 3A §9.1.4) */
    cpu->rip = 0xfff0;
    cpu->eflags = X86_RFLAGS_FIXED;
    cc_set_flags(cpu, 0);
    seg_reset(&cpu->seg[SEG_CS], 0xf000, 0xffff0000u, SEGA_P | SEGA_S | SEGA_CODE | SEGA_RW | SEGA_ACCESSED);
    for (int s = 0; s < SEG__COUNT; s++)
        if (s != SEG_CS)
            seg_reset(&cpu->seg[s], 0, 0, SEGA_P | SEGA_S | SEGA_RW | SEGA_ACCESSED);
    seg_reset(&cpu->ldt, 0, 0, SEGA_P | 2);
    seg_reset(&cpu->tr, 0, 0, SEGA_P | 11);
    cpu->gdt.base = cpu->idt.base = 0;
    cpu->gdt.limit = cpu->idt.limit = 0xffff;
    cpu->cr0 = X86_CR0_ET | X86_CR0_CD | X86_CR0_NW;
    cpu->cr2 = cpu->cr3 = cpu->cr4 = cpu->cr8 = 0;
    cpu->efer = 0;
    memset(cpu->dr, 0, sizeof(cpu->dr));
    cpu->dr[6] = 0xffff0ff0u;
    cpu->dr[7] = 0x400;
    cpu_debug_update(cpu);
    cpu->apic_base = 0xfee00000u | 0x800 | (bsp ? 0x100 : 0);
    cpu->star = cpu->lstar = cpu->cstar = cpu->fmask = cpu->kernel_gs_base = cpu->tsc_aux = 0;
    cpu->sysenter_cs = cpu->sysenter_esp = cpu->sysenter_eip = 0;
    cpu->pat = 0x0007040600070406ull;
    cpu->misc_enable = 1;
    cpu->cpl = 0;
    cpu->halted = !bsp;
    cpu->intr_shadow = false;
    cpu->nmi_pending = cpu->nmi_blocked = false;
    cpu->excp_delivering = -1;
    cpu->exit_request = 0;
    cpu_update_hflags(cpu);
    tlb_flush(cpu, true);
}

void cpu_reset_state(TCGCPU *cpu, bool bsp)
{
    cpu_reset_common(cpu, bsp);
    cpu->xcr0 = XSTATE_X87;         /* SDM 1 §13.3: XCR0 is 1 after reset */
    mtrr_mca_reset(cpu);
    cpu->tsc_offset = -(int64_t)host_ns();
    fpu_reset(cpu, true);
}

void cpu_init_state(TCGCPU *cpu)
{
    cpu_reset_common(cpu, false);
}

static void seg_to_x86(const SegCache *sc, X86Segment *x)
{
    x->selector = sc->sel;
    x->base = sc->base;
    x->limit = sc->limit;
    x->type = SEGA_TYPE(sc->attr);
    x->s = !!(sc->attr & SEGA_S);
    x->dpl = (uint8_t)SEGA_DPL(sc->attr);
    x->present = !!(sc->attr & SEGA_P);
    x->avl = !!(sc->attr & 0x1000);
    x->l = !!(sc->attr & SEGA_L);
    x->db = !!(sc->attr & SEGA_DB);
    x->g = !!(sc->attr & SEGA_G);
    x->unusable = sc->unusable;
}

static void seg_from_x86(SegCache *sc, const X86Segment *x)
{
    sc->sel = x->selector;
    sc->base = x->base;
    sc->limit = x->limit;
    sc->attr = (uint16_t)((x->type & 0xf) | (x->s ? SEGA_S : 0) | ((x->dpl & 3u) << 5) |
                          (x->present ? SEGA_P : 0) | (x->avl ? 0x1000 : 0) | (x->l ? SEGA_L : 0) |
                          (x->db ? SEGA_DB : 0) | (x->g ? SEGA_G : 0));
    sc->unusable = x->unusable;
}

void cpu_to_x86_state(const TCGCPU *cpu, X86CPUState *s)
{
    memset(s, 0, sizeof(*s));
    memcpy(s->regs, cpu->regs, sizeof(s->regs));
    s->rip = cpu->rip;
    s->rflags = cpu_get_eflags(cpu);
    for (int i = 0; i < SEG__COUNT; i++)
        seg_to_x86(&cpu->seg[i], &s->seg[i]);
    seg_to_x86(&cpu->ldt, &s->ldt);
    seg_to_x86(&cpu->tr, &s->tr);
    s->gdt = cpu->gdt;
    s->idt = cpu->idt;
    s->cr0 = cpu->cr0;
    s->cr2 = cpu->cr2;
    s->cr3 = cpu->cr3;
    s->cr4 = cpu->cr4;
    s->cr8 = cpu->cr8;
    s->efer = cpu->efer;
    s->xcr0 = cpu->xcr0;
    memcpy(s->dr, cpu->dr, sizeof(s->dr));
    s->apic_base = cpu->apic_base;
}

void cpu_from_x86_state(TCGCPU *cpu, const X86CPUState *s)
{
    memcpy(cpu->regs, s->regs, sizeof(cpu->regs));
    cpu->rip = s->rip;
    for (int i = 0; i < SEG__COUNT; i++)
        seg_from_x86(&cpu->seg[i], &s->seg[i]);
    seg_from_x86(&cpu->ldt, &s->ldt);
    seg_from_x86(&cpu->tr, &s->tr);
    cpu->gdt = s->gdt;
    cpu->idt = s->idt;
    cpu->cr0 = s->cr0 | X86_CR0_ET;
    cpu->cr2 = s->cr2;
    cpu->cr3 = s->cr3;
    cpu->cr4 = s->cr4;
    cpu->cr8 = s->cr8;
    cpu->efer = s->efer;
    if ((cpu->efer & X86_EFER_LME) && (cpu->cr0 & X86_CR0_PG))
        cpu->efer |= X86_EFER_LMA;
    /* XCR0 = 0 means "not given" (KVM's registers, hand-built states): keep ours. */
    if (s->xcr0 & XSTATE_X87)
        cpu->xcr0 = s->xcr0 & XCR0_SUPPORTED;
    memcpy(cpu->dr, s->dr, sizeof(cpu->dr));
    /* DR6/DR7 bits that read as fixed values keep them (SDM 3A §17.2.3, §17.2.4). */
    cpu->dr[6] = (cpu->dr[6] & 0xe00f) | DR6_FIXED;
    cpu->dr[7] = (cpu->dr[7] & 0xffff23ffu) | DR7_FIXED;
    cpu_debug_update(cpu);
    cpu->apic_base = s->apic_base;
    cpu->eflags = (uint32_t)s->rflags & ~CC_ALL;
    cc_set_flags(cpu, (uint32_t)s->rflags);
    cpu_set_eflags(cpu, (uint32_t)s->rflags, 0xffffffffu);
    /* CPL is SS.DPL in protected mode (as KVM reports it). */
    bool pe = cpu->cr0 & X86_CR0_PE;
    if (!pe)
        cpu->cpl = 0;
    else if (s->rflags & FL_VM)
        cpu->cpl = 3;
    else
        cpu->cpl = (uint8_t)s->seg[SEG_SS].dpl;
    cpu_update_hflags(cpu);
    if ((cpu->cr0 & X86_CR0_PG) && (cpu->cr4 & X86_CR4_PAE) && !cpu->lma)
        cpu_load_pdptes(cpu, cpu->cr3);
    tlb_flush(cpu, true);
}

void cpu_dump(TCGCPU *cpu)
{
    X86CPUState s;
    cpu_to_x86_state(cpu, &s);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    x86_cpu_state_dump(&s, f);
    fclose(f);
    log_printf("%s", buf);
    free(buf);
}
