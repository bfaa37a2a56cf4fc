/*
 * SSE/SSE2 floating point: ADD/SUB/MUL/DIV/MIN/MAX/SQRT (PS/SS/PD/SD),
 * CMPccPS/SS/PD/SD, (U)COMISS/SD, all CVT* forms (XMM, GPR and MMX
 * integers, binary32, binary64), RCPPS/RCPSS/RSQRTPS/RSQRTSS and the SSE3
 * HADDPS/PD, HSUBPS/PD and ADDSUBPS/PD.
 * SDM 1 §10.2.3 (MXCSR), §11.5 (SIMD FP exceptions), Table 4-7 (NaNs).
 *
 * Arithmetic uses the host's binary32/binary64 with the rounding mode set
 * from MXCSR.RC (fesetround) and IEEE flags read back with fetestexcept,
 * on volatile operands so the compiler cannot move the operation across
 * those calls.  Everything the host may do differently from x86 is done
 * here explicitly: NaN operand selection (first source, quieted), the
 * default NaN (negative QNaN), DAZ (denormal inputs read as signed zero),
 * FZ (underflowed results flushed to signed zero, UE|PE, when UM is
 * masked), DE (denormal operand, checked by hand), and UE when UM is
 * unmasked (tiny even if exact).  Unmasked exceptions leave the
 * destination alone and raise #XM (CR4.OSXMMEXCPT = 1) or #UD.
 *
 * RCP/RSQRT: the reciprocal (square root) is computed in binary64 and
 * truncated to 12 significant bits, giving relative error < 2^-11; real
 * CPUs use their own tables (Intel <= 1.5 * 2^-12), so these results are
 * not bit-identical to any particular CPU.
 */
#include <fenv.h>
#include <math.h>
#include "accel/tcg/ops.h"
#include "kestrel/log.h"

enum { PF_NONE = 0, PF_66 = 1, PF_F3 = 2, PF_F2 = 3 };

/* ---- element classification (binary32: dbl = 0, binary64: dbl = 1) ---- */
static uint64_t sign_bit(int dbl) { return dbl ? 1ull << 63 : 1ull << 31; }
static uint64_t exp_mask(int dbl) { return dbl ? 0x7ff0000000000000ull : 0x7f800000ull; }
static uint64_t frac_mask(int dbl) { return dbl ? 0x000fffffffffffffull : 0x007fffffull; }
static uint64_t quiet_bit(int dbl) { return dbl ? 1ull << 51 : 1ull << 22; }
static bool is_nan(uint64_t v, int dbl) { return (v & exp_mask(dbl)) == exp_mask(dbl) && (v & frac_mask(dbl)); }
static bool is_snan(uint64_t v, int dbl) { return is_nan(v, dbl) && !(v & quiet_bit(dbl)); }
static bool is_denorm(uint64_t v, int dbl) { return !(v & exp_mask(dbl)) && (v & frac_mask(dbl)); }
static bool is_zero(uint64_t v, int dbl) { return !(v & ~sign_bit(dbl)); }
static uint64_t default_nan(int dbl) { return dbl ? 0xfff8000000000000ull : 0xffc00000ull; }

/* DAZ, then DE for a remaining denormal operand. */
static uint64_t operand_in(FPEnv *e, uint64_t v, int dbl)
{
    if (is_denorm(v, dbl)) {
        if (e->mxcsr & MXCSR_DAZ)
            return v & sign_bit(dbl);
        if (!(e->flags & FPE_DE))
            e->lane_de = FPE_DE;
        e->flags |= FPE_DE;
    }
    return v;
}

static double as_f64(uint64_t v) { double d; memcpy(&d, &v, 8); return d; }
static float as_f32(uint64_t v) { uint32_t u = (uint32_t)v; float f; memcpy(&f, &u, 4); return f; }
static uint64_t bits_f64(double d) { uint64_t v; memcpy(&v, &d, 8); return v; }
static uint64_t bits_f32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static void host_begin(const FPEnv *e)
{
    static const int modes[4] = { FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO };
    fesetround(modes[(e->mxcsr >> 13) & 3]);
    feclearexcept(FE_ALL_EXCEPT);
}

