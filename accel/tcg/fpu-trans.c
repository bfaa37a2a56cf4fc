/*
 * x87 transcendental instructions (SDM 2A/2B: F2XM1, FYL2X, FYL2XP1,
 * FPATAN, FPTAN, FSIN, FCOS, FSINCOS) on top of softfloat80.c.
 *
 * Accuracy (documented, not bit-exact): values are evaluated with
 * round-to-nearest 64-bit-significand soft-float arithmetic (argument
 * reduction, then Taylor / atanh / atan series summed from the leading
 * term), so results are within a few units in the last place of the
 * 64-bit significand; FCW.RC and FCW.PC are not applied and C1 is left 0.
 * Real CPUs differ from each other in these last bits too (Intel reduces
 * with a 66-bit pi).  Trigonometric argument reduction uses pi/2 split in
 * 24-bit pieces (Cody-Waite) and is exact for |x| < 2^40; between 2^40 and
 * 2^63 the reduced argument loses accuracy.  |x| >= 2^63 sets C2 and
 * leaves ST0 alone, as the SDM specifies.
 */
#include "accel/tcg/fpu.h"

#define BIAS80 16383

static const SFStatus tmpl = { RC_NEAR, 64, 0, FPE_ALL, false, false };

static F80 add(F80 a, F80 b) { SFStatus t = tmpl; return f80_add(&t, a, b); }
static F80 sub(F80 a, F80 b) { SFStatus t = tmpl; return f80_sub(&t, a, b); }
static F80 mul(F80 a, F80 b) { SFStatus t = tmpl; return f80_mul(&t, a, b); }
static F80 divi(F80 a, F80 b) { SFStatus t = tmpl; return f80_div(&t, a, b); }
static F80 num(int64_t v) { return f80_from_i64(v); }

/* c * 2^lsb for a small positive integer c. */
static F80 scaled(uint64_t c, int lsb)
{
    F80 r = f80_from_i64((int64_t)c);
    r.se = (uint16_t)(r.se + lsb);
    return r;
}

static F80 konst(int k) { SFStatus t = tmpl; return f80_load_const(&t, k); }

static bool is_zero(F80 a) { return f80_class(a) == FC_ZERO; }
static F80 neg(F80 a) { a.se ^= 0x8000; return a; }
static F80 inf(bool sign) { return f80_make(sign, 0x7fff, 1ull << 63); }

/* Special operands shared by all: returns true with *r decided. */
static bool special1(SFStatus *s, F80 a, F80 *r)
{
    switch (f80_class(a)) {
    case FC_UNSUPPORTED:
        s->flags |= FPE_IE;
        *r = f80_indefinite;
        return true;
    case FC_SNAN:
        s->flags |= FPE_IE;
        /* fall through */
    case FC_QNAN:
        a.sig |= 1ull << 62;
        *r = a;
        return true;
    case FC_DENORMAL:
        s->flags |= FPE_DE;
        return false;
    default:
        return false;
    }
}

static bool special2(SFStatus *s, F80 a, F80 b, F80 *r)
{
    /* Two NaNs: reuse the arithmetic's selection rules. */
    if (f80_is_nan(a) || f80_is_nan(b) || f80_class(a) == FC_UNSUPPORTED ||
        f80_class(b) == FC_UNSUPPORTED) {
        *r = f80_add(s, a, b);
        return true;
    }
    if (f80_class(a) == FC_DENORMAL || f80_class(b) == FC_DENORMAL)
        s->flags |= FPE_DE;
    return false;
}

/* Inexact result: PE, and UE when it landed in the denormal range. */
static F80 finish(SFStatus *s, F80 r)
{
    s->c1 = false;
    if ((r.se & 0x7fff) == 0)
        s->flags |= FPE_UE;         /* only computed (non-exact) results get here */
    s->flags |= FPE_PE;
    return r;
}

/* ---- trigonometric ---- */
static bool too_big(F80 a) { return (a.se & 0x7fff) >= BIAS80 + 63; }

/* x = k * pi/2 + r, |r| <= ~pi/4; returns k mod 4. */
static unsigned reduce(F80 x, F80 *r)
{
    F80 ax = x;
    ax.se &= 0x7fff;
    F80 pio4 = scaled(0xc90fdaa22168c235ull >> 1, -63);     /* ~pi/4, a threshold only */
    SFStatus t = tmpl;
    if (f80_compare(&t, ax, pio4, true) <= 0) {
        *r = x;
        return 0;
    }
    F80 two_over_pi = divi(num(2), konst(3));
    F80 k = mul(x, two_over_pi);
    t = tmpl;
    k = f80_round_int(&t, k);
    t = tmpl;
    int64_t ki = f80_to_int(&t, k, 64, false);
    static const struct { uint64_t c; int lsb; } p[5] = {
        { 0xc90fda, -23 }, { 0xa22168, -47 }, { 0xc234c4, -71 }, { 0xc6628b, -95 },
        { 0x80dc1cd129024e08ull, -159 },
    };
    F80 v = x;
    for (int i = 0; i < 5; i++)
        v = sub(v, mul(k, scaled(p[i].c, p[i].lsb)));
    *r = v;
    return (unsigned)ki & 3;
}

