/*
 * The "tcg" accelerator: Kestrel's software x86 CPU behind AccelOps.
 *
 * One thread runs every vCPU round-robin (single_thread), a slice of
 * blocks each.  Interrupts, kicks and memory-map changes are looked at
 * between translated blocks.  The big lock is held only around device
 * access (port and MMIO); guest RAM is reached through host pointers.
 *
 * Interrupts come from the userspace PIC/IOAPIC/local APICs
 * (include/kestrel/irqchip.h), which the board creates for this engine:
 * they kick a CPU when it has work, the run loop then asks apic_pending()
 * at a block boundary (INIT/SIPI/NMI always, INTR when IF allows) and acks
 * the vector.  Standalone test CPUs may plug their own source in through
 * tcg_set_interrupt_controller() (tcg-internal.h).
 */
#include "accel/tcg/tcg-internal.h"
#include "accel/tcg/ops.h"
#include "kestrel/accel.h"
#include "kestrel/irqchip.h"
#include "kestrel/lock.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"

#define SLICE_BLOCKS 20000

typedef struct TCGState {
    Machine *m;
    GPtrArray *cpus;                /* TCGCPU* by id */
    MemoryListener listener;
    int flush_pending;              /* memory map changed: flush TLBs and blocks */
    AddressSpace *listened;         /* where the listener is registered */
} TCGState;

static TCGState *tcg_state;
static TCGInterruptController tcg_ic;
static int gsi_levels[MACHINE_NUM_GSI];

/*
 * Per-CPU APIC event state, kept here rather than in TCGCPU because only a
 * machine's CPUs have an APIC.  event_check is set by the irqchip's kick
 * (any thread); wait_sipi marks an AP parked after INIT (SDM 3A §8.4.2).
 */
#define TCG_MAX_CPUS 256
static bool tcg_apic_present;
static int tcg_event_check[TCG_MAX_CPUS];
static bool tcg_wait_sipi[TCG_MAX_CPUS];

TranslatedBlock *tcg_translate(TCGCPU *cpu, uint64_t lin_pc, uint64_t pc_phys, uint32_t flags,
                               int max_insns);

/* Standalone CPUs (unit tests) are tracked too, so code-page and flush
 * events reach every CPU of this process. */
static GPtrArray *all_cpus;

static void for_each_cpu_tlb_drop_code(uint64_t page)
{
    for (unsigned i = 0; all_cpus && i < all_cpus->len; i++)
        tlb_drop_code_write(all_cpus->pdata[i], page);
}

static void flush_all_cpus_jc(void)
{
    for (unsigned i = 0; all_cpus && i < all_cpus->len; i++) {
        cpu_jc_flush(all_cpus->pdata[i]);
    }
}

static void do_pending_flush(void)
{
    if (!tcg_state || !__atomic_load_n(&tcg_state->flush_pending, __ATOMIC_ACQUIRE) ||
        !__atomic_exchange_n(&tcg_state->flush_pending, 0, __ATOMIC_ACQ_REL))
        return;
    tb_flush_all();
    for (unsigned i = 0; all_cpus && i < all_cpus->len; i++)
        tlb_flush(all_cpus->pdata[i], true);
}

/*
 * INTR may have changed: the run loop asks the controller at the next block
 * boundary.  chain_break goes with it, so that exec.c's chain_direct, which
 * does not look at irq_check, stops at the end of this block too.
 */
static void cpu_request_irq_check(TCGCPU *cpu)
{
    __atomic_store_n(&cpu->irq_check, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&cpu->chain_break, 1, __ATOMIC_RELEASE);
}

void tcg_after_device_access(TCGCPU *cpu)
{
    /* A device access can change the memory map or the interrupt controller's output. */
    cpu_request_irq_check(cpu);
    do_pending_flush();
}

void tcg_raise_interrupt_check(void)
{
    for (unsigned i = 0; all_cpus && i < all_cpus->len; i++) {
        TCGCPU *c = all_cpus->pdata[i];
        __atomic_store_n(&c->exit_request, 1, __ATOMIC_RELEASE);
        cpu_request_irq_check(c);           /* sets chain_break after it */
    }
}

/* ---- interrupt controller hook ---- */
void tcg_set_interrupt_controller(const TCGInterruptController *ic)
{
    if (ic)
        tcg_ic = *ic;
    else
        memset(&tcg_ic, 0, sizeof(tcg_ic));
    for (unsigned i = 0; all_cpus && i < all_cpus->len; i++)
        cpu_request_irq_check(all_cpus->pdata[i]);
}

int tcg_gsi_level(int gsi)
{
    return gsi >= 0 && gsi < MACHINE_NUM_GSI ? gsi_levels[gsi] : 0;
}

