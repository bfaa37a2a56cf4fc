/*
 * The 0F 3A opcode map (SDM 2D Table A-5): every instruction takes an imm8.
 *
 *   SSSE3   PALIGNR 0F (MMX form without a prefix, XMM form with 66)
 *   SSE4.1  ROUNDPS/PD/SS/SD 08-0B, BLENDPS/PD 0C/0D, PBLENDW 0E,
 *           PEXTRB/W/D/Q 14-16, EXTRACTPS 17, PINSRB 20, INSERTPS 21,
 *           PINSRD/Q 22, DPPS 40, DPPD 41, MPSADBW 42
 *   PCLMUL  PCLMULQDQ 44
 *   SSE4.2  PCMPESTRM/PCMPESTRI/PCMPISTRM/PCMPISTRI 60-63
 *
 *   AES     AESKEYGENASSIST DF (the S-box is ops-sse-0f38.c's)
 *
 * Everything else in the map (SHA1RNDS4, GF2P8AFFINE*, the VEX-only
 * opcodes) and every form with the wrong mandatory prefix is #UD.
 *
 * Faults (SDM 2A §2.5 "Exception Classifications", types 4 and 5): CR0.EM = 1
 * or CR4.OSFXSR = 0 -> #UD, CR0.TS = 1 -> #NM; the MMX form of PALIGNR
 * follows the other MMX instructions (mmx_check: EM, TS, pending x87 #MF).
 * 16-byte memory operands must be aligned (#GP(0)) except for PCMPxSTRx
 * (SDM 2B PCMPESTRI: "not subject to the alignment requirement"); element
 * loads and stores (PINSR*, PEXTR*, ROUNDSS/SD, INSERTPS, EXTRACTPS) are
 * never alignment-checked.  Differentially tested against the host CPU by
 * tests/unit/test-tcg-diff.c, family "0f3a".
 */
#include "accel/tcg/ops.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum { PF_NONE = 0, PF_66 = 1, PF_F3 = 2, PF_F2 = 3 };

/* ---- PALIGNR (SDM 2B): (dst:src) >> (8 * imm), bytes past the pair read as 0 ---- */
static void palignr_bytes(uint8_t *res, const uint8_t *dst, const uint8_t *src, unsigned n,
                          unsigned shift)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned k = i + shift;
        res[i] = k < n ? src[k] : k < 2 * n ? dst[k - n] : 0;
    }
}

/* ---- ROUNDPS/PD/SS/SD (SDM 2B "ROUNDPS"; SDM 1 §4.8.4 rounding control) ---- */
/*
 * Rounds one binary32 (dbl = 0) or binary64 element to an integral value in
 * mode rc (0 nearest-even, 1 down, 2 up, 3 toward zero), exactly, on the
 * encoding.  An SNaN raises IE and is returned quieted, a QNaN is returned
 * as it is; DE is never raised (SDM: "Denormal is not signaled"), but DAZ
 * reads a denormal input as a signed zero.  PE is raised when the result
 * differs from the input, unless imm8 bit 3 suppresses it.
 */
static uint64_t round_element(FPEnv *e, uint64_t v, int dbl, unsigned rc, bool suppress_pe)
{
    const int mant = dbl ? 52 : 23, bias = dbl ? 1023 : 127;
    const uint64_t sign = 1ull << (dbl ? 63 : 31);
    const uint64_t emax = dbl ? 0x7ff : 0xff;
    uint64_t mag = v & (sign - 1);
    uint64_t bexp = mag >> mant;
    uint64_t frac = mag & ((1ull << mant) - 1);
    bool neg = v & sign;

    if (bexp == emax) {
        if (frac && !(frac >> (mant - 1))) {    /* SNaN */
            e->flags |= FPE_IE;
            return v | (1ull << (mant - 1));
        }
        return v;                               /* infinity or QNaN */
    }
    if (bexp == 0 && frac && (e->mxcsr & MXCSR_DAZ))
        return v & sign;
    if (mag == 0)
        return v;
    int ex = (int)bexp - bias;
    if (ex >= mant)
        return v;                               /* already integral */
    uint64_t r;
    bool up;
    if (ex < 0) {
        /* |v| < 1: the result is 0 or 1 in magnitude. */
        switch (rc) {
        case 0: up = ex == -1 && frac != 0; break;      /* > 0.5; exactly 0.5 ties to 0 */
        case 1: up = neg; break;
        case 2: up = !neg; break;
        default: up = false; break;
        }
        r = up ? (uint64_t)bias << mant : 0;
    } else {
        unsigned fbits = (unsigned)(mant - ex);
        uint64_t fmask = (1ull << fbits) - 1;
        uint64_t rem = mag & fmask;
        if (rem == 0)
            return v;
        uint64_t trunc = mag & ~fmask;
        uint64_t half = 1ull << (fbits - 1);
        switch (rc) {
        case 0: up = rem > half || (rem == half && ((trunc >> fbits) & 1)); break;
        case 1: up = neg; break;
        case 2: up = !neg; break;
        default: up = false; break;
        }
        /* A carry out of the significand bumps the exponent: still exact. */
        r = up ? trunc + (1ull << fbits) : trunc;
    }
    if (!suppress_pe)
        e->flags |= FPE_PE;
    return r | (neg ? sign : 0);
}

