/*
 * Integer helpers with corner cases: shifts and rotates (SDM 2B "SAL/SAR/
 * SHL/SHR", "RCL/RCR/ROL/ROR", "SHLD", "SHRD"), multiply and divide with
 * #DE (SDM 2A "DIV", "IDIV"), BCD adjusts, bit tests and scans, CMPXCHG.
 * Undefined-flag choices are listed in flags.c.
 */
#include "accel/tcg/ops.h"

static inline unsigned width(int sz) { return 8u << sz; }
static inline uint64_t msb(uint64_t v, int sz) { return (v >> (width(sz) - 1)) & 1; }

/* Arithmetic flags with SF/ZF/PF of r and the given CF/OF, AF = 0. */
static void set_szp_co(TCGCPU *cpu, uint64_t r, int sz, bool cf, bool of)
{
    set_cc(cpu, CC_OP_LOGIC, sz, r, 0, 0);
    uint32_t f = cc_compute_all(cpu) & ~(CC_C | CC_O | CC_A);
    cc_set_flags(cpu, f | (cf ? CC_C : 0) | (of ? CC_O : 0));
}

/* count is already masked to 5 (6 with REX.W) bits and non-zero. */
uint64_t alu_shift(TCGCPU *cpu, int kind, uint64_t v, unsigned count, int sz)
{
    uint64_t m = size_mask[sz];
    unsigned w = width(sz);
    uint64_t r, a1;
    v &= m;
    switch (kind) {
    case 4: case 6:     /* SHL/SAL: CF = last bit shifted out, even past the width */
        a1 = count - 1 < 64 ? v << (count - 1) : 0;
        r = (a1 << 1) & m;
        if (count - 1 >= w)
            a1 = 0;
        set_cc(cpu, CC_OP_SHL, sz, r, a1, 0);
        return r;
    case 5:             /* SHR */
        a1 = v >> (count - 1);
        r = a1 >> 1;
        set_cc(cpu, CC_OP_SHR, sz, r, a1, 0);
        return r;
    case 7: {           /* SAR */
        int64_t sv = (int64_t)sext(v, sz);
        a1 = (uint64_t)(sv >> (count - 1 > 63 ? 63 : count - 1));
        r = (uint64_t)((int64_t)a1 >> 1) & m;
        set_cc(cpu, CC_OP_SHR, sz, r, a1 & m, 0);
        return r;
    }
    case 0: case 1: {   /* ROL / ROR: only CF and OF change */
        unsigned c = count & (w - 1);
        if (kind == 0)
            r = c ? ((v << c) | (v >> (w - c))) & m : v;
        else
            r = c ? ((v >> c) | (v << (w - c))) & m : v;
        uint32_t f = cc_compute_all(cpu) & ~(CC_C | CC_O);
        bool cf, of;
        if (kind == 0) {
            cf = r & 1;
            of = msb(r, sz) ^ cf;
        } else {
            cf = msb(r, sz);
            of = msb(r, sz) ^ ((r >> (w - 2)) & 1);
        }
        cc_set_flags(cpu, f | (cf ? CC_C : 0) | (of ? CC_O : 0));
        return r;
    }
    default: {          /* RCL / RCR through CF, modulo width+1 */
        unsigned c = count;
        if (sz == 0)
            c %= 9;
        else if (sz == 1)
            c %= 17;
        uint32_t f = cc_compute_all(cpu);
        bool cf = f & CC_C;
        bool of;
        r = v;
        if (kind == 2) {
            for (unsigned i = 0; i < c; i++) {
                bool out = msb(r, sz);
                r = ((r << 1) | cf) & m;
                cf = out;
            }
            of = msb(r, sz) ^ cf;
        } else {
            of = msb(v, sz) ^ cf;       /* computed before the rotate (SDM) */
            for (unsigned i = 0; i < c; i++) {
                bool out = r & 1;
                r = (r >> 1) | ((uint64_t)cf << (w - 1));
                cf = out;
            }
        }
        if (c == 0)
            of = f & CC_O;
        f &= ~(CC_C | CC_O);
        cc_set_flags(cpu, f | (cf ? CC_C : 0) | (of ? CC_O : 0));
        return r;
    }
    }
}