int tcg_pending_interrupt(TCGCPU *cpu)
{
    if (!tcg_ic.pending)
        return -1;
    bool lock = bql_lock_unless_held();
    bool p = tcg_ic.pending(tcg_ic.opaque, cpu->id);
    bql_unlock_if_taken(lock);
    return p ? 0 : -1;
}

int tcg_ack_interrupt(TCGCPU *cpu)
{
    bool lock = bql_lock_unless_held();
    int v = tcg_ic.ack ? tcg_ic.ack(tcg_ic.opaque, cpu->id) : -1;
    bql_unlock_if_taken(lock);
    return v;
}

/* ---- block lookup ---- */
uint64_t tcg_link_gen_counter;

/*
 * SDM 3A §5.3: an instruction fetched past the CS limit is #GP(0); a near
 * JMP/CALL/RET/Jcc/LOOP whose target is past the limit faults at the
 * branch itself (2A "JMP": #GP(0)), with its effects undone.  Only for
 * TB_FLAG_CSLIM blocks, which hold one instruction: the whole of it must
 * lie within the limit.  A near branch is recognised by the next RIP not
 * following the previous instruction in the same CS (interrupt delivery
 * clears the record); RIP, RSP and RCX are what a near branch changes.
 */
static void cs_limit_check(TCGCPU *cpu, const TranslatedBlock *tb)
{
    uint64_t limit = cpu->seg[SEG_CS].limit;
    if (cpu->rip <= limit && tb->size - 1 <= limit - cpu->rip) {
        cpu->cslim_undo.valid = true;
        cpu->cslim_undo.cs = cpu->seg[SEG_CS].sel;
        cpu->cslim_undo.rip = cpu->rip;
        cpu->cslim_undo.next_rip = cpu->rip + tb->size;
        cpu->cslim_undo.rsp = cpu->regs[R_ESP];
        cpu->cslim_undo.rcx = cpu->regs[R_ECX];
        return;
    }
    if (cpu->cslim_undo.valid && cpu->cslim_undo.cs == cpu->seg[SEG_CS].sel &&
        cpu->rip != cpu->cslim_undo.next_rip) {
        cpu->rip = cpu->cslim_undo.rip;
        cpu->regs[R_ESP] = cpu->cslim_undo.rsp;
        cpu->regs[R_ECX] = cpu->cslim_undo.rcx;
    }
    cpu->cslim_undo.valid = false;
    raise_exception_err(cpu, EXCP_GP, 0);
}

/*
 * The block to run at CS:RIP: first the links of the block that just ran
 * (cpu->prev_tb, see TranslatedBlock.link), then the jump cache, then the
 * physical-address cache, else translate.  A block found the slow way is
 * recorded as a link of prev_tb.
 */
static inline __attribute__((always_inline))
TranslatedBlock *tb_lookup_flags(TCGCPU *cpu, uint64_t lin, uint32_t flags);
static TranslatedBlock *tb_lookup_bp(TCGCPU *cpu, uint64_t lin, uint32_t flags);

static TranslatedBlock *tb_lookup_cpu(TCGCPU *cpu)
{
    uint32_t flags;
    uint64_t lin = cpu_tb_key(cpu, &flags);
    if (cpu->code64 && unlikely(!canonical(lin)))
        raise_exception_err(cpu, EXCP_GP, 0);     /* branch to a non-canonical RIP */
    if (unlikely(flags & TB_FLAG_BP))
        return tb_lookup_bp(cpu, lin, flags);
    return tb_lookup_flags(cpu, lin, flags);
}

/* With an instruction breakpoint enabled (debug.c): out of the common path. */
static __attribute__((noinline)) TranslatedBlock *tb_lookup_bp(TCGCPU *cpu, uint64_t lin,
                                                               uint32_t flags)
{
    /* Code breakpoint faults come before fetch faults (SDM 3A Table 6-2). */
    dbg_check_insn(cpu, lin);
    TranslatedBlock *tb = tb_lookup_flags(cpu, lin, flags);
    /* A breakpoint further on in the block: one instruction at a time up to it. */
    if (tb->n_ops > 1 && dbg_insn_bp_inside(cpu, lin, tb->size))
        tb = tb_lookup_flags(cpu, lin, flags | TB_FLAG_ONE);
    return tb;
}

