/*
 * The 0F 38 opcode map (SDM 2D Table A-4, legacy (non-VEX) encodings):
 *
 *   SSSE3   00-0B, 1C-1E   PSHUFB PHADDW/D/SW PMADDUBSW PHSUBW/D/SW
 *                          PSIGNB/W/D PMULHRSW PABSB/W/D; MMX form without
 *                          a prefix, XMM form with 66
 *   SSE4.1  10 14 15 17    PBLENDVB BLENDVPS BLENDVPD (implicit XMM0) PTEST
 *           20-25, 30-35   PMOVSX* / PMOVZX* (partial, unaligned sources)
 *           28 29 2A 2B    PMULDQ PCMPEQQ MOVNTDQA PACKUSDW
 *           38-3F 40 41    PMINS/U*, PMAXS/U*, PMULLD, PHMINPOSUW
 *   SSE4.2  37             PCMPGTQ
 *   MOVBE   F0 F1          no prefix or 66: byte-swapping load / store
 *   CRC32   F2 F0 / F2 F1  CRC-32C accumulate (F2 wins over 66)
 *   ADX     66 F6 / F3 F6  ADCX (carry in and out through CF), ADOX (OF)
 *   AES     66 DB-DF       AESIMC AESENC AESENCLAST AESDEC AESDECLAST
 *   SHA     C8-CD          SHA1NEXTE SHA1MSG1/2 SHA256RNDS2 (XMM0) SHA256MSG1/2
 *   GFNI    66 CF          GF2P8MULB
 *   MOVDIRI F9, MOVDIR64B 66 F8: direct stores (plain stores here)
 *
 * Everything else in the map (other prefixes, VEX-only rows, INVEPT,
 * INVVPID, INVPCID, CET, ENQCMD) raises #UD through sse_unimp (logged
 * under -d unimp).  AESKEYGENASSIST, the 0F 3A half of AES, is in
 * ops-sse-0f3a.c; SHA1RNDS4 and GF2P8AFFINE* (0F 3A) are not implemented, so
 * SHA and GFNI are not advertised.
 *
 * Faults, per the instruction pages of SDM 2B/2C: an undefined form is #UD
 * before anything else; then the XMM forms take #UD for CR0.EM = 1 or
 * CR4.OSFXSR = 0 and #NM for CR0.TS = 1, the MMX forms #UD for EM, #NM for
 * TS and #MF for a pending x87 exception (mmx_check).  A 16-byte memory
 * operand must be 16-byte aligned (#GP(0)); the PMOVSX/ZX 2/4/8-byte
 * sources are not checked.  MOVBE, CRC32, ADCX/ADOX and MOVDIRI/MOVDIR64B
 * are general-purpose instructions with none of these checks.
 */
#include "accel/tcg/ops.h"

enum { PF_NONE = 0, PF_66 = 1, PF_F3 = 2, PF_F2 = 3 };

static bool is_ssse3(unsigned opc) { return opc <= 0x0b || (opc >= 0x1c && opc <= 0x1e); }
static bool is_pmovx(unsigned opc) { return (opc >= 0x20 && opc <= 0x25) || (opc >= 0x30 && opc <= 0x35); }

static bool is_sha(unsigned opc) { return opc >= 0xc8 && opc <= 0xcd; }

/* 66-prefixed XMM forms defined in the map (SSSE3, SSE4.1/4.2, AES, GFNI). */
static bool is_xmm_op(unsigned opc)
{
    if (is_ssse3(opc) || is_pmovx(opc))
        return true;
    switch (opc) {
    case 0x10: case 0x14: case 0x15: case 0x17:
    case 0x28: case 0x29: case 0x2a: case 0x2b:
    case 0x37 ... 0x41:
    case 0xcf: case 0xdb ... 0xdf:
        return true;
    default:
        return false;
    }
}

/*
 * SSSE3 on n bytes (8: MMX, 16: XMM): d = d op s.  The horizontal ops put
 * the pairs of d in the low half of the result and the pairs of s in the
 * high half (SDM 2B "PHADDW/PHADDD").
 */
