/*
 * Differential test of the software x86 CPU against the host CPU (the
 * EmuFuzzer method, see /work/shared/docs/x86-software-cpu.md §8).
 *
 * For each seed a short user-mode instruction sequence is generated
 * deterministically.  It runs natively in a forked child (seccomp strict
 * mode, alarm, alternate signal stack) inside a MAP_SHARED region at a
 * fixed address, wrapped in a prologue/epilogue that loads and saves all
 * GPRs and RFLAGS; and in the software CPU in 64-bit mode at the same
 * addresses from the same state.  GPRs, the defined arithmetic flags and
 * DF, the data and stack memory, and (if the host faulted) the vector and
 * the registers at the fault are compared.
 *
 * Flags an instruction leaves undefined (SDM) are "poisoned": the
 * generator never lets a later instruction read a poisoned flag (it emits
 * a CMP first) and the final comparison masks what is still poisoned.
 *
 * The host-specific machine code lives only here, in the test.
 *
 * Usage: test-tcg-diff [--family F] [--seed N] [--count N] [--first N] [--trunc N]
 *   --seed N runs one seed verbosely (the reproduction command printed on
 *   a mismatch).
 */
#include <string.h>
#include <stdlib.h>
#include <signal.h>
#include <unistd.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#if defined(__linux__)
#include <linux/seccomp.h>
#include <ucontext.h>
#endif

#include "accel/tcg/tcg-internal.h"
#include "accel/tcg/tb.h"
#include "kestrel/memory.h"
#include "tests/testlib.h"

#define BASE        ((uint64_t)0x10000000)
#define REGION      0x20000u
#define CODE_OFF    0x0u
#define STATE_IN    0x8000u
#define STATE_OUT   0x8100u
#define SAVE_RSP    0x8200u
#define RESULT      0x8400u
#define DATA_OFF    0x10000u
#define DATA_LEN    0x1000u
#define STACK_TOP   0x20000u
#define STACK_CMP   0x400u
#define GUEST_PHYS  0x200000u

enum { FAM_ALU, FAM_SHIFT, FAM_MULDIV, FAM_STRING, FAM_BIT, FAM_MIXED, FAM_X87, FAM_X87T, FAM_SSE,
       FAM_SSSE3_SSE41, FAM_0F3A, FAM__COUNT };
static const char *const fam_names[FAM__COUNT] = { "alu", "shift", "muldiv", "string", "bit", "mixed",
                                                   "x87", "x87t", "sse", "ssse3-sse41", "0f3a" };
/* SSE-like families: FXRSTOR/FXSAVE around the sequence, XMM/MXCSR compared. */
static bool fam_is_sse(int f) { return f == FAM_SSE || f == FAM_SSSE3_SSE41 || f == FAM_0F3A; }
/* x87t: one transcendental per sequence; ST registers compared within TRANS_ULPS units
 * in the last place and C1 ignored (fpu-trans.c is accurate, not bit-identical). */
#define TRANS_ULPS 16

/*
 * x87 family layout in the data area (r15 = data + 0x800):
 *   data+0x000  FXRSTOR image loaded by the sequence's first instruction
 *   data+0x200  FXSAVE image stored by its last instruction (compared field by field)
 *   r15-128..   16 operand slots of 16 bytes (m32/m64/m80 values, see slot_kind)
 *   r15+0x100   control words for FLDCW
 */
#define FX_IN   0x000u
#define FX_OUT  0x200u
#define CW_OFF  0x900u

typedef struct NativeResult {
    uint32_t status;        /* 1 completed, 2 faulted */
    uint32_t trapno;
    uint64_t rip;
    uint64_t regs[16];
    uint64_t rflags;
} NativeResult;

typedef struct Gen {
    uint8_t buf[1024];
    unsigned n;
    uint64_t rng;
    uint32_t poison;
    int depth;              /* qwords pushed */
    int family;
    uint16_t fpoison;       /* FSW C0-C3 bits left undefined (x87 family) */
    uint8_t slot_kind[16];  /* 0 m32, 1 m64, 2 m80, 3 packed BCD */
    unsigned n_cw;
    uint16_t cw[32];
    unsigned n_ins;
    uint16_t ins_off[32];   /* x87: start of each generated instruction */
} Gen;

static long opt_trunc = -1;     /* x87: keep only the first N instructions (debugging) */

static uint64_t rnd(Gen *g)
{
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return g->rng * 0x2545f4914f6cdd1dull;
}
static unsigned rn(Gen *g, unsigned n) { return (unsigned)(rnd(g) % n); }

static void e8(Gen *g, unsigned b) { if (g->n < sizeof(g->buf)) g->buf[g->n++] = (uint8_t)b; }
static void e32(Gen *g, uint32_t v) { for (int i = 0; i < 4; i++) e8(g, (v >> (8 * i)) & 0xff); }
static void eimm(Gen *g, int sz, uint64_t v)
{
    int bytes = sz == 0 ? 1 : sz == 1 ? 2 : 4;
    for (int i = 0; i < bytes; i++)
        e8(g, (v >> (8 * i)) & 0xff);
}

/* Registers the generator may use: not RSP (4), not R15 (15, the data pointer). */
static int pick_reg(Gen *g)
{
    static const int pool[] = { 0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 };
    return pool[rn(g, ARRAY_LEN(pool))];
}

static uint64_t interesting(Gen *g)
{
    static const uint64_t v[] = {
        0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff,
        0x80000000, 0xffffffff, 0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull,
        ~0ull, ~0ull - 1,
    };
    switch (rn(g, 4)) {
    case 0: return v[rn(g, ARRAY_LEN(v))];
    case 1: return rnd(g) & 0xff;
    case 2: return (uint32_t)rnd(g);
    default: return rnd(g);
    }
}

/*
 * Emit [66] [REX] opcode ModRM(11, reg, rm).  For 8-bit operands either use
 * a REX (low bytes of any register) or none (AH-BH for 4-7).
 */
static void emit_rr(Gen *g, int sz, const uint8_t *op, int oplen, int reg, int rm, bool byte_rex)
{
    if (sz == 1)
        e8(g, 0x66);
    unsigned rex = (sz == 3 ? 8 : 0) | (reg >= 8 ? 4 : 0) | (rm >= 8 ? 1 : 0);
    if (sz == 0 && byte_rex)
        rex |= 0x40;
    if (rex)
        e8(g, 0x40 | rex);
    for (int i = 0; i < oplen; i++)
        e8(g, op[i]);
    e8(g, 0xc0 | ((reg & 7) << 3) | (rm & 7));
}

/*
 * Same with the memory operand [r15 + disp8], now and then GS-relative: a
 * Linux process's GS base is 0 natively and in the software CPU, so the
 * operand is the same, and the decoding of the prefix and the software
 * CPU's FS/GS _F forms (exec.c flat64_fold_seg_base) are exercised; what
 * a nonzero base does is test-tcg-cpu's test_fs_gs_operands_take_the_base.
 */
static void emit_rm(Gen *g, int sz, const uint8_t *op, int oplen, int reg)
{
    if (rn(g, 4) == 0)
        e8(g, 0x65);
    if (sz == 1)
        e8(g, 0x66);
    unsigned rex = 0x41 | (sz == 3 ? 8 : 0) | (reg >= 8 ? 4 : 0);
    e8(g, rex);
    for (int i = 0; i < oplen; i++)
        e8(g, op[i]);
    e8(g, 0x47 | ((reg & 7) << 3));
    e8(g, (uint8_t)(rn(g, 240) - 120));
}

/* One operand pair, register or memory, for an opcode taking E,G. */
static void emit_eg(Gen *g, int sz, const uint8_t *op, int oplen, bool allow_mem)
{
    int reg = pick_reg(g);
    if (allow_mem && rn(g, 3) == 0) {
        emit_rm(g, sz, op, oplen, reg);
        return;
    }
    bool rex = sz != 0 || rn(g, 2);
    int rm = pick_reg(g);
    if (sz == 0 && !rex) {
        reg = rn(g, 8);
        rm = rn(g, 8);
    }
    emit_rr(g, sz, op, oplen, reg, rm, rex);
}

static int pick_size(Gen *g) { return (int)rn(g, 4); }

/* Keep the generator from reading flags that an earlier instruction left undefined. */
static void need_flags(Gen *g, uint32_t reads)
{
    if (reads & g->poison) {
        static const uint8_t cmp[] = { 0x39 };
        emit_rr(g, 3, cmp, 1, pick_reg(g), pick_reg(g), true);
        g->poison = 0;
    }
}

static void wrote_flags(Gen *g, uint32_t writes, uint32_t undef)
{
    g->poison = (g->poison & ~writes) | undef;
}

static const uint32_t cond_reads[8] = {
    CC_O, CC_C, CC_Z, CC_C | CC_Z, CC_S, CC_P, CC_S | CC_O, CC_Z | CC_S | CC_O,
};

static void gen_alu(Gen *g)
{
    int sz = pick_size(g);
    switch (rn(g, 17)) {
    case 0: case 1: case 2: case 3: {       /* ALU E,G / G,E */
        int aop = (int)rn(g, 8);
        uint8_t op = (uint8_t)(aop * 8 + (sz ? 1 : 0) + (rn(g, 2) ? 2 : 0));
        if (aop == 2 || aop == 3)
            need_flags(g, CC_C);
        emit_eg(g, sz, &op, 1, true);
        wrote_flags(g, CC_ALL, (aop == 1 || aop == 4 || aop == 6) ? CC_A : 0);
        break;
    }
    case 4: case 5: {                       /* ALU E,imm */
        int aop = (int)rn(g, 8);
        if (aop == 2 || aop == 3)
            need_flags(g, CC_C);
        bool imm8 = sz != 0 && rn(g, 2);
        uint8_t op = sz == 0 ? 0x80 : imm8 ? 0x83 : 0x81;
        int rm = pick_reg(g);
        if (rn(g, 3) == 0)
            emit_rm(g, sz, &op, 1, aop);
        else
            emit_rr(g, sz, &op, 1, aop, rm, true);
        eimm(g, imm8 ? 0 : sz, interesting(g));
        wrote_flags(g, CC_ALL, (aop == 1 || aop == 4 || aop == 6) ? CC_A : 0);
        break;
    }
    case 6: {                               /* TEST, INC/DEC, NOT/NEG */
        unsigned k = rn(g, 5);
        uint8_t op;
        if (k == 0) {
            op = sz ? 0x85 : 0x84;
            emit_eg(g, sz, &op, 1, true);
            wrote_flags(g, CC_ALL, CC_A);
        } else {
            op = k <= 2 ? (sz ? 0xff : 0xfe) : (sz ? 0xf7 : 0xf6);
            int digit = k == 1 ? 0 : k == 2 ? 1 : k == 3 ? 2 : 3;
            if (rn(g, 3) == 0)
                emit_rm(g, sz, &op, 1, digit);
            else
                emit_rr(g, sz, &op, 1, digit, pick_reg(g), true);
            if (k <= 2)
                wrote_flags(g, CC_ALL & ~CC_C, 0);
            else if (k == 4)
                wrote_flags(g, CC_ALL, 0);
        }
        break;
    }
    case 7: {                               /* CMOVcc / SETcc */
        int cc = (int)rn(g, 16);
        need_flags(g, cond_reads[cc >> 1]);
        if (rn(g, 2)) {
            uint8_t op[2] = { 0x0f, (uint8_t)(0x40 + cc) };
            emit_eg(g, sz == 0 ? 2 : sz, op, 2, true);
        } else {
            uint8_t op[2] = { 0x0f, (uint8_t)(0x90 + cc) };
            emit_eg(g, 0, op, 2, true);
        }
        break;
    }
    case 8: {                               /* Jcc over a 3-byte MOV r64,r64 */
        int cc = (int)rn(g, 16);
        need_flags(g, cond_reads[cc >> 1]);
        e8(g, 0x70 + cc);
        e8(g, 3);
        static const uint8_t mov[] = { 0x89 };
        emit_rr(g, 3, mov, 1, pick_reg(g), pick_reg(g), true);
        break;
    }
    case 9: {                               /* flag ops */
        unsigned k = rn(g, 5);
        static const uint8_t ops[] = { 0xf8, 0xf9, 0xf5, 0x9f, 0x9e };
        if (k == 2)
            need_flags(g, CC_C);
        if (k == 3)
            need_flags(g, CC_S | CC_Z | CC_A | CC_P | CC_C);
        e8(g, ops[k]);
        if (k <= 2)
            wrote_flags(g, CC_C, 0);
        if (k == 4)
            wrote_flags(g, CC_S | CC_Z | CC_A | CC_P | CC_C, 0);
        break;
    }
    case 10: {                              /* XCHG / XADD / CMPXCHG */
        unsigned k = rn(g, 3);
        if (k == 0) {
            uint8_t op = sz ? 0x87 : 0x86;
            emit_eg(g, sz, &op, 1, true);
        } else if (k == 2 && rn(g, 2)) {
            /* CMPXCHG [r15 + d], r with RAX loaded from [r15 + d] first: the equal case. */
            unsigned d = (rn(g, 240) - 120) & 0xff;
            int reg = pick_reg(g);
            e8(g, 0x49); e8(g, 0x8b); e8(g, 0x47); e8(g, d);   /* mov rax, [r15 + d] */
            if (sz == 1)
                e8(g, 0x66);
            e8(g, 0x41 | (sz == 3 ? 8 : 0) | (reg >= 8 ? 4 : 0));
            e8(g, 0x0f); e8(g, sz ? 0xb1 : 0xb0);
            e8(g, 0x47 | ((reg & 7) << 3)); e8(g, d);
            wrote_flags(g, CC_ALL, 0);
        } else {
            uint8_t op[2] = { 0x0f, (uint8_t)((k == 1 ? 0xc0 : 0xb0) + (sz ? 1 : 0)) };
            emit_eg(g, sz, op, 2, true);
            wrote_flags(g, CC_ALL, 0);
        }
        break;
    }
    case 11: {                              /* MOVZX / MOVSX / MOVSXD */
        unsigned k = rn(g, 5);
        int dsz = 1 + (int)rn(g, 3);
        if (k < 4) {
            uint8_t op[2] = { 0x0f, (uint8_t)((k < 2 ? 0xb6 : 0xbe) + (k & 1)) };
            emit_eg(g, dsz, op, 2, true);
        } else {
            uint8_t op = 0x63;
            emit_eg(g, 3, &op, 1, true);
        }
        break;
    }
    case 12: {                              /* LEA with base + index*scale + disp */
        int dsz = 1 + (int)rn(g, 3);
        int reg = pick_reg(g), base = pick_reg(g), idx = pick_reg(g);
        if (dsz == 1)
            e8(g, 0x66);
        e8(g, 0x40 | (dsz == 3 ? 8 : 0) | (reg >= 8 ? 4 : 0) | (idx >= 8 ? 2 : 0) | (base >= 8 ? 1 : 0));
        e8(g, 0x8d);
        e8(g, 0x84 | ((reg & 7) << 3));
        e8(g, (rn(g, 4) << 6) | ((idx & 7) << 3) | (base & 7));
        e32(g, (uint32_t)interesting(g));
        break;
    }
    case 13: {                              /* CBW/CWDE/CDQE, CWD/CDQ/CQO */
        int s = 1 + (int)rn(g, 3);
        if (s == 1)
            e8(g, 0x66);
        if (s == 3)
            e8(g, 0x48);
        e8(g, rn(g, 2) ? 0x98 : 0x99);
        break;
    }
    case 14: {                              /* BSWAP r32/r64 */
        int r = pick_reg(g);
        e8(g, 0x40 | (rn(g, 2) ? 8 : 0) | (r >= 8 ? 1 : 0));
        e8(g, 0x0f);
        e8(g, 0xc8 + (r & 7));
        break;
    }
    case 15:
        if (rn(g, 2)) {                     /* LOOP/LOOPE/LOOPNE/JECXZ/JRCXZ over a 3-byte MOV */
            unsigned k = rn(g, 4);
            if (k == 0 || k == 1)
                need_flags(g, CC_Z);
            if (rn(g, 4) == 0)
                e8(g, 0x67);                /* ECX instead of RCX */
            e8(g, 0xe0 + k);
            e8(g, 3);
            static const uint8_t mov[] = { 0x89 };
            emit_rr(g, 3, mov, 1, pick_reg(g), pick_reg(g), true);
        } else {                            /* CMPXCHG8B/16B [r15 + 16*k] */
            bool wide = rn(g, 2);
            e8(g, wide ? 0x49 : 0x41);
            e8(g, 0x0f);
            e8(g, 0xc7);
            e8(g, 0x4f);
            e8(g, (uint8_t)(int8_t)(16 * ((int)rn(g, 14) - 7)));
            wrote_flags(g, CC_Z, 0);
        }
        break;
    default: {                              /* MOV forms */
        uint8_t op = (uint8_t)((sz ? 0x89 : 0x88) + (rn(g, 2) ? 2 : 0));
        emit_eg(g, sz, &op, 1, true);
        break;
    }
    }
}

