/*
 * String instructions with REP/REPE/REPNE (SDM 2B "REP/REPE/REPZ/REPNE/
 * REPNZ", "MOVS", "CMPS", "SCAS", "LODS", "STOS", "INS", "OUTS") and port
 * I/O with the IOPL / TSS I/O-permission-bitmap check (SDM 1 §18.5).
 *
 * A repeated instruction runs at most STRING_BUDGET iterations per visit
 * and then ends the block with RIP still on it, so interrupts and kicks are
 * seen; registers are updated every iteration, so a fault in the middle
 * restarts correctly.
 */
#include "accel/tcg/ops.h"
#include "kestrel/ioport.h"
#include "kestrel/lock.h"
#include "kestrel/log.h"

#define STRING_BUDGET 4096

bool io_permitted(TCGCPU *cpu, uint16_t port, unsigned len)
{
    if (!cpu->pe)
        return true;
    unsigned iopl = (cpu->eflags & FL_IOPL) >> 12;
    if (!cpu->vm86 && cpu->cpl <= iopl)
        return true;
    SegCache *tr = &cpu->tr;
    unsigned type = SEGA_TYPE(tr->attr);
    if ((type != 9 && type != 11) || tr->limit < 0x67)
        return false;
    uint32_t iobase = (uint32_t)sys_ld(cpu, tr->base + 0x66, 1);
    uint32_t off = iobase + port / 8;
    if (off + 1 > tr->limit)
        return false;
    uint32_t bits = (uint32_t)sys_ld(cpu, tr->base + off, 1);
    uint32_t mask = ((1u << len) - 1) << (port & 7);
    return (bits & mask) == 0;
}

uint32_t cpu_io_read(TCGCPU *cpu, uint16_t port, int sz)
{
    bool lock = bql_lock_unless_held();
    uint32_t v = ioport_read(port, 1u << sz);
    bql_unlock_if_taken(lock);
    LOG(LOG_IOPORT, "tcg: in%c %#x -> %#x\n", "bwl"[sz], port, v);
    tcg_after_device_access(cpu);
    return v;
}

void cpu_io_write(TCGCPU *cpu, uint16_t port, int sz, uint32_t v)
{
    LOG(LOG_IOPORT, "tcg: out%c %#x <- %#x\n", "bwl"[sz], port, v);
    bool lock = bql_lock_unless_held();
    ioport_write(port, v, 1u << sz);
    bql_unlock_if_taken(lock);
    tcg_after_device_access(cpu);
}

int helper_in_out(TCGCPU *cpu, const DecodedOp *op)
{
    uint16_t port = op->sub ? (uint16_t)op->imm : (uint16_t)cpu->regs[R_EDX];
    int sz = op->sz;
    if (!io_permitted(cpu, port, 1u << sz))
        raise_exception_err(cpu, EXCP_GP, 0);
    /* I/O breakpoint: a #DB trap after the access, from a block of this instruction alone. */
    uint32_t io_hits = 0;
    if (unlikely(cpu->bp_io) && (io_hits = dbg_io_hits(cpu, port, 1u << sz)))
        dbg_single_insn(cpu);
    if (op->idx == OP_IN)
        reg_set(cpu, R_EAX, sz, cpu_io_read(cpu, port, sz));
    else
        cpu_io_write(cpu, port, sz, (uint32_t)reg_get(cpu, R_EAX, sz));
    if (unlikely(io_hits))
        dbg_io_record(cpu, io_hits);
    /*
     * A port write that resets or powers off the machine (0xCF9, 0x92,
     * PM1_CNT) asks the CPUs to stop: do so right after this instruction,
     * as hardware would, not at the end of the block.
     */
    if (__atomic_load_n(&cpu->exit_request, __ATOMIC_ACQUIRE))
        return H_NEXT_END;
    return H_NEXT;
}

/*
 * A repeated instruction stops before its last iteration (to be resumed):
 * an event taken now pushes RF=1, so that an instruction breakpoint on it
 * does not fire again when it resumes (SDM 3A §17.3.1.1).  The run loop
 * clears RF again before the next instruction.
 */
static int string_pause(TCGCPU *cpu)
{
    cpu->eflags |= FL_RF;
    __atomic_store_n(&cpu->chain_break, 1, __ATOMIC_RELAXED);
    return H_END;
}

/* SI/DI/CX updates have the address size; a 32-bit update zero-extends. */
static inline void adv(TCGCPU *cpu, int r, int asz, int64_t step)
{
    reg_set(cpu, r, asz, cpu->regs[r] + (uint64_t)step);
}