static inline __attribute__((always_inline))
TranslatedBlock *tb_lookup_flags(TCGCPU *cpu, uint64_t lin, uint32_t flags)
{
    TranslatedBlock *prev = cpu->prev_tb;
    TranslatedBlock *tb;
    if (prev && (tb = tb_link_find(cpu, prev, lin, flags))) {
        /* Found in some slot: also into a direct exit's own, the only one exec.c tries. */
        if (cpu->exit_link < TB_LINKS_DIRECT)
            goto found;
        goto linked;
    }
    unsigned h = (unsigned)((lin ^ (lin >> JC_BITS)) & (JC_SIZE - 1));
    tb = cpu->jc[h].tb;
    if (likely(cpu->jc[h].gen == cpu->link_gen && tb && cpu->jc[h].lin == lin &&
               cpu->jc[h].flags == flags && !tb->invalid))
        goto found;

    uint64_t ppage;
    mmu_translate_code(cpu, lin, &ppage, NULL);          /* may raise #PF */
    uint64_t pc_phys = ppage | (lin & 0xfff);
    /* A killed block stays allocated until tb_reap, which counts in tb_free_gen. */
    unsigned ph = (unsigned)((pc_phys ^ (pc_phys >> JC_BITS)) & (JC_SIZE - 1));
    unsigned long free_gen = __atomic_load_n(&tb_free_gen, __ATOMIC_ACQUIRE);
    if (unlikely(cpu->pjc_gen != free_gen)) {
        memset(cpu->pjc, 0, sizeof(cpu->pjc));
        cpu->pjc_gen = free_gen;
    }
    tb = cpu->pjc[ph];
    if (!tb || tb->pc_phys != pc_phys || tb->flags != flags || tb->invalid)
        tb = tb_find(pc_phys, flags);
    if (tb && tb->page2 != UINT64_MAX) {
        uint64_t pa2;
        uint64_t lin2 = (lin & TLB_PAGE_MASK) + 0x1000;
        /* 32- and 16-bit code wraps at 4 GiB, as the decoder did (decode.c fetch8). */
        if ((flags & TB_FLAG_SIZE_MASK) != TB_FLAG_CODE64)
            lin2 = (uint32_t)lin2;
        /* Else the block decoded for this mapping of the next page, if any (tb.h). */
        if (!mmu_translate(cpu, lin2, ACC_EXEC, cpu->mmu_idx, &pa2, false))
            tb = tb_find_page2(pc_phys, flags, UINT64_MAX);
        else if ((pa2 & TLB_PAGE_MASK) != tb->page2)
            tb = tb_find_page2(pc_phys, flags, pa2 & TLB_PAGE_MASK);
    }
    if (!tb) {
        tb = tcg_translate(cpu, lin, pc_phys, flags,
                           (flags & TB_FLAGS_ALONE) ? 1 : TB_MAX_INSNS);
        unsigned newpages = tb_insert(tb);
        if (newpages & 1)
            for_each_cpu_tlb_drop_code(pc_phys & TLB_PAGE_MASK);
        if (newpages & 2)
            for_each_cpu_tlb_drop_code(tb->page2);
    }
    cpu->pjc[ph] = tb;
    cpu->jc[h].lin = lin;
    cpu->jc[h].gen = cpu->link_gen;
    cpu->jc[h].flags = flags;
    cpu->jc[h].tb = tb;
found:
    /*
     * Translating may have flushed the jump cache (and cleared prev_tb).
     * A block run alone (single step, interrupt shadow) gets no links: the
     * run loop must see its end (exec.c's chain_direct relies on this).
     * Nor does a block checked here before it runs (breakpoints, the CS
     * limit below): exec.c's chain path follows links without that check.
     */
    prev = cpu->prev_tb;
    if (prev && !(prev->flags & TB_FLAGS_ALONE) && !(flags & (TB_FLAG_BP | TB_FLAG_CSLIM))) {
        /* A direct slot links only blocks with prev's flags (exec.c END_DIRECT_LINKED64). */
        unsigned k = cpu->exit_link < TB_LINKS_DIRECT && flags == prev->flags ? cpu->exit_link :
                     TB_LINKS_DIRECT + prev->link_next++ % (TB_LINKS - TB_LINKS_DIRECT);
        prev->link[k].lin = lin;
        prev->link[k].gen = cpu->link_gen;
        prev->link[k].flags = flags;
        prev->link[k].tb = tb;
    }
linked:
    if (unlikely(flags & TB_FLAG_CSLIM))
        cs_limit_check(cpu, tb);
    return tb;
}

