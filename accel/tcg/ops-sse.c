/*
 * SSE/SSE2 instructions of the software CPU: data movement, logic and the
 * 128-bit integer operations (SDM 1 ch. 10-11, SDM 2 per-instruction
 * pages, opcode map SDM 2D App. A with the 66/F3/F2 mandatory prefixes).
 *
 * SSE3 data movement (MOVDDUP, MOVSLDUP, MOVSHDUP, LDDQU) is here too.
 * Floating point is in ops-sse-fp.c.  MMX (no mandatory prefix on the
 * integer opcodes; MMi = significand of x87 R_i, SDM 1 ch. 9) is here too.
 *
 * Faults (SDM 3A Table 12-8 / SDM 2 "SIMD exceptions"): an undefined form
 * -> #UD before anything else (sse_0f_forms); CR0.EM = 1 or
 * CR4.OSFXSR = 0 -> #UD; CR0.TS = 1 -> #NM; a 128-bit memory operand of a
 * legacy SSE instruction other than the unaligned moves must be 16-byte
 * aligned -> #GP(0).
 */
#include "accel/tcg/ops.h"
#include "kestrel/log.h"

enum { PF_NONE = 0, PF_66 = 1, PF_F3 = 2, PF_F2 = 3 };

uint64_t sse_addr(TCGCPU *cpu, const DecodedOp *op, unsigned len, int acc, bool align)
{
    uint64_t ea = op_ea(cpu, op);
    if (align && (ea & 15))
        raise_exception_err(cpu, EXCP_GP, 0);
    return seg_lin(cpu, op->seg, ea, len, acc);
}

/* Source operand: an XMM register or len (2, 4, 8 or 16) bytes of memory, zero-extended. */
XMMReg sse_src(TCGCPU *cpu, const DecodedOp *op, unsigned len, bool align)
{
    XMMReg v;
    if (op->rm != NOREG)
        return cpu->xmm[op->rm];
    memset(&v, 0, sizeof(v));
    uint64_t lin = sse_addr(cpu, op, len, ACC_READ, align && len == 16);
    if (len == 16) {
        v.q[0] = lin_ld(cpu, lin, 3);
        v.q[1] = lin_ld(cpu, lin + 8, 3);
    } else if (len == 8) {
        v.q[0] = lin_ld(cpu, lin, 3);
    } else if (len == 4) {
        v.d[0] = (uint32_t)lin_ld(cpu, lin, 2);
    } else {
        v.w[0] = (uint16_t)lin_ld(cpu, lin, 1);
    }
    return v;
}

static void sse_store(TCGCPU *cpu, const DecodedOp *op, const XMMReg *v, unsigned len, bool align)
{
    uint64_t lin = sse_addr(cpu, op, len, ACC_WRITE, align && len == 16);
    if (len == 16) {
        lin_probe_write(cpu, lin, 16);
        lin_st(cpu, lin, 3, v->q[0]);
        lin_st(cpu, lin + 8, 3, v->q[1]);
    } else if (len == 8) {
        lin_st(cpu, lin, 3, v->q[0]);
    } else {
        lin_st(cpu, lin, 2, v->d[0]);
    }
}

static int8_t sat8(int v) { return (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v); }
static uint8_t satu8(int v) { return (uint8_t)(v > 255 ? 255 : v < 0 ? 0 : v); }
int16_t sse_sat_s16(int32_t v) { return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v); }
uint16_t sse_sat_u16(int32_t v) { return (uint16_t)(v > 65535 ? 65535 : v < 0 ? 0 : v); }

/* Shifts by a count (imm8 or the low 64 bits of an XMM operand). kind: 0 srl, 1 sra, 2 sll. */
static void shift_elems(XMMReg *d, int esz, int kind, uint64_t cnt)
{
    int bits = 8 << esz;
    for (int i = 0; i < 16 >> esz; i++) {
        uint64_t v;
        switch (esz) {
        case 1: v = d->w[i]; break;
        case 2: v = d->d[i]; break;
        default: v = d->q[i]; break;
        }
        if (kind == 1) {
            int64_t sv = esz == 1 ? (int16_t)v : esz == 2 ? (int32_t)v : (int64_t)v;
            v = (uint64_t)(sv >> (cnt >= (uint64_t)bits ? bits - 1 : (int)cnt));
        } else if (cnt >= (uint64_t)bits) {
            v = 0;
        } else {
            v = kind == 2 ? v << cnt : v >> cnt;
        }
        switch (esz) {
        case 1: d->w[i] = (uint16_t)v; break;
        case 2: d->d[i] = (uint32_t)v; break;
        default: d->q[i] = v; break;
        }
    }
}

static void byte_shift(XMMReg *d, unsigned n, bool left)
{
    XMMReg r;
    memset(&r, 0, sizeof(r));
    if (n < 16)
        for (int i = 0; i < 16; i++) {
            int s = left ? i - (int)n : i + (int)n;
            if (s >= 0 && s < 16)
                r.b[i] = d->b[s];
        }
    *d = r;
}

