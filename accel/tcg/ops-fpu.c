/*
 * The x87 FPU of the software CPU and the SSE state instructions
 * (FXSAVE/FXRSTOR, LDMXCSR/STMXCSR, XSAVE/XRSTOR/XSAVEOPT).
 *
 * Sources: SDM 1 ch. 8 (x87 environment, stack faults §8.5.1.1, exception
 * delivery §8.6-8.7), SDM 2A/2B per-instruction pages (encodings in the
 * D8-DF opcode map, SDM 2D App. A.4), SDM 3A §2.5 (CR0.MP/EM/TS/NE,
 * CR4.OSFXSR), Table 12-8 (#NM/#UD/#XM for SSE).  Arithmetic is the
 * exact 80-bit soft-float of softfloat80.c.
 *
 * Exception model: an unmasked exception sets FSW.ES/B and stays pending;
 * the next *waiting* x87 instruction (everything except FNINIT, FNCLEX,
 * FNSTSW, FNSTCW, FNSTENV, FNSAVE) or WAIT raises #MF when CR0.NE = 1.
 * With CR0.NE = 0 a PC signals FERR# -> IRQ13; that line is not wired
 * yet, so the instruction simply proceeds (logged under -d unimp).
 * Pre-computation exceptions (IE, DE, ZE) that are unmasked leave the
 * destination and TOP unchanged; unmasked OE/UE deliver the re-biased
 * result to a register and store nothing to memory.
 *
 * Transcendentals are in fpu-trans.c (accuracy documented there).
 * FPREM/FPREM1 partial remainders (exponent difference >= 64) reduce by
 * 32 + d % 32 bits, which may differ from a given CPU's choice.
 *
 * Where the SDM is silent or says "undefined", behaviour follows the host
 * used as the oracle of tests/unit/test-tcg-diff.c (an AMD EPYC): DE is
 * not reported together with IE or ZE, nor by FST m32/m64 and FIST; FXAM
 * of an empty register reports "empty" without a stack fault; compares
 * write their condition codes even when the exception is unmasked; FPREM
 * on NaN/invalid keeps C0/C3 and clears C1/C2.  The SDM says FCOMI clears
 * C1; the AMD host leaves it, Kestrel follows the SDM (the test ignores it).
 */
#include "accel/tcg/ops.h"
#include "kestrel/log.h"

/* ---------------- register stack ---------------- */
static inline unsigned fpu_top(const TCGCPU *cpu) { return (cpu->fsw >> FSW_TOP_SHIFT) & 7; }
static inline void fpu_set_top(TCGCPU *cpu, unsigned t)
{
    cpu->fsw = (uint16_t)((cpu->fsw & ~FSW_TOP) | ((t & 7) << FSW_TOP_SHIFT));
}
static inline unsigned phys(const TCGCPU *cpu, unsigned i) { return (fpu_top(cpu) + i) & 7; }
static inline bool st_empty(const TCGCPU *cpu, unsigned i) { return !(cpu->ftw_valid & (1u << phys(cpu, i))); }
static inline F80 st_get(const TCGCPU *cpu, unsigned i) { return cpu->fpr[phys(cpu, i)]; }
static inline void st_set(TCGCPU *cpu, unsigned i, F80 v)
{
    unsigned p = phys(cpu, i);
    cpu->fpr[p] = v;
    cpu->ftw_valid |= (uint8_t)(1u << p);
}
static void fpu_pop(TCGCPU *cpu)
{
    cpu->ftw_valid &= (uint8_t)~(1u << fpu_top(cpu));
    fpu_set_top(cpu, fpu_top(cpu) + 1);
}
static void fpu_push(TCGCPU *cpu, F80 v)
{
    fpu_set_top(cpu, fpu_top(cpu) - 1);
    st_set(cpu, 0, v);
}

static void set_c(TCGCPU *cpu, unsigned c3, unsigned c2, unsigned c1, unsigned c0)
{
    cpu->fsw = (uint16_t)((cpu->fsw & ~(FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)) |
                          (c0 ? FSW_C0 : 0) | (c1 ? FSW_C1 : 0) | (c2 ? FSW_C2 : 0) | (c3 ? FSW_C3 : 0));
}
static void set_c1(TCGCPU *cpu, bool v)
{
    cpu->fsw = (uint16_t)((cpu->fsw & ~FSW_C1) | (v ? FSW_C1 : 0));
}

/* ES and B summarise the unmasked exception flags (SDM 1 §8.1.3.1). */
static void fpu_update_es(TCGCPU *cpu)
{
    if (cpu->fsw & ~cpu->fcw & FPE_ALL)
        cpu->fsw |= FSW_ES | FSW_B;
    else
        cpu->fsw &= (uint16_t)~(FSW_ES | FSW_B);
}

/*
 * Record the exception flags of an operation.  Returns false when an
 * unmasked pre-computation exception (IE, DE, ZE) suppresses the result.
 */
static bool fpu_flags(TCGCPU *cpu, unsigned fl)
{
    if (fl & (FPE_IE | FPE_ZE))
        fl &= ~FPE_DE;      /* invalid / x÷0: no denormal report (as hardware does) */
    unsigned pre = fl & (FPE_IE | FPE_DE | FPE_ZE) & ~cpu->fcw;
    if (pre) {
        /* Only the highest-priority pre-computation exception is reported. */
        unsigned one = (pre & FPE_IE) ? FPE_IE : (pre & FPE_DE) ? FPE_DE : FPE_ZE;
        cpu->fsw |= (uint16_t)(one | ((fl & FPE_IE) && one != FPE_IE ? FPE_IE : 0));
        fpu_update_es(cpu);
        return false;
    }
    cpu->fsw |= (uint16_t)fl;
    fpu_update_es(cpu);
    return true;
}

/* Stack underflow/overflow (SDM 1 §8.5.1.1): IE + SF, C1 = overflow.  Returns
 * true when masked (the caller stores the real indefinite). */
static bool stack_fault(TCGCPU *cpu, bool overflow)
{
    cpu->fsw |= FPE_IE | FSW_SF;
    set_c1(cpu, overflow);
    fpu_update_es(cpu);
    return cpu->fcw & FPE_IE;
}

static SFStatus sf_init(const TCGCPU *cpu, bool pc)
{
    SFStatus s;
    memset(&s, 0, sizeof(s));
    s.rc = (cpu->fcw >> 10) & 3;
    static const uint8_t pcbits[4] = { 24, 64, 53, 64 };   /* PC 01b is reserved */
    s.prec = pc ? pcbits[(cpu->fcw >> 8) & 3] : 64;
    s.masks = (uint8_t)(cpu->fcw & FPE_ALL);
    s.bias_adjust = true;
    return s;
}

/* ---------------- memory operands ---------------- */
static uint64_t mem_ld(TCGCPU *cpu, uint64_t lin, int sz) { return lin_ld(cpu, lin, sz); }

static F80 ld_m80(TCGCPU *cpu, uint64_t lin)
{
    F80 v;
    v.sig = lin_ld(cpu, lin, 3);
    v.se = (uint16_t)lin_ld(cpu, lin + 8, 1);
    return v;
}

static void st_m80(TCGCPU *cpu, uint64_t lin, F80 v)
{
    lin_probe_write(cpu, lin, 10);
    lin_st(cpu, lin, 3, v.sig);
    lin_st(cpu, lin + 8, 1, v.se);
}

/* ---------------- CR0 checks and pending exceptions ---------------- */
static void fpu_check_pending(TCGCPU *cpu)
{
    if (!(cpu->fsw & FSW_ES))
        return;
    if (cpu->cr0 & X86_CR0_NE)
        raise_exception(cpu, EXCP_MF);
    LOG(LOG_UNIMP, "tcg: x87 exception pending with CR0.NE=0 (FERR#/IRQ13 not wired)\n");
}