TranslatedBlock *tcg_chain_lookup(TCGCPU *cpu, TranslatedBlock *prev, unsigned slot, uint64_t lin)
{
    uint32_t flags = prev->flags;
    /* As tb_lookup_flags: no links out of these (nor into them: same flags). */
    if (flags & (TB_FLAGS_ALONE | TB_FLAG_BP))
        return NULL;
    uint64_t ppage;
    mmu_translate_code(cpu, lin, &ppage, NULL);          /* may raise #PF (or #GP) */
    uint64_t pc_phys = ppage | (lin & 0xfff);
    unsigned ph = (unsigned)((pc_phys ^ (pc_phys >> JC_BITS)) & (JC_SIZE - 1));
    if (cpu->pjc_gen != __atomic_load_n(&tb_free_gen, __ATOMIC_ACQUIRE))
        return NULL;
    TranslatedBlock *tb = cpu->pjc[ph];
    if (!tb || tb->pc_phys != pc_phys || tb->flags != flags || tb->invalid) {
        tb = tb_find(pc_phys, flags);
        if (!tb)
            return NULL;
        cpu->pjc[ph] = tb;
    }
    /* The tail page's mapping is checked by the run loop's lookup only. */
    if (tb->page2 != UINT64_MAX)
        return NULL;
    unsigned h = (unsigned)((lin ^ (lin >> JC_BITS)) & (JC_SIZE - 1));
    cpu->jc[h].lin = lin;
    cpu->jc[h].gen = cpu->link_gen;
    cpu->jc[h].flags = flags;
    cpu->jc[h].tb = tb;
    unsigned k = slot < TB_LINKS_DIRECT ? slot :
                 TB_LINKS_DIRECT + prev->link_next++ % (TB_LINKS - TB_LINKS_DIRECT);
    prev->link[k].lin = lin;
    prev->link[k].gen = cpu->link_gen;
    prev->link[k].flags = flags;
    prev->link[k].tb = tb;
    return tb;
}

/* ---- local APIC glue ---- */

/*
 * INIT, SIPI and NMI, which do not depend on RFLAGS.IF (SDM 3A §8.4, §10.6).
 * INIT parks the CPU in wait-for-SIPI; SIPI starts it in real mode at
 * vector << 12.  The APIC base MSR lives in the APIC, so INIT leaves it alone.
 */
static void tcg_apic_events(TCGCPU *cpu)
{
    int id = cpu->id;

    __atomic_store_n(&tcg_event_check[id], 0, __ATOMIC_RELEASE);
    bool took = bql_lock_unless_held();
    unsigned p = apic_pending(id);
    if (p & APIC_PENDING_INIT) {
        apic_take_event(id, APIC_PENDING_INIT);
        cpu_init_state(cpu);
        cpu->halted = true;
        tcg_wait_sipi[id] = true;
        LOG(LOG_INT, "tcg: CPU %d INIT, waiting for SIPI\n", id);
    }
    if (p & APIC_PENDING_SIPI) {
        uint8_t vec = apic_sipi_vector(id);
        apic_take_event(id, APIC_PENDING_SIPI);
        if (tcg_wait_sipi[id]) {
            X86CPUState st;
            cpu_to_x86_state(cpu, &st);
            st.seg[SEG_CS].selector = (uint16_t)(vec << 8);
            st.seg[SEG_CS].base = (uint64_t)vec << 12;
            st.rip = 0;
            cpu_from_x86_state(cpu, &st);
            cpu->halted = false;
            tcg_wait_sipi[id] = false;
            LOG(LOG_INT, "tcg: CPU %d SIPI vector %#x\n", id, vec);
        }
    }
    if (p & APIC_PENDING_NMI) {
        /* Latched: at most one NMI waits while NMIs are blocked (SDM 3A §6.7.1). */
        apic_take_event(id, APIC_PENDING_NMI);
        cpu->nmi_pending = true;
        cpu->run_events = 1;
        LOG(LOG_INT, "tcg: CPU %d NMI%s\n", id, cpu->nmi_blocked ? " (latched: NMIs blocked)" : "");
    }
    bql_unlock_if_taken(took);
}

static void tcg_irqchip_kick(Machine *m, int id)
{
    if ((unsigned)id < TCG_MAX_CPUS)
        __atomic_store_n(&tcg_event_check[id], 1, __ATOMIC_RELEASE);
    for (unsigned i = 0; all_cpus && i < all_cpus->len; i++) {
        TCGCPU *c = all_cpus->pdata[i];
        if (c->id == id) {
            cpu_request_irq_check(c);
        }
    }
    cpus_wake(m);
}

static bool tcg_apic_intr_pending(void *opaque, int id)
{
    return (apic_pending(id) & APIC_PENDING_INTR) != 0;
}

static int tcg_apic_intr_ack(void *opaque, int id)
{
    return apic_ack_intr(id);
}

static uint64_t tcg_read_tsc(int id)
{
    for (unsigned i = 0; all_cpus && i < all_cpus->len; i++) {
        TCGCPU *c = all_cpus->pdata[i];
        if (c->id == id && c->m)
            return cpu_rdtsc(c);
    }
    return 0;
}

bool tcg_has_apic(void)
{
    return tcg_apic_present;
}

uint64_t tcg_apic_base_read(TCGCPU *cpu)
{
    bool took = bql_lock_unless_held();
    uint64_t v = apic_get_base(cpu->id);
    bql_unlock_if_taken(took);
    return v;
}

