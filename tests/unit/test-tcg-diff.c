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
 * Usage: test-tcg-diff [--family F] [--seed N] [--count N]
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

enum { FAM_ALU, FAM_SHIFT, FAM_MULDIV, FAM_STRING, FAM_BIT, FAM_MIXED, FAM__COUNT };
static const char *const fam_names[FAM__COUNT] = { "alu", "shift", "muldiv", "string", "bit", "mixed" };

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
} Gen;

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

/* Same with the memory operand [r15 + disp8]. */
static void emit_rm(Gen *g, int sz, const uint8_t *op, int oplen, int reg)
{
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

static void generate(Gen *g, int family, uint64_t seed)
{
    memset(g, 0, sizeof(*g));
    g->rng = seed * 0x9e3779b97f4a7c15ull + 0x1234567ull + (uint64_t)family;
    g->family = family;
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
static long opt_seed = -1, opt_count = 300;

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
    s.cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET | X86_CR0_WP;
    s.cr3 = 0x1000;
    s.cr4 = X86_CR4_PAE;
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
    for (long s = 0; s < opt_count; s++) {
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

static const TestCase cases[] = {
    TEST_CASE(test_diff_alu),
    TEST_CASE(test_diff_shift),
    TEST_CASE(test_diff_muldiv),
    TEST_CASE(test_diff_string),
    TEST_CASE(test_diff_bit),
    TEST_CASE(test_diff_mixed),
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
