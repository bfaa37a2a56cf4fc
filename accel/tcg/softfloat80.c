/*
 * Soft-float for the x87 80-bit double-extended format, written for
 * Kestrel from the SDM's definitions (SDM 1 §4.2.2 formats, §4.8 special
 * values, §4.9 exceptions, §8.3-8.5 x87 rules, Table 4-7 NaN selection).
 * See fpu.h for the contract.
 *
 * Internal form: a value is v * 2^(e - bias - 127) with v an unsigned
 * 128-bit integer (host unsigned __int128, a GNU extension).  Sums,
 * products and quotients are formed exactly (or with a sticky bit below
 * all rounding positions) and rounded once by round_core().
 */
#include "accel/tcg/fpu.h"

typedef unsigned __int128 u128;

#define BIAS80   16383
#define EMAX80   0x7fff
#define REBIAS80 24576      /* SDM 1 §8.5.4: 3 * 2^13 */
#define QBIT     (1ull << 62)
#define IBIT     (1ull << 63)

const F80 f80_indefinite = { 0xc000000000000000ull, 0xffff };

/* Exact constants to 128 bits (for rounding under any RC), FLD1..FLDZ order. */
static const struct { uint16_t e; uint64_t hi, lo; } konst[7] = {
    { 0x3fff, 0x8000000000000000ull, 0 },                          /* 1 */
    { 0x4000, 0xd49a784bcd1b8afeull, 0x492bf6ff4dafdb4cull },      /* log2(10) */
    { 0x3fff, 0xb8aa3b295c17f0bbull, 0xbe87fed0691d3e88ull },      /* log2(e) */
    { 0x4000, 0xc90fdaa22168c234ull, 0xc4c6628b80dc1cd1ull },      /* pi */
    { 0x3ffd, 0x9a209a84fbcff798ull, 0x8f8959ac0b7c9178ull },      /* log10(2) */
    { 0x3ffe, 0xb17217f7d1cf79abull, 0xc9e3b39803f2f6afull },      /* ln(2) */
    { 0, 0, 0 },                                                   /* +0 */
};

typedef struct Fmt {
    int prec;               /* significand bits incl. the integer bit */
    int32_t bias, emax;     /* exponent bias, all-ones exponent field */
} Fmt;

static const Fmt fmt80 = { 64, BIAS80, EMAX80 };
static const Fmt fmt64 = { 53, 1023, 0x7ff };
static const Fmt fmt32 = { 24, 127, 0xff };

static int clz128(u128 v)
{
    uint64_t hi = (uint64_t)(v >> 64);
    if (hi)
        return __builtin_clzll(hi);
    return 64 + __builtin_clzll((uint64_t)v);
}

/* Shift right keeping a sticky bit in bit 0. */
static u128 shr_jam(u128 v, int32_t n)
{
    if (n <= 0)
        return v;
    if (n >= 128)
        return v != 0;
    return (v >> n) | ((v << (128 - n)) != 0);
}

/*
 * Round v * 2^(e - f->bias - 127) (sign given) to prec bits in format f.
 * Returns the significand with its integer bit at prec - 1 and the biased
 * exponent field in *eo (0 for zero/denormal, f->emax for infinity).
 */
