/*
 * The interpreter: threaded dispatch (GCC "labels as values") over the
 * pre-decoded ops of one TranslatedBlock.  Each handler ends in its own
 * indirect jump to the next op's handler, so the host branch predictor sees
 * one site per guest instruction kind instead of one shared switch.
 *
 * Conventions: RIP is kept only as the block's start (cpu->block_rip)
 * plus each op's offset (DecodedOp.off), and written to cpu->rip when
 * something may look at it.  The generic handlers (op kinds before the
 * TCG_FASTOP_LIST ones) are entered through a stub that stores it, so for
 * them cpu->rip is the address of the current instruction, as a fault
 * raised from inside must report (SDM 3A §6.5 fault semantics).  The
 * specialised handlers do not need it: they cannot fault except through
 * the slow paths of memory accesses, which store it first (SYNC_RIP).
 * NEXT jumps to the next op's handler; END leaves the block with RIP
 * already set.
 * Exceptions leave through raise_exception() (longjmp to the run loop).
 */
#include "accel/tcg/ops.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"

/*
 * Jcc condition cond (a constant at each call site) straight from the lazy
 * state for the common producers, else through flags.c.  ZF and SF come
 * from the masked result for every CC_OP except EFLAGS, whose flags
 * (materialised by helpers, PCMPISTRI, rotates) are read as they are;
 * CF/OF-based conditions are exact here only after SUB/CMP and logic ops
 * (CF after ADD too).
 */
static inline __attribute__((always_inline)) bool cc_eval(const TCGCPU *cpu, int cond)
{
    int sz = cpu->cc_size;
    uint64_t m = size_mask[sz];
    uint64_t res = cpu->cc_res & m;
    unsigned op = cpu->cc_op;
    bool r;
    if (op == CC_OP_EFLAGS)
        return cc_eval_flags((uint32_t)cpu->cc_aux, cond);
    switch (cond >> 1) {
    case 2:                                     /* Z */
        r = res == 0;
        break;
    case 4:                                     /* S */
        r = (res >> ((8u << sz) - 1)) & 1;
        break;
    case 1:                                     /* B: CF */
        if (op == CC_OP_SUB)
            r = (cpu->cc_a & m) < (cpu->cc_b & m);
        else if (op == CC_OP_LOGIC)
            r = false;
        else if (op == CC_OP_ADD)
            r = res < (cpu->cc_a & m);
        else
            return cc_test(cpu, cond);
        break;
    case 3:                                     /* BE: CF | ZF */
        if (op == CC_OP_SUB)
            r = (cpu->cc_a & m) <= (cpu->cc_b & m);
        else if (op == CC_OP_LOGIC)
            r = res == 0;
        else
            return cc_test(cpu, cond);
        break;
    case 6:                                     /* L: SF != OF */
        if (op == CC_OP_SUB)
            r = (int64_t)sext(cpu->cc_a, sz) < (int64_t)sext(cpu->cc_b, sz);
        else if (op == CC_OP_LOGIC)
            r = (res >> ((8u << sz) - 1)) & 1;
        else
            return cc_test(cpu, cond);
        break;
    case 7:                                     /* LE: ZF | SF != OF */
        if (op == CC_OP_SUB)
            r = (int64_t)sext(cpu->cc_a, sz) <= (int64_t)sext(cpu->cc_b, sz);
        else if (op == CC_OP_LOGIC)
            r = (int64_t)sext(res, sz) <= 0;
        else
            return cc_test(cpu, cond);
        break;
    default:                                    /* O, P */
        return cc_test(cpu, cond);
    }
    return (cond & 1) ? !r : r;
}

/*
 * The _F memory forms (tcg_specialize): 64-bit code, 64-bit address, so
 * linear = effective address (+ the FS or GS base, below).  The TLB only
 * ever holds canonical pages (every fill comes through a checked address),
 * so a non-canonical address always misses and mem_*_slow_canon raises #GP
 * or #SS there.
 *
 * The base and index slots of an _F address name 8-byte words of TCGCPU:
 * below 19 those of xregs, its first member, and XREG_SEG_BASE(s) the
 * base of segment s, which tcg_specialize (flat64_fold_seg_base) puts in
 * a free slot of an FS- or GS-relative operand, so that these too are
 * _F forms that add the base with no test.
 */
#define XREG_SEG_BASE(s) ((uint8_t)(offsetof(TCGCPU, seg[s].base) / sizeof(uint64_t)))
_Static_assert(offsetof(TCGCPU, xregs) == 0, "xreg: the xregs slots are the first words of TCGCPU");
_Static_assert(offsetof(TCGCPU, seg[SEG_FS].base) % sizeof(uint64_t) == 0 &&
               offsetof(TCGCPU, seg[SEG_GS].base) % sizeof(uint64_t) == 0 &&
               offsetof(TCGCPU, seg[SEG_GS].base) / sizeof(uint64_t) <= UINT8_MAX,
               "XREG_SEG_BASE: a segment base is a word a DecodedOp register slot can name");

TCG_INLINE uint64_t xreg(const TCGCPU *cpu, unsigned slot)
{
    return *(const uint64_t *)((const char *)cpu + slot * sizeof(uint64_t));
}

TCG_INLINE uint64_t flat64_lin(const TCGCPU *cpu, const DecodedOp *op)
{
    return (uint64_t)(int64_t)op->disp + xreg(cpu, op->base) + (xreg(cpu, op->index) << op->scale);
}

/*
 * tlb is the running block's TLB set (cpu->tlb[cpu->mmu_idx], which only
 * changes in instructions that end a block).  One compare both matches the
 * page and rules out a page-crossing access: the entry is picked by the
 * first byte's page and compared with the last byte's, and two adjacent
 * pages never share an entry.  The slow paths may fault or look at RIP
 * (see the conventions above): op's RIP first.
 */
/*
 * set_cc for CC_OP_INC, CC_OP_DEC, CC_OP_SHL and CC_OP_SHR, which read
 * only the result and cc_a (flags.c, cc_eval): cc_b is left alone.
 */
TCG_INLINE void set_cc_ra(TCGCPU *cpu, CCOp op, int sz, uint64_t res, uint64_t a)
{
    cpu->cc_op = op;
    cpu->cc_size = sz;
    cpu->cc_res = res;
    cpu->cc_a = a;
}

/*
 * The lazy flags, saved so that a read-modify-write of memory whose helper
 * (alu_op, alu_shift, alu_shd) sets them before the store can hold them
 * back until the store is done: a store that faults (#PF on a read-only
 * page, a copy-on-write page) must leave the flags as they were, which the
 * exception's RFLAGS image shows and ADC/SBB/RCL/RCR read again when the
 * instruction is restarted (SDM 3A §6.5: a fault leaves the state as before
 * the instruction).
 */
typedef struct CCSaved {
    uint64_t res, a, b, aux;
    uint8_t op, size;
} CCSaved;

TCG_INLINE CCSaved cc_saved(const TCGCPU *cpu)
{
    return (CCSaved){ cpu->cc_res, cpu->cc_a, cpu->cc_b, cpu->cc_aux, cpu->cc_op, cpu->cc_size };
}

TCG_INLINE void cc_put_back(TCGCPU *cpu, CCSaved c)
{
    cpu->cc_res = c.res;
    cpu->cc_a = c.a;
    cpu->cc_b = c.b;
    cpu->cc_aux = c.aux;
    cpu->cc_op = c.op;
    cpu->cc_size = c.size;
}

/* CF of the lazy state, inline for the producers whose CF is one compare. */
TCG_INLINE uint64_t cc_cf_fast(const TCGCPU *cpu)
{
    uint64_t m = size_mask[cpu->cc_size];
    switch (cpu->cc_op) {
    case CC_OP_ADD: return (cpu->cc_res & m) < (cpu->cc_a & m);
    case CC_OP_SUB: return (cpu->cc_a & m) < (cpu->cc_b & m);
    case CC_OP_LOGIC: return 0;
    case CC_OP_INC: case CC_OP_DEC: return cpu->cc_aux ? 1 : 0;
    default: return cc_compute_cf(cpu);
    }
}

/*
 * The arithmetic flags after ROL (rol) or ROR of a 32/64-bit register with
 * a count of 1..width-1 that gave r, from those before (f): CF is the bit
 * rotated into bit 0 (ROL) or the top bit (ROR), OF the XOR of the two top
 * bits of the result (ROR) or of the top bit and CF (ROL), as alu_shift;
 * the others as they were (SDM 2B "RCL/RCR/ROL/ROR").
 */
TCG_INLINE uint32_t rotate_flags(uint32_t f, uint64_t r, int sz, bool rol)
{
    unsigned w = 8u << sz;
    uint32_t top = (uint32_t)(r >> (w - 1)) & 1;
    uint32_t cf = rol ? (uint32_t)r & 1 : top;
    uint32_t of = top ^ (rol ? cf : (uint32_t)(r >> (w - 2)) & 1);
    return (f & ~(uint32_t)(CC_C | CC_O)) | (cf ? CC_C : 0) | (of ? CC_O : 0);
}

/*
 * A load at op (PFX_CC_STALE) is about to take its slow path, which may
 * fault, while the lazy flags still lag behind an _NF op of the block
 * (tcg_specialize's flag liveness): store that op's flags, rebuilt from its
 * result and operands, which the liveness pass checked are still in their
 * registers.  op->imm16: the _NF op is that many ops back (low byte), of
 * kind OP_ADD_RR_NF + the high byte.
 */
static void __attribute__((noinline, cold)) flags_recover(TCGCPU *cpu, const DecodedOp *op)
{
    const DecodedOp *nf = op - (op->imm16 & 0xff);
    unsigned kind = OP_ADD_RR_NF + (op->imm16 >> 8);
    int sz = nf->sz;
    uint64_t m = size_mask[sz];
    uint64_t r = cpu->regs[nf->rm] & m;
    uint64_t b = (kind <= OP_XOR_RR_NF ? cpu->regs[nf->reg] : nf->imm) & m;
    switch (kind) {
    case OP_ROL_RI_NF: case OP_ROR_RI_NF:
        /* CF and OF from the result, on top of the flags as the op found them. */
        cc_set_flags(cpu, rotate_flags(cc_compute_all(cpu), r, sz, kind == OP_ROL_RI_NF));
        break;
    case OP_INC_R_NF: case OP_DEC_R_NF:
        /* CF as the op found it: nothing has written the lazy flags since. */
        b = cc_cf_fast(cpu);
        set_cc_ra(cpu, kind == OP_INC_R_NF ? CC_OP_INC : CC_OP_DEC, sz, r,
                  (kind == OP_INC_R_NF ? r - 1 : r + 1) & m);
        cpu->cc_aux = b;
        break;
    case OP_ADD_RR_NF: case OP_ADD_RI_NF:
        set_cc(cpu, CC_OP_ADD, sz, r, (r - b) & m, b);
        break;
    case OP_SUB_RR_NF: case OP_SUB_RI_NF:
        set_cc(cpu, CC_OP_SUB, sz, r, (r + b) & m, b);
        break;
    default:                            /* AND, OR, XOR: from the result alone */
        set_cc_logic(cpu, sz, r);
        break;
    }
}

TCG_INLINE uint64_t flat64_ld_lin(TCGCPU *cpu, const TLBEntry *tlb, const DecodedOp *op,
                                  uint64_t lin, int sz, int seg)
{
    const TLBEntry *e = &tlb[(lin >> 12) & (TLB_SIZE - 1)];
    if (likely(e->tag_r == ((lin + (1u << sz) - 1) & TLB_PAGE_MASK)))
        return ld_raw((uint8_t *)(e->addend + (uintptr_t)lin), sz);
    cpu->rip = cpu->block_rip + op->off;
    if (unlikely(op->pfx & PFX_CC_STALE))
        flags_recover(cpu, op);
    return mem_ld_slow_canon(cpu, lin, sz, seg);
}

TCG_INLINE void flat64_st_lin(TCGCPU *cpu, const TLBEntry *tlb, const DecodedOp *op,
                              uint64_t lin, int sz, uint64_t v, int seg)
{
    const TLBEntry *e = &tlb[(lin >> 12) & (TLB_SIZE - 1)];
    if (likely(e->tag_w == ((lin + (1u << sz) - 1) & TLB_PAGE_MASK))) {
        st_raw((uint8_t *)(e->addend + (uintptr_t)lin), sz, v);
        return;
    }
    cpu->rip = cpu->block_rip + op->off;
    mem_st_slow_canon(cpu, lin, sz, v, seg);
}

TCG_INLINE uint64_t flat64_ld(TCGCPU *cpu, const TLBEntry *tlb, const DecodedOp *op, int sz)
{
    return flat64_ld_lin(cpu, tlb, op, flat64_lin(cpu, op), sz, op->seg);
}

TCG_INLINE void flat64_st(TCGCPU *cpu, const TLBEntry *tlb, const DecodedOp *op, int sz, uint64_t v)
{
    flat64_st_lin(cpu, tlb, op, flat64_lin(cpu, op), sz, v, op->seg);
}

/*
 * The block linked to exit slot (DecodedOp.link) of tb for (lin, flags):
 * a direct exit has its own slot, indirect ones share the last few.  The
 * target may have been invalidated since: its ops are then all OP_EXIT,
 * which returns to the run loop (L_EXIT), so that is not checked here; it
 * cannot have been freed (tb_reap changes the generation).
 */
static inline TranslatedBlock *exit_link_find(const TCGCPU *cpu, const TranslatedBlock *tb,
                                              unsigned slot, uint64_t lin, uint32_t flags)
{
    uint64_t gen = cpu->link_gen;
    /* A match has a block: an unused slot has flags 0, never a valid TB_FLAG_* set. */
    if (slot < TB_LINKS_DIRECT) {
        if (tb->link[slot].lin == lin && tb->link[slot].gen == gen && tb->link[slot].flags == flags)
            return tb->link[slot].tb;
        return NULL;
    }
    for (unsigned k = TB_LINKS_DIRECT; k < TB_LINKS; k++)
        if (tb->link[k].lin == lin && tb->link[k].gen == gen && tb->link[k].flags == flags)
            return tb->link[k].tb;
    return NULL;
}

/*
 * An exit of tb to lin that its link slot does not link: the CPU's jump
 * cache, which holds what the run loop's lookup would find (cleared with
 * the link generation, so its blocks are not freed), remembered in the
 * exit's slot as the run loop would: a direct exit's own (more than
 * TB_LINKS_DIRECT direct exits share them, so two hot ones can take turns
 * in one), an indirect exit's (RET, JMP/CALL r/m) in a shared one.  Only
 * where the next block has tb's flags (a near branch), and not out of
 * blocks that must return to the run loop or be checked for breakpoints
 * (their flags are never a chained block's).
 */
static inline TranslatedBlock *exit_jc_find(TCGCPU *cpu, TranslatedBlock *tb, unsigned slot,
                                            uint64_t lin)
{
    unsigned h = (unsigned)((lin ^ (lin >> JC_BITS)) & (JC_SIZE - 1));
    TranslatedBlock *next = cpu->jc[h].tb;
    unsigned k;
    if (cpu->jc[h].gen != cpu->link_gen || !next || cpu->jc[h].lin != lin ||
        cpu->jc[h].flags != tb->flags || next->invalid ||
        (tb->flags & (TB_FLAGS_ALONE | TB_FLAG_BP)))
        return NULL;
    k = slot < TB_LINKS_DIRECT ? slot : TB_LINKS_DIRECT + tb->link_next++ % (TB_LINKS - TB_LINKS_DIRECT);
    tb->link[k].lin = lin;
    tb->link[k].gen = cpu->link_gen;
    tb->link[k].flags = tb->flags;
    tb->link[k].tb = next;
    return next;
}

/*
 * Op links.  Following a block's link slot costs a load of the slot's
 * cache line, seldom in the host's L1 cache when the guest's code is large
 * (a shell's loop: about three in four such loads missed).  The commonest
 * exits, direct branches whose target lies in the same page as the
 * block's first byte, can do without it: the target's physical address is
 * then fixed by the block's own (a linear page maps one physical page, the
 * one this block was found through), whatever CR3 or the linear address
 * the block runs at.  So their block is remembered in the branch op
 * itself (DecodedOp.link_tb), valid until any block is invalidated or
 * freed (tb_link_epoch).  It is filled from the link slot once that slot
 * has been followed (the slot's block has this block's flags), when the
 * target is on the page of the block's start (linear, as the block runs:
 * the same offsets as the physical page).  Not to a block that runs onto
 * a second page: that page's mapping is not fixed by this block's (a CR3
 * write or INVLPG may remap it alone), and only the link generation,
 * which an op link does not look at, follows the mapping.
 */
static void op_link_fill(const DecodedOp *op, TranslatedBlock *next)
{
    uint32_t epoch = __atomic_load_n(&tb_link_epoch, __ATOMIC_ACQUIRE);
    /* Read after the epoch: a block killed later changes the epoch again (tb.c tb_kill). */
    if (__atomic_load_n(&next->invalid, __ATOMIC_ACQUIRE) || next->page2 != UINT64_MAX)
        return;
    DecodedOp *w = (DecodedOp *)op;
    w->link_tb = next;
    w->link_epoch = epoch;
}

static bool op_link_kind(unsigned idx)
{
    return idx == OP_JMP64_REL || idx == OP_CALL64_REL || (idx >= OP_JO && idx <= OP_JG);
}

void tcg_forget_op_links(TranslatedBlock *tb)
{
    for (uint32_t i = 0; i < tb->n_ops; i++)
        if (op_link_kind(tb->ops[i].idx))
            tb->ops[i].link_epoch = 0;
    /* The EXIT op: a CALL's return site (ras_push) or its target on another page (xlink). */
    tb->ops[tb->n_ops].link_epoch = 0;
    tb->ops[tb->n_ops].disp = 0;
}

/*
 * A CALL64_REL whose target is on another page (most calls) cannot have an
 * op link: the target's physical page depends on the mapping.  The EXIT op
 * after it (the CALL ends its block) links the target instead, with what
 * makes that valid: the linear address of the block's start (asz..sub: 8
 * bytes the EXIT op does not use) and the low half of the CPU's link_gen
 * (disp), which a CR3 write, an INVLPG or freed blocks change (cpu_jc_flush;
 * its low half is never 0, the value of an unfilled xlink, and all xlinks
 * are forgotten when it wraps around).  So the link slot, whose cache line
 * a call otherwise loads, is needed only to fill it.
 */
_Static_assert(offsetof(DecodedOp, sub) == offsetof(DecodedOp, asz) + 7,
               "an xlink's linear address fills DecodedOp.asz..sub");
#define XLINK_LIN(x) ld64_le(&(x)->asz)

static void xlink_fill(const TCGCPU *cpu, const DecodedOp *x, uint64_t block_lin,
                       TranslatedBlock *next)
{
    DecodedOp *w = (DecodedOp *)x;
    st64_le(&w->asz, block_lin);
    w->disp = (int32_t)(uint32_t)cpu->link_gen;
    w->link_tb = next;
}