static F80 sin_poly(F80 r)
{
    F80 r2 = mul(r, r), term = r, sum = r;
    for (int n = 1; n <= 14; n++) {
        term = divi(mul(term, r2), num(-(int64_t)(2 * n) * (2 * n + 1)));
        sum = add(sum, term);
    }
    return sum;
}

static F80 cos_poly(F80 r)
{
    F80 r2 = mul(r, r), term = num(1), sum = num(1);
    for (int n = 1; n <= 14; n++) {
        term = divi(mul(term, r2), num(-(int64_t)(2 * n - 1) * (2 * n)));
        sum = add(sum, term);
    }
    return sum;
}

/*
 * which: 0 sin, 1 cos, 2 tan, 3 sin and cos.  Returns false when |x| >= 2^63
 * (C2 = 1, operand unchanged).
 */
bool f80_trig(SFStatus *s, F80 a, int which, F80 *r1, F80 *r2)
{
    F80 sp;
    if (special1(s, a, &sp)) {
        *r1 = *r2 = sp;
        return true;
    }
    int c = f80_class(a);
    if (c == FC_INF) {
        s->flags |= FPE_IE;
        *r1 = *r2 = f80_indefinite;
        return true;
    }
    if (c == FC_ZERO) {
        *r1 = a;                            /* sin, tan of +-0 */
        *r2 = num(1);                       /* cos 0 */
        if (which == 1)
            *r1 = num(1);
        return true;
    }
    if (too_big(a))
        return false;
    F80 r;
    unsigned q = reduce(a, &r);
    F80 sn = sin_poly(r), cs = cos_poly(r);
    F80 S, C;
    switch (q) {
    case 0: S = sn; C = cs; break;
    case 1: S = cs; C = neg(sn); break;
    case 2: S = neg(sn); C = neg(cs); break;
    default: S = neg(cs); C = sn; break;
    }
    if (which == 0) {
        *r1 = finish(s, S);
    } else if (which == 1) {
        *r1 = finish(s, C);
    } else if (which == 2) {
        *r1 = finish(s, divi(S, C));
    } else {
        *r1 = finish(s, S);
        *r2 = finish(s, C);
    }
    return true;
}

/* ---- exponential and logarithms ---- */
F80 f80_2xm1(SFStatus *s, F80 a)
{
    F80 sp;
    if (special1(s, a, &sp))
        return sp;
    int c = f80_class(a);
    if (c == FC_ZERO)
        return a;
    if (c == FC_INF)
        return (a.se & 0x8000) ? neg(num(1)) : a;
    F80 t = mul(a, konst(5));               /* x ln 2 */
    F80 term = t, sum = t;
    for (int n = 2; n <= 40; n++) {
        term = divi(mul(term, t), num(n));
        if (is_zero(term) || (int)(sum.se & 0x7fff) - (int)(term.se & 0x7fff) > 70)
            break;
        sum = add(sum, term);
    }
    return finish(s, sum);
}

/* 2 * atanh(z) = ln((1+z)/(1-z)), |z| small. */
static F80 ln_atanh(F80 z)
{
    F80 z2 = mul(z, z), pw = z, sum = z;
    for (int n = 1; n <= 40; n++) {
        pw = mul(pw, z2);
        F80 term = divi(pw, num(2 * n + 1));
        if (is_zero(term) || (int)(sum.se & 0x7fff) - (int)(term.se & 0x7fff) > 70)
            break;
        sum = add(sum, term);
    }
    return add(sum, sum);
}

/* log2(x) for finite x > 0; exact integers for powers of two. */
static F80 log2_pos(F80 x)
{
    uint64_t m = x.sig;
    int e = (int)(x.se & 0x7fff);
    if (e == 0) {
        int lz = __builtin_clzll(m);
        m <<= lz;
        e = 1 - lz;
    }
    e -= BIAS80;
    F80 mf = f80_make(false, BIAS80, m);
    if (m > 0xb504f333f9de6484ull) {        /* > sqrt(2): use m/2 */
        mf.se = BIAS80 - 1;
        e += 1;
    }
    F80 z = divi(sub(mf, num(1)), add(mf, num(1)));
    F80 l = mul(ln_atanh(z), konst(2));     /* ln(m) * log2(e) */
    return add(num(e), l);
}

