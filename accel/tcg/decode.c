/*
 * x86 decoder: guest bytes -> DecodedOp records of a TranslatedBlock.
 *
 * Follows the instruction format of SDM 2A ch. 2 (prefixes, REX, opcode,
 * ModRM/SIB/displacement/immediate) and the opcode maps of SDM 2D app. A.
 * Prefix rules: the last segment override wins; the last of F2/F3 wins;
 * a REX prefix counts only when it immediately precedes the opcode; more
 * than 15 bytes -> #GP(0).  Opcodes invalid in 64-bit mode (i64) decode to
 * OP_UD there.  The decoder never touches guest registers: it only needs
 * the code size (TB flags) and a way to fetch bytes.
 *
 * Blocks end after an unconditional control transfer or an instruction
 * that may change the mode, at a page boundary, or after TB_MAX_INSNS
 * instructions; a conditional branch leaves the block only when taken.
 */
#include "accel/tcg/cpu.h"
#include "accel/tcg/disas.h"
#include "accel/tcg/tb.h"
#include "kestrel/lock.h"
#include "kestrel/log.h"

/* Op kinds not yet in tb.h's list (same aliases as accel/tcg/ops.h). */
#define OP_X87   OP_FPU_NM
#define OP_FXGRP OP_FNSTCW
#define OP_SSE   OP_FLDCW

typedef struct Dec {
    TCGCPU *cpu;
    uint64_t lin;            /* linear address of the next byte */
    uint64_t ip;             /* same, as an offset in CS (for logging) */
    uint8_t *host;           /* host pointer of the current page, NULL for MMIO */
    uint64_t page_lin;       /* linear base of the current page */
    uint64_t ppage;          /* physical page of the current page */
    uint64_t first_lin_page;
    uint64_t page2;
    unsigned n;              /* bytes of the current instruction */
    unsigned insn_index;
    bool stop;               /* fetch would fault on a later instruction */
    jmp_buf abort;
    uint8_t bytes[16];
    /* prefixes */
    int seg;                 /* override or -1 */
    bool osz, asz_pf, lock, rep, repne, rex_w;
    uint8_t rex;             /* REX byte or 0 */
    int code;                /* 1, 2, 3 */
} Dec;

static uint8_t fetch8(Dec *d)
{
    if (d->n >= 15) {
        /* SDM 3A Table 6-2: instruction longer than 15 bytes -> #GP(0). */
        if (d->insn_index > 0)
            longjmp(d->abort, 1);
        raise_exception_err(d->cpu, EXCP_GP, 0);
    }
    uint64_t page = d->lin & TLB_PAGE_MASK;
    if (page != d->page_lin) {
        TCGCPU *cpu = d->cpu;
        if (d->insn_index > 0) {
            /* Cross-page later in the block: end the block instead of faulting now. */
            uint64_t pa;
            if (page != d->first_lin_page + 0x1000 && page != d->first_lin_page)
                longjmp(d->abort, 1);
            if (!mmu_translate(cpu, d->lin, ACC_EXEC, cpu->mmu_idx, &pa, false))
                longjmp(d->abort, 1);
        }
        d->host = mmu_translate_code(cpu, d->lin, &d->ppage, NULL);
        d->page_lin = page;
        if (page != d->first_lin_page)
            d->page2 = d->ppage;
    }
    uint8_t b;
    if (d->host) {
        b = d->host[d->lin & 0xfff];
    } else {
        b = (uint8_t)phys_ld(d->cpu, d->ppage | (d->lin & 0xfff), 0);
    }
    d->bytes[d->n++] = b;
    d->lin++;
    if (d->code != 3)
        d->lin = (uint32_t)d->lin;
    return b;
}

static uint64_t fetch(Dec *d, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)fetch8(d) << (8 * i);
    return v;
}

static int64_t fetch_simm(Dec *d, int bytes)
{
    uint64_t v = fetch(d, bytes);
    switch (bytes) {
    case 1: return (int8_t)v;
    case 2: return (int16_t)v;
    case 4: return (int32_t)v;
    default: return (int64_t)v;
    }
}

/* Immediate of operand size, at most 32 bits sign-extended (Iz). */
static uint64_t fetch_iz(Dec *d, int sz)
{
    if (sz == 0)
        return fetch(d, 1);
    if (sz == 1)
        return fetch(d, 2);
    return (uint64_t)fetch_simm(d, 4);
}

/* 8-bit register numbering: without REX, 4-7 are AH CH DH BH (encoded 16-19). */
static uint8_t breg(const Dec *d, unsigned r)
{
    if (!d->rex && r >= 4 && r < 8)
        return (uint8_t)(16 + r - 4);
    return (uint8_t)r;
}