/* SHLD/SHRD; count masked and non-zero.  16-bit counts above 16 follow the
 * dst:src:dst pattern of real CPUs (architecturally undefined). */
uint64_t alu_shd(TCGCPU *cpu, bool right, uint64_t dst, uint64_t src, unsigned c, int sz)
{
    uint64_t m = size_mask[sz], r;
    bool cf;
    dst &= m;
    src &= m;
    if (sz == 1) {
        if (!right) {
            uint64_t t = (dst << 32) | (src << 16) | dst;
            r = (t << c) >> 32 & 0xffff;
            cf = (t >> (48 - c)) & 1;
        } else {
            uint64_t t = dst | (src << 16) | (dst << 32);
            r = (t >> c) & 0xffff;
            cf = (t >> (c - 1)) & 1;
        }
    } else if (sz == 2) {
        if (!right) {
            uint64_t t = (dst << 32) | src;
            r = (t << c) >> 32;
            cf = (t >> (64 - c)) & 1;
        } else {
            uint64_t t = dst | (src << 32);
            r = (t >> c) & 0xffffffffu;
            cf = (t >> (c - 1)) & 1;
        }
    } else {
        if (!right) {
            r = (dst << c) | (src >> (64 - c));
            cf = (dst >> (64 - c)) & 1;
        } else {
            r = (dst >> c) | (src << (64 - c));
            cf = (dst >> (c - 1)) & 1;
        }
    }
    set_szp_co(cpu, r, sz, cf, msb(r, sz) ^ msb(dst, sz));
    return r;
}

int helper_mul(TCGCPU *cpu, const DecodedOp *op)
{
    int sz = op->sz;
    uint64_t b = rm_read(cpu, op, sz);
    bool sgn = op->idx == OP_IMUL1_E;
    uint64_t lo, hi;
    bool ovf;
    if (sz == 3) {
        if (sgn) {
            __int128 p = (__int128)(int64_t)cpu->regs[R_EAX] * (int64_t)b;
            lo = (uint64_t)p;
            hi = (uint64_t)(p >> 64);
            ovf = (__int128)(int64_t)lo != p;
        } else {
            unsigned __int128 p = (unsigned __int128)cpu->regs[R_EAX] * b;
            lo = (uint64_t)p;
            hi = (uint64_t)(p >> 64);
            ovf = hi != 0;
        }
        cpu->regs[R_EAX] = lo;
        cpu->regs[R_EDX] = hi;
    } else {
        unsigned w = width(sz);
        uint64_t a = reg_get(cpu, R_EAX, sz);
        uint64_t p;
        if (sgn) {
            int64_t sp = (int64_t)sext(a, sz) * (int64_t)sext(b, sz);
            p = (uint64_t)sp;
            ovf = (int64_t)sext(p & size_mask[sz], sz) != sp;
        } else {
            p = a * b;
            ovf = (p >> w) != 0;
        }
        lo = p & size_mask[sz];
        hi = (p >> w) & size_mask[sz];
        if (sz == 0) {
            reg_set(cpu, R_EAX, 1, p & 0xffff);
        } else {
            reg_set(cpu, R_EAX, sz, lo);
            reg_set(cpu, R_EDX, sz, hi);
        }
    }
    set_cc(cpu, CC_OP_MUL, sz, lo, 0, 0);
    cpu->cc_aux = ovf;
    return H_NEXT;
}

