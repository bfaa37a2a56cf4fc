/*
 * Debug registers of the software CPU: MOV to/from DR0-DR7, instruction,
 * data and I/O breakpoints, and the #DB they raise.
 *
 * Intel SDM vol. 3A ch. 17 "Debug, Branch Profile, TSC, and Intel Resource
 * Director Technology Features" (ch. 18 in later editions): §17.2 the
 * registers, §17.3.1 the #DB conditions, §17.3.1.1 RF; SDM 2A "MOV—Move
 * to/from Debug Registers"; SDM 3A §6.9 Table 6-2 (priorities).
 *
 * Nothing here runs while DR7 enables no breakpoint: the masks decoded from
 * DR7 (cpu->bp_exec/bp_data/bp_io) are all zero and every hook is one test.
 *   - Instruction breakpoints: while one is enabled, block lookups carry
 *     TB_FLAG_BP; the run loop checks the block's start (a fault before the
 *     instruction, unless RFLAGS.RF) and, when a breakpoint lies inside the
 *     block, runs one-instruction blocks until it is reached.  Such blocks
 *     get no links, so every one passes the check (tcg-accel.c).
 *   - Data breakpoints: TLB entries of pages holding a watched range carry
 *     TLB_FLAG_WATCH, so accesses to them take the slow path (mmu.c), which
 *     calls dbg_data_access before the access.  A hit inside a block of
 *     several instructions unwinds and reruns that instruction alone (it
 *     is restartable, as for #PF); a hit in a one-instruction block is
 *     recorded in dr6_pending and reported by a #DB trap once it completes.
 *     A REP string instruction stops after the iteration that hit.
 *   - I/O breakpoints (R/W = 10 with CR4.DE = 1): checked by IN/OUT/INS/OUTS
 *     (ops-string.c) the same way.
 *   - The traps of one instruction (data, I/O, single step) make one #DB
 *     (tcg-accel.c); after MOV SS/POP SS they wait one more instruction
 *     (SDM 3A §6.8.3).  With TF a REP string traps after every iteration.
 *   - RFLAGS.RF: set from IRET/task-switch images and by a REP string that
 *     pauses mid-way; the run loop clears it once the next instruction
 *     passed the breakpoint check (SDM 3A §17.3.1.1).
 *
 * Choices where the SDM leaves freedom:
 *   - R/W = 10 with CR4.DE = 0 is undefined (§17.2.4): no breakpoint.
 *   - LEN of an instruction breakpoint must be 00: any other LEN still
 *     matches the one byte at DRi.
 *   - B0-B3 are set only for enabled breakpoints, and every #DB rewrites
 *     them ("certain debug exceptions may clear bits 0-3", §17.2.3); BD,
 *     BS and BT accumulate until software clears them.
 *   - A data breakpoint hit while an event is delivered (e.g. the frame
 *     pushed on a watched stack) is reported before the handler's first
 *     instruction; hits while the #DB itself is delivered are dropped.
 *   - A task switch clears L0-L3 only: the current SDM says nothing of LE.
 * Not modelled: DR7.LE/GE (exact-match hints; nothing to do) and DR6.BT
 * (the TSS T bit: no #DB on a task switch).
 */
#include "accel/tcg/ops.h"
#include "kestrel/log.h"

/* DR7 fields of breakpoint i (SDM 3A §17.2.4, Figure 17-2). */
static inline unsigned dr7_rw(uint64_t dr7, int i)
{
    return (unsigned)(dr7 >> (16 + 4 * i)) & 3;
}

/* LEN: 00 = 1 byte, 01 = 2, 11 = 4, 10 = 8 (8 in every mode on current CPUs). */
static inline unsigned dr7_len(uint64_t dr7, int i)
{
    unsigned l = (unsigned)(dr7 >> (18 + 4 * i)) & 3;
    return l == 2 ? 8 : l + 1;
}

/* The linear address of breakpoint i; its low bits within LEN are ignored. */
static inline uint64_t bp_addr(const TCGCPU *cpu, int i, unsigned len)
{
    uint64_t a = cpu->dr[i] & ~(uint64_t)(len - 1);
    return cpu->lma ? a : (uint32_t)a;
}