/*
 * DPPS / DPPD (SDM 2B): products (dst * src, masked ones +0.0), then the sum
 * (p0 + p1) + (p2 + p3).  IEEE addition commutes, but the NaN an x86 add
 * returns is its first operand, and the hardware orders the operands
 * differently per destination element (measured on an Intel host, matching
 * a swap-pairs then swap-halves reduction): element i gets
 * t[i] + t[i ^ 2] with t[k] = p[k ^ 1] + p[k]; DPPD's element i gets
 * p[i] + p[i ^ 1].
 */
static void dot_product_ps(FPEnv *e, XMMReg *r, const XMMReg *d, const XMMReg *s, unsigned imm)
{
    uint64_t p[4], t[4];
    for (int i = 0; i < 4; i++)
        p[i] = (imm >> (4 + i)) & 1 ? fp_arith(e, 1, d->d[i], s->d[i], 0) : 0;
    for (int i = 0; i < 4; i++)
        t[i] = fp_arith(e, 0, p[i ^ 1], p[i], 0);
    for (int i = 0; i < 4; i++) {
        uint64_t sum = fp_arith(e, 0, t[i], t[i ^ 2], 0);
        r->d[i] = (imm >> i) & 1 ? (uint32_t)sum : 0;
    }
}

static void dot_product_pd(FPEnv *e, XMMReg *r, const XMMReg *d, const XMMReg *s, unsigned imm)
{
    uint64_t p[2];
    for (int i = 0; i < 2; i++)
        p[i] = (imm >> (4 + i)) & 1 ? fp_arith(e, 1, d->q[i], s->q[i], 1) : 0;
    for (int i = 0; i < 2; i++) {
        uint64_t sum = fp_arith(e, 0, p[i], p[i ^ 1], 1);
        r->q[i] = (imm >> i) & 1 ? sum : 0;
    }
}

/* ---- MPSADBW (SDM 2B): eight 4-byte SADs of a sliding dst window ---- */
static void mpsadbw(XMMReg *r, const XMMReg *d, const XMMReg *s, unsigned imm)
{
    unsigned soff = (imm & 3) * 4, doff = ((imm >> 2) & 1) * 4;
    for (unsigned i = 0; i < 8; i++) {
        unsigned sum = 0;
        for (unsigned k = 0; k < 4; k++) {
            int diff = (int)d->b[doff + i + k] - (int)s->b[soff + k];
            sum += (unsigned)(diff < 0 ? -diff : diff);
        }
        r->w[i] = (uint16_t)sum;
    }
}

/* ---- PCLMULQDQ (SDM 2B): carry-less 64 x 64 -> 128 multiply ---- */
static void clmul64(uint64_t a, uint64_t b, uint64_t *lo, uint64_t *hi)
{
    uint64_t l = 0, h = 0;
    for (int i = 0; i < 64; i++)
        if ((b >> i) & 1) {
            l ^= a << i;
            if (i)
                h ^= a >> (64 - i);
        }
    *lo = l;
    *hi = h;
}