static void gen_shift(Gen *g)
{
    int sz = pick_size(g);
    unsigned w = 8u << sz;
    static const unsigned counts[] = { 0, 1, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65 };
    unsigned count = rn(g, 4) == 0 ? rn(g, 256) : counts[rn(g, ARRAY_LEN(counts))];
    unsigned mc = count & (sz == 3 ? 63 : 31);
    if (rn(g, 4) == 0) {
        /* SHLD/SHRD (32/64-bit). */
        int s = 2 + (int)rn(g, 2);
        mc = count & (s == 3 ? 63 : 31);
        bool cl = rn(g, 2);
        if (cl) {
            e8(g, 0xb1);
            e8(g, count);
        }
        uint8_t op[2] = { 0x0f, (uint8_t)((rn(g, 2) ? 0xa4 : 0xac) + (cl ? 1 : 0)) };
        emit_eg(g, s, op, 2, true);
        if (!cl)
            e8(g, count);
        if (mc)
            wrote_flags(g, CC_ALL, CC_A | (mc != 1 ? CC_O : 0));
        return;
    }
    int kind = (int)rn(g, 8);
    if (kind == 2 || kind == 3)
        need_flags(g, CC_C);
    int form = (int)rn(g, 3);       /* 0 imm, 1 by one, 2 CL */
    if (form == 1)
        count = 1, mc = 1;
    if (form == 2) {
        e8(g, 0xb1);
        e8(g, count);
    }
    uint8_t op = (uint8_t)((form == 0 ? 0xc0 : form == 1 ? 0xd0 : 0xd2) + (sz ? 1 : 0));
    if (rn(g, 3) == 0)
        emit_rm(g, sz, &op, 1, kind);
    else
        emit_rr(g, sz, &op, 1, kind, pick_reg(g), true);
    if (form == 0)
        e8(g, count);
    if (mc == 0)
        return;
    uint32_t undef = mc != 1 ? CC_O : 0;
    if (kind <= 3) {
        wrote_flags(g, CC_C | CC_O, undef);
    } else {
        undef |= CC_A;
        if (kind != 7 && mc >= w)
            undef |= CC_C;
        wrote_flags(g, CC_ALL, undef);
    }
}

static void gen_muldiv(Gen *g)
{
    int sz = pick_size(g);
    unsigned k = rn(g, 5);
    if (k <= 1) {       /* MUL / IMUL r/m */
        uint8_t op = sz ? 0xf7 : 0xf6;
        if (rn(g, 3) == 0)
            emit_rm(g, sz, &op, 1, 4 + (int)k);
        else
            emit_rr(g, sz, &op, 1, 4 + (int)k, pick_reg(g), true);
        wrote_flags(g, CC_ALL, CC_S | CC_Z | CC_A | CC_P);
    } else if (k == 2) {    /* DIV / IDIV: flags undefined; #DE compared */
        uint8_t op = sz ? 0xf7 : 0xf6;
        emit_rr(g, sz, &op, 1, 6 + (int)rn(g, 2), pick_reg(g), true);
        wrote_flags(g, CC_ALL, CC_ALL);
    } else if (k == 3) {    /* IMUL r, r/m */
        uint8_t op[2] = { 0x0f, 0xaf };
        emit_eg(g, sz ? sz : 2, op, 2, true);
        wrote_flags(g, CC_ALL, CC_S | CC_Z | CC_A | CC_P);
    } else {                /* IMUL r, r/m, imm */
        int s = sz ? sz : 2;
        bool imm8 = rn(g, 2);
        uint8_t op = imm8 ? 0x6b : 0x69;
        emit_eg(g, s, &op, 1, true);
        eimm(g, imm8 ? 0 : s, interesting(g));
        wrote_flags(g, CC_ALL, CC_S | CC_Z | CC_A | CC_P);
    }
}

static void gen_string(Gen *g)
{
    int sz = pick_size(g);
    unsigned k = rn(g, 5);      /* MOVS CMPS STOS LODS SCAS */
    static const uint8_t ops[] = { 0xa4, 0xa6, 0xaa, 0xac, 0xae };
    uint32_t si = (uint32_t)(BASE + DATA_OFF + 0x200 + rn(g, 0xc00));
    uint32_t di = (uint32_t)(BASE + DATA_OFF + 0x200 + rn(g, 0xc00));
    unsigned cnt = rn(g, 24);
    e8(g, 0xbe); e32(g, si);            /* mov esi, imm32 */
    e8(g, 0xbf); e32(g, di);            /* mov edi, imm32 */
    e8(g, 0xb9); e32(g, cnt);           /* mov ecx, imm32 */
    bool rep = rn(g, 3) != 0;
    if (rn(g, 4) == 0)
        e8(g, 0x67);                    /* ESI/EDI/ECX: 32-bit updates zero-extend */
    if (rep)
        e8(g, (k == 1 || k == 4) && rn(g, 2) ? 0xf2 : 0xf3);
    if (sz == 1)
        e8(g, 0x66);
    if (sz == 3)
        e8(g, 0x48);
    e8(g, ops[k] + (sz ? 1 : 0));
    if ((k == 1 || k == 4) && (!rep || cnt))
        wrote_flags(g, CC_ALL, 0);
}

static void gen_bit(Gen *g)
{
    int sz = 1 + (int)rn(g, 3);
    unsigned k = rn(g, 4);
    if (k == 0) {       /* BT/BTS/BTR/BTC r, r (register forms only) */
        uint8_t op[2] = { 0x0f, (uint8_t)(0xa3 + 8 * rn(g, 4)) };
        emit_rr(g, sz, op, 2, pick_reg(g), pick_reg(g), true);
        wrote_flags(g, CC_ALL & ~CC_Z, CC_O | CC_S | CC_A | CC_P);     /* ZF unaffected */
    } else if (k == 1 && rn(g, 2)) {    /* BT* [mem], r: bit offset bounded to +-1023 first */
        int r = pick_reg(g);
        static const uint8_t andop[] = { 0x81 };
        emit_rr(g, 2, andop, 1, 4, r, true);            /* and r32, 0x7ff */
        e32(g, 0x7ff);
        emit_rr(g, 3, andop, 1, 5, r, true);            /* sub r64, 0x400 */
        e32(g, 0x400);
        uint8_t op[2] = { 0x0f, (uint8_t)(0xa3 + 8 * rn(g, 4)) };
        emit_rm(g, sz, op, 2, r);
        wrote_flags(g, CC_ALL, CC_O | CC_S | CC_A | CC_P);
    } else if (k == 1) {    /* BT* r/m, imm8 */
        uint8_t op[2] = { 0x0f, 0xba };
        int digit = 4 + (int)rn(g, 4);
        if (rn(g, 3) == 0)
            emit_rm(g, sz, op, 2, digit);
        else
            emit_rr(g, sz, op, 2, digit, pick_reg(g), true);
        e8(g, rn(g, 256));
        wrote_flags(g, CC_ALL & ~CC_Z, CC_O | CC_S | CC_A | CC_P);
    } else if (k == 2) {    /* mov d32/64, s; BSF/BSR d, s: a zero source leaves d == s either way */
        int d = pick_reg(g), s = pick_reg(g);
        static const uint8_t mov[] = { 0x8b };
        emit_rr(g, sz == 1 ? 2 : sz, mov, 1, d, s, true);
        uint8_t op[2] = { 0x0f, (uint8_t)(rn(g, 2) ? 0xbc : 0xbd) };
        emit_rr(g, sz, op, 2, d, s, true);
        wrote_flags(g, CC_ALL, CC_C | CC_O | CC_S | CC_A | CC_P);
    } else {                /* POPCNT */
        uint8_t op[3] = { 0xf3, 0x0f, 0xb8 };
        int reg = pick_reg(g), rm = pick_reg(g);
        if (sz == 1)
            e8(g, 0x66);
        e8(g, 0xf3);
        e8(g, 0x40 | (sz == 3 ? 8 : 0) | (reg >= 8 ? 4 : 0) | (rm >= 8 ? 1 : 0));
        e8(g, op[1]);
        e8(g, op[2]);
        e8(g, 0xc0 | ((reg & 7) << 3) | (rm & 7));
        wrote_flags(g, CC_ALL, 0);
    }
}

static void gen_push_pop(Gen *g)
{
    int r = pick_reg(g);
    if (g->depth > 0 && rn(g, 2)) {
        if (r >= 8)
            e8(g, 0x41);
        e8(g, 0x58 + (r & 7));
        g->depth--;
    } else if (g->depth < 16) {
        if (rn(g, 2)) {
            if (r >= 8)
                e8(g, 0x41);
            e8(g, 0x50 + (r & 7));
        } else {
            e8(g, 0x6a);
            e8(g, rn(g, 256));
        }
        g->depth++;
    }
}

/* ---------------- x87 family ---------------- */
#define C0123 0x4700u

static uint64_t f80_interesting_sig(Gen *g)
{
    switch (rn(g, 6)) {
    case 0: return 0x8000000000000000ull;
    case 1: return 0xffffffffffffffffull;
    case 2: return 0x8000000000000000ull | (rnd(g) & 0xff);
    case 3: return 0xc000000000000000ull;
    default: return 0x8000000000000000ull | rnd(g);
    }
}

/* An 80-bit operand biased toward the edge cases of SDM 1 §4.8. */
static void f80_interesting(Gen *g, uint64_t *sig, uint16_t *se)
{
    uint16_t sign = rn(g, 2) ? 0x8000 : 0;
    uint64_t m = f80_interesting_sig(g);
    uint16_t e;
    switch (rn(g, 16)) {
    case 0: e = 0; m = 0; break;                              /* zero */
    case 1: e = 0; m = rnd(g) >> rn(g, 64); break;            /* denormal */
    case 2: e = 0x7fff; m = 0x8000000000000000ull; break;     /* infinity */
    case 3: e = 0x7fff; m |= 0x4000000000000000ull; break;    /* QNaN */
    case 4: e = 0x7fff; m = (m & ~0x4000000000000000ull) | 1; break;     /* SNaN */
    case 5: e = (uint16_t)(1 + rn(g, 80)); break;             /* tiny */
    case 6: e = (uint16_t)(0x7ffe - rn(g, 80)); break;        /* huge */
    case 7: e = (uint16_t)(0x3fff + rn(g, 70)); m = (m >> rn(g, 64)) | 0x8000000000000000ull;
        m &= ~0ull << rn(g, 64); break;                       /* integers, halves, 2^63 */
    case 8: e = (uint16_t)(0x3fff - 2 + rn(g, 5)); break;     /* near 1 */
    case 9: if (rn(g, 4) == 0) { e = 0x3fff + (uint16_t)rn(g, 4); m &= ~0x8000000000000000ull; break; } /* unnormal */
        /* fall through */
    default: e = (uint16_t)(0x3fff - 40 + rn(g, 80)); break;
    }
    *sig = m;
    *se = sign | e;
}