/*
 * Return prediction (TCGCPU.ras) for a near CALL with a 64-bit operand
 * size, to ret_rip.  site: the op that holds the op link to the block at
 * the return address (a CALL ends its block, decode.c: the EXIT op after
 * it, or the CALL64_REL itself when its target is on another page and so
 * needs no op link of its own), or NULL when the return address is on
 * another page than the block's start (an op link must not cross pages).
 */
static inline __attribute__((always_inline)) void ras_push(TCGCPU *cpu, DecodedOp *site,
                                                           uint64_t ret_rip)
{
    uint32_t epoch = __atomic_load_n(&tb_link_epoch, __ATOMIC_RELAXED);
    uint64_t base = cpu->seg[SEG_CS].base;
    unsigned i = ++cpu->ras_top & (RAS_SIZE - 1);
    if (((base + ret_rip) ^ (base + cpu->block_rip)) >> 12)
        site = NULL;
    cpu->ras[i].lin = base + ret_rip;
    cpu->ras[i].tb = site && site->link_epoch == epoch ? site->link_tb : NULL;
    cpu->ras[i].site = site;
    cpu->ras[i].epoch = epoch;
    cpu->ras[i].flags = cpu->cur_tb->flags;
}

/*
 * May the interpreter go straight on to the next block?  Only while the
 * run loop would do nothing but look the block up: no kick or APIC event,
 * no interrupt window to poll (IF with a pending re-check), no STI/MOV SS
 * shadow to retire, not halted, not single-stepping and not tracing.
 */
static inline bool can_chain(const TCGCPU *cpu, const TranslatedBlock *tb)
{
    if (__atomic_load_n(&cpu->exit_request, __ATOMIC_RELAXED) | cpu->chain_break |
        cpu->intr_shadow | cpu->halted | cpu->shutdown)
        return false;
    if ((cpu->eflags & FL_IF) && __atomic_load_n(&cpu->irq_check, __ATOMIC_RELAXED))
        return false;
    return !(tb->flags & TB_FLAGS_ALONE) && !(log_mask & (LOG_EXEC | LOG_CPU));
}

/* tcg_exec_tb's labels by op kind, published by its first call (tcg_op_handler). */
static const void *const *op_handlers;

const void *tcg_op_handler(unsigned idx)
{
    const void *const *h = __atomic_load_n(&op_handlers, __ATOMIC_ACQUIRE);
    if (!h) {
        tcg_exec_tb(NULL, NULL, 0);
        h = __atomic_load_n(&op_handlers, __ATOMIC_ACQUIRE);
    }
    return h[idx];
}

long tcg_exec_tb(TCGCPU *cpu, TranslatedBlock *tb, long max_blocks)
{
    /* Generic kinds go through their S_ stub (SYNC_RIP), specialised ones straight in. */
    static const void *const labels[OP__COUNT] = {
#define TCG_OP_LABEL(n) [OP_##n] = OP_##n < OP_ADD_RR ? &&S_##n : &&L_##n,
        TCG_OP_LIST(TCG_OP_LABEL)
#undef TCG_OP_LABEL
    };
    if (unlikely(!tb)) {
        __atomic_store_n(&op_handlers, labels, __ATOMIC_RELEASE);
        return 0;
    }
    const DecodedOp *op = tb->ops;
    /*
     * icount: a block run adds the index of the op it leaves at, plus one
     * (op->seq); an in-block jump adds the ops run so far and subtracts its
     * target's index, so that the exit's addition counts from there.
     */
#define COUNT_EXIT() (cpu->icount += op->seq)
    const TLBEntry *tlb = cpu->tlb[cpu->mmu_idx];     /* see flat64_ld_lin */
    uint64_t a, b, r, lin = 0;
    uint8_t *rmw_host;
    int sz;

/* Direct threading: tcg_specialize stored each op's handler address in it. */
#define DISPATCH() goto *op->handler
#define NEXT() do { op++; DISPATCH(); } while (0)
#define SYNC_RIP() (cpu->rip = cpu->block_rip + op->off)
#define END() goto chain
/* End after a near jump, call, return or Jcc: see chain_direct. */
#define END_DIRECT() goto chain_direct
/*
 * What stops chain_direct: the budget, a kick, an interrupt check (and
 * tracing, which sets a budget of one block on entry).  Whatever sets
 * exit_request sets chain_break too (tcg-accel.c), so one load tells.
 */
#define CHAIN_STOP() \
        (nb >= max_blocks || __atomic_load_n(&cpu->chain_break, __ATOMIC_RELAXED))
/*
 * chain_direct's common case, 64-bit code whose exit is linked, inline:
 * each branch handler then ends in its own indirect jump into the next
 * block, which the host predicts far better than one jump shared by every
 * block transition.  Anything else goes to chain_direct.  direct: the op
 * is a direct exit with its own link slot (Jcc, JMP/CALL rel).  A near
 * branch leaves the TLB set (tlb) as it is.  END_DIRECT_FAST is for op
 * kinds that only exist in 64-bit blocks (tcg_specialize).
 */
#define END_DIRECT_FAST(direct) do { \
        if (unlikely(CHAIN_STOP())) \
            goto chain_direct; \
        END_DIRECT_LINKED64(direct); \
    } while (0)
/* The same once CHAIN_STOP() is known false, in a block of any mode. */
#define END_DIRECT_LINKED(direct) do { \
        if (unlikely((tb->flags & TB_FLAG_SIZE_MASK) != TB_FLAG_CODE64)) \
            goto chain_direct; \
        END_DIRECT_LINKED64(direct); \
    } while (0)
/*
 * The same in a 64-bit block.  A direct slot only ever links a block with
 * this block's flags (tcg-accel.c tb_lookup_flags), so its key is the
 * linear PC and the generation.  An indirect exit missing the shared
 * slots tries the jump cache (exit_jc_find) before the run loop; a direct
 * one whose slot links elsewhere does in chain_direct.
 * direct == DIRECT_OP_LINK: a JMP64_REL, J<cc> or CALL64_REL op (64-bit
 * operand size) whose target is in the block's first page, so that its op
 * link (op_link_fill) may take it there without the block's link slots.
 */
#define DIRECT_OP_LINK 2
#define END_DIRECT_LINKED64(direct) do { \
        TranslatedBlock *next_; \
        if ((direct) == DIRECT_OP_LINK && \
            likely(op->link_epoch == __atomic_load_n(&tb_link_epoch, __ATOMIC_RELAXED))) { \
            next_ = op->link_tb; \
        } else { \
            uint64_t pc_ = cpu->seg[SEG_CS].base + cpu->rip; \
            if (direct) { \
                const typeof(tb->link[0]) *l_ = &tb->link[op->link]; \
                if (unlikely(l_->lin != pc_ || l_->gen != cpu->link_gen)) \
                    goto chain_direct; \
                next_ = l_->tb; \
                if ((direct) == DIRECT_OP_LINK && \
                    ((pc_ ^ (cpu->seg[SEG_CS].base + cpu->block_rip)) >> 12) == 0) \
                    op_link_fill(op, next_); \
            } else { \
                next_ = exit_link_find(cpu, tb, op->link, pc_, tb->flags); \
                if (unlikely(!next_)) { \
                    next_ = exit_jc_find(cpu, tb, TB_LINK_ANY, pc_); \
                    if (!next_) \
                        goto chain_direct; \
                } \
            } \
        } \
        COUNT_EXIT(); \
        tb = next_; \
        nb++; \
        cpu->cur_tb = tb; \
        op = tb->ops; \
        cpu->block_rip = cpu->rip; \
        DISPATCH(); \
    } while (0)
#define HELPER(call) do { \
        switch (call) { \
        case H_NEXT: NEXT(); \
        case H_NEXT_END: cpu->rip += op->len; END(); \
        default: END(); \
        } \
    } while (0)
/*
 * A taken near branch to target.  JUMP64: the same in a 64-bit block,
 * where tcg_specialize marks a target inside the same block (op->imm16 =
 * its op index + 1, only for the JMP64_REL and J<cc> kinds, whose op->disp
 * is the target's offset in the block): JUMP_IN_BLOCK goes there without
 * leaving the block, counting the jump as a new block against the budget
 * and stopping for the same reasons as chain_direct.
 */
#define JUMP_(target, linked) do { \
        cpu->rip = (target); \
        if (unlikely(CHAIN_STOP())) \
            goto chain_direct; \
        linked(true); \
    } while (0)
#define JUMP_IN_BLOCK() do { \
        if (unlikely(CHAIN_STOP())) { \
            cpu->rip = cpu->block_rip + op->disp; \
            goto chain_direct; \
        } \
        nb++; \
        cpu->icount += op->seq - (op->imm16 - 1); \
        op = tb->ops + op->imm16 - 1; \
        DISPATCH(); \
    } while (0)
#define JUMP(target) JUMP_(target, END_DIRECT_LINKED)
/* A near branch of a direct-op-link kind with a 64-bit operand size, in a 64-bit block. */
#define END_DIRECT_OP_LINKED64(unused) END_DIRECT_LINKED64(DIRECT_OP_LINK)
#define JUMP64(target) do { \
        if (op->imm16) \
            JUMP_IN_BLOCK(); \
        JUMP_(target, END_DIRECT_OP_LINKED64); \
    } while (0)

    long nb = 1;
    tb->exec_count++;
    cpu->block_rip = cpu->rip;
    /* -d exec/cpu logs every block in the run loop: no chaining, no in-block jumps. */
    if (unlikely(log_mask & (LOG_EXEC | LOG_CPU)))
        max_blocks = 1;
    DISPATCH();

    /* The generic handlers' entries: cpu->rip for what they call (conventions above). */
#define TCG_OP_STUB(n) S_##n: SYNC_RIP(); goto L_##n;
    TCG_OP_LIST(TCG_OP_STUB)
#undef TCG_OP_STUB

    /*
     * Block done (RIP set).  Account it, then follow a link of this block
     * to the next one if allowed (run loop: tb_lookup_cpu records links).
     */
chain:
    COUNT_EXIT();
    if (cpu->code_size == 1)
        cpu->rip &= 0xffff;
    else if (cpu->code_size == 2)
        cpu->rip = (uint32_t)cpu->rip;
    if (nb >= max_blocks || !can_chain(cpu, tb))
        goto out;
    {
        uint32_t flags;
        uint64_t pc = cpu_tb_key(cpu, &flags);
        TranslatedBlock *next = exit_link_find(cpu, tb, op->link, pc, flags);
        if (!next)
            goto out;
        tb = next;
    }
    goto enter;

    /* Back to the run loop, which records the next block in this exit's link slot. */
out:
    cpu->exit_link = op->link;
    return nb;

    /*
     * The same after a near jump, call, return or Jcc, which change
     * neither the mode nor TF, IF, the interrupt shadow or the halt state:
     * only a kick, an interrupt check (chain_break) or the budget stop it,
     * and the next block has this block's flags (a block run with
     * TB_FLAGS_ALONE gets no links, tb_lookup_cpu).
     */
chain_direct:
    COUNT_EXIT();
    {
        uint32_t code = tb->flags & TB_FLAG_SIZE_MASK;
        uint64_t pc;
        TranslatedBlock *next;
        if (unlikely(code != TB_FLAG_CODE64))
            cpu->rip = code == TB_FLAG_CODE16 ? cpu->rip & 0xffff : (uint32_t)cpu->rip;
        /* Whatever sets irq_check sets chain_break too (tcg-accel.c). */
        if (unlikely(nb >= max_blocks ||
                     (__atomic_load_n(&cpu->exit_request, __ATOMIC_RELAXED) | cpu->chain_break) ||
                     (log_mask & (LOG_EXEC | LOG_CPU))))
            goto out;
        pc = cpu->seg[SEG_CS].base + cpu->rip;
        if (code != TB_FLAG_CODE64)
            pc = (uint32_t)pc;
        next = exit_link_find(cpu, tb, op->link, pc, tb->flags);
        if (!next) {
            next = exit_jc_find(cpu, tb, op->link, pc);
            if (!next) {
                next = tcg_chain_lookup(cpu, tb, op->link, pc);
                if (!next)
                    goto out;
            }
        }
        tb = next;
    }

enter:
    nb++;
    cpu->cur_tb = tb;
    op = tb->ops;
    cpu->block_rip = cpu->rip;
    tlb = cpu->tlb[cpu->mmu_idx];
    DISPATCH();

L_EXIT:
    /* Not an instruction (the end of the block, or an invalidated one): not counted. */
    cpu->icount--;
    if (unlikely(tb->invalid))
        max_blocks = nb;                /* no links out of it: the run loop looks up afresh */
    END();
L_NOP:
    /*
     * PAUSE sits in spin-wait loops.  With the CPUs taking turns on one
     * thread, a CPU spinning on a lock another CPU holds only wastes its
     * slice, and one that drops and retakes a lock within a slice (SeaBIOS's
     * smp_scan) never lets the others in: end the slice here.
     */
    if (op->sub == 1 && cpu->m && cpu->m->smp_cpus > 1) {
        __atomic_store_n(&cpu->exit_request, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&cpu->chain_break, 1, __ATOMIC_RELEASE);     /* see CHAIN_STOP */
    }
    NEXT();
L_UD:
L_ILLEGAL_LOCK:
    raise_exception(cpu, EXCP_UD);

L_ALU_EG:
    sz = op->sz;
    b = reg_get(cpu, op->reg, sz);
    if (op->rm != NOREG) {
        a = reg_get(cpu, op->rm, sz);
        r = alu_op(cpu, op->sub, a, b, sz);
        if (op->sub != 7)
            reg_set(cpu, op->rm, sz, r);
    } else if (op->sub == 7) {
        a = lin_ld(cpu, op_lin(cpu, op, 1u << sz, ACC_READ), sz);
        alu_op(cpu, 7, a, b, sz);
    } else {
        lin = op_lin(cpu, op, 1u << sz, ACC_WRITE);
        a = lin_ld(cpu, lin, sz);
        CCSaved before = cc_saved(cpu);
        r = alu_op(cpu, op->sub, a, b, sz);
        CCSaved after = cc_saved(cpu);
        cc_put_back(cpu, before);
        lin_st(cpu, lin, sz, r);
        cc_put_back(cpu, after);
    }
    NEXT();
L_ALU_GE:
    sz = op->sz;
    a = reg_get(cpu, op->reg, sz);
    b = rm_read(cpu, op, sz);
    r = alu_op(cpu, op->sub, a, b, sz);
    if (op->sub != 7)
        reg_set(cpu, op->reg, sz, r);
    NEXT();
L_ALU_EI:
    sz = op->sz;
    b = op->imm & size_mask[sz];
    if (op->rm != NOREG) {
        a = reg_get(cpu, op->rm, sz);
        r = alu_op(cpu, op->sub, a, b, sz);
        if (op->sub != 7)
            reg_set(cpu, op->rm, sz, r);
    } else if (op->sub == 7) {
        a = lin_ld(cpu, op_lin(cpu, op, 1u << sz, ACC_READ), sz);
        alu_op(cpu, 7, a, b, sz);
    } else {
        lin = op_lin(cpu, op, 1u << sz, ACC_WRITE);
        a = lin_ld(cpu, lin, sz);
        CCSaved before = cc_saved(cpu);
        r = alu_op(cpu, op->sub, a, b, sz);
        CCSaved after = cc_saved(cpu);
        cc_put_back(cpu, before);
        lin_st(cpu, lin, sz, r);
        cc_put_back(cpu, after);
    }
    NEXT();
L_TEST_EG:
    sz = op->sz;
    r = rm_read(cpu, op, sz) & reg_get(cpu, op->reg, sz);
    set_cc_logic(cpu, sz, r);
    NEXT();
L_TEST_EI:
    sz = op->sz;
    r = rm_read(cpu, op, sz) & op->imm;
    set_cc_logic(cpu, sz, r);
    NEXT();

#define RMW_BEGIN() \
    sz = op->sz; \
    if (op->rm != NOREG) { a = reg_get(cpu, op->rm, sz); } \
    else { lin = op_lin(cpu, op, 1u << sz, ACC_WRITE); a = lin_ld(cpu, lin, sz); }
#define RMW_END(v) \
    if (op->rm != NOREG) reg_set(cpu, op->rm, sz, (v)); else lin_st(cpu, lin, sz, (v));
/* The same when the flags were set since before (the CCSaved before): see CCSaved. */
#define RMW_END_FLAGS_AFTER(v, before) do { \
        if (op->rm != NOREG) { \
            reg_set(cpu, op->rm, sz, (v)); \
        } else { \
            CCSaved after_ = cc_saved(cpu); \
            cc_put_back(cpu, (before)); \
            lin_st(cpu, lin, sz, (v)); \
            cc_put_back(cpu, after_); \
        } \
    } while (0)

    /* The store first: a faulting one must leave the flags as they were. */
L_INC_E:
    RMW_BEGIN();
    b = cc_cf_fast(cpu);
    r = (a + 1) & size_mask[sz];
    RMW_END(r);
    set_cc_ra(cpu, CC_OP_INC, sz, r, a);
    cpu->cc_aux = b;
    NEXT();
L_DEC_E:
    RMW_BEGIN();
    b = cc_cf_fast(cpu);
    r = (a - 1) & size_mask[sz];
    RMW_END(r);
    set_cc_ra(cpu, CC_OP_DEC, sz, r, a);
    cpu->cc_aux = b;
    NEXT();
L_NOT_E:
    RMW_BEGIN();
    RMW_END(~a);
    NEXT();
L_NEG_E:
    RMW_BEGIN();
    r = (0 - a) & size_mask[sz];
    RMW_END(r);
    set_cc(cpu, CC_OP_SUB, sz, r, 0, a);
    NEXT();
L_MUL_E:
L_IMUL1_E:
    HELPER(helper_mul(cpu, op));
L_DIV_E:
L_IDIV_E:
    HELPER(helper_div(cpu, op));
L_IMUL_GE:
    sz = op->sz;
    r = alu_imul2(cpu, reg_get(cpu, op->reg, sz), rm_read(cpu, op, sz), sz);
    reg_set(cpu, op->reg, sz, r);
    NEXT();
L_IMUL_GEI:
    sz = op->sz;
    r = alu_imul2(cpu, rm_read(cpu, op, sz), op->imm & size_mask[sz], sz);
    reg_set(cpu, op->reg, sz, r);
    NEXT();
L_SHIFT_E:
    {
        unsigned cnt = (op->pfx & PFX_CL) ? (unsigned)cpu->regs[R_ECX] : (unsigned)op->imm;
        RMW_BEGIN();
        cnt &= op->sz == 3 ? 63 : 31;
        if (cnt == 0) {
            /* No flag change and no memory write; a 32-bit register still zero-extends. */
            if (sz == 2 && op->rm != NOREG)
                reg_set(cpu, op->rm, 2, a);
            NEXT();
        }
        CCSaved before = cc_saved(cpu);
        r = alu_shift(cpu, op->sub, a, cnt, sz);
        RMW_END_FLAGS_AFTER(r, before);
    }
    NEXT();
