/*
 * The interpreter: threaded dispatch (GCC "labels as values") over the
 * pre-decoded ops of one TranslatedBlock.  Each handler ends in its own
 * indirect jump to the next op's handler, so the host branch predictor sees
 * one site per guest instruction kind instead of one shared switch.
 *
 * Conventions: on entry to a handler cpu->rip is the address of the
 * current instruction (so a fault raised from inside reports it, SDM 3A
 * §6.5 fault semantics); NEXT advances RIP by the instruction length and
 * jumps to the next op; END leaves the block with RIP already set.
 * Exceptions leave through raise_exception() (longjmp to the run loop).
 */
#include "accel/tcg/ops.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"

/*
 * Jcc condition cond (a constant at each call site) straight from the lazy
 * state for the common producers, else through flags.c.  ZF and SF come
 * from the masked result for every CC_OP except EFLAGS; CF/OF-based
 * conditions are exact here only after SUB/CMP and logic ops.
 */
static inline __attribute__((always_inline)) bool cc_eval(const TCGCPU *cpu, int cond)
{
    int sz = cpu->cc_size;
    uint64_t m = size_mask[sz];
    uint64_t res = cpu->cc_res & m;
    unsigned op = cpu->cc_op;
    bool r;
    switch (cond >> 1) {
    case 2:                                     /* Z */
        if (unlikely(op == CC_OP_EFLAGS))
            return cc_test(cpu, cond);
        r = res == 0;
        break;
    case 4:                                     /* S */
        if (unlikely(op == CC_OP_EFLAGS))
            return cc_test(cpu, cond);
        r = (res >> ((8u << sz) - 1)) & 1;
        break;
    case 1:                                     /* B: CF */
        if (op == CC_OP_SUB)
            r = (cpu->cc_a & m) < (cpu->cc_b & m);
        else if (op == CC_OP_LOGIC)
            r = false;
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
 * The _F memory forms (tcg_specialize): 64-bit code, 64-bit address, no
 * segment base, so linear = effective address.  The TLB only ever holds
 * canonical pages (every fill comes through a checked address), so a
 * non-canonical address always misses and mem_*_slow_canon raises #GP or
 * #SS there.
 */
TCG_INLINE uint64_t flat64_lin(const TCGCPU *cpu, const DecodedOp *op)
{
    return (uint64_t)(int64_t)op->disp + cpu->xregs[op->base] + (cpu->xregs[op->index] << op->scale);
}

TCG_INLINE uint64_t flat64_ld_lin(TCGCPU *cpu, uint64_t lin, int sz, int seg)
{
    const TLBEntry *e = &cpu->tlb[cpu->mmu_idx][(lin >> 12) & (TLB_SIZE - 1)];
    if (likely(e->tag_r == (lin & TLB_PAGE_MASK) && (lin & 0xfff) <= 0x1000u - (1u << sz)))
        return ld_raw((uint8_t *)(e->addend + (uintptr_t)lin), sz);
    return mem_ld_slow_canon(cpu, lin, sz, seg);
}

TCG_INLINE void flat64_st_lin(TCGCPU *cpu, uint64_t lin, int sz, uint64_t v, int seg)
{
    const TLBEntry *e = &cpu->tlb[cpu->mmu_idx][(lin >> 12) & (TLB_SIZE - 1)];
    if (likely(e->tag_w == (lin & TLB_PAGE_MASK) && (lin & 0xfff) <= 0x1000u - (1u << sz))) {
        st_raw((uint8_t *)(e->addend + (uintptr_t)lin), sz, v);
        return;
    }
    mem_st_slow_canon(cpu, lin, sz, v, seg);
}

TCG_INLINE uint64_t flat64_ld(TCGCPU *cpu, const DecodedOp *op, int sz)
{
    return flat64_ld_lin(cpu, flat64_lin(cpu, op), sz, op->seg);
}

TCG_INLINE void flat64_st(TCGCPU *cpu, const DecodedOp *op, int sz, uint64_t v)
{
    flat64_st_lin(cpu, flat64_lin(cpu, op), sz, v, op->seg);
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

long tcg_exec_tb(TCGCPU *cpu, TranslatedBlock *tb, long max_blocks)
{
    static const void *const labels[OP__COUNT] = {
#define TCG_OP_LABEL(n) [OP_##n] = &&L_##n,
        TCG_OP_LIST(TCG_OP_LABEL)
#undef TCG_OP_LABEL
    };
    const DecodedOp *op = tb->ops;
    uint64_t a, b, r, lin = 0;
    int sz;

#define DISPATCH() goto *labels[op->idx]
#define NEXT() do { cpu->rip += op->len; op++; DISPATCH(); } while (0)
#define END() goto chain
/* End after a near jump, call, return or Jcc: see chain_direct. */
#define END_DIRECT() goto chain_direct
#define HELPER(call) do { \
        switch (call) { \
        case H_NEXT: NEXT(); \
        case H_NEXT_END: cpu->rip += op->len; END(); \
        default: END(); \
        } \
    } while (0)

    long nb = 1;
    tb->exec_count++;
    DISPATCH();

    /*
     * Block done (RIP set).  Account it, then follow a link of this block
     * to the next one if allowed (run loop: tb_lookup_cpu records links).
     */
chain:
    cpu->icount += tb->n_ops;
    if (cpu->code_size == 1)
        cpu->rip &= 0xffff;
    else if (cpu->code_size == 2)
        cpu->rip = (uint32_t)cpu->rip;
    if (nb >= max_blocks || !can_chain(cpu, tb))
        return nb;
    {
        uint32_t flags;
        uint64_t pc = cpu_tb_key(cpu, &flags);
        TranslatedBlock *next = tb_link_find(cpu, tb, pc, flags);
        if (!next)
            return nb;
        tb = next;
    }
    goto enter;

    /*
     * The same after a near jump, call, return or Jcc, which change
     * neither the mode nor TF, IF, the interrupt shadow or the halt state:
     * only a kick, an interrupt check (chain_break) or the budget stop it,
     * and the next block has this block's flags (a block run with
     * TB_FLAGS_ALONE gets no links, tb_lookup_cpu).
     */
chain_direct:
    cpu->icount += tb->n_ops;
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
            return nb;
        pc = cpu->seg[SEG_CS].base + cpu->rip;
        if (code != TB_FLAG_CODE64)
            pc = (uint32_t)pc;
        next = tb_link_find(cpu, tb, pc, tb->flags);
        if (!next)
            return nb;
        tb = next;
    }

enter:
    nb++;
    cpu->cur_tb = tb;
    tb->exec_count++;
    op = tb->ops;
    DISPATCH();

L_EXIT:
    END();
L_NOP:
    /*
     * PAUSE sits in spin-wait loops.  With the CPUs taking turns on one
     * thread, a CPU spinning on a lock another CPU holds only wastes its
     * slice, and one that drops and retakes a lock within a slice (SeaBIOS's
     * smp_scan) never lets the others in: end the slice here.
     */
    if (op->sub == 1 && cpu->m && cpu->m->smp_cpus > 1)
        __atomic_store_n(&cpu->exit_request, 1, __ATOMIC_RELEASE);
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
        r = alu_op(cpu, op->sub, a, b, sz);
        lin_st(cpu, lin, sz, r);
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
        r = alu_op(cpu, op->sub, a, b, sz);
        lin_st(cpu, lin, sz, r);
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

L_INC_E:
    RMW_BEGIN();
    b = cc_compute_cf(cpu);
    r = (a + 1) & size_mask[sz];
    set_cc(cpu, CC_OP_INC, sz, r, a, 1);
    cpu->cc_aux = b;
    RMW_END(r);
    NEXT();
L_DEC_E:
    RMW_BEGIN();
    b = cc_compute_cf(cpu);
    r = (a - 1) & size_mask[sz];
    set_cc(cpu, CC_OP_DEC, sz, r, a, 1);
    cpu->cc_aux = b;
    RMW_END(r);
    NEXT();
L_NOT_E:
    RMW_BEGIN();
    RMW_END(~a);
    NEXT();
L_NEG_E:
    RMW_BEGIN();
    r = (0 - a) & size_mask[sz];
    set_cc(cpu, CC_OP_SUB, sz, r, 0, a);
    RMW_END(r);
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
        r = alu_shift(cpu, op->sub, a, cnt, sz);
        RMW_END(r);
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
        r = alu_shd(cpu, op->sub, a, reg_get(cpu, op->reg, sz), cnt, sz);
        RMW_END(r);
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
    r = alu_op(cpu, 0, a, b, sz);
    /* SDM order: SRC <- DEST, then DEST <- sum (matters for XADD r, r with one register). */
    if (op->rm != NOREG) {
        reg_set(cpu, op->reg, sz, a);
        reg_set(cpu, op->rm, sz, r);
    } else {
        lin_st(cpu, lin, sz, r);
        reg_set(cpu, op->reg, sz, a);
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
    cpu->rip = branch_target(cpu, op, cpu->rip + op->len + op->imm);
    END_DIRECT();
L_JCC:
    if (cc_test(cpu, op->sub))
        cpu->rip = branch_target(cpu, op, cpu->rip + op->len + op->imm);
    else
        cpu->rip += op->len;
    END_DIRECT();
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
    END_DIRECT();
L_CALL_E:
    a = rm_read(cpu, op, op->sz);
    cpu_push(cpu, op->sz, cpu->rip + op->len);
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
     * Loads, stores and G = G op memory, twice: through the generic
     * segmentation path (any mode), and as the _F forms that
     * tcg_specialize picks in 64-bit code for 64-bit addresses through a
     * segment without a base (not FS/GS): there the linear address is the
     * effective address, and its canonical check moves to the TLB miss
     * path (flat64_ld/flat64_st).
     */
#define LD_GEN(len, sz) lin_ld(cpu, op_lin(cpu, op, len, ACC_READ), sz)
#define ST_GEN(len, sz, v) lin_st(cpu, op_lin(cpu, op, len, ACC_WRITE), sz, v)
#define LD_F(len, sz) flat64_ld(cpu, op, sz)
#define ST_F(len, sz, v) flat64_st(cpu, op, sz, v)
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
    NEXT();
    MEM_OPS(, LD_GEN, ST_GEN)
    MEM_OPS(_F, LD_F, ST_F)
#undef MEM_OPS
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
L_INC_R:
    sz = op->sz;
    b = cc_cf_fast(cpu);
    a = cpu->regs[op->rm] & size_mask[sz];
    r = (a + 1) & size_mask[sz];
    set_cc(cpu, CC_OP_INC, sz, r, a, 1);
    cpu->cc_aux = b;
    cpu->regs[op->rm] = r;
    NEXT();
L_DEC_R:
    sz = op->sz;
    b = cc_cf_fast(cpu);
    a = cpu->regs[op->rm] & size_mask[sz];
    r = (a - 1) & size_mask[sz];
    set_cc(cpu, CC_OP_DEC, sz, r, a, 1);
    cpu->cc_aux = b;
    cpu->regs[op->rm] = r;
    NEXT();
    /* 64-bit code: the stack is flat (SS base ignored) and 64-bit wide. */
L_PUSH64_R:
    a = cpu->regs[op->reg];             /* PUSH RSP pushes the old value */
    lin = cpu->regs[R_ESP] - 8;
    flat64_st_lin(cpu, lin, 3, a, SEG_SS);
    cpu->regs[R_ESP] = lin;
    NEXT();
L_POP64_R:
    lin = cpu->regs[R_ESP];
    a = flat64_ld_lin(cpu, lin, 3, SEG_SS);
    cpu->regs[R_ESP] = lin + 8;
    cpu->regs[op->reg] = a;             /* POP RSP: the loaded value wins */
    NEXT();
L_CALL64_REL:
    a = cpu->rip + op->len;
    lin = cpu->regs[R_ESP] - 8;
    flat64_st_lin(cpu, lin, 3, a, SEG_SS);
    cpu->regs[R_ESP] = lin;
    cpu->rip = a + op->imm;
    END_DIRECT();
L_RET64:
    lin = cpu->regs[R_ESP];
    a = flat64_ld_lin(cpu, lin, 3, SEG_SS);
    cpu->regs[R_ESP] = lin + 8;
    cpu->rip = a;
    END_DIRECT();
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
    set_cc(cpu, CC_OP_SHL, sz, r, a, 0);
    cpu->regs[op->rm] = r;
    NEXT();
L_SHR_RI:
    sz = op->sz;
    a = (cpu->regs[op->rm] & size_mask[sz]) >> (op->imm - 1);
    r = a >> 1;
    set_cc(cpu, CC_OP_SHR, sz, r, a, 0);
    cpu->regs[op->rm] = r;
    NEXT();
L_SAR_RI:
    sz = op->sz;
    a = (uint64_t)((int64_t)sext(cpu->regs[op->rm], sz) >> (op->imm - 1));
    r = (uint64_t)((int64_t)a >> 1) & size_mask[sz];
    set_cc(cpu, CC_OP_SHR, sz, r, a & size_mask[sz], 0);
    cpu->regs[op->rm] = r;
    NEXT();

#define JCC_FAST(name, cond) \
L_##name: \
    if (cc_eval(cpu, cond)) \
        cpu->rip = branch_target(cpu, op, cpu->rip + op->len + op->imm); \
    else \
        cpu->rip += op->len; \
    END_DIRECT();
    JCC_FAST(JO, 0) JCC_FAST(JNO, 1) JCC_FAST(JB, 2) JCC_FAST(JNB, 3)
    JCC_FAST(JZ, 4) JCC_FAST(JNZ, 5) JCC_FAST(JBE, 6) JCC_FAST(JA, 7)
    JCC_FAST(JS, 8) JCC_FAST(JNS, 9) JCC_FAST(JP, 10) JCC_FAST(JNP, 11)
    JCC_FAST(JL, 12) JCC_FAST(JGE, 13) JCC_FAST(JLE, 14) JCC_FAST(JG, 15)
#undef JCC_FAST
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
_Static_assert(OP_CMP_MR_F - OP_LD32_F == OP_CMP_MR - OP_LD32, "the _F run mirrors LD32..CMP_MR");

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
    for (uint32_t i = 0; i < tb->n_ops; i++) {
        DecodedOp *op = &tb->ops[i];
        bool wide = op->sz >= 2;        /* 32/64-bit: registers 0-15, full-width writes */
        bool reg = op->rm != NOREG;
        uint8_t t;
        switch (op->idx) {
        case OP_ALU_EG:
            if (wide && reg && alu_rr[op->sub & 7])
                op->idx = alu_rr[op->sub & 7];
            else if (wide && !reg && op->sub == 7)
                op->idx = OP_CMP_MR;
            break;
        case OP_ALU_GE:
            if (wide && reg && alu_rr[op->sub & 7]) {
                /* G = G op E: the specialised form writes op->rm. */
                t = op->reg; op->reg = op->rm; op->rm = t;
                op->idx = alu_rr[op->sub & 7];
            } else if (wide && !reg && alu_rr[op->sub & 7]) {
                op->idx = alu_rm[op->sub & 7];
            }
            break;
        case OP_LEA:
            /* 16-bit operand or address sizes stay generic (partial writes, wrap). */
            if (wide && op->asz >= 2 && op->base != BASE_RIP)
                op->idx = op->index == REG_ZERO ? OP_LEA_B : OP_LEA_BI;
            break;
        case OP_ALU_EI:
            if (wide && reg && alu_ri[op->sub & 7]) {
                op->imm &= size_mask[op->sz];
                op->idx = alu_ri[op->sub & 7];
            } else if (op->sz == 0 && reg && op->rm < 16 && op->sub == 7) {
                op->idx = OP_CMP8_RI;
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
            if (code64 && op->sz == 3)
                op->idx = OP_CALL64_REL;
            break;
        case OP_RET:
            if (code64 && op->sz == 3 && op->imm == 0)
                op->idx = OP_RET64;
            break;
        case OP_SHIFT_E:
            if (wide && reg && !(op->pfx & PFX_CL)) {
                unsigned cnt = (unsigned)op->imm & (op->sz == 3 ? 63 : 31);
                unsigned k = op->sub & 7;
                if (cnt == 0 || (k != 4 && k != 5 && k != 6 && k != 7))
                    break;
                op->imm = cnt;
                op->idx = k == 5 ? OP_SHR_RI : k == 7 ? OP_SAR_RI : OP_SHL_RI;
            }
            break;
        case OP_JCC:
            op->idx = (uint16_t)(OP_JO + (op->sub & 15));
            break;
        default:
            break;
        }
        if (code64 && op->idx >= OP_LD32 && op->idx <= OP_CMP_MR && op->asz == 3 &&
            op->seg < SEG_FS) {
            /* The _F form; a RIP-relative displacement absorbs the length if it fits. */
            int64_t disp = (int64_t)op->disp + (op->base == BASE_RIP ? op->len : 0);
            if (disp <= INT32_MAX) {
                op->disp = (int32_t)disp;
                op->idx = (uint16_t)(op->idx + (OP_LD32_F - OP_LD32));
            }
        }
    }
}
