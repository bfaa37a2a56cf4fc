/*
 * Memory-type range registers and machine-check architecture MSRs of the
 * software CPU.
 *
 * MTRRs (SDM 3A §12.11 "Memory Type Range Registers"): firmware programs
 * them and Linux reads them back to decide whether PAT may be used; memory
 * types do not change what an emulated access does, so they are storage
 * with the architectural write checks (#GP on reserved bits and on
 * undefined memory types).
 *
 * MCA (SDM 3B ch. 16 "Machine-Check Architecture"): MCG_CAP announces
 * MCA_BANKS banks; software enables banks (MCi_CTL) and clears their status
 * registers.  No machine check is ever signalled, so every status reads 0
 * unless the guest wrote one (writes of 0 only, as with MCG_CAP.MCG_SER_P
 * and MCG_CAP.MCG_CMCI_P clear).
 *
 * Register table:
 *   0x0fe        IA32_MTRRCAP          RO  VCNT=8, FIX, WC
 *   0x179        IA32_MCG_CAP          RO  MCA_BANKS banks, MCG_CTL_P
 *   0x17a        IA32_MCG_STATUS       RW  (0 only: no machine check in progress)
 *   0x17b        IA32_MCG_CTL          RW  all ones or all zeros
 *   0x200-0x20f  IA32_MTRR_PHYSBASEn / PHYSMASKn
 *   0x250        IA32_MTRR_FIX64K_00000
 *   0x258-0x259  IA32_MTRR_FIX16K_80000 / _A0000
 *   0x268-0x26f  IA32_MTRR_FIX4K_C0000 ... _F8000
 *   0x2ff        IA32_MTRR_DEF_TYPE
 *   0x400+4i..   IA32_MCi_CTL / STATUS / ADDR / MISC, i < MCA_BANKS
 */
#include <string.h>

#include "accel/tcg/cpu.h"
#include "accel/tcg/ops.h"
#include "kestrel/cpu-model.h"

#define MSR_MTRRCAP        0x0fe
#define MSR_MCG_CAP        0x179
#define MSR_MCG_STATUS     0x17a
#define MSR_MCG_CTL        0x17b
#define MSR_MTRR_PHYS0     0x200
#define MSR_MTRR_FIX64K    0x250
#define MSR_MTRR_FIX16K    0x258
#define MSR_MTRR_FIX4K     0x268
#define MSR_MTRR_DEF_TYPE  0x2ff
#define MSR_MC0_CTL        0x400

#define MTRRCAP_VALUE   (MTRR_VAR_COUNT | (1u << 8) | (1u << 10))    /* VCNT, FIX, WC */
#define MCG_CTL_P       (1u << 8)
#define MTRR_DEF_E      (1u << 11)
#define MTRR_DEF_FE     (1u << 10)
#define MTRR_MASK_V     (1u << 11)
/* Physical-address bits above MAXPHYADDR (CPUID 0x80000008: 40 bits) are reserved. */
#define PHYS_RSVD       (~0ull << 40)

/* Types 0 UC, 1 WC, 4 WT, 5 WP, 6 WB are defined; 2, 3 and 7..255 are not. */
static bool mtrr_type_valid(uint64_t t)
{
    return t < 7 && t != 2 && t != 3;
}

/* Index into cpu->mtrr.fixed for a fixed-range MSR, or -1. */
static int mtrr_fixed_index(uint32_t msr)
{
    if (msr == MSR_MTRR_FIX64K)
        return 0;
    if (msr >= MSR_MTRR_FIX16K && msr <= MSR_MTRR_FIX16K + 1)
        return 1 + (int)(msr - MSR_MTRR_FIX16K);
    if (msr >= MSR_MTRR_FIX4K && msr <= MSR_MTRR_FIX4K + 7)
        return 3 + (int)(msr - MSR_MTRR_FIX4K);
    return -1;
}

static bool mtrr_present(void)
{
    return tcg_cpuid_feature(FEAT_1_EDX, CPUID_1_EDX_MTRR);
}

static bool mca_present(void)
{
    return tcg_cpuid_feature(FEAT_1_EDX, CPUID_1_EDX_MCA);
}

/* Power-up and RESET values (SDM 3A Table 10-1); INIT leaves these alone. */
void mtrr_mca_reset(TCGCPU *cpu)
{
    memset(&cpu->mtrr, 0, sizeof(cpu->mtrr));
    memset(&cpu->mca, 0, sizeof(cpu->mca));
}

/*
 * The MTRRs firmware would have programmed (direct boot, include/kestrel/x86.h):
 * PHYSMASK bits at and above MAXPHYADDR are dropped, as firmware drops them
 * after reading CPUID 80000008H.  Nothing is loaded into a CPU model without
 * MTRRs, which firmware would leave alone too (CPUID.01H:EDX.MTRR clear).
 */