/*
 * REP MOVS / REP STOS going up through RAM: whole runs of elements within
 * one source and one destination page at a time, through host pointers.
 * Each run is what the element loop would do with no fault possible in
 * its middle (one page each side, translated before anything is written,
 * segment limits checked for the run), so registers are updated per run.
 * Returns H_NEXT when RCX reached zero, H_END to resume later, or -1 to
 * let the element loop take over (page-straddling element, MMIO, a page
 * holding translated code, descending addresses).
 */
#define STRING_BULK_PAGES 64

static int string_bulk(TCGCPU *cpu, const DecodedOp *op, int kind)
{
    int sz = op->sz;
    unsigned esz = 1u << sz;
    uint64_t am = size_mask[op->asz];
    for (int pages = 0; pages < STRING_BULK_PAGES; pages++) {
        uint64_t cnt = cpu->regs[R_ECX] & am;
        if (cnt == 0)
            return H_NEXT;
        uint64_t di = cpu->regs[R_EDI] & am, si = cpu->regs[R_ESI] & am;
        uint64_t n = cnt;
        /* No wrap of the address-size offset inside a run. */
        if ((am - di) / esz + 1 < n)
            n = (am - di) / esz + 1;
        if (kind == OP_MOVS && (am - si) / esz + 1 < n)
            n = (am - si) / esz + 1;
        uint64_t dlin = seg_lin(cpu, SEG_ES, di, esz, ACC_WRITE);
        if ((0x1000 - (dlin & 0xfff)) / esz < n)
            n = (0x1000 - (dlin & 0xfff)) / esz;
        uint64_t slin = 0;
        if (kind == OP_MOVS) {
            slin = seg_lin(cpu, op->seg, si, esz, ACC_READ);
            if ((0x1000 - (slin & 0xfff)) / esz < n)
                n = (0x1000 - (slin & 0xfff)) / esz;
        }
        if (n == 0)
            return -1;
        uint64_t bytes = n * esz;
        /* Segment limits for the whole run (no-ops for flat and 64-bit segments). */
        (void)seg_lin(cpu, SEG_ES, di, (unsigned)bytes, ACC_WRITE);
        const uint8_t *src = NULL;
        if (kind == OP_MOVS) {
            (void)seg_lin(cpu, op->seg, si, (unsigned)bytes, ACC_READ);
            src = tlb_host_ptr(cpu, slin, ACC_READ);
            if (!src)
                return -1;
        }
        uint8_t *dst = tlb_host_ptr(cpu, dlin, ACC_WRITE);
        if (!dst)
            return -1;
        if (kind == OP_STOS) {
            uint64_t v = cpu->regs[R_EAX];
            if (sz == 0)
                memset(dst, (int)(v & 0xff), bytes);
            else
                for (uint64_t i = 0; i < n; i++)
                    st_raw(dst + i * esz, sz, v);
        } else if (dst + bytes <= src || src + bytes <= dst) {
            memcpy(dst, src, bytes);
        } else {
            /* Overlapping: element by element upwards, as the instruction does. */
            for (uint64_t i = 0; i < n; i++)
                st_raw(dst + i * esz, sz, ld_raw(src + i * esz, sz));
        }
        reg_set(cpu, R_EDI, op->asz, cpu->regs[R_EDI] + bytes);
        if (kind == OP_MOVS)
            reg_set(cpu, R_ESI, op->asz, cpu->regs[R_ESI] + bytes);
        reg_set(cpu, R_ECX, op->asz, cpu->regs[R_ECX] - n);
        if (__atomic_load_n(&cpu->exit_request, __ATOMIC_RELAXED))
            break;
    }
    return (cpu->regs[R_ECX] & am) == 0 ? H_NEXT : string_pause(cpu);
}