/* ModRM (and SIB, displacement). Sets op->reg, op->rm or the memory fields. */
static unsigned decode_modrm(Dec *d, DecodedOp *op)
{
    uint8_t m = fetch8(d);
    unsigned mod = m >> 6, reg = (m >> 3) & 7, rm = m & 7;
    op->reg = (uint8_t)(reg | ((d->rex & 4) ? 8 : 0));
    op->base = op->index = REG_ZERO;
    op->scale = 0;
    op->disp = 0;
    int defseg = SEG_DS;
    if (mod == 3) {
        op->rm = (uint8_t)(rm | ((d->rex & 1) ? 8 : 0));
        return m;
    }
    op->rm = NOREG;
    if (op->asz == 1) {
        static const uint8_t b16[8] = { R_EBX, R_EBX, R_EBP, R_EBP, REG_ZERO, REG_ZERO, R_EBP, R_EBX };
        static const uint8_t i16[8] = { R_ESI, R_EDI, R_ESI, R_EDI, R_ESI, R_EDI, REG_ZERO, REG_ZERO };
        op->base = b16[rm];
        op->index = i16[rm];
        if (rm == 4 || rm == 5) {      /* [SI] / [DI]: index used as base */
            op->base = op->index;
            op->index = REG_ZERO;
        }
        if (mod == 0 && rm == 6) {
            op->base = REG_ZERO;
            op->disp = (int32_t)fetch(d, 2);
        } else if (mod == 1) {
            op->disp = (int32_t)fetch_simm(d, 1);
        } else if (mod == 2) {
            op->disp = (int32_t)fetch(d, 2);
        }
        if (op->base == R_EBP)
            defseg = SEG_SS;
    } else {
        if (rm == 4) {
            uint8_t sib = fetch8(d);
            unsigned ss = sib >> 6, idx = (sib >> 3) & 7, base = sib & 7;
            unsigned idx_x = idx | ((d->rex & 2) ? 8 : 0);
            if (idx_x != 4) {
                op->index = (uint8_t)idx_x;
                op->scale = (uint8_t)ss;
            }
            if (base == 5 && mod == 0) {
                op->base = REG_ZERO;
                op->disp = (int32_t)fetch_simm(d, 4);
            } else {
                op->base = (uint8_t)(base | ((d->rex & 1) ? 8 : 0));
            }
        } else if (rm == 5 && mod == 0) {
            op->base = d->code == 3 ? BASE_RIP : REG_ZERO;
            op->disp = (int32_t)fetch_simm(d, 4);
        } else {
            op->base = (uint8_t)(rm | ((d->rex & 1) ? 8 : 0));
        }
        if (mod == 1)
            op->disp = (int32_t)fetch_simm(d, 1);
        else if (mod == 2)
            op->disp = (int32_t)fetch_simm(d, 4);
        if (op->base == R_ESP || op->base == R_EBP)
            defseg = SEG_SS;
    }
    op->seg = (uint8_t)(d->seg >= 0 ? d->seg : defseg);
    return m;
}

static bool op_ends_block(const DecodedOp *op)
{
    if (op->idx == OP_FLAGOP)
        return op->sub == 4;        /* STI: interrupt shadow */
    if (op->idx == OP_NOP)
        return op->sub == 1;        /* PAUSE: a spin-wait; let other CPUs run (exec.c) */
    /*
     * Not Jcc: its fall-through path goes on in the block, and only a
     * taken branch leaves it (exec.c), so "if" chains stay in one block.
     */
    switch (op->idx) {
    case OP_JMP_REL: case OP_CALL_REL: case OP_RET: case OP_JMP_E: case OP_CALL_E:
    case OP_JMP_FAR: case OP_CALL_FAR: case OP_JMP_FAR_E: case OP_CALL_FAR_E: case OP_RETF:
    case OP_IRET: case OP_INT: case OP_INT3: case OP_INTO: case OP_LOOP: case OP_JCXZ:
    case OP_HLT: case OP_MOV_CR: case OP_MOV_DR: case OP_CLTS: case OP_INVLPG: case OP_WRMSR:
    case OP_POPF: case OP_SYSCALL: case OP_SYSRET: case OP_SYSENTER:
    case OP_SYSEXIT: case OP_UD: case OP_ILLEGAL_LOCK: case OP_GRP7: case OP_GRP6:
    case OP_BOUND:
        return true;
    default:
        return false;
    }
}