static uint32_t f32_interesting(Gen *g)
{
    uint32_t sign = rn(g, 2) ? 0x80000000u : 0;
    uint32_t f = (uint32_t)rnd(g) & 0x7fffff;
    switch (rn(g, 8)) {
    case 0: return sign;
    case 1: return sign | (f >> rn(g, 23));                   /* denormal */
    case 2: return sign | 0x7f800000u;
    case 3: return sign | 0x7fc00000u | f;
    case 4: return sign | 0x7f800001u | (f & 0x3fffff);       /* SNaN */
    default: return sign | ((uint32_t)(1 + rn(g, 254)) << 23) | f;
    }
}

static uint64_t f64_interesting(Gen *g)
{
    uint64_t sign = rn(g, 2) ? 0x8000000000000000ull : 0;
    uint64_t f = rnd(g) & 0xfffffffffffffull;
    switch (rn(g, 8)) {
    case 0: return sign;
    case 1: return sign | (f >> rn(g, 52));
    case 2: return sign | 0x7ff0000000000000ull;
    case 3: return sign | 0x7ff8000000000000ull | f;
    case 4: return sign | 0x7ff0000000000001ull | (f & 0x7ffffffffffffull);
    case 5: return sign | ((uint64_t)(1023 + rn(g, 64)) << 52) | (f & (~0ull << rn(g, 52)));
    default: return sign | ((uint64_t)(1 + rn(g, 2046)) << 52) | f;
    }
}

/* esc (0-7), ModRM.reg, operand [r15 + slot*16 - 128] */
static void x87_mem(Gen *g, unsigned esc, unsigned reg, unsigned slot)
{
    e8(g, 0x41);
    e8(g, 0xd8 + esc);
    e8(g, 0x47 | (reg << 3));
    e8(g, (uint8_t)(slot * 16 - 128));
}

static void x87_reg(Gen *g, unsigned esc, unsigned modrm)
{
    e8(g, 0xd8 + esc);
    e8(g, modrm);
}

static unsigned pick_slot(Gen *g, int kind)
{
    for (int tries = 0; tries < 8; tries++) {
        unsigned s = rn(g, 16);
        if (kind < 0 || g->slot_kind[s] == kind)
            return s;
    }
    return rn(g, 16);
}

static void gen_x87(Gen *g)
{
    unsigned i = rn(g, 8);
    uint16_t all_undef = C0123, c1_def = C0123 & ~0x0200u;
    switch (rn(g, 23)) {
    case 0: {           /* FLD m32/m64/m80 */
        unsigned k = rn(g, 3);
        static const unsigned esc[3] = { 1, 5, 3 }, reg[3] = { 0, 0, 5 };
        x87_mem(g, esc[k], reg[k], pick_slot(g, (int)k));
        g->fpoison |= c1_def;
        break;
    }
    case 1: {           /* FILD m16/m32/m64 */
        unsigned k = rn(g, 3);
        static const unsigned esc[3] = { 7, 3, 7 }, reg[3] = { 0, 0, 5 };
        x87_mem(g, esc[k], reg[k], pick_slot(g, -1));
        g->fpoison |= c1_def;
        break;
    }
    case 2: {           /* FST/FSTP m32/m64, FSTP m80 */
        unsigned k = rn(g, 5);
        static const unsigned esc[5] = { 1, 1, 5, 5, 3 }, reg[5] = { 2, 3, 2, 3, 7 };
        unsigned s = pick_slot(g, -1);
        x87_mem(g, esc[k], reg[k], s);
        g->slot_kind[s] = (uint8_t)(k < 2 ? 0 : k < 4 ? 1 : 2);
        g->fpoison |= c1_def;
        break;
    }
    case 3: {           /* FIST/FISTP/FISTTP m16/m32/m64 */
        unsigned k = rn(g, 8);
        static const unsigned esc[8] = { 7, 7, 7, 3, 3, 3, 7, 5 }, reg[8] = { 1, 2, 3, 1, 2, 3, 7, 1 };
        x87_mem(g, esc[k], reg[k], pick_slot(g, -1));
        g->fpoison |= c1_def;
        break;
    }
    case 4: case 5: case 6: {   /* arithmetic register forms */
        static const unsigned ops[6] = { 0, 1, 4, 5, 6, 7 };
        unsigned op = ops[rn(g, 6)], esc = (unsigned[]){ 0, 4, 6 }[rn(g, 3)];
        x87_reg(g, esc, 0xc0 | (op << 3) | i);
        g->fpoison |= c1_def;
        break;
    }
    case 7: {           /* arithmetic with memory operands */
        static const unsigned ops[6] = { 0, 1, 4, 5, 6, 7 };
        unsigned esc = rn(g, 4) * 2;
        x87_mem(g, esc, ops[rn(g, 6)], pick_slot(g, esc == 0 ? 0 : esc == 4 ? 1 : -1));
        g->fpoison |= c1_def;
        break;
    }
    case 8: case 9: {   /* compares setting C0-C3 */
        switch (rn(g, 9)) {
        case 0: x87_reg(g, 0, 0xd0 | i); break;            /* FCOM */
        case 1: x87_reg(g, 0, 0xd8 | i); break;            /* FCOMP */
        case 2: x87_reg(g, 6, 0xd9); break;                /* FCOMPP */
        case 3: x87_reg(g, 5, 0xe0 | i); break;            /* FUCOM */
        case 4: x87_reg(g, 5, 0xe8 | i); break;            /* FUCOMP */
        case 5: x87_reg(g, 2, 0xe9); break;                /* FUCOMPP */
        case 6: x87_reg(g, 1, 0xe4); break;                /* FTST */
        case 7: x87_reg(g, 1, 0xe5); break;                /* FXAM */
        default: {
            unsigned esc = rn(g, 4) * 2;                   /* FCOM(P)/FICOM(P) m */
            x87_mem(g, esc, 2 + rn(g, 2), pick_slot(g, esc == 0 ? 0 : esc == 4 ? 1 : -1));
        }
        }
        g->fpoison = 0;
        break;
    }
    case 10: {          /* FCOMI family: EFLAGS */
        static const uint8_t forms[4][2] = { { 3, 0xf0 }, { 3, 0xe8 }, { 7, 0xf0 }, { 7, 0xe8 } };
        unsigned k = rn(g, 4);
        x87_reg(g, forms[k][0], forms[k][1] | i);
        wrote_flags(g, CC_ALL, 0);
        g->fpoison |= 0x0200;       /* C1: SDM says 0, AMD leaves it unchanged */
        break;
    }
    case 11: {          /* stack manipulation */
        switch (rn(g, 8)) {
        case 0: x87_reg(g, 1, 0xc8 | i); g->fpoison |= c1_def; break;   /* FXCH */
        case 1: x87_reg(g, 1, 0xc0 | i); g->fpoison |= c1_def; break;   /* FLD ST(i) */
        case 2: x87_reg(g, 5, 0xd0 | i); g->fpoison |= c1_def; break;   /* FST ST(i) */
        case 3: x87_reg(g, 5, 0xd8 | i); g->fpoison |= c1_def; break;   /* FSTP ST(i) */
        case 4: x87_reg(g, 5, 0xc0 | i); g->fpoison |= all_undef; break; /* FFREE */
        case 5: x87_reg(g, 1, rn(g, 2) ? 0xf6 : 0xf7); g->fpoison |= c1_def; break;  /* FDECSTP/FINCSTP */
        default: x87_reg(g, 1, rn(g, 2) ? 0xe0 : 0xe1); g->fpoison |= c1_def; break; /* FCHS/FABS */
        }
        break;
    }
    case 12:            /* FLD1 ... FLDZ */
        x87_reg(g, 1, 0xe8 + rn(g, 7));
        g->fpoison |= c1_def;
        break;
    case 13: case 14: { /* FSQRT FRNDINT FSCALE FXTRACT FPREM FPREM1 */
        static const uint8_t m[6] = { 0xfa, 0xfc, 0xfd, 0xf4, 0xf8, 0xf5 };
        unsigned k = rn(g, 6);
        x87_reg(g, 1, m[k]);
        if (k >= 4)
            g->fpoison = 0;
        else
            g->fpoison |= c1_def;
        break;
    }
    case 15: {          /* FCMOVcc */
        unsigned cc = rn(g, 4);
        static const uint32_t reads[4] = { CC_C, CC_Z, CC_C | CC_Z, CC_P };
        need_flags(g, reads[cc]);
        x87_reg(g, rn(g, 2) ? 2 : 3, 0xc0 | (cc << 3) | i);
        g->fpoison |= c1_def;
        break;
    }
    case 16: {          /* FLDCW: any RC and PC, masks mostly set */
        uint16_t cw = (uint16_t)(0x3f | (rn(g, 4) << 10) | ((uint16_t[]){ 0, 2, 3 }[rn(g, 3)] << 8));
        if (rn(g, 6) == 0)
            cw &= (uint16_t)~(1u << rn(g, 6));
        if (g->n_cw < 32) {
            g->cw[g->n_cw] = cw;
            e8(g, 0x41); e8(g, 0xd9); e8(g, 0xaf);          /* fldcw [r15 + disp32] */
            e32(g, CW_OFF - 0x800 + 2 * g->n_cw);
            g->n_cw++;
        }
        g->fpoison |= all_undef;
        break;
    }
    case 17:            /* FNSTSW AX (only when every C bit is defined) */
        if (!g->fpoison) {
            e8(g, 0xdf); e8(g, 0xe0);
        } else {
            x87_reg(g, 1, 0xe5);                           /* FXAM defines them */
            g->fpoison = 0;
        }
        break;
    case 18:            /* FNSTCW m16 / FNCLEX / FWAIT */
        switch (rn(g, 3)) {
        case 0: x87_mem(g, 1, 7, pick_slot(g, -1)); break;
        case 1: e8(g, 0xdb); e8(g, 0xe2); g->fpoison |= all_undef; break;
        default: e8(g, 0x9b); break;
        }
        break;
    case 20:            /* FBLD (valid BCD slots) / FBSTP */
        if (rn(g, 2)) {
            x87_mem(g, 7, 4, pick_slot(g, 3));
        } else {
            unsigned sl = pick_slot(g, -1);
            x87_mem(g, 7, 6, sl);
            g->slot_kind[sl] = 3;
        }
        g->fpoison |= c1_def;
        break;
    case 19:            /* FNSTSW m16 */
        if (!g->fpoison)
            x87_mem(g, 5, 7, pick_slot(g, -1));
        break;
    default: {          /* arithmetic ST(0), ST(i) again: the common case */
        static const unsigned ops[6] = { 0, 1, 4, 5, 6, 7 };
        x87_reg(g, 0, 0xc0 | (ops[rn(g, 6)] << 3) | i);
        g->fpoison |= c1_def;
        break;
    }
    }
}

/* Operands for the transcendentals: ST0 (x) and ST1 (y) from m80 slots 0 and 1. */
static void gen_x87t(Gen *g)
{
    static const uint8_t ops[8] = { 0xf0, 0xf1, 0xf2, 0xf3, 0xf9, 0xfb, 0xfe, 0xff };
    unsigned k = rn(g, 8);
    g->slot_kind[0] = g->slot_kind[1] = 4 + (uint8_t)k;      /* operand domain chooser */
    e8(g, 0xdb); e8(g, 0xe3);                                 /* fninit */
    x87_mem(g, 3, 5, 1);                                      /* fld m80 y */
    x87_mem(g, 3, 5, 0);                                      /* fld m80 x */
    x87_reg(g, 1, ops[k]);
    g->fpoison = 0x0200;
}

/* ---------------- SSE family (integer, logic, data movement) ---------------- */
/*
 * [pfx] [REX] 0F [esc] opc ModRM [disp8] [imm8]; reg/rm are XMM or GPR
 * numbers; esc 0 for the 0F map, 0x38 or 0x3a for the three-byte maps.
 */
static void sse_emit_map(Gen *g, unsigned pfx, bool w, unsigned esc, unsigned opc, unsigned reg,
                         int rm, bool mem, unsigned disp, int imm)
{
    if (pfx)
        e8(g, pfx);
    unsigned rex = (w ? 8 : 0) | (reg >= 8 ? 4 : 0) | (mem ? 1 : (rm >= 8 ? 1 : 0));
    if (rex)
        e8(g, 0x40 | rex);
    e8(g, 0x0f);
    if (esc)
        e8(g, esc);
    e8(g, opc);
    if (mem) {
        e8(g, 0x47 | ((reg & 7) << 3));         /* [r15 + disp8] */
        e8(g, disp);
    } else {
        e8(g, 0xc0 | ((reg & 7) << 3) | (rm & 7));
    }
    if (imm >= 0)
        e8(g, (unsigned)imm);
}

static void sse_emit(Gen *g, unsigned pfx, bool w, unsigned opc, unsigned reg, int rm, bool mem,
                     unsigned disp, int imm)
{
    sse_emit_map(g, pfx, w, 0, opc, reg, rm, mem, disp, imm);
}