/* Host flags -> MXCSR flags; x86 rules for the result (default NaN, FZ, UE). */
static uint64_t host_end(FPEnv *e, uint64_t r, int dbl)
{
    int x = fetestexcept(FE_ALL_EXCEPT);
    fesetround(FE_TONEAREST);
    unsigned f = 0;
    if (x & FE_INVALID) f |= FPE_IE;
    if (x & FE_DIVBYZERO) f |= FPE_ZE;
    if (x & FE_OVERFLOW) f |= FPE_OE;
    if (x & FE_INEXACT) f |= FPE_PE;
    bool tiny = is_denorm(r, dbl) || (is_zero(r, dbl) && (x & FE_UNDERFLOW));
    if (x & FE_UNDERFLOW)
        f |= FPE_UE;
    if ((f & FPE_IE) && is_nan(r, dbl))
        r = default_nan(dbl);
    bool um_masked = e->mxcsr & (FPE_UE << 7);
    if (tiny && !um_masked)
        f |= FPE_UE;                        /* unmasked: tiny is enough */
    if (tiny && um_masked && (e->mxcsr & MXCSR_FZ)) {      /* exact tiny results too */
        r &= sign_bit(dbl);
        f |= FPE_UE | FPE_PE;
    }
    /* Invalid and divide-by-zero outrank this element's denormal operand. */
    if (f & (FPE_IE | FPE_ZE))
        e->flags &= ~e->lane_de;
    e->flags |= f;
    return r;
}

/* op: 0 add, 1 mul, 4 sub, 5 min, 6 div, 7 max, 8 sqrt (opcode 58..5F order). */
uint64_t fp_arith(FPEnv *e, int op, uint64_t a, uint64_t b, int dbl)
{
    e->lane_de = 0;
    if (op == 5 || op == 7) {
        /* MIN/MAX: any NaN (signalling compare) or both zero -> second operand. */
        if (is_nan(a, dbl) || is_nan(b, dbl)) {
            e->flags |= FPE_IE;
            if (is_denorm(b, dbl) && (e->mxcsr & MXCSR_DAZ))
                b &= sign_bit(dbl);         /* the returned operand still goes through DAZ */
            return b;
        }
        a = operand_in(e, a, dbl);
        b = operand_in(e, b, dbl);
        if (is_zero(a, dbl) && is_zero(b, dbl))
            return b;
        bool lt = dbl ? as_f64(a) < as_f64(b) : as_f32(a) < as_f32(b);
        return (op == 5) == lt ? a : b;
    }
    if (op == 8) {
        if (is_nan(b, dbl)) {
            if (is_snan(b, dbl))
                e->flags |= FPE_IE;
            return b | quiet_bit(dbl);
        }
        b = operand_in(e, b, dbl);
    } else {
        if (is_nan(a, dbl) || is_nan(b, dbl)) {
            if (is_snan(a, dbl) || is_snan(b, dbl))
                e->flags |= FPE_IE;
            return (is_nan(a, dbl) ? a : b) | quiet_bit(dbl);
        }
        a = operand_in(e, a, dbl);
        b = operand_in(e, b, dbl);
    }
    uint64_t r;
    host_begin(e);
    if (dbl) {
        volatile double x = as_f64(a), y = as_f64(b);
        volatile double z;
        switch (op) {
        case 0: z = x + y; break;
        case 1: z = x * y; break;
        case 4: z = x - y; break;
        case 6: z = x / y; break;
        default: z = sqrt(y); break;
        }
        r = bits_f64(z);
    } else {
        volatile float x = as_f32(a), y = as_f32(b);
        volatile float z;
        switch (op) {
        case 0: z = x + y; break;
        case 1: z = x * y; break;
        case 4: z = x - y; break;
        case 6: z = x / y; break;
        default: z = sqrtf(y); break;
        }
        r = bits_f32(z);
    }
    return host_end(e, r, dbl);
}

/* CMPcc predicate 0-7: EQ LT LE UNORD NEQ NLT NLE ORD; LT/LE/NLT/NLE signal on QNaN. */
static bool fp_cmp(FPEnv *e, unsigned pred, uint64_t a, uint64_t b, int dbl)
{
    bool un = is_nan(a, dbl) || is_nan(b, dbl);
    bool signalling = (pred & 3) == 1 || (pred & 3) == 2;
    if (un) {
        if (signalling || is_snan(a, dbl) || is_snan(b, dbl))
            e->flags |= FPE_IE;
    } else {
        a = operand_in(e, a, dbl);
        b = operand_in(e, b, dbl);
    }
    double x = dbl ? as_f64(a) : as_f32(a), y = dbl ? as_f64(b) : as_f32(b);
    bool r;
    switch (pred & 3) {
    case 0: r = !un && x == y; break;
    case 1: r = !un && x < y; break;
    case 2: r = !un && x <= y; break;
    default: r = un; break;
    }
    return pred & 4 ? !r : r;
}