L_SHD_E:
    {
        unsigned cnt = (op->pfx & PFX_CL) ? (unsigned)cpu->regs[R_ECX] : (unsigned)op->imm;
        RMW_BEGIN();
        cnt &= op->sz == 3 ? 63 : 31;
        if (cnt == 0) {
            if (sz == 2 && op->rm != NOREG)
                reg_set(cpu, op->rm, 2, a);
            NEXT();
        }
        CCSaved before = cc_saved(cpu);
        r = alu_shd(cpu, op->sub, a, reg_get(cpu, op->reg, sz), cnt, sz);
        RMW_END_FLAGS_AFTER(r, before);
    }
    NEXT();

L_MOV_EG:
    rm_write(cpu, op, op->sz, reg_get(cpu, op->reg, op->sz));
    NEXT();
L_MOV_GE:
    reg_set(cpu, op->reg, op->sz, rm_read(cpu, op, op->sz));
    NEXT();
L_MOV_EI:
    rm_write(cpu, op, op->sz, op->imm);
    NEXT();
L_MOV_RI:
    reg_set(cpu, op->reg, op->sz, op->imm);
    NEXT();
L_MOV_E_SEG:
    if (op->rm != NOREG) {
        /* Register destination: zero-extended to the operand size (SDM 2B "MOV"). */
        reg_set(cpu, op->rm, op->sz, cpu->seg[op->reg].sel);
    } else {
        rm_write(cpu, op, 1, cpu->seg[op->reg].sel);
    }
    NEXT();
L_MOV_SEG_E:
    HELPER(helper_mov_seg(cpu, op));
L_MOV_MOFFS_LD:
    a = op->imm & size_mask[op->asz];
    reg_set(cpu, R_EAX, op->sz, seg_ld(cpu, op->seg, a, op->sz));
    NEXT();
L_MOV_MOFFS_ST:
    a = op->imm & size_mask[op->asz];
    seg_st(cpu, op->seg, a, op->sz, reg_get(cpu, R_EAX, op->sz));
    NEXT();
L_LEA:
    reg_set(cpu, op->reg, op->sz, op_ea(cpu, op));
    NEXT();
L_MOVZX:
    reg_set(cpu, op->reg, op->sz, rm_read(cpu, op, op->sub));
    NEXT();
L_MOVSX:
    reg_set(cpu, op->reg, op->sz, sext(rm_read(cpu, op, op->sub), op->sub));
    NEXT();
L_MOVSXD:
    reg_set(cpu, op->reg, op->sz, sext(rm_read(cpu, op, 2), 2));
    NEXT();
L_XCHG_EG:
    sz = op->sz;
    RMW_BEGIN();
    b = reg_get(cpu, op->reg, sz);
    RMW_END(b);
    reg_set(cpu, op->reg, sz, a);
    NEXT();
L_XADD:
    RMW_BEGIN();
    b = reg_get(cpu, op->reg, sz);
    {
        CCSaved before = cc_saved(cpu);
        r = alu_op(cpu, 0, a, b, sz);
        /* SDM order: SRC <- DEST, then DEST <- sum (matters for XADD r, r with one register). */
        if (op->rm != NOREG) {
            reg_set(cpu, op->reg, sz, a);
            reg_set(cpu, op->rm, sz, r);
        } else {
            RMW_END_FLAGS_AFTER(r, before);
            reg_set(cpu, op->reg, sz, a);
        }
    }
    NEXT();
L_CMPXCHG:
    HELPER(helper_cmpxchg(cpu, op));
L_CMPXCHG8B:
    HELPER(helper_cmpxchg8b(cpu, op));
L_BSWAP:
    if (op->sz == 3)
        cpu->regs[op->reg] = __builtin_bswap64(cpu->regs[op->reg]);
    else if (op->sz == 2)
        cpu->regs[op->reg] = __builtin_bswap32((uint32_t)cpu->regs[op->reg]);
    else
        reg_set(cpu, op->reg, 1, 0);   /* 16-bit BSWAP is undefined; zero like most CPUs */
    NEXT();

L_PUSH_R:
    cpu_push(cpu, op->sz, reg_get(cpu, op->reg, op->sz));
    NEXT();
L_PUSH_E:
    a = rm_read(cpu, op, op->sz);
    cpu_push(cpu, op->sz, a);
    NEXT();
L_PUSH_I:
    cpu_push(cpu, op->sz, op->imm);
    NEXT();
L_PUSH_SEG:
    /* A 32-bit push of a segment register writes only 16 bits on recent CPUs;
     * we write the zero-extended value (older behaviour, also allowed). */
    cpu_push(cpu, op->sz, cpu->seg[op->sub].sel);
    NEXT();
L_POP_R:
    a = cpu_pop(cpu, op->sz);
    reg_set(cpu, op->reg, op->sz, a);
    NEXT();
L_POP_E:
    {
        /* The EA of POP m uses the incremented stack pointer (SDM 2B "POP"). */
        uint64_t sp0 = cpu->regs[R_ESP];
        a = cpu_pop(cpu, op->sz);
        if (op->rm != NOREG) {
            reg_set(cpu, op->rm, op->sz, a);
        } else {
            uint64_t sp1 = cpu->regs[R_ESP];
            lin = op_lin(cpu, op, 1u << op->sz, ACC_WRITE);
            cpu->regs[R_ESP] = sp0;     /* restartable if the store faults */
            lin_st(cpu, lin, op->sz, a);
            cpu->regs[R_ESP] = sp1;
        }
    }
    NEXT();
L_POP_SEG:
    HELPER(helper_pop_seg(cpu, op));
L_PUSHA:
    HELPER(helper_pusha(cpu, op));
L_POPA:
    HELPER(helper_popa(cpu, op));
L_PUSHF:
    HELPER(helper_pushf(cpu, op));
L_POPF:
    HELPER(helper_popf(cpu, op));

L_JMP_REL:
    JUMP(branch_target(cpu, op, cpu->rip + op->len + op->imm));
L_JCC:
    if (cc_test(cpu, op->sub))
        JUMP(branch_target(cpu, op, cpu->rip + op->len + op->imm));
    NEXT();
L_CALL_REL:
    cpu_push(cpu, op->sz, cpu->rip + op->len);
    cpu->rip = branch_target(cpu, op, cpu->rip + op->len + op->imm);
    END_DIRECT();
L_RET:
    a = cpu_pop(cpu, op->sz);
    if (op->imm)
        sp_set(cpu, cpu->regs[R_ESP] + op->imm);
    cpu->rip = a & size_mask[op->sz];
    END_DIRECT();
L_JMP_E:
    a = rm_read(cpu, op, op->sz);
    cpu->rip = a;
    if (likely(op->sz == 3))
        END_DIRECT_FAST(false);
    END_DIRECT();
L_CALL_E:
    a = rm_read(cpu, op, op->sz);
    cpu_push(cpu, op->sz, cpu->rip + op->len);
    if (likely(op->sz == 3)) {          /* 64-bit code */
        ras_push(cpu, (DecodedOp *)op + 1, cpu->rip + op->len);
        cpu->rip = a;
        END_DIRECT_FAST(false);
    }
    cpu->rip = a;
    END_DIRECT();
L_JMP_FAR:
    helper_far_jmp(cpu, op->imm16, op->imm, cpu->rip + op->len);
    END();
L_CALL_FAR:
    helper_far_call(cpu, op->imm16, op->imm, op->sz, cpu->rip + op->len);
    END();
L_JMP_FAR_E:
L_CALL_FAR_E:
    {
        int osz = op->sz == 1 ? 1 : op->sz == 3 ? 3 : 2;
        lin = op_lin(cpu, op, (1u << osz) + 2, ACC_READ);
        a = lin_ld(cpu, lin, osz);
        b = lin_ld(cpu, lin + (1u << osz), 1);
        if (op->idx == OP_JMP_FAR_E)
            helper_far_jmp(cpu, (uint16_t)b, a, cpu->rip + op->len);
        else
            helper_far_call(cpu, (uint16_t)b, a, osz, cpu->rip + op->len);
    }
    END();
L_RETF:
    helper_far_ret(cpu, op->sz, (uint16_t)op->imm);
    END();
L_IRET:
    helper_iret(cpu, op->sz, cpu->rip + op->len);
    END();
L_INT:
L_INT3:
L_INTO:
    HELPER(helper_int(cpu, op));
L_LOOP:
    {
        uint64_t c = (cpu->regs[R_ECX] - 1) & size_mask[op->asz];
        reg_set(cpu, R_ECX, op->asz, c);       /* ECX writes zero-extend (67h in 64-bit mode) */
        bool take = c != 0;
        if (op->sub == 0)
            take = take && !(cc_compute_all(cpu) & CC_Z);     /* LOOPNE */
        else if (op->sub == 1)
            take = take && (cc_compute_all(cpu) & CC_Z);      /* LOOPE */
        if (take)
            cpu->rip = branch_target(cpu, op, cpu->rip + op->len + op->imm);
        else
            cpu->rip += op->len;
    }
    END();
L_JCXZ:
    if ((cpu->regs[R_ECX] & size_mask[op->asz]) == 0)
        cpu->rip = branch_target(cpu, op, cpu->rip + op->len + op->imm);
    else
        cpu->rip += op->len;
    END();
L_SETCC:
    rm_write(cpu, op, 0, cc_test(cpu, op->sub));
    NEXT();
L_CMOVCC:
    a = rm_read(cpu, op, op->sz);       /* the load happens (and may fault) either way */
    if (cc_test(cpu, op->sub))
        reg_set(cpu, op->reg, op->sz, a);
    else if (op->sz == 2)
        reg_set(cpu, op->reg, 2, reg_get(cpu, op->reg, 2));   /* 32-bit: upper half cleared */
    NEXT();
L_BT_EG:
L_BT_EI:
    HELPER(helper_bt(cpu, op));
L_BSF:
L_BSR:
L_TZCNT:
L_LZCNT:
L_POPCNT:
    HELPER(helper_bitscan(cpu, op));

L_MOVS:
L_CMPS:
L_STOS:
L_LODS:
L_SCAS:
L_INS:
L_OUTS:
    HELPER(helper_string(cpu, op));
L_IN:
L_OUT:
    HELPER(helper_in_out(cpu, op));
L_FLAGOP:
    HELPER(helper_flagop(cpu, op));
L_LAHF:
    reg_set(cpu, 16 + R_EAX, 0, cpu_get_eflags(cpu) & 0xff);
    NEXT();
L_SAHF:
    cpu_set_eflags(cpu, (uint32_t)(cpu->regs[R_EAX] >> 8), CC_S | CC_Z | CC_A | CC_P | CC_C);
    NEXT();
L_HLT:
    HELPER(helper_hlt(cpu, op));
L_CPUID:
    HELPER(helper_cpuid(cpu, op));
L_RDTSC:
L_RDTSCP:
    if ((cpu->cr4 & CR4_TSD) && cpu->cpl != 0)
        raise_exception_err(cpu, EXCP_GP, 0);
    a = cpu_rdtsc(cpu);
    cpu->regs[R_EAX] = (uint32_t)a;
    cpu->regs[R_EDX] = (uint32_t)(a >> 32);
    if (op->idx == OP_RDTSCP)
        cpu->regs[R_ECX] = (uint32_t)cpu->tsc_aux;
    NEXT();
L_RDMSR:
    HELPER(helper_rdmsr(cpu, op));
L_WRMSR:
    HELPER(helper_wrmsr(cpu, op));
L_GRP6:
    HELPER(helper_grp6(cpu, op));
L_GRP7:
L_INVLPG:
L_SWAPGS:
L_CLTS:
    HELPER(helper_grp7(cpu, op));
L_MOV_CR:
    HELPER(helper_mov_cr(cpu, op));
L_MOV_DR:
    HELPER(helper_mov_dr(cpu, op));
L_CBW:
    sz = op->sz;
    reg_set(cpu, R_EAX, sz, sext(reg_get(cpu, R_EAX, sz - 1), sz - 1));
    NEXT();
L_CWD:
    sz = op->sz;
    a = reg_get(cpu, R_EAX, sz);
    reg_set(cpu, R_EDX, sz, ((a >> ((8u << sz) - 1)) & 1) ? ~(uint64_t)0 : 0);
    NEXT();
L_ENTER:
    HELPER(helper_enter(cpu, op));
L_LEAVE:
    {
        uint64_t m = sp_mask(cpu);
        uint64_t bp = cpu->regs[R_EBP] & m;
        uint64_t v = seg_ld(cpu, SEG_SS, bp, op->sz);
        sp_set(cpu, bp + (1u << op->sz));
        reg_set(cpu, R_EBP, op->sz, v);
    }
    NEXT();
L_BCD:
    HELPER(helper_bcd(cpu, op));
L_SALC:
    reg_set(cpu, R_EAX, 0, cc_compute_cf(cpu) ? 0xff : 0);
    NEXT();
L_XLAT:
    a = (cpu->regs[R_EBX] + (cpu->regs[R_EAX] & 0xff)) & size_mask[op->asz];
    reg_set(cpu, R_EAX, 0, seg_ld(cpu, op->seg, a, 0));
    NEXT();
L_LSEG:
    HELPER(helper_lseg(cpu, op));
L_SYSCALL:
    HELPER(helper_syscall(cpu, op));
L_SYSRET:
    HELPER(helper_sysret(cpu, op));
L_SYSENTER:
    HELPER(helper_sysenter(cpu, op));
L_SYSEXIT:
    HELPER(helper_sysexit(cpu, op));
L_BOUND:
    {
        int bsz = op->sz == 1 ? 1 : 2;
        lin = op_lin(cpu, op, 2u << bsz, ACC_READ);
        int64_t lo = (int64_t)sext(lin_ld(cpu, lin, bsz), bsz);
        int64_t hi = (int64_t)sext(lin_ld(cpu, lin + (1u << bsz), bsz), bsz);
        int64_t idx = (int64_t)sext(reg_get(cpu, op->reg, bsz), bsz);
        if (idx < lo || idx > hi)
            raise_exception(cpu, EXCP_BR);
    }
    NEXT();
L_ARPL:
    if (!cpu->pe || cpu->vm86)
        raise_exception(cpu, EXCP_UD);
    RMW_BEGIN();
    b = reg_get(cpu, op->reg, 1);
    if ((a & 3) < (b & 3)) {
        r = (a & ~(uint64_t)3) | (b & 3);
        RMW_END(r);
        cc_set_flags(cpu, cc_compute_all(cpu) | CC_Z);
    } else {
        cc_set_flags(cpu, cc_compute_all(cpu) & ~CC_Z);
    }
    NEXT();
L_LAR:
L_LSL:
    HELPER(helper_lar_lsl(cpu, op));
L_FPU_NM:
L_FNINIT:
L_FNSTSW:
L_FNSTCW:
L_FLDCW:
L_FWAIT:
    HELPER(helper_fpu(cpu, op));
L_CLFLUSH:
    (void)op_lin(cpu, op, 1, ACC_READ);
    NEXT();

    /* ---- Specialised forms (tcg_specialize): same effects as the generic handlers ---- */
#define RR_BEGIN() \
    sz = op->sz; \
    a = cpu->regs[op->rm] & size_mask[sz]; \
    b = cpu->regs[op->reg] & size_mask[sz]
#define RI_BEGIN() \
    sz = op->sz; \
    a = cpu->regs[op->rm] & size_mask[sz]; \
    b = op->imm
    /* A 32-bit result zero-extends: masking to the size is the register write. */
#define ARITH_END(ccop) \
    r &= size_mask[sz]; \
    set_cc(cpu, ccop, sz, r, a, b); \
    cpu->regs[op->rm] = r; \
    NEXT()
#define LOGIC_END() \
    set_cc_logic(cpu, sz, r); \
    cpu->regs[op->rm] = r; \
    NEXT()

L_ADD_RR:
    RR_BEGIN(); r = a + b; ARITH_END(CC_OP_ADD);
L_SUB_RR:
    RR_BEGIN(); r = a - b; ARITH_END(CC_OP_SUB);
L_CMP_RR:
    RR_BEGIN();
    set_cc(cpu, CC_OP_SUB, sz, (a - b) & size_mask[sz], a, b);
    NEXT();
L_OR_RR:
    RR_BEGIN(); r = a | b; LOGIC_END();
L_AND_RR:
    RR_BEGIN(); r = a & b; LOGIC_END();
L_XOR_RR:
    RR_BEGIN(); r = a ^ b; LOGIC_END();
L_TEST_RR:
    RR_BEGIN();
    set_cc_logic(cpu, sz, a & b);
    NEXT();
L_MOV_RR:
    cpu->regs[op->rm] = cpu->regs[op->reg] & size_mask[op->sz];
    NEXT();
L_MOV64_RR:
    cpu->regs[op->rm] = cpu->regs[op->reg];
    NEXT();
L_ADD_RI:
    RI_BEGIN(); r = a + b; ARITH_END(CC_OP_ADD);
L_SUB_RI:
    RI_BEGIN(); r = a - b; ARITH_END(CC_OP_SUB);
L_CMP_RI:
    RI_BEGIN();
    set_cc(cpu, CC_OP_SUB, sz, (a - b) & size_mask[sz], a, b);
    NEXT();
L_OR_RI:
    RI_BEGIN(); r = a | b; LOGIC_END();
L_AND_RI:
    RI_BEGIN(); r = a & b; LOGIC_END();
L_XOR_RI:
    RI_BEGIN(); r = a ^ b; LOGIC_END();
L_TEST_RI:
    RI_BEGIN();
    set_cc_logic(cpu, sz, a & b);
    NEXT();
    /*
     * The same without the flags, which no one reads (tcg_specialize's
     * flag liveness): masking to the size is the 32-bit write's zero
     * extension, and the pre-masked immediate needs no more.
     */
#define NF_RR(name, o) \
L_##name##_RR_NF: \
    cpu->regs[op->rm] = (cpu->regs[op->rm] o cpu->regs[op->reg]) & size_mask[op->sz]; \
    NEXT(); \
L_##name##_RI_NF: \
    cpu->regs[op->rm] = (cpu->regs[op->rm] o op->imm) & size_mask[op->sz]; \
    NEXT();
    NF_RR(ADD, +) NF_RR(SUB, -) NF_RR(AND, &) NF_RR(OR, |) NF_RR(XOR, ^)
#undef NF_RR

    /*
     * Loads, stores and G = G op memory, twice: through the generic
     * segmentation path (any mode), and as the _F forms that
     * tcg_specialize picks in 64-bit code for 64-bit addresses through a
     * segment without a base (not FS/GS): there the linear address is the
     * effective address, and its canonical check moves to the TLB miss
     * path (flat64_ld/flat64_st).
     */