static void gen_sse(Gen *g)
{
    static const uint8_t int_ops[] = {
        0xdb, 0xdf, 0xeb, 0xef, 0xfc, 0xfd, 0xfe, 0xd4, 0xf8, 0xf9, 0xfa, 0xfb, 0xec, 0xed, 0xdc,
        0xdd, 0xe8, 0xe9, 0xd8, 0xd9, 0x74, 0x75, 0x76, 0x64, 0x65, 0x66, 0xd5, 0xe5, 0xe4, 0xf4,
        0xf5, 0xda, 0xde, 0xea, 0xee, 0xe0, 0xe3, 0xf6, 0x60, 0x61, 0x62, 0x6c, 0x68, 0x69, 0x6a,
        0x6d, 0x63, 0x67, 0x6b, 0xd1, 0xd2, 0xd3, 0xe1, 0xe2, 0xf1, 0xf2, 0xf3,
    };
    unsigned x = rn(g, 16), y = rn(g, 16);
    bool mem = rn(g, 4) == 0;
    unsigned disp = (16 * rn(g, 16) - 128) & 0xff;
    static const uint8_t pfs[4] = { 0, 0x66, 0xf3, 0xf2 };
    if (rn(g, 5) == 0) {                /* MMX registers */
        unsigned a = rn(g, 8), b = rn(g, 8);
        disp &= 0xf8;
        switch (rn(g, 10)) {
        case 0: case 1: case 2: {
            unsigned op;
            do
                op = int_ops[rn(g, ARRAY_LEN(int_ops))];
            while (op == 0x6c || op == 0x6d);
            sse_emit(g, 0, false, op, a, (int)b, mem, disp, -1);
            break;
        }
        case 3: sse_emit(g, 0, rn(g, 2), rn(g, 2) ? 0x6e : 0x7e, a, pick_reg(g), mem, disp, -1); break;
        case 4: sse_emit(g, 0, false, rn(g, 2) ? 0x6f : 0x7f, a, (int)b, mem, disp, -1); break;
        case 5: sse_emit(g, 0, false, 0x70, a, (int)b, mem, disp, (int)rn(g, 256)); break;
        case 6: {
            static const uint8_t grp[][2] = { { 0x71, 2 }, { 0x71, 4 }, { 0x71, 6 }, { 0x72, 2 },
                                              { 0x72, 4 }, { 0x72, 6 }, { 0x73, 2 }, { 0x73, 6 } };
            unsigned k = rn(g, ARRAY_LEN(grp));
            sse_emit(g, 0, false, grp[k][0], grp[k][1], (int)b, false, 0, (int)rn(g, 70));
            break;
        }
        case 7:
            switch (rn(g, 4)) {
            case 0: sse_emit(g, 0, false, 0xc4, a, pick_reg(g), mem, disp, (int)rn(g, 256)); break;
            case 1: sse_emit(g, 0, false, 0xc5, (unsigned)pick_reg(g), (int)b, false, 0, (int)rn(g, 256)); break;
            case 2: sse_emit(g, 0, false, 0xd7, (unsigned)pick_reg(g), (int)b, false, 0, -1); break;
            default: e8(g, 0x0f); e8(g, 0x77); break;           /* EMMS */
            }
            break;
        case 8:                         /* MOVQ2DQ / MOVDQ2Q */
            if (rn(g, 2))
                sse_emit(g, 0xf3, false, 0xd6, x, (int)b, false, 0, -1);
            else
                sse_emit(g, 0xf2, false, 0xd6, a, (int)y, false, 0, -1);
            break;
        default:                        /* CVTPI2PS/PD, CVT(T)PS2PI/PD2PI */
            if (rn(g, 2))
                sse_emit(g, rn(g, 2) ? 0x66 : 0, false, 0x2a, x, (int)b, mem, disp, -1);
            else
                sse_emit(g, rn(g, 2) ? 0x66 : 0, false, 0x2c + rn(g, 2), a, (int)y, mem,
                         disp & 0xf0, -1);
            break;
        }
        return;
    }
    if (rn(g, 2)) {                     /* floating point */
        switch (rn(g, 8)) {
        case 0: case 1: case 2: {       /* SQRT ADD MUL SUB MIN DIV MAX */
            static const uint8_t ops[] = { 0x51, 0x58, 0x59, 0x5c, 0x5d, 0x5e, 0x5f };
            sse_emit(g, pfs[rn(g, 4)], false, ops[rn(g, ARRAY_LEN(ops))], x, (int)y, mem, disp, -1);
            break;
        }
        case 3:                         /* CMPccPS/PD/SS/SD */
            sse_emit(g, pfs[rn(g, 4)], false, 0xc2, x, (int)y, mem, disp, (int)rn(g, 8));
            break;
        case 4:                         /* (U)COMISS/SD */
            sse_emit(g, rn(g, 2) ? 0x66 : 0, false, 0x2e + rn(g, 2), x, (int)y, mem, disp, -1);
            wrote_flags(g, CC_ALL, 0);
            break;
        case 5:                         /* CVT between float formats and packed int32 */
            if (rn(g, 2))
                sse_emit(g, pfs[rn(g, 4)], false, 0x5a, x, (int)y, mem, disp, -1);
            else if (rn(g, 2))
                sse_emit(g, pfs[rn(g, 3)], false, 0x5b, x, (int)y, mem, disp, -1);
            else
                sse_emit(g, pfs[1 + rn(g, 3)], false, 0xe6, x, (int)y, mem, disp, -1);
            break;
        case 6:                         /* CVTSI2SS/SD */
            sse_emit(g, pfs[2 + rn(g, 2)], rn(g, 2), 0x2a, x, pick_reg(g), mem, disp, -1);
            break;
        default:                        /* CVT(T)SS2SI / SD2SI */
            sse_emit(g, pfs[2 + rn(g, 2)], rn(g, 2), 0x2c + rn(g, 2), (unsigned)pick_reg(g), (int)y, mem,
                     disp, -1);
            break;
        }
        return;
    }
    switch (rn(g, 14)) {
    case 0: case 1: case 2: case 3: case 4:
        sse_emit(g, 0x66, false, int_ops[rn(g, ARRAY_LEN(int_ops))], x, (int)y, mem, disp, -1);
        break;
    case 5:                             /* ANDPS/ANDNPS/ORPS/XORPS (+PD) */
        sse_emit(g, rn(g, 2) ? 0x66 : 0, false, 0x54 + rn(g, 4), x, (int)y, mem, disp, -1);
        break;
    case 6: {                           /* PSHUFD/HW/LW, SHUFPS/PD */
        static const uint8_t pf[3] = { 0x66, 0xf3, 0xf2 };
        if (rn(g, 2))
            sse_emit(g, pf[rn(g, 3)], false, 0x70, x, (int)y, mem, disp, (int)rn(g, 256));
        else
            sse_emit(g, rn(g, 2) ? 0x66 : 0, false, 0xc6, x, (int)y, mem, disp, (int)rn(g, 256));
        break;
    }
    case 7: {                           /* shift by immediate */
        static const uint8_t grp[][2] = { { 0x71, 2 }, { 0x71, 4 }, { 0x71, 6 }, { 0x72, 2 }, { 0x72, 4 },
                                          { 0x72, 6 }, { 0x73, 2 }, { 0x73, 3 }, { 0x73, 6 }, { 0x73, 7 } };
        unsigned k = rn(g, ARRAY_LEN(grp));
        static const uint8_t counts[] = { 0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 63, 64, 200 };
        sse_emit(g, 0x66, false, grp[k][0], grp[k][1], (int)y, false, 0, counts[rn(g, ARRAY_LEN(counts))]);
        break;
    }
    case 8:                             /* UNPCK*PS/PD */
        sse_emit(g, rn(g, 2) ? 0x66 : 0, false, 0x14 + rn(g, 2), x, (int)y, mem, disp, -1);
        break;
    case 9: {                           /* to GPRs: PMOVMSKB, MOVMSKPS/PD, PEXTRW, MOVD/MOVQ r, xmm */
        int r = pick_reg(g);
        switch (rn(g, 4)) {
        case 0: sse_emit(g, 0x66, false, 0xd7, (unsigned)r, (int)y, false, 0, -1); break;
        case 1: sse_emit(g, rn(g, 2) ? 0x66 : 0, false, 0x50, (unsigned)r, (int)y, false, 0, -1); break;
        case 2: sse_emit(g, 0x66, false, 0xc5, (unsigned)r, (int)y, false, 0, (int)rn(g, 256)); break;
        default: sse_emit(g, 0x66, rn(g, 2), 0x7e, x, r, mem, disp, -1); break;
        }
        break;
    }
    case 10: {                          /* from GPRs / memory: MOVD/MOVQ xmm, r; PINSRW */
        int r = pick_reg(g);
        if (rn(g, 2))
            sse_emit(g, 0x66, rn(g, 2), 0x6e, x, r, mem, disp, -1);
        else
            sse_emit(g, 0x66, false, 0xc4, x, r, mem, disp, (int)rn(g, 256));
        break;
    }
    case 11: {                          /* MOVUPS/MOVSS/MOVSD/MOVAPS/MOVDQA/MOVDQU loads and stores */
        static const uint8_t pf[4] = { 0, 0x66, 0xf3, 0xf2 };
        switch (rn(g, 3)) {
        case 0: sse_emit(g, pf[rn(g, 4)], false, 0x10 + rn(g, 2), x, (int)y, mem, disp, -1); break;
        case 1: sse_emit(g, rn(g, 2) ? 0x66 : 0, false, 0x28 + rn(g, 2), x, (int)y, mem, disp, -1); break;
        default: sse_emit(g, rn(g, 2) ? 0x66 : 0xf3, false, rn(g, 2) ? 0x6f : 0x7f, x, (int)y, mem, disp, -1);
        }
        break;
    }
    case 12:                            /* MOVQ forms, MOVNTDQ */
        switch (rn(g, 3)) {
        case 0: sse_emit(g, 0xf3, false, 0x7e, x, (int)y, mem, disp, -1); break;
        case 1: sse_emit(g, 0x66, false, 0xd6, x, (int)y, mem, disp, -1); break;
        default: sse_emit(g, 0x66, false, 0xe7, x, 0, true, disp, -1); break;
        }
        break;
    default: {                          /* MOVLPS/MOVHPS/MOVHLPS/MOVLHPS (+PD memory forms) */
        unsigned opc = (unsigned[]){ 0x12, 0x13, 0x16, 0x17 }[rn(g, 4)];
        bool store = opc & 1;
        bool pd = rn(g, 2);
        if (store || pd)
            mem = true;
        sse_emit(g, pd ? 0x66 : 0, false, opc, x, (int)y, mem, disp, -1);
        break;
    }
    }
}

/* ---------------- 0F 3A family (SSSE3 PALIGNR, SSE4.1, PCLMULQDQ, SSE4.2 strings) ---------------- */
/* MOV r64, imm64 (REX.W B8+r): explicit string lengths for PCMPESTRx. */
static void emit_mov_imm64(Gen *g, int reg, uint64_t v)
{
    e8(g, 0x48 | (reg >= 8 ? 1 : 0));
    e8(g, 0xb8 | (reg & 7));
    e32(g, (uint32_t)v);
    e32(g, (uint32_t)(v >> 32));
}

/* A length in the low 32 bits; the upper half usually its sign extension, else junk
 * (which only PCMPESTRx with REX.W may look at). */
static uint64_t str_length_value(Gen *g)
{
    static const int32_t edge[] = { 0, 1, 7, 8, 9, 15, 16, 17, -1, -8, -9, -16, -17, 0x7fffffff,
                                    (int32_t)0x80000000, (int32_t)0x80000008, (int32_t)0xfffffff0 };
    int32_t v = rn(g, 3) == 0 ? edge[rn(g, ARRAY_LEN(edge))] : (int32_t)rn(g, 41) - 20;
    static const uint32_t upper[] = { 1, 0xffffffffu, 0x80000000u, 0 };
    if (rn(g, 4) == 0)
        return (uint64_t)upper[rn(g, ARRAY_LEN(upper))] << 32 | (uint32_t)v;
    return (uint64_t)(int64_t)v;
}

static void gen_0f3a(Gen *g)
{
    unsigned x = rn(g, 16), y = rn(g, 16);
    bool mem = rn(g, 3) == 0;
    /* Operands in the 16 slots around r15; now and then one off the 16-byte grid. */
    unsigned disp = (16 * rn(g, 15) - 128 + (rn(g, 10) == 0 ? 1 + rn(g, 15) : 0)) & 0xff;
    unsigned imm = (unsigned)rn(g, 256);
    unsigned kind = rn(g, 20);
    if (kind == 14 && rn(g, 3))
        kind = 15;                      /* undefined forms end the sequence: keep them rare */
    switch (kind) {
    case 0: case 1: case 2: {           /* ROUNDPS/PD/SS/SD: mostly defined imm8 bits */
        unsigned rimm = rn(g, 4) ? rn(g, 16) : imm;
        sse_emit_map(g, 0x66, false, 0x3a, 0x08 + rn(g, 4), x, (int)y, mem, disp, (int)rimm);
        break;
    }
    case 3:                             /* BLENDPS BLENDPD PBLENDW */
        sse_emit_map(g, 0x66, false, 0x3a, 0x0c + rn(g, 3), x, (int)y, mem, disp, (int)imm);
        break;
    case 4: {                           /* PALIGNR: XMM (66) or MMX (no prefix) */
        unsigned shift = rn(g, 2) ? rn(g, 40) : imm;
        if (rn(g, 3))
            sse_emit_map(g, 0x66, false, 0x3a, 0x0f, x, (int)y, mem, disp, (int)shift);
        else
            sse_emit_map(g, 0, false, 0x3a, 0x0f, x & 7, (int)(y & 7), mem, disp & 0xf8, (int)shift);
        break;
    }
    case 5: case 6:                     /* PEXTRB/W/D/Q, EXTRACTPS to a GPR or memory */
        sse_emit_map(g, 0x66, rn(g, 2), 0x3a, 0x14 + rn(g, 4), x, pick_reg(g), mem, disp, (int)imm);
        break;
    case 7: case 8:                     /* PINSRB, INSERTPS, PINSRD/Q */
        sse_emit_map(g, 0x66, rn(g, 2), 0x3a, 0x20 + rn(g, 3), x, rn(g, 2) ? pick_reg(g) : (int)y, mem,
                     disp, (int)imm);
        break;
    case 9: case 10: case 11:           /* DPPS DPPD */
        sse_emit_map(g, 0x66, false, 0x3a, 0x40 + rn(g, 2), x, (int)y, mem, disp, (int)imm);
        break;
    case 12:                            /* MPSADBW */
        sse_emit_map(g, 0x66, false, 0x3a, 0x42, x, (int)y, mem, disp, (int)imm);
        break;
    case 13:                            /* PCLMULQDQ, AESKEYGENASSIST */
        sse_emit_map(g, 0x66, false, 0x3a, rn(g, 2) ? 0x44 : 0xdf, x, (int)y, mem, disp, (int)imm);
        break;
    case 14:                            /* undefined: wrong or missing prefix, unassigned opcodes */
        if (rn(g, 2))
            sse_emit_map(g, (unsigned[]){ 0, 0xf3, 0xf2 }[rn(g, 3)], false, 0x3a,
                         (unsigned[]){ 0x08, 0x0c, 0x14, 0x21, 0x40, 0x44, 0x63 }[rn(g, 7)], x, (int)y, mem,
                         disp, (int)imm);
        else
            sse_emit_map(g, 0x66, false, 0x3a, (unsigned[]){ 0x10, 0x18, 0x23, 0x43, 0x45, 0x64 }[rn(g, 6)],
                         x, (int)y, mem, disp, (int)imm);
        break;
    default: {                          /* PCMPESTRM/I PCMPISTRM/I */
        unsigned opc = 0x60 + rn(g, 4);
        bool w = rn(g, 4) == 0;
        if (opc <= 0x61) {
            emit_mov_imm64(g, 0, str_length_value(g));
            emit_mov_imm64(g, 2, str_length_value(g));
        }
        /* Strings mostly in registers or the aligned slots; any misalignment is allowed. */
        unsigned sdisp = rn(g, 4) ? disp : (16 * rn(g, 15) - 128 + rn(g, 16)) & 0xff;
        sse_emit_map(g, 0x66, w, 0x3a, opc, x, (int)y, mem, sdisp, (int)(rn(g, 8) ? imm & 0x7f : imm));
        wrote_flags(g, CC_ALL, 0);
        break;
    }
    }
}