/* ---------------- tag word, environment ---------------- */
static unsigned tag_of(const TCGCPU *cpu, unsigned p)
{
    if (!(cpu->ftw_valid & (1u << p)))
        return 3;
    switch (f80_class(cpu->fpr[p])) {
    case FC_ZERO: return 1;
    case FC_NORMAL: return 0;
    default: return 2;
    }
}

static uint16_t fpu_full_tag(const TCGCPU *cpu)
{
    uint16_t t = 0;
    for (unsigned p = 0; p < 8; p++)
        t |= (uint16_t)(tag_of(cpu, p) << (2 * p));
    return t;
}

static void fpu_load_tag(TCGCPU *cpu, uint16_t t)
{
    cpu->ftw_valid = 0;
    for (unsigned p = 0; p < 8; p++)
        if (((t >> (2 * p)) & 3) != 3)
            cpu->ftw_valid |= (uint8_t)(1u << p);
}

void fpu_reset(TCGCPU *cpu, bool power_on)
{
    /* FNINIT: FCW 037Fh, FSW 0, all empty (SDM 1 §8.1.5); power-on FCW is 0040h. */
    cpu->fcw = power_on ? 0x0040 : 0x037f;
    cpu->fsw = 0;
    cpu->ftw_valid = 0;
    cpu->fop = cpu->fcs = cpu->fds = 0;
    cpu->fip = cpu->fdp = 0;
    if (power_on) {
        memset(cpu->fpr, 0, sizeof(cpu->fpr));
        memset(cpu->xmm, 0, sizeof(cpu->xmm));
        cpu->mxcsr = 0x1f80;
    }
}

/*
 * FNSTENV/FLDENV image (SDM 1 Figs. 8-9 to 8-12): 14 bytes with a 16-bit
 * operand size, 28 with 32 bits.  Protected mode stores FIP/FDP offsets and
 * the selectors; real and virtual-8086 mode store 20/32-bit linear
 * addresses split across two fields, with FOP next to the upper FIP bits.
 */
static unsigned env_size(const DecodedOp *op) { return op->sz == 1 ? 14 : 28; }
static bool env_real(const TCGCPU *cpu) { return !cpu->pe || cpu->vm86; }

static void fpu_store_env(TCGCPU *cpu, const DecodedOp *op, uint64_t lin)
{
    lin_probe_write(cpu, lin, env_size(op));
    uint32_t fip = (uint32_t)cpu->fip, fdp = (uint32_t)cpu->fdp;
    uint32_t fop = cpu->fop & 0x7ffu;
    if (op->sz == 1) {
        lin_st(cpu, lin + 0, 1, cpu->fcw);
        lin_st(cpu, lin + 2, 1, cpu->fsw);
        lin_st(cpu, lin + 4, 1, fpu_full_tag(cpu));
        lin_st(cpu, lin + 6, 1, fip);
        if (env_real(cpu)) {
            lin_st(cpu, lin + 8, 1, ((fip >> 16) << 12) | fop);
            lin_st(cpu, lin + 10, 1, fdp);
            lin_st(cpu, lin + 12, 1, (fdp >> 16) << 12);
        } else {
            lin_st(cpu, lin + 8, 1, cpu->fcs);
            lin_st(cpu, lin + 10, 1, fdp);
            lin_st(cpu, lin + 12, 1, cpu->fds);
        }
    } else {
        lin_st(cpu, lin + 0, 2, 0xffff0000u | cpu->fcw);
        lin_st(cpu, lin + 4, 2, 0xffff0000u | cpu->fsw);
        lin_st(cpu, lin + 8, 2, 0xffff0000u | fpu_full_tag(cpu));
        if (env_real(cpu)) {
            lin_st(cpu, lin + 12, 2, 0xffff0000u | (fip & 0xffff));
            lin_st(cpu, lin + 16, 2, ((fip >> 16) << 12) | fop);
            lin_st(cpu, lin + 20, 2, 0xffff0000u | (fdp & 0xffff));
            lin_st(cpu, lin + 24, 2, (fdp >> 16) << 12);
        } else {
            lin_st(cpu, lin + 12, 2, fip);
            lin_st(cpu, lin + 16, 2, cpu->fcs | (fop << 16));
            lin_st(cpu, lin + 20, 2, fdp);
            lin_st(cpu, lin + 24, 2, 0xffff0000u | cpu->fds);
        }
    }
}

static void fpu_load_env(TCGCPU *cpu, const DecodedOp *op, uint64_t lin)
{
    uint16_t fcw, fsw, ftw;
    bool real = env_real(cpu);
    if (op->sz == 1) {
        fcw = (uint16_t)mem_ld(cpu, lin, 1);
        fsw = (uint16_t)mem_ld(cpu, lin + 2, 1);
        ftw = (uint16_t)mem_ld(cpu, lin + 4, 1);
        uint32_t ip = (uint32_t)mem_ld(cpu, lin + 6, 1), w8 = (uint32_t)mem_ld(cpu, lin + 8, 1);
        uint32_t dp = (uint32_t)mem_ld(cpu, lin + 10, 1), w12 = (uint32_t)mem_ld(cpu, lin + 12, 1);
        if (real) {
            cpu->fip = ip | ((w8 >> 12) << 16);
            cpu->fop = (uint16_t)(w8 & 0x7ff);
            cpu->fdp = dp | ((w12 >> 12) << 16);
        } else {
            cpu->fip = ip;
            cpu->fcs = (uint16_t)w8;
            cpu->fdp = dp;
            cpu->fds = (uint16_t)w12;
        }
    } else {
        fcw = (uint16_t)mem_ld(cpu, lin, 1);
        fsw = (uint16_t)mem_ld(cpu, lin + 4, 1);
        ftw = (uint16_t)mem_ld(cpu, lin + 8, 1);
        uint32_t ip = (uint32_t)mem_ld(cpu, lin + 12, 2), w16 = (uint32_t)mem_ld(cpu, lin + 16, 2);
        uint32_t dp = (uint32_t)mem_ld(cpu, lin + 20, 2), w24 = (uint32_t)mem_ld(cpu, lin + 24, 2);
        if (real) {
            cpu->fip = (ip & 0xffff) | ((w16 >> 12) << 16);
            cpu->fop = (uint16_t)(w16 & 0x7ff);
            cpu->fdp = (dp & 0xffff) | ((w24 >> 12) << 16);
        } else {
            cpu->fip = ip;
            cpu->fcs = (uint16_t)w16;
            cpu->fop = (uint16_t)((w16 >> 16) & 0x7ff);
            cpu->fdp = dp;
            cpu->fds = (uint16_t)w24;
        }
    }
    cpu->fcw = (uint16_t)((fcw & 0x1f3f) | 0x40);
    cpu->fsw = fsw;
    fpu_load_tag(cpu, ftw);
}

/*
 * ---------------- FXSAVE / FXRSTOR (SDM 2A "FXSAVE", Table 3-53/3-56) ----------------
 * The 512-byte legacy image is written and read in three pieces because
 * XSAVE/XRSTOR (below) use the same layout for their legacy region but
 * move the pieces independently (SDM 1 §13.4.1, §13.5.1-13.5.2): the x87
 * state (bytes 0-23 less 24-31, and 32-159), MXCSR with MXCSR_MASK
 * (24-31), and the XMM registers (160-415; XMM8-15 only in 64-bit mode).
 */