static uint64_t round_core(SFStatus *s, const Fmt *f, int prec, bool sign, int32_t e, u128 v,
                           int32_t *eo)
{
    s->c1 = false;
    if (v == 0) {
        *eo = 0;
        return 0;
    }
    int lz = clz128(v);
    v <<= lz;
    e -= lz;
    uint8_t fl = 0;
    bool tiny = false;
    bool adjust = s->bias_adjust && f == &fmt80;
    if (e < 1) {
        if (adjust && !(s->masks & FPE_UE) && e + REBIAS80 >= 1) {
            e += REBIAS80;          /* unmasked underflow: deliver re-biased */
            fl |= FPE_UE;
        } else if (adjust && !(s->masks & FPE_UE)) {
            /* Too small even after re-biasing (FSCALE): a signed zero. */
            s->flags |= FPE_UE | FPE_PE;
            *eo = 0;
            return 0;
        } else {
            v = shr_jam(v, 1 - e);
            e = 1;
            tiny = true;
        }
    }
    int d = 128 - prec;
    u128 keep = v >> d;
    u128 rem = v & (((u128)1 << d) - 1);
    u128 half = (u128)1 << (d - 1);
    bool inc;
    switch (s->rc) {
    case RC_NEAR: inc = rem > half || (rem == half && (keep & 1)); break;
    case RC_UP: inc = !sign && rem; break;
    case RC_DOWN: inc = sign && rem; break;
    default: inc = false; break;
    }
    if (rem)
        fl |= FPE_PE;
    if (tiny && (rem || !(s->masks & FPE_UE)))
        fl |= FPE_UE;           /* masked: tiny and inexact; unmasked: tiny (SDM 1 §4.9.1.5) */
    if (inc) {
        keep++;
        if (keep >> prec) {
            keep >>= 1;
            e++;
        }
    }
    if (tiny && !(keep >> (prec - 1)))
        e = 0;                  /* stayed denormal */
    if (e >= f->emax) {
        if (adjust && !(s->masks & FPE_OE) && e - REBIAS80 < f->emax) {
            e -= REBIAS80;
            fl |= FPE_OE;
        } else if (adjust && !(s->masks & FPE_OE)) {
            /* Too large even after re-biasing (FSCALE): a signed infinity. */
            fl |= FPE_OE | FPE_PE;
            e = f->emax;
            keep = (u128)1 << (prec - 1);
            inc = true;
        } else {
            fl |= FPE_OE | FPE_PE;
            bool to_inf = s->rc == RC_NEAR || (s->rc == RC_UP && !sign) || (s->rc == RC_DOWN && sign);
            if (to_inf) {
                e = f->emax;
                keep = (u128)1 << (prec - 1);
                inc = true;
            } else {
                e = f->emax - 1;
                keep = ((u128)1 << prec) - 1;
                inc = false;
            }
        }
    }
    s->c1 = inc;
    s->flags |= fl;
    *eo = e;
    return (uint64_t)keep;
}

static F80 round_pack80(SFStatus *s, int prec, bool sign, int32_t e, u128 v)
{
    int32_t eo;
    uint64_t k = round_core(s, &fmt80, prec, sign, e, v, &eo);
    return f80_make(sign, (uint16_t)eo, k << (64 - prec));
}

/* ---- classification ---- */
int f80_class(F80 a)
{
    uint16_t e = F80_EXP(a);
    if (e == 0)
        return a.sig == 0 ? FC_ZERO : FC_DENORMAL;
    if (!(a.sig & IBIT))
        return FC_UNSUPPORTED;          /* unnormal, pseudo-NaN, pseudo-infinity */
    if (e == EMAX80) {
        if ((a.sig << 1) == 0)
            return FC_INF;
        return (a.sig & QBIT) ? FC_QNAN : FC_SNAN;
    }
    return FC_NORMAL;
}

bool f80_is_nan(F80 a)
{
    int c = f80_class(a);
    return c == FC_QNAN || c == FC_SNAN;
}

/* Unpacked finite operand: value = sig * 2^(e - BIAS80 - 63). */
typedef struct Un {
    bool sign;
    int cls;
    int32_t e;
    uint64_t sig;
} Un;

static Un unpack(F80 a)
{
    Un u = { F80_SIGN(a), f80_class(a), F80_EXP(a), a.sig };
    if (u.cls == FC_DENORMAL)
        u.e = 1;                        /* denormals and pseudo-denormals */
    return u;
}

static bool is_nan_cls(int c) { return c == FC_QNAN || c == FC_SNAN; }

static F80 quiet(F80 a)
{
    a.sig |= QBIT;
    return a;
}

/*
 * NaN / unsupported operands of a two-operand operation (SDM 1 Table 4-7):
 * returns true with *r set when the result is decided here.
 */
static bool nan2(SFStatus *s, F80 a, F80 b, const Un *ua, const Un *ub, F80 *r)
{
    if (ua->cls == FC_UNSUPPORTED || ub->cls == FC_UNSUPPORTED) {
        s->flags |= FPE_IE;
        *r = f80_indefinite;
        return true;
    }
    bool na = is_nan_cls(ua->cls), nb = is_nan_cls(ub->cls);
    if (!na && !nb)
        return false;
    if (ua->cls == FC_SNAN || ub->cls == FC_SNAN)
        s->flags |= FPE_IE;
    if (na && nb && ua->cls != ub->cls) {
        *r = quiet(ua->cls == FC_QNAN ? a : b);     /* SNaN and QNaN: the QNaN */
    } else if (na && nb) {
        uint64_t ma = a.sig | QBIT, mb = b.sig | QBIT;
        if (ma != mb)
            *r = quiet(ma > mb ? a : b);
        else
            *r = quiet(F80_SIGN(a) ? b : a);
    } else {
        *r = quiet(na ? a : b);
    }
    return true;
}