void cpu_debug_update(TCGCPU *cpu)
{
    uint64_t dr7 = cpu->dr[7];
    uint8_t ex = 0, data = 0, io = 0;
    for (int i = 0; i < 4; i++) {
        if (!((dr7 >> (2 * i)) & 3))
            continue;               /* neither Li nor Gi */
        switch (dr7_rw(dr7, i)) {
        case 0: ex |= (uint8_t)(1u << i); break;
        case 2: io |= (uint8_t)(1u << i); break;
        default: data |= (uint8_t)(1u << i); break;
        }
    }
    bool flush = data || cpu->bp_data;
    cpu->bp_exec = ex;
    cpu->bp_data = data;
    cpu->bp_io = io;
    cpu->tb_flags_extra = (uint8_t)((cpu->tb_flags_extra & ~TB_FLAG_BP) | (ex ? TB_FLAG_BP : 0));
    /* TLB_FLAG_WATCH marks depend on DR0-DR3 and DR7. */
    if (flush)
        tlb_flush(cpu, true);
}

/* ---- Instruction breakpoints (SDM 3A §17.3.1.1) ---- */

void dbg_check_insn(TCGCPU *cpu, uint64_t lin)
{
    /* RF=1: the first instruction after an IRET with RF set ignores them. */
    if (cpu->eflags & FL_RF)
        return;
    uint32_t hits = 0;
    for (int i = 0; i < 4; i++)
        if ((cpu->bp_exec >> i) & 1 && bp_addr(cpu, i, 1) == lin)
            hits |= 1u << i;
    if (!hits)
        return;
    LOG(LOG_INT, "tcg: cpu%d instruction breakpoint at %#" PRIx64 " (B=%#x)\n", cpu->id, lin, hits);
    cpu->dr[6] = (cpu->dr[6] & ~(uint64_t)0xf) | hits;
    raise_exception(cpu, EXCP_DB);
}

bool dbg_insn_bp_inside(const TCGCPU *cpu, uint64_t lin, uint32_t size)
{
    for (int i = 0; i < 4; i++) {
        if (!((cpu->bp_exec >> i) & 1))
            continue;
        uint64_t a = bp_addr(cpu, i, 1);
        if (a > lin && a - lin < size)
            return true;
    }
    return false;
}

/* ---- Data and I/O breakpoints ---- */

uint64_t dbg_tlb_watch(TCGCPU *cpu, uint64_t page, int acc)
{
    for (int i = 0; i < 4; i++) {
        if (!((cpu->bp_data >> i) & 1))
            continue;
        if (acc == ACC_READ && dr7_rw(cpu->dr[7], i) != 3)
            continue;               /* a write breakpoint leaves reads fast */
        unsigned len = dr7_len(cpu->dr[7], i);
        if ((bp_addr(cpu, i, len) & TLB_PAGE_MASK) == (page & TLB_PAGE_MASK))
            return TLB_FLAG_WATCH;  /* aligned ranges never straddle a page */
    }
    return 0;
}

void dbg_single_insn(TCGCPU *cpu)
{
    const TranslatedBlock *tb = cpu->cur_tb;
    if (!tb || tb->n_ops <= 1)
        return;
    cpu->dbg_restart = true;
    cpu->run_events = 1;
    cpu->excp_vec = EXCP_DBG_RESTART;
    longjmp(cpu->jmp, 1);
}

static void dbg_record(TCGCPU *cpu, uint32_t hits)
{
    /* Not within a one-instruction block: rerun this instruction alone. */
    dbg_single_insn(cpu);
    dbg_io_record(cpu, hits);
}

void dbg_data_access(TCGCPU *cpu, uint64_t lin, unsigned len, int acc)
{
    uint32_t hits = 0;
    if (!cpu->lma)
        lin = (uint32_t)lin;
    for (int i = 0; i < 4; i++) {
        if (!((cpu->bp_data >> i) & 1))
            continue;
        /* R/W 01: writes only; 11: reads and writes (SDM 3A §17.2.4). */
        if (acc != ACC_WRITE && dr7_rw(cpu->dr[7], i) != 3)
            continue;
        unsigned n = dr7_len(cpu->dr[7], i);
        uint64_t a = bp_addr(cpu, i, n);
        if (lin < a + n && a < lin + len)
            hits |= 1u << i;
    }
    if (hits)
        dbg_record(cpu, hits);
}