bool tcg_apic_base_write(TCGCPU *cpu, uint64_t v)
{
    bool took = bql_lock_unless_held();
    bool ok = apic_set_base(cpu->id, v);
    bql_unlock_if_taken(took);
    if (ok)
        cpu->apic_base = v;
    cpu_request_irq_check(cpu);
    return ok;
}

uint64_t tcg_apic_deadline_read(TCGCPU *cpu)
{
    bool took = bql_lock_unless_held();
    uint64_t v = apic_get_tsc_deadline(cpu->id);
    bql_unlock_if_taken(took);
    return v;
}

void tcg_apic_deadline_write(TCGCPU *cpu, uint64_t v)
{
    bool took = bql_lock_unless_held();
    apic_set_tsc_deadline(cpu->id, v);
    bql_unlock_if_taken(took);
}

uint8_t tcg_apic_cr8_read(TCGCPU *cpu)
{
    bool took = bql_lock_unless_held();
    uint8_t v = apic_get_tpr(cpu->id) >> 4;
    bql_unlock_if_taken(took);
    return v;
}

void tcg_apic_cr8_write(TCGCPU *cpu, uint8_t v)
{
    bool took = bql_lock_unless_held();
    apic_set_tpr(cpu->id, (uint8_t)(v << 4));
    bql_unlock_if_taken(took);
    /* A lower priority may unmask a waiting interrupt (SDM 3A §10.8.3.1). */
    cpu_request_irq_check(cpu);
}

/*
 * The run loop's rare events at an instruction boundary, in the order of
 * SDM 3A Table 6-2: a #DB trap of the previous instruction or of the last
 * event delivery (data breakpoint, debug.c), then NMI.  Also turns a debug
 * restart into a one-instruction block.  False: stop_on_exception stopped.
 */
static __attribute__((noinline)) bool tcg_debug_nmi_events(TCGCPU *cpu)
{
    bool movss_shadow = cpu->movss_shadow;
    cpu->movss_shadow = false;
    if (cpu->dr6_pending && movss_shadow) {
        /*
         * MOV SS/POP SS hit a data breakpoint: the #DB waits until after the
         * next instruction (SDM 3A §6.8.3), which runs alone for that.
         */
        cpu->one_insn = true;
    } else if (cpu->dr6_pending) {
        dbg_deliver_trap(cpu, cpu->dr6_pending);
        if (cpu->stopped_vec >= 0)
            return false;
    }
    /* A data breakpoint hit inside a longer block: rerun that instruction alone. */
    if (cpu->dbg_restart) {
        cpu->dbg_restart = false;
        cpu->one_insn = true;
    }
    /*
     * NMI (SDM 3A §6.7.1): whatever IF says, unless an NMI handler runs
     * (blocked until IRET) or in the shadow of MOV SS/POP SS (SDM 3C
     * §24.4.2, "blocking by MOV SS" covers NMIs); not while waiting for SIPI.
     */
    if (cpu->nmi_pending && !cpu->nmi_blocked && !movss_shadow &&
        !((unsigned)cpu->id < TCG_MAX_CPUS && tcg_wait_sipi[cpu->id])) {
        cpu->nmi_pending = false;
        cpu->nmi_blocked = true;
        cpu->halted = false;
        cpu_deliver_interrupt(cpu, EXCP_NMI);
        if (cpu->dr6_pending) {
            dbg_deliver_trap(cpu, cpu->dr6_pending);
            if (cpu->stopped_vec >= 0)
                return false;
        }
    }
    /* Still to do: a latched NMI, or a trap held back by MOV SS (post-exec check). */
    cpu->run_events = cpu->nmi_pending || cpu->dr6_pending;
    return true;
}