static void denormal_check(SFStatus *s, const Un *u)
{
    if (u->cls == FC_DENORMAL)
        s->flags |= FPE_DE;
}

static F80 inf80(bool sign) { return f80_make(sign, EMAX80, IBIT); }
static F80 zero80(bool sign) { return f80_make(sign, 0, 0); }

/* ---- add / sub ---- */
static F80 addsub(SFStatus *s, F80 a, F80 b, bool negb)
{
    Un ua = unpack(a), ub = unpack(b);
    F80 r;
    if (nan2(s, a, b, &ua, &ub, &r))
        return r;
    ub.sign ^= negb;
    if (ua.cls == FC_INF || ub.cls == FC_INF) {
        denormal_check(s, &ua);
        denormal_check(s, &ub);
        if (ua.cls == FC_INF && ub.cls == FC_INF && ua.sign != ub.sign) {
            s->flags |= FPE_IE;
            return f80_indefinite;
        }
        return inf80(ua.cls == FC_INF ? ua.sign : ub.sign);
    }
    denormal_check(s, &ua);
    denormal_check(s, &ub);
    if (ua.cls == FC_ZERO && ub.cls == FC_ZERO) {
        if (ua.sign == ub.sign)
            return zero80(ua.sign);
        return zero80(s->rc == RC_DOWN);
    }
    if (ua.cls == FC_ZERO)
        ua.e = ub.e;
    if (ub.cls == FC_ZERO)
        ub.e = ua.e;
    /* sig << 62: two guard bits of headroom at the top, 62 below. */
    u128 va = (u128)ua.sig << 62, vb = (u128)ub.sig << 62;
    int32_t e = ua.e;
    if (ua.e >= ub.e) {
        vb = shr_jam(vb, ua.e - ub.e);
    } else {
        va = shr_jam(va, ub.e - ua.e);
        e = ub.e;
    }
    bool sign;
    u128 v;
    if (ua.sign == ub.sign) {
        v = va + vb;
        sign = ua.sign;
    } else if (va >= vb) {
        v = va - vb;
        sign = ua.sign;
    } else {
        v = vb - va;
        sign = ub.sign;
    }
    if (v == 0)
        return zero80(s->rc == RC_DOWN);
    return round_pack80(s, s->prec, sign, e + 2, v);
}

F80 f80_add(SFStatus *s, F80 a, F80 b) { return addsub(s, a, b, false); }
F80 f80_sub(SFStatus *s, F80 a, F80 b) { return addsub(s, a, b, true); }

/* ---- mul / div ---- */
F80 f80_mul(SFStatus *s, F80 a, F80 b)
{
    Un ua = unpack(a), ub = unpack(b);
    F80 r;
    if (nan2(s, a, b, &ua, &ub, &r))
        return r;
    bool sign = ua.sign ^ ub.sign;
    if (ua.cls == FC_INF || ub.cls == FC_INF) {
        if (ua.cls == FC_ZERO || ub.cls == FC_ZERO) {
            s->flags |= FPE_IE;
            return f80_indefinite;
        }
        denormal_check(s, &ua);
        denormal_check(s, &ub);
        return inf80(sign);
    }
    denormal_check(s, &ua);
    denormal_check(s, &ub);
    if (ua.cls == FC_ZERO || ub.cls == FC_ZERO)
        return zero80(sign);
    u128 v = (u128)ua.sig * ub.sig;
    return round_pack80(s, s->prec, sign, ua.e + ub.e - BIAS80 + 1, v);
}

static void normalize(Un *u)
{
    int lz = __builtin_clzll(u->sig);
    u->sig <<= lz;
    u->e -= lz;
}