/* binary32/64 values where rounding to an integer is interesting: |x| in [2^-3, 2^mant], halves. */
static uint64_t round_interesting(Gen *g, int dbl)
{
    int mant = dbl ? 52 : 23, bias = dbl ? 1023 : 127;
    uint64_t sign = rn(g, 2) ? 1ull << (dbl ? 63 : 31) : 0;
    if (rn(g, 3) == 0) {                /* 0.5, 1.5, 2.5, 0.5 - ulp, 2^mant - 0.5, ... */
        static const double edge[] = { 0.5, 0.5, 1.5, 2.5, 0.49999999999999994, 0.4999999701976776,
                                       8388607.5, 4503599627370495.5, 0.75 };
        double v = edge[rn(g, ARRAY_LEN(edge))];
        uint64_t b;
        if (dbl) {
            memcpy(&b, &v, 8);
        } else {
            float f = (float)v;
            uint32_t u;
            memcpy(&u, &f, 4);
            b = u;
        }
        return sign | b;
    }
    int ex = (int)rn(g, (unsigned)mant + 4) - 3;
    uint64_t frac = rnd(g) & ((1ull << mant) - 1);
    unsigned fbits = ex >= mant ? 0 : ex < 0 ? (unsigned)mant : (unsigned)(mant - ex);
    switch (rn(g, 3)) {
    case 0:                             /* exactly halfway between two integers */
        if (fbits >= 1 && fbits <= (unsigned)mant)
            frac = (frac & ~((1ull << fbits) - 1)) | (1ull << (fbits - 1));
        break;
    case 1:                             /* integral */
        if (fbits <= (unsigned)mant)
            frac &= ~((fbits ? 1ull << fbits : 1ull) - 1);
        break;
    default:
        break;
    }
    return sign | ((uint64_t)(bias + ex) << mant) | frac;
}

/* 16 bytes for the 0F 3A family: floats, near-integers, NaNs, strings with NULs, or noise. */
static void fill_0f3a_vector(Gen *g, uint8_t *p)
{
    static const uint8_t chars[] = { 0, 'a', 'b', 'c', 'z', 'A', 0x7f, 0x80, 0xff, '0', '9' };
    static const uint16_t wchars[] = { 0, 1, 'a', 'b', 0x7fff, 0x8000, 0xffff, 0x0100, 0x6100 };
    switch (rn(g, 8)) {
    case 0:
        for (int k = 0; k < 4; k++)
            st32_le(p + 4 * k, rn(g, 3) == 0 ? f32_interesting(g) : (uint32_t)round_interesting(g, 0));
        break;
    case 1:
        for (int k = 0; k < 2; k++)
            st64_le(p + 8 * k, rn(g, 3) == 0 ? f64_interesting(g) : round_interesting(g, 1));
        break;
    case 2: case 3: {                   /* byte string; half of them NUL-free */
        bool nul = rn(g, 2);
        for (int k = 0; k < 16; k++) {
            uint8_t c = chars[rn(g, ARRAY_LEN(chars))];
            p[k] = c || nul ? c : 'a';
        }
        break;
    }
    case 4: {                           /* word string */
        bool nul = rn(g, 2);
        for (int k = 0; k < 8; k++) {
            uint16_t c = wchars[rn(g, ARRAY_LEN(wchars))];
            st16_le(p + 2 * k, c || nul ? c : 'a');
        }
        break;
    }
    case 5:                             /* NaNs with distinct payloads (which NaN wins?) */
        if (rn(g, 2))
            for (int k = 0; k < 4; k++)
                st32_le(p + 4 * k, rn(g, 2) ? 0x7f800000u | (rn(g, 2) << 31) | (1 + rn(g, 0x7fffff))
                                            : f32_interesting(g));
        else
            for (int k = 0; k < 2; k++)
                st64_le(p + 8 * k, rn(g, 2) ? 0x7ff0000000000000ull | ((uint64_t)rn(g, 2) << 63) |
                                                  (1 + (rnd(g) & 0xfffffffffffffull) % 0xfffffffffffffull)
                                            : f64_interesting(g));
        break;
    default:
        for (int k = 0; k < 2; k++)
            st64_le(p + 8 * k, rnd(g));
        break;
    }
}

/* ------- SSE3 and the 0F 38 map: SSSE3, SSE4.1/4.2, MOVBE, CRC32, ADX, AES, SHA, GFNI, MOVDIR* ------- */
/*
 * [pfx...] [REX] 0F [38] opc ModRM [disp8]: escape 0 = the 0F map, 0x38 =
 * the 0F 38 map; rex_always emits a REX even when it would be 40h (byte
 * registers SPL..DIL instead of AH..BH).
 */
static void sse38_emit(Gen *g, const uint8_t *pfx, unsigned npfx, bool w, unsigned escape, unsigned opc,
                       unsigned reg, int rm, bool mem, unsigned disp, bool rex_always)
{
    for (unsigned i = 0; i < npfx; i++)
        e8(g, pfx[i]);
    unsigned rex = (w ? 8 : 0) | (reg >= 8 ? 4 : 0) | (mem ? 1 : (rm >= 8 ? 1 : 0));
    if (rex || rex_always)
        e8(g, 0x40 | rex);
    e8(g, 0x0f);
    if (escape)
        e8(g, escape);
    e8(g, opc);
    if (mem) {
        e8(g, 0x47 | ((reg & 7) << 3));
        e8(g, disp);
    } else {
        e8(g, 0xc0 | ((reg & 7) << 3) | (rm & 7));
    }
}

/* last: the final instruction of the sequence, the only one that may fault on purpose. */
static void gen_ssse3_sse41(Gen *g, bool last)
{
    static const uint8_t ssse3_ops[] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
                                         0x0a, 0x0b, 0x1c, 0x1d, 0x1e };
    static const uint8_t sse41_ops[] = { 0x10, 0x14, 0x15, 0x17, 0x28, 0x29, 0x2b, 0x37, 0x38, 0x39,
                                         0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41 };
    static const uint8_t p66[1] = { 0x66 }, pf2[1] = { 0xf2 }, pf3[1] = { 0xf3 };
    unsigned x = rn(g, 16), y = rn(g, 16);
    bool mem = rn(g, 3) == 0;
    /* Memory operands are 16-byte slots around r15.  The last instruction is misaligned
     * 1 time in 4 (#GP(0) for a 16-byte operand, fine for the partial and unaligned
     * loads) and an undefined form 1 time in 8. */
    bool misalign = last && rn(g, 4) == 0;
    unsigned disp = (16 * rn(g, 15) - 128 + (misalign ? 1 + rn(g, 15) : 0)) & 0xff;
    switch (last && rn(g, 8) == 0 ? 99 : rn(g, 38)) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:     /* SSSE3 xmm */
        sse38_emit(g, p66, 1, false, 0x38, ssse3_ops[rn(g, ARRAY_LEN(ssse3_ops))], x, (int)y, mem, disp, false);
        break;
    case 8: case 9: case 10:            /* SSSE3 mm (no alignment rule for m64) */
        sse38_emit(g, NULL, 0, false, 0x38, ssse3_ops[rn(g, ARRAY_LEN(ssse3_ops))], x & 7, (int)(y & 7),
                   mem, disp, false);
        break;
    case 11: case 12: case 13: case 14: case 15: case 16: {     /* SSE4.1/4.2 xmm, xmm/m128 */
        unsigned opc = sse41_ops[rn(g, ARRAY_LEN(sse41_ops))];
        sse38_emit(g, p66, 1, false, 0x38, opc, x, (int)y, mem, disp, false);
        if (opc == 0x17)
            wrote_flags(g, CC_ALL, 0);
        break;
    }
    case 17: case 18:                   /* PMOVSX / PMOVZX */
        sse38_emit(g, p66, 1, false, 0x38, (rn(g, 2) ? 0x20 : 0x30) + rn(g, 6), x, (int)y, mem, disp, false);
        break;
    case 19:                            /* MOVNTDQA xmm, m128 */
        sse38_emit(g, p66, 1, false, 0x38, 0x2a, x, 0, true, disp, false);
        break;
    case 20: case 21: case 22: {        /* SSE3 FP: ADDSUBPS/PD, HADDPS/PD, HSUBPS/PD */
        static const uint8_t ops[3] = { 0xd0, 0x7c, 0x7d };
        sse38_emit(g, rn(g, 2) ? p66 : pf2, 1, false, 0, ops[rn(g, 3)], x, (int)y, mem, disp, false);
        break;
    }
    case 23: case 24:                   /* SSE3 moves: MOVDDUP, MOVSLDUP, MOVSHDUP, LDDQU */
        switch (rn(g, 4)) {
        case 0: sse38_emit(g, pf2, 1, false, 0, 0x12, x, (int)y, mem, disp, false); break;
        case 1: sse38_emit(g, pf3, 1, false, 0, 0x12, x, (int)y, mem, disp, false); break;
        case 2: sse38_emit(g, pf3, 1, false, 0, 0x16, x, (int)y, mem, disp, false); break;
        default: sse38_emit(g, pf2, 1, false, 0, 0xf0, x, 0, true, disp, false); break;
        }
        break;
    case 25: case 26: {                 /* MOVBE r16/32/64 <-> m */
        int sz = 1 + (int)rn(g, 3);
        sse38_emit(g, p66, sz == 1, sz == 3, 0x38, 0xf0 + rn(g, 2), (unsigned)pick_reg(g), 0, true,
                   (unsigned)(rn(g, 240) - 120) & 0xff, false);
        break;
    }
    case 27: case 28: case 29: {        /* CRC32 r32/r64, r/m8/16/32/64 */
        bool byte = rn(g, 3) == 0;
        int sz = byte ? 2 + (int)rn(g, 2) : 1 + (int)rn(g, 3);
        uint8_t pfx[2] = { 0xf2, 0x66 };
        if (!byte && sz == 1 && rn(g, 2)) {
            pfx[0] = 0x66;              /* the order of 66 and F2 does not matter */
            pfx[1] = 0xf2;
        }
        unsigned npfx = !byte && sz == 1 ? 2 : 1;
        bool rexb = byte && rn(g, 2);   /* without REX, r/m8 4-7 are AH CH DH BH */
        unsigned reg = (unsigned)pick_reg(g);
        int rm = byte && !rexb ? (int)rn(g, 8) : pick_reg(g);
        if (byte && !rexb && reg >= 8)
            reg = (unsigned[]){ 0, 1, 2, 3, 5, 6, 7 }[rn(g, 7)];    /* no REX.R, and never RSP */
        sse38_emit(g, pfx, npfx, sz == 3, 0x38, byte ? 0xf0 : 0xf1, reg, rm, rn(g, 3) == 0,
                   (unsigned)(rn(g, 240) - 120) & 0xff, rexb);
        break;
    }
    case 30:                            /* PTEST then a flag reader */
        sse38_emit(g, p66, 1, false, 0x38, 0x17, x, (int)y, mem, disp, false);
        wrote_flags(g, CC_ALL, 0);
        {
            uint8_t op[2] = { 0x0f, (uint8_t)(0x90 + rn(g, 16)) };
            emit_eg(g, 0, op, 2, false);
        }
        break;
    case 31: {                          /* ADCX / ADOX r32/r64, r/m */
        bool ox = rn(g, 2);
        need_flags(g, ox ? CC_O : CC_C);
        sse38_emit(g, ox ? pf3 : p66, 1, rn(g, 2), 0x38, 0xf6, (unsigned)pick_reg(g), pick_reg(g), rn(g, 3) == 0,
                   (unsigned)(rn(g, 240) - 120) & 0xff, false);
        wrote_flags(g, ox ? CC_O : CC_C, 0);
        break;
    }
    case 32: case 33:                   /* AESIMC AESENC AESENCLAST AESDEC AESDECLAST */
        sse38_emit(g, p66, 1, false, 0x38, 0xdb + rn(g, 5), x, (int)y, mem, disp, false);
        break;
    case 34: case 35:                   /* SHA1NEXTE SHA1MSG1/2 SHA256RNDS2 SHA256MSG1/2 */
        sse38_emit(g, NULL, 0, false, 0x38, 0xc8 + rn(g, 6), x, (int)y, mem, disp, false);
        break;
    case 36:                            /* GF2P8MULB */
        sse38_emit(g, p66, 1, false, 0x38, 0xcf, x, (int)y, mem, disp, false);
        break;
    case 37:
        if (rn(g, 2)) {                 /* MOVDIRI m32/m64, r */
            sse38_emit(g, NULL, 0, rn(g, 2), 0x38, 0xf9, (unsigned)pick_reg(g), 0, true,
                       (unsigned)(rn(g, 240) - 120) & 0xff, false);
        } else {                        /* mov r32, ES-relative 64-byte slot; MOVDIR64B r64, m512 */
            int r = pick_reg(g);
            uint32_t dst = (uint32_t)(BASE + DATA_OFF + 0x400 + 64 * rn(g, 16)) + (misalign ? 8 : 0);
            if (r >= 8)
                e8(g, 0x41);
            e8(g, 0xb8 + (r & 7));
            e32(g, dst);
            sse38_emit(g, p66, 1, false, 0x38, 0xf8, (unsigned)r, 0, true, (unsigned)(rn(g, 160) - 128) & 0xff,
                       false);
        }
        break;
    default:                            /* forms that must raise #UD */
        switch (rn(g, 6)) {
        case 0: sse38_emit(g, NULL, 0, false, 0x38, 0xf0 + rn(g, 2), (unsigned)pick_reg(g), pick_reg(g), false, 0,
                           false); break;                           /* MOVBE register form */
        case 1: sse38_emit(g, p66, 1, false, 0x38, 0x2a, x, (int)y, false, 0, false); break;   /* MOVNTDQA reg */
        case 2: sse38_emit(g, pf2, 1, false, 0, 0xf0, x, (int)y, false, 0, false); break;      /* LDDQU reg */
        case 3: sse38_emit(g, NULL, 0, false, 0x38, 0x10 + rn(g, 2) * 0x31, x & 7, (int)(y & 7), mem, disp,
                           false); break;                           /* PBLENDVB / PHMINPOSUW without 66 */
        case 4: sse38_emit(g, pf3, 1, false, 0x38, ssse3_ops[rn(g, ARRAY_LEN(ssse3_ops))], x, (int)y, mem,
                           disp, false); break;                     /* SSSE3 with F3 */
        default: sse38_emit(g, NULL, 0, false, 0, 0xd0, x, (int)y, mem, disp, false); break;  /* ADDSUB, no prefix */
        }
        break;
    }
}