/* binary32 <-> binary64 */
static uint64_t fp_convert(FPEnv *e, uint64_t a, int from_dbl)
{
    e->lane_de = 0;
    if (is_nan(a, from_dbl)) {
        if (is_snan(a, from_dbl))
            e->flags |= FPE_IE;
        if (from_dbl)
            return ((a >> 32) & 0x80000000u) | 0x7fc00000u | (uint32_t)((a >> 29) & 0x3fffff);
        return ((a & 0x80000000u) << 32) | 0x7ff8000000000000ull | ((a & 0x3fffffull) << 29);
    }
    a = operand_in(e, a, from_dbl);
    host_begin(e);
    uint64_t r;
    if (from_dbl) {
        volatile double x = as_f64(a);
        volatile float z = (float)x;
        r = bits_f32(z);
    } else {
        volatile float x = as_f32(a);
        volatile double z = (double)x;
        r = bits_f64(z);
    }
    return host_end(e, r, !from_dbl);
}

/* float -> int32/int64; invalid -> integer indefinite (IE). */
static uint64_t fp_to_int(FPEnv *e, uint64_t a, int dbl, bool is64, bool truncate)
{
    uint64_t indef = is64 ? 1ull << 63 : 0x80000000u;
    if (is_nan(a, dbl)) {
        e->flags |= FPE_IE;
        return indef;
    }
    if (is_denorm(a, dbl) && (e->mxcsr & MXCSR_DAZ))
        a &= sign_bit(dbl);                 /* no DE for conversions to integer */
    double x = dbl ? as_f64(a) : as_f32(a);
    FPEnv t = *e;
    if (truncate)
        t.mxcsr = (t.mxcsr & ~0x6000u) | 0x6000u;
    host_begin(&t);
    volatile double vx = x;
    volatile double rr = nearbyint(vx);
    int xf = fetestexcept(FE_ALL_EXCEPT);
    fesetround(FE_TONEAREST);
    double lim = is64 ? 9223372036854775808.0 : 2147483648.0;
    if (!(rr >= -lim && rr < lim)) {
        e->flags |= FPE_IE;
        return indef;
    }
    if (rr != x)
        e->flags |= FPE_PE;
    (void)xf;
    int64_t v = (int64_t)rr;
    return is64 ? (uint64_t)v : (uint32_t)(int32_t)v;
}

static uint64_t int_to_fp(FPEnv *e, int64_t v, int dbl)
{
    host_begin(e);
    uint64_t r;
    if (dbl) {
        volatile int64_t x = v;
        volatile double z = (double)x;
        r = bits_f64(z);
    } else {
        volatile int64_t x = v;
        volatile float z = (float)x;
        r = bits_f32(z);
    }
    return host_end(e, r, dbl);
}

/* RCP / RSQRT approximations (see the header comment). */
static uint32_t fp_approx(uint32_t a, bool rsqrt)
{
    if (is_nan(a, 0))
        return a | 0x400000u;
    if (is_denorm(a, 0) || is_zero(a, 0))
        return (a & 0x80000000u) | 0x7f800000u;          /* denormals read as zero here */
    if (rsqrt && (a & 0x80000000u))
        return 0xffc00000u;
    double x = as_f32(a);
    double r = rsqrt ? 1.0 / sqrt(x) : 1.0 / x;
    float f = (float)r;
    uint32_t u = (uint32_t)bits_f32(f);
    if ((u & 0x7f800000u) == 0 || (u & 0x7f800000u) == 0x7f800000u)
        return u & 0xff800000u;                          /* tiny -> signed zero; huge -> inf */
    return u & ~0xfffu;                                  /* keep 12 significant bits */
}

/* ---------------- instruction level ---------------- */
/* Commit flags: unmasked -> #XM/#UD with the destination untouched. */
void fp_commit(TCGCPU *cpu, const FPEnv *e)
{
    unsigned f = e->flags & FPE_ALL;
    unsigned unmasked = f & ~(cpu->mxcsr >> 7) & FPE_ALL;
    if (unmasked) {
        /* Pre-computation exceptions (IE, DE, ZE) hide the post-computation ones. */
        if (unmasked & (FPE_IE | FPE_DE | FPE_ZE))
            f &= FPE_IE | FPE_DE | FPE_ZE;
        cpu->mxcsr |= f;
        raise_exception(cpu, (cpu->cr4 & CR4_OSXMMEXCPT) ? EXCP_XM : EXCP_UD);
    }
    cpu->mxcsr |= f;
}