/* ---- the run loop of one CPU ---- */
TCGRunResult tcg_cpu_exec(TCGCPU *cpu, long max_blocks)
{
    volatile long n = 0;
    cpu->stopped_vec = -1;
    cpu->prev_tb = NULL;

    if (setjmp(cpu->jmp)) {
        /* An exception unwound the interpreter (or a previous delivery). */
        cpu->prev_tb = NULL;
        /*
         * A delivery counts against the budget like a block: a handler that
         * faults again at once (an #MF on its first FWAIT, a #GP on its own
         * IRET) loops in deliveries alone, and the caller must still get
         * control back.
         */
        n++;
        cpu->cur_tb = NULL;
        if (cpu->excp_vec != EXCP_DBG_RESTART) {
            /* The instruction did not complete: its breakpoint hits do not count. */
            cpu->dr6_pending = 0;
            cpu_deliver_pending_exception(cpu);
            if (cpu->stopped_vec >= 0)
                return TCG_RUN_EXCEPTION;
        }
    }
    while (n < max_blocks) {
        /*
         * Every kick sets chain_break after exit_request, and exec.c's chaining
         * looks only at chain_break: clear it before looking at exit_request,
         * so that a kick racing with this check is seen by one or the other.
         */
        __atomic_store_n(&cpu->chain_break, 0, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&cpu->exit_request, __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&cpu->exit_request, 0, __ATOMIC_RELEASE);
            return TCG_RUN_EXIT;
        }
        do_pending_flush();
        if (tb_reap_batch())
            flush_all_cpus_jc();
        if (cpu->shutdown)
            return TCG_RUN_HALTED;

        if (tcg_apic_present && (unsigned)cpu->id < TCG_MAX_CPUS &&
            __atomic_load_n(&tcg_event_check[cpu->id], __ATOMIC_ACQUIRE))
            tcg_apic_events(cpu);

        bool shadow = cpu->intr_shadow;
        cpu->intr_shadow = false;
        /* With interrupts enabled, the shadowed instruction runs alone. */
        cpu->one_insn = shadow && (cpu->eflags & FL_IF);
        /* Rare events, one test: a pending #DB trap or NMI, a debug restart, MOV SS. */
        if (unlikely(cpu->run_events)) {
            if (!tcg_debug_nmi_events(cpu))
                return TCG_RUN_EXCEPTION;
        }
        /* The controller is consulted only when something may have changed INTR
         * (set_irq, a device access, a kick), so the lock is not taken per block. */
        if (!shadow && (cpu->eflags & FL_IF) &&
            __atomic_load_n(&cpu->irq_check, __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&cpu->irq_check, 0, __ATOMIC_RELEASE);
            if (tcg_pending_interrupt(cpu) >= 0) {
                int vec = tcg_ack_interrupt(cpu);
                cpu_request_irq_check(cpu);     /* more may be pending */
                if (vec >= 0) {
                    cpu->halted = false;
                    cpu_deliver_interrupt(cpu, vec & 0xff);
                    /* A data breakpoint hit by the delivery: before the handler runs. */
                    if (unlikely(cpu->dr6_pending)) {
                        dbg_deliver_trap(cpu, cpu->dr6_pending);
                        if (cpu->stopped_vec >= 0)
                            return TCG_RUN_EXCEPTION;
                    }
                }
            }
        }
        if (cpu->halted)
            return TCG_RUN_HALTED;

        TranslatedBlock *tb = tb_lookup_cpu(cpu);
        cpu->one_insn = false;
        /*
         * RF is cleared at the start of every instruction, after the check
         * for instruction breakpoints (SDM 3A §17.3.1.1); whatever sets it
         * (IRET, a paused REP string) returns here before the next one.
         */
        if (unlikely(cpu->eflags & FL_RF))
            cpu->eflags &= ~FL_RF;
        if (unlikely(log_mask & (LOG_EXEC | LOG_CPU))) {
            if (log_enabled(LOG_CPU))
                cpu_dump(cpu);
            LOG(LOG_EXEC, "Trace %d: [%016" PRIx64 "] %04x:%016" PRIx64 " (%u insns)\n", cpu->id,
                tb->pc_phys, cpu->seg[SEG_CS].sel, cpu->rip, tb->n_ops);
        }
        cpu->cur_tb = tb;
        n += tcg_exec_tb(cpu, tb, max_blocks - n);    /* counts icount, masks RIP */
        tb = (TranslatedBlock *)cpu->cur_tb;
        cpu->cur_tb = NULL;
        cpu->prev_tb = tb;
        if (unlikely((tb->flags & TB_FLAG_SSTEP) | cpu->run_events)) {
            /*
             * Traps after the instruction: single step (SDM 3A §17.3.1.4,
             * DR6.BS) and data/I-O breakpoints (§17.3.1.2-3), in one #DB.
             * After MOV SS/POP SS they wait for the next instruction (SDM 3A
             * §6.8.3: debug exceptions are inhibited, as interrupts are);
             * a single step then reports both instructions with one trap.
             */
            uint32_t bits = cpu->dr6_pending | ((tb->flags & TB_FLAG_SSTEP) ? DR6_BS : 0);
            if (bits && !cpu->movss_shadow) {
                dbg_deliver_trap(cpu, bits);
                if (cpu->stopped_vec >= 0)
                    return TCG_RUN_EXCEPTION;
            }
        }
    }
    return TCG_RUN_BUDGET;
}

TCGCPU *tcg_cpu_new(AddressSpace *as, int id)
{
    tb_cache_init();
    TCGCPU *cpu = g_malloc0(sizeof(*cpu));
    /*
     * All-zero TLB tags would match linear page 0: every entry starts
     * invalid, so the flushes need only visit entries filled since (mmu.c
     * tlb_filled), and the MMU_USER_AC set, never filled, never matches.
     */
    for (int i = 0; i < MMU__COUNT; i++)
        for (unsigned j = 0; j < TLB_SIZE; j++)
            cpu->tlb[i][j].tag_r = cpu->tlb[i][j].tag_w = cpu->tlb[i][j].tag_x = TLB_INVALID;
    cpu->id = id;
    cpu->as = as;
    cpu->excp_delivering = -1;
    cpu->stopped_vec = -1;
    cpu_request_irq_check(cpu);
    cpu_reset_state(cpu, true);
    if (!all_cpus)
        all_cpus = g_ptr_array_new();
    g_ptr_array_add(all_cpus, cpu);
    return cpu;
}