static void generate(Gen *g, int family, uint64_t seed)
{
    memset(g, 0, sizeof(*g));
    g->rng = seed * 0x9e3779b97f4a7c15ull + 0x1234567ull + (uint64_t)family;
    g->family = family;
    if (family == FAM_X87 || family == FAM_X87T || fam_is_sse(family)) {
        for (int i = 0; i < 16; i++)
            g->slot_kind[i] = (uint8_t)rn(g, 4);
        e8(g, 0x49); e8(g, 0x0f); e8(g, 0xae); e8(g, 0x8f);     /* fxrstor64 [r15 - 0x800] */
        e32(g, (uint32_t)(FX_IN - 0x800));
        unsigned n = 1 + rn(g, 12);
        for (unsigned i = 0; i < n && family == FAM_X87; i++) {
            if (g->n_ins < 32)
                g->ins_off[g->n_ins++] = (uint16_t)g->n;
            gen_x87(g);
        }
        if (family == FAM_X87T)
            gen_x87t(g);
        for (unsigned i = 0; i < n && fam_is_sse(family); i++) {
            if (g->n_ins < 32)
                g->ins_off[g->n_ins++] = (uint16_t)g->n;
            if (family == FAM_SSSE3_SSE41)
                gen_ssse3_sse41(g, i + 1 == n);
            else if (family == FAM_0F3A)
                gen_0f3a(g);
            else
                gen_sse(g);
        }
        if (opt_trunc >= 0 && opt_trunc < (long)g->n_ins)
            g->n = g->ins_off[opt_trunc];
        e8(g, 0x49); e8(g, 0x0f); e8(g, 0xae); e8(g, 0x87);     /* fxsave64 [r15 - 0x600] */
        e32(g, (uint32_t)(FX_OUT - 0x800));
        return;
    }
    unsigned n = 1 + rn(g, 6);
    for (unsigned i = 0; i < n; i++) {
        int f = family == FAM_MIXED ? (int)rn(g, FAM_MIXED + 1) : family;
        switch (f) {
        case FAM_ALU: gen_alu(g); break;
        case FAM_SHIFT: gen_shift(g); break;
        case FAM_MULDIV: gen_muldiv(g); break;
        case FAM_STRING: gen_string(g); break;
        case FAM_BIT: gen_bit(g); break;
        default: gen_push_pop(g); break;
        }
    }
}

/* ---------------- native execution (x86-64 Linux hosts only) ---------------- */
#if defined(__x86_64__) && defined(__linux__)
#define HAVE_NATIVE 1

static void emit_abs_modrm(uint8_t *p, unsigned *n, int reg, uint32_t addr)
{
    p[(*n)++] = (uint8_t)(0x04 | ((reg & 7) << 3));
    p[(*n)++] = 0x25;
    for (int i = 0; i < 4; i++)
        p[(*n)++] = (uint8_t)(addr >> (8 * i));
}

/* Prologue: save callee-saved host registers and RSP, load guest RFLAGS and GPRs. */
static unsigned build_prologue(uint8_t *p)
{
    unsigned n = 0;
    static const uint8_t saves[] = { 0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57 };
    memcpy(p, saves, sizeof(saves));
    n = sizeof(saves);
    p[n++] = 0x48; p[n++] = 0x89; emit_abs_modrm(p, &n, 4, (uint32_t)(BASE + SAVE_RSP));
    p[n++] = 0x48; p[n++] = 0x8b; emit_abs_modrm(p, &n, 4, (uint32_t)(BASE + STATE_IN + 4 * 8));
    p[n++] = 0xff; emit_abs_modrm(p, &n, 6, (uint32_t)(BASE + STATE_IN + 16 * 8));   /* push [flags] */
    p[n++] = 0x9d;                                                                     /* popfq */
    for (int r = 0; r < 16; r++) {
        if (r == 4)
            continue;
        p[n++] = (uint8_t)(0x48 | (r >= 8 ? 4 : 0));
        p[n++] = 0x8b;
        emit_abs_modrm(p, &n, r, (uint32_t)(BASE + STATE_IN + 8 * r));
    }
    return n;
}

static unsigned build_epilogue(uint8_t *p)
{
    unsigned n = 0;
    for (int r = 0; r < 16; r++) {
        p[n++] = (uint8_t)(0x48 | (r >= 8 ? 4 : 0));
        p[n++] = 0x89;
        emit_abs_modrm(p, &n, r, (uint32_t)(BASE + STATE_OUT + 8 * r));
    }
    p[n++] = 0x9c;                      /* pushfq */
    p[n++] = 0x58;                      /* pop rax */
    p[n++] = 0x48; p[n++] = 0x89; emit_abs_modrm(p, &n, 0, (uint32_t)(BASE + STATE_OUT + 16 * 8));
    p[n++] = 0x48; p[n++] = 0x8b; emit_abs_modrm(p, &n, 4, (uint32_t)(BASE + SAVE_RSP));
    static const uint8_t restores[] = { 0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3 };
    memcpy(p + n, restores, sizeof(restores));
    return n + sizeof(restores);
}

static void native_fault(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)si;
    ucontext_t *uc = ctx;
    NativeResult *r = (NativeResult *)(uintptr_t)(BASE + RESULT);
    static const int map[16] = { REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                                 REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15 };
    for (int i = 0; i < 16; i++)
        r->regs[i] = (uint64_t)uc->uc_mcontext.gregs[map[i]];
    r->rflags = (uint64_t)uc->uc_mcontext.gregs[REG_EFL];
    r->rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
    r->trapno = (uint32_t)uc->uc_mcontext.gregs[REG_TRAPNO];
    r->status = 2;
    syscall(SYS_exit, 0);
}

static uint8_t altstack[65536];