static uint64_t el(const XMMReg *x, int dbl, int i) { return dbl ? x->q[i] : x->d[i]; }
static void el_set(XMMReg *x, int dbl, int i, uint64_t v)
{
    if (dbl) x->q[i] = v; else x->d[i] = (uint32_t)v;
}

int helper_sse_fp(TCGCPU *cpu, const DecodedOp *op)
{
    unsigned opc = op->imm16 & 0xff, pf = op->sub & 3;
    XMMReg *d = &cpu->xmm[op->reg & 15];
    FPEnv e = { cpu->mxcsr, 0, 0 };
    int dbl = pf == PF_66 || pf == PF_F2;
    bool scalar = pf >= PF_F3;
    int n = scalar ? 1 : dbl ? 2 : 4;
    unsigned len = scalar ? (dbl ? 8 : 4) : 16;
    XMMReg r = *d, s;

    switch (opc) {
    case 0x51: case 0x58: case 0x59: case 0x5c: case 0x5d: case 0x5e: case 0x5f: {
        int k = opc == 0x51 ? 8 : (int)(opc - 0x58);
        s = sse_src(cpu, op, len, true);
        for (int i = 0; i < n; i++)
            el_set(&r, dbl, i, fp_arith(&e, k, el(d, dbl, i), el(&s, dbl, i), dbl));
        break;
    }
    case 0x7c: case 0x7d: case 0xd0: {
        /*
         * SSE3 HADDPS/PD, HSUBPS/PD (F2 = single, 66 = double), ADDSUBPS/PD:
         * the pairs of the destination fill the low half and the pairs of
         * the source the high half; ADDSUB subtracts in even elements and
         * adds in odd ones (SDM 2A "ADDSUBPS", 2A "HADDPS").  Each element
         * is an ordinary ADD/SUB for NaNs, flags and rounding.
         */
        if (pf != PF_66 && pf != PF_F2)
            raise_exception(cpu, EXCP_UD);
        dbl = pf == PF_66;
        n = dbl ? 2 : 4;
        s = sse_src(cpu, op, 16, true);
        for (int i = 0; i < n; i++) {
            if (opc == 0xd0) {
                el_set(&r, dbl, i, fp_arith(&e, (i & 1) ? 0 : 4, el(d, dbl, i), el(&s, dbl, i), dbl));
            } else {
                const XMMReg *x = i < n / 2 ? d : &s;
                int k = 2 * (i % (n / 2));
                el_set(&r, dbl, i, fp_arith(&e, opc == 0x7c ? 0 : 4, el(x, dbl, k), el(x, dbl, k + 1), dbl));
            }
        }
        break;
    }
    case 0xc2:
        /* Legacy encodings use imm8[2:0]; bits 7:3 are reserved, not #UD (SDM 2A "CMPPS"). */
        s = sse_src(cpu, op, len, true);
        for (int i = 0; i < n; i++)
            el_set(&r, dbl, i, fp_cmp(&e, (unsigned)op->imm & 7, el(d, dbl, i), el(&s, dbl, i), dbl)
                                   ? (dbl ? ~0ull : 0xffffffffu) : 0);
        break;
    case 0x2e: case 0x2f: {     /* UCOMISS/COMISS (+SD with 66) */
        if (pf > PF_66)
            raise_exception(cpu, EXCP_UD);
        s = sse_src(cpu, op, dbl ? 8 : 4, true);
        uint64_t a = el(d, dbl, 0), b = el(&s, dbl, 0);
        bool un = is_nan(a, dbl) || is_nan(b, dbl);
        uint32_t fl;
        if (un) {
            if (opc == 0x2f || is_snan(a, dbl) || is_snan(b, dbl))
                e.flags |= FPE_IE;
            fl = CC_Z | CC_P | CC_C;
        } else {
            a = operand_in(&e, a, dbl);
            b = operand_in(&e, b, dbl);
            double x = dbl ? as_f64(a) : as_f32(a), y = dbl ? as_f64(b) : as_f32(b);
            fl = x == y ? CC_Z : x < y ? CC_C : 0;
        }
        fp_commit(cpu, &e);
        cc_set_flags(cpu, fl);
        return H_NEXT;
    }
    case 0x5a:                  /* CVTPS2PD CVTPD2PS CVTSS2SD CVTSD2SS */
        if (pf == PF_NONE) {
            s = sse_src(cpu, op, 8, true);
            for (int i = 0; i < 2; i++)
                r.q[i] = fp_convert(&e, s.d[i], 0);
        } else if (pf == PF_66) {
            s = sse_src(cpu, op, 16, true);
            for (int i = 0; i < 2; i++)
                r.d[i] = (uint32_t)fp_convert(&e, s.q[i], 1);
            r.q[1] = 0;
        } else if (pf == PF_F3) {
            s = sse_src(cpu, op, 4, true);
            r.q[0] = fp_convert(&e, s.d[0], 0);
        } else {
            s = sse_src(cpu, op, 8, true);
            r.d[0] = (uint32_t)fp_convert(&e, s.q[0], 1);
        }
        break;
    case 0x5b:                  /* CVTDQ2PS CVTPS2DQ CVTTPS2DQ */
        if (pf == PF_F2)
            raise_exception(cpu, EXCP_UD);
        s = sse_src(cpu, op, 16, true);
        for (int i = 0; i < 4; i++)
            r.d[i] = pf == PF_NONE ? (uint32_t)int_to_fp(&e, (int32_t)s.d[i], 0)
                                   : (uint32_t)fp_to_int(&e, s.d[i], 0, false, pf == PF_F3);
        break;
    case 0xe6:                  /* CVTTPD2DQ (66) CVTDQ2PD (F3) CVTPD2DQ (F2) */
        if (pf == PF_NONE)
            raise_exception(cpu, EXCP_UD);
        if (pf == PF_F3) {
            s = sse_src(cpu, op, 8, true);
            for (int i = 0; i < 2; i++)
                r.q[i] = int_to_fp(&e, (int32_t)s.d[i], 1);
        } else {
            s = sse_src(cpu, op, 16, true);
            for (int i = 0; i < 2; i++)
                r.d[i] = (uint32_t)fp_to_int(&e, s.q[i], 1, false, pf == PF_66);
            r.q[1] = 0;
        }
        break;
    case 0x2a:                  /* CVTSI2SS / CVTSI2SD r/m32/64; CVTPI2PS / CVTPI2PD mm/m64 */
        if (pf < PF_F3) {
            uint64_t v;
            if (op->rm != NOREG) {
                mmx_check(cpu);
                v = mmx_get(cpu, op->rm);
                mmx_enter(cpu);
            } else {
                v = lin_ld(cpu, op_lin(cpu, op, 8, ACC_READ), 3);
            }
            for (int i = 0; i < 2; i++)
                el_set(&r, dbl, i, int_to_fp(&e, (int32_t)(v >> (32 * i)), dbl));
            break;
        }
        {
            int64_t v = op->sz == 3 ? (int64_t)rm_read(cpu, op, 3) : (int64_t)(int32_t)rm_read(cpu, op, 2);
            el_set(&r, dbl, 0, int_to_fp(&e, v, dbl));
        }
        break;
    case 0x2c: case 0x2d:       /* CVTT / CVT SS2SI / SD2SI; PS2PI / PD2PI to an MMX register */
        if (pf < PF_F3) {
            mmx_check(cpu);
            s = sse_src(cpu, op, dbl ? 16 : 8, true);
            uint64_t v = 0;
            for (int i = 0; i < 2; i++)
                v |= fp_to_int(&e, el(&s, dbl, i), dbl, false, opc == 0x2c) << (32 * i);
            fp_commit(cpu, &e);
            mmx_enter(cpu);
            mmx_set(cpu, op->reg, v);
            return H_NEXT;
        }
        s = sse_src(cpu, op, dbl ? 8 : 4, true);
        {
            uint64_t v = fp_to_int(&e, el(&s, dbl, 0), dbl, op->sz == 3, opc == 0x2c);
            fp_commit(cpu, &e);
            reg_set(cpu, op->reg, op->sz == 3 ? 3 : 2, v);
        }
        return H_NEXT;
    case 0x52: case 0x53:       /* RSQRTPS/SS, RCPPS/SS: no exceptions */
        if (pf == PF_66 || pf == PF_F2)
            raise_exception(cpu, EXCP_UD);
        s = sse_src(cpu, op, pf == PF_F3 ? 4 : 16, true);
        for (int i = 0; i < (pf == PF_F3 ? 1 : 4); i++)
            r.d[i] = fp_approx(s.d[i], opc == 0x52);
        *d = r;
        return H_NEXT;
    default:
        LOG(LOG_UNIMP, "tcg: SSE instruction %s0f %02x not implemented -> #UD\n",
            (const char *[]){ "", "66 ", "f3 ", "f2 " }[pf], opc);
        raise_exception(cpu, EXCP_UD);
    }
    fp_commit(cpu, &e);
    *d = r;
    return H_NEXT;
}