void tcg_cpu_free(TCGCPU *cpu)
{
    if (!cpu)
        return;
    if (all_cpus)
        g_ptr_array_remove(all_cpus, cpu);
    g_free(cpu);
}

/* ---- memory map and RAM write notifications ---- */
static void tcg_region_changed(MemoryListener *l, const FlatRange *fr)
{
    (void)fr;
    TCGState *s = l->opaque;
    __atomic_store_n(&s->flush_pending, 1, __ATOMIC_RELEASE);
}

static void tcg_region_commit(MemoryListener *l)
{
    TCGState *s = l->opaque;
    for (unsigned i = 0; i < s->cpus->len; i++) {
        TCGCPU *c = s->cpus->pdata[i];
        if (c) {
            __atomic_store_n(&c->exit_request, 1, __ATOMIC_RELEASE);
            __atomic_store_n(&c->chain_break, 1, __ATOMIC_RELEASE);
        }
    }
}

static void tcg_ram_written(hwaddr addr, uint64_t len)
{
    tb_invalidate_phys_range(addr, len);
}

/* ---- AccelOps ---- */
static bool tcg_probe(char **why)
{
    (void)why;
    return true;
}

static bool tcg_init(Machine *m, GError **errp)
{
    if (m->cfg && m->cfg->cpu_model) {
        char *dropped = NULL;
        if (!tcg_cpuid_configure(m->cfg->cpu_model, &dropped, errp))
            return false;
        if (dropped)
            error_report("warning: -cpu %s: the software CPU does not implement %s "
                         "(left out of CPUID)", m->cfg->cpu_model, dropped);
        g_free(dropped);
    }
    tb_cache_init();
    TCGState *s = g_new0(TCGState, 1);
    s->m = m;
    s->cpus = g_ptr_array_new();
    tcg_state = s;
    m->accel_state = s;
    s->listener.region_add = tcg_region_changed;
    s->listener.region_del = tcg_region_changed;
    s->listener.commit = tcg_region_commit;
    s->listener.opaque = s;
    /* The board may build the address space after init(): then vcpu_init registers. */
    if (m->as) {
        address_space_add_listener(m->as, &s->listener);
        s->listened = m->as;
    }
    memory_set_ram_write_notifier(tcg_ram_written);
    /* The board built the userspace PIC/IOAPIC/APICs for us (no kernel irqchip). */
    static const TCGInterruptController apic_ic = {
        .pending = tcg_apic_intr_pending,
        .ack = tcg_apic_intr_ack,
    };
    tcg_set_interrupt_controller(&apic_ic);
    irqchip_set_kick(tcg_irqchip_kick);
    apic_set_tsc_hz(1000000000ull);          /* cpu_rdtsc: a nominal 1 GHz TSC */
    apic_set_tsc_reader(tcg_read_tsc);
    tcg_apic_present = true;
    return true;
}

static TCGCPU *cpu_by_id(Machine *m, int id)
{
    TCGState *s = m->accel_state;
    if (!s || id < 0 || (unsigned)id >= s->cpus->len)
        return NULL;
    return s->cpus->pdata[id];
}

static bool tcg_vcpu_init(Machine *m, int id, GError **errp)
{
    TCGState *s = m->accel_state;
    if (!s) {
        kestrel_set_error(errp, "tcg: vcpu_init before init");
        return false;
    }
    if (!s->listened && m->as) {
        address_space_add_listener(m->as, &s->listener);
        s->listened = m->as;
    }
    TCGCPU *cpu = tcg_cpu_new(m->as, id);
    cpu->m = m;
    cpu_reset_state(cpu, id == 0);
    while (s->cpus->len <= (unsigned)id)
        g_ptr_array_add(s->cpus, NULL);
    s->cpus->pdata[id] = cpu;
    return true;
}

static void tcg_vcpu_thread_init(Machine *m, int id)
{
    (void)m;
    (void)id;
}