static void ssse3_op(unsigned opc, XMMReg *d, const XMMReg *s, unsigned n)
{
    XMMReg r;
    unsigned i, nw = n / 2, nd = n / 4;
    memset(&r, 0, sizeof(r));
    switch (opc) {
    case 0x00:                          /* PSHUFB: index bits 3:0 (2:0 for MMX), bit 7 zeroes */
        for (i = 0; i < n; i++)
            r.b[i] = (s->b[i] & 0x80) ? 0 : d->b[s->b[i] & (n - 1)];
        break;
    case 0x01: case 0x03: case 0x05: case 0x07:     /* PHADDW PHADDSW PHSUBW PHSUBSW */
        for (i = 0; i < nw; i++) {
            const XMMReg *x = i < nw / 2 ? d : s;
            unsigned k = 2 * (i % (nw / 2));
            int32_t a = (int16_t)x->w[k], b = (int16_t)x->w[k + 1];
            int32_t v = opc <= 0x03 ? a + b : a - b;
            r.w[i] = (opc & 2) ? (uint16_t)sse_sat_s16(v) : (uint16_t)v;
        }
        break;
    case 0x02: case 0x06:               /* PHADDD PHSUBD (wrap around) */
        for (i = 0; i < nd; i++) {
            const XMMReg *x = i < nd / 2 ? d : s;
            unsigned k = 2 * (i % (nd / 2));
            r.d[i] = opc == 0x02 ? x->d[k] + x->d[k + 1] : x->d[k] - x->d[k + 1];
        }
        break;
    case 0x04:                          /* PMADDUBSW: unsigned bytes of d times signed bytes of s */
        for (i = 0; i < nw; i++)
            r.w[i] = (uint16_t)sse_sat_s16(d->b[2 * i] * (int8_t)s->b[2 * i] +
                                           d->b[2 * i + 1] * (int8_t)s->b[2 * i + 1]);
        break;
    case 0x08:                          /* PSIGNB/W/D: negate, zero or keep by the sign of s */
        for (i = 0; i < n; i++)
            r.b[i] = (int8_t)s->b[i] < 0 ? (uint8_t)-d->b[i] : s->b[i] ? d->b[i] : 0;
        break;
    case 0x09:
        for (i = 0; i < nw; i++)
            r.w[i] = (int16_t)s->w[i] < 0 ? (uint16_t)-d->w[i] : s->w[i] ? d->w[i] : 0;
        break;
    case 0x0a:
        for (i = 0; i < nd; i++)
            r.d[i] = (int32_t)s->d[i] < 0 ? -d->d[i] : s->d[i] ? d->d[i] : 0;
        break;
    case 0x0b:                          /* PMULHRSW: bits 30:15 of the product, rounded */
        for (i = 0; i < nw; i++) {
            int32_t p = (int16_t)d->w[i] * (int16_t)s->w[i];
            r.w[i] = (uint16_t)(((p >> 14) + 1) >> 1);
        }
        break;
    case 0x1c:                          /* PABSB/W/D: |-128| stays 0x80 (unsigned result) */
        for (i = 0; i < n; i++)
            r.b[i] = (int8_t)s->b[i] < 0 ? (uint8_t)-s->b[i] : s->b[i];
        break;
    case 0x1d:
        for (i = 0; i < nw; i++)
            r.w[i] = (int16_t)s->w[i] < 0 ? (uint16_t)-s->w[i] : s->w[i];
        break;
    default:                            /* 0x1e */
        for (i = 0; i < nd; i++)
            r.d[i] = (int32_t)s->d[i] < 0 ? -s->d[i] : s->d[i];
        break;
    }
    *d = r;
}