F80 f80_div(SFStatus *s, F80 a, F80 b)
{
    Un ua = unpack(a), ub = unpack(b);
    F80 r;
    if (nan2(s, a, b, &ua, &ub, &r))
        return r;
    bool sign = ua.sign ^ ub.sign;
    if (ua.cls == FC_INF) {
        if (ub.cls == FC_INF) {
            s->flags |= FPE_IE;
            return f80_indefinite;
        }
        denormal_check(s, &ub);
        return inf80(sign);
    }
    if (ub.cls == FC_INF) {
        denormal_check(s, &ua);
        return zero80(sign);
    }
    if (ub.cls == FC_ZERO) {
        if (ua.cls == FC_ZERO) {
            s->flags |= FPE_IE;
            return f80_indefinite;
        }
        s->flags |= FPE_ZE;             /* no DE for a denormal dividend (matches hardware) */
        return inf80(sign);
    }
    denormal_check(s, &ua);
    denormal_check(s, &ub);
    if (ua.cls == FC_ZERO)
        return zero80(sign);
    normalize(&ua);
    normalize(&ub);
    int sh = ua.sig >= ub.sig ? 63 : 64;
    u128 n = (u128)ua.sig << sh;
    u128 q1 = n / ub.sig, r1 = n % ub.sig;
    u128 n2 = r1 << 64;
    u128 q2 = n2 / ub.sig, r2 = n2 % ub.sig;
    u128 v = (q1 << 64) | q2 | (r2 != 0);
    return round_pack80(s, s->prec, sign, ua.e - ub.e + BIAS80 + 63 - sh, v);
}

/* ---- sqrt ---- */
F80 f80_sqrt(SFStatus *s, F80 a)
{
    Un ua = unpack(a);
    if (ua.cls == FC_UNSUPPORTED) {
        s->flags |= FPE_IE;
        return f80_indefinite;
    }
    if (is_nan_cls(ua.cls)) {
        if (ua.cls == FC_SNAN)
            s->flags |= FPE_IE;
        return quiet(a);
    }
    if (ua.cls == FC_ZERO)
        return a;
    if (ua.sign) {
        denormal_check(s, &ua);
        s->flags |= FPE_IE;
        return f80_indefinite;
    }
    if (ua.cls == FC_INF)
        return a;
    denormal_check(s, &ua);
    normalize(&ua);
    int32_t E = ua.e - BIAS80 - 63;      /* value = sig * 2^E */
    int sh = (E & 1) ? 63 : 64;          /* make E - sh even */
    u128 n = (u128)ua.sig << sh;
    int32_t half = (E - sh) / 2;         /* exact: E - sh is even */
    /* Digit-by-digit square root of n * 4^J, J = 4 extra root bits. */
    enum { J = 4 };
    u128 root = 0, rem = 0;
    for (int i = 0; i < 64 + J; i++) {
        unsigned two = i < 64 ? (unsigned)(n >> (126 - 2 * i)) & 3 : 0;
        rem = (rem << 2) | two;
        u128 t = (root << 2) | 1;
        if (rem >= t) {
            rem -= t;
            root = (root << 1) | 1;
        } else {
            root <<= 1;
        }
    }
    u128 v = (root << 1) | (rem != 0);       /* extra bit for the sticky */
    /* sqrt = root * 2^(half - J); v = 2 * root -> exponent one less. */
    return round_pack80(s, s->prec, false, half - J - 1 + BIAS80 + 127, v);
}

/* ---- integer conversions ---- */
F80 f80_from_i64(int64_t v)
{
    if (v == 0)
        return zero80(false);
    bool sign = v < 0;
    uint64_t m = sign ? 0 - (uint64_t)v : (uint64_t)v;
    int lz = __builtin_clzll(m);
    return f80_make(sign, (uint16_t)(BIAS80 + 63 - lz), m << lz);
}

/*
 * Round a finite value to an integer magnitude (fits 64 bits for values
 * below 2^64) under rc; *inexact and *up report the rounding.
 */
static uint64_t round_to_u64(const Un *u, int rc, bool *inexact, bool *up, bool *big)
{
    *inexact = *up = *big = false;
    if (u->cls == FC_ZERO)
        return 0;
    int32_t shift = BIAS80 + 63 - u->e;      /* fraction bits below the units place */
    if (shift <= 0) {
        *big = shift < 0;
        return shift < 0 ? 0 : u->sig;
    }
    u128 v = (u128)u->sig << 64;
    v = shr_jam(v, shift);                   /* 64 fraction bits, sticky */
    uint64_t ip = (uint64_t)(v >> 64), fr = (uint64_t)v;
    bool inc;
    switch (rc) {
    case RC_NEAR: inc = fr > IBIT || (fr == IBIT && (ip & 1)); break;
    case RC_UP: inc = !u->sign && fr; break;
    case RC_DOWN: inc = u->sign && fr; break;
    default: inc = false; break;
    }
    *inexact = fr != 0;
    *up = inc;
    if (inc) {
        ip++;
        if (ip == 0)
            *big = true;
    }
    return ip;
}