static void fx_store_x87(TCGCPU *cpu, uint64_t lin, bool w64)
{
    lin_st(cpu, lin + 0, 1, cpu->fcw);
    lin_st(cpu, lin + 2, 1, cpu->fsw);
    lin_st(cpu, lin + 4, 1, cpu->ftw_valid);    /* byte 5 reserved: written 0 */
    lin_st(cpu, lin + 6, 1, cpu->fop);
    if (w64) {
        lin_st(cpu, lin + 8, 3, cpu->fip);
        lin_st(cpu, lin + 16, 3, cpu->fdp);
    } else {
        lin_st(cpu, lin + 8, 2, (uint32_t)cpu->fip);
        lin_st(cpu, lin + 12, 2, cpu->fcs);
        lin_st(cpu, lin + 16, 2, (uint32_t)cpu->fdp);
        lin_st(cpu, lin + 20, 2, cpu->fds);
    }
    for (unsigned i = 0; i < 8; i++) {
        F80 v = st_get(cpu, i);
        lin_st(cpu, lin + 32 + 16 * i, 3, v.sig);
        lin_st(cpu, lin + 40 + 16 * i, 3, v.se);   /* upper 6 bytes reserved: 0 */
    }
}

static void fx_store_mxcsr(TCGCPU *cpu, uint64_t lin)
{
    lin_st(cpu, lin + 24, 2, cpu->mxcsr);
    lin_st(cpu, lin + 28, 2, MXCSR_MASK_SUPPORTED);
}

static unsigned fx_xmm_count(const TCGCPU *cpu) { return cpu->code64 ? 16 : 8; }

static void fx_store_xmm(TCGCPU *cpu, uint64_t lin)
{
    for (unsigned i = 0; i < fx_xmm_count(cpu); i++) {
        lin_st(cpu, lin + 160 + 16 * i, 3, cpu->xmm[i].q[0]);
        lin_st(cpu, lin + 168 + 16 * i, 3, cpu->xmm[i].q[1]);
    }
}

/* Read the legacy image into img so that a fault leaves the CPU state untouched. */
static void fx_read_image(TCGCPU *cpu, uint64_t lin, uint8_t img[512])
{
    for (unsigned i = 0; i < 512; i += 8)
        st64_le(img + i, mem_ld(cpu, lin + i, 3));
}

static void fx_load_x87(TCGCPU *cpu, const uint8_t *img, bool w64)
{
    cpu->fcw = (uint16_t)((ld16_le(img) & 0x1f3f) | 0x40);
    cpu->fsw = ld16_le(img + 2);
    cpu->ftw_valid = img[4];
    cpu->fop = ld16_le(img + 6) & 0x7ff;
    if (w64) {
        cpu->fip = ld64_le(img + 8);
        cpu->fdp = ld64_le(img + 16);
    } else {
        cpu->fip = ld32_le(img + 8);
        cpu->fcs = ld16_le(img + 12);
        cpu->fdp = ld32_le(img + 16);
        cpu->fds = ld16_le(img + 20);
    }
    unsigned top = fpu_top(cpu);
    for (unsigned i = 0; i < 8; i++) {
        F80 v = { ld64_le(img + 32 + 16 * i), ld16_le(img + 40 + 16 * i) };
        cpu->fpr[(top + i) & 7] = v;
    }
}

static void fx_load_xmm(TCGCPU *cpu, const uint8_t *img)
{
    for (unsigned i = 0; i < fx_xmm_count(cpu); i++) {
        cpu->xmm[i].q[0] = ld64_le(img + 160 + 16 * i);
        cpu->xmm[i].q[1] = ld64_le(img + 168 + 16 * i);
    }
}

static uint64_t fx_addr(TCGCPU *cpu, const DecodedOp *op, int acc)
{
    uint64_t ea = op_ea(cpu, op);
    if (ea & 15)
        raise_exception_err(cpu, EXCP_GP, 0);
    return seg_lin(cpu, op->seg, ea, 512, acc);
}

static void fxsave(TCGCPU *cpu, const DecodedOp *op)
{
    uint64_t lin = fx_addr(cpu, op, ACC_WRITE);
    lin_probe_write(cpu, lin, 512);
    fx_store_x87(cpu, lin, op->sz == 3);
    fx_store_mxcsr(cpu, lin);
    fx_store_xmm(cpu, lin);
}

static void fxrstor(TCGCPU *cpu, const DecodedOp *op)
{
    uint64_t lin = fx_addr(cpu, op, ACC_READ);
    uint32_t mx = (uint32_t)mem_ld(cpu, lin + 24, 2);
    if (mx & ~MXCSR_MASK_SUPPORTED)
        raise_exception_err(cpu, EXCP_GP, 0);
    uint8_t img[512];
    fx_read_image(cpu, lin, img);
    fx_load_x87(cpu, img, op->sz == 3);
    cpu->mxcsr = mx;
    fx_load_xmm(cpu, img);
}

/*
 * ---------------- XSAVE / XRSTOR / XSAVEOPT (SDM 1 ch. 13, SDM 2C) ----------------
 * Components x87 (XCR0 bit 0) and SSE (bit 1) only, so the area is the
 * legacy region plus the 64-byte header (XSTATE_BV at 512, XCOMP_BV at
 * 520); the standard form only (no XSAVEC, so XRSTOR refuses a non-zero
 * XCOMP_BV).  RFBM = EDX:EAX & XCR0 picks the components.
 *
 * XINUSE (SDM 1 §13.6) is not tracked as a bit the hardware keeps; it is
 * computed as "the component is not in its initial configuration", which
 * the SDM allows (XINUSE[i] = 0 implies init; init may still report 1).
 * XSAVEOPT uses only the init optimization: it leaves a component in init
 * state unwritten with its XSTATE_BV bit clear; it never assumes a
 * component unmodified since the last XRSTOR (the modified optimization
 * is optional), so it always writes the others.
 */
static bool x87_in_init_state(const TCGCPU *cpu)
{
    /* SDM 1 §13.6; FOP is also required to be 0 so nothing is lost when XSAVEOPT skips. */
    if (cpu->fcw != 0x037f || cpu->fsw != 0 || cpu->ftw_valid != 0 || cpu->fop != 0 ||
        cpu->fip != 0 || cpu->fdp != 0 || cpu->fcs != 0 || cpu->fds != 0)
        return false;
    for (unsigned i = 0; i < 8; i++)
        if (cpu->fpr[i].sig != 0 || cpu->fpr[i].se != 0)
            return false;
    return true;
}

/* SSE init state covers the XMM registers only, not MXCSR (SDM 1 §13.6). */
static bool sse_in_init_state(const TCGCPU *cpu)
{
    for (unsigned i = 0; i < fx_xmm_count(cpu); i++)
        if (cpu->xmm[i].q[0] != 0 || cpu->xmm[i].q[1] != 0)
            return false;
    return true;
}

static uint64_t xstate_in_use(const TCGCPU *cpu)
{
    return (x87_in_init_state(cpu) ? 0 : XSTATE_X87) | (sse_in_init_state(cpu) ? 0 : XSTATE_SSE);
}

static uint64_t xsave_rfbm(const TCGCPU *cpu)
{
    uint64_t mask = (uint32_t)cpu->regs[R_EAX] | ((uint64_t)(uint32_t)cpu->regs[R_EDX] << 32);
    return mask & cpu->xcr0;
}

/* The area must be 64-byte aligned (#GP(0), SDM 2C "XSAVE" exceptions). */
static uint64_t xsave_addr(TCGCPU *cpu, const DecodedOp *op, int acc)
{
    uint64_t lin = op_lin(cpu, op, XSAVE_AREA_SIZE, acc);
    if (lin & 63)
        raise_exception_err(cpu, EXCP_GP, 0);
    return lin;
}