#define LD_GEN(len, sz) (SYNC_RIP(), lin_ld(cpu, op_lin(cpu, op, len, ACC_READ), sz))
#define ST_GEN(len, sz, v) (SYNC_RIP(), lin_st(cpu, op_lin(cpu, op, len, ACC_WRITE), sz, v))
#define LD_F(len, sz) flat64_ld(cpu, tlb, op, sz)
#define ST_F(len, sz, v) flat64_st(cpu, tlb, op, sz, v)
/* _FB: no index register (op->index is REG_ZERO), one load and shift fewer. */
#define LIN_FB() ((uint64_t)(int64_t)op->disp + xreg(cpu, op->base))
#define LD_FB(len, sz) flat64_ld_lin(cpu, tlb, op, LIN_FB(), sz, op->seg)
#define ST_FB(len, sz, v) flat64_st_lin(cpu, tlb, op, LIN_FB(), sz, v, op->seg)
#define MEM_OPS(S, LD, ST) \
L_LD32##S: \
    cpu->regs[op->reg] = LD(4, 2); \
    NEXT(); \
L_LD64##S: \
    cpu->regs[op->reg] = LD(8, 3); \
    NEXT(); \
L_LDZX8##S: \
    cpu->regs[op->reg] = LD(1, 0); \
    NEXT(); \
L_LDZX16##S: \
    cpu->regs[op->reg] = LD(2, 1); \
    NEXT(); \
L_LD8##S: \
    a = LD(1, 0); \
    cpu->regs[op->reg] = (cpu->regs[op->reg] & ~(uint64_t)0xff) | a; \
    NEXT(); \
L_ST8##S: \
    ST(1, 0, reg_get(cpu, op->reg, 0)); \
    NEXT(); \
L_ST16##S: \
    ST(2, 1, cpu->regs[op->reg]); \
    NEXT(); \
L_ST32##S: \
    ST(4, 2, cpu->regs[op->reg]); \
    NEXT(); \
L_ST64##S: \
    ST(8, 3, cpu->regs[op->reg]); \
    NEXT(); \
    /* G = G op memory */ \
L_ADD_RM##S: \
    sz = op->sz; a = cpu->regs[op->reg] & size_mask[sz]; b = LD(1u << sz, sz); \
    r = (a + b) & size_mask[sz]; \
    set_cc(cpu, CC_OP_ADD, sz, r, a, b); \
    cpu->regs[op->reg] = r; \
    NEXT(); \
L_SUB_RM##S: \
    sz = op->sz; a = cpu->regs[op->reg] & size_mask[sz]; b = LD(1u << sz, sz); \
    r = (a - b) & size_mask[sz]; \
    set_cc(cpu, CC_OP_SUB, sz, r, a, b); \
    cpu->regs[op->reg] = r; \
    NEXT(); \
L_CMP_RM##S: \
    sz = op->sz; a = cpu->regs[op->reg] & size_mask[sz]; b = LD(1u << sz, sz); \
    set_cc(cpu, CC_OP_SUB, sz, (a - b) & size_mask[sz], a, b); \
    NEXT(); \
L_OR_RM##S: \
    sz = op->sz; a = cpu->regs[op->reg] & size_mask[sz]; b = LD(1u << sz, sz); \
    r = a | b; \
    set_cc_logic(cpu, sz, r); \
    cpu->regs[op->reg] = r; \
    NEXT(); \
L_AND_RM##S: \
    sz = op->sz; a = cpu->regs[op->reg] & size_mask[sz]; b = LD(1u << sz, sz); \
    r = a & b; \
    set_cc_logic(cpu, sz, r); \
    cpu->regs[op->reg] = r; \
    NEXT(); \
L_XOR_RM##S: \
    sz = op->sz; a = cpu->regs[op->reg] & size_mask[sz]; b = LD(1u << sz, sz); \
    r = a ^ b; \
    set_cc_logic(cpu, sz, r); \
    cpu->regs[op->reg] = r; \
    NEXT(); \
L_CMP_MR##S: \
    sz = op->sz; a = LD(1u << sz, sz); b = cpu->regs[op->reg] & size_mask[sz]; \
    set_cc(cpu, CC_OP_SUB, sz, (a - b) & size_mask[sz], a, b); \
    NEXT(); \
L_CMP8_MR##S: \
    a = LD(1, 0); b = cpu->regs[op->reg] & 0xff; \
    set_cc(cpu, CC_OP_SUB, 0, (a - b) & 0xff, a, b); \
    NEXT(); \
L_CMP8_MI##S: \
    a = LD(1, 0); b = op->imm & 0xff; \
    set_cc(cpu, CC_OP_SUB, 0, (a - b) & 0xff, a, b); \
    NEXT(); \
L_CMP8_RM##S: \
    a = cpu->regs[op->reg] & 0xff; b = LD(1, 0); \
    set_cc(cpu, CC_OP_SUB, 0, (a - b) & 0xff, a, b); \
    NEXT(); \
L_LD16##S: \
    a = LD(2, 1); \
    cpu->regs[op->reg] = (cpu->regs[op->reg] & ~(uint64_t)0xffff) | a; \
    NEXT();
    MEM_OPS(, LD_GEN, ST_GEN)
    MEM_OPS(_F, LD_F, ST_F)
    MEM_OPS(_FB, LD_FB, ST_FB)
#undef MEM_OPS
#undef LIN_FB
#undef LD_FB
#undef ST_FB
#undef LD_GEN
#undef ST_GEN
#undef LD_F
#undef ST_F
L_MOV_RIW:
    cpu->regs[op->reg] = op->imm;
    NEXT();
L_MOVZX8_RR:
    cpu->regs[op->reg] = cpu->regs[op->rm] & 0xff;
    NEXT();
L_MOVZX16_RR:
    cpu->regs[op->reg] = cpu->regs[op->rm] & 0xffff;
    NEXT();
L_MOVSXD_RR:
    cpu->regs[op->reg] = (uint64_t)(int64_t)(int32_t)cpu->regs[op->rm];
    NEXT();
L_IMUL_RR:
    if (op->sz == 3) {
        __int128 p = (__int128)(int64_t)cpu->regs[op->reg] * (int64_t)cpu->regs[op->rm];
        r = (uint64_t)p;
        cpu->cc_aux = (__int128)(int64_t)r != p;
    } else {
        int64_t p = (int64_t)(int32_t)cpu->regs[op->reg] * (int32_t)cpu->regs[op->rm];
        r = (uint32_t)p;
        cpu->cc_aux = (int64_t)(int32_t)r != p;
    }
    cpu->cc_op = CC_OP_MUL;             /* flags.c reads only res and aux */
    cpu->cc_size = op->sz;
    cpu->cc_res = r;
    cpu->regs[op->reg] = r;
    NEXT();
L_CMOV_RR:
    a = cpu->regs[op->rm];
    if (cc_eval(cpu, op->sub))
        cpu->regs[op->reg] = a & size_mask[op->sz];
    else
        cpu->regs[op->reg] &= size_mask[op->sz];    /* a 32-bit CMOV zero-extends either way */
    NEXT();
L_SETCC_R:
    cpu->regs[op->rm] = (cpu->regs[op->rm] & ~(uint64_t)0xff) | cc_eval(cpu, op->sub);
    NEXT();
L_CMP8_RI:
    a = cpu->regs[op->rm] & 0xff;
    b = op->imm & 0xff;
    set_cc(cpu, CC_OP_SUB, 0, (a - b) & 0xff, a, b);
    NEXT();
L_TEST8_RR:
    set_cc_logic(cpu, 0, cpu->regs[op->rm] & cpu->regs[op->reg] & 0xff);
    NEXT();
L_TEST8_RI:
    set_cc_logic(cpu, 0, cpu->regs[op->rm] & op->imm & 0xff);
    NEXT();
L_INC_R:
    sz = op->sz;
    b = cc_cf_fast(cpu);
    a = cpu->regs[op->rm] & size_mask[sz];
    r = (a + 1) & size_mask[sz];
    set_cc_ra(cpu, CC_OP_INC, sz, r, a);
    cpu->cc_aux = b;
    cpu->regs[op->rm] = r;
    NEXT();
L_DEC_R:
    sz = op->sz;
    b = cc_cf_fast(cpu);
    a = cpu->regs[op->rm] & size_mask[sz];
    r = (a - 1) & size_mask[sz];
    set_cc_ra(cpu, CC_OP_DEC, sz, r, a);
    cpu->cc_aux = b;
    cpu->regs[op->rm] = r;
    NEXT();
L_INC_R_NF:
    cpu->regs[op->rm] = (cpu->regs[op->rm] + 1) & size_mask[op->sz];
    NEXT();
L_DEC_R_NF:
    cpu->regs[op->rm] = (cpu->regs[op->rm] - 1) & size_mask[op->sz];
    NEXT();
L_INC_R_KC:
    sz = op->sz;
    a = cpu->regs[op->rm] & size_mask[sz];
    r = (a + 1) & size_mask[sz];
    set_cc_ra(cpu, CC_OP_INC, sz, r, a);
    cpu->cc_aux = op->imm;
    cpu->regs[op->rm] = r;
    NEXT();
L_DEC_R_KC:
    sz = op->sz;
    a = cpu->regs[op->rm] & size_mask[sz];
    r = (a - 1) & size_mask[sz];
    set_cc_ra(cpu, CC_OP_DEC, sz, r, a);
    cpu->cc_aux = op->imm;
    cpu->regs[op->rm] = r;
    NEXT();
    /* 64-bit code: the stack is flat (SS base ignored) and 64-bit wide. */
L_PUSH64_R:
    a = cpu->regs[op->reg];             /* PUSH RSP pushes the old value */
    lin = cpu->regs[R_ESP] - 8;
    flat64_st_lin(cpu, tlb, op, lin, 3, a, SEG_SS);
    cpu->regs[R_ESP] = lin;
    NEXT();
L_POP64_R:
    lin = cpu->regs[R_ESP];
    a = flat64_ld_lin(cpu, tlb, op, lin, 3, SEG_SS);
    cpu->regs[R_ESP] = lin + 8;
    cpu->regs[op->reg] = a;             /* POP RSP: the loaded value wins */
    NEXT();
L_CALL64_REL:
    a = cpu->block_rip + op->off + op->len;
    lin = cpu->regs[R_ESP] - 8;
    flat64_st_lin(cpu, tlb, op, lin, 3, a, SEG_SS);
    cpu->regs[R_ESP] = lin;
    cpu->rip = cpu->block_rip + op->disp;
    b = cpu->seg[SEG_CS].base;
    if (((b + cpu->rip) ^ (b + cpu->block_rip)) >> 12) {
        /* A target on another page: the op's link is the return site's, the xlink the target's. */
        const DecodedOp *x = op + 1;
        TranslatedBlock *next;
        ras_push(cpu, (DecodedOp *)op, a);
        if (unlikely(CHAIN_STOP()))
            goto chain_direct;
        if (likely((uint32_t)x->disp == (uint32_t)cpu->link_gen &&
                   XLINK_LIN(x) == b + cpu->block_rip)) {
            next = x->link_tb;
        } else {
            const typeof(tb->link[0]) *l_ = &tb->link[op->link];
            if (l_->lin != b + cpu->rip || l_->gen != cpu->link_gen)
                goto chain_direct;
            next = l_->tb;
            xlink_fill(cpu, x, b + cpu->block_rip, next);
        }
        COUNT_EXIT();
        tb = next;
        nb++;
        cpu->cur_tb = tb;
        op = tb->ops;
        cpu->block_rip = cpu->rip;
        DISPATCH();
    }
    ras_push(cpu, (DecodedOp *)op + 1, a);
    END_DIRECT_FAST(DIRECT_OP_LINK);
L_JMP64_REL:
    JUMP64(cpu->block_rip + op->disp);
L_JMP64_NEXT:
    NEXT();
L_RET64:
    lin = cpu->regs[R_ESP];
    a = flat64_ld_lin(cpu, tlb, op, lin, 3, SEG_SS);
    cpu->regs[R_ESP] = lin + 8;
    cpu->rip = a;
    {
        /* The return prediction (ras_push), in blocks that may chain (op->sub). */
        unsigned i = cpu->ras_top-- & (RAS_SIZE - 1);
        TranslatedBlock *next;
        if (likely(op->sub) && likely(cpu->ras[i].lin == cpu->seg[SEG_CS].base + a) &&
            likely(cpu->ras[i].epoch == __atomic_load_n(&tb_link_epoch, __ATOMIC_RELAXED)) &&
            likely(cpu->ras[i].flags == tb->flags)) {
            if (unlikely(CHAIN_STOP()))
                goto chain_direct;
            next = cpu->ras[i].tb;
            if (unlikely(!next)) {
                /* Not linked yet: the block's links or the jump cache, then link the site. */
                next = exit_link_find(cpu, tb, op->link, cpu->ras[i].lin, tb->flags);
                if (!next)
                    next = exit_jc_find(cpu, tb, op->link, cpu->ras[i].lin);
                if (!next)
                    goto chain_direct;
                if (cpu->ras[i].site)
                    op_link_fill(cpu->ras[i].site, next);
            }
            COUNT_EXIT();
            tb = next;
            nb++;
            cpu->cur_tb = tb;
            op = tb->ops;
            cpu->block_rip = cpu->rip;
            DISPATCH();
        }
    }
    END_DIRECT_FAST(false);
    /*
     * Runs (tcg_specialize): the first op of the run does the single ops'
     * work one after the other, each through its own op (RIP for a slow
     * path), so a fault in the middle leaves the earlier ones done, RSP as
     * after them and RIP at the faulting one, as without the fusion.  The
     * run ends at the first op of another kind, which includes an OP_EXIT
     * left by a store that invalidated this block (tb_kill).
     */
L_PUSH64_RUN:
    do {
        a = cpu->regs[op->reg];         /* PUSH RSP pushes the old value */
        lin = cpu->regs[R_ESP] - 8;
        flat64_st_lin(cpu, tlb, op, lin, 3, a, SEG_SS);
        cpu->regs[R_ESP] = lin;
        op++;
    } while (op->idx == OP_PUSH64_R);
    DISPATCH();
L_POP64_RUN:
    do {
        lin = cpu->regs[R_ESP];
        a = flat64_ld_lin(cpu, tlb, op, lin, 3, SEG_SS);
        cpu->regs[R_ESP] = lin + 8;
        cpu->regs[op->reg] = a;         /* POP RSP: the loaded value wins */
        op++;
    } while (op->idx == OP_POP64_R);
    if (op->idx == OP_RET64)
        goto L_RET64;
    DISPATCH();
L_MOV64_RUN:
    do {
        cpu->regs[op->rm] = cpu->regs[op->reg];
        op++;
    } while (op->idx == OP_MOV64_RR);
    DISPATCH();
    /* LD64_FB and ST64_FB in any order (a store may kill this block: see above). */
L_LD64_RUN:
    goto mem64_ld;
L_ST64_RUN:
    goto mem64_st;
    for (;;) {
        if (op->idx == OP_LD64_FB) {
        mem64_ld:
            cpu->regs[op->reg] = flat64_ld_lin(cpu, tlb, op, (uint64_t)(int64_t)op->disp +
                                               xreg(cpu, op->base), 3, op->seg);
        } else if (op->idx == OP_ST64_FB) {
        mem64_st:
            flat64_st_lin(cpu, tlb, op, (uint64_t)(int64_t)op->disp + xreg(cpu, op->base), 3,
                          cpu->regs[op->reg], op->seg);
        } else {
            DISPATCH();
        }
        op++;
    }
    /*
     * INC_R, then CMP8_MI fused with JNZ (op + 1, op + 2): a byte-scan loop
     * "inc r; cmp byte [m], imm; jnz back".  When the branch comes back to
     * this op, the next round starts here without a dispatch, with the
     * accounting and the stop checks of JUMP.
     */
L_INC_JNZ_CMP8_MI:
    for (;;) {
        sz = op->sz;
        b = cc_cf_fast(cpu);
        a = cpu->regs[op->rm] & size_mask[sz];
        r = (a + 1) & size_mask[sz];
        set_cc(cpu, CC_OP_INC, sz, r, a, 1);
        cpu->cc_aux = b;
        cpu->regs[op->rm] = r;
        op++;
        a = flat64_ld(cpu, tlb, op, 0);
        b = op->imm & 0xff;
        r = (a - b) & 0xff;
        set_cc(cpu, CC_OP_SUB, 0, r, a, b);
        op++;
        if (r == 0) {
            op++;
            DISPATCH();
        }
        if (unlikely(op->sz != 3)) {
            JUMP(branch_target(cpu, op, cpu->block_rip + op->disp));
        }
        cpu->rip = cpu->block_rip + op->disp;
        if (unlikely(CHAIN_STOP()))
            goto chain_direct;
        if (!op->imm16)
            END_DIRECT_LINKED64(DIRECT_OP_LINK);     /* a 64-bit block (JNZ_CMP8_MI) */
        nb++;
        cpu->icount += op->seq - (op->imm16 - 1);       /* as JUMP_IN_BLOCK */
        op = tb->ops + op->imm16 - 1;
        if (op->idx != OP_INC_JNZ_CMP8_MI)
            DISPATCH();
    }

    /*
     * Memory operands through an _F address (tcg_specialize), any size.
     * A read-modify-write checks the TLB once, with the write tag (a
     * writable page is readable); on a miss both accesses take the slow
     * paths, the load first, as the generic handlers do.  The flags are
     * written last, so a faulting store leaves registers, flags and
     * memory as they were.
     */
#define RMW_F_BEGIN() do { \
        sz = op->sz; \
        lin = flat64_lin(cpu, op); \
        const TLBEntry *e_ = &tlb[(lin >> 12) & (TLB_SIZE - 1)]; \
        if (likely(e_->tag_w == ((lin + (1u << sz) - 1) & TLB_PAGE_MASK))) { \
            rmw_host = (uint8_t *)(e_->addend + (uintptr_t)lin); \
            a = ld_raw(rmw_host, sz); \
        } else { \
            rmw_host = NULL; \
            SYNC_RIP(); \
            a = mem_ld_slow_canon(cpu, lin, sz, op->seg); \
        } \
    } while (0)
#define RMW_F_END(v) do { \
        if (likely(rmw_host)) \
            st_raw(rmw_host, sz, (v)); \
        else \
            mem_st_slow_canon(cpu, lin, sz, (v), op->seg); \
    } while (0)
L_INC_M_F:
    RMW_F_BEGIN();
    b = cc_cf_fast(cpu);                /* INC and DEC keep CF (SDM 2A "INC") */
    r = (a + 1) & size_mask[sz];
    RMW_F_END(r);
    set_cc(cpu, CC_OP_INC, sz, r, a, 1);
    cpu->cc_aux = b;
    NEXT();