/* Decode one instruction into op; returns false for "stop before this one". */
static void decode_one(Dec *d, DecodedOp *op)
{
    memset(op, 0, sizeof(*op));
    d->n = 0;
    d->seg = -1;
    d->osz = d->asz_pf = d->lock = d->rep = d->repne = d->rex_w = false;
    d->rex = 0;
    bool c64 = d->code == 3;
    uint8_t b;

    for (;;) {
        b = fetch8(d);
        switch (b) {
        case 0x26: d->seg = SEG_ES; d->rex = 0; continue;
        case 0x2e: d->seg = SEG_CS; d->rex = 0; continue;
        case 0x36: d->seg = SEG_SS; d->rex = 0; continue;
        case 0x3e: d->seg = SEG_DS; d->rex = 0; continue;
        case 0x64: d->seg = SEG_FS; d->rex = 0; continue;
        case 0x65: d->seg = SEG_GS; d->rex = 0; continue;
        case 0x66: d->osz = true; d->rex = 0; continue;
        case 0x67: d->asz_pf = true; d->rex = 0; continue;
        case 0xf0: d->lock = true; d->rex = 0; continue;
        case 0xf2: d->repne = true; d->rep = false; d->rex = 0; continue;
        case 0xf3: d->rep = true; d->repne = false; d->rex = 0; continue;
        default: break;
        }
        if (c64 && (b & 0xf0) == 0x40) {
            d->rex = b;
            continue;
        }
        break;
    }
    d->rex_w = (d->rex & 8) != 0;
    if (c64 && d->seg >= 0 && d->seg < SEG_FS)
        d->seg = -1;        /* CS/DS/ES/SS overrides are ignored in 64-bit mode */

    /* Operand and address sizes (SDM 2A §2.2.1.2). */
    int osz = c64 ? (d->rex_w ? 3 : d->osz ? 1 : 2) : ((d->code == 2) != d->osz ? 2 : 1);
    op->asz = (uint8_t)(c64 ? (d->asz_pf ? 2 : 3) : ((d->code == 2) != d->asz_pf ? 2 : 1));
    /* d64: near branches, push/pop default to 64-bit in 64-bit mode. */
    int osz64 = c64 ? (d->osz ? 1 : 3) : osz;
    op->seg = (uint8_t)(d->seg >= 0 ? d->seg : SEG_DS);
    op->rm = NOREG;
    op->base = op->index = REG_ZERO;
    op->pfx = (uint8_t)((d->rep ? PFX_REP : 0) | (d->repne ? PFX_REPNE : 0) |
                        (d->lock ? PFX_LOCK : 0) | (d->osz ? PFX_OSZ : 0) | (d->rex ? PFX_REX : 0));
    op->sz = (uint8_t)osz;
    bool lock_ok = false;
    unsigned modrm;

#define MODRM() (modrm = decode_modrm(d, op))
#define IS_MEM() (op->rm == NOREG)
#define UD() do { op->idx = OP_UD; goto done; } while (0)
#define I64() do { if (c64) UD(); } while (0)

    if (b != 0x0f) {
        switch (b) {
        case 0x00 ... 0x3f:
            if ((b & 7) < 6) {
                op->sub = b >> 3;
                int bytesz = !(b & 1);
                op->sz = bytesz ? 0 : (uint8_t)osz;
                switch (b & 7) {
                case 0: case 1:
                    MODRM(); op->idx = OP_ALU_EG;
                    if (bytesz) { op->reg = breg(d, op->reg); if (!IS_MEM()) op->rm = breg(d, op->rm); }
                    lock_ok = IS_MEM() && op->sub != 7;
                    break;
                case 2: case 3:
                    MODRM(); op->idx = OP_ALU_GE;
                    if (bytesz) { op->reg = breg(d, op->reg); if (!IS_MEM()) op->rm = breg(d, op->rm); }
                    break;
                case 4: op->idx = OP_ALU_EI; op->rm = R_EAX; op->imm = fetch(d, 1); break;
                case 5: op->idx = OP_ALU_EI; op->rm = R_EAX; op->imm = fetch_iz(d, osz); break;
                }
                break;
            }
            switch (b) {
            case 0x06: case 0x0e: case 0x16: case 0x1e:
                I64(); op->idx = OP_PUSH_SEG; op->sub = b >> 3; break;
            case 0x07: case 0x17: case 0x1f:
                I64(); op->idx = OP_POP_SEG; op->sub = b >> 3; break;
            case 0x27: case 0x2f: case 0x37: case 0x3f:
                I64(); op->idx = OP_BCD; op->sub = (b >> 3) & 3; op->sz = 0; break;
                /* sub: 0 DAA(27>>3=4&3=0) 1 DAS 2 AAA 3 AAS */
            default: UD();
            }
            break;
        case 0x40 ... 0x4f:     /* INC/DEC r (not 64-bit: those bytes are REX) */
            op->idx = b < 0x48 ? OP_INC_E : OP_DEC_E;
            op->rm = b & 7;
            break;
        case 0x50 ... 0x57:
            op->idx = OP_PUSH_R; op->reg = (b & 7) | ((d->rex & 1) ? 8 : 0); op->sz = (uint8_t)osz64; break;
        case 0x58 ... 0x5f:
            op->idx = OP_POP_R; op->reg = (b & 7) | ((d->rex & 1) ? 8 : 0); op->sz = (uint8_t)osz64; break;
        case 0x60: I64(); op->idx = OP_PUSHA; break;
        case 0x61: I64(); op->idx = OP_POPA; break;
        case 0x62:
            I64(); MODRM(); if (!IS_MEM()) UD(); op->idx = OP_BOUND; break;
        case 0x63:
            MODRM();
            if (c64) {
                op->idx = OP_MOVSXD;
            } else {
                op->idx = OP_ARPL; op->sz = 1;
            }
            break;
        case 0x68: op->idx = OP_PUSH_I; op->sz = (uint8_t)osz64; op->imm = fetch_iz(d, osz64 == 3 ? 2 : osz64); break;
        case 0x6a: op->idx = OP_PUSH_I; op->sz = (uint8_t)osz64; op->imm = (uint64_t)fetch_simm(d, 1); break;
        case 0x69: MODRM(); op->idx = OP_IMUL_GEI; op->imm = fetch_iz(d, osz); break;
        case 0x6b: MODRM(); op->idx = OP_IMUL_GEI; op->imm = (uint64_t)fetch_simm(d, 1); break;
        case 0x6c: case 0x6d: op->idx = OP_INS; op->sz = b & 1 ? (osz == 3 ? 2 : osz) : 0; break;
        case 0x6e: case 0x6f: op->idx = OP_OUTS; op->sz = b & 1 ? (osz == 3 ? 2 : osz) : 0; break;
        case 0x70 ... 0x7f:
            op->idx = OP_JCC; op->sub = b & 15; op->sz = (uint8_t)osz64; op->imm = (uint64_t)fetch_simm(d, 1); break;
        case 0x80: case 0x81: case 0x82: case 0x83:
            if (b == 0x82)
                I64();
            MODRM();
            op->idx = OP_ALU_EI; op->sub = op->reg & 7;
            op->sz = (b & 1) ? (uint8_t)osz : 0;
            if (op->sz == 0 && !IS_MEM()) op->rm = breg(d, op->rm);
            op->imm = b == 0x81 ? fetch_iz(d, osz) : (uint64_t)fetch_simm(d, 1);
            lock_ok = IS_MEM() && op->sub != 7;
            break;
        case 0x84: case 0x85:
            MODRM(); op->idx = OP_TEST_EG; op->sz = (b & 1) ? (uint8_t)osz : 0;
            if (!op->sz) { op->reg = breg(d, op->reg); if (!IS_MEM()) op->rm = breg(d, op->rm); }
            break;
        case 0x86: case 0x87:
            MODRM(); op->idx = OP_XCHG_EG; op->sz = (b & 1) ? (uint8_t)osz : 0;
            if (!op->sz) { op->reg = breg(d, op->reg); if (!IS_MEM()) op->rm = breg(d, op->rm); }
            lock_ok = IS_MEM();
            break;
        case 0x88: case 0x89: case 0x8a: case 0x8b:
            MODRM(); op->idx = (b & 2) ? OP_MOV_GE : OP_MOV_EG; op->sz = (b & 1) ? (uint8_t)osz : 0;
            if (!op->sz) { op->reg = breg(d, op->reg); if (!IS_MEM()) op->rm = breg(d, op->rm); }
            break;
        case 0x8c: MODRM(); op->idx = OP_MOV_E_SEG; if ((op->reg & 7) > 5) UD(); op->reg &= 7;
            if (IS_MEM()) op->sz = 1;
            break;
        case 0x8d: MODRM(); if (!IS_MEM()) UD(); op->idx = OP_LEA; break;
        case 0x8e: MODRM(); op->idx = OP_MOV_SEG_E; op->reg &= 7;
            if (op->reg > 5 || op->reg == SEG_CS) UD();
            op->sz = 1;
            break;
        case 0x8f: MODRM(); if ((op->reg & 7) != 0) UD(); op->idx = OP_POP_E; op->sz = (uint8_t)osz64; break;
        case 0x90:
            if (d->rex & 1) { op->idx = OP_XCHG_EG; op->reg = R_EAX; op->rm = 8; }
            else if (d->rep) { op->idx = OP_NOP; op->sub = 1; }   /* F3 90 PAUSE */
            else op->idx = OP_NOP;
            break;
        case 0x91 ... 0x97:
            op->idx = OP_XCHG_EG; op->reg = R_EAX; op->rm = (b & 7) | ((d->rex & 1) ? 8 : 0); break;
        case 0x98: op->idx = OP_CBW; break;
        case 0x99: op->idx = OP_CWD; break;
        case 0x9a:
            I64(); op->idx = OP_CALL_FAR; op->imm = fetch(d, osz == 1 ? 2 : 4); op->imm16 = (uint16_t)fetch(d, 2); break;
        case 0x9b: op->idx = OP_FWAIT; break;
        case 0x9c: op->idx = OP_PUSHF; op->sz = (uint8_t)osz64; break;
        case 0x9d: op->idx = OP_POPF; op->sz = (uint8_t)osz64; break;
        case 0x9e: op->idx = OP_SAHF; break;
        case 0x9f: op->idx = OP_LAHF; break;
        case 0xa0 ... 0xa3:
            op->idx = (b & 2) ? OP_MOV_MOFFS_ST : OP_MOV_MOFFS_LD;
            op->sz = (b & 1) ? (uint8_t)osz : 0;
            op->imm = fetch(d, 1 << op->asz);
            break;
        case 0xa4: case 0xa5: op->idx = OP_MOVS; op->sz = (b & 1) ? (uint8_t)osz : 0; break;
        case 0xa6: case 0xa7: op->idx = OP_CMPS; op->sz = (b & 1) ? (uint8_t)osz : 0; break;
        case 0xa8: case 0xa9:
            op->idx = OP_TEST_EI; op->rm = R_EAX; op->sz = (b & 1) ? (uint8_t)osz : 0;
            op->imm = op->sz ? fetch_iz(d, osz) : fetch(d, 1);
            break;
        case 0xaa: case 0xab: op->idx = OP_STOS; op->sz = (b & 1) ? (uint8_t)osz : 0; break;
        case 0xac: case 0xad: op->idx = OP_LODS; op->sz = (b & 1) ? (uint8_t)osz : 0; break;
        case 0xae: case 0xaf: op->idx = OP_SCAS; op->sz = (b & 1) ? (uint8_t)osz : 0; break;
        case 0xb0 ... 0xb7:
            op->idx = OP_MOV_RI; op->sz = 0; op->reg = breg(d, (b & 7) | ((d->rex & 1) ? 8 : 0));
            op->imm = fetch(d, 1);
            break;
        case 0xb8 ... 0xbf:
            op->idx = OP_MOV_RI; op->reg = (b & 7) | ((d->rex & 1) ? 8 : 0);
            op->imm = fetch(d, 1 << osz);
            break;
        case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3:
            MODRM(); op->idx = OP_SHIFT_E; op->sub = op->reg & 7;
            op->sz = (b & 1) ? (uint8_t)osz : 0;
            if (!op->sz && !IS_MEM()) op->rm = breg(d, op->rm);
            if (b <= 0xc1) op->imm = fetch(d, 1);
            else if (b <= 0xd1) op->imm = 1;
            else op->pfx |= PFX_CL;
            break;
        case 0xc2: op->idx = OP_RET; op->sz = (uint8_t)osz64; op->imm = fetch(d, 2); break;
        case 0xc3: op->idx = OP_RET; op->sz = (uint8_t)osz64; break;
        case 0xc4: case 0xc5:
            I64(); MODRM(); if (!IS_MEM()) UD();
            op->idx = OP_LSEG; op->sub = b == 0xc4 ? SEG_ES : SEG_DS; break;
        case 0xc6: case 0xc7:
            MODRM(); if ((op->reg & 7) != 0) UD();
            op->idx = OP_MOV_EI; op->sz = (b & 1) ? (uint8_t)osz : 0;
            if (!op->sz && !IS_MEM()) op->rm = breg(d, op->rm);
            op->imm = op->sz ? fetch_iz(d, osz) : fetch(d, 1);
            break;
        case 0xc8: op->idx = OP_ENTER; op->sz = (uint8_t)osz64; op->imm16 = (uint16_t)fetch(d, 2); op->imm = fetch(d, 1); break;
        case 0xc9: op->idx = OP_LEAVE; op->sz = (uint8_t)osz64; break;
        case 0xca: op->idx = OP_RETF; op->imm = fetch(d, 2); break;
        case 0xcb: op->idx = OP_RETF; break;
        case 0xcc: op->idx = OP_INT3; break;
        case 0xcd: op->idx = OP_INT; op->imm = fetch(d, 1); break;
        case 0xce: I64(); op->idx = OP_INTO; break;
        case 0xcf: op->idx = OP_IRET; break;
        case 0xd4: I64(); op->idx = OP_BCD; op->sub = 4; op->imm = fetch(d, 1); break;
        case 0xd5: I64(); op->idx = OP_BCD; op->sub = 5; op->imm = fetch(d, 1); break;
        case 0xd6: I64(); op->idx = OP_SALC; break;
        case 0xd7: op->idx = OP_XLAT; break;
        case 0xd8 ... 0xdf:
            /* x87 escape: ops-fpu.c decodes the rest from the ModRM byte. */
            MODRM();
            op->idx = OP_X87;
            op->sub = (uint8_t)(b & 7);
            op->imm16 = (uint16_t)modrm;
            break;
        case 0xe0: case 0xe1: case 0xe2:
            op->idx = OP_LOOP; op->sub = b & 3; op->sz = (uint8_t)osz64; op->imm = (uint64_t)fetch_simm(d, 1); break;
        case 0xe3: op->idx = OP_JCXZ; op->sz = (uint8_t)osz64; op->imm = (uint64_t)fetch_simm(d, 1); break;
        case 0xe4: case 0xe5:
            op->idx = OP_IN; op->sz = (b & 1) ? (uint8_t)(osz == 3 ? 2 : osz) : 0; op->imm = fetch(d, 1); op->sub = 1; break;
        case 0xe6: case 0xe7:
            op->idx = OP_OUT; op->sz = (b & 1) ? (uint8_t)(osz == 3 ? 2 : osz) : 0; op->imm = fetch(d, 1); op->sub = 1; break;
        case 0xec: case 0xed:
            op->idx = OP_IN; op->sz = (b & 1) ? (uint8_t)(osz == 3 ? 2 : osz) : 0; break;
        case 0xee: case 0xef:
            op->idx = OP_OUT; op->sz = (b & 1) ? (uint8_t)(osz == 3 ? 2 : osz) : 0; break;
        case 0xe8:
            op->idx = OP_CALL_REL; op->sz = (uint8_t)osz64;
            op->imm = (uint64_t)fetch_simm(d, osz64 == 1 ? 2 : 4); break;
        case 0xe9:
            op->idx = OP_JMP_REL; op->sz = (uint8_t)osz64;
            op->imm = (uint64_t)fetch_simm(d, osz64 == 1 ? 2 : 4); break;
        case 0xea:
            I64(); op->idx = OP_JMP_FAR; op->imm = fetch(d, osz == 1 ? 2 : 4); op->imm16 = (uint16_t)fetch(d, 2); break;
        case 0xeb: op->idx = OP_JMP_REL; op->sz = (uint8_t)osz64; op->imm = (uint64_t)fetch_simm(d, 1); break;
        case 0xf4: op->idx = OP_HLT; break;
        case 0xf5: op->idx = OP_FLAGOP; op->sub = 0; break;     /* CMC */
        case 0xf8 ... 0xfd: op->idx = OP_FLAGOP; op->sub = (uint8_t)(b - 0xf8 + 1); break;
        case 0xf6: case 0xf7:
            MODRM(); op->sz = (b & 1) ? (uint8_t)osz : 0;
            if (!op->sz && !IS_MEM()) op->rm = breg(d, op->rm);
            switch (op->reg & 7) {
            case 0: case 1:
                op->idx = OP_TEST_EI; op->imm = op->sz ? fetch_iz(d, osz) : fetch(d, 1); break;
            case 2: op->idx = OP_NOT_E; lock_ok = IS_MEM(); break;
            case 3: op->idx = OP_NEG_E; lock_ok = IS_MEM(); break;
            case 4: op->idx = OP_MUL_E; break;
            case 5: op->idx = OP_IMUL1_E; break;
            case 6: op->idx = OP_DIV_E; break;
            case 7: op->idx = OP_IDIV_E; break;
            }
            break;
        case 0xfe:
            MODRM(); op->sz = 0;
            if (!IS_MEM()) op->rm = breg(d, op->rm);
            if ((op->reg & 7) > 1) UD();
            op->idx = (op->reg & 7) ? OP_DEC_E : OP_INC_E; lock_ok = IS_MEM();
            break;
        case 0xff:
            MODRM();
            switch (op->reg & 7) {
            case 0: op->idx = OP_INC_E; lock_ok = IS_MEM(); break;
            case 1: op->idx = OP_DEC_E; lock_ok = IS_MEM(); break;
            case 2: op->idx = OP_CALL_E; op->sz = (uint8_t)osz64; break;
            case 3: if (!IS_MEM()) UD(); op->idx = OP_CALL_FAR_E; break;
            case 4: op->idx = OP_JMP_E; op->sz = (uint8_t)osz64; break;
            case 5: if (!IS_MEM()) UD(); op->idx = OP_JMP_FAR_E; break;
            case 6: op->idx = OP_PUSH_E; op->sz = (uint8_t)osz64; break;
            default: UD();
            }
            break;
        default:
            UD();
        }
    } else {
        b = fetch8(d);
        switch (b) {
        case 0x00: MODRM(); op->idx = OP_GRP6; op->sub = op->reg & 7; op->sz = 1; if (op->sub > 5) UD(); break;
        case 0x01:
            MODRM(); op->idx = OP_GRP7; op->sub = op->reg & 7;
            if (!IS_MEM()) {
                if (modrm == 0xf8) { if (!c64) UD(); op->idx = OP_SWAPGS; }
                else if (modrm == 0xf9) op->idx = OP_RDTSCP;
                else if (op->sub == 4 || op->sub == 6) { /* SMSW/LMSW register forms */ }
                else if (modrm == 0xd0 || modrm == 0xd1) {  /* XGETBV, XSETBV: NP (SDM 2C) */
                    if (d->osz || d->rep || d->repne) UD();
                }
                else UD();
            } else if (op->sub == 7) {
                op->idx = OP_INVLPG;
            } else if (op->sub == 5) {
                UD();
            }
            break;
        case 0x02: MODRM(); op->idx = OP_LAR; break;
        case 0x03: MODRM(); op->idx = OP_LSL; break;
        case 0x05: op->idx = OP_SYSCALL; break;
        case 0x06: op->idx = OP_CLTS; break;
        case 0x07: op->idx = OP_SYSRET; break;
        case 0x08: case 0x09: op->idx = OP_NOP; break;     /* INVD, WBINVD: no caches */
        case 0x0b: UD();
        case 0x0d: MODRM(); op->idx = OP_NOP; break;       /* PREFETCH */
        case 0x18 ... 0x1f: MODRM(); op->idx = OP_NOP; break;   /* hint NOPs */
        case 0x20: case 0x22:
            MODRM();        /* mod is ignored: always registers (SDM 2B "MOV CR") */
            if (op->rm == NOREG) { op->rm = (uint8_t)((modrm & 7) | ((d->rex & 1) ? 8 : 0)); }
            op->idx = OP_MOV_CR; op->sub = b == 0x22;
            if (d->lock && op->reg == 0) op->reg = 8;   /* AMD alternate CR8 encoding */
            op->sz = c64 ? 3 : 2;
            break;
        case 0x21: case 0x23:
            MODRM();
            if (op->rm == NOREG) { op->rm = (uint8_t)((modrm & 7) | ((d->rex & 1) ? 8 : 0)); }
            op->idx = OP_MOV_DR; op->sub = b == 0x23; op->sz = c64 ? 3 : 2;
            break;
        case 0x30: op->idx = OP_WRMSR; break;
        case 0x31: op->idx = OP_RDTSC; break;
        case 0x32: op->idx = OP_RDMSR; break;
        case 0x34: op->idx = OP_SYSENTER; break;
        case 0x35: op->idx = OP_SYSEXIT; break;
        case 0x40 ... 0x4f: MODRM(); op->idx = OP_CMOVCC; op->sub = b & 15; break;
        case 0x80 ... 0x8f:
            op->idx = OP_JCC; op->sub = b & 15; op->sz = (uint8_t)osz64;
            op->imm = (uint64_t)fetch_simm(d, osz64 == 1 ? 2 : 4); break;
        case 0x90 ... 0x9f: MODRM(); op->idx = OP_SETCC; op->sub = b & 15; op->sz = 0;
            if (!IS_MEM()) op->rm = breg(d, op->rm);
            break;
        case 0xa0: op->idx = OP_PUSH_SEG; op->sub = SEG_FS; op->sz = (uint8_t)osz64; break;
        case 0xa1: op->idx = OP_POP_SEG; op->sub = SEG_FS; op->sz = (uint8_t)osz64; break;
        case 0xa8: op->idx = OP_PUSH_SEG; op->sub = SEG_GS; op->sz = (uint8_t)osz64; break;
        case 0xa9: op->idx = OP_POP_SEG; op->sub = SEG_GS; op->sz = (uint8_t)osz64; break;
        case 0xa2: op->idx = OP_CPUID; break;
        case 0xa3: case 0xab: case 0xb3: case 0xbb:
            MODRM(); op->idx = OP_BT_EG; op->sub = (b >> 3) & 3;   /* 0 BT 1 BTS 2 BTR 3 BTC */
            lock_ok = IS_MEM() && op->sub != 0;
            break;
        case 0xa4: case 0xa5: case 0xac: case 0xad:
            MODRM(); op->idx = OP_SHD_E; op->sub = b >= 0xac;   /* 0 SHLD, 1 SHRD */
            if (b & 1) op->pfx |= PFX_CL; else op->imm = fetch(d, 1);
            break;
        case 0xae:
            MODRM();
            if (!IS_MEM()) { op->idx = OP_NOP; break; }          /* LFENCE/MFENCE/SFENCE */
            if ((op->reg & 7) == 7) { op->idx = OP_CLFLUSH; break; }
            if ((op->reg & 7) < 4) {    /* FXSAVE FXRSTOR LDMXCSR STMXCSR */
                op->idx = OP_FXGRP; op->sub = op->reg & 7; op->sz = d->rex_w ? 3 : 2;
                break;
            }
            /* NP 0F AE /4 /5 /6: XSAVE XRSTOR XSAVEOPT; REX.W picks the 64-bit FIP/FDP format. */
            if (d->osz || d->rep || d->repne) UD();
            op->idx = OP_FXGRP; op->sub = op->reg & 7; op->sz = d->rex_w ? 3 : 2;
            break;
        case 0xaf: MODRM(); op->idx = OP_IMUL_GE; break;
        case 0xb0: case 0xb1:
            MODRM(); op->idx = OP_CMPXCHG; op->sz = (b & 1) ? (uint8_t)osz : 0;
            if (!op->sz) { op->reg = breg(d, op->reg); if (!IS_MEM()) op->rm = breg(d, op->rm); }
            lock_ok = IS_MEM();
            break;
        case 0xb2: MODRM(); if (!IS_MEM()) UD(); op->idx = OP_LSEG; op->sub = SEG_SS; break;
        case 0xb4: MODRM(); if (!IS_MEM()) UD(); op->idx = OP_LSEG; op->sub = SEG_FS; break;
        case 0xb5: MODRM(); if (!IS_MEM()) UD(); op->idx = OP_LSEG; op->sub = SEG_GS; break;
        case 0xb6: case 0xb7: case 0xbe: case 0xbf:
            MODRM(); op->idx = b < 0xb8 ? OP_MOVZX : OP_MOVSX;
            op->sub = b & 1;       /* source size: 0 byte, 1 word */
            if (!(b & 1) && !IS_MEM()) op->rm = breg(d, op->rm);
            break;
        case 0xb8:
            if (!d->rep) UD();
            MODRM(); op->idx = OP_POPCNT; break;
        case 0xba:
            MODRM(); if ((op->reg & 7) < 4) UD();
            op->idx = OP_BT_EI; op->sub = op->reg & 3; op->imm = fetch(d, 1);
            lock_ok = IS_MEM() && op->sub != 0;
            break;
        case 0xbc: MODRM(); op->idx = OP_BSF; break;
        case 0xbd: MODRM(); op->idx = d->rep ? OP_LZCNT : OP_BSR; break;
        case 0xc0: case 0xc1:
            MODRM(); op->idx = OP_XADD; op->sz = (b & 1) ? (uint8_t)osz : 0;
            if (!op->sz) { op->reg = breg(d, op->reg); if (!IS_MEM()) op->rm = breg(d, op->rm); }
            lock_ok = IS_MEM();
            break;
        case 0xc7:
            MODRM();
            if ((op->reg & 7) != 1 || !IS_MEM()) UD();
            op->idx = OP_CMPXCHG8B; lock_ok = true;
            break;
        case 0x77:                  /* EMMS: no ModRM */
            op->idx = OP_SSE;
            op->sub = (uint8_t)(d->rep ? 2 : d->repne ? 3 : d->osz ? 1 : 0);
            op->imm16 = b;
            break;
        case 0x10 ... 0x17: case 0x28 ... 0x2f: case 0x50 ... 0x76: case 0x78 ... 0x7f:
        case 0xc2: case 0xc4 ... 0xc6: case 0xd0 ... 0xfe:
            /* SSE/SSE2 (and MMX without a prefix): ops-sse.c decides. */
            MODRM();
            op->idx = OP_SSE;
            op->sub = (uint8_t)(d->rep ? 2 : d->repne ? 3 : d->osz ? 1 : 0);
            op->imm16 = b;
            op->sz = d->rex_w ? 3 : 2;
            if ((b >= 0x70 && b <= 0x73) || b == 0xc2 || (b >= 0xc4 && b <= 0xc6))
                op->imm = fetch(d, 1);
            break;
        case 0x38: case 0x3a: {
            /*
             * Three-byte opcode maps 0F 38 and 0F 3A (SDM 2D A.3): SSSE3,
             * SSE4.1/4.2, MOVBE, CRC32.  imm16 = 0x100 | op3 for 0F 38 and
             * 0x200 | op3 for 0F 3A, whose instructions all take an imm8.
             */
            uint8_t op3 = fetch8(d);
            MODRM();
            op->idx = OP_SSE;
            op->sub = (uint8_t)(d->rep ? 2 : d->repne ? 3 : d->osz ? 1 : 0);
            op->imm16 = (uint16_t)((b == 0x38 ? 0x100 : 0x200) | op3);
            /*
             * The general-purpose operand size, as for any opcode (MOVBE,
             * CRC32's source, ADX, PEXTR/PINSR use it; REX.W reads as 3).
             * CRC32 r32, r/m8 (F2 0F 38 F0) names a byte register.
             */
            op->sz = (uint8_t)osz;
            if (b == 0x38 && op3 == 0xf0 && op->sub == 3 && !IS_MEM())
                op->rm = breg(d, op->rm);
            if (b == 0x3a)
                op->imm = fetch(d, 1);
            break;
        }
        case 0xc3:                  /* MOVNTI m32/m64, r (SSE2): a plain store here */
            MODRM(); if (!IS_MEM()) UD();
            op->idx = OP_MOV_EG; op->sz = d->rex_w ? 3 : 2;
            break;
        case 0xc8 ... 0xcf:
            op->idx = OP_BSWAP; op->reg = (b & 7) | ((d->rex & 1) ? 8 : 0); break;
        default:
            UD();
        }
    }
    if (d->lock && !lock_ok && op->idx != OP_MOV_CR)
        op->idx = OP_ILLEGAL_LOCK;
done:
    op->len = (uint8_t)d->n;
#undef MODRM
#undef IS_MEM
#undef UD
#undef I64
}