/* ---- PCMPESTRI/M, PCMPISTRI/M (SDM 2B §4.1 "Imm8 Control Byte Operation") ---- */
/*
 * imm8: [1:0] element format (unsigned bytes, unsigned words, signed bytes,
 * signed words); [3:2] aggregation (equal any, ranges, equal each, equal
 * ordered); [5:4] polarity (+, -, masked +, masked -); [6] index: most
 * significant bit / mask: expanded to elements.  Operand 1 (xmm1) is the
 * set, the ranges or the needle; operand 2 (xmm2/m128) the string.
 */
static int str_element(const XMMReg *x, unsigned imm, unsigned i)
{
    switch (imm & 3) {
    case 0: return x->b[i];
    case 1: return x->w[i];
    case 2: return (int8_t)x->b[i];
    default: return (int16_t)x->w[i];
    }
}

/*
 * Byte elements, sixteen at a time, in GCC's generic vectors (SSE2 on an
 * x86-64 host, plain code elsewhere): a comparison gives 0xff in each
 * equal byte.  bytevec_mask gathers bit 7 of each byte into a 16-bit mask
 * (element i -> bit i): the host's PMOVMSKB, or elsewhere a multiply that
 * lands the eight bits 8k+7 of each half in bits 56+k.
 */
typedef uint8_t ByteVec __attribute__((vector_size(16)));

static inline ByteVec bytevec(const XMMReg *x)
{
    ByteVec v;
    memcpy(&v, x->b, sizeof(v));
    return v;
}

static inline unsigned bytevec_mask(ByteVec v)
{
#ifdef __SSE2__
    return (unsigned)_mm_movemask_epi8((__m128i)v);
#else
    const uint64_t top = 0x8080808080808080ull, gather = 0x0002040810204081ull;
    uint64_t q[2];
    memcpy(q, &v, sizeof(q));
    return (unsigned)(((q[0] & top) * gather) >> 56) | (unsigned)((((q[1] & top) * gather) >> 56) << 8);
#endif
}

/* Implicit length: the index of the first zero element, or the element count. */
static unsigned str_implicit_len(const XMMReg *x, unsigned imm, unsigned n)
{
    if (!(imm & 1)) {
        unsigned z = bytevec_mask((ByteVec)(bytevec(x) == 0));
        return z ? (unsigned)__builtin_ctz(z) : 16;
    }
    for (unsigned i = 0; i < n; i++)
        if (str_element(x, imm, i) == 0)
            return i;
    return n;
}

/* Explicit length (SDM 2B PCMPESTRI): |EAX| or |RAX| (REX.W), saturated to the element count. */
static unsigned str_explicit_len(uint64_t v, bool w64, unsigned n)
{
    uint64_t mag;
    if (w64)
        mag = (int64_t)v < 0 ? -v : v;
    else
        mag = (int32_t)v < 0 ? -(uint64_t)(int64_t)(int32_t)v : (uint32_t)v;
    return mag > n ? n : (unsigned)mag;
}

/*
 * IntRes2 of SDM 2B §4.1.3-4.1.4 (aggregation, polarity).  Invalid elements
 * (past a length) override the comparison as in §4.1.6: equal any / ranges
 * never match them, equal each matches when both are invalid, equal ordered
 * treats the rest of a finished needle as matching and a finished string as
 * not.
 */