F80 f80_yl2x(SFStatus *s, F80 y, F80 x)
{
    F80 sp;
    if (special2(s, y, x, &sp))
        return sp;
    int cx = f80_class(x), cy = f80_class(y);
    bool xs = x.se >> 15, ys = y.se >> 15;
    if (xs && cx != FC_ZERO) {
        s->flags |= FPE_IE;
        return f80_indefinite;
    }
    if (cx == FC_ZERO) {
        if (cy == FC_ZERO) {
            s->flags |= FPE_IE;
            return f80_indefinite;
        }
        if (cy != FC_INF)
            s->flags |= FPE_ZE;
        return inf(!ys);
    }
    if (cx == FC_INF) {
        if (cy == FC_ZERO) {
            s->flags |= FPE_IE;
            return f80_indefinite;
        }
        return inf(ys);
    }
    F80 l = log2_pos(x);
    if (cy == FC_INF) {
        if (is_zero(l)) {
            s->flags |= FPE_IE;
            return f80_indefinite;
        }
        return inf(ys ^ (l.se >> 15));
    }
    if (cy == FC_ZERO || is_zero(l))
        return f80_make(ys ^ (is_zero(l) ? 0 : l.se >> 15), 0, 0);
    SFStatus t = tmpl;
    F80 r = f80_mul(&t, y, l);
    s->flags |= t.flags & (FPE_OE | FPE_UE);
    return finish(s, r);
}

F80 f80_yl2xp1(SFStatus *s, F80 y, F80 x)
{
    F80 sp;
    if (special2(s, y, x, &sp))
        return sp;
    int cx = f80_class(x), cy = f80_class(y);
    bool ys = y.se >> 15;
    if (cx == FC_INF) {
        /* log2(1 + inf) = inf (as hardware does); log2(1 - inf) is invalid. */
        if ((x.se >> 15) || cy == FC_ZERO) {
            s->flags |= FPE_IE;
            return f80_indefinite;
        }
        return inf(ys);
    }
    if (cx == FC_ZERO) {
        if (cy == FC_INF) {
            s->flags |= FPE_IE;
            return f80_indefinite;
        }
        return f80_make(ys ^ (x.se >> 15), 0, 0);
    }
    if (cy == FC_INF)
        return inf(ys ^ (x.se >> 15));
    if (cy == FC_ZERO)
        return f80_make(ys ^ (x.se >> 15), 0, 0);
    SFStatus t = tmpl;
    F80 r;
    if ((x.se & 0x7fff) < BIAS80 - 66) {
        /* |x| < 2^-66: log2(1+x) = x*log2(e) to 64 bits; multiply y*log2(e) first so
         * that a denormal x is rounded only once. */
        r = f80_mul(&t, mul(y, konst(2)), x);
    } else {
        F80 z = divi(x, add(num(2), x));
        r = f80_mul(&t, y, mul(ln_atanh(z), konst(2)));
    }
    s->flags |= t.flags & (FPE_OE | FPE_UE);
    return finish(s, r);
}

/* ---- arctangent ---- */
static F80 atan_small(F80 t)        /* 0 <= t <= 1 */
{
    F80 off = f80_make(false, 0, 0);
    F80 tan15 = sub(num(2), f80_make(false, BIAS80, 0xddb3d742c265539dull));  /* 2 - sqrt3 */
    SFStatus c = tmpl;
    if (f80_compare(&c, t, tan15, true) > 0) {
        F80 sqrt3 = f80_make(false, BIAS80, 0xddb3d742c265539dull);
        t = divi(sub(mul(t, sqrt3), num(1)), add(sqrt3, t));
        off = divi(konst(3), num(6));
    }
    F80 t2 = mul(t, t), pw = t, sum = t;
    for (int n = 1; n <= 40; n++) {
        pw = mul(pw, t2);
        F80 term = divi(pw, num((n & 1) ? -(2 * n + 1) : (2 * n + 1)));
        if (is_zero(term) || (int)(sum.se & 0x7fff) - (int)(term.se & 0x7fff) > 70)
            break;
        sum = add(sum, term);
    }
    return add(off, sum);
}

/* FPATAN: atan2(y = ST1, x = ST0). */
F80 f80_atan2(SFStatus *s, F80 y, F80 x)
{
    F80 sp;
    if (special2(s, y, x, &sp))
        return sp;
    int cx = f80_class(x), cy = f80_class(y);
    bool xs = x.se >> 15, ys = y.se >> 15;
    F80 pi = konst(3), pi2 = divi(pi, num(2)), pi4 = divi(pi, num(4));
    F80 r;
    if (cy == FC_ZERO) {
        if (!xs)
            return y;
        r = pi;
    } else if (cx == FC_ZERO) {
        r = pi2;
    } else if (cy == FC_INF) {
        if (cx == FC_INF)
            r = xs ? mul(pi4, num(3)) : pi4;
        else
            r = pi2;
    } else if (cx == FC_INF) {
        if (!xs)
            return f80_make(ys, 0, 0);
        r = pi;
    } else {
        F80 ax = x, ay = y;
        ax.se &= 0x7fff;
        ay.se &= 0x7fff;
        SFStatus c = tmpl;
        bool swap = f80_compare(&c, ay, ax, true) > 0;
        F80 a = atan_small(swap ? divi(ax, ay) : divi(ay, ax));
        if (swap)
            a = sub(pi2, a);
        if (xs)
            a = sub(pi, a);
        r = a;
    }
    if (ys)
        r = neg(r);
    return finish(s, r);
}