/* 66 0F xx integer ops taking xmm, xmm/m128: d = d op s. Returns false if unknown. */
static bool int_op(unsigned opc, XMMReg *d, const XMMReg *s)
{
    XMMReg r = *d;
    int i;
    switch (opc) {
    case 0xdb: for (i = 0; i < 2; i++) r.q[i] = d->q[i] & s->q[i]; break;
    case 0xdf: for (i = 0; i < 2; i++) r.q[i] = ~d->q[i] & s->q[i]; break;
    case 0xeb: for (i = 0; i < 2; i++) r.q[i] = d->q[i] | s->q[i]; break;
    case 0xef: for (i = 0; i < 2; i++) r.q[i] = d->q[i] ^ s->q[i]; break;
    case 0xfc: for (i = 0; i < 16; i++) r.b[i] = (uint8_t)(d->b[i] + s->b[i]); break;
    case 0xfd: for (i = 0; i < 8; i++) r.w[i] = (uint16_t)(d->w[i] + s->w[i]); break;
    case 0xfe: for (i = 0; i < 4; i++) r.d[i] = d->d[i] + s->d[i]; break;
    case 0xd4: for (i = 0; i < 2; i++) r.q[i] = d->q[i] + s->q[i]; break;
    case 0xf8: for (i = 0; i < 16; i++) r.b[i] = (uint8_t)(d->b[i] - s->b[i]); break;
    case 0xf9: for (i = 0; i < 8; i++) r.w[i] = (uint16_t)(d->w[i] - s->w[i]); break;
    case 0xfa: for (i = 0; i < 4; i++) r.d[i] = d->d[i] - s->d[i]; break;
    case 0xfb: for (i = 0; i < 2; i++) r.q[i] = d->q[i] - s->q[i]; break;
    case 0xec: for (i = 0; i < 16; i++) r.b[i] = (uint8_t)sat8((int8_t)d->b[i] + (int8_t)s->b[i]); break;
    case 0xed: for (i = 0; i < 8; i++) r.w[i] = (uint16_t)sse_sat_s16((int16_t)d->w[i] + (int16_t)s->w[i]); break;
    case 0xdc: for (i = 0; i < 16; i++) r.b[i] = satu8(d->b[i] + s->b[i]); break;
    case 0xdd: for (i = 0; i < 8; i++) r.w[i] = sse_sat_u16(d->w[i] + s->w[i]); break;
    case 0xe8: for (i = 0; i < 16; i++) r.b[i] = (uint8_t)sat8((int8_t)d->b[i] - (int8_t)s->b[i]); break;
    case 0xe9: for (i = 0; i < 8; i++) r.w[i] = (uint16_t)sse_sat_s16((int16_t)d->w[i] - (int16_t)s->w[i]); break;
    case 0xd8: for (i = 0; i < 16; i++) r.b[i] = satu8(d->b[i] - s->b[i]); break;
    case 0xd9: for (i = 0; i < 8; i++) r.w[i] = sse_sat_u16(d->w[i] - s->w[i]); break;
    case 0x74: for (i = 0; i < 16; i++) r.b[i] = d->b[i] == s->b[i] ? 0xff : 0; break;
    case 0x75: for (i = 0; i < 8; i++) r.w[i] = d->w[i] == s->w[i] ? 0xffff : 0; break;
    case 0x76: for (i = 0; i < 4; i++) r.d[i] = d->d[i] == s->d[i] ? ~0u : 0; break;
    case 0x64: for (i = 0; i < 16; i++) r.b[i] = (int8_t)d->b[i] > (int8_t)s->b[i] ? 0xff : 0; break;
    case 0x65: for (i = 0; i < 8; i++) r.w[i] = (int16_t)d->w[i] > (int16_t)s->w[i] ? 0xffff : 0; break;
    case 0x66: for (i = 0; i < 4; i++) r.d[i] = (int32_t)d->d[i] > (int32_t)s->d[i] ? ~0u : 0; break;
    case 0xd5: for (i = 0; i < 8; i++) r.w[i] = (uint16_t)((int16_t)d->w[i] * (int16_t)s->w[i]); break;
    case 0xe5:
        for (i = 0; i < 8; i++) r.w[i] = (uint16_t)(((int16_t)d->w[i] * (int16_t)s->w[i]) >> 16);
        break;
    case 0xe4: for (i = 0; i < 8; i++) r.w[i] = (uint16_t)(((uint32_t)d->w[i] * s->w[i]) >> 16); break;
    case 0xf4: for (i = 0; i < 2; i++) r.q[i] = (uint64_t)d->d[2 * i] * s->d[2 * i]; break;
    case 0xf5:
        for (i = 0; i < 4; i++)
            r.d[i] = (uint32_t)((int32_t)(int16_t)d->w[2 * i] * (int16_t)s->w[2 * i] +
                                (int32_t)(int16_t)d->w[2 * i + 1] * (int16_t)s->w[2 * i + 1]);
        break;
    case 0xda: for (i = 0; i < 16; i++) r.b[i] = d->b[i] < s->b[i] ? d->b[i] : s->b[i]; break;
    case 0xde: for (i = 0; i < 16; i++) r.b[i] = d->b[i] > s->b[i] ? d->b[i] : s->b[i]; break;
    case 0xea:
        for (i = 0; i < 8; i++) r.w[i] = (int16_t)d->w[i] < (int16_t)s->w[i] ? d->w[i] : s->w[i];
        break;
    case 0xee:
        for (i = 0; i < 8; i++) r.w[i] = (int16_t)d->w[i] > (int16_t)s->w[i] ? d->w[i] : s->w[i];
        break;
    case 0xe0: for (i = 0; i < 16; i++) r.b[i] = (uint8_t)((d->b[i] + s->b[i] + 1) >> 1); break;
    case 0xe3: for (i = 0; i < 8; i++) r.w[i] = (uint16_t)((d->w[i] + s->w[i] + 1) >> 1); break;
    case 0xf6:
        for (i = 0; i < 2; i++) {
            unsigned sum = 0;
            for (int k = 0; k < 8; k++)
                sum += (unsigned)abs((int)d->b[8 * i + k] - (int)s->b[8 * i + k]);
            r.q[i] = sum;
        }
        break;
    case 0x60: for (i = 0; i < 8; i++) { r.b[2 * i] = d->b[i]; r.b[2 * i + 1] = s->b[i]; } break;
    case 0x61: for (i = 0; i < 4; i++) { r.w[2 * i] = d->w[i]; r.w[2 * i + 1] = s->w[i]; } break;
    case 0x62: for (i = 0; i < 2; i++) { r.d[2 * i] = d->d[i]; r.d[2 * i + 1] = s->d[i]; } break;
    case 0x6c: r.q[0] = d->q[0]; r.q[1] = s->q[0]; break;
    case 0x68: for (i = 0; i < 8; i++) { r.b[2 * i] = d->b[8 + i]; r.b[2 * i + 1] = s->b[8 + i]; } break;
    case 0x69: for (i = 0; i < 4; i++) { r.w[2 * i] = d->w[4 + i]; r.w[2 * i + 1] = s->w[4 + i]; } break;
    case 0x6a: for (i = 0; i < 2; i++) { r.d[2 * i] = d->d[2 + i]; r.d[2 * i + 1] = s->d[2 + i]; } break;
    case 0x6d: r.q[0] = d->q[1]; r.q[1] = s->q[1]; break;
    case 0x63:
        for (i = 0; i < 8; i++) {
            r.b[i] = (uint8_t)sat8((int16_t)d->w[i]);
            r.b[8 + i] = (uint8_t)sat8((int16_t)s->w[i]);
        }
        break;
    case 0x67:
        for (i = 0; i < 8; i++) {
            r.b[i] = satu8((int16_t)d->w[i]);
            r.b[8 + i] = satu8((int16_t)s->w[i]);
        }
        break;
    case 0x6b:
        for (i = 0; i < 4; i++) {
            r.w[i] = (uint16_t)sse_sat_s16((int32_t)d->d[i]);
            r.w[4 + i] = (uint16_t)sse_sat_s16((int32_t)s->d[i]);
        }
        break;
    case 0xd1: case 0xd2: case 0xd3: case 0xe1: case 0xe2: case 0xf1: case 0xf2: case 0xf3: {
        int esz = (opc & 3) == 1 ? 1 : (opc & 3) == 2 ? 2 : 3;
        int kind = (opc >> 4) == 0xd ? 0 : (opc >> 4) == 0xe ? 1 : 2;
        shift_elems(&r, esz, kind, s->q[0]);
        break;
    }
    /* Packed-single/double logic: bitwise, same as the integer forms. */
    case 0x54: for (i = 0; i < 2; i++) r.q[i] = d->q[i] & s->q[i]; break;
    case 0x55: for (i = 0; i < 2; i++) r.q[i] = ~d->q[i] & s->q[i]; break;
    case 0x56: for (i = 0; i < 2; i++) r.q[i] = d->q[i] | s->q[i]; break;
    case 0x57: for (i = 0; i < 2; i++) r.q[i] = d->q[i] ^ s->q[i]; break;
    default:
        return false;
    }
    *d = r;
    return true;
}