/* -d in_asm: raw bytes and a simple mnemonic (no disassembler dependency). */
static void log_insn(const Dec *d, uint64_t ip, const DecodedOp *op)
{
    static const char *const alu[8] = { "add", "or", "adc", "sbb", "and", "sub", "xor", "cmp" };
    static const char *const shf[8] = { "rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar" };
    static const char *const cc[16] = { "o", "no", "b", "ae", "e", "ne", "be", "a",
                                        "s", "ns", "p", "np", "l", "ge", "le", "g" };
    char hex[64], mn[32], text[160];
    unsigned p = 0;
    for (unsigned i = 0; i < op->len && p + 4 < sizeof(hex); i++)
        p += (unsigned)snprintf(hex + p, sizeof(hex) - p, i ? " %02x" : "%02x", d->bytes[i]);
    /* QEMU's layout: address, bytes, AT&T disassembly (capstone when built in). */
    if (tcg_disas_insn(d->bytes, op->len, ip, d->code, text, sizeof(text))) {
        log_printf("0x%0*" PRIx64 ":  %-30s %s\n", d->code == 3 ? 16 : 8, ip, hex, text);
        return;
    }
    switch (op->idx) {
    case OP_ALU_EG: case OP_ALU_GE: case OP_ALU_EI:
        snprintf(mn, sizeof(mn), "%s", alu[op->sub & 7]); break;
    case OP_SHIFT_E: snprintf(mn, sizeof(mn), "%s", shf[op->sub & 7]); break;
    case OP_JCC: snprintf(mn, sizeof(mn), "j%s", cc[op->sub & 15]); break;
    case OP_SETCC: snprintf(mn, sizeof(mn), "set%s", cc[op->sub & 15]); break;
    case OP_CMOVCC: snprintf(mn, sizeof(mn), "cmov%s", cc[op->sub & 15]); break;
    default: {
        /* OP_FOO_BAR -> "foo_bar" */
        const char *n = tcg_op_names[op->idx];
        unsigned i = 0;
        for (; n[i] && i + 1 < sizeof(mn); i++)
            mn[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] - 'A' + 'a' : n[i]);
        mn[i] = 0;
    }
    }
    log_printf("0x%0*" PRIx64 ":  %-30s %-10s (%u-bit operand; kestrel op kind, no capstone)\n",
               d->code == 3 ? 16 : 8, ip, hex, mn, 8u << op->sz);
}