L_DEC_M_F:
    RMW_F_BEGIN();
    b = cc_cf_fast(cpu);
    r = (a - 1) & size_mask[sz];
    RMW_F_END(r);
    set_cc(cpu, CC_OP_DEC, sz, r, a, 1);
    cpu->cc_aux = b;
    NEXT();
    /*
     * SHL/SAL (sub 4, 6), SHR (5), SAR (7) by a count of 1..width-1 of a
     * byte register 0-15 (the rest of the register kept) or of an _F
     * memory operand: as alu_shift computes them (the flags after the
     * store, which may fault).  SHIFT_IMM: r and the lazy flags' a.
     */
#define SHIFT_IMM(v, sz) do { \
        unsigned c_ = (unsigned)op->imm; \
        switch (op->sub & 7) { \
        case 5: \
            a = (v) >> (c_ - 1); \
            r = a >> 1; \
            break; \
        case 7: \
            a = (uint64_t)((int64_t)sext((v), (sz)) >> (c_ - 1)); \
            r = (uint64_t)((int64_t)a >> 1) & size_mask[sz]; \
            a &= size_mask[sz]; \
            break; \
        default: \
            a = (v) << (c_ - 1); \
            r = (a << 1) & size_mask[sz]; \
            break; \
        } \
    } while (0)
L_SHIFT_M_F:
    RMW_F_BEGIN();
    SHIFT_IMM(a, sz);
    RMW_F_END(r);
    set_cc_ra(cpu, (op->sub & 7) == 4 || (op->sub & 7) == 6 ? CC_OP_SHL : CC_OP_SHR, sz, r, a);
    NEXT();
L_SHIFT8_RI:
    b = cpu->regs[op->rm] & 0xff;
    SHIFT_IMM(b, 0);
    cpu->regs[op->rm] = (cpu->regs[op->rm] & ~(uint64_t)0xff) | r;
    set_cc_ra(cpu, (op->sub & 7) == 4 || (op->sub & 7) == 6 ? CC_OP_SHL : CC_OP_SHR, 0, r, a);
    NEXT();
#undef SHIFT_IMM
#undef RMW_F_BEGIN
#undef RMW_F_END
L_ST_I_F:
    flat64_st(cpu, tlb, op, op->sz, op->imm);
    NEXT();
L_CMP_MI_F:
    sz = op->sz;
    a = flat64_ld(cpu, tlb, op, sz);
    b = op->imm & size_mask[sz];
    set_cc(cpu, CC_OP_SUB, sz, (a - b) & size_mask[sz], a, b);
    NEXT();
L_TEST_MI_F:
    sz = op->sz;
    set_cc_logic(cpu, sz, flat64_ld(cpu, tlb, op, sz) & op->imm & size_mask[sz]);
    NEXT();
L_JMP_M_F:
    cpu->rip = flat64_ld(cpu, tlb, op, 3);
    END_DIRECT_FAST(false);
L_CMPXCHG_M_F:
    /*
     * CMPXCHG memory, r (glibc's locks): the flags of CMP accumulator,
     * destination; equal: the source is stored, else the destination is
     * loaded into the accumulator (SDM 2A "CMPXCHG").  A write-enabled TLB
     * entry covers the load and the store (which the processor makes
     * either way, of the old value when unequal: nothing to do here), so
     * nothing faults in between; without one, helper_cmpxchg redoes it.
     */
    sz = op->sz;
    lin = flat64_lin(cpu, op);
    {
        const TLBEntry *e_ = &tlb[(lin >> 12) & (TLB_SIZE - 1)];
        if (unlikely(e_->tag_w != ((lin + (1u << sz) - 1) & TLB_PAGE_MASK))) {
            SYNC_RIP();
            HELPER(helper_cmpxchg(cpu, op));
        }
        rmw_host = (uint8_t *)(e_->addend + (uintptr_t)lin);
    }
    a = reg_get(cpu, R_EAX, sz);
    b = ld_raw(rmw_host, sz);
    set_cc(cpu, CC_OP_SUB, sz, (a - b) & size_mask[sz], a, b);
    if (a == b)
        st_raw(rmw_host, sz, reg_get(cpu, op->reg, sz));
    else
        reg_set(cpu, R_EAX, sz, b);
    NEXT();

L_LEA_B:
    a = (uint64_t)(int64_t)op->disp + cpu->xregs[op->base];
    cpu->regs[op->reg] = a & size_mask[op->asz] & size_mask[op->sz];
    NEXT();
L_LEA_BI:
    a = (uint64_t)(int64_t)op->disp + cpu->xregs[op->base] + (cpu->xregs[op->index] << op->scale);
    cpu->regs[op->reg] = a & size_mask[op->asz] & size_mask[op->sz];
    NEXT();

    /* Shifts by a constant count 1..width-1 (as alu_shift computes them). */
L_SHL_RI:
    sz = op->sz;
    a = (cpu->regs[op->rm] & size_mask[sz]) << (op->imm - 1);
    r = (a << 1) & size_mask[sz];
    set_cc_ra(cpu, CC_OP_SHL, sz, r, a);
    cpu->regs[op->rm] = r;
    NEXT();
L_SHR_RI:
    sz = op->sz;
    a = (cpu->regs[op->rm] & size_mask[sz]) >> (op->imm - 1);
    r = a >> 1;
    set_cc_ra(cpu, CC_OP_SHR, sz, r, a);
    cpu->regs[op->rm] = r;
    NEXT();
L_SAR_RI:
    sz = op->sz;
    a = (uint64_t)((int64_t)sext(cpu->regs[op->rm], sz) >> (op->imm - 1));
    r = (uint64_t)((int64_t)a >> 1) & size_mask[sz];
    set_cc_ra(cpu, CC_OP_SHR, sz, r, a & size_mask[sz]);
    cpu->regs[op->rm] = r;
    NEXT();
    /*
     * Rotates by a constant count 1..width-1: CF and OF from the result,
     * SF ZF AF PF kept (SDM 2B "RCL/RCR/ROL/ROR"), so the lazy flags are
     * materialised, as alu_shift does, whose OF formula (defined for a
     * count of 1 only) they share.  The _NF kinds: no flag is read.
     */
L_ROL_RI:
    sz = op->sz;
    a = cpu->regs[op->rm] & size_mask[sz];
    r = ((a << op->imm) | (a >> ((8u << sz) - op->imm))) & size_mask[sz];
    cc_set_flags(cpu, rotate_flags(cc_compute_all(cpu), r, sz, true));
    cpu->regs[op->rm] = r;
    NEXT();
L_ROR_RI:
    sz = op->sz;
    a = cpu->regs[op->rm] & size_mask[sz];
    r = ((a >> op->imm) | (a << ((8u << sz) - op->imm))) & size_mask[sz];
    cc_set_flags(cpu, rotate_flags(cc_compute_all(cpu), r, sz, false));
    cpu->regs[op->rm] = r;
    NEXT();
L_ROL_RI_NF:
    sz = op->sz;
    a = cpu->regs[op->rm] & size_mask[sz];
    cpu->regs[op->rm] = ((a << op->imm) | (a >> ((8u << sz) - op->imm))) & size_mask[sz];
    NEXT();
L_ROR_RI_NF:
    sz = op->sz;
    a = cpu->regs[op->rm] & size_mask[sz];
    cpu->regs[op->rm] = ((a >> op->imm) | (a << ((8u << sz) - op->imm))) & size_mask[sz];
    NEXT();
L_BSF_RR:
    /*
     * SDM 2A "BSF": ZF = source is 0, the destination then unchanged; CF
     * OF SF AF PF undefined, kept as helper_bitscan keeps them.
     */
    a = cpu->regs[op->rm] & size_mask[op->sz];
    if (a) {
        cc_set_flags(cpu, cc_compute_all(cpu) & ~(uint32_t)CC_Z);
        cpu->regs[op->reg] = (uint64_t)__builtin_ctzll(a);
    } else {
        cc_set_flags(cpu, cc_compute_all(cpu) | CC_Z);
    }
    NEXT();
L_BSF_RR_NF:
    a = cpu->regs[op->rm] & size_mask[op->sz];
    if (a)
        cpu->regs[op->reg] = (uint64_t)__builtin_ctzll(a);
    NEXT();
L_NOT_R:
    /* No flags (SDM 2B "NOT"); a 32-bit register zero-extends. */
    cpu->regs[op->rm] = ~cpu->regs[op->rm] & size_mask[op->sz];
    NEXT();
L_SHL_RI_NF:
    cpu->regs[op->rm] = (cpu->regs[op->rm] << op->imm) & size_mask[op->sz];
    NEXT();
L_SHR_RI_NF:
    cpu->regs[op->rm] = (cpu->regs[op->rm] & size_mask[op->sz]) >> op->imm;
    NEXT();
L_SAR_RI_NF:
    sz = op->sz;
    cpu->regs[op->rm] = (uint64_t)((int64_t)sext(cpu->regs[op->rm], sz) >> op->imm) & size_mask[sz];
    NEXT();
    /* 16-bit register forms: the write keeps bits 63:16 (SDM 1 §3.4.1.1). */
L_ADD16_RI:
    a = cpu->regs[op->rm] & 0xffff;
    b = op->imm & 0xffff;
    r = (a + b) & 0xffff;
    set_cc(cpu, CC_OP_ADD, 1, r, a, b);
    cpu->regs[op->rm] = (cpu->regs[op->rm] & ~(uint64_t)0xffff) | r;
    NEXT();
L_CMP16_RR:
    a = cpu->regs[op->rm] & 0xffff;
    b = cpu->regs[op->reg] & 0xffff;
    set_cc(cpu, CC_OP_SUB, 1, (a - b) & 0xffff, a, b);
    NEXT();
    /* By CL, as L_SHIFT_E: a count of 0 changes no flag (a 32-bit register still zero-extends). */
#define SHIFT_CL_BEGIN() \
    sz = op->sz; \
    b = cpu->regs[R_ECX] & (sz == 3 ? 63 : 31); \
    a = cpu->regs[op->rm] & size_mask[sz]; \
    if (unlikely(b == 0)) { \
        cpu->regs[op->rm] = a; \
        NEXT(); \
    }
L_SHL_RCL:
    SHIFT_CL_BEGIN();
    a <<= b - 1;
    r = (a << 1) & size_mask[sz];
    set_cc_ra(cpu, CC_OP_SHL, sz, r, a);
    cpu->regs[op->rm] = r;
    NEXT();
L_SHR_RCL:
    SHIFT_CL_BEGIN();
    a >>= b - 1;
    r = a >> 1;
    set_cc_ra(cpu, CC_OP_SHR, sz, r, a);
    cpu->regs[op->rm] = r;
    NEXT();
L_SAR_RCL:
    SHIFT_CL_BEGIN();
    a = (uint64_t)((int64_t)sext(a, sz) >> (b - 1));
    r = (uint64_t)((int64_t)a >> 1) & size_mask[sz];
    set_cc_ra(cpu, CC_OP_SHR, sz, r, a & size_mask[sz]);
    cpu->regs[op->rm] = r;
    NEXT();
#undef SHIFT_CL_BEGIN

/* A near branch has a 64-bit operand size only in 64-bit code (decode.c osz64). */
#define JCC_FAST(name, cond) \
L_##name: \
    if (cc_eval(cpu, cond)) { \
        if (op->imm16) \
            JUMP_IN_BLOCK(); \
        if (likely(op->sz == 3)) \
            JUMP_(cpu->block_rip + op->disp, END_DIRECT_OP_LINKED64); \
        JUMP(branch_target(cpu, op, cpu->block_rip + op->disp)); \
    } \
    NEXT();
    JCC_FAST(JO, 0) JCC_FAST(JNO, 1) JCC_FAST(JB, 2) JCC_FAST(JNB, 3)
    JCC_FAST(JZ, 4) JCC_FAST(JNZ, 5) JCC_FAST(JBE, 6) JCC_FAST(JA, 7)
    JCC_FAST(JS, 8) JCC_FAST(JNS, 9) JCC_FAST(JP, 10) JCC_FAST(JNP, 11)
    JCC_FAST(JL, 12) JCC_FAST(JGE, 13) JCC_FAST(JLE, 14) JCC_FAST(JG, 15)
#undef JCC_FAST

    /*
     * A flag producer fused with the JZ/JNZ (JB/JNB) after it: the body
     * does what the producer's own handler does, leaving the result in r
     * (CF in b for FUSED_C), then the branch is decided from that without
     * reading the lazy flags back.  op + 1 is the Jcc op, whose target,
     * link slot and in-block index the jump uses; icount counts both.
     */
#define FUSED_TAKE() do { \
        op++; \
        if (op->imm16) \
            JUMP_IN_BLOCK(); \
        if (likely(op->sz == 3)) \
            JUMP_(cpu->block_rip + op->disp, END_DIRECT_OP_LINKED64); \
        JUMP(branch_target(cpu, op, cpu->block_rip + op->disp)); \
    } while (0)
#define FUSED_Z(name, body) \
L_JZ_##name: \
    body; \
    if (r == 0) \
        FUSED_TAKE(); \
    op += 2; \
    DISPATCH(); \
L_JNZ_##name: \
    body; \
    if (r != 0) \
        FUSED_TAKE(); \
    op += 2; \
    DISPATCH();
    FUSED_Z(CMP8_MR,
            a = flat64_ld(cpu, tlb, op, 0); b = cpu->regs[op->reg] & 0xff; r = (a - b) & 0xff;
            set_cc(cpu, CC_OP_SUB, 0, r, a, b))
    FUSED_Z(CMP8_MI,
            a = flat64_ld(cpu, tlb, op, 0); b = op->imm & 0xff; r = (a - b) & 0xff;
            set_cc(cpu, CC_OP_SUB, 0, r, a, b))
    FUSED_Z(CMP8_RM,
            a = cpu->regs[op->reg] & 0xff; b = flat64_ld(cpu, tlb, op, 0); r = (a - b) & 0xff;
            set_cc(cpu, CC_OP_SUB, 0, r, a, b))
    FUSED_Z(DEC_R,
            sz = op->sz; b = cc_cf_fast(cpu); a = cpu->regs[op->rm] & size_mask[sz];
            r = (a - 1) & size_mask[sz]; set_cc_ra(cpu, CC_OP_DEC, sz, r, a); cpu->cc_aux = b;
            cpu->regs[op->rm] = r)
    FUSED_Z(DEC_R_KC,
            sz = op->sz; a = cpu->regs[op->rm] & size_mask[sz];
            r = (a - 1) & size_mask[sz]; set_cc_ra(cpu, CC_OP_DEC, sz, r, a); cpu->cc_aux = op->imm;
            cpu->regs[op->rm] = r)
    FUSED_Z(TEST_RR,
            sz = op->sz; r = cpu->regs[op->rm] & cpu->regs[op->reg] & size_mask[sz];
            set_cc_logic(cpu, sz, r))
    FUSED_Z(TEST8_RR,
            r = cpu->regs[op->rm] & cpu->regs[op->reg] & 0xff; set_cc_logic(cpu, 0, r))
    FUSED_Z(CMP_RI,
            sz = op->sz; a = cpu->regs[op->rm] & size_mask[sz]; b = op->imm;
            r = (a - b) & size_mask[sz]; set_cc(cpu, CC_OP_SUB, sz, r, a, b))
    FUSED_Z(CMP_RR,
            sz = op->sz; a = cpu->regs[op->rm] & size_mask[sz];
            b = cpu->regs[op->reg] & size_mask[sz];
            r = (a - b) & size_mask[sz]; set_cc(cpu, CC_OP_SUB, sz, r, a, b))
    FUSED_Z(CMP8_RI,
            a = cpu->regs[op->rm] & 0xff; b = op->imm & 0xff; r = (a - b) & 0xff;
            set_cc(cpu, CC_OP_SUB, 0, r, a, b))
    FUSED_Z(TEST8_RI,
            r = cpu->regs[op->rm] & op->imm & 0xff; set_cc_logic(cpu, 0, r))
    FUSED_Z(SUB_RI,
            sz = op->sz; a = cpu->regs[op->rm] & size_mask[sz]; b = op->imm;
            r = (a - b) & size_mask[sz]; set_cc(cpu, CC_OP_SUB, sz, r, a, b); cpu->regs[op->rm] = r)
    FUSED_Z(ADD_RI,
            sz = op->sz; a = cpu->regs[op->rm] & size_mask[sz]; b = op->imm;
            r = (a + b) & size_mask[sz]; set_cc(cpu, CC_OP_ADD, sz, r, a, b); cpu->regs[op->rm] = r)
#undef FUSED_Z
    /* CMP register, register (CMP_RR) and JB/JNB: CF is a < b. */
L_JB_CMP_RR:
    RR_BEGIN();
    set_cc(cpu, CC_OP_SUB, sz, (a - b) & size_mask[sz], a, b);
    if (a < b)
        FUSED_TAKE();
    op += 2;
    DISPATCH();
L_JNB_CMP_RR:
    RR_BEGIN();
    set_cc(cpu, CC_OP_SUB, sz, (a - b) & size_mask[sz], a, b);
    if (a >= b)
        FUSED_TAKE();
    op += 2;
    DISPATCH();
    /* CMP register, imm (CMP_RI) and JBE/JA: CF | ZF is a <= b (unsigned). */
L_JBE_CMP_RI:
    sz = op->sz; a = cpu->regs[op->rm] & size_mask[sz]; b = op->imm;
    set_cc(cpu, CC_OP_SUB, sz, (a - b) & size_mask[sz], a, b);
    if (a <= b)
        FUSED_TAKE();
    op += 2;
    DISPATCH();
L_JA_CMP_RI:
    sz = op->sz; a = cpu->regs[op->rm] & size_mask[sz]; b = op->imm;
    set_cc(cpu, CC_OP_SUB, sz, (a - b) & size_mask[sz], a, b);
    if (a > b)
        FUSED_TAKE();
    op += 2;
    DISPATCH();
    /* CMP memory, G (CMP_MR_F) and JB/JNB: CF is a < b. */
L_JB_CMP_MR:
    sz = op->sz; a = flat64_ld(cpu, tlb, op, sz); b = cpu->regs[op->reg] & size_mask[sz];
    set_cc(cpu, CC_OP_SUB, sz, (a - b) & size_mask[sz], a, b);
    if (a < b)
        FUSED_TAKE();
    op += 2;
    DISPATCH();
L_JNB_CMP_MR:
    sz = op->sz; a = flat64_ld(cpu, tlb, op, sz); b = cpu->regs[op->reg] & size_mask[sz];
    set_cc(cpu, CC_OP_SUB, sz, (a - b) & size_mask[sz], a, b);
    if (a >= b)
        FUSED_TAKE();
    op += 2;
    DISPATCH();
#undef FUSED_TAKE
    /*
     * A load (LD8_F/_FB, LD64_F/_FB: the full _F address fits both) and
     * then the fused flag producer and branch after it, whose handler it
     * goes to without a dispatch (tcg_specialize).
     */