int64_t f80_to_int(SFStatus *s, F80 a, int bits, bool truncate)
{
    Un ua = unpack(a);
    int64_t indef = (int64_t)((uint64_t)1 << (bits - 1));
    if (bits == 16)
        indef = (int16_t)0x8000;
    else if (bits == 32)
        indef = (int32_t)0x80000000;
    s->c1 = false;
    if (ua.cls == FC_UNSUPPORTED || ua.cls == FC_INF || is_nan_cls(ua.cls)) {
        s->flags |= FPE_IE;
        return indef;
    }
    /* FIST/FISTTP do not report denormal operands (SDM 2A "FIST"). */
    bool inexact, up, big;
    uint64_t m = round_to_u64(&ua, truncate ? RC_ZERO : s->rc, &inexact, &up, &big);
    uint64_t lim = (uint64_t)1 << (bits - 1);       /* |min| */
    if (big || m > lim || (m == lim && !ua.sign)) {
        s->flags |= FPE_IE;
        return indef;
    }
    if (inexact) {
        s->flags |= FPE_PE;
        s->c1 = up;
    }
    return ua.sign ? (int64_t)(0 - m) : (int64_t)m;
}

F80 f80_round_int(SFStatus *s, F80 a)
{
    Un ua = unpack(a);
    if (ua.cls == FC_UNSUPPORTED) {
        s->flags |= FPE_IE;
        return f80_indefinite;
    }
    if (is_nan_cls(ua.cls)) {
        if (ua.cls == FC_SNAN)
            s->flags |= FPE_IE;
        return quiet(a);
    }
    s->c1 = false;
    if (ua.cls == FC_ZERO || ua.cls == FC_INF)
        return a;
    denormal_check(s, &ua);
    if (ua.e >= BIAS80 + 63)
        return a;
    bool inexact, up, big;
    uint64_t m = round_to_u64(&ua, s->rc, &inexact, &up, &big);
    if (inexact) {
        s->flags |= FPE_PE;
        s->c1 = up;
    }
    if (m == 0)
        return zero80(ua.sign);
    int lz = __builtin_clzll(m);
    return f80_make(ua.sign, (uint16_t)(BIAS80 + 63 - lz), m << lz);
}

/* ---- FSCALE, FXTRACT ---- */
F80 f80_scale(SFStatus *s, F80 a, F80 b)
{
    Un ua = unpack(a), ub = unpack(b);
    F80 r;
    if (nan2(s, a, b, &ua, &ub, &r))
        return r;
    if (ub.cls == FC_INF) {
        if (!ub.sign) {
            if (ua.cls == FC_ZERO) {
                s->flags |= FPE_IE;
                return f80_indefinite;
            }
            denormal_check(s, &ua);
            return inf80(ua.sign);
        }
        if (ua.cls == FC_INF) {
            s->flags |= FPE_IE;
            return f80_indefinite;
        }
        denormal_check(s, &ua);
        return zero80(ua.sign);
    }
    denormal_check(s, &ua);
    denormal_check(s, &ub);
    if (ua.cls == FC_INF || ua.cls == FC_ZERO)
        return a;
    /* n = trunc(ST1), clamped far beyond any representable result. */
    int32_t n;
    if (ub.cls == FC_ZERO || ub.e < BIAS80) {
        n = 0;
    } else if (ub.e > BIAS80 + 20) {
        n = ub.sign ? -(1 << 21) : (1 << 21);
    } else {
        n = (int32_t)(ub.sig >> (BIAS80 + 63 - ub.e));
        if (ub.sign)
            n = -n;
    }
    return round_pack80(s, 64, ua.sign, ua.e + n, (u128)ua.sig << 64);
}