static VcpuRunResult tcg_vcpu_run(Machine *m, int id)
{
    TCGState *s = m->accel_state;
    (void)id;
    for (;;) {
        bool all_halted = true;
        /*
         * Every CPU gets its slice in turn, even when a kick ended the
         * previous one early: returning to the caller on each exit request
         * starved the other CPUs whenever CPU 0 was kicked often (SeaBIOS
         * polling the PM timer while it waits for the APs to check in).
         */
        for (unsigned i = 0; i < s->cpus->len; i++) {
            TCGCPU *cpu = s->cpus->pdata[i];
            if (!cpu)
                continue;
            if (cpus_should_stop(m, 0))
                return VCPU_RUN_AGAIN;
            irqchip_current_cpu = cpu->id;    /* whose APIC the MMIO page is */
            TCGRunResult r = tcg_cpu_exec(cpu, SLICE_BLOCKS);
            if (r == TCG_RUN_EXIT || !cpu->halted)
                all_halted = false;
        }
        if (all_halted)
            return VCPU_RUN_HALTED;
        if (cpus_should_stop(m, 0))
            return VCPU_RUN_AGAIN;
    }
}

static void tcg_vcpu_kick(Machine *m, int id)
{
    (void)id;
    TCGState *s = m->accel_state;
    if (!s)
        return;
    for (unsigned i = 0; i < s->cpus->len; i++) {
        TCGCPU *cpu = s->cpus->pdata[i];
        /* One thread runs them all: any kick must stop the round-robin loop. */
        if (cpu) {
            __atomic_store_n(&cpu->exit_request, 1, __ATOMIC_RELEASE);
            __atomic_store_n(&cpu->chain_break, 1, __ATOMIC_RELEASE);
        }
    }
}

static void tcg_set_irq(Machine *m, int gsi, int level)
{
    if (gsi >= 0 && gsi < MACHINE_NUM_GSI)
        gsi_levels[gsi] = level;
    /* The userspace PIC/IOAPIC will turn levels into INTR here; make the CPUs
     * re-check tcg_pending_interrupt() and wake a halted one. */
    (void)m;
    tcg_raise_interrupt_check();
}

static void tcg_reset(Machine *m)
{
    TCGState *s = m->accel_state;
    tb_flush_all();
    for (unsigned i = 0; i < s->cpus->len; i++) {
        TCGCPU *cpu = s->cpus->pdata[i];
        if (!cpu)
            continue;
        cpu_reset_state(cpu, i == 0);
        /* Direct boot: every CPU with the MTRRs firmware would have set (machine.h). */
        if (m->cpu_mtrr_valid)
            mtrr_load(cpu, &m->cpu_mtrr);
        cpu->shutdown = false;
        if ((unsigned)cpu->id < TCG_MAX_CPUS) {
            /* Application processors sleep until the BSP's INIT-SIPI-SIPI. */
            tcg_wait_sipi[cpu->id] = i != 0;
            tcg_event_check[cpu->id] = 1;
        }
        if (i == 0 && m->bsp_state_valid) {
            cpu_from_x86_state(cpu, &m->bsp_state);
            cpu->halted = false;
        }
        if (log_enabled(LOG_CPU_RESET)) {
            log_printf("CPU#%u reset\n", i);
            cpu_dump(cpu);
        }
    }
}

static bool tcg_get_regs(Machine *m, int id, X86CPUState *st)
{
    TCGCPU *cpu = cpu_by_id(m, id);
    if (!cpu)
        return false;
    cpu_to_x86_state(cpu, st);
    return true;
}

static bool tcg_set_regs(Machine *m, int id, const X86CPUState *st)
{
    TCGCPU *cpu = cpu_by_id(m, id);
    if (!cpu)
        return false;
    cpu_from_x86_state(cpu, st);
    cpu->halted = false;
    cpu->shutdown = false;
    return true;
}

static void tcg_cleanup(Machine *m)
{
    TCGState *s = m->accel_state;
    if (!s)
        return;
    if (s->listened)
        address_space_remove_listener(s->listened, &s->listener);
    memory_set_ram_write_notifier(NULL);
    irqchip_set_kick(NULL);
    tcg_apic_present = false;
    tcg_set_interrupt_controller(NULL);
    for (unsigned i = 0; i < s->cpus->len; i++)
        tcg_cpu_free(s->cpus->pdata[i]);
    g_ptr_array_free(s->cpus, true);
    tb_flush_all();
    tb_reap();
    tcg_state = NULL;
    m->accel_state = NULL;
    g_free(s);
}

static const AccelOps tcg_accel_ops = {
    .name = "tcg",
    .probe = tcg_probe,
    .init = tcg_init,
    .vcpu_init = tcg_vcpu_init,
    .vcpu_thread_init = tcg_vcpu_thread_init,
    .vcpu_run = tcg_vcpu_run,
    .vcpu_kick = tcg_vcpu_kick,
    .set_irq = tcg_set_irq,
    .reset = tcg_reset,
    .get_regs = tcg_get_regs,
    .set_regs = tcg_set_regs,
    .cleanup = tcg_cleanup,
    .single_thread = true,
    .has_cpu = true,
};

ACCEL_REGISTER(tcg_accel_ops)