static unsigned str_compare(const XMMReg *a, unsigned la, const XMMReg *b, unsigned lb,
                            unsigned imm, unsigned n)
{
    unsigned res = 0;
    unsigned agg = (imm >> 2) & 3;
    if (!(imm & 1) && agg == 0) {
        /*
         * Equal any on bytes (strcspn, strpbrk, strspn): signedness does
         * not change equality, so raw bytes compare; each set element is
         * compared with all sixteen string bytes at once.
         */
        ByteVec str = bytevec(b), hit = { 0 };
        for (unsigned i = 0; i < la; i++)
            hit |= (ByteVec)(str == a->b[i]);
        res = bytevec_mask(hit) & ((1u << lb) - 1);
        agg = 4;                                /* done */
    } else if (!(imm & 1) && agg == 2) {
        /* Equal each on bytes (strcmp): the same, raw bytes compared; past
         * either length an element matches only if both are invalid. */
        unsigned eq = bytevec_mask((ByteVec)(bytevec(a) == bytevec(b)));
        unsigned va = (1u << la) - 1, vb = (1u << lb) - 1;
        res = (eq & va & vb) | (~va & ~vb & 0xffffu);
        agg = 4;
    }
    switch (agg) {
    case 4:
        break;
    case 0:                                     /* equal any */
        for (unsigned j = 0; j < lb; j++)
            for (unsigned i = 0; i < la; i++)
                if (str_element(a, imm, i) == str_element(b, imm, j)) {
                    res |= 1u << j;
                    break;
                }
        break;
    case 1:                                     /* ranges: a[2k] <= b[j] <= a[2k+1] */
        for (unsigned j = 0; j < lb; j++) {
            int c = str_element(b, imm, j);
            for (unsigned i = 0; i + 1 < la; i += 2)
                if (str_element(a, imm, i) <= c && c <= str_element(a, imm, i + 1)) {
                    res |= 1u << j;
                    break;
                }
        }
        break;
    case 2:                                     /* equal each */
        for (unsigned i = 0; i < n; i++) {
            bool m;
            if (i >= la || i >= lb)
                m = i >= la && i >= lb;
            else
                m = str_element(a, imm, i) == str_element(b, imm, i);
            res |= (unsigned)m << i;
        }
        break;
    default:                                    /* equal ordered: needle a at b[j] */
        for (unsigned j = 0; j < n; j++) {
            bool m = true;
            for (unsigned i = 0; i + j < n && i < la && m; i++)
                m = i + j < lb && str_element(a, imm, i) == str_element(b, imm, i + j);
            res |= (unsigned)m << j;
        }
        break;
    }
    switch ((imm >> 4) & 3) {
    case 1: res ^= (1u << n) - 1; break;        /* negative */
    case 3: res ^= (1u << lb) - 1; break;       /* masked negative: valid elements of b only */
    default: break;
    }
    return res;
}

/* SDM 2B PCMPESTRI "Affected Flags": CF result != 0, ZF xmm2 short, SF xmm1 short,
 * OF result bit 0; AF = PF = 0. */
static void str_set_flags(TCGCPU *cpu, unsigned res, unsigned la, unsigned lb, unsigned n)
{
    cc_set_flags(cpu, (res ? CC_C : 0) | (lb < n ? CC_Z : 0) | (la < n ? CC_S : 0) |
                      ((res & 1) ? CC_O : 0));
}

/* The index form's ECX: the least (or, imm8[6], most) significant set bit, or n. */
static unsigned str_index(unsigned res, unsigned imm, unsigned n)
{
    if (!res)
        return n;
    return (imm & 0x40) ? 31u - (unsigned)__builtin_clz(res) : (unsigned)__builtin_ctz(res);
}

void sse_pcmpistri(TCGCPU *cpu, const XMMReg *a, const XMMReg *b, unsigned imm)
{
    unsigned n = (imm & 1) ? 8 : 16;
    unsigned la = str_implicit_len(a, imm, n), lb = str_implicit_len(b, imm, n);
    unsigned res = str_compare(a, la, b, lb, imm, n);
    cpu->regs[R_ECX] = str_index(res, imm, n);         /* a 32-bit write: RCX zero-extended */
    str_set_flags(cpu, res, la, lb, n);
}

static int helper_pcmpstr(TCGCPU *cpu, const DecodedOp *op)
{
    unsigned opc = op->imm16 & 0xff, imm = (unsigned)op->imm & 0xff;
    unsigned n = (imm & 1) ? 8 : 16;
    bool explicit_len = opc <= 0x61, index = opc & 1;
    const XMMReg a = cpu->xmm[op->reg & 15];
    XMMReg b = sse_src(cpu, op, 16, false);
    unsigned la, lb;
    if (!explicit_len && index) {
        sse_pcmpistri(cpu, &a, &b, imm);
        return H_NEXT;
    }
    if (explicit_len) {
        la = str_explicit_len(cpu->regs[R_EAX], op->sz == 3, n);
        lb = str_explicit_len(cpu->regs[R_EDX], op->sz == 3, n);
    } else {
        la = str_implicit_len(&a, imm, n);
        lb = str_implicit_len(&b, imm, n);
    }
    unsigned res = str_compare(&a, la, &b, lb, imm, n);

    if (index) {
        reg_set(cpu, R_ECX, 2, str_index(res, imm, n));
    } else {
        XMMReg m;
        memset(&m, 0, sizeof(m));
        if (!(imm & 0x40))
            m.w[0] = (uint16_t)res;
        else
            for (unsigned i = 0; i < n; i++) {
                if (!((res >> i) & 1))
                    continue;
                if (n == 16)
                    m.b[i] = 0xff;
                else
                    m.w[i] = 0xffff;
            }
        cpu->xmm[0] = m;
    }
    str_set_flags(cpu, res, la, lb, n);
    return H_NEXT;
}