/* SSE4.1 / SSE4.2 ops of the form xmm1, xmm2/m128 (x0 = XMM0 for the blends). */
static void sse41_op(unsigned opc, XMMReg *d, const XMMReg *s, const XMMReg *x0)
{
    XMMReg r = *d;
    int i;
    switch (opc) {
    case 0x10:                          /* PBLENDVB: by bit 7 of each XMM0 byte */
        for (i = 0; i < 16; i++)
            if (x0->b[i] & 0x80)
                r.b[i] = s->b[i];
        break;
    case 0x14:                          /* BLENDVPS: by bit 31 of each XMM0 dword */
        for (i = 0; i < 4; i++)
            if (x0->d[i] >> 31)
                r.d[i] = s->d[i];
        break;
    case 0x15:                          /* BLENDVPD: by bit 63 of each XMM0 qword */
        for (i = 0; i < 2; i++)
            if (x0->q[i] >> 63)
                r.q[i] = s->q[i];
        break;
    case 0x28:                          /* PMULDQ: signed dwords 0 and 2 -> qwords */
        for (i = 0; i < 2; i++)
            r.q[i] = (uint64_t)((int64_t)(int32_t)d->d[2 * i] * (int32_t)s->d[2 * i]);
        break;
    case 0x29: for (i = 0; i < 2; i++) r.q[i] = d->q[i] == s->q[i] ? ~0ull : 0; break;
    case 0x37: for (i = 0; i < 2; i++) r.q[i] = (int64_t)d->q[i] > (int64_t)s->q[i] ? ~0ull : 0; break;
    case 0x2b:                          /* PACKUSDW: signed dwords -> unsigned-saturated words */
        for (i = 0; i < 4; i++) {
            r.w[i] = sse_sat_u16((int32_t)d->d[i]);
            r.w[4 + i] = sse_sat_u16((int32_t)s->d[i]);
        }
        break;
    case 0x38: for (i = 0; i < 16; i++) r.b[i] = (int8_t)d->b[i] < (int8_t)s->b[i] ? d->b[i] : s->b[i]; break;
    case 0x39: for (i = 0; i < 4; i++) r.d[i] = (int32_t)d->d[i] < (int32_t)s->d[i] ? d->d[i] : s->d[i]; break;
    case 0x3a: for (i = 0; i < 8; i++) r.w[i] = d->w[i] < s->w[i] ? d->w[i] : s->w[i]; break;
    case 0x3b: for (i = 0; i < 4; i++) r.d[i] = d->d[i] < s->d[i] ? d->d[i] : s->d[i]; break;
    case 0x3c: for (i = 0; i < 16; i++) r.b[i] = (int8_t)d->b[i] > (int8_t)s->b[i] ? d->b[i] : s->b[i]; break;
    case 0x3d: for (i = 0; i < 4; i++) r.d[i] = (int32_t)d->d[i] > (int32_t)s->d[i] ? d->d[i] : s->d[i]; break;
    case 0x3e: for (i = 0; i < 8; i++) r.w[i] = d->w[i] > s->w[i] ? d->w[i] : s->w[i]; break;
    case 0x3f: for (i = 0; i < 4; i++) r.d[i] = d->d[i] > s->d[i] ? d->d[i] : s->d[i]; break;
    case 0x40: for (i = 0; i < 4; i++) r.d[i] = d->d[i] * s->d[i]; break;    /* PMULLD: low 32 bits */
    default: {                          /* 0x41 PHMINPOSUW: the lowest index wins a tie */
        unsigned k = 0;
        for (i = 1; i < 8; i++)
            if (s->w[i] < s->w[k])
                k = (unsigned)i;
        memset(&r, 0, sizeof(r));
        r.w[0] = s->w[k];
        r.w[1] = (uint16_t)k;
        break;
    }
    }
    *d = r;
}

/* PMOVSX/PMOVZX (SDM 2C "PMOVSX"): source bytes 8/4/2 and element sizes by opcode row. */
static int pmovx(TCGCPU *cpu, const DecodedOp *op, XMMReg *d)
{
    static const uint8_t src_len[6] = { 8, 4, 2, 8, 4, 8 };
    static const uint8_t from[6] = { 0, 0, 0, 1, 1, 2 }, to[6] = { 1, 2, 3, 2, 3, 3 };
    unsigned k = (op->imm16 & 0x0f), opc = op->imm16 & 0xff;
    bool sign = opc < 0x30;
    XMMReg s, r;
    s = sse_src(cpu, op, src_len[k], false);
    for (unsigned i = 0; i < 16u >> to[k]; i++) {
        uint64_t v;
        switch (from[k]) {
        case 0: v = sign ? (uint64_t)(int64_t)(int8_t)s.b[i] : s.b[i]; break;
        case 1: v = sign ? (uint64_t)(int64_t)(int16_t)s.w[i] : s.w[i]; break;
        default: v = sign ? (uint64_t)(int64_t)(int32_t)s.d[i] : s.d[i]; break;
        }
        switch (to[k]) {
        case 1: r.w[i] = (uint16_t)v; break;
        case 2: r.d[i] = (uint32_t)v; break;
        default: r.q[i] = v; break;
        }
    }
    *d = r;
    return H_NEXT;
}

static uint64_t byte_swap(uint64_t v, int sz)
{
    switch (sz) {
    case 1: return __builtin_bswap16((uint16_t)v);
    case 2: return __builtin_bswap32((uint32_t)v);
    default: return __builtin_bswap64(v);
    }
}