/* XSAVE and XSAVEOPT (SDM 1 §13.7, §13.9). */
static void xsave(TCGCPU *cpu, const DecodedOp *op, bool opt)
{
    uint64_t lin = xsave_addr(cpu, op, ACC_WRITE);
    lin_probe_write(cpu, lin, XSAVE_AREA_SIZE);
    uint64_t rfbm = xsave_rfbm(cpu);
    uint64_t inuse = xstate_in_use(cpu);
    uint64_t save = opt ? rfbm & inuse : rfbm;
    uint64_t xstate_bv = mem_ld(cpu, lin + 512, 3);
    if (save & XSTATE_X87)
        fx_store_x87(cpu, lin, op->sz == 3);
    /* MXCSR goes with RFBM[1] (or [2], AVX, not offered), even when SSE is in init state. */
    if (rfbm & XSTATE_SSE)
        fx_store_mxcsr(cpu, lin);
    if (save & XSTATE_SSE)
        fx_store_xmm(cpu, lin);
    /* Only XSTATE_BV is written back: XCOMP_BV and the rest of the header are left alone. */
    lin_st(cpu, lin + 512, 3, (xstate_bv & ~rfbm) | (inuse & rfbm));
}

/* XRSTOR, standard form (SDM 1 §13.8.1). */
static void xrstor(TCGCPU *cpu, const DecodedOp *op)
{
    uint64_t lin = xsave_addr(cpu, op, ACC_READ);
    uint64_t rfbm = xsave_rfbm(cpu);
    uint64_t xstate_bv = mem_ld(cpu, lin + 512, 3);
    /* #GP: XSTATE_BV names a component outside XCR0, or header bytes 23:8 are not 0
     * (that includes XCOMP_BV, whose bit 63 would ask for the compacted form). */
    if ((xstate_bv & ~cpu->xcr0) || mem_ld(cpu, lin + 520, 3) || mem_ld(cpu, lin + 528, 3))
        raise_exception_err(cpu, EXCP_GP, 0);
    /* The standard form loads MXCSR whenever RFBM[1] (or [2]) is set, whatever XSTATE_BV says. */
    uint32_t mx = cpu->mxcsr;
    if (rfbm & XSTATE_SSE) {
        mx = (uint32_t)mem_ld(cpu, lin + 24, 2);
        if (mx & ~MXCSR_MASK_SUPPORTED)
            raise_exception_err(cpu, EXCP_GP, 0);
    }
    uint8_t img[512];
    fx_read_image(cpu, lin, img);
    if (rfbm & XSTATE_X87) {
        if (xstate_bv & XSTATE_X87) {
            fx_load_x87(cpu, img, op->sz == 3);
        } else {
            /* Initial configuration (SDM 1 §13.6): FNINIT's registers, ST0-7 zero. */
            fpu_reset(cpu, false);
            memset(cpu->fpr, 0, sizeof(cpu->fpr));
        }
    }
    cpu->mxcsr = mx;
    if (rfbm & XSTATE_SSE) {
        if (xstate_bv & XSTATE_SSE)
            fx_load_xmm(cpu, img);
        else
            memset(cpu->xmm, 0, fx_xmm_count(cpu) * sizeof(cpu->xmm[0]));
    }
}

/* 0F AE /0-/6: FXSAVE FXRSTOR LDMXCSR STMXCSR XSAVE XRSTOR XSAVEOPT. */
static int helper_fxgrp(TCGCPU *cpu, const DecodedOp *op)
{
    unsigned sub = op->sub;
    if (sub >= 4) {
        /* #UD without CR4.OSXSAVE (or XSAVEOPT not advertised), then #NM with CR0.TS (SDM 2C). */
        if (!(cpu->cr4 & CR4_OSXSAVE) || (sub == 6 && !tcg_cpuid_has_xsaveopt()))
            raise_exception(cpu, EXCP_UD);
        if (cpu->cr0 & X86_CR0_TS)
            raise_exception(cpu, EXCP_NM);
        if (sub == 5)
            xrstor(cpu, op);
        else
            xsave(cpu, op, sub == 6);
        return H_NEXT;
    }
    if (sub >= 2) {
        sse_insn_check(cpu);            /* SSE state (SDM 3A Table 12-8) */
        if (sub == 2) {
            uint32_t v = (uint32_t)lin_ld(cpu, op_lin(cpu, op, 4, ACC_READ), 2);
            if (v & ~MXCSR_MASK_SUPPORTED)
                raise_exception_err(cpu, EXCP_GP, 0);
            cpu->mxcsr = v;
        } else {
            lin_st(cpu, op_lin(cpu, op, 4, ACC_WRITE), 2, cpu->mxcsr);
        }
        return H_NEXT;
    }
    if (cpu->cr0 & (X86_CR0_EM | X86_CR0_TS))
        raise_exception(cpu, EXCP_NM);
    if (sub == 0)
        fxsave(cpu, op);
    else
        fxrstor(cpu, op);
    return H_NEXT;
}

/* ---------------- arithmetic helpers ---------------- */
typedef F80 (*BinOp)(SFStatus *, F80, F80);

/* kind: 0 add, 1 mul, 4 sub, 5 subr, 6 div, 7 divr (ModRM.reg numbering). */
static F80 arith(SFStatus *s, unsigned kind, F80 a, F80 b)
{
    switch (kind) {
    case 0: return f80_add(s, a, b);
    case 1: return f80_mul(s, a, b);
    case 4: return f80_sub(s, a, b);
    case 5: return f80_sub(s, b, a);
    case 6: return f80_div(s, a, b);
    default: return f80_div(s, b, a);
    }
}

/* dst = dst (kind) src for ST(d) and an operand already converted to F80. */
static void do_arith(TCGCPU *cpu, unsigned kind, unsigned d, bool src_empty, F80 src, bool pop)
{
    if (st_empty(cpu, d) || src_empty) {
        if (!stack_fault(cpu, false))
            return;
        st_set(cpu, d, f80_indefinite);
    } else {
        SFStatus s = sf_init(cpu, true);
        F80 r = arith(&s, kind, st_get(cpu, d), src);
        bool ok = fpu_flags(cpu, s.flags);
        set_c1(cpu, ok && s.c1);
        if (!ok)
            return;
        st_set(cpu, d, r);
    }
    if (pop)
        fpu_pop(cpu);
}

/* FCOM family: sets C3 C2 C0 (or ZF PF CF for FCOMI); pops n times. */
static void do_compare(TCGCPU *cpu, F80 b, bool b_empty, bool quiet, bool eflags, int pops,
                       unsigned src_fl)
{
    int rel;
    bool done;
    /* Unmasked invalid: the condition codes still say "unordered", nothing is popped. */
    if (st_empty(cpu, 0) || b_empty) {
        done = stack_fault(cpu, false);
        rel = 2;
    } else {
        SFStatus s = sf_init(cpu, false);
        s.flags = (uint8_t)src_fl;
        rel = f80_compare(&s, st_get(cpu, 0), b, quiet);
        done = fpu_flags(cpu, s.flags);     /* codes are written even when unmasked */
        set_c1(cpu, false);
    }
    if (eflags) {
        uint32_t f = rel == 2 ? (CC_Z | CC_P | CC_C) : rel == 0 ? CC_Z : rel < 0 ? CC_C : 0;
        cc_set_flags(cpu, f);
    } else {
        set_c(cpu, rel == 2 || rel == 0, rel == 2, (cpu->fsw & FSW_C1) != 0, rel == 2 || rel < 0);
    }
    while (done && pops-- > 0)
        fpu_pop(cpu);
}

/* Push with overflow check; v computed by the caller (flags already applied). */
static void push_checked(TCGCPU *cpu, F80 v)
{
    if (!st_empty(cpu, 7)) {
        if (!stack_fault(cpu, true))
            return;
        v = f80_indefinite;
    } else {
        set_c1(cpu, false);
    }
    fpu_push(cpu, v);
}