/* Runs the prepared region in a sandboxed child; result in the shared region. */
static bool native_run(const char **why)
{
    pid_t pid = fork();
    if (pid < 0) {
        *why = "fork failed";
        return false;
    }
    if (pid == 0) {
        stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
        sigaltstack(&ss, NULL);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = native_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        int sigs[] = { SIGFPE, SIGSEGV, SIGILL, SIGBUS, SIGTRAP };
        for (unsigned i = 0; i < ARRAY_LEN(sigs); i++)
            sigaction(sigs[i], &sa, NULL);
        alarm(5);
        /* Strict seccomp where the kernel allows it; the fork and the alarm
         * already contain a runaway sequence if it does not. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0);
        void (*fn)(void) = (void (*)(void))(uintptr_t)(BASE + CODE_OFF);
        fn();
        ((NativeResult *)(uintptr_t)(BASE + RESULT))->status = 1;
        syscall(SYS_exit, 0);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0) {
        *why = "waitpid failed";
        return false;
    }
    if (!WIFEXITED(st)) {
        *why = "native child killed (timeout or crash)";
        return false;
    }
    return true;
}
#else
#define HAVE_NATIVE 0
#endif

/* ---------------- the software CPU side ---------------- */

typedef struct Harness {
    AddressSpace *as;
    uint8_t *ram;
    TCGCPU *cpu;
    uint8_t *region;        /* the shared native region at BASE */
} Harness;

static Harness H;
static int opt_family = -1;
static long opt_seed = -1, opt_count = 300, opt_first = 0;

static bool harness_init(const char **why)
{
#if HAVE_NATIVE
    if (H.region)
        return true;
    void *p = mmap((void *)(uintptr_t)BASE, REGION, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED || p != (void *)(uintptr_t)BASE) {
        *why = "cannot map the fixed test region (address in use or W^X policy)";
        return false;
    }
    H.region = p;
    MemoryRegion *root = memory_region_new_container("root", UINT64_MAX);
    MemoryRegion *ram = memory_region_new_ram("ram", 4u << 20, NULL);
    memory_region_add_subregion(root, 0, ram, 0);
    H.as = address_space_new("tcg-diff", root);
    H.ram = memory_region_host_ptr(ram);
    H.cpu = tcg_cpu_new(H.as, 0);
    /* Page tables: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000; PD[128] maps BASE (2 MiB) -> GUEST_PHYS. */
    st64_le(H.ram + 0x1000, 0x2000 | 3);
    st64_le(H.ram + 0x2000, 0x3000 | 3);
    st64_le(H.ram + 0x3000 + 8 * (BASE >> 21), GUEST_PHYS | 0x83);
    return true;
#else
    *why = "needs an x86-64 Linux host";
    return false;
#endif
}

static void tcg_setup(const uint64_t *regs, uint64_t rflags, uint64_t rip)
{
    X86CPUState s;
    memset(&s, 0, sizeof(s));
    memcpy(s.regs, regs, sizeof(s.regs));
    s.rip = rip;
    s.rflags = (rflags & (CC_ALL | FL_DF)) | 2;
    s.cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET | X86_CR0_WP | X86_CR0_NE | X86_CR0_MP;
    s.cr3 = 0x1000;
    s.cr4 = X86_CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    s.efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE;
    s.ldt.unusable = 1;
    for (int i = 0; i < SEG__COUNT; i++) {
        X86Segment *g = &s.seg[i];
        g->selector = i == SEG_CS ? 0x08 : 0x10;
        g->limit = 0xffffffffu;
        g->type = i == SEG_CS ? 0xb : 0x3;
        g->s = g->present = g->g = 1;
        g->l = i == SEG_CS;
        g->db = i != SEG_CS;
    }
    cpu_from_x86_state(H.cpu, &s);
    H.cpu->halted = false;
    tb_flush_all();
    tb_reap();
    tlb_flush(H.cpu, true);
}

static void dump_bytes(const uint8_t *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        fprintf(stderr, "%02x%s", b[i], i + 1 < n ? " " : "\n");
}

static const char *const regnames[16] = { "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI",
                                          "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15" };

/*
 * 16 bytes of integer lanes (one element size per vector) biased toward
 * the saturation and sign limits: 0, +-1, MIN, MAX, MIN+1, MAX-1, 0x80
 * bytes, or noise.
 */
static void fill_int_vector(Gen *g, uint8_t *p)
{
    unsigned esz = 1u << rn(g, 4);
    for (unsigned k = 0; k < 16; k += esz) {
        uint64_t top = 1ull << (8 * esz - 1), v;
        switch (rn(g, 10)) {
        case 0: v = 0; break;
        case 1: v = 1; break;
        case 2: v = ~0ull; break;
        case 3: v = top; break;
        case 4: v = top - 1; break;
        case 5: v = top + 1; break;
        case 6: v = top - 2; break;
        case 7: v = 0x8080808080808080ull; break;
        default: v = rnd(g); break;
        }
        for (unsigned b = 0; b < esz; b++)
            p[k + b] = (uint8_t)(v >> (8 * b));
    }
}

/* The FXRSTOR image, operand slots and FLDCW words of an x87 sequence. */
static void x87_setup(const Gen *g, Gen *vals, uint8_t *data)
{
    uint8_t *fx = data + FX_IN;
    memset(fx, 0, 512);
    uint16_t fcw = (uint16_t)(0x3f | (rn(vals, 4) << 10) | ((uint16_t[]){ 0, 2, 3 }[rn(vals, 3)] << 8));
    if (rn(vals, 8) == 0)
        fcw &= (uint16_t)~(1u << rn(vals, 6));
    st16_le(fx + 0, fcw);
    st16_le(fx + 2, (uint16_t)((rn(vals, 8) << 11) | (rnd(vals) & 0x4700)));
    fx[4] = rn(vals, 3) ? 0xff : (uint8_t)rnd(vals);
    st32_le(fx + 24, 0x1f80);
    if (fam_is_sse(g->family)) {
        uint32_t mx = 0x1f80 | (rn(vals, 4) << 13) | (rn(vals, 4) == 0 ? MXCSR_DAZ : 0) |
                      (rn(vals, 4) == 0 ? MXCSR_FZ : 0);
        if (rn(vals, 8) == 0)
            mx &= ~(1u << (7 + rn(vals, 6)));
        st32_le(fx + 24, mx);
    }
    for (int i = 0; i < 8; i++) {
        uint64_t m;
        uint16_t se;
        f80_interesting(vals, &m, &se);
        st64_le(fx + 32 + 16 * i, m);
        st16_le(fx + 40 + 16 * i, se);
    }
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 2; k++) {
            st64_le(fx + 160 + 16 * i + 8 * k, rnd(vals));
        }
    if (fam_is_sse(g->family))
        for (int i = 0; i < 16; i++) {
            uint8_t *p = fx + 160 + 16 * i;
            if (rn(vals, 2))
                for (int k = 0; k < 4; k++)
                    st32_le(p + 4 * k, f32_interesting(vals));
            else
                for (int k = 0; k < 2; k++)
                    st64_le(p + 8 * k, f64_interesting(vals));
        }
    if (g->family == FAM_0F3A)
        for (int i = 0; i < 16; i++)
            fill_0f3a_vector(vals, fx + 160 + 16 * i);
    uint8_t *slots = data + 0x800 - 128;
    for (int i = 0; i < 16 && g->family == FAM_0F3A; i++)
        fill_0f3a_vector(vals, slots + 16 * i);
    for (int i = 0; i < 16 && g->family != FAM_0F3A; i++) {
        uint8_t *p = slots + 16 * i;
        if (fam_is_sse(g->family) && g->slot_kind[i] < 2) {
            for (int k = 0; k < 4; k++)
                if (g->slot_kind[i] == 0)
                    st32_le(p + 4 * k, f32_interesting(vals));
                else if (!(k & 1))
                    st64_le(p + 4 * k, f64_interesting(vals));
        } else if (g->slot_kind[i] == 0) {
            st32_le(p, f32_interesting(vals));
        } else if (g->slot_kind[i] == 1) {
            st64_le(p, f64_interesting(vals));
        } else if (g->slot_kind[i] >= 4) {
            /* Transcendental operands: mostly inside each instruction's domain. */
            uint64_t m;
            uint16_t se;
            f80_interesting(vals, &m, &se);
            unsigned op = g->slot_kind[i] - 4u;
            if (rn(vals, 4) != 0) {
                m = 0x8000000000000000ull | rnd(vals);
                int ex;
                switch (op) {
                case 0: ex = -(int)rn(vals, 70); break;                  /* F2XM1: |x| < 1 */
                case 4: ex = -2 - (int)rn(vals, 60); break;               /* FYL2XP1: small */
                case 2: case 5: case 6: case 7: ex = -(int)rn(vals, 30); break;
                default: ex = (int)rn(vals, 80) - 40; break;
                }
                se = (uint16_t)((rn(vals, 2) ? 0x8000 : 0) | (16383 + ex));
                if (op == 1 && i == 0)
                    se &= 0x7fff;                                         /* FYL2X: x > 0 */
            }
            /* Outside F2XM1's / FYL2XP1's domain results are undefined.  Trig
             * arguments stay below 1: the AMD host's FSIN/FCOS are off by ~20 ulp
             * near pi and up to ~1000 ulp for |x| of 2^13..2^28, where Kestrel's
             * results agree with mpmath (test-tcg-cpu pins those cases). */
            unsigned lim = op == 0 ? 16382 : op == 4 ? 16381 : (op == 1 || op == 3) ? 0x7fff : 16382;
            if (i == 0 && (se & 0x7fff) > lim && (se & 0x7fff) != 0x7fff)
                se = (uint16_t)((se & 0x8000) | lim);
            st64_le(p, m);
            st16_le(p + 8, se);
        } else if (g->slot_kind[i] == 3) {
            uint64_t bcd = 0;
            unsigned nd = rn(vals, 19);
            for (unsigned d = 0; d < 16 && d < nd; d++)
                bcd |= (uint64_t)rn(vals, 10) << (4 * d);
            st64_le(p, bcd);
            p[8] = nd > 16 ? (uint8_t)(rn(vals, 10) | (rn(vals, 10) << 4)) : 0;
            p[9] = rn(vals, 2) ? 0x80 : 0;
        } else {
            uint64_t m;
            uint16_t se;
            f80_interesting(vals, &m, &se);
            st64_le(p, m);
            st16_le(p + 8, se);
        }
    }
    /* ssse3-sse41: half the XMM registers and the non-float slots hold integer edge values. */
    for (int i = 0; i < 16 && g->family == FAM_SSSE3_SSE41; i++) {
        if (rn(vals, 2))
            fill_int_vector(vals, fx + 160 + 16 * i);
        if (g->slot_kind[i] >= 2)
            fill_int_vector(vals, slots + 16 * i);
    }
    for (unsigned i = 0; i < g->n_cw; i++)
        st16_le(data + CW_OFF + 2 * i, g->cw[i]);
}

/*
 * Compare the FXSAVE images field by field, then copy the fields that are
 * not compared (FOP/FIP/FDP: AMD saves them only with ES set; MXCSR_MASK;
 * poisoned C bits) from the host image so the byte compare sees the rest.
 */
static bool x87_compare(const Gen *g, const uint8_t *h, uint8_t *t, char *msg, int *m, int cap)
{
    bool ok = true;
#define XNOTE(...) do { if (*m < cap - 200) *m += snprintf(msg + *m, (size_t)(cap - *m), __VA_ARGS__); } while (0)
    uint16_t fswmask = (uint16_t)~g->fpoison;
    if (ld16_le(h) != ld16_le(t)) {
        ok = false;
        XNOTE("  FCW host %04x tcg %04x\n", ld16_le(h), ld16_le(t));
    }
    if ((ld16_le(h + 2) & fswmask) != (ld16_le(t + 2) & fswmask)) {
        ok = false;
        XNOTE("  FSW host %04x tcg %04x (compared bits %04x)\n", ld16_le(h + 2), ld16_le(t + 2), fswmask);
    }
    if (h[4] != t[4]) {
        ok = false;
        XNOTE("  FTW (abridged) host %02x tcg %02x\n", h[4], t[4]);
    }
    for (int i = 0; i < 8; i++) {
        const uint8_t *a = h + 32 + 16 * i, *b = t + 32 + 16 * i;
        if (g->family == FAM_X87T && (ld16_le(a + 8) >> 15) == (ld16_le(b + 8) >> 15)) {
            /* Distance in ulps, across an exponent boundary too. */
            unsigned __int128 oa = ((unsigned __int128)(ld16_le(a + 8) & 0x7fff) << 63) |
                                   (ld64_le(a) & ~(1ull << 63));
            unsigned __int128 ob = ((unsigned __int128)(ld16_le(b + 8) & 0x7fff) << 63) |
                                   (ld64_le(b) & ~(1ull << 63));
            unsigned __int128 d = oa > ob ? oa - ob : ob - oa;
            if (d <= TRANS_ULPS) {
                memcpy(t + 32 + 16 * i, a, 10);
                continue;
            }
        }
        if (ld64_le(a) != ld64_le(b) || ld16_le(a + 8) != ld16_le(b + 8)) {
            ok = false;
            XNOTE("  ST%d host %04x:%016" PRIx64 " tcg %04x:%016" PRIx64 "\n", i, ld16_le(a + 8),
                  ld64_le(a), ld16_le(b + 8), ld64_le(b));
        }
    }
    for (int i = 0; i < 16; i++) {
        const uint8_t *a = h + 160 + 16 * i, *b = t + 160 + 16 * i;
        if (memcmp(a, b, 16)) {
            ok = false;
            XNOTE("  XMM%d host %016" PRIx64 "_%016" PRIx64 " tcg %016" PRIx64 "_%016" PRIx64 "\n", i,
                  ld64_le(a + 8), ld64_le(a), ld64_le(b + 8), ld64_le(b));
        }
    }
    if (ld32_le(h + 24) != ld32_le(t + 24)) {
        ok = false;
        XNOTE("  MXCSR host %08x tcg %08x\n", ld32_le(h + 24), ld32_le(t + 24));
    }
    memcpy(t + 6, h + 6, 18);
    memcpy(t + 28, h + 28, 4);
    st16_le(t + 2, (uint16_t)((ld16_le(t + 2) & fswmask) | (ld16_le(h + 2) & ~fswmask)));
#undef XNOTE
    return ok;
}

/* Run one seed; returns true when both sides agree.  verbose prints everything. */
static bool diff_one(int family, uint64_t seed, bool verbose)
{
#if HAVE_NATIVE
    Gen g;
    generate(&g, family, seed);
    uint8_t *R = H.region;
    memset(R, 0, REGION);
    unsigned n = build_prologue(R + CODE_OFF);
    uint64_t start = BASE + CODE_OFF + n;
    memcpy(R + CODE_OFF + n, g.buf, g.n);
    n += g.n;
    unsigned seq_end = n;
    n += build_epilogue(R + CODE_OFF + n);

    /* Initial state: biased register values, random flags and DF. */
    Gen vals = g;
    vals.rng ^= 0x5555aaaa5555aaaaull;
    uint64_t regs[16];
    for (int i = 0; i < 16; i++)
        regs[i] = interesting(&vals);
    regs[R_ESP] = BASE + STACK_TOP - 0x100;
    regs[15] = BASE + DATA_OFF + 0x800;
    uint64_t rflags = (rnd(&vals) & CC_ALL) | (rn(&vals, 4) == 0 ? FL_DF : 0) | 2;
    for (int i = 0; i < 16; i++)
        st64_le(R + STATE_IN + 8 * i, regs[i]);
    st64_le(R + STATE_IN + 128, rflags);
    for (unsigned i = 0; i < DATA_LEN; i++)
        R[DATA_OFF + i] = (uint8_t)rnd(&vals);
    if (family == FAM_X87 || family == FAM_X87T || fam_is_sse(family))
        x87_setup(&g, &vals, R + DATA_OFF);

    /* The software CPU gets the same image with HLT where the epilogue starts. */
    memcpy(H.ram + GUEST_PHYS, R, REGION);
    H.ram[GUEST_PHYS + CODE_OFF + seq_end] = 0xf4;

    const char *why = NULL;
    if (!native_run(&why)) {
        fprintf(stderr, "tcg-diff: %s family %s seed %" PRIu64 "\n", why, fam_names[family], seed);
        return false;
    }
    NativeResult nat = *(NativeResult *)(R + RESULT);
    if (nat.status == 1) {
        for (int i = 0; i < 16; i++)
            nat.regs[i] = ld64_le(R + STATE_OUT + 8 * i);
        nat.rflags = ld64_le(R + STATE_OUT + 128);
    }

    tcg_setup(regs, rflags, start);
    H.cpu->stop_on_exception = true;
    TCGRunResult rr = tcg_cpu_exec(H.cpu, 1000);

    bool ok = true;
    char msg[2048];
    int m = 0;
    msg[0] = 0;
#define NOTE(...) do { if (m < (int)sizeof(msg) - 200) m += snprintf(msg + m, sizeof(msg) - m, __VA_ARGS__); } while (0)

    if (nat.status == 2) {
        /* Host faulted: the software CPU must raise the same vector at the same RIP. */
        if (rr != TCG_RUN_EXCEPTION || (uint32_t)H.cpu->stopped_vec != nat.trapno ||
            H.cpu->rip != nat.rip) {
            ok = false;
            NOTE("  host: exception %u at %#" PRIx64 "; tcg: %s vector %d at %#" PRIx64 "\n",
                 nat.trapno, nat.rip, rr == TCG_RUN_EXCEPTION ? "exception" : "no exception",
                 H.cpu->stopped_vec, H.cpu->rip);
        }
    } else if (rr != TCG_RUN_HALTED) {
        ok = false;
        NOTE("  host completed; tcg stopped with %s vector %d at %#" PRIx64 "\n",
             rr == TCG_RUN_EXCEPTION ? "exception" : "budget", H.cpu->stopped_vec, H.cpu->rip);
    }
    if (ok) {
        for (int i = 0; i < 16; i++)
            if (nat.regs[i] != H.cpu->regs[i]) {
                ok = false;
                NOTE("  %-3s host %016" PRIx64 " tcg %016" PRIx64 "\n", regnames[i], nat.regs[i],
                     H.cpu->regs[i]);
            }
        uint32_t mask = (CC_ALL & ~g.poison) | FL_DF;
        if (nat.status == 2)
            mask &= 0;          /* flags at a fault: only after complete instructions; skip */
        uint32_t tf = cpu_get_eflags(H.cpu);
        if ((nat.rflags & mask) != (tf & mask)) {
            ok = false;
            NOTE("  FLAGS host %04x tcg %04x (compared bits %04x)\n", (unsigned)(nat.rflags & mask),
                 tf & mask, mask);
        }
        if (nat.status == 1 && (family == FAM_X87 || family == FAM_X87T || fam_is_sse(family)))
            ok &= x87_compare(&g, R + DATA_OFF + FX_OUT, H.ram + GUEST_PHYS + DATA_OFF + FX_OUT,
                              msg, &m, (int)sizeof(msg));
        if (nat.status == 1) {
            for (unsigned i = 0; i < DATA_LEN; i++)
                if (R[DATA_OFF + i] != H.ram[GUEST_PHYS + DATA_OFF + i]) {
                    ok = false;
                    NOTE("  memory %#" PRIx64 ": host %02x tcg %02x\n", BASE + DATA_OFF + i,
                         R[DATA_OFF + i], H.ram[GUEST_PHYS + DATA_OFF + i]);
                    break;
                }
            /* Stack bytes the sequence pushed (below the initial RSP, above the final one). */
            uint64_t lo = nat.regs[R_ESP] - BASE;
            if (lo < STACK_TOP - STACK_CMP)
                lo = STACK_TOP - STACK_CMP;
            for (unsigned i = (unsigned)lo; i < STACK_TOP - 0x100; i++)
                if (R[i] != H.ram[GUEST_PHYS + i]) {
                    ok = false;
                    NOTE("  stack %#" PRIx64 ": host %02x tcg %02x\n", BASE + i, R[i],
                         H.ram[GUEST_PHYS + i]);
                    break;
                }
        }
    }
    if (!ok || verbose) {
        fprintf(stderr, "%s: family %s seed %" PRIu64 ", %u bytes: ", ok ? "match" : "MISMATCH",
                fam_names[family], seed, g.n);
        dump_bytes(g.buf, g.n);
        fprintf(stderr, "  initial RFLAGS %04" PRIx64 ", poisoned flags %04x\n", rflags, g.poison);
        if (verbose)
            for (int i = 0; i < 16; i++)
                fprintf(stderr, "  in %-3s %016" PRIx64 "  out %016" PRIx64 "\n", regnames[i], regs[i],
                        H.cpu->regs[i]);
        if (family == FAM_X87 || family == FAM_X87T || fam_is_sse(family)) {
            const uint8_t *fx = R + DATA_OFF + FX_IN;
            fprintf(stderr, "  initial FCW %04x FSW %04x FTW %02x\n", ld16_le(fx), ld16_le(fx + 2), fx[4]);
            for (int i = 0; i < 8 && !fam_is_sse(family); i++)
                fprintf(stderr, "  initial ST%d %04x:%016" PRIx64 "\n", i, ld16_le(fx + 40 + 16 * i),
                        ld64_le(fx + 32 + 16 * i));
            for (int i = 0; i < 16 && fam_is_sse(family); i++)
                fprintf(stderr, "  initial XMM%d %016" PRIx64 "_%016" PRIx64 "\n", i,
                        ld64_le(fx + 168 + 16 * i), ld64_le(fx + 160 + 16 * i));
            if (fam_is_sse(family))
                fprintf(stderr, "  initial MXCSR %08x\n", ld32_le(fx + 24));
        }
        if (family == FAM_X87T && verbose) {
            const uint8_t *sl = R + DATA_OFF + 0x800 - 128;
            fprintf(stderr, "  x (slot 0) %04x:%016" PRIx64 "  y (slot 1) %04x:%016" PRIx64 "\n",
                    ld16_le(sl + 8), ld64_le(sl), ld16_le(sl + 24), ld64_le(sl + 16));
        }
        if ((family == FAM_X87 || family == FAM_X87T) && verbose) {
            const uint8_t *fx = R + DATA_OFF + FX_OUT;
            fprintf(stderr, "  host final FCW %04x FSW %04x FTW %02x\n", ld16_le(fx), ld16_le(fx + 2), fx[4]);
            for (int i = 0; i < 8; i++)
                fprintf(stderr, "  host final ST%d %04x:%016" PRIx64 "\n", i, ld16_le(fx + 40 + 16 * i),
                        ld64_le(fx + 32 + 16 * i));
        }
        fputs(msg, stderr);
        if (!ok)
            fprintf(stderr, "  reproduce: build/tests/unit/test-tcg-diff --family %s --seed %" PRIu64 "\n",
                    fam_names[family], seed);
    }
    return ok;
#else
    (void)family; (void)seed; (void)verbose;
    return true;
#endif
}

/*
 * XSAVE/XSAVE64 with EDX:EAX = 3 (x87|SSE) is a user-mode instruction, so
 * the host can check the software CPU's XSAVE image: after FXRSTOR64 of a
 * random x87/SSE state (never the initial configuration, so XINUSE is 1
 * for both components on any CPU), the legacy-region fields and
 * XSTATE_BV & 3 must match; bytes 464-511 and XCOMP_BV must be untouched.
 * FCS/FDS (32-bit format) are not compared: newer Intel CPUs store 0
 * there (CPUID.(7,0):EBX[13]).  The software CPU runs with CR4.OSXSAVE
 * and XCR0 = 3; the host's larger XCR0 does not matter as RFBM = 3.
 */
#if HAVE_NATIVE
#define XS_IN   0x000u      /* FXRSTOR64 image (data area offsets) */
#define XS_OUT  0x400u      /* XSAVE (32-bit FIP/FDP format) */
#define XS_OUT64 0x800u     /* XSAVE64 */

static bool xsave_fields_match(const uint8_t *h, const uint8_t *t, bool w64, char *msg, size_t len)
{
    static const struct { unsigned off, n; const char *name; } f[] = {
        { 0, 2, "FCW" }, { 2, 2, "FSW" }, { 4, 1, "abridged FTW" }, { 6, 2, "FOP" },
        { 24, 4, "MXCSR" }, { 28, 4, "MXCSR_MASK" },
    };
    for (unsigned i = 0; i < ARRAY_LEN(f); i++)
        if (memcmp(h + f[i].off, t + f[i].off, f[i].n)) {
            snprintf(msg, len, "%s differs", f[i].name);
            return false;
        }
    if (memcmp(h + 8, t + 8, w64 ? 8 : 4) || memcmp(h + 16, t + 16, w64 ? 8 : 4)) {
        snprintf(msg, len, "FIP/FDP differ");
        return false;
    }
    for (unsigned i = 0; i < 8; i++)
        if (memcmp(h + 32 + 16 * i, t + 32 + 16 * i, 10)) {
            snprintf(msg, len, "ST%u differs", i);
            return false;
        }
    for (unsigned i = 0; i < 16; i++)
        if (memcmp(h + 160 + 16 * i, t + 160 + 16 * i, 16)) {
            snprintf(msg, len, "XMM%u differs", i);
            return false;
        }
    if ((ld64_le(h + 512) & 3) != (ld64_le(t + 512) & 3) || ld64_le(t + 512) >> 2 ||
        memcmp(h + 464, t + 464, 48) || ld64_le(h + 520) != ld64_le(t + 520)) {
        snprintf(msg, len, "XSTATE_BV host %#" PRIx64 " tcg %#" PRIx64 ", or bytes 464-511/XCOMP_BV",
                 ld64_le(h + 512), ld64_le(t + 512));
        return false;
    }
    return true;
}

static void test_diff_xsave_legacy_region(void)
{
    const char *why = NULL;
    if (!harness_init(&why))
        test_skip("%s", why);
    if (opt_family >= 0 || opt_seed >= 0)
        test_skip("not selected (--family/--seed)");
    uint64_t in_addr = BASE + DATA_OFF + XS_IN, out = BASE + DATA_OFF + XS_OUT;
    uint64_t out64 = BASE + DATA_OFF + XS_OUT64;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        Gen g;
        memset(&g, 0, sizeof(g));
        g.rng = 0x9e3779b97f4a7c15ull * seed;
        uint8_t *R = H.region;
        memset(R, 0, REGION);
        unsigned n = build_prologue(R + CODE_OFF);
        uint64_t start = BASE + CODE_OFF + n;
        uint8_t seq[] = {
            0x48, 0x0f, 0xae, 0x0c, 0x25, 0, 0, 0, 0,   /* fxrstor64 [in] */
            0x0f, 0xae, 0x24, 0x25, 0, 0, 0, 0,         /* xsave [out] */
            0x48, 0x0f, 0xae, 0x24, 0x25, 0, 0, 0, 0,   /* xsave64 [out64] */
        };
        st32_le(seq + 5, (uint32_t)in_addr);
        st32_le(seq + 13, (uint32_t)out);
        st32_le(seq + 22, (uint32_t)out64);
        memcpy(R + CODE_OFF + n, seq, sizeof(seq));
        n += sizeof(seq);
        unsigned seq_end = n;
        build_epilogue(R + CODE_OFF + n);
        uint64_t regs[16];
        for (int i = 0; i < 16; i++)
            regs[i] = rnd(&g);
        regs[R_EAX] = (regs[R_EAX] & ~0xffffffffull) | 3;   /* RFBM = 3; upper half ignored */
        regs[R_EDX] &= ~0xffffffffull;
        regs[R_ESP] = BASE + STACK_TOP - 0x100;
        for (int i = 0; i < 16; i++)
            st64_le(R + STATE_IN + 8 * i, regs[i]);
        st64_le(R + STATE_IN + 128, 2);
        for (unsigned i = 0; i < DATA_LEN; i++)
            R[DATA_OFF + i] = (uint8_t)rnd(&g);
        /* The input image: canonical FCW, FSW without exception flags, any tags and registers. */
        uint8_t *img = R + DATA_OFF + XS_IN;
        st16_le(img, (uint16_t)(0x40 | (rnd(&g) & 0xf3f)));
        st16_le(img + 2, (uint16_t)(rnd(&g) & 0x7f00));
        img[5] = 0;
        st16_le(img + 6, (uint16_t)(rnd(&g) & 0x7ff));
        /* FIP/FDP are linear addresses: canonical (this host keeps only bits 55:0 of a
         * non-canonical FIP through FXRSTOR64/FXSAVE64, a quirk unrelated to XSAVE). */
        st64_le(img + 8, (uint64_t)((int64_t)(rnd(&g) << 16) >> 16));
        st64_le(img + 16, (uint64_t)((int64_t)(rnd(&g) << 16) >> 16));
        st32_le(img + 24, (uint32_t)(rnd(&g) & 0xffff));
        st32_le(img + 28, 0);
        /* Output headers: XSTATE_BV and XCOMP_BV start at 0 so both sides write the same. */
        memset(R + DATA_OFF + XS_OUT + 512, 0, 64);
        memset(R + DATA_OFF + XS_OUT64 + 512, 0, 64);
        memcpy(H.ram + GUEST_PHYS, R, REGION);
        H.ram[GUEST_PHYS + CODE_OFF + seq_end] = 0xf4;
        if (!native_run(&why)) {
            CHECK_MSG(false, "seed %" PRIu64 ": %s", seed, why);
            return;
        }
        NativeResult nat = *(NativeResult *)(R + RESULT);
        if (nat.status == 2 && nat.trapno == EXCP_UD)
            test_skip("the host cannot run XSAVE (#UD: no XSAVE or not enabled by its kernel)");
        CHECK_MSG(nat.status == 1, "seed %" PRIu64 ": host faulted (trap %u)", seed, nat.trapno);
        tcg_setup(regs, 2, start);
        H.cpu->cr4 |= CR4_OSXSAVE;
        H.cpu->xcr0 = 3;
        H.cpu->stop_on_exception = true;
        TCGRunResult rr = tcg_cpu_exec(H.cpu, 1000);
        CHECK_MSG(rr == TCG_RUN_HALTED, "seed %" PRIu64 ": tcg stopped with vector %d at %#" PRIx64,
                  seed, H.cpu->stopped_vec, H.cpu->rip);
        char msg[160];
        for (int w = 0; w < 2; w++) {
            unsigned off = DATA_OFF + (w ? XS_OUT64 : XS_OUT);
            CHECK_MSG(xsave_fields_match(R + off, H.ram + GUEST_PHYS + off, w, msg, sizeof(msg)),
                      "seed %" PRIu64 ", %s: %s", seed, w ? "XSAVE64" : "XSAVE", msg);
        }
    }
}
#else
static void test_diff_xsave_legacy_region(void) { test_skip("needs an x86-64 Linux host"); }
#endif