int helper_string(TCGCPU *cpu, const DecodedOp *op)
{
    /*
     * The kind is read once: a store of this very instruction can invalidate
     * the running block, and tb_kill() then rewrites every op's idx to
     * OP_EXIT (tb.c) while we are still looping.  The instruction already
     * decoded goes on as decoded; the block ends after it.
     */
    const int kind = op->idx;
    int sz = op->sz;
    uint64_t am = size_mask[op->asz];
    int64_t step = (cpu->eflags & FL_DF) ? -(int64_t)(1u << sz) : (int64_t)(1u << sz);
    bool rep = op->pfx & (PFX_REP | PFX_REPNE);
    /* For CMPS/SCAS F3 is REPE (stop when ZF=0), F2 REPNE (stop when ZF=1). */
    bool cond_op = kind == OP_CMPS || kind == OP_SCAS;
    bool repe = op->pfx & PFX_REP;
    uint16_t port = (uint16_t)cpu->regs[R_EDX];

    if ((kind == OP_INS || kind == OP_OUTS) && !io_permitted(cpu, port, 1u << sz))
        raise_exception_err(cpu, EXCP_GP, 0);
    /*
     * With I/O or data breakpoints, INS/OUTS run from a block of their own,
     * so that a hit is reported after its iteration instead of rerunning the
     * port access (debug.c).
     */
    uint32_t io_hits = 0;
    if (unlikely(cpu->bp_io | cpu->bp_data) && (kind == OP_INS || kind == OP_OUTS)) {
        dbg_single_insn(cpu);
        if (cpu->bp_io)
            io_hits = dbg_io_hits(cpu, port, 1u << sz);
    }
    /* With TF, one iteration per single-step trap (below): no bulk runs. */
    if (rep && step > 0 && (kind == OP_MOVS || kind == OP_STOS) && !(cpu->eflags & FL_TF)) {
        int r = string_bulk(cpu, op, kind);
        if (r >= 0)
            return r;
    }

    for (unsigned budget = STRING_BUDGET; ; budget--) {
        if (rep && (cpu->regs[R_ECX] & am) == 0)
            return H_NEXT;
        uint64_t si = cpu->regs[R_ESI] & am, di = cpu->regs[R_EDI] & am;
        uint64_t a, b;
        switch (kind) {
        case OP_MOVS:
            a = seg_ld(cpu, op->seg, si, sz);
            seg_st(cpu, SEG_ES, di, sz, a);
            adv(cpu, R_ESI, op->asz, step);
            adv(cpu, R_EDI, op->asz, step);
            break;
        case OP_CMPS:
            a = seg_ld(cpu, op->seg, si, sz);
            b = seg_ld(cpu, SEG_ES, di, sz);
            alu_op(cpu, 7, a, b, sz);
            adv(cpu, R_ESI, op->asz, step);
            adv(cpu, R_EDI, op->asz, step);
            break;
        case OP_STOS:
            seg_st(cpu, SEG_ES, di, sz, cpu->regs[R_EAX]);
            adv(cpu, R_EDI, op->asz, step);
            break;
        case OP_LODS:
            reg_set(cpu, R_EAX, sz, seg_ld(cpu, op->seg, si, sz));
            adv(cpu, R_ESI, op->asz, step);
            break;
        case OP_SCAS:
            b = seg_ld(cpu, SEG_ES, di, sz);
            alu_op(cpu, 7, reg_get(cpu, R_EAX, sz), b, sz);
            adv(cpu, R_EDI, op->asz, step);
            break;
        case OP_INS: {
            /* Probe the destination before the (side-effecting) port read. */
            uint64_t lin = seg_lin(cpu, SEG_ES, di, 1u << sz, ACC_WRITE);
            lin_probe_write(cpu, lin, 1u << sz);
            a = cpu_io_read(cpu, port, sz);
            lin_st(cpu, lin, sz, a);
            adv(cpu, R_EDI, op->asz, step);
            break;
        }
        default:    /* OUTS */
            a = seg_ld(cpu, op->seg, si, sz);
            cpu_io_write(cpu, port, sz, (uint32_t)a);
            adv(cpu, R_ESI, op->asz, step);
            break;
        }
        if (unlikely(io_hits))
            dbg_io_record(cpu, io_hits);
        if (!rep)
            return H_NEXT;
        adv(cpu, R_ECX, op->asz, -1);
        if (cond_op) {
            bool zf = cc_compute_all(cpu) & CC_Z;
            if (repe ? !zf : zf)
                return H_NEXT;
        }
        if ((cpu->regs[R_ECX] & am) == 0)
            return H_NEXT;
        /*
         * A data or I/O breakpoint hit: #DB after this iteration (SDM 3A
         * §17.3.1.2); with TF the single-step trap comes after each
         * iteration, RIP still on the instruction (SDM 3A §17.3.1.4).
         */
        if (budget <= 1 || cpu->exit_request || unlikely(cpu->dr6_pending | (cpu->eflags & FL_TF)))
            return string_pause(cpu);     /* resume this instruction later */
    }
}