#define LOAD_THEN(name, load, target) \
L_##name: \
    load; \
    op++; \
    goto L_##target;
#define LD8_BODY() \
    a = flat64_ld(cpu, tlb, op, 0); \
    cpu->regs[op->reg] = (cpu->regs[op->reg] & ~(uint64_t)0xff) | a
#define LD64_BODY() cpu->regs[op->reg] = flat64_ld(cpu, tlb, op, 3)
    LOAD_THEN(LD8_JZ_TEST8_RR, LD8_BODY(), JZ_TEST8_RR)
    LOAD_THEN(LD8_JNZ_TEST8_RR, LD8_BODY(), JNZ_TEST8_RR)
    LOAD_THEN(LD8_JZ_CMP8_RM, LD8_BODY(), JZ_CMP8_RM)
    LOAD_THEN(LD8_JNZ_CMP8_RM, LD8_BODY(), JNZ_CMP8_RM)
    LOAD_THEN(LD64_JZ_TEST_RR, LD64_BODY(), JZ_TEST_RR)
    LOAD_THEN(LD64_JNZ_TEST_RR, LD64_BODY(), JNZ_TEST_RR)
#undef LOAD_THEN
#undef LD8_BODY
#undef LD64_BODY

    /*
     * SSE fast forms (tcg_specialize).  SDM 3A Table 12-8: CR0.EM or
     * !CR4.OSFXSR -> #UD, CR0.TS -> #NM; a misaligned MOVDQA/MOVAPS operand
     * -> #GP(0).  Anything but the plain case (those checks, a TLB miss, a
     * page-crossing access) goes to the generic helper, which redoes the
     * instruction from scratch: nothing is written before that decision.
     */
#define SSE_CHECK() do { \
        if (unlikely((cpu->cr0 & (X86_CR0_EM | X86_CR0_TS)) | (~cpu->cr4 & CR4_OSFXSR))) \
            goto sse_slow; \
    } while (0)
#define XD (cpu->xmm[op->reg & 15])
#define XS (cpu->xmm[op->rm & 15])
    {
        const TLBEntry *e;
        XMMReg *d;
        const XMMReg *sx;
L_SSE_LDA:
        lin = flat64_lin(cpu, op);
        if (unlikely(lin & 15))
            goto sse_slow;
        goto sse_ld;
L_SSE_LDU:
        lin = flat64_lin(cpu, op);
    sse_ld:
        SSE_CHECK();
        e = &tlb[(lin >> 12) & (TLB_SIZE - 1)];
        if (unlikely(e->tag_r != ((lin + 15) & TLB_PAGE_MASK)))
            goto sse_slow;
        {
            const uint8_t *p = (const uint8_t *)(e->addend + (uintptr_t)lin);
            d = &XD;
            d->q[0] = ld64_le(p);
            d->q[1] = ld64_le(p + 8);
        }
        NEXT();
L_SSE_STA:
        lin = flat64_lin(cpu, op);
        if (unlikely(lin & 15))
            goto sse_slow;
        goto sse_st;
L_SSE_STU:
        lin = flat64_lin(cpu, op);
    sse_st:
        SSE_CHECK();
        e = &tlb[(lin >> 12) & (TLB_SIZE - 1)];
        if (unlikely(e->tag_w != ((lin + 15) & TLB_PAGE_MASK)))
            goto sse_slow;
        {
            uint8_t *p = (uint8_t *)(e->addend + (uintptr_t)lin);
            sx = &XD;
            st64_le(p, sx->q[0]);
            st64_le(p + 8, sx->q[1]);
        }
        NEXT();
L_SSE_MOV_RR:
        SSE_CHECK();
        XD = XS;
        NEXT();
L_SSE_MOVD_XR:
        SSE_CHECK();
        d = &XD;
        d->q[0] = cpu->regs[op->rm] & size_mask[op->sz];
        d->q[1] = 0;
        NEXT();
L_SSE_PMOVMSKB:
        SSE_CHECK();
        {
            /* Gather the top bit of each byte: bit 8k+7 lands in bit 56+k. */
            const uint64_t H = 0x8080808080808080ull, M = 0x0002040810204081ull;
            sx = &XS;
            cpu->regs[op->reg] = (((sx->q[0] & H) * M) >> 56) | ((((sx->q[1] & H) * M) >> 56) << 8);
        }
        NEXT();
L_SSE_PXOR:
        SSE_CHECK();
        d = &XD; sx = &XS;
        d->q[0] ^= sx->q[0]; d->q[1] ^= sx->q[1];
        NEXT();
L_SSE_POR:
        SSE_CHECK();
        d = &XD; sx = &XS;
        d->q[0] |= sx->q[0]; d->q[1] |= sx->q[1];
        NEXT();
L_SSE_PAND:
        SSE_CHECK();
        d = &XD; sx = &XS;
        d->q[0] &= sx->q[0]; d->q[1] &= sx->q[1];
        NEXT();
L_SSE_PANDN:
        SSE_CHECK();
        d = &XD; sx = &XS;
        d->q[0] = ~d->q[0] & sx->q[0]; d->q[1] = ~d->q[1] & sx->q[1];
        NEXT();
L_SSE_PCMPEQB:
        SSE_CHECK();
        d = &XD; sx = &XS;
        for (int i = 0; i < 2; i++) {
            /* A byte of x is nonzero iff bit 7 of (low 7 bits + 0x7f) | x is set. */
            const uint64_t L7 = 0x7f7f7f7f7f7f7f7full;
            uint64_t x = d->q[i] ^ sx->q[i];
            uint64_t nz = (((x & L7) + L7) | x) & ~L7;
            d->q[i] = ((nz ^ ~L7) >> 7) * 0xff;
        }
        NEXT();
L_SSE_PCMPEQD:
        SSE_CHECK();
        d = &XD; sx = &XS;
        for (int i = 0; i < 4; i++)
            d->d[i] = d->d[i] == sx->d[i] ? ~0u : 0;
        NEXT();
L_SSE_PMINUB:
        SSE_CHECK();
        d = &XD; sx = &XS;
        for (int i = 0; i < 16; i++)
            d->b[i] = d->b[i] < sx->b[i] ? d->b[i] : sx->b[i];
        NEXT();
L_SSE_PSUBB:
        SSE_CHECK();
        d = &XD; sx = &XS;
        for (int i = 0; i < 16; i++)
            d->b[i] = (uint8_t)(d->b[i] - sx->b[i]);
        NEXT();
L_SSE_PSHUFD:
        SSE_CHECK();
        {
            XMMReg t = XS;
            unsigned im = (unsigned)op->imm;
            d = &XD;
            for (int i = 0; i < 4; i++)
                d->d[i] = t.d[(im >> (2 * i)) & 3];
        }
        NEXT();
L_SSE_PUNPCKLBW:
        SSE_CHECK();
        {
            XMMReg t = XD, u = XS;
            d = &XD;
            for (int i = 0; i < 8; i++) {
                d->b[2 * i] = t.b[i];
                d->b[2 * i + 1] = u.b[i];
            }
        }
        NEXT();
L_SSE_PUNPCKLWD:
        SSE_CHECK();
        {
            XMMReg t = XD, u = XS;
            d = &XD;
            for (int i = 0; i < 4; i++) {
                d->w[2 * i] = t.w[i];
                d->w[2 * i + 1] = u.w[i];
            }
        }
        NEXT();
L_SSE_PSHUFB:
        SSE_CHECK();
        {
            XMMReg t = XD, u = XS;
            d = &XD;
            for (int i = 0; i < 16; i++)
                d->b[i] = (u.b[i] & 0x80) ? 0 : t.b[u.b[i] & 15];
        }
        NEXT();
L_SSE_PCMPISTRI:
        /* glibc's SSE4.2 strcspn, strpbrk, strspn and strcmp (ops-sse-0f3a.c). */
        SSE_CHECK();
        if (op->rm != NOREG) {
            sse_pcmpistri(cpu, &XD, &XS, (unsigned)op->imm & 0xff);
            NEXT();
        }
        lin = flat64_lin(cpu, op);
        e = &tlb[(lin >> 12) & (TLB_SIZE - 1)];
        if (unlikely(e->tag_r != ((lin + 15) & TLB_PAGE_MASK)))
            goto sse_slow;
        {
            const uint8_t *p = (const uint8_t *)(e->addend + (uintptr_t)lin);
            XMMReg m;
            m.q[0] = ld64_le(p);
            m.q[1] = ld64_le(p + 8);
            sse_pcmpistri(cpu, &XD, &m, (unsigned)op->imm & 0xff);
        }
        NEXT();
    sse_slow:
        SYNC_RIP();
        HELPER(helper_sse(cpu, op));
    }
#undef SSE_CHECK
#undef XD
#undef XS
#undef RR_BEGIN
#undef RI_BEGIN
#undef ARITH_END
#undef LOGIC_END
}

/*
 * Rewrite the ops of a freshly decoded block to the specialised kinds
 * above where their preconditions hold.  Nothing else looks at op->idx
 * after this except the interpreter (tb_kill's OP_EXIT aside).
 */
_Static_assert(TB_MAX_INSNS + 1 <= UINT8_MAX, "DecodedOp.seq counts the ops of a block");
_Static_assert(OP_LD16_F - OP_LD32_F == OP_LD16 - OP_LD32, "the _F run mirrors LD32..LD16");
_Static_assert(OP_LD16_FB - OP_LD32_FB == OP_LD16 - OP_LD32, "the _FB run mirrors LD32..LD16");

/*
 * The SSE fast kind of an OP_SSE op, or OP_SSE.  Only the forms whose
 * generic decoding (ops-sse.c) is exactly the fast handler's: mandatory
 * prefix as listed, 0F map, register or flat-64 memory operand as noted.
 */
static uint16_t sse_fast_kind(const DecodedOp *op, bool code64)
{
    unsigned opc = op->imm16, pf = op->sub & 3;     /* imm16 >> 8: 0F 38 / 0F 3A maps */
    bool reg = op->rm != NOREG;
    bool flat = code64 && op->asz == 3 && op->seg < SEG_FS && op->base != BASE_RIP;
    enum { NONE = 0, P66 = 1, PF3 = 2 };
    if (!reg) {
        if (!flat)
            return OP_SSE;
        switch (opc) {
        case 0x6f: return pf == P66 ? OP_SSE_LDA : pf == PF3 ? OP_SSE_LDU : OP_SSE;   /* MOVDQA/U */
        case 0x7f: return pf == P66 ? OP_SSE_STA : pf == PF3 ? OP_SSE_STU : OP_SSE;
        case 0x28: return pf <= P66 ? OP_SSE_LDA : OP_SSE;                      /* MOVAPS/PD */
        case 0x29: return pf <= P66 ? OP_SSE_STA : OP_SSE;
        case 0x10: return pf <= P66 ? OP_SSE_LDU : OP_SSE;                      /* MOVUPS/PD */
        case 0x11: return pf <= P66 ? OP_SSE_STU : OP_SSE;
        case 0x263: return pf == P66 ? OP_SSE_PCMPISTRI : OP_SSE;          /* 0F 3A 63 */
        default: return OP_SSE;
        }
    }
    if (opc == 0x6f && (pf == P66 || pf == PF3))
        return OP_SSE_MOV_RR;
    if ((opc == 0x28 || opc == 0x10) && pf <= P66)
        return OP_SSE_MOV_RR;
    if (pf != P66)
        return OP_SSE;
    switch (opc) {
    case 0x6e: return op->rm < 16 ? OP_SSE_MOVD_XR : OP_SSE;
    case 0xd7: return OP_SSE_PMOVMSKB;
    case 0xef: return OP_SSE_PXOR;
    case 0xeb: return OP_SSE_POR;
    case 0xdb: return OP_SSE_PAND;
    case 0xdf: return OP_SSE_PANDN;
    case 0x74: return OP_SSE_PCMPEQB;
    case 0x76: return OP_SSE_PCMPEQD;
    case 0xda: return OP_SSE_PMINUB;
    case 0xf8: return OP_SSE_PSUBB;
    case 0x70: return OP_SSE_PSHUFD;
    case 0x60: return OP_SSE_PUNPCKLBW;
    case 0x61: return OP_SSE_PUNPCKLWD;
    case 0x100: return OP_SSE_PSHUFB;                   /* 0F 38 00 */
    case 0x263: return OP_SSE_PCMPISTRI;                /* 0F 3A 63 */
    default: return OP_SSE;
    }
}

/*
 * Dead flags.  Most flag results are never read: compilers use ALU ops for
 * their value, and the next compare or ALU op overwrites the flags.  A
 * backward pass over the block (flags_liveness) finds the register ALU ops
 * whose flags are overwritten before anything can see them and gives them
 * the xx_NF kinds, which skip the lazy-flag stores.
 *
 * What can see the flags: every reader (Jcc, SETcc, CMOVcc, ADC/SBB,
 * PUSHF, LAHF, ..., and INC/DEC, which keep CF: SDM 2A "INC"), and every
 * point where the block can be left, since EFLAGS is then architectural
 * state: its end and every branch (the next block may read them), and
 * every op that can fault or call out (an exception frame holds EFLAGS,
 * SDM 3A §6.12.1; a helper may read them).  So the flags are live before
 * every op except the register-only kinds of flag_effect, which neither
 * fault nor leave the block before they write the flags.  A memory ALU op
 * is no overwriter: it may fault before it writes them.  Branches count as
 * readers of everything, so an in-block jump target needs no care: its
 * live-in set, computed from what follows it, is exact, and the jump
 * source assumes the worst.
 *
 * Two classes are tracked: CF, which INC/DEC pass on, and the other five.
 * Flat loads are the exception to the above (FX_LOAD): they may fault, but
 * only in their slow path, which can rebuild the flags of the one _NF op
 * the lazy flags lag behind (flags_recover).  Where they may see the flags
 * LIVE_FAULT is set instead of LIVE_ALL: an op with nothing else live
 * after it may still lose its flags, if the forward pass below finds that
 * they can be rebuilt, but INC/DEC cannot turn into ADD/SUB, whose CF
 * would differ.
 */
enum { LIVE_CF = 1, LIVE_OSZAP = 2, LIVE_ALL = LIVE_CF | LIVE_OSZAP, LIVE_FAULT = 4 };
enum {
    FX_OTHER,           /* may read the flags, fault or leave the block */
    FX_NONE,            /* neither reads nor writes the flags, cannot fault */
    FX_WRITE,           /* writes all six flags, reads none, cannot fault */
    FX_INCDEC,          /* INC_R / DEC_R: writes five flags, passes CF on (_KC: sets it) */
    FX_PARTIAL,         /* ROL_RI / ROR_RI (CF, OF), BSF_RR (ZF): writes some, passes the others on */
    FX_WRITE_BRANCH,    /* a fused register compare: writes all six, then branches */
    FX_DEC_BRANCH,      /* J<cc>_DEC_R: passes CF on, then branches */
    /*
     * Flat 64-bit loads (flat64_ld_lin), which fault only in their slow
     * path, where flags_recover rebuilds skipped flags: FX_LOAD leaves the
     * flags alone, FX_LOAD_WRITE then writes all six, FX_LOAD_WRITE_BRANCH
     * then branches too.
     */
    FX_LOAD,
    FX_LOAD_WRITE,
    FX_LOAD_WRITE_BRANCH,
};

static int flag_effect(unsigned idx)
{
    switch (idx) {
    case OP_MOV_RR: case OP_MOV64_RR: case OP_MOV_RIW: case OP_MOVZX8_RR: case OP_MOVZX16_RR:
    case OP_MOVSXD_RR: case OP_LEA_B: case OP_LEA_BI:
    case OP_ADD_RR_NF: case OP_OR_RR_NF: case OP_AND_RR_NF: case OP_SUB_RR_NF: case OP_XOR_RR_NF:
    case OP_ADD_RI_NF: case OP_OR_RI_NF: case OP_AND_RI_NF: case OP_SUB_RI_NF: case OP_XOR_RI_NF:
    case OP_SHL_RI_NF: case OP_SHR_RI_NF: case OP_SAR_RI_NF: case OP_INC_R_NF: case OP_DEC_R_NF:
    case OP_ROL_RI_NF: case OP_ROR_RI_NF: case OP_NOT_R: case OP_BSF_RR_NF:
        return FX_NONE;
    case OP_ROL_RI: case OP_ROR_RI: case OP_BSF_RR:
        return FX_PARTIAL;
    /* Not SHx_RCL: a count of 0 leaves the flags alone. */
    case OP_ADD_RR: case OP_OR_RR: case OP_AND_RR: case OP_SUB_RR: case OP_XOR_RR:
    case OP_CMP_RR: case OP_TEST_RR:
    case OP_ADD_RI: case OP_OR_RI: case OP_AND_RI: case OP_SUB_RI: case OP_XOR_RI:
    case OP_CMP_RI: case OP_TEST_RI:
    case OP_SHL_RI: case OP_SHR_RI: case OP_SAR_RI: case OP_SHIFT8_RI:
    case OP_ADD16_RI: case OP_CMP16_RR: case OP_IMUL_RR:
    case OP_CMP8_RI: case OP_TEST8_RR: case OP_TEST8_RI:
        return FX_WRITE;
    case OP_INC_R: case OP_DEC_R: case OP_INC_R_KC: case OP_DEC_R_KC:
        return FX_INCDEC;
    /* The fused forms without a memory operand (the memory ones may fault first). */
    case OP_JZ_TEST_RR: case OP_JNZ_TEST_RR: case OP_JZ_TEST8_RR: case OP_JNZ_TEST8_RR:
    case OP_JZ_CMP_RI: case OP_JNZ_CMP_RI: case OP_JZ_CMP_RR: case OP_JNZ_CMP_RR:
    case OP_JZ_CMP8_RI: case OP_JNZ_CMP8_RI: case OP_JZ_TEST8_RI: case OP_JNZ_TEST8_RI:
    case OP_JBE_CMP_RI: case OP_JA_CMP_RI: case OP_JZ_SUB_RI: case OP_JNZ_SUB_RI:
    case OP_JZ_ADD_RI: case OP_JNZ_ADD_RI: case OP_JB_CMP_RR: case OP_JNB_CMP_RR:
    case OP_JZ_DEC_R_KC: case OP_JNZ_DEC_R_KC:
        return FX_WRITE_BRANCH;
    case OP_JZ_DEC_R: case OP_JNZ_DEC_R:
        return FX_DEC_BRANCH;
    case OP_LD32_F: case OP_LD64_F: case OP_LDZX8_F: case OP_LDZX16_F: case OP_LD8_F: case OP_LD16_F:
    case OP_LD32_FB: case OP_LD64_FB: case OP_LDZX8_FB: case OP_LDZX16_FB: case OP_LD8_FB:
    case OP_LD16_FB: case OP_POP64_R:
        return FX_LOAD;
    case OP_ADD_RM_F: case OP_OR_RM_F: case OP_AND_RM_F: case OP_SUB_RM_F: case OP_XOR_RM_F:
    case OP_CMP_RM_F: case OP_CMP_MR_F: case OP_CMP8_MR_F: case OP_CMP8_MI_F: case OP_CMP8_RM_F:
    case OP_ADD_RM_FB: case OP_OR_RM_FB: case OP_AND_RM_FB: case OP_SUB_RM_FB: case OP_XOR_RM_FB:
    case OP_CMP_RM_FB: case OP_CMP_MR_FB: case OP_CMP8_MR_FB: case OP_CMP8_MI_FB: case OP_CMP8_RM_FB:
        return FX_LOAD_WRITE;
    case OP_JZ_CMP8_MR: case OP_JNZ_CMP8_MR: case OP_JZ_CMP8_MI: case OP_JNZ_CMP8_MI:
    case OP_JZ_CMP8_RM: case OP_JNZ_CMP8_RM: case OP_JB_CMP_MR: case OP_JNB_CMP_MR:
        return FX_LOAD_WRITE_BRANCH;
    default:
        return FX_OTHER;
    }
}