static void fld_value(TCGCPU *cpu, F80 v, unsigned fl, bool c1)
{
    if (!st_empty(cpu, 7)) {
        push_checked(cpu, v);
        return;
    }
    if (!fpu_flags(cpu, fl))
        return;
    fpu_push(cpu, v);
    set_c1(cpu, c1);
}

static bool fcmov_cond(TCGCPU *cpu, unsigned esc, unsigned reg)
{
    uint32_t f = cc_compute_all(cpu);
    bool c;
    switch (reg & 3) {
    case 0: c = f & CC_C; break;
    case 1: c = f & CC_Z; break;
    case 2: c = f & (CC_C | CC_Z); break;
    default: c = f & CC_P; break;
    }
    return esc == 2 ? c : !c;
}

/* D9 F0-FF transcendentals (fpu-trans.c). */
static void x87_transcendental(TCGCPU *cpu, unsigned rmi)
{
    bool two = rmi == 1 || rmi == 3 || rmi == 9;        /* FYL2X FPATAN FYL2XP1: ST1 op ST0, pop */
    bool pushes = rmi == 2 || rmi == 11;                /* FPTAN FSINCOS */
    if (st_empty(cpu, 0) || (two && st_empty(cpu, 1))) {
        if (stack_fault(cpu, false)) {
            if (two) {
                st_set(cpu, 1, f80_indefinite);
                fpu_pop(cpu);
            } else {
                st_set(cpu, 0, f80_indefinite);
                if (pushes)
                    fpu_push(cpu, f80_indefinite);
            }
        }
        return;
    }
    if (pushes && !st_empty(cpu, 7)) {
        if (stack_fault(cpu, true)) {
            st_set(cpu, 0, f80_indefinite);
            fpu_push(cpu, f80_indefinite);
        }
        return;
    }
    SFStatus s = sf_init(cpu, false);
    F80 a = st_get(cpu, 0), r1, r2 = f80_indefinite;
    bool in_range = true;
    switch (rmi) {
    case 0: r1 = f80_2xm1(&s, a); break;
    case 1: r1 = f80_yl2x(&s, st_get(cpu, 1), a); break;
    case 3: r1 = f80_atan2(&s, st_get(cpu, 1), a); break;
    case 9: r1 = f80_yl2xp1(&s, st_get(cpu, 1), a); break;
    case 2:
        in_range = f80_trig(&s, a, 2, &r1, &r2);
        r2 = f80_make(false, 0x3fff, 1ull << 63);
        break;
    case 11: in_range = f80_trig(&s, a, 3, &r1, &r2); break;
    case 14: in_range = f80_trig(&s, a, 0, &r1, &r2); break;
    default: in_range = f80_trig(&s, a, 1, &r1, &r2); break;
    }
    if (!in_range) {
        set_c(cpu, (cpu->fsw & FSW_C3) != 0, 1, 0, (cpu->fsw & FSW_C0) != 0);
        return;
    }
    if (!fpu_flags(cpu, s.flags))
        return;
    set_c1(cpu, false);
    if (rmi == 2 || rmi == 11 || rmi >= 14)
        cpu->fsw &= (uint16_t)~FSW_C2;
    if (two) {
        st_set(cpu, 1, r1);
        fpu_pop(cpu);
    } else if (rmi == 11) {
        if (f80_is_nan(r1))
            r2 = r1;
        st_set(cpu, 0, r1);
        fpu_push(cpu, r2);
    } else if (rmi == 2) {
        st_set(cpu, 0, r1);
        fpu_push(cpu, f80_is_nan(r1) ? r1 : r2);
    } else {
        st_set(cpu, 0, r1);
    }
}

/* Integer store: FIST/FISTP/FISTTP to m16/m32/m64. */
static void fist(TCGCPU *cpu, uint64_t lin, int sz, bool truncate, bool pop)
{
    int64_t v;
    unsigned fl = 0;
    bool c1 = false;
    int bits = 8 << sz;
    if (st_empty(cpu, 0)) {
        if (!stack_fault(cpu, false))
            return;
        v = (int64_t)((uint64_t)1 << (bits - 1));
        fl = 0;
    } else {
        SFStatus s = sf_init(cpu, false);
        v = f80_to_int(&s, st_get(cpu, 0), bits, truncate);
        fl = s.flags;
        c1 = s.c1;
        if (fl & FPE_IE & ~cpu->fcw) {
            fpu_flags(cpu, fl);
            set_c1(cpu, false);
            return;
        }
    }
    lin_st(cpu, lin, sz, (uint64_t)v);
    if (!st_empty(cpu, 0) || fl) {
        fpu_flags(cpu, fl);
        set_c1(cpu, c1);
    }
    if (pop)
        fpu_pop(cpu);
}

/* FBLD: 18 packed BCD digits and a sign byte (SDM 1 §4.7); nibbles above 9
 * are undefined and simply weighted like digits here. */
static F80 bcd_load(TCGCPU *cpu, uint64_t lin)
{
    uint64_t lo = lin_ld(cpu, lin, 3);
    uint16_t hi = (uint16_t)lin_ld(cpu, lin + 8, 1);
    uint64_t v = 0;
    for (int i = 8; i >= 0; i--) {
        unsigned byte = i == 8 ? (hi & 0xff) : (unsigned)(lo >> (8 * i)) & 0xff;
        v = v * 100 + (byte >> 4) * 10 + (byte & 15);
    }
    F80 r = f80_from_i64((int64_t)v);
    if (hi & 0x8000)
        r.se |= 0x8000;
    return r;
}

/* FBSTP: round to an integer under RC; beyond 18 digits -> IE, BCD indefinite. */
static void fbstp(TCGCPU *cpu, uint64_t lin)
{
    uint64_t lo = 0;
    uint16_t hi = 0;
    unsigned fl = 0;
    bool c1 = false;
    if (st_empty(cpu, 0)) {
        if (!(cpu->fcw & FPE_IE)) {
            stack_fault(cpu, false);
            return;
        }
        lo = 0;
        hi = 0xffff;
        lo = 0xc0ull << 56;
    } else {
        SFStatus s = sf_init(cpu, false);
        F80 a = st_get(cpu, 0);
        int64_t v = f80_to_int(&s, a, 64, false);
        uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
        if ((s.flags & FPE_IE) || m > 999999999999999999ull) {
            s.flags = FPE_IE;
            if (!(cpu->fcw & FPE_IE)) {
                fpu_flags(cpu, s.flags);
                return;
            }
            hi = 0xffff;
            lo = 0xc0ull << 56;
        } else {
            for (int i = 0; i < 9; i++) {
                unsigned d = (unsigned)(m % 100);
                m /= 100;
                unsigned byte = ((d / 10) << 4) | (d % 10);
                if (i < 8)
                    lo |= (uint64_t)byte << (8 * i);
                else
                    hi = (uint16_t)byte;
            }
            if (F80_SIGN(a))
                hi |= 0x8000;
        }
        fl = s.flags;
        c1 = s.c1;
    }
    lin_probe_write(cpu, lin, 10);
    lin_st(cpu, lin, 3, lo);
    lin_st(cpu, lin + 8, 1, hi);
    if (st_empty(cpu, 0)) {
        stack_fault(cpu, false);
    } else {
        fpu_flags(cpu, fl);
        set_c1(cpu, c1);
    }
    fpu_pop(cpu);
}