TranslatedBlock *tcg_translate(TCGCPU *cpu, uint64_t lin_pc, uint64_t pc_phys, uint32_t flags,
                               int max_insns);

TranslatedBlock *tcg_translate(TCGCPU *cpu, uint64_t lin_pc, uint64_t pc_phys, uint32_t flags,
                               int max_insns)
{
    DecodedOp ops[TB_MAX_INSNS];
    Dec d;
    memset(&d, 0, sizeof(d));
    d.cpu = cpu;
    d.code = (int)(flags & TB_FLAG_SIZE_MASK);
    d.lin = lin_pc;
    d.page_lin = UINT64_MAX;
    d.first_lin_page = lin_pc & TLB_PAGE_MASK;
    d.page2 = UINT64_MAX;
    volatile uint64_t ip = cpu->rip;
    volatile int n = 0;
    if (max_insns > TB_MAX_INSNS)
        max_insns = TB_MAX_INSNS;

    /* Later faults (or too-long instructions) end the block before that instruction. */
    volatile uint64_t save_lin = 0, save_page2 = UINT64_MAX;
    if (setjmp(d.abort)) {
        d.lin = save_lin;
        d.page2 = save_page2;
        goto finish;
    }
    if (log_enabled(LOG_IN_ASM))
        log_printf("----------------\nIN: \n");        /* QEMU's block header */
    /*
     * In 64-bit blocks that may chain, a direct JMP forward to the same
     * page does not end the block: decoding goes on at its target, which
     * exec.c's in-block jumps then reach without a block transition (the
     * JMP stays an op, jumping to the op after it).  So a loop whose body
     * jumps over other code can stay in one block.  DecodedOp.off is each
     * instruction's real offset; the block's size spans the skipped bytes
     * too, so writes there also invalidate it (harmlessly).
     */
    bool follow_jmp = d.code == 3 && !(flags & (TB_FLAGS_ALONE | TB_FLAG_BP));
    while (n < max_insns) {
        if (n > 0 && (d.lin & TLB_PAGE_MASK) != d.first_lin_page)
            break;          /* next instruction starts on another page */
        save_lin = d.lin;
        save_page2 = d.page2;
        d.insn_index = (unsigned)n;
        decode_one(&d, &ops[n]);
        ops[n].off = (uint16_t)(save_lin - lin_pc);
        if (log_enabled(LOG_IN_ASM))
            log_insn(&d, ip, &ops[n]);
        ip += ops[n].len;
        bool ends = op_ends_block(&ops[n]);
        n++;
        if (d.page2 != UINT64_MAX)
            break;
        if (ends && follow_jmp && ops[n - 1].idx == OP_JMP_REL && ops[n - 1].sz == 3) {
            uint64_t target = d.lin + ops[n - 1].imm;
            if (target >= d.lin && (target & TLB_PAGE_MASK) == d.first_lin_page) {
                ip += target - d.lin;
                d.lin = target;
                continue;
            }
        }
        if (ends)
            break;
    }
finish:
    {
        TranslatedBlock *tb = tb_alloc((unsigned)n);
        tb->pc_phys = pc_phys;
        tb->flags = flags;
        tb->n_ops = (uint32_t)n;
        tb->page2 = d.page2;
        uint64_t size = d.lin - lin_pc;
        if (d.code != 3)
            size = (uint32_t)size;
        tb->size = (uint32_t)size;
        memcpy(tb->ops, ops, (size_t)n * sizeof(DecodedOp));
        tb->ops[n].idx = OP_EXIT;
        tb->ops[n].off = (uint16_t)size;
        tcg_specialize(tb);
        if (log_enabled(LOG_IN_ASM))
            log_printf("\n");
        return tb;
    }
}