/* ---------------- MMX (SDM 1 ch. 9): MMi aliases the significand of R_i ---------------- */
void mmx_enter(TCGCPU *cpu)
{
    /* Every MMX instruction but EMMS: TOP = 0, all registers valid (SDM 1 §9.5.1). */
    cpu->fsw &= (uint16_t)~FSW_TOP;
    cpu->ftw_valid = 0xff;
}

void mmx_set(TCGCPU *cpu, unsigned i, uint64_t v)
{
    cpu->fpr[i & 7].sig = v;
    cpu->fpr[i & 7].se = 0xffff;
}

uint64_t mmx_get(const TCGCPU *cpu, unsigned i) { return cpu->fpr[i & 7].sig; }

/* EM -> #UD, TS -> #NM, then a pending x87 exception -> #MF. */
void mmx_check(TCGCPU *cpu)
{
    if (cpu->cr0 & X86_CR0_EM)
        raise_exception(cpu, EXCP_UD);
    if (cpu->cr0 & X86_CR0_TS)
        raise_exception(cpu, EXCP_NM);
    if ((cpu->fsw & FSW_ES) && (cpu->cr0 & X86_CR0_NE))
        raise_exception(cpu, EXCP_MF);
}

uint64_t mmx_src(TCGCPU *cpu, const DecodedOp *op)
{
    if (op->rm != NOREG)
        return mmx_get(cpu, op->rm);
    return lin_ld(cpu, op_lin(cpu, op, 8, ACC_READ), 3);
}