/* FST/FSTP to m32/m64/m80. */
static void fst_mem(TCGCPU *cpu, uint64_t lin, int kind, bool pop)
{
    SFStatus s = sf_init(cpu, false);
    s.bias_adjust = false;
    bool empty = st_empty(cpu, 0);
    F80 a = empty ? f80_indefinite : st_get(cpu, 0);
    if (empty && !(cpu->fcw & FPE_IE)) {
        stack_fault(cpu, false);
        return;
    }
    uint64_t bits = 0;
    if (kind == 0)
        bits = f80_to_f32(&s, a);
    else if (kind == 1)
        bits = f80_to_f64(&s, a);
    if (empty)
        s.flags = 0;
    unsigned unmasked = s.flags & ~cpu->fcw & (FPE_IE | FPE_DE | FPE_OE | FPE_UE);
    if (unmasked & (FPE_OE | FPE_UE)) {
        /* Nothing is stored, so no rounding is reported either (as hardware does). */
        s.flags &= ~FPE_PE;
        s.c1 = false;
    }
    if (!unmasked) {
        if (kind == 0)
            lin_st(cpu, lin, 2, bits);
        else if (kind == 1)
            lin_st(cpu, lin, 3, bits);
        else
            st_m80(cpu, lin, a);
    }
    if (empty) {
        stack_fault(cpu, false);
    } else {
        fpu_flags(cpu, s.flags);
        set_c1(cpu, s.c1);
        if (unmasked)
            return;
    }
    if (pop)
        fpu_pop(cpu);
}