void f80_xtract(SFStatus *s, F80 a, F80 *expo, F80 *sig)
{
    Un ua = unpack(a);
    if (ua.cls == FC_UNSUPPORTED) {
        s->flags |= FPE_IE;
        *expo = *sig = f80_indefinite;
        return;
    }
    if (is_nan_cls(ua.cls)) {
        if (ua.cls == FC_SNAN)
            s->flags |= FPE_IE;
        *expo = *sig = quiet(a);
        return;
    }
    if (ua.cls == FC_INF) {
        *expo = inf80(false);
        *sig = a;
        return;
    }
    if (ua.cls == FC_ZERO) {
        s->flags |= FPE_ZE;
        *expo = inf80(true);
        *sig = a;
        return;
    }
    denormal_check(s, &ua);
    normalize(&ua);
    *expo = f80_from_i64(ua.e - BIAS80);
    *sig = f80_make(ua.sign, BIAS80, ua.sig);
}

/* ---- FPREM / FPREM1 ---- */
F80 f80_rem(SFStatus *s, F80 a, F80 b, bool ieee, unsigned *q, bool *partial)
{
    Un ua = unpack(a), ub = unpack(b);
    F80 r;
    *q = 0;
    *partial = false;
    if (nan2(s, a, b, &ua, &ub, &r))
        return r;
    if (ua.cls == FC_INF || ub.cls == FC_ZERO) {
        s->flags |= FPE_IE;
        return f80_indefinite;
    }
    denormal_check(s, &ua);
    denormal_check(s, &ub);
    if (ua.cls == FC_ZERO)
        return a;
    if (ub.cls == FC_INF)
        return round_pack80(s, 64, ua.sign, ua.e, (u128)ua.sig << 64);   /* re-packed a */
    normalize(&ua);
    normalize(&ub);
    int32_t d = ua.e - ub.e;
    bool sign = ua.sign;
    int32_t e_res = ub.e;
    u128 rem;
    uint64_t quo = 0;
    if (d >= 64) {
        /* Partial remainder: reduce the exponent difference by N in [32, 63]
         * (implementation-dependent per the SDM; Kestrel uses 32 + d % 32). */
        int n = 32 + d % 32;
        int32_t dd = d - n;          /* divide by b * 2^dd */
        u128 num = (u128)ua.sig << n;
        quo = (uint64_t)(num / ub.sig);
        rem = num % ub.sig;
        e_res = ub.e + dd;
        *partial = true;
        s->c1 = false;
        return rem ? round_pack80(s, 64, sign, e_res, rem << 64) : zero80(sign);
    }
    if (d < 0) {
        if (ieee && d == -1 && ua.sig > ub.sig) {
            /* |a| in (|b|/2, |b|): a - b rounds the quotient to 1. */
            rem = ((u128)ub.sig << 1) - ua.sig;
            sign = !sign;
            quo = 1;
            e_res = ub.e - 1;
        } else {
            *q = 0;
            /* |a| < |b|: the remainder is a itself, re-packed (a pseudo-denormal
             * comes back normalised, as hardware does). */
            return round_pack80(s, 64, ua.sign, ua.e, (u128)ua.sig << 64);
        }
    } else {
        u128 num = (u128)ua.sig << d;
        u128 qq = num / ub.sig;
        rem = num % ub.sig;
        if (ieee && (2 * rem > ub.sig || (2 * rem == ub.sig && (qq & 1)))) {
            rem = ub.sig - rem;
            sign = !sign;
            qq++;
        }
        quo = (uint64_t)qq;
    }
    *q = (unsigned)(quo & 7);
    if (rem == 0)
        return zero80(ua.sign);
    return round_pack80(s, 64, sign, e_res, rem << 64);     /* exact */
}

/* ---- compare ---- */
int f80_compare(SFStatus *s, F80 a, F80 b, bool quiet_cmp)
{
    Un ua = unpack(a), ub = unpack(b);
    if (ua.cls == FC_UNSUPPORTED || ub.cls == FC_UNSUPPORTED) {
        s->flags |= FPE_IE;
        return 2;
    }
    if (is_nan_cls(ua.cls) || is_nan_cls(ub.cls)) {
        if (!quiet_cmp || ua.cls == FC_SNAN || ub.cls == FC_SNAN)
            s->flags |= FPE_IE;
        return 2;
    }
    denormal_check(s, &ua);
    denormal_check(s, &ub);
    if (ua.cls == FC_ZERO && ub.cls == FC_ZERO)
        return 0;
    /* Order by sign, then magnitude (exponent, significand). */
    if (ua.cls != FC_ZERO && ub.cls != FC_ZERO && ua.sign != ub.sign)
        return ua.sign ? -1 : 1;
    if (ua.cls == FC_ZERO)
        return ub.sign ? 1 : -1;
    if (ub.cls == FC_ZERO)
        return ua.sign ? -1 : 1;
    normalize(&ua);
    normalize(&ub);
    int mag;
    if (ua.e != ub.e)
        mag = ua.e > ub.e ? 1 : -1;
    else if (ua.sig != ub.sig)
        mag = ua.sig > ub.sig ? 1 : -1;
    else
        mag = 0;
    return ua.sign ? -mag : mag;
}