static int helper_mmx(TCGCPU *cpu, const DecodedOp *op)
{
    unsigned opc = op->imm16 & 0xff, r = op->reg & 7;
    bool mem = op->rm == NOREG;
    mmx_check(cpu);
    if (opc == 0x77) {                  /* EMMS: all empty; TOP = 0 like the other MMX insns */
        cpu->fsw &= (uint16_t)~FSW_TOP;
        cpu->ftw_valid = 0;
        return H_NEXT;
    }
    XMMReg d, sv;
    memset(&d, 0, sizeof(d));
    memset(&sv, 0, sizeof(sv));
    uint64_t v;
    unsigned im = (unsigned)op->imm & 0xff;
    switch (opc) {
    case 0x6e:                          /* MOVD/MOVQ mm, r/m */
        v = rm_read(cpu, op, op->sz == 3 ? 3 : 2);
        mmx_enter(cpu);
        mmx_set(cpu, r, v);
        return H_NEXT;
    case 0x7e:                          /* MOVD/MOVQ r/m, mm */
        mmx_enter(cpu);
        rm_write(cpu, op, op->sz == 3 ? 3 : 2, op->sz == 3 ? mmx_get(cpu, r) : (uint32_t)mmx_get(cpu, r));
        return H_NEXT;
    case 0x6f:
        v = mmx_src(cpu, op);
        mmx_enter(cpu);
        mmx_set(cpu, r, v);
        return H_NEXT;
    case 0x7f: case 0xe7:               /* MOVQ mm/m64, mm; MOVNTQ */
        if (opc == 0xe7 && !mem)
            raise_exception(cpu, EXCP_UD);
        if (mem)
            lin_st(cpu, op_lin(cpu, op, 8, ACC_WRITE), 3, mmx_get(cpu, r));
        mmx_enter(cpu);
        if (!mem)
            mmx_set(cpu, op->rm, mmx_get(cpu, r));
        return H_NEXT;
    case 0x70:                          /* PSHUFW */
        v = mmx_src(cpu, op);
        sv.q[0] = v;
        for (int i = 0; i < 4; i++)
            d.w[i] = sv.w[(im >> (2 * i)) & 3];
        mmx_enter(cpu);
        mmx_set(cpu, r, d.q[0]);
        return H_NEXT;
    case 0x71: case 0x72: case 0x73: {
        if (mem)
            raise_exception(cpu, EXCP_UD);
        unsigned g = op->reg & 7;
        int kind = g == 2 ? 0 : g == 4 ? 1 : g == 6 ? 2 : -1;
        int esz = opc == 0x71 ? 1 : opc == 0x72 ? 2 : 3;
        if (kind < 0 || (kind == 1 && esz == 3))
            raise_exception(cpu, EXCP_UD);
        d.q[0] = mmx_get(cpu, op->rm);
        shift_elems(&d, esz, kind, im);
        mmx_enter(cpu);
        mmx_set(cpu, op->rm, d.q[0]);
        return H_NEXT;
    }
    case 0xc4:                          /* PINSRW mm, r32/m16, imm8 */
        v = rm_read(cpu, op, 1);
        d.q[0] = mmx_get(cpu, r);
        d.w[im & 3] = (uint16_t)v;
        mmx_enter(cpu);
        mmx_set(cpu, r, d.q[0]);
        return H_NEXT;
    case 0xc5:                          /* PEXTRW r32, mm, imm8 */
        if (mem)
            raise_exception(cpu, EXCP_UD);
        d.q[0] = mmx_get(cpu, op->rm);
        mmx_enter(cpu);
        reg_set(cpu, op->reg, 3, d.w[im & 3]);
        return H_NEXT;
    case 0xd7:                          /* PMOVMSKB r32, mm */
        if (mem)
            raise_exception(cpu, EXCP_UD);
        d.q[0] = mmx_get(cpu, op->rm);
        {
            unsigned m = 0;
            for (int i = 0; i < 8; i++)
                m |= (unsigned)(d.b[i] >> 7) << i;
            mmx_enter(cpu);
            reg_set(cpu, op->reg, 3, m);
        }
        return H_NEXT;
    case 0xf7:                          /* MASKMOVQ mm, mm: byte-masked store to DS:rDI */
        if (mem)
            raise_exception(cpu, EXCP_UD);
        d.q[0] = mmx_get(cpu, r);
        sv.q[0] = mmx_get(cpu, op->rm);
        for (int i = 0; i < 8; i++)
            if (sv.b[i] & 0x80)
                seg_st(cpu, op->seg, (cpu->regs[R_EDI] + (unsigned)i) & size_mask[op->asz], 0, d.b[i]);
        mmx_enter(cpu);
        return H_NEXT;
    default:
        break;
    }
    /* Integer ops: run the 128-bit version on the low half, then fix the ops
     * whose lanes cross the middle (unpack high, pack, PSADBW, PMULUDQ). */
    XMMReg probe, zero;
    memset(&probe, 0, sizeof(probe));
    memset(&zero, 0, sizeof(zero));
    if (!int_op(opc, &probe, &zero) || (opc >= 0x54 && opc <= 0x57) || opc == 0x6c || opc == 0x6d)
        sse_unimp(cpu, op);
    sv.q[0] = mmx_src(cpu, op);
    d.q[0] = mmx_get(cpu, r);
    XMMReg a = d;
    switch (opc) {
    case 0x68: case 0x69: case 0x6a:    /* PUNPCKH*: the high 4 bytes of each operand */
        a.q[0] = d.q[0] >> 32;
        sv.q[0] >>= 32;
        int_op((unsigned)(opc - 8), &a, &sv);
        break;
    case 0x63: case 0x67: case 0x6b:    /* PACK*: d packs to the low 4 bytes, s to the high */
        a.q[1] = sv.q[0];
        sv.q[0] = 0;
        int_op(opc, &a, &sv);
        break;
    default:
        int_op(opc, &a, &sv);
        break;
    }
    mmx_enter(cpu);
    mmx_set(cpu, r, a.q[0]);
    return H_NEXT;
}