uint64_t alu_imul2(TCGCPU *cpu, uint64_t a, uint64_t b, int sz)
{
    uint64_t r;
    bool ovf;
    if (sz == 3) {
        __int128 p = (__int128)(int64_t)a * (int64_t)b;
        r = (uint64_t)p;
        ovf = (__int128)(int64_t)r != p;
    } else {
        int64_t p = (int64_t)sext(a, sz) * (int64_t)sext(b, sz);
        r = (uint64_t)p & size_mask[sz & 3];
        ovf = (int64_t)sext(r, sz) != p;
    }
    set_cc(cpu, CC_OP_MUL, sz, r, 0, 0);
    cpu->cc_aux = ovf;
    return r;
}

int helper_div(TCGCPU *cpu, const DecodedOp *op)
{
    int sz = op->sz;
    uint64_t d = rm_read(cpu, op, sz);
    bool sgn = op->idx == OP_IDIV_E;
    unsigned w = width(sz);
    if (d == 0)
        raise_exception(cpu, EXCP_DE);
    /* Dividend: AX, DX:AX, EDX:EAX or RDX:RAX, as a 128-bit value. */
    unsigned __int128 n;
    if (sz == 0)
        n = cpu->regs[R_EAX] & 0xffff;
    else
        n = ((unsigned __int128)reg_get(cpu, R_EDX, sz) << w) | reg_get(cpu, R_EAX, sz);
    uint64_t q, rem;
    if (!sgn) {
        unsigned __int128 qq = n / d;
        if (qq > size_mask[sz])
            raise_exception(cpu, EXCP_DE);
        q = (uint64_t)qq;
        rem = (uint64_t)(n % d);
    } else {
        /* Signed: guard the one host-overflowing case (MIN / -1) explicitly. */
        if (sz < 3) {
            unsigned dbits = 2 * w;
            int64_t ns = (int64_t)((uint64_t)n << (64 - dbits)) >> (64 - dbits);
            int64_t ds = (int64_t)sext(d, sz);
            if (ds == -1 && ns == INT64_MIN)
                raise_exception(cpu, EXCP_DE);
            int64_t qs = ns / ds, rs = ns % ds;
            int64_t lim = (int64_t)1 << (w - 1);
            if (qs >= lim || qs < -lim)
                raise_exception(cpu, EXCP_DE);
            q = (uint64_t)qs & size_mask[sz];
            rem = (uint64_t)rs & size_mask[sz];
        } else {
            __int128 ns = (__int128)n;
            int64_t ds = (int64_t)d;
            if (ds == -1 && n == ((unsigned __int128)1 << 127))
                raise_exception(cpu, EXCP_DE);
            __int128 qs = ns / ds, rs = ns % ds;
            if (qs > INT64_MAX || qs < INT64_MIN)
                raise_exception(cpu, EXCP_DE);
            q = (uint64_t)qs;
            rem = (uint64_t)rs;
        }
    }
    if (sz == 0) {
        reg_set(cpu, R_EAX, 1, (q & 0xff) | ((rem & 0xff) << 8));
    } else {
        reg_set(cpu, R_EAX, sz, q);
        reg_set(cpu, R_EDX, sz, rem);
    }
    return H_NEXT;
}