/* The xx_NF kind of a flag writer, or 0 if it has none. */
static uint16_t nf_kind(unsigned idx)
{
    switch (idx) {
    case OP_ADD_RR: return OP_ADD_RR_NF;
    case OP_OR_RR: return OP_OR_RR_NF;
    case OP_AND_RR: return OP_AND_RR_NF;
    case OP_SUB_RR: return OP_SUB_RR_NF;
    case OP_XOR_RR: return OP_XOR_RR_NF;
    case OP_ADD_RI: return OP_ADD_RI_NF;
    case OP_OR_RI: return OP_OR_RI_NF;
    case OP_AND_RI: return OP_AND_RI_NF;
    case OP_SUB_RI: return OP_SUB_RI_NF;
    case OP_XOR_RI: return OP_XOR_RI_NF;
    case OP_SHL_RI: return OP_SHL_RI_NF;
    case OP_SHR_RI: return OP_SHR_RI_NF;
    case OP_SAR_RI: return OP_SAR_RI_NF;
    default: return 0;
    }
}

static bool is_nf_kind(unsigned idx)
{
    return idx >= OP_ADD_RR_NF && idx <= OP_DEC_R_NF;
}

/* target[i]: ops[i] is the target of an in-block jump (op->imm16, tcg_specialize). */
static bool block_jump_targets(const TranslatedBlock *tb, bool target[TB_MAX_INSNS + 1])
{
    if (tb->n_ops > TB_MAX_INSNS)
        return false;
    memset(target, 0, (TB_MAX_INSNS + 1) * sizeof(bool));
    for (uint32_t i = 0; i < tb->n_ops; i++) {
        const DecodedOp *op = &tb->ops[i];
        bool jump = op->idx == OP_JMP64_REL || op->idx == OP_JMP_REL || op->idx == OP_JCC ||
                    (op->idx >= OP_JO && op->idx <= OP_JG);
        if (jump && op->imm16 && op->imm16 <= tb->n_ops)
            target[op->imm16 - 1] = true;
    }
    return true;
}

static bool is_load_kind(int fx)
{
    return fx == FX_LOAD || fx == FX_LOAD_WRITE || fx == FX_LOAD_WRITE_BRANCH;
}

/* The flag-writing kind an _NF kind came from. */
static uint16_t flag_kind_of_nf(unsigned idx)
{
    static const uint16_t from[] = {
        OP_ADD_RR, OP_OR_RR, OP_AND_RR, OP_SUB_RR, OP_XOR_RR,
        OP_ADD_RI, OP_OR_RI, OP_AND_RI, OP_SUB_RI, OP_XOR_RI,
        OP_SHL_RI, OP_SHR_RI, OP_SAR_RI, OP_ROL_RI, OP_ROR_RI, OP_INC_R, OP_DEC_R,
    };
    _Static_assert(OP_DEC_R_NF - OP_ADD_RR_NF + 1 == ARRAY_LEN(from), "the _NF kinds are one run");
    return from[idx - OP_ADD_RR_NF];
}

/*
 * Registers whose values flags_recover needs to rebuild the flags of _NF
 * op nf, or 0 if it cannot: a shift loses bits, and ADD/SUB r, r overwrite
 * their second operand.
 */
static unsigned nf_inputs(const DecodedOp *nf)
{
    switch (nf->idx) {
    case OP_AND_RR_NF: case OP_OR_RR_NF: case OP_XOR_RR_NF:
    case OP_ADD_RI_NF: case OP_OR_RI_NF: case OP_AND_RI_NF: case OP_SUB_RI_NF: case OP_XOR_RI_NF:
    case OP_INC_R_NF: case OP_DEC_R_NF: case OP_ROL_RI_NF: case OP_ROR_RI_NF:
        return 1u << nf->rm;
    case OP_ADD_RR_NF: case OP_SUB_RR_NF:
        return nf->rm == nf->reg ? 0 : 1u << nf->rm | 1u << nf->reg;
    default:
        return 0;
    }
}

/* Registers an FX_NONE or FX_LOAD op writes (all of them for kinds not listed). */
static unsigned op_written_regs(const DecodedOp *op)
{
    switch (op->idx) {
    case OP_MOV_RR: case OP_MOV64_RR: case OP_NOT_R:
        return 1u << op->rm;
    case OP_MOV_RIW: case OP_MOVZX8_RR: case OP_MOVZX16_RR: case OP_MOVSXD_RR:
    case OP_LEA_B: case OP_LEA_BI:
    case OP_LD32_F: case OP_LD64_F: case OP_LDZX8_F: case OP_LDZX16_F: case OP_LD8_F: case OP_LD16_F:
    case OP_LD32_FB: case OP_LD64_FB: case OP_LDZX8_FB: case OP_LDZX16_FB: case OP_LD8_FB:
    case OP_LD16_FB:
        return 1u << op->reg;
    case OP_POP64_R:
        return 1u << op->reg | 1u << R_ESP;
    default:
        return ~0u;
    }
}

static void flags_liveness(TranslatedBlock *tb)
{
    unsigned live = LIVE_ALL;           /* after the last op: the block's end */
    int pending = -1;                   /* the _NF op whose flags are the architectural ones */
    unsigned inputs = 0;
    bool target[TB_MAX_INSNS + 1];
    if (!block_jump_targets(tb, target))
        return;
    for (uint32_t i = tb->n_ops; i-- > 0;) {
        DecodedOp *op = &tb->ops[i];
        switch (flag_effect(op->idx)) {
        case FX_NONE:
            break;
        case FX_INCDEC:
            if ((live & LIVE_ALL) == 0 && (live & LIVE_FAULT) &&
                (op->idx == OP_INC_R || op->idx == OP_DEC_R)) {
                /*
                 * Only a fault may see the flags: INC_R_NF / DEC_R_NF, whose
                 * flags flags_recover rebuilds, CF from the lazy flags still
                 * as they were before them.
                 */
                op->idx = op->idx == OP_INC_R ? OP_INC_R_NF : OP_DEC_R_NF;
                live = LIVE_CF;
                break;
            }
            if (live & (LIVE_CF | LIVE_FAULT)) {
                /* The _KC kinds set CF themselves (known_cf). */
                live = op->idx == OP_INC_R || op->idx == OP_DEC_R ? LIVE_CF : 0;
                break;
            }
            /* With CF dead, INC/DEC are ADD/SUB 1: the same OF SF ZF AF PF (SDM 2A "INC"). */
            op->idx = op->idx == OP_INC_R || op->idx == OP_INC_R_KC ? OP_ADD_RI : OP_SUB_RI;
            op->imm = 1;
            /* fall through */
        case FX_WRITE:
            if (!(live & LIVE_ALL) && nf_kind(op->idx))
                op->idx = nf_kind(op->idx);
            live = 0;
            break;
        case FX_PARTIAL:
            /*
             * ROL/ROR write CF and OF, BSF ZF, and they keep the others.
             * With no flag live after them, the _NF kind; the flags before
             * it then matter only if a fault may see its flags
             * (LIVE_FAULT), which flags_recover builds on top of them (for
             * ROL/ROR, from the result), so they must be exact.  The
             * flag-writing kinds read them all (cc_compute_all).
             */
            if (!(live & LIVE_ALL) && (op->idx != OP_BSF_RR || !(live & LIVE_FAULT))) {
                op->idx = op->idx == OP_ROL_RI ? OP_ROL_RI_NF :
                          op->idx == OP_ROR_RI ? OP_ROR_RI_NF : OP_BSF_RR_NF;
                live = (live & LIVE_FAULT) ? LIVE_ALL : 0;
            } else {
                live = LIVE_ALL;
            }
            break;
        case FX_WRITE_BRANCH:
            live = 0;
            break;
        case FX_DEC_BRANCH:
            live = LIVE_CF;
            break;
        case FX_LOAD_WRITE:             /* may fault before it writes them */
        case FX_LOAD_WRITE_BRANCH:
            live = LIVE_FAULT;
            break;
        case FX_LOAD:
            live |= LIVE_FAULT;
            break;
        default:
            live = LIVE_ALL;
            break;
        }
    }
    /*
     * Forward: mark where the lazy flags lag behind an _NF op
     * (PFX_CC_STALE), up to the next writer.  A load there may fault, and
     * the exception must see that op's flags: its slow path rebuilds them
     * (flags_recover) from the _NF op's operands, which must still be in
     * their registers; op->imm16 tells it where the _NF op is and what it
     * was (its kind may be gone, tb_kill).  Where that cannot work the _NF
     * op gets its flags back.  That includes loads after an in-block jump
     * target: coming from the jump, the flags are the jump's, not the _NF
     * op's.
     */
    for (uint32_t i = 0; i < tb->n_ops; i++) {
        DecodedOp *op = &tb->ops[i];
        int fx = flag_effect(op->idx);
        if (target[i])
            inputs = 0;
        if (pending >= 0) {
            op->pfx |= PFX_CC_STALE;
            if (is_load_kind(fx)) {
                DecodedOp *nf = &tb->ops[pending];
                if (!inputs) {
                    nf->idx = flag_kind_of_nf(nf->idx);
                    for (uint32_t j = (uint32_t)pending + 1; j <= i; j++)
                        tb->ops[j].pfx &= (uint8_t)~PFX_CC_STALE;
                    pending = -1;
                } else {
                    op->imm16 = (uint16_t)((i - (uint32_t)pending) | (nf->idx - OP_ADD_RR_NF) << 8);
                }
            }
        }
        if (is_nf_kind(op->idx)) {
            pending = (int)i;
            inputs = nf_inputs(op);
        } else if (fx == FX_NONE || fx == FX_LOAD) {
            if (op_written_regs(op) & inputs)
                inputs = 0;             /* overwritten: the next load there gives the flags back */
        } else {
            pending = -1;
        }
    }
}

/*
 * Known CF for INC/DEC.  They keep CF (SDM 2A "INC", "DEC"), so they read
 * it from the lazy flags, a switch on whatever produced them.  Often CF is
 * known when they run: a logic op clears it (SDM 2A "AND", "OR", "XOR",
 * "TEST": CF = 0), and a Jcc that fell through says its condition was
 * false: JB and JBE give CF = 0, JNB gives CF = 1, and JNZ after a compare
 * or subtraction says the operands were equal, so there was no borrow.  A
 * forward pass along the fall-through path finds these and gives INC/DEC
 * the _KC kinds, which take CF from op->imm and so read no flags at all
 * (more flags die for flags_liveness, which runs after).  Nothing is known
 * at the block's start or at an in-block jump target, which is also
 * reached from elsewhere.
 */
enum { CF_0, CF_1, CF_UNKNOWN };
enum { PROD_OTHER, PROD_LOGIC, PROD_SUB };      /* what wrote the flags last */

/* The generic LD32..LD16 run kind of an _F or _FB memory op (same order, tcg_specialize). */
static unsigned mem_generic_kind(unsigned idx)
{
    if (idx >= OP_LD32_F && idx <= OP_LD16_F)
        return idx - (OP_LD32_F - OP_LD32);
    if (idx >= OP_LD32_FB && idx <= OP_LD16_FB)
        return idx - (OP_LD32_FB - OP_LD32);
    return idx;
}

static void known_cf(TranslatedBlock *tb)
{
    bool target[TB_MAX_INSNS + 1];
    int cf = CF_UNKNOWN, prod = PROD_OTHER;
    if (!block_jump_targets(tb, target))
        return;
    for (uint32_t i = 0; i < tb->n_ops; i++) {
        DecodedOp *op = &tb->ops[i];
        unsigned k = mem_generic_kind(op->idx);
        if (target[i]) {
            cf = CF_UNKNOWN;
            prod = PROD_OTHER;
        }
        switch (k) {
        case OP_INC_R: case OP_DEC_R: case OP_JZ_DEC_R: case OP_JNZ_DEC_R:
            if (cf != CF_UNKNOWN) {
                op->idx = k == OP_INC_R ? OP_INC_R_KC : k == OP_DEC_R ? OP_DEC_R_KC :
                          k == OP_JZ_DEC_R ? OP_JZ_DEC_R_KC : OP_JNZ_DEC_R_KC;
                op->imm = cf == CF_1;
            }
            prod = PROD_OTHER;              /* CF as it was */
            break;
        /* Flags unchanged (when the op falls through to the next one). */
        case OP_LD32: case OP_LD64: case OP_LDZX8: case OP_LDZX16: case OP_LD8: case OP_LD16:
        case OP_ST8: case OP_ST16: case OP_ST32: case OP_ST64: case OP_PUSH64_R: case OP_POP64_R:
            break;
        case OP_OR_RR: case OP_AND_RR: case OP_XOR_RR: case OP_TEST_RR:
        case OP_OR_RI: case OP_AND_RI: case OP_XOR_RI: case OP_TEST_RI:
        case OP_TEST8_RR: case OP_TEST8_RI: case OP_OR_RM: case OP_AND_RM: case OP_XOR_RM:
        case OP_JZ_TEST_RR: case OP_JNZ_TEST_RR: case OP_JZ_TEST8_RR: case OP_JNZ_TEST8_RR:
        case OP_JZ_TEST8_RI: case OP_JNZ_TEST8_RI:
            cf = CF_0;
            prod = PROD_LOGIC;
            break;
        case OP_SUB_RR: case OP_CMP_RR: case OP_SUB_RI: case OP_CMP_RI: case OP_CMP16_RR:
        case OP_CMP8_RI: case OP_SUB_RM: case OP_CMP_RM: case OP_CMP_MR: case OP_CMP8_MR:
        case OP_CMP8_MI: case OP_CMP8_RM:
        case OP_JZ_CMP8_MR: case OP_JNZ_CMP8_MR: case OP_JZ_CMP8_MI: case OP_JNZ_CMP8_MI:
        case OP_JZ_CMP8_RM: case OP_JNZ_CMP8_RM: case OP_JZ_CMP_RI: case OP_JNZ_CMP_RI:
        case OP_JZ_CMP_RR: case OP_JNZ_CMP_RR: case OP_JZ_CMP8_RI: case OP_JNZ_CMP8_RI:
        case OP_JZ_SUB_RI: case OP_JNZ_SUB_RI: case OP_JB_CMP_RR: case OP_JNB_CMP_RR:
        case OP_JBE_CMP_RI: case OP_JA_CMP_RI: case OP_JB_CMP_MR: case OP_JNB_CMP_MR:
            cf = CF_UNKNOWN;
            prod = PROD_SUB;
            break;
        /* Falling through a Jcc: its condition was false. */
        case OP_JB: case OP_JBE:
            cf = CF_0;
            break;
        case OP_JNB:
            cf = CF_1;
            break;
        case OP_JNZ:
            if (prod == PROD_SUB)
                cf = CF_0;              /* ZF = 1: equal operands, no borrow */
            break;
        case OP_JO: case OP_JNO: case OP_JZ: case OP_JA: case OP_JS: case OP_JNS:
        case OP_JP: case OP_JNP: case OP_JL: case OP_JGE: case OP_JLE: case OP_JG:
            break;
        default:
            if (flag_effect(op->idx) != FX_NONE) {
                cf = CF_UNKNOWN;
                prod = PROD_OTHER;
            }
            break;
        }
    }
}

/*
 * Can op's memory operand take an _F address (flat64_lin)?  64-bit code,
 * a 64-bit address through a segment without a base; a RIP-relative one
 * becomes relative to the block's start (BASE_BLOCK_RIP) if it fits.
 */
/*
 * An FS- or GS-relative memory operand of 64-bit code with a 64-bit
 * address (TLS in user space, per-CPU data in Linux): in 64-bit mode only
 * these two segments have a base (SDM 3A §3.4.4), added to the effective
 * address.  With a free base or index slot, the base goes there
 * (XREG_SEG_BASE, scale 1) and the operand is an _F address; true if op
 * is one now (any other segment: nothing to do).  Not RIP-relative ones.
 * Only for kinds whose slow paths never hand op to a generic handler
 * (op_lin would add the base a second time): not the SSE kinds.
 */
static bool flat64_fold_seg_base(DecodedOp *op)
{
    if (op->seg < SEG_FS)
        return true;
    if (op->seg > SEG_GS || op->base == BASE_RIP)
        return false;
    if (op->base == REG_ZERO) {
        op->base = XREG_SEG_BASE(op->seg);
    } else if (op->index == REG_ZERO) {
        op->index = XREG_SEG_BASE(op->seg);
        op->scale = 0;
    } else {
        return false;
    }
    return true;
}

static bool flat64_operand(DecodedOp *op, bool code64)
{
    int64_t disp;
    if (!code64 || op->rm != NOREG || op->asz != 3)
        return false;
    if (op->seg >= SEG_FS)
        return flat64_fold_seg_base(op);
    if (op->base != BASE_RIP)
        return true;
    disp = (int64_t)op->disp + op->off + op->len;
    if (disp > INT32_MAX)
        return false;
    op->disp = (int32_t)disp;
    op->base = BASE_BLOCK_RIP;
    return true;
}