void sse_unimp(TCGCPU *cpu, const DecodedOp *op)
{
    LOG(LOG_UNIMP, "tcg: SSE/MMX instruction %s0f %s%02x not implemented -> #UD\n",
        (const char *[]){ "", "66 ", "f3 ", "f2 " }[op->sub & 3],
        (const char *[]){ "", "38 ", "3a ", "" }[(op->imm16 >> 8) & 3], op->imm16 & 0xff);
    raise_exception(cpu, EXCP_UD);
}

/*
 * The defined forms of the legacy 0F map's MMX/SSE/SSE2/SSE3 opcodes (SDM 2D
 * App. A Tables ), by mandatory prefix: any ModRM, memory or
 * register operand only, or a shift group (71-73: /2 /4 /6, and 66 0F 73
 * /3 /7; register operand only).  Anything else is #UD.  AMD's SSE4a
 * (F2/F3 0F 78/79/2B) and VMREAD/VMWRITE (0F 78/79) are not here.
 */
enum { FORM_UD = 0, FORM_ANY, FORM_MEM, FORM_REG, FORM_SHIFT };
static const uint8_t sse_0f_forms[4][256] = {
    [PF_NONE] = {
        [0x10 ... 0x12] = FORM_ANY, [0x13] = FORM_MEM, [0x14 ... 0x16] = FORM_ANY,
        [0x17] = FORM_MEM, [0x28 ... 0x2a] = FORM_ANY, [0x2b] = FORM_MEM,
        [0x2c ... 0x2f] = FORM_ANY, [0x50] = FORM_REG, [0x51 ... 0x5f] = FORM_ANY,
        [0xc2] = FORM_ANY, [0xc6] = FORM_ANY,
        /* MMX (and the SSE/SSE2 additions on MMX registers) */
        [0x60 ... 0x6b] = FORM_ANY, [0x6e ... 0x70] = FORM_ANY, [0x71 ... 0x73] = FORM_SHIFT,
        [0x74 ... 0x77] = FORM_ANY, [0x7e ... 0x7f] = FORM_ANY, [0xc4] = FORM_ANY,
        [0xc5] = FORM_REG, [0xd1 ... 0xd5] = FORM_ANY, [0xd7] = FORM_REG,
        [0xd8 ... 0xe5] = FORM_ANY, [0xe7] = FORM_MEM, [0xe8 ... 0xef] = FORM_ANY,
        [0xf1 ... 0xf6] = FORM_ANY, [0xf7] = FORM_REG, [0xf8 ... 0xfe] = FORM_ANY,
    },
    [PF_66] = {
        [0x10 ... 0x11] = FORM_ANY, [0x12 ... 0x13] = FORM_MEM, [0x14 ... 0x15] = FORM_ANY,
        [0x16 ... 0x17] = FORM_MEM, [0x28 ... 0x2a] = FORM_ANY, [0x2b] = FORM_MEM,
        [0x2c ... 0x2f] = FORM_ANY, [0x50] = FORM_REG, [0x51] = FORM_ANY,
        [0x54 ... 0x70] = FORM_ANY, [0x71 ... 0x73] = FORM_SHIFT, [0x74 ... 0x76] = FORM_ANY,
        [0x7c ... 0x7f] = FORM_ANY, [0xc2] = FORM_ANY, [0xc4] = FORM_ANY, [0xc5] = FORM_REG,
        [0xc6] = FORM_ANY, [0xd0 ... 0xd6] = FORM_ANY, [0xd7] = FORM_REG,
        [0xd8 ... 0xe6] = FORM_ANY, [0xe7] = FORM_MEM, [0xe8 ... 0xef] = FORM_ANY,
        [0xf1 ... 0xf6] = FORM_ANY, [0xf7] = FORM_REG, [0xf8 ... 0xfe] = FORM_ANY,
    },
    [PF_F3] = {
        [0x10 ... 0x12] = FORM_ANY, [0x16] = FORM_ANY, [0x2a] = FORM_ANY,
        [0x2c ... 0x2d] = FORM_ANY, [0x51 ... 0x53] = FORM_ANY, [0x58 ... 0x5f] = FORM_ANY,
        [0x6f ... 0x70] = FORM_ANY, [0x7e ... 0x7f] = FORM_ANY, [0xc2] = FORM_ANY,
        [0xd6] = FORM_REG, [0xe6] = FORM_ANY,
    },
    [PF_F2] = {
        [0x10 ... 0x12] = FORM_ANY, [0x2a] = FORM_ANY, [0x2c ... 0x2d] = FORM_ANY,
        [0x51] = FORM_ANY, [0x58 ... 0x5a] = FORM_ANY, [0x5c ... 0x5f] = FORM_ANY,
        [0x70] = FORM_ANY, [0x7c ... 0x7d] = FORM_ANY, [0xc2] = FORM_ANY, [0xd0] = FORM_ANY,
        [0xd6] = FORM_REG, [0xe6] = FORM_ANY, [0xf0] = FORM_MEM,
    },
};