/* MOVBE (SDM 2B): memory operand only; the register form is #UD, as is F3. */
static int movbe(TCGCPU *cpu, const DecodedOp *op)
{
    if (op->rm != NOREG || (op->sub & 3) == PF_F3)
        sse_unimp(cpu, op);
    int sz = op->sz;                    /* 16/32/64 as the mode and 66/REX.W say (decode.c) */
    if ((op->imm16 & 0xff) == 0xf0)
        reg_set(cpu, op->reg, sz, byte_swap(rm_read(cpu, op, sz), sz));
    else
        rm_write(cpu, op, sz, byte_swap(reg_get(cpu, op->reg, sz), sz));
    return H_NEXT;
}

/*
 * CRC32 (SDM 2A "CRC32"): CRC-32C (polynomial 11EDC6F41h) of the source
 * bytes, lowest first, accumulated into the low 32 bits of the destination
 * with every value bit-reflected -- the usual right-shifting update with
 * the reflected polynomial 82F63B78h and no pre/post inversion.  The
 * destination is r32, or r64 with REX.W (bits 63:32 cleared).
 */
static int crc32c(TCGCPU *cpu, const DecodedOp *op)
{
    /* Source r/m8 (AH..BH or SPL..DIL mapped by the decoder) or r/m16/32/64. */
    int ssz = (op->imm16 & 0xff) == 0xf0 ? 0 : op->sz;
    uint64_t v = rm_read(cpu, op, ssz);
    uint32_t crc = (uint32_t)cpu->regs[op->reg];
    for (int i = 0; i < (1 << ssz); i++) {
        crc ^= (uint8_t)(v >> (8 * i));
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
    }
    reg_set(cpu, op->reg, op->sz == 3 ? 3 : 2, crc);
    return H_NEXT;
}

/*
 * ADCX / ADOX (SDM 2A): r32/r64 += r/m + carry, where the carry in and out
 * is CF (ADCX, 66) or OF (ADOX, F3); no other flag changes.  66 is a
 * mandatory prefix here, so the size is 32 bits unless REX.W.
 */
static int adx(TCGCPU *cpu, const DecodedOp *op)
{
    int sz = op->sz == 3 ? 3 : 2;
    uint32_t fl = cc_compute_all(cpu), flag = (op->sub & 3) == PF_66 ? CC_C : CC_O;
    uint64_t a = reg_get(cpu, op->reg, sz), b = rm_read(cpu, op, sz), cin = (fl & flag) != 0;
    uint64_t r = (a + b + cin) & size_mask[sz];
    bool cout = r < a || (r == a && cin);
    reg_set(cpu, op->reg, sz, r);
    cc_set_flags(cpu, (fl & ~flag) | (cout ? flag : 0));
    return H_NEXT;
}

/*
 * MOVDIRI m32/m64, r (no prefix) and MOVDIR64B r, m512 (66) (SDM 2B): the
 * write-combining direct-store semantics have no meaning without caches,
 * so they are ordinary stores.  MOVDIR64B writes 64 bytes to ES:[reg]
 * (address size from 67h; no segment override), which must be 64-byte
 * aligned (#GP(0)); the source is an unaligned 64-byte memory operand.
 */
static int movdir(TCGCPU *cpu, const DecodedOp *op)
{
    unsigned pf = op->sub & 3, opc = op->imm16 & 0xff;
    if (op->rm != NOREG || (opc == 0xf9 && pf != PF_NONE) || (opc == 0xf8 && pf != PF_66))
        sse_unimp(cpu, op);
    if (opc == 0xf9) {
        int sz = op->sz == 3 ? 3 : 2;
        rm_write(cpu, op, sz, reg_get(cpu, op->reg, sz));
        return H_NEXT;
    }
    uint64_t q[8];
    uint64_t src = op_lin(cpu, op, 64, ACC_READ);
    for (int i = 0; i < 8; i++)
        q[i] = lin_ld(cpu, src + 8 * (unsigned)i, 3);
    uint64_t ea = cpu->regs[op->reg] & size_mask[op->asz];
    if (ea & 63)
        raise_exception_err(cpu, EXCP_GP, 0);
    uint64_t dst = seg_lin(cpu, SEG_ES, ea, 64, ACC_WRITE);
    lin_probe_write(cpu, dst, 64);
    for (int i = 0; i < 8; i++)
        lin_st(cpu, dst + 8 * (unsigned)i, 3, q[i]);
    return H_NEXT;
}

/* ---- AES (FIPS-197; SDM 2A "AESENC" ...) and GF(2^8) with x^8+x^4+x^3+x+1 ---- */
static uint8_t aes_sbox[256], aes_inv_sbox[256];