/* ---- binary32 / binary64 ---- */
static F80 from_ieee(SFStatus *s, bool sign, uint32_t exp, uint64_t frac, const Fmt *f)
{
    int fb = f->prec - 1;                   /* fraction bits */
    if (exp == (uint32_t)f->emax) {
        if (frac == 0)
            return inf80(sign);
        uint64_t sig = IBIT | (frac << (63 - fb));
        if (!(sig & QBIT))
            s->flags |= FPE_IE;
        return f80_make(sign, EMAX80, sig | QBIT);
    }
    if (exp == 0) {
        if (frac == 0)
            return zero80(sign);
        s->flags |= FPE_DE;
        int lz = __builtin_clzll(frac);
        /* value = frac * 2^(1 - bias - fb) */
        int32_t e = 1 - f->bias - fb + (63 - lz) + BIAS80;
        return f80_make(sign, (uint16_t)e, frac << lz);
    }
    return f80_make(sign, (uint16_t)(exp - (uint32_t)f->bias + BIAS80), IBIT | (frac << (63 - fb)));
}

F80 f80_from_f32(SFStatus *s, uint32_t v)
{
    return from_ieee(s, v >> 31, (v >> 23) & 0xff, v & 0x7fffff, &fmt32);
}

F80 f80_from_f64(SFStatus *s, uint64_t v)
{
    return from_ieee(s, v >> 63, (uint32_t)(v >> 52) & 0x7ff, v & ((1ull << 52) - 1), &fmt64);
}

/* Returns sign | exponent field | fraction, packed for format f. */
static uint64_t to_ieee(SFStatus *s, F80 a, const Fmt *f)
{
    Un ua = unpack(a);
    int fb = f->prec - 1;
    int tb = fb + (f == &fmt32 ? 8 : 11);    /* sign bit position */
    uint64_t sgn = (uint64_t)ua.sign << tb;
    uint64_t fmask = (1ull << fb) - 1;
    s->c1 = false;
    switch (ua.cls) {
    case FC_UNSUPPORTED:
        s->flags |= FPE_IE;
        return (1ull << tb) | ((uint64_t)f->emax << fb) | (1ull << (fb - 1));
    case FC_SNAN:
        s->flags |= FPE_IE;
        /* fall through */
    case FC_QNAN:
        return sgn | ((uint64_t)f->emax << fb) | ((a.sig >> (63 - fb)) & fmask) | (1ull << (fb - 1));
    case FC_INF:
        return sgn | ((uint64_t)f->emax << fb);
    case FC_ZERO:
        return sgn;
    default:
        break;
    }
    /* FST m32/m64 does not report denormal operands (SDM 2A "FST"). */
    int32_t e = ua.e - BIAS80 + f->bias;
    int32_t eo;
    bool save = s->bias_adjust;
    s->bias_adjust = false;
    uint64_t k = round_core(s, f, f->prec, ua.sign, e, (u128)ua.sig << 64, &eo);
    s->bias_adjust = save;
    return sgn | ((uint64_t)eo << fb) | (k & fmask);
}

uint32_t f80_to_f32(SFStatus *s, F80 a) { return (uint32_t)to_ieee(s, a, &fmt32); }
uint64_t f80_to_f64(SFStatus *s, F80 a) { return to_ieee(s, a, &fmt64); }

/* FLD1..FLDZ: the 128-bit constants rounded under the caller's RC. */
F80 f80_load_const(SFStatus *s, int k)
{
    if (k == 6)
        return zero80(false);
    u128 v = ((u128)konst[k].hi << 64) | konst[k].lo;
    SFStatus t = *s;
    t.flags = 0;
    F80 r = round_pack80(&t, 64, false, konst[k].e, v);
    s->c1 = t.c1;
    return r;
}