static bool sse_0f_form_defined(const DecodedOp *op, unsigned opc, unsigned pf)
{
    bool mem = op->rm == NOREG;
    unsigned g = op->reg & 7;
    switch (sse_0f_forms[pf][opc]) {
    case FORM_ANY: return true;
    case FORM_MEM: return mem;
    case FORM_REG: return !mem;
    case FORM_SHIFT:
        if (mem)
            return false;
        if (g == 2 || g == 6 || (g == 4 && opc != 0x73))
            return true;
        return opc == 0x73 && pf == PF_66 && (g == 3 || g == 7);    /* PSRLDQ PSLLDQ */
    default: return false;
    }
}

int helper_sse(TCGCPU *cpu, const DecodedOp *op)
{
    unsigned opc = op->imm16 & 0xff, pf = op->sub & 3;
    /* 0F 38 / 0F 3A maps: their own files (the integer ones need no OSFXSR). */
    if (op->imm16 >> 8 == 1)
        return helper_sse_0f38(cpu, op);
    if (op->imm16 >> 8 == 2)
        return helper_sse_0f3a(cpu, op);
    /*
     * An undefined form is #UD before any CR0.EM/TS or CR4.OSFXSR check:
     * it is no MMX/SSE instruction, so SDM 3A Table 12-8's #NM for CR0.TS
     * does not apply (e.g. MOVNTPS, whose only form is a memory store,
     * with ModRM.mod = 11B).
     */
    if (!sse_0f_form_defined(op, opc, pf))
        raise_exception(cpu, EXCP_UD);
    /* No mandatory prefix on the integer opcodes: MMX registers (CR4.OSFXSR not needed). */
    if (pf == PF_NONE && ((opc >= 0x60 && opc <= 0x7f) || opc == 0xc4 || opc == 0xc5 ||
                          (opc >= 0xd1 && opc != 0xe6)))
        return helper_mmx(cpu, op);
    sse_insn_check(cpu);
    switch (opc) {
    case 0x2a: case 0x2c ... 0x2f: case 0x51 ... 0x53: case 0x58 ... 0x5f: case 0xc2: case 0xe6:
    case 0x7c: case 0x7d: case 0xd0:    /* SSE3 HADD / HSUB / ADDSUB */
        return helper_sse_fp(cpu, op);
    default:
        break;
    }
    if (pf == PF_F3 && opc == 0xd6 && op->rm != NOREG) {    /* MOVQ2DQ xmm, mm */
        mmx_check(cpu);
        cpu->xmm[op->reg & 15].q[0] = mmx_get(cpu, op->rm);
        cpu->xmm[op->reg & 15].q[1] = 0;
        mmx_enter(cpu);
        return H_NEXT;
    }
    if (pf == PF_F2 && opc == 0xd6 && op->rm != NOREG) {    /* MOVDQ2Q mm, xmm */
        mmx_check(cpu);
        mmx_enter(cpu);
        mmx_set(cpu, op->reg, cpu->xmm[op->rm].q[0]);
        return H_NEXT;
    }
    if (pf == PF_66 && opc == 0xf7) {       /* MASKMOVDQU xmm, xmm */
        if (op->rm == NOREG)
            raise_exception(cpu, EXCP_UD);
        const XMMReg *src = &cpu->xmm[op->reg & 15], *msk = &cpu->xmm[op->rm];
        for (int i = 0; i < 16; i++)
            if (msk->b[i] & 0x80)
                seg_st(cpu, op->seg, (cpu->regs[R_EDI] + (unsigned)i) & size_mask[op->asz], 0, src->b[i]);
        return H_NEXT;
    }
    XMMReg *d = &cpu->xmm[op->reg & 15];
    XMMReg s;
    bool mem = op->rm == NOREG;

    switch (opc) {
    case 0x10: case 0x11:       /* MOVUPS/MOVUPD/MOVSS/MOVSD */
        if (pf <= PF_66) {
            if (opc == 0x10) *d = sse_src(cpu, op, 16, false);
            else if (mem) sse_store(cpu, op, d, 16, false);
            else cpu->xmm[op->rm] = *d;
        } else {
            unsigned len = pf == PF_F3 ? 4 : 8;
            if (opc == 0x10) {
                s = sse_src(cpu, op, len, false);
                if (mem) *d = s;                            /* load zeroes the rest */
                else if (len == 4) d->d[0] = s.d[0];
                else d->q[0] = s.q[0];
            } else if (mem) {
                sse_store(cpu, op, d, len, false);
            } else if (len == 4) {
                cpu->xmm[op->rm].d[0] = d->d[0];
            } else {
                cpu->xmm[op->rm].q[0] = d->q[0];
            }
        }
        return H_NEXT;
    case 0x12: case 0x13: case 0x16: case 0x17: {  /* MOVLPS/MOVHLPS/MOVHPS/MOVLHPS (+PD) */
        if (pf == PF_F2 && opc == 0x12) {           /* SSE3 MOVDDUP: m64, no alignment rule */
            s = sse_src(cpu, op, 8, false);
            d->q[0] = d->q[1] = s.q[0];
            return H_NEXT;
        }
        if (pf == PF_F3 && (opc == 0x12 || opc == 0x16)) {    /* SSE3 MOVSLDUP / MOVSHDUP */
            s = sse_src(cpu, op, 16, true);
            unsigned odd = opc == 0x16;
            d->d[0] = d->d[1] = s.d[odd];
            d->d[2] = d->d[3] = s.d[2 + odd];
            return H_NEXT;
        }
        if (pf > PF_66)
            sse_unimp(cpu, op);
        int hi = opc >= 0x16;
        if (opc & 1) {                                  /* store forms: memory only */
            if (!mem)
                raise_exception(cpu, EXCP_UD);
            XMMReg t;
            t.q[0] = d->q[hi];
            sse_store(cpu, op, &t, 8, false);
        } else if (!mem) {
            if (pf == PF_66)
                raise_exception(cpu, EXCP_UD);
            s = cpu->xmm[op->rm];
            if (hi) d->q[1] = s.q[0];                   /* MOVLHPS */
            else d->q[0] = s.q[1];                      /* MOVHLPS */
        } else {
            s = sse_src(cpu, op, 8, false);
            d->q[hi] = s.q[0];
        }
        return H_NEXT;
    }
    case 0x14: case 0x15: {     /* UNPCKLPS/UNPCKHPS/UNPCKLPD/UNPCKHPD */
        if (pf > PF_66)
            sse_unimp(cpu, op);
        s = sse_src(cpu, op, 16, true);
        XMMReg r;
        if (pf == PF_66) {
            r.q[0] = d->q[opc & 1];
            r.q[1] = s.q[opc & 1];
        } else {
            int b = (opc & 1) * 2;
            r.d[0] = d->d[b]; r.d[1] = s.d[b]; r.d[2] = d->d[b + 1]; r.d[3] = s.d[b + 1];
        }
        *d = r;
        return H_NEXT;
    }
    case 0x28: case 0x29:       /* MOVAPS/MOVAPD */
        if (pf > PF_66)
            sse_unimp(cpu, op);
        if (opc == 0x28) *d = sse_src(cpu, op, 16, true);
        else if (mem) sse_store(cpu, op, d, 16, true);
        else cpu->xmm[op->rm] = *d;
        return H_NEXT;
    case 0x2b: case 0xe7:       /* MOVNTPS/MOVNTPD/MOVNTDQ: aligned store (form checked above) */
        sse_store(cpu, op, d, 16, true);
        return H_NEXT;
    case 0x50:                  /* MOVMSKPS/MOVMSKPD */
        if (!mem && pf <= PF_66) {
            unsigned m = 0;
            s = cpu->xmm[op->rm];
            if (pf == PF_66) m = (unsigned)(s.q[0] >> 63) | (unsigned)(s.q[1] >> 63) << 1;
            else for (int i = 0; i < 4; i++) m |= (s.d[i] >> 31) << i;
            reg_set(cpu, op->reg, 3, m);
            return H_NEXT;
        }
        raise_exception(cpu, EXCP_UD);
    case 0x54: case 0x55: case 0x56: case 0x57:
        if (pf > PF_66)
            sse_unimp(cpu, op);
        s = sse_src(cpu, op, 16, true);
        int_op(opc, d, &s);
        return H_NEXT;
    case 0x6e:                  /* MOVD/MOVQ xmm, r/m */
        if (pf != PF_66)
            sse_unimp(cpu, op);
        memset(d, 0, sizeof(*d));
        d->q[0] = rm_read(cpu, op, op->sz == 3 ? 3 : 2);
        return H_NEXT;
    case 0x7e:
        if (pf == PF_66) {      /* MOVD/MOVQ r/m, xmm */
            rm_write(cpu, op, op->sz == 3 ? 3 : 2, op->sz == 3 ? d->q[0] : d->d[0]);
            return H_NEXT;
        }
        if (pf == PF_F3) {      /* MOVQ xmm, xmm/m64 */
            s = sse_src(cpu, op, 8, false);
            d->q[0] = s.q[0];
            d->q[1] = 0;
            return H_NEXT;
        }
        sse_unimp(cpu, op);
    case 0x6f: case 0x7f:       /* MOVDQA / MOVDQU */
        if (pf != PF_66 && pf != PF_F3)
            sse_unimp(cpu, op);
        if (opc == 0x6f) *d = sse_src(cpu, op, 16, pf == PF_66);
        else if (mem) sse_store(cpu, op, d, 16, pf == PF_66);
        else cpu->xmm[op->rm] = *d;
        return H_NEXT;
    case 0xd6:                  /* MOVQ xmm/m64, xmm */
        if (pf != PF_66)
            sse_unimp(cpu, op);
        if (mem) {
            sse_store(cpu, op, d, 8, false);
        } else {
            cpu->xmm[op->rm].q[0] = d->q[0];
            cpu->xmm[op->rm].q[1] = 0;
        }
        return H_NEXT;
    case 0x70: {                /* PSHUFD / PSHUFHW / PSHUFLW */
        if (pf == PF_NONE)
            sse_unimp(cpu, op);
        s = sse_src(cpu, op, 16, true);
        unsigned im = (unsigned)op->imm;
        XMMReg r = s;
        if (pf == PF_66)
            for (int i = 0; i < 4; i++) r.d[i] = s.d[(im >> (2 * i)) & 3];
        else if (pf == PF_F3)
            for (int i = 0; i < 4; i++) r.w[4 + i] = s.w[4 + ((im >> (2 * i)) & 3)];
        else
            for (int i = 0; i < 4; i++) r.w[i] = s.w[(im >> (2 * i)) & 3];
        *d = r;
        return H_NEXT;
    }
    case 0x71: case 0x72: case 0x73: {  /* shift groups by imm8 on the r/m register */
        if (pf != PF_66 || mem)
            sse_unimp(cpu, op);
        XMMReg *x = &cpu->xmm[op->rm];
        unsigned g = op->reg & 7, im = (unsigned)op->imm & 0xff;
        if (opc == 0x73 && (g == 3 || g == 7)) {
            byte_shift(x, im, g == 7);              /* PSRLDQ / PSLLDQ */
            return H_NEXT;
        }
        int kind = g == 2 ? 0 : g == 4 ? 1 : g == 6 ? 2 : -1;
        int esz = opc == 0x71 ? 1 : opc == 0x72 ? 2 : 3;
        if (kind < 0 || (kind == 1 && esz == 3))
            raise_exception(cpu, EXCP_UD);
        shift_elems(x, esz, kind, im);
        return H_NEXT;
    }
    case 0xc4:                  /* PINSRW xmm, r32/m16, imm8 */
        if (pf != PF_66)
            sse_unimp(cpu, op);
        d->w[op->imm & 7] = (uint16_t)rm_read(cpu, op, 1);
        return H_NEXT;
    case 0xc5:                  /* PEXTRW r32, xmm, imm8 */
        if (pf != PF_66 || mem)
            sse_unimp(cpu, op);
        reg_set(cpu, op->reg, 3, cpu->xmm[op->rm].w[op->imm & 7]);
        return H_NEXT;
    case 0xc6: {                /* SHUFPS / SHUFPD */
        if (pf > PF_66)
            sse_unimp(cpu, op);
        s = sse_src(cpu, op, 16, true);
        unsigned im = (unsigned)op->imm;
        XMMReg r;
        if (pf == PF_66) {
            r.q[0] = d->q[im & 1];
            r.q[1] = s.q[(im >> 1) & 1];
        } else {
            r.d[0] = d->d[im & 3]; r.d[1] = d->d[(im >> 2) & 3];
            r.d[2] = s.d[(im >> 4) & 3]; r.d[3] = s.d[(im >> 6) & 3];
        }
        *d = r;
        return H_NEXT;
    }
    case 0xf0:                  /* SSE3 LDDQU xmm, m128: unaligned (form checked above) */
        *d = sse_src(cpu, op, 16, false);
        return H_NEXT;
    case 0xd7:                  /* PMOVMSKB r32, xmm */
        if (pf != PF_66 || mem)
            sse_unimp(cpu, op);
        {
            unsigned m = 0;
            for (int i = 0; i < 16; i++)
                m |= (unsigned)(cpu->xmm[op->rm].b[i] >> 7) << i;
            reg_set(cpu, op->reg, 3, m);
        }
        return H_NEXT;
    default: {
        XMMReg probe, zero;
        memset(&probe, 0, sizeof(probe));
        memset(&zero, 0, sizeof(zero));
        if (pf != PF_66 || !int_op(opc, &probe, &zero))
            sse_unimp(cpu, op);         /* decide #UD before touching memory */
        s = sse_src(cpu, op, 16, true);
        int_op(opc, d, &s);
        return H_NEXT;
    }
    }
}