static uint8_t gf2p8_mul(uint8_t a, uint8_t b)
{
    uint8_t r = 0;
    for (; b; b >>= 1) {
        if (b & 1)
            r ^= a;
        a = (uint8_t)((a << 1) ^ ((a & 0x80) ? 0x1b : 0));
    }
    return r;
}

/* S-box = affine transform of the multiplicative inverse (FIPS-197 §5.1.1). */
static void __attribute__((constructor)) aes_tables_init(void)
{
    for (unsigned x = 0; x < 256; x++) {
        uint8_t inv = 0;
        for (unsigned y = 1; y < 256 && x; y++)
            if (gf2p8_mul((uint8_t)x, (uint8_t)y) == 1) {
                inv = (uint8_t)y;
                break;
            }
        unsigned b = inv, s = b;
        for (int k = 1; k <= 4; k++)
            s ^= ((b << k) | (b >> (8 - k))) & 0xff;
        aes_sbox[x] = (uint8_t)(s ^ 0x63);
        aes_inv_sbox[aes_sbox[x]] = (uint8_t)x;
    }
}

uint8_t aes_sbox_byte(uint8_t x) { return aes_sbox[x]; }

/* The state is column-major: byte 4c + r of the register is row r, column c. */
static void aes_mix_columns(XMMReg *st, bool inverse)
{
    static const uint8_t fwd[4] = { 2, 3, 1, 1 }, inv[4] = { 14, 11, 13, 9 };
    const uint8_t *m = inverse ? inv : fwd;
    XMMReg r;
    for (int c = 0; c < 4; c++)
        for (int row = 0; row < 4; row++) {
            uint8_t v = 0;
            for (int k = 0; k < 4; k++)
                v ^= gf2p8_mul(st->b[4 * c + k], m[(k - row + 4) & 3]);
            r.b[4 * c + row] = v;
        }
    *st = r;
}

/* (Inv)ShiftRows then (Inv)SubBytes: row r moves left (right) by r columns. */
static void aes_shift_sub(XMMReg *st, bool inverse)
{
    XMMReg r;
    for (int c = 0; c < 4; c++)
        for (int row = 0; row < 4; row++) {
            int from = 4 * ((inverse ? c - row + 4 : c + row) & 3) + row;
            r.b[4 * c + row] = inverse ? aes_inv_sbox[st->b[from]] : aes_sbox[st->b[from]];
        }
    *st = r;
}

static void aes_op(unsigned opc, XMMReg *d, const XMMReg *key)
{
    if (opc == 0xdb) {                  /* AESIMC: InvMixColumns of the source */
        *d = *key;
        aes_mix_columns(d, true);
        return;
    }
    bool dec = opc >= 0xde, last = opc == 0xdd || opc == 0xdf;
    aes_shift_sub(d, dec);
    if (!last)
        aes_mix_columns(d, dec);
    d->q[0] ^= key->q[0];
    d->q[1] ^= key->q[1];
}

/* ---- SHA extensions (SDM 2B "SHA1MSG1" ... "SHA256RNDS2"); d[3] is bits 127:96 ---- */
static uint32_t rol32(uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }
static uint32_t ror32(uint32_t v, int n) { return (v >> n) | (v << (32 - n)); }