void tcg_specialize(TranslatedBlock *tb)
{
    static const uint16_t alu_rr[8] = {
        OP_ADD_RR, OP_OR_RR, 0, 0, OP_AND_RR, OP_SUB_RR, OP_XOR_RR, OP_CMP_RR,
    };
    static const uint16_t alu_rm[8] = {
        OP_ADD_RM, OP_OR_RM, 0, 0, OP_AND_RM, OP_SUB_RM, OP_XOR_RM, OP_CMP_RM,
    };
    static const uint16_t alu_ri[8] = {
        OP_ADD_RI, OP_OR_RI, 0, 0, OP_AND_RI, OP_SUB_RI, OP_XOR_RI, OP_CMP_RI,
    };
    bool code64 = (tb->flags & TB_FLAG_SIZE_MASK) == TB_FLAG_CODE64;
    /*
     * Not in blocks that must return to the run loop after one instruction,
     * nor where instruction breakpoints are checked at each block entry.
     */
    bool in_block_jumps = code64 && !(tb->flags & (TB_FLAGS_ALONE | TB_FLAG_BP));
    unsigned exits = 0;
    for (uint32_t i = 0; i <= tb->n_ops; i++) {
        DecodedOp *op = &tb->ops[i];
        op->seq = (uint8_t)(i + 1);         /* ops[n_ops], the EXIT sentinel, too */
        switch (op->idx) {
        case OP_JMP_REL:
            /*
             * One the decoder followed (decode.c) never leaves the block,
             * unless the block ends right after it (JMP64_NEXT below).
             */
            if (i + 1 < tb->n_ops && op->off + op->len + op->imm == tb->ops[i + 1].off) {
                op->link = TB_LINK_ANY;
                break;
            }
            /* fall through */
        case OP_JCC: case OP_CALL_REL: case OP_LOOP: case OP_JCXZ: case OP_EXIT:
            op->link = (uint8_t)(exits++ % TB_LINKS_DIRECT);
            break;
        default:
            op->link = TB_LINK_ANY;
        }
    }
    for (uint32_t i = 0; i < tb->n_ops; i++) {
        DecodedOp *op = &tb->ops[i];
        bool wide = op->sz >= 2;        /* 32/64-bit: registers 0-15, full-width writes */
        bool reg = op->rm != NOREG;
        uint8_t t;
        switch (op->idx) {
        case OP_ALU_EG:
            if (wide && reg && alu_rr[op->sub & 7])
                op->idx = alu_rr[op->sub & 7];
            else if (op->sz == 1 && reg && op->sub == 7 && op->rm < 16 && op->reg < 16)
                op->idx = OP_CMP16_RR;
            else if (wide && !reg && op->sub == 7)
                op->idx = OP_CMP_MR;
            else if (op->sz == 0 && !reg && op->sub == 7 && op->reg < 16)
                op->idx = OP_CMP8_MR;
            break;
        case OP_ALU_GE:
            if (wide && reg && alu_rr[op->sub & 7]) {
                /* G = G op E: the specialised form writes op->rm. */
                t = op->reg; op->reg = op->rm; op->rm = t;
                op->idx = alu_rr[op->sub & 7];
            } else if (wide && !reg && alu_rr[op->sub & 7]) {
                op->idx = alu_rm[op->sub & 7];
            } else if (op->sz == 0 && !reg && op->sub == 7 && op->reg < 16) {
                op->idx = OP_CMP8_RM;
            }
            break;
        case OP_LEA:
            /* 16-bit operand or address sizes stay generic (partial writes, wrap). */
            if (wide && op->asz >= 2 && op->base != BASE_RIP) {
                op->idx = op->index == REG_ZERO ? OP_LEA_B : OP_LEA_BI;
            } else if (wide && op->asz >= 2 && op->base == BASE_RIP &&
                       (int64_t)op->disp + op->off + op->len <= INT32_MAX) {
                /* RIP-relative: from the block's start, as the _F forms below. */
                op->disp += op->off + op->len;
                op->base = BASE_BLOCK_RIP;
                op->idx = OP_LEA_B;
            }
            break;
        case OP_ALU_EI:
            if (wide && reg && alu_ri[op->sub & 7]) {
                op->imm &= size_mask[op->sz];
                op->idx = alu_ri[op->sub & 7];
            } else if (op->sz == 1 && reg && op->rm < 16 && op->sub == 0) {
                op->idx = OP_ADD16_RI;
            } else if (op->sz == 0 && reg && op->rm < 16 && op->sub == 7) {
                op->idx = OP_CMP8_RI;
            } else if (op->sz == 0 && !reg && op->sub == 7) {
                op->idx = OP_CMP8_MI;
            } else if (op->sub == 7 && flat64_operand(op, code64)) {
                op->idx = OP_CMP_MI_F;
            }
            break;
        case OP_TEST_EG:
            if (wide && reg)
                op->idx = OP_TEST_RR;
            else if (op->sz == 0 && reg && op->rm < 16 && op->reg < 16)
                op->idx = OP_TEST8_RR;
            break;
        case OP_TEST_EI:
            if (wide && reg) {
                op->imm &= size_mask[op->sz];
                op->idx = OP_TEST_RI;
            } else if (op->sz == 0 && reg && op->rm < 16) {
                op->idx = OP_TEST8_RI;
            } else if (flat64_operand(op, code64)) {
                op->idx = OP_TEST_MI_F;
            }
            break;
        case OP_MOV_EG:
            if (wide && reg)
                op->idx = OP_MOV_RR;
            else if (!reg)
                op->idx = op->sz == 0 ? OP_ST8 : op->sz == 1 ? OP_ST16 :
                          op->sz == 2 ? OP_ST32 : OP_ST64;
            break;
        case OP_MOVZX:
            if (wide && !reg)
                op->idx = op->sub == 0 ? OP_LDZX8 : OP_LDZX16;
            else if (wide && (op->sub == 1 || op->rm < 16))
                op->idx = op->sub == 0 ? OP_MOVZX8_RR : OP_MOVZX16_RR;
            break;
        case OP_MOV_GE:
            if (op->sz == 0 && !reg && op->reg < 16)
                op->idx = OP_LD8;
            else if (op->sz == 1 && !reg)
                op->idx = OP_LD16;
            else if (wide && reg) {
                t = op->reg; op->reg = op->rm; op->rm = t;
                op->idx = OP_MOV_RR;
            } else if (wide) {
                op->idx = op->sz == 2 ? OP_LD32 : OP_LD64;
            }
            break;
        case OP_MOV_RI:
            if (wide) {
                op->imm &= size_mask[op->sz];
                op->idx = OP_MOV_RIW;
            }
            break;
        case OP_MOVSXD:
            if (op->sz == 3 && reg)
                op->idx = OP_MOVSXD_RR;
            break;
        case OP_IMUL_GE:
            if (wide && reg)
                op->idx = OP_IMUL_RR;
            break;
        case OP_CMOVCC:
            if (wide && reg)
                op->idx = OP_CMOV_RR;
            break;
        case OP_SETCC:
            if (reg && op->rm < 16)
                op->idx = OP_SETCC_R;
            break;
        case OP_INC_E:
        case OP_DEC_E:
            if (wide && reg)
                op->idx = op->idx == OP_INC_E ? OP_INC_R : OP_DEC_R;
            else if (flat64_operand(op, code64))
                op->idx = op->idx == OP_INC_E ? OP_INC_M_F : OP_DEC_M_F;
            break;
        case OP_MOV_EI:
            if (wide && reg) {
                /* MOV r, imm32 (C7 /0): MOV_RIW, which writes op->reg. */
                op->imm &= size_mask[op->sz];
                op->reg = op->rm;
                op->idx = OP_MOV_RIW;
            } else if (flat64_operand(op, code64)) {
                op->idx = OP_ST_I_F;
            }
            break;
        case OP_NOT_E:
            if (wide && reg)
                op->idx = OP_NOT_R;
            break;
        case OP_BSF:
            if (wide && reg)
                op->idx = OP_BSF_RR;
            break;
        case OP_CMPXCHG:
            if (op->seg < SEG_FS && flat64_operand(op, code64))
                op->idx = OP_CMPXCHG_M_F;
            break;
        case OP_JMP_E:
            if (op->sz == 3 && flat64_operand(op, code64))
                op->idx = OP_JMP_M_F;
            break;
        case OP_PUSH_R:
            if (code64 && op->sz == 3)
                op->idx = OP_PUSH64_R;
            break;
        case OP_POP_R:
            if (code64 && op->sz == 3)
                op->idx = OP_POP64_R;
            break;
        case OP_CALL_REL:
            /* The target from the block's start in disp (op links, see op_link_fill). */
            if (code64 && op->sz == 3 && (int64_t)op->imm + op->off + op->len <= INT32_MAX &&
                (int64_t)op->imm + op->off + op->len >= INT32_MIN) {
                op->idx = OP_CALL64_REL;
                op->disp = (int32_t)((int64_t)op->imm + op->off + op->len);
            }
            break;
        case OP_RET:
            if (code64 && op->sz == 3 && op->imm == 0) {
                op->idx = OP_RET64;
                op->sub = in_block_jumps;   /* may chain: the return prediction (L_RET64) */
            }
            break;
        case OP_JMP_REL:
            if (code64 && op->sz == 3 && (int64_t)op->imm + op->off + op->len <= INT32_MAX &&
                (int64_t)op->imm + op->off + op->len >= INT32_MIN) {
                op->idx = OP_JMP64_REL;
                op->disp = (int32_t)((int64_t)op->imm + op->off + op->len);
            }
            break;
        case OP_SHIFT_E:
            if (wide && reg && (op->pfx & PFX_CL)) {
                unsigned k = op->sub & 7;
                if (k == 4 || k == 6)
                    op->idx = OP_SHL_RCL;
                else if (k == 5)
                    op->idx = OP_SHR_RCL;
                else if (k == 7)
                    op->idx = OP_SAR_RCL;
                break;
            }
            if (wide && reg && !(op->pfx & PFX_CL)) {
                unsigned cnt = (unsigned)op->imm & (op->sz == 3 ? 63 : 31);
                unsigned k = op->sub & 7;
                if (cnt == 0 || k == 2 || k == 3)       /* RCL/RCR stay generic */
                    break;
                op->imm = cnt;
                op->idx = k == 0 ? OP_ROL_RI : k == 1 ? OP_ROR_RI : k == 5 ? OP_SHR_RI :
                          k == 7 ? OP_SAR_RI : OP_SHL_RI;
                break;
            }
            if (!(op->pfx & PFX_CL) && (op->sub & 7) >= 4) {
                /* SHL/SHR/SAR of a byte register or of memory by 1..width-1 (gzip's bit buffers). */
                unsigned cnt = (unsigned)op->imm & (op->sz == 3 ? 63 : 31);
                if (cnt == 0 || cnt >= (8u << op->sz))
                    break;
                if (op->sz == 0 && reg && op->rm < 16) {
                    op->imm = cnt;
                    op->idx = OP_SHIFT8_RI;
                } else if (flat64_operand(op, code64)) {
                    op->imm = cnt;
                    op->idx = OP_SHIFT_M_F;
                }
            }
            break;
        case OP_SSE:                    /* SSE/MMX, decode.c: the fast kinds above */
            op->idx = sse_fast_kind(op, code64);
            break;
        case OP_JCC:
            /* The displacement becomes relative to the block's start, in disp (JCC_FAST). */
            if ((int64_t)op->imm + op->off + op->len <= INT32_MAX &&
                (int64_t)op->imm + op->off + op->len >= INT32_MIN) {
                op->idx = (uint16_t)(OP_JO + (op->sub & 15));
                op->disp = (int32_t)((int64_t)op->imm + op->off + op->len);
            }
            break;
        default:
            break;
        }
        if (op->idx == OP_MOV_RR && op->sz == 3)
            op->idx = OP_MOV64_RR;
        if ((op->idx == OP_JMP64_REL || (op->idx >= OP_JO && op->idx <= OP_JG)) && in_block_jumps &&
            op->sz == 3) {
            /* A target inside this block: JUMP stays in it (op->imm16 = index + 1). */
            int64_t target = op->disp;              /* from the block's start (see above) */
            for (uint32_t j = 0; j < tb->n_ops; j++) {
                if (tb->ops[j].off == target) {
                    op->imm16 = (uint16_t)(j + 1);
                    break;
                }
            }
            /* A JMP the decoder followed: on to the next op, no jump at all. */
            if (op->idx == OP_JMP64_REL && op->imm16 == i + 2)
                op->idx = OP_JMP64_NEXT;
        }
        if (code64 && op->idx >= OP_LD32 && op->idx <= OP_LD16 && op->asz == 3 &&
            flat64_fold_seg_base(op)) {
            /*
             * The _F form.  A RIP-relative operand becomes relative to the
             * block's start (cpu->block_rip: cpu->rip is not kept current),
             * the displacement absorbing the offset and length if it fits.
             */
            int64_t disp = (int64_t)op->disp + (op->base == BASE_RIP ? op->off + op->len : 0);
            if (disp <= INT32_MAX) {
                op->disp = (int32_t)disp;
                if (op->base == BASE_RIP)
                    op->base = BASE_BLOCK_RIP;
                op->idx = (uint16_t)(op->idx + (op->index == REG_ZERO ? OP_LD32_FB - OP_LD32
                                                                     : OP_LD32_F - OP_LD32));
            }
        }
    }
    /* Fuse a flag producer with the JZ/JNZ (or JB/JNB) right after it (J<cc>_<P> kinds). */
    for (uint32_t i = 0; i + 1 < tb->n_ops; i++) {
        DecodedOp *op = &tb->ops[i];
        uint16_t next = tb->ops[i + 1].idx;
        bool z = next == OP_JZ, nz = next == OP_JNZ;
        if (next == OP_JBE || next == OP_JA) {
            if (op->idx == OP_CMP_RI)
                op->idx = next == OP_JBE ? OP_JBE_CMP_RI : OP_JA_CMP_RI;
            continue;
        }
        if (next == OP_JB || next == OP_JNB) {
            if (op->idx == OP_CMP_MR_F || op->idx == OP_CMP_MR_FB)
                op->idx = next == OP_JB ? OP_JB_CMP_MR : OP_JNB_CMP_MR;
            else if (op->idx == OP_CMP_RR)
                op->idx = next == OP_JB ? OP_JB_CMP_RR : OP_JNB_CMP_RR;
            continue;
        }
        if (!z && !nz)
            continue;
        switch (op->idx) {
        /* The fused forms compute the full _F address: an _FB operand fits it too. */
        case OP_CMP8_MR_F: case OP_CMP8_MR_FB: op->idx = z ? OP_JZ_CMP8_MR : OP_JNZ_CMP8_MR; break;
        case OP_CMP8_MI_F: case OP_CMP8_MI_FB: op->idx = z ? OP_JZ_CMP8_MI : OP_JNZ_CMP8_MI; break;
        case OP_CMP8_RM_F: case OP_CMP8_RM_FB: op->idx = z ? OP_JZ_CMP8_RM : OP_JNZ_CMP8_RM; break;
        case OP_DEC_R: op->idx = z ? OP_JZ_DEC_R : OP_JNZ_DEC_R; break;
        case OP_TEST_RR: op->idx = z ? OP_JZ_TEST_RR : OP_JNZ_TEST_RR; break;
        case OP_TEST8_RR: op->idx = z ? OP_JZ_TEST8_RR : OP_JNZ_TEST8_RR; break;
        case OP_CMP_RI: op->idx = z ? OP_JZ_CMP_RI : OP_JNZ_CMP_RI; break;
        case OP_CMP_RR: op->idx = z ? OP_JZ_CMP_RR : OP_JNZ_CMP_RR; break;
        case OP_CMP8_RI: op->idx = z ? OP_JZ_CMP8_RI : OP_JNZ_CMP8_RI; break;
        case OP_TEST8_RI: op->idx = z ? OP_JZ_TEST8_RI : OP_JNZ_TEST8_RI; break;
        case OP_SUB_RI: op->idx = z ? OP_JZ_SUB_RI : OP_JNZ_SUB_RI; break;
        case OP_ADD_RI: op->idx = z ? OP_JZ_ADD_RI : OP_JNZ_ADD_RI; break;
        default: break;
        }
    }
    /*
     * Runs, INC_JNZ_CMP8_MI and LDn_<J> (after the fusion above, which
     * makes the J<cc>_<P> they look for).  Only the first op of a run
     * changes kind, so that its handler's loop, which continues while the
     * next op is the plain kind, stops at the run's end.
     */
    for (uint32_t i = 0; i + 1 < tb->n_ops; i++) {
        DecodedOp *op = &tb->ops[i];
        uint16_t next = tb->ops[i + 1].idx, prev = i ? tb->ops[i - 1].idx : OP_EXIT;
        switch (op->idx) {
        case OP_PUSH64_R:
            if (next == OP_PUSH64_R && prev != OP_PUSH64_R && prev != OP_PUSH64_RUN)
                op->idx = OP_PUSH64_RUN;
            break;
        case OP_POP64_R:
            if ((next == OP_POP64_R || next == OP_RET64) && prev != OP_POP64_R && prev != OP_POP64_RUN)
                op->idx = OP_POP64_RUN;
            break;
        case OP_MOV64_RR:
            if (next == OP_MOV64_RR && prev != OP_MOV64_RR && prev != OP_MOV64_RUN)
                op->idx = OP_MOV64_RUN;
            break;
        case OP_LD64_FB:
            if (next == OP_JZ_TEST_RR || next == OP_JNZ_TEST_RR) {
                op->idx = next == OP_JZ_TEST_RR ? OP_LD64_JZ_TEST_RR : OP_LD64_JNZ_TEST_RR;
                break;
            }
            /* fall through */
        case OP_ST64_FB:
            if ((next == OP_LD64_FB || next == OP_ST64_FB) && prev != OP_LD64_FB &&
                prev != OP_ST64_FB && prev != OP_LD64_RUN && prev != OP_ST64_RUN)
                op->idx = op->idx == OP_LD64_FB ? OP_LD64_RUN : OP_ST64_RUN;
            break;
        case OP_LD8_F:
        case OP_LD8_FB:
            if (next == OP_JZ_TEST8_RR || next == OP_JNZ_TEST8_RR)
                op->idx = next == OP_JZ_TEST8_RR ? OP_LD8_JZ_TEST8_RR : OP_LD8_JNZ_TEST8_RR;
            else if (next == OP_JZ_CMP8_RM || next == OP_JNZ_CMP8_RM)
                op->idx = next == OP_JZ_CMP8_RM ? OP_LD8_JZ_CMP8_RM : OP_LD8_JNZ_CMP8_RM;
            break;
        case OP_LD64_F:
            if (next == OP_JZ_TEST_RR || next == OP_JNZ_TEST_RR)
                op->idx = next == OP_JZ_TEST_RR ? OP_LD64_JZ_TEST_RR : OP_LD64_JNZ_TEST_RR;
            break;
        case OP_INC_R:
            if (next == OP_JNZ_CMP8_MI)
                op->idx = OP_INC_JNZ_CMP8_MI;
            break;
        default:
            break;
        }
    }
    /*
     * Flags last: known_cf and flags_liveness see the run and fused kinds
     * above as opaque (flags live across them), which keeps them exact.
     */
    known_cf(tb);
    flags_liveness(tb);
    /* Direct threading: each op's handler, once every kind above is final. */
    for (uint32_t i = 0; i <= tb->n_ops; i++) {
        DecodedOp *op = &tb->ops[i];
        op->handler = tcg_op_handler(op->idx);
        if (op_link_kind(op->idx) || i == tb->n_ops) {
            op->link_epoch = 0;         /* no op link yet (their sub and base go) */
            op->link_tb = NULL;
        }
    }
}