_Static_assert(sizeof(((TCGCPU *)0)->mtrr.fixed) == sizeof(((X86MTRRState *)0)->fixed),
               "the same eleven fixed-range MSRs");
void mtrr_load(TCGCPU *cpu, const X86MTRRState *s)
{
    if (!mtrr_present())
        return;
    cpu->mtrr.def_type = s->def_type;
    memcpy(cpu->mtrr.fixed, s->fixed, sizeof(cpu->mtrr.fixed));
    for (unsigned i = 0; i < 2 * MTRR_VAR_COUNT && i < 2 * X86_MTRR_VAR_COUNT; i++)
        cpu->mtrr.var[i] = (i & 1) ? s->var[i] & ~PHYS_RSVD : s->var[i];
}

bool mtrr_mca_rdmsr(TCGCPU *cpu, uint32_t msr, uint64_t *v)
{
    int fx = mtrr_fixed_index(msr);
    if (mtrr_present()) {
        if (msr == MSR_MTRRCAP) {
            *v = MTRRCAP_VALUE;
            return true;
        }
        if (msr == MSR_MTRR_DEF_TYPE) {
            *v = cpu->mtrr.def_type;
            return true;
        }
        if (msr >= MSR_MTRR_PHYS0 && msr < MSR_MTRR_PHYS0 + 2 * MTRR_VAR_COUNT) {
            *v = cpu->mtrr.var[msr - MSR_MTRR_PHYS0];
            return true;
        }
        if (fx >= 0) {
            *v = cpu->mtrr.fixed[fx];
            return true;
        }
    }
    if (mca_present()) {
        switch (msr) {
        case MSR_MCG_CAP: *v = MCA_BANKS | MCG_CTL_P; return true;
        case MSR_MCG_STATUS: *v = cpu->mca.mcg_status; return true;
        case MSR_MCG_CTL: *v = cpu->mca.mcg_ctl; return true;
        default:
            if (msr >= MSR_MC0_CTL && msr < MSR_MC0_CTL + 4 * MCA_BANKS) {
                *v = cpu->mca.bank[(msr - MSR_MC0_CTL) / 4][(msr - MSR_MC0_CTL) % 4];
                return true;
            }
        }
    }
    return false;
}

/* 1 written, 0 not an MTRR/MCA MSR, -1 #GP(0). */
int mtrr_mca_wrmsr(TCGCPU *cpu, uint32_t msr, uint64_t v)
{
    int fx = mtrr_fixed_index(msr);
    if (mtrr_present()) {
        if (msr == MSR_MTRRCAP)
            return -1;                                  /* read-only */
        if (msr == MSR_MTRR_DEF_TYPE) {
            if ((v & ~(uint64_t)(0xff | MTRR_DEF_FE | MTRR_DEF_E)) || !mtrr_type_valid(v & 0xff))
                return -1;
            cpu->mtrr.def_type = v;
            return 1;
        }
        if (msr >= MSR_MTRR_PHYS0 && msr < MSR_MTRR_PHYS0 + 2 * MTRR_VAR_COUNT) {
            bool is_mask = (msr - MSR_MTRR_PHYS0) & 1;
            if (is_mask ? (v & (PHYS_RSVD | 0x7ff)) : ((v & (PHYS_RSVD | 0xf00)) || !mtrr_type_valid(v & 0xff)))
                return -1;
            cpu->mtrr.var[msr - MSR_MTRR_PHYS0] = v;
            return 1;
        }
        if (fx >= 0) {
            for (int i = 0; i < 8; i++)
                if (!mtrr_type_valid((v >> (8 * i)) & 0xff))
                    return -1;
            cpu->mtrr.fixed[fx] = v;
            return 1;
        }
    }
    if (mca_present()) {
        switch (msr) {
        case MSR_MCG_CAP:
            return -1;
        case MSR_MCG_STATUS:
            if (v)
                return -1;
            cpu->mca.mcg_status = v;
            return 1;
        case MSR_MCG_CTL:
            /* SDM 3B §16.3.1.3: all ones enables, all zeros disables; else undefined. */
            if (v && v != ~0ull)
                return -1;
            cpu->mca.mcg_ctl = v;
            return 1;
        default:
            if (msr >= MSR_MC0_CTL && msr < MSR_MC0_CTL + 4 * MCA_BANKS) {
                unsigned bank = (msr - MSR_MC0_CTL) / 4, reg = (msr - MSR_MC0_CTL) % 4;
                /* STATUS/ADDR/MISC: only 0 may be written (no MCG_SER_P, SDM 3B §16.3.2.2). */
                if (reg != 0 && v)
                    return -1;
                cpu->mca.bank[bank][reg] = v;
                return 1;
            }
        }
    }
    return 0;
}