/* ---------------- the D8-DF escape ---------------- */
static int x87_exec(TCGCPU *cpu, const DecodedOp *op)
{
    unsigned esc = op->sub, modrm = op->imm16 & 0xff, reg = (modrm >> 3) & 7, rmi = modrm & 7;
    bool mem = op->rm == NOREG;

    if (cpu->cr0 & (X86_CR0_EM | X86_CR0_TS))
        raise_exception(cpu, EXCP_NM);

    /* Non-waiting control instructions. */
    bool nowait = (esc == 3 && (modrm == 0xe2 || modrm == 0xe3)) ||
                  (esc == 7 && modrm == 0xe0) ||
                  (mem && esc == 1 && (reg == 6 || reg == 7)) ||
                  (mem && esc == 5 && (reg == 6 || reg == 7));
    if (!nowait)
        fpu_check_pending(cpu);

    uint64_t lin = 0;
    if (mem) {
        /* Control instructions leave FIP/FDP/FOP alone (SDM 1 §8.1.8). */
        bool control = (esc == 1 && reg >= 4) || (esc == 5 && (reg == 4 || reg == 6 || reg == 7));
        if (!control) {
            cpu->fdp = op_ea(cpu, op);
            if (env_real(cpu))
                cpu->fdp = (uint32_t)(cpu->fdp + cpu->seg[op->seg].base);
            cpu->fds = cpu->seg[op->seg].sel;
        }
    }
    bool control = nowait || (mem && esc == 1 && reg >= 4) || (mem && esc == 5 && reg == 4);
    if (!control) {
        /* Real/V86 environments hold linear addresses, protected mode offsets. */
        cpu->fip = env_real(cpu) ? (uint32_t)(cpu->seg[SEG_CS].base + cpu->rip) : cpu->rip;
        cpu->fcs = cpu->seg[SEG_CS].sel;
        cpu->fop = (uint16_t)(((esc << 8) | modrm) & 0x7ff);
    }

    if (mem) {
        SFStatus s = sf_init(cpu, false);
        F80 v;
        switch (esc) {
        case 0: case 2: case 4: case 6: {
            /* Arithmetic with m32real / m32int / m64real / m16int. */
            if (esc == 0)
                v = f80_from_f32(&s, (uint32_t)lin_ld(cpu, op_lin(cpu, op, 4, ACC_READ), 2));
            else if (esc == 4)
                v = f80_from_f64(&s, lin_ld(cpu, op_lin(cpu, op, 8, ACC_READ), 3));
            else if (esc == 2)
                v = f80_from_i64((int32_t)lin_ld(cpu, op_lin(cpu, op, 4, ACC_READ), 2));
            else
                v = f80_from_i64((int16_t)lin_ld(cpu, op_lin(cpu, op, 2, ACC_READ), 1));
            if (s.flags & FPE_IE) {
                /* SNaN source: keep it signalling so Table 4-7's SNaN/QNaN rule applies. */
                v.sig &= ~(1ull << 62);
                s.flags &= ~FPE_IE;
            }
            if (reg == 2 || reg == 3) {
                if (f80_is_nan(st_get(cpu, 0)) || f80_class(st_get(cpu, 0)) == FC_UNSUPPORTED)
                    s.flags &= ~FPE_DE;
                do_compare(cpu, v, false, false, false, reg == 3, s.flags & (FPE_IE | FPE_DE));
                return H_NEXT;
            }
            if (st_empty(cpu, 0)) {
                do_arith(cpu, reg, 0, true, v, false);
                return H_NEXT;
            }
            SFStatus s2 = sf_init(cpu, true);
            s2.flags = s.flags & (FPE_IE | FPE_DE);      /* SNaN / denormal m32/m64 source */
            if (f80_is_nan(st_get(cpu, 0)) || f80_class(st_get(cpu, 0)) == FC_UNSUPPORTED)
                s2.flags &= ~FPE_DE;
            F80 r = arith(&s2, reg, st_get(cpu, 0), v);
            bool ok = fpu_flags(cpu, s2.flags);
            set_c1(cpu, ok && s2.c1);
            if (ok)
                st_set(cpu, 0, r);
            return H_NEXT;
        }
        case 1:
            switch (reg) {
            case 0:
                v = f80_from_f32(&s, (uint32_t)lin_ld(cpu, op_lin(cpu, op, 4, ACC_READ), 2));
                fld_value(cpu, v, s.flags, false);
                return H_NEXT;
            case 2: case 3:
                fst_mem(cpu, op_lin(cpu, op, 4, ACC_WRITE), 0, reg == 3);
                return H_NEXT;
            case 4:
                fpu_load_env(cpu, op, op_lin(cpu, op, env_size(op), ACC_READ));
                return H_NEXT;
            case 5:
                cpu->fcw = (uint16_t)((lin_ld(cpu, op_lin(cpu, op, 2, ACC_READ), 1) & 0x1f3f) | 0x40);
                fpu_update_es(cpu);
                return H_NEXT;
            case 6:
                fpu_store_env(cpu, op, op_lin(cpu, op, env_size(op), ACC_WRITE));
                cpu->fcw |= FPE_ALL;
                fpu_update_es(cpu);
                return H_NEXT;
            case 7:
                lin_st(cpu, op_lin(cpu, op, 2, ACC_WRITE), 1, cpu->fcw);
                return H_NEXT;
            default:
                raise_exception(cpu, EXCP_UD);
            }
        case 3:
            switch (reg) {
            case 0:
                v = f80_from_i64((int32_t)lin_ld(cpu, op_lin(cpu, op, 4, ACC_READ), 2));
                fld_value(cpu, v, 0, false);
                return H_NEXT;
            case 1: case 2: case 3:
                fist(cpu, op_lin(cpu, op, 4, ACC_WRITE), 2, reg == 1, reg != 2);
                return H_NEXT;
            case 5:
                lin = op_lin(cpu, op, 10, ACC_READ);
                fld_value(cpu, ld_m80(cpu, lin), 0, false);
                return H_NEXT;
            case 7:
                fst_mem(cpu, op_lin(cpu, op, 10, ACC_WRITE), 2, true);
                return H_NEXT;
            default:
                raise_exception(cpu, EXCP_UD);
            }
        case 5:
            switch (reg) {
            case 0:
                v = f80_from_f64(&s, lin_ld(cpu, op_lin(cpu, op, 8, ACC_READ), 3));
                fld_value(cpu, v, s.flags, false);
                return H_NEXT;
            case 1:
                fist(cpu, op_lin(cpu, op, 8, ACC_WRITE), 3, true, true);
                return H_NEXT;
            case 2: case 3:
                fst_mem(cpu, op_lin(cpu, op, 8, ACC_WRITE), 1, reg == 3);
                return H_NEXT;
            case 4: {       /* FRSTOR */
                unsigned es = env_size(op);
                lin = op_lin(cpu, op, es + 80, ACC_READ);
                F80 regs[8];
                for (unsigned i = 0; i < 8; i++)
                    regs[i] = ld_m80(cpu, lin + es + 10 * i);
                fpu_load_env(cpu, op, lin);
                for (unsigned i = 0; i < 8; i++)
                    cpu->fpr[phys(cpu, i)] = regs[i];
                return H_NEXT;
            }
            case 6: {       /* FNSAVE */
                unsigned es = env_size(op);
                lin = op_lin(cpu, op, es + 80, ACC_WRITE);
                lin_probe_write(cpu, lin, es + 80);
                fpu_store_env(cpu, op, lin);
                for (unsigned i = 0; i < 8; i++)
                    st_m80(cpu, lin + es + 10 * i, st_get(cpu, i));
                fpu_reset(cpu, false);
                return H_NEXT;
            }
            case 7:
                lin_st(cpu, op_lin(cpu, op, 2, ACC_WRITE), 1, cpu->fsw);
                return H_NEXT;
            default:
                raise_exception(cpu, EXCP_UD);
            }
        default: /* 7 */
            switch (reg) {
            case 0:
                v = f80_from_i64((int16_t)lin_ld(cpu, op_lin(cpu, op, 2, ACC_READ), 1));
                fld_value(cpu, v, 0, false);
                return H_NEXT;
            case 1: case 2: case 3:
                fist(cpu, op_lin(cpu, op, 2, ACC_WRITE), 1, reg == 1, reg != 2);
                return H_NEXT;
            case 5:
                v = f80_from_i64((int64_t)lin_ld(cpu, op_lin(cpu, op, 8, ACC_READ), 3));
                fld_value(cpu, v, 0, false);
                return H_NEXT;
            case 7:
                fist(cpu, op_lin(cpu, op, 8, ACC_WRITE), 3, false, true);
                return H_NEXT;
            case 4:
                fld_value(cpu, bcd_load(cpu, op_lin(cpu, op, 10, ACC_READ)), 0, false);
                return H_NEXT;
            default:    /* 6: FBSTP */
                fbstp(cpu, op_lin(cpu, op, 10, ACC_WRITE));
                return H_NEXT;
            }
        }
    }

    /* Register forms. */
    switch (esc) {
    case 0:
        if (reg == 2 || reg == 3) {
            do_compare(cpu, st_get(cpu, rmi), st_empty(cpu, rmi), false, false, reg == 3, 0);
            return H_NEXT;
        }
        do_arith(cpu, reg, 0, st_empty(cpu, rmi), st_get(cpu, rmi), false);
        return H_NEXT;
    case 4: case 6:
        if (reg == 2 || reg == 3) {     /* FCOM2/FCOMP3/FCOMP5 aliases, DE D9 FCOMPP */
            if (esc == 6 && reg == 3 && rmi != 1)
                raise_exception(cpu, EXCP_UD);
            do_compare(cpu, st_get(cpu, rmi), st_empty(cpu, rmi), false, false,
                       esc == 6 ? (reg == 3 ? 2 : 1) : reg == 3, 0);
            return H_NEXT;
        }
        /* ST(i) = ST(i) op ST(0); the sub/div encodings are reversed. */
        do_arith(cpu, reg >= 4 ? reg ^ 1 : reg, rmi, st_empty(cpu, 0), st_get(cpu, 0), esc == 6);
        return H_NEXT;
    case 1:
        switch (reg) {
        case 0:     /* FLD ST(i) */
            if (st_empty(cpu, rmi)) {
                /* Source underflow is reported even when ST(7) is also in use. */
                if (stack_fault(cpu, false))
                    fpu_push(cpu, f80_indefinite);
                return H_NEXT;
            }
            push_checked(cpu, st_get(cpu, rmi));
            return H_NEXT;
        case 1: {   /* FXCH */
            bool e0 = st_empty(cpu, 0), ei = st_empty(cpu, rmi);
            if (e0 || ei) {
                if (!stack_fault(cpu, false))
                    return H_NEXT;
            } else {
                set_c1(cpu, false);
            }
            F80 a = e0 ? f80_indefinite : st_get(cpu, 0);
            F80 b = ei ? f80_indefinite : st_get(cpu, rmi);
            st_set(cpu, 0, b);
            st_set(cpu, rmi, a);
            return H_NEXT;
        }
        case 2:
            if (rmi != 0)
                raise_exception(cpu, EXCP_UD);
            return H_NEXT;     /* FNOP */
        case 3:     /* FSTP1 alias */
            goto fstp_reg;
        case 4: {
            if (rmi == 2 || rmi == 3 || rmi >= 6)
                raise_exception(cpu, EXCP_UD);
            if (st_empty(cpu, 0) && rmi == 5) {
                /* FXAM of an empty register: class "empty" (101), C1 = sign. */
                set_c(cpu, 1, 0, F80_SIGN(st_get(cpu, 0)), 1);
                return H_NEXT;
            }
            if (st_empty(cpu, 0)) {
                if (stack_fault(cpu, false) && rmi <= 1)
                    st_set(cpu, 0, f80_indefinite);
                if (rmi == 4)
                    set_c(cpu, 1, 1, 0, 1);
                return H_NEXT;
            }
            F80 a = st_get(cpu, 0);
            if (rmi == 0) {             /* FCHS */
                a.se ^= 0x8000;
                st_set(cpu, 0, a);
                set_c1(cpu, false);
            } else if (rmi == 1) {      /* FABS */
                a.se &= 0x7fff;
                st_set(cpu, 0, a);
                set_c1(cpu, false);
            } else if (rmi == 4) {      /* FTST */
                F80 z = { 0, 0 };
                do_compare(cpu, z, false, false, false, 0, 0);
            } else {                    /* FXAM */
                unsigned c3, c2, c0;
                switch (f80_class(a)) {
                case FC_UNSUPPORTED: c3 = 0; c2 = 0; c0 = 0; break;
                case FC_QNAN: case FC_SNAN: c3 = 0; c2 = 0; c0 = 1; break;
                case FC_NORMAL: c3 = 0; c2 = 1; c0 = 0; break;
                case FC_INF: c3 = 0; c2 = 1; c0 = 1; break;
                case FC_ZERO: c3 = 1; c2 = 0; c0 = 0; break;
                default: c3 = 1; c2 = 1; c0 = 0; break;
                }
                set_c(cpu, c3, c2, F80_SIGN(a), c0);
            }
            return H_NEXT;
        }
        case 5: {
            if (rmi == 7)
                raise_exception(cpu, EXCP_UD);
            SFStatus s = sf_init(cpu, false);
            F80 c = f80_load_const(&s, rmi);
            push_checked(cpu, c);
            return H_NEXT;
        }
        case 6:
            switch (rmi) {
            case 4: {   /* FXTRACT */
                if (st_empty(cpu, 0)) {
                    if (stack_fault(cpu, false)) {
                        st_set(cpu, 0, f80_indefinite);
                        fpu_push(cpu, f80_indefinite);
                    }
                    return H_NEXT;
                }
                if (!st_empty(cpu, 7)) {
                    if (stack_fault(cpu, true)) {
                        st_set(cpu, 0, f80_indefinite);
                        fpu_push(cpu, f80_indefinite);
                    }
                    return H_NEXT;
                }
                SFStatus s = sf_init(cpu, false);
                F80 e, m;
                f80_xtract(&s, st_get(cpu, 0), &e, &m);
                if (!fpu_flags(cpu, s.flags))
                    return H_NEXT;
                set_c1(cpu, false);
                st_set(cpu, 0, e);
                fpu_push(cpu, m);
                return H_NEXT;
            }
            case 5:     /* FPREM1 */
                goto fprem;
            case 6:     /* FDECSTP */
                fpu_set_top(cpu, fpu_top(cpu) - 1);
                set_c1(cpu, false);
                return H_NEXT;
            case 7:     /* FINCSTP */
                fpu_set_top(cpu, fpu_top(cpu) + 1);
                set_c1(cpu, false);
                return H_NEXT;
            default:    /* F2XM1 FYL2X FPTAN FPATAN */
                x87_transcendental(cpu, rmi);
                return H_NEXT;
            }
        default: /* 7 */
            switch (rmi) {
            case 0: fprem: {
                bool ieee = modrm == 0xf5;
                if (st_empty(cpu, 0) || st_empty(cpu, 1)) {
                    cpu->fsw &= (uint16_t)~FSW_C2;
                    if (stack_fault(cpu, false))
                        st_set(cpu, 0, f80_indefinite);
                    return H_NEXT;
                }
                SFStatus s = sf_init(cpu, false);
                unsigned q;
                bool partial;
                F80 r = f80_rem(&s, st_get(cpu, 0), st_get(cpu, 1), ieee, &q, &partial);
                if (!fpu_flags(cpu, s.flags)) {
                    cpu->fsw &= (uint16_t)~(FSW_C1 | FSW_C2);
                    return H_NEXT;
                }
                st_set(cpu, 0, r);
                if (f80_is_nan(r))
                    cpu->fsw &= (uint16_t)~(FSW_C1 | FSW_C2);   /* C0/C3 kept, as the host does */
                else if (partial)
                    set_c(cpu, 0, 1, 0, 0);
                else
                    set_c(cpu, (q >> 1) & 1, 0, q & 1, (q >> 2) & 1);
                return H_NEXT;
            }
            case 2: case 4: case 5: {   /* FSQRT FRNDINT FSCALE */
                if (st_empty(cpu, 0) || (rmi == 5 && st_empty(cpu, 1))) {
                    if (stack_fault(cpu, false))
                        st_set(cpu, 0, f80_indefinite);
                    return H_NEXT;
                }
                SFStatus s = sf_init(cpu, rmi == 2);
                F80 r;
                if (rmi == 2)
                    r = f80_sqrt(&s, st_get(cpu, 0));
                else if (rmi == 4)
                    r = f80_round_int(&s, st_get(cpu, 0));
                else
                    r = f80_scale(&s, st_get(cpu, 0), st_get(cpu, 1));
                bool ok = fpu_flags(cpu, s.flags);
                set_c1(cpu, ok && s.c1);
                if (ok)
                    st_set(cpu, 0, r);
                return H_NEXT;
            }
            default:    /* FYL2XP1 FSINCOS FSIN FCOS */
                x87_transcendental(cpu, 8 + rmi);
                return H_NEXT;
            }
        }
    case 2:
        if (reg < 4) {      /* FCMOVB/E/BE/U */
        fcmov:
            if (st_empty(cpu, 0) || st_empty(cpu, rmi)) {
                if (stack_fault(cpu, false))       /* whatever the condition */
                    st_set(cpu, 0, f80_indefinite);
                return H_NEXT;
            }
            if (fcmov_cond(cpu, esc, reg))       /* C1 unchanged (SDM: only underflow clears it) */
                st_set(cpu, 0, st_get(cpu, rmi));
            return H_NEXT;
        }
        if (modrm == 0xe9) {        /* FUCOMPP */
            do_compare(cpu, st_get(cpu, 1), st_empty(cpu, 1), true, false, 2, 0);
            return H_NEXT;
        }
        raise_exception(cpu, EXCP_UD);
    case 3:
        if (reg < 4)
            goto fcmov;
        if (reg == 4) {
            switch (rmi) {
            case 0: case 1: case 4:     /* FENI, FDISI, FSETPM: no-ops since the 387 */
                return H_NEXT;
            case 2:                     /* FNCLEX */
                cpu->fsw &= (uint16_t)~(FPE_ALL | FSW_SF | FSW_ES | FSW_B);
                return H_NEXT;
            case 3:                     /* FNINIT */
                fpu_reset(cpu, false);
                return H_NEXT;
            default:
                raise_exception(cpu, EXCP_UD);
            }
        }
        if (reg == 5 || reg == 6) {     /* FUCOMI / FCOMI */
            do_compare(cpu, st_get(cpu, rmi), st_empty(cpu, rmi), reg == 5, true, 0, 0);
            return H_NEXT;
        }
        raise_exception(cpu, EXCP_UD);
    case 5:
        switch (reg) {
        case 0:     /* FFREE */
            cpu->ftw_valid &= (uint8_t)~(1u << phys(cpu, rmi));
            return H_NEXT;
        case 1: {   /* FXCH4 alias */
            DecodedOp o = *op;
            o.sub = 1;
            o.imm16 = (uint16_t)(0xc8 | rmi);
            return x87_exec(cpu, &o);
        }
        case 2: case 3:
        fstp_reg:
            if (st_empty(cpu, 0)) {
                if (!stack_fault(cpu, false))
                    return H_NEXT;
                st_set(cpu, rmi, f80_indefinite);
            } else {
                st_set(cpu, rmi, st_get(cpu, 0));
                set_c1(cpu, false);
            }
            if (reg != 2)
                fpu_pop(cpu);
            return H_NEXT;
        case 4: case 5:     /* FUCOM / FUCOMP */
            do_compare(cpu, st_get(cpu, rmi), st_empty(cpu, rmi), true, false, reg == 5, 0);
            return H_NEXT;
        default:
            raise_exception(cpu, EXCP_UD);
        }
    default: /* 7 */
        switch (reg) {
        case 0:     /* FFREEP */
            cpu->ftw_valid &= (uint8_t)~(1u << phys(cpu, rmi));
            fpu_pop(cpu);
            return H_NEXT;
        case 1: {
            DecodedOp o = *op;
            o.sub = 1;
            o.imm16 = (uint16_t)(0xc8 | rmi);
            return x87_exec(cpu, &o);
        }
        case 2: case 3:
            goto fstp_reg;
        case 4:
            if (rmi != 0)
                raise_exception(cpu, EXCP_UD);
            reg_set(cpu, R_EAX, 1, cpu->fsw);       /* FNSTSW AX */
            return H_NEXT;
        case 5: case 6:     /* FUCOMIP / FCOMIP */
            do_compare(cpu, st_get(cpu, rmi), st_empty(cpu, rmi), reg == 5, true, 1, 0);
            return H_NEXT;
        default:
            raise_exception(cpu, EXCP_UD);
        }
    }
}

int helper_fpu(TCGCPU *cpu, const DecodedOp *op)
{
    switch (op->idx) {
    case OP_FWAIT:
        /* WAIT honours TS only with MP (SDM 3A Table 2-2), then delivers a pending #MF. */
        if ((cpu->cr0 & X86_CR0_TS) && (cpu->cr0 & X86_CR0_MP))
            raise_exception(cpu, EXCP_NM);
        fpu_check_pending(cpu);
        return H_NEXT;
    case OP_FXGRP:
        return helper_fxgrp(cpu, op);
    case OP_SSE:
        return helper_sse(cpu, op);
    default:
        return x87_exec(cpu, op);
    }
}