int helper_bcd(TCGCPU *cpu, const DecodedOp *op)
{
    uint32_t f = cc_compute_all(cpu);
    uint8_t al = (uint8_t)cpu->regs[R_EAX], ah = (uint8_t)(cpu->regs[R_EAX] >> 8);
    bool cf = f & CC_C, af = f & CC_A;
    switch (op->sub) {
    case 0: {   /* DAA */
        uint8_t old = al;
        bool ocf = cf;
        cf = false;
        if ((al & 0xf) > 9 || af) {
            cf = ocf || al > 0xf9;
            al += 6;
            af = true;
        } else {
            af = false;
        }
        if (old > 0x99 || ocf) {
            al += 0x60;
            cf = true;
        }
        reg_set(cpu, R_EAX, 0, al);
        break;
    }
    case 1: {   /* DAS */
        uint8_t old = al;
        bool ocf = cf;
        cf = false;
        if ((al & 0xf) > 9 || af) {
            cf = ocf || al < 6;
            al -= 6;
            af = true;
        } else {
            af = false;
        }
        if (old > 0x99 || ocf) {
            al -= 0x60;
            cf = true;
        }
        reg_set(cpu, R_EAX, 0, al);
        break;
    }
    case 2: case 3: {   /* AAA / AAS */
        uint16_t ax = (uint16_t)cpu->regs[R_EAX];
        if ((al & 0xf) > 9 || af) {
            if (op->sub == 2) {
                ax += 0x106;
            } else {
                ax -= 6;
                ax -= 0x100;
            }
            af = cf = true;
        } else {
            af = cf = false;
        }
        ax &= 0xff0f;
        reg_set(cpu, R_EAX, 1, ax);
        al = (uint8_t)ax;
        break;
    }
    case 4:     /* AAM */
        if ((uint8_t)op->imm == 0)
            raise_exception(cpu, EXCP_DE);
        ah = al / (uint8_t)op->imm;
        al = al % (uint8_t)op->imm;
        reg_set(cpu, R_EAX, 1, al | (ah << 8));
        cf = af = false;
        break;
    default:    /* AAD */
        al = (uint8_t)(al + ah * (uint8_t)op->imm);
        reg_set(cpu, R_EAX, 1, al);
        cf = af = false;
        break;
    }
    set_cc(cpu, CC_OP_LOGIC, 0, al, 0, 0);
    f = cc_compute_all(cpu) & ~(CC_C | CC_A | CC_O);
    cc_set_flags(cpu, f | (cf ? CC_C : 0) | (af ? CC_A : 0));
    return H_NEXT;
}

int helper_bt(TCGCPU *cpu, const DecodedOp *op)
{
    int sz = op->sz;
    unsigned w = width(sz);
    uint64_t bitoff, v, lin = 0;
    if (op->idx == OP_BT_EI) {
        bitoff = op->imm & (w - 1);
        if (op->rm == NOREG)
            lin = op_lin(cpu, op, 1u << sz, op->sub ? ACC_WRITE : ACC_READ);
    } else {
        uint64_t off = reg_get(cpu, op->reg, sz);
        if (op->rm == NOREG) {
            /* Register bit offset reaches outside the operand (SDM 2A "BT"). */
            int64_t soff = (int64_t)sext(off, sz);
            int64_t disp = (soff >> (3 + sz)) * (int64_t)(1u << sz);
            uint64_t ea = (op_ea(cpu, op) + (uint64_t)disp) & size_mask[op->asz];
            lin = seg_lin(cpu, op->seg, ea, 1u << sz, op->sub ? ACC_WRITE : ACC_READ);
        }
        bitoff = off & (w - 1);
    }
    v = op->rm == NOREG ? lin_ld(cpu, lin, sz) : reg_get(cpu, op->rm, sz);
    bool bit = (v >> bitoff) & 1;
    uint64_t nv = v;
    switch (op->sub) {
    case 1: nv |= (uint64_t)1 << bitoff; break;
    case 2: nv &= ~((uint64_t)1 << bitoff); break;
    case 3: nv ^= (uint64_t)1 << bitoff; break;
    default: break;
    }
    if (op->sub) {
        if (op->rm == NOREG)
            lin_st(cpu, lin, sz, nv);
        else
            reg_set(cpu, op->rm, sz, nv);
    }
    uint32_t f = cc_compute_all(cpu) & ~CC_C;
    cc_set_flags(cpu, f | (bit ? CC_C : 0));
    return H_NEXT;
}