static void run_family(int family)
{
    const char *why = NULL;
    if (!harness_init(&why))
        test_skip("%s", why);
    if (opt_family >= 0 && opt_family != family)
        test_skip("not selected (--family %s)", fam_names[opt_family]);
    if (opt_seed >= 0) {
        CHECK_MSG(diff_one(family, (uint64_t)opt_seed, true), "seed %ld differs", opt_seed);
        return;
    }
    int bad = 0;
    long first_bad = -1;
    for (long s = opt_first; s < opt_first + opt_count; s++) {
        if (!diff_one(family, (uint64_t)s, false)) {
            if (first_bad < 0)
                first_bad = s;
            if (++bad >= 5)
                break;
        }
    }
    CHECK_MSG(bad == 0, "%d mismatching sequence(s), first at seed %ld "
              "(reproduce: build/tests/unit/test-tcg-diff --family %s --seed %ld)",
              bad, first_bad, fam_names[family], first_bad);
}

static void test_diff_alu(void) { run_family(FAM_ALU); }
static void test_diff_shift(void) { run_family(FAM_SHIFT); }
static void test_diff_muldiv(void) { run_family(FAM_MULDIV); }
static void test_diff_string(void) { run_family(FAM_STRING); }
static void test_diff_bit(void) { run_family(FAM_BIT); }
static void test_diff_mixed(void) { run_family(FAM_MIXED); }
static void test_diff_x87(void) { run_family(FAM_X87); }
static void test_diff_x87_transcendental(void) { run_family(FAM_X87T); }
static void test_diff_sse(void) { run_family(FAM_SSE); }
static void test_diff_ssse3_sse41(void) { run_family(FAM_SSSE3_SSE41); }
static void test_diff_0f3a(void)
{
    /* Some operand combinations (0.5 under round-to-nearest, a needle cut off by the
     * string's end) first show up after a few hundred seeds; the sequences are cheap. */
    long saved = opt_count;
    if (opt_seed < 0 && opt_count == 300)
        opt_count = 2000;
    run_family(FAM_0F3A);
    opt_count = saved;
}

static const TestCase cases[] = {
    TEST_CASE(test_diff_alu),
    TEST_CASE(test_diff_shift),
    TEST_CASE(test_diff_muldiv),
    TEST_CASE(test_diff_string),
    TEST_CASE(test_diff_bit),
    TEST_CASE(test_diff_mixed),
    TEST_CASE(test_diff_x87),
    TEST_CASE(test_diff_x87_transcendental),
    TEST_CASE(test_diff_sse),
    TEST_CASE(test_diff_ssse3_sse41),
    TEST_CASE(test_diff_0f3a),
    TEST_CASE(test_diff_xsave_legacy_region),
    { 0 }
};

int main(int argc, char **argv)
{
    char *rest[8];
    int nrest = 0;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            opt_seed = strtol(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--first") && i + 1 < argc) {
            opt_first = strtol(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--trunc") && i + 1 < argc) {
            opt_trunc = strtol(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
            opt_count = strtol(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--family") && i + 1 < argc) {
            const char *f = argv[++i];
            for (int k = 0; k < FAM__COUNT; k++)
                if (!strcmp(f, fam_names[k]))
                    opt_family = k;
            if (opt_family < 0) {
                fprintf(stderr, "unknown family %s\n", f);
                return 2;
            }
        } else if (nrest < 7) {
            rest[nrest++] = argv[i];
        }
    }
    rest[nrest] = NULL;
    return test_main("tcg-diff", cases, nrest, rest);
}