uint32_t dbg_io_hits(TCGCPU *cpu, uint16_t port, unsigned len)
{
    if (!(cpu->cr4 & CR4_DE))
        return 0;                   /* R/W = 10 without CR4.DE: undefined, none */
    uint32_t hits = 0;
    for (int i = 0; i < 4; i++) {
        if (!((cpu->bp_io >> i) & 1))
            continue;
        unsigned n = dr7_len(cpu->dr[7], i);
        uint64_t a = cpu->dr[i] & 0xffff & ~(uint64_t)(n - 1);
        if (port < a + n && a < (uint64_t)port + len)
            hits |= 1u << i;
    }
    return hits;
}

void dbg_io_record(TCGCPU *cpu, uint32_t hits)
{
    cpu->dr6_pending |= hits;
    cpu->run_events = 1;
    __atomic_store_n(&cpu->chain_break, 1, __ATOMIC_RELAXED);
}

/*
 * The #DB trap after an instruction (or an event delivery): data and I/O
 * breakpoint hits in dr6_bits B0-B3, single step in BS.  One exception
 * reports them all (SDM 3A §17.3.1: the conditions of one instruction are
 * combined in DR6).
 */
void dbg_deliver_trap(TCGCPU *cpu, uint32_t dr6_bits)
{
    cpu->dr6_pending = 0;
    cpu->dr[6] = (cpu->dr[6] & ~(uint64_t)0xf) | dr6_bits;
    cpu->excp_vec = EXCP_DB;
    cpu->excp_err = 0;
    cpu->excp_has_err = false;
    cpu->excp_soft = false;
    cpu_deliver_pending_exception(cpu);
    /* Hits while the #DB frame itself was pushed are not reported again. */
    cpu->dr6_pending = 0;
}

/* ---- MOV to/from DRn (SDM 2A "MOV—Move to/from Debug Registers") ---- */
int helper_mov_dr(TCGCPU *cpu, const DecodedOp *op)
{
    int n = op->reg;
    if (n > 7)
        raise_exception(cpu, EXCP_UD);
    /* Checked in this order: privilege, DR4/DR5 with CR4.DE, then general detect. */
    if (cpu->vm86 || (cpu->pe && cpu->cpl != 0))
        raise_exception_err(cpu, EXCP_GP, 0);
    if ((n == 4 || n == 5) && (cpu->cr4 & CR4_DE))
        raise_exception(cpu, EXCP_UD);
    if (cpu->dr[7] & DR7_GD) {
        /* §17.2.4: a fault before the access, DR6.BD; delivery clears GD. */
        cpu->dr[6] = (cpu->dr[6] & ~(uint64_t)0xf) | DR6_BD;
        raise_exception(cpu, EXCP_DB);
    }
    if (n == 4 || n == 5)
        n += 2;                     /* CR4.DE=0: aliases of DR6 and DR7 */
    int sz = cpu->code64 ? 3 : 2;
    if (op->sub == 0) {
        reg_set(cpu, op->rm, sz, cpu->dr[n]);
        return H_NEXT;
    }
    uint64_t v = reg_get(cpu, op->rm, sz);
    if (n == 6) {
        if (v >> 32)
            raise_exception_err(cpu, EXCP_GP, 0);
        /* Bits 0-3, 13-15 writable; 4-11 and 16-31 read as 1, 12 as 0. */
        v = (v & 0xe00f) | DR6_FIXED;
    } else if (n == 7) {
        if (v >> 32)
            raise_exception_err(cpu, EXCP_GP, 0);
        /* Bits 11, 12, 14, 15 reserved (0; RTM not supported), 10 reads as 1. */
        v = (v & 0xffff23ffu) | DR7_FIXED;
    } else if (!cpu->code64) {
        v = (uint32_t)v;
    }
    cpu->dr[n] = v;
    if (n != 6)
        cpu_debug_update(cpu);
    return H_NEXT_END;
}