int helper_bitscan(TCGCPU *cpu, const DecodedOp *op)
{
    int sz = op->sz;
    unsigned w = width(sz);
    uint64_t v = rm_read(cpu, op, sz);
    uint32_t f = cc_compute_all(cpu);
    switch (op->idx) {
    case OP_BSF:
    case OP_BSR:
        if (v == 0) {
            f |= CC_Z;      /* destination unchanged */
        } else {
            f &= ~CC_Z;
            uint64_t idx = op->idx == OP_BSF ? (uint64_t)__builtin_ctzll(v)
                                             : (uint64_t)(63 - __builtin_clzll(v));
            reg_set(cpu, op->reg, sz, idx);
        }
        break;
    case OP_LZCNT: case OP_TZCNT: {
        uint64_t n;
        if (v == 0)
            n = w;
        else if (op->idx == OP_TZCNT)
            n = (uint64_t)__builtin_ctzll(v);
        else
            n = (uint64_t)__builtin_clzll(v) - (64 - w);
        reg_set(cpu, op->reg, sz, n);
        f &= ~(CC_C | CC_Z);
        f |= (v == 0 ? CC_C : 0) | (n == 0 ? CC_Z : 0);
        break;
    }
    default:        /* POPCNT */
        reg_set(cpu, op->reg, sz, (uint64_t)__builtin_popcountll(v));
        f = v == 0 ? CC_Z : 0;
        break;
    }
    cc_set_flags(cpu, f);
    return H_NEXT;
}

int helper_cmpxchg(TCGCPU *cpu, const DecodedOp *op)
{
    int sz = op->sz;
    uint64_t lin = 0, dst;
    if (op->rm == NOREG) {
        lin = op_lin(cpu, op, 1u << sz, ACC_WRITE);
        dst = lin_ld(cpu, lin, sz);
        /* The store below may fault: before the flags change (SDM 3A §6.5). */
        lin_probe_write(cpu, lin, 1u << sz);
    } else {
        dst = reg_get(cpu, op->rm, sz);
    }
    uint64_t acc = reg_get(cpu, R_EAX, sz);
    alu_op(cpu, 7, acc, dst, sz);
    if (acc == dst) {
        uint64_t src = reg_get(cpu, op->reg, sz);
        if (op->rm == NOREG)
            lin_st(cpu, lin, sz, src);
        else
            reg_set(cpu, op->rm, sz, src);
    } else {
        if (op->rm == NOREG)
            lin_st(cpu, lin, sz, dst);      /* the locked cycle always writes */
        reg_set(cpu, R_EAX, sz, dst);
    }
    return H_NEXT;
}

int helper_cmpxchg8b(TCGCPU *cpu, const DecodedOp *op)
{
    bool wide = op->sz == 3;        /* REX.W: CMPXCHG16B */
    int hsz = wide ? 3 : 2;
    unsigned bytes = wide ? 16 : 8;
    uint64_t ea = op_ea(cpu, op);
    if (wide && (ea & 15))
        raise_exception_err(cpu, EXCP_GP, 0);
    uint64_t lin = seg_lin(cpu, op->seg, ea, bytes, ACC_WRITE);
    lin_probe_write(cpu, lin, bytes);
    uint64_t lo = lin_ld(cpu, lin, hsz), hi = lin_ld(cpu, lin + (1u << hsz), hsz);
    uint32_t f = cc_compute_all(cpu);
    if (lo == reg_get(cpu, R_EAX, hsz) && hi == reg_get(cpu, R_EDX, hsz)) {
        lin_st(cpu, lin, hsz, reg_get(cpu, R_EBX, hsz));
        lin_st(cpu, lin + (1u << hsz), hsz, reg_get(cpu, R_ECX, hsz));
        f |= CC_Z;
    } else {
        lin_st(cpu, lin, hsz, lo);
        lin_st(cpu, lin + (1u << hsz), hsz, hi);
        reg_set(cpu, R_EAX, hsz, lo);
        reg_set(cpu, R_EDX, hsz, hi);
        f &= ~CC_Z;
    }
    cc_set_flags(cpu, f);
    return H_NEXT;
}