/* ---- element extract / insert ---- */
static int helper_extract(TCGCPU *cpu, const DecodedOp *op, unsigned opc, unsigned imm)
{
    const XMMReg *x = &cpu->xmm[op->reg & 15];
    bool mem = op->rm == NOREG;
    uint64_t v;
    int sz;
    switch (opc) {
    case 0x14: v = x->b[imm & 15]; sz = 0; break;                   /* PEXTRB */
    case 0x15: v = x->w[imm & 7]; sz = 1; break;                    /* PEXTRW */
    case 0x16:                                                      /* PEXTRD / PEXTRQ */
        if (op->sz == 3) {
            v = x->q[imm & 1];
            sz = 3;
        } else {
            v = x->d[imm & 3];
            sz = 2;
        }
        break;
    default: v = x->d[imm & 3]; sz = 2; break;                      /* EXTRACTPS */
    }
    if (mem)
        rm_write(cpu, op, sz, v);
    else
        reg_set(cpu, op->rm, sz == 3 ? 3 : 2, v);   /* register forms zero-extend */
    return H_NEXT;
}

static int helper_insert(TCGCPU *cpu, const DecodedOp *op, unsigned opc, unsigned imm)
{
    XMMReg *x = &cpu->xmm[op->reg & 15];
    switch (opc) {
    case 0x20:                                                      /* PINSRB */
        x->b[imm & 15] = (uint8_t)rm_read(cpu, op, 0);
        break;
    case 0x21: {                                                    /* INSERTPS */
        /* Source element COUNT_S (imm[7:6]) of a register, or the m32 itself. */
        XMMReg src = sse_src(cpu, op, 4, false);
        uint32_t v = src.d[op->rm != NOREG ? (imm >> 6) & 3 : 0];
        XMMReg r = *x;
        r.d[(imm >> 4) & 3] = v;
        for (int i = 0; i < 4; i++)
            if ((imm >> i) & 1)
                r.d[i] = 0;
        *x = r;
        break;
    }
    default:                                                        /* PINSRD / PINSRQ */
        if (op->sz == 3)
            x->q[imm & 1] = rm_read(cpu, op, 3);
        else
            x->d[imm & 3] = (uint32_t)rm_read(cpu, op, 2);
        break;
    }
    return H_NEXT;
}