static void sha_op(unsigned opc, XMMReg *d, const XMMReg *s, const XMMReg *x0)
{
    XMMReg r;
    switch (opc) {
    case 0xc8:                          /* SHA1NEXTE: E = rol30(A of d) added to s's top dword */
        r = *s;
        r.d[3] = s->d[3] + rol32(d->d[3], 30);
        break;
    case 0xc9:                          /* SHA1MSG1: W0..W3 = d[3..0], W4, W5 = s[3], s[2] */
        r.d[3] = d->d[1] ^ d->d[3];
        r.d[2] = d->d[0] ^ d->d[2];
        r.d[1] = s->d[3] ^ d->d[1];
        r.d[0] = s->d[2] ^ d->d[0];
        break;
    case 0xca:                          /* SHA1MSG2: W13..W15 = s[2..0] */
        r.d[3] = rol32(d->d[3] ^ s->d[2], 1);
        r.d[2] = rol32(d->d[2] ^ s->d[1], 1);
        r.d[1] = rol32(d->d[1] ^ s->d[0], 1);
        r.d[0] = rol32(d->d[0] ^ r.d[3], 1);
        break;
    case 0xcb: {                        /* SHA256RNDS2: two rounds, W+K from XMM0[63:0] */
        uint32_t a = s->d[3], b = s->d[2], c = d->d[3], dd = d->d[2];
        uint32_t e = s->d[1], f = s->d[0], g = d->d[1], h = d->d[0];
        for (int i = 0; i < 2; i++) {
            uint32_t t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) + x0->d[i];
            uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = dd + t1;
            dd = c; c = b; b = a; a = t1 + t2;
        }
        r.d[3] = a; r.d[2] = b; r.d[1] = e; r.d[0] = f;
        break;
    }
    case 0xcc:                          /* SHA256MSG1: W0..W3 = d[0..3], W4 = s[0]; + sigma0 */
        for (int i = 0; i < 4; i++) {
            uint32_t w = i < 3 ? d->d[i + 1] : s->d[0];
            r.d[i] = d->d[i] + (ror32(w, 7) ^ ror32(w, 18) ^ (w >> 3));
        }
        break;
    default: {                          /* 0xcd SHA256MSG2: W14, W15 = s[2], s[3]; + sigma1 */
        uint32_t w[4] = { s->d[2], s->d[3], 0, 0 };
        for (int i = 0; i < 4; i++) {
            uint32_t x = i < 2 ? w[i] : r.d[i - 2];
            r.d[i] = d->d[i] + (ror32(x, 17) ^ ror32(x, 19) ^ (x >> 10));
        }
        break;
    }
    }
    *d = r;
}

/* SSSE3 MMX forms: mm, mm/m64 (64-bit lanes of the same operations). */
static int ssse3_mmx(TCGCPU *cpu, const DecodedOp *op)
{
    unsigned r = op->reg & 7;
    mmx_check(cpu);
    XMMReg d, s;
    memset(&d, 0, sizeof(d));
    memset(&s, 0, sizeof(s));
    s.q[0] = mmx_src(cpu, op);
    d.q[0] = mmx_get(cpu, r);
    ssse3_op(op->imm16 & 0xff, &d, &s, 8);
    mmx_enter(cpu);
    mmx_set(cpu, r, d.q[0]);
    return H_NEXT;
}

int helper_sse_0f38(TCGCPU *cpu, const DecodedOp *op)
{
    unsigned opc = op->imm16 & 0xff, pf = op->sub & 3;
    bool mem = op->rm == NOREG;

    if (opc == 0xf0 || opc == 0xf1)
        return pf == PF_F2 ? crc32c(cpu, op) : movbe(cpu, op);
    if (opc == 0xf6 && (pf == PF_66 || pf == PF_F3))
        return adx(cpu, op);
    if (opc == 0xf8 || opc == 0xf9)
        return movdir(cpu, op);
    if (pf == PF_NONE && is_ssse3(opc))
        return ssse3_mmx(cpu, op);
    if (!(pf == PF_66 && is_xmm_op(opc)) && !(pf == PF_NONE && is_sha(opc)))
        sse_unimp(cpu, op);             /* undefined: #UD before the state checks */
    if (opc == 0x2a && !mem)
        sse_unimp(cpu, op);
    sse_insn_check(cpu);

    XMMReg *d = &cpu->xmm[op->reg & 15];
    if (is_pmovx(opc))
        return pmovx(cpu, op, d);
    XMMReg s = sse_src(cpu, op, 16, true);     /* MOVNTDQA too: an aligned load */
    if (opc == 0x2a) {
        *d = s;
    } else if (opc == 0x17) {                   /* PTEST: ZF = !(d & s), CF = !(~d & s), rest 0 */
        uint32_t fl = 0;
        if (!((d->q[0] & s.q[0]) | (d->q[1] & s.q[1])))
            fl |= CC_Z;
        if (!((~d->q[0] & s.q[0]) | (~d->q[1] & s.q[1])))
            fl |= CC_C;
        cc_set_flags(cpu, fl);
    } else if (is_ssse3(opc)) {
        ssse3_op(opc, d, &s, 16);
    } else if (opc >= 0xdb) {
        aes_op(opc, d, &s);
    } else if (opc == 0xcf) {                   /* GF2P8MULB: bytewise product mod 11Bh */
        for (int i = 0; i < 16; i++)
            d->b[i] = gf2p8_mul(d->b[i], s.b[i]);
    } else if (is_sha(opc)) {
        XMMReg x0 = cpu->xmm[0];
        sha_op(opc, d, &s, &x0);
    } else {
        XMMReg x0 = cpu->xmm[0];
        sse41_op(opc, d, &s, &x0);
    }
    return H_NEXT;
}