int helper_sse_0f3a(TCGCPU *cpu, const DecodedOp *op)
{
    unsigned opc = op->imm16 & 0xff, pf = op->sub & 3, imm = (unsigned)op->imm & 0xff;

    if (opc == 0x0f && pf == PF_NONE) {         /* PALIGNR mm, mm/m64, imm8 */
        mmx_check(cpu);
        uint64_t s = mmx_src(cpu, op), d = mmx_get(cpu, op->reg);
        uint8_t sb[8], db[8], rb[8];
        uint64_t r;
        memcpy(sb, &s, 8);
        memcpy(db, &d, 8);
        palignr_bytes(rb, db, sb, 8, imm);
        memcpy(&r, rb, 8);
        mmx_enter(cpu);
        mmx_set(cpu, op->reg, r);
        return H_NEXT;
    }
    switch (opc) {
    case 0x08 ... 0x0f: case 0x14 ... 0x17: case 0x20 ... 0x22: case 0x40 ... 0x42: case 0x44:
    case 0x60 ... 0x63: case 0xdf:
        if (pf == PF_66)
            break;
        /* fall through */
    default:
        sse_unimp(cpu, op);
    }
    sse_insn_check(cpu);

    XMMReg *d = &cpu->xmm[op->reg & 15];
    XMMReg s, r;
    switch (opc) {
    case 0x08: case 0x09: case 0x0a: case 0x0b: {  /* ROUNDPS ROUNDPD ROUNDSS ROUNDSD */
        int dbl = opc & 1;
        bool scalar = opc >= 0x0a;
        unsigned len = scalar ? (dbl ? 8 : 4) : 16;
        s = sse_src(cpu, op, len, true);
        /* imm8 bit 2: use MXCSR.RC instead of imm8[1:0]; bit 3: no PE. */
        unsigned rc = (imm & 4) ? (cpu->mxcsr >> 13) & 3 : imm & 3;
        FPEnv e = { cpu->mxcsr, 0, 0 };
        r = *d;
        for (int i = 0; i < (scalar ? 1 : dbl ? 2 : 4); i++) {
            if (dbl)
                r.q[i] = round_element(&e, s.q[i], 1, rc, imm & 8);
            else
                r.d[i] = (uint32_t)round_element(&e, s.d[i], 0, rc, imm & 8);
        }
        fp_commit(cpu, &e);
        *d = r;
        return H_NEXT;
    }
    case 0x0c:                                  /* BLENDPS */
        s = sse_src(cpu, op, 16, true);
        for (int i = 0; i < 4; i++)
            if ((imm >> i) & 1)
                d->d[i] = s.d[i];
        return H_NEXT;
    case 0x0d:                                  /* BLENDPD */
        s = sse_src(cpu, op, 16, true);
        for (int i = 0; i < 2; i++)
            if ((imm >> i) & 1)
                d->q[i] = s.q[i];
        return H_NEXT;
    case 0x0e:                                  /* PBLENDW */
        s = sse_src(cpu, op, 16, true);
        for (int i = 0; i < 8; i++)
            if ((imm >> i) & 1)
                d->w[i] = s.w[i];
        return H_NEXT;
    case 0x0f:                                  /* PALIGNR xmm, xmm/m128, imm8 */
        s = sse_src(cpu, op, 16, true);
        palignr_bytes(r.b, d->b, s.b, 16, imm);
        *d = r;
        return H_NEXT;
    case 0x14 ... 0x17:
        return helper_extract(cpu, op, opc, imm);
    case 0x20 ... 0x22:
        return helper_insert(cpu, op, opc, imm);
    case 0x40: case 0x41: {                     /* DPPS DPPD */
        s = sse_src(cpu, op, 16, true);
        FPEnv e = { cpu->mxcsr, 0, 0 };
        if (opc == 0x40)
            dot_product_ps(&e, &r, d, &s, imm);
        else
            dot_product_pd(&e, &r, d, &s, imm);
        fp_commit(cpu, &e);
        *d = r;
        return H_NEXT;
    }
    case 0x42:                                  /* MPSADBW */
        s = sse_src(cpu, op, 16, true);
        mpsadbw(&r, d, &s, imm);
        *d = r;
        return H_NEXT;
    case 0x44:                                  /* PCLMULQDQ */
        s = sse_src(cpu, op, 16, true);
        clmul64(d->q[imm & 1], s.q[(imm >> 4) & 1], &r.q[0], &r.q[1]);
        *d = r;
        return H_NEXT;
    case 0xdf: {                                /* AESKEYGENASSIST (SDM 2A, FIPS-197 5.2) */
        s = sse_src(cpu, op, 16, true);
        for (int i = 0; i < 2; i++) {
            uint32_t x = s.d[2 * i + 1], sub = 0;      /* X1 = bits 63:32, X3 = bits 127:96 */
            for (int b = 0; b < 4; b++)
                sub |= (uint32_t)aes_sbox_byte((uint8_t)(x >> (8 * b))) << (8 * b);
            r.d[2 * i] = sub;
            r.d[2 * i + 1] = ((sub >> 8) | (sub << 24)) ^ (uint32_t)imm;   /* RotWord ^ RCON */
        }
        *d = r;
        return H_NEXT;
    }
    default:                                    /* 0x60 ... 0x63 */
        return helper_pcmpstr(cpu, op);
    }
}
