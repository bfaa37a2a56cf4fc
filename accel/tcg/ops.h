/*
 * Out-of-line instruction helpers shared by the interpreter (exec.c) and,
 * later, by generated code.  Each takes the CPU and the decoded op and
 * returns what the engine does next.
 */
#ifndef TCG_OPS_H
#define TCG_OPS_H

#include "accel/tcg/cpu.h"
#include "accel/tcg/tb.h"

enum {
    H_NEXT = 0,         /* done; engine advances RIP by op->len and continues */
    H_END = 1,          /* RIP already set (or left for a restart); end the block */
    H_NEXT_END = 2,     /* advance RIP by op->len, then end the block */
};

/* Effective address of a memory operand (before segmentation). */
/*
 * Legacy SSE instruction with XMM operands (SDM 3A Table 12-8): #UD with
 * CR0.EM = 1 or CR4.OSFXSR = 0, then #NM with CR0.TS = 1.
 */
TCG_INLINE void sse_insn_check(TCGCPU *cpu)
{
    if ((cpu->cr0 & X86_CR0_EM) || !(cpu->cr4 & CR4_OSFXSR))
        raise_exception(cpu, EXCP_UD);
    if (cpu->cr0 & X86_CR0_TS)
        raise_exception(cpu, EXCP_NM);
}

TCG_INLINE uint64_t op_ea(const TCGCPU *cpu, const DecodedOp *op)
{
    uint64_t ea = (uint64_t)(int64_t)op->disp + cpu->xregs[op->base] +
                  (cpu->xregs[op->index] << op->scale);
    if (unlikely(op->base == BASE_RIP))
        ea += op->len;              /* relative to the next instruction */
    return ea & size_mask[op->asz];
}

TCG_INLINE uint64_t op_lin(TCGCPU *cpu, const DecodedOp *op, unsigned len, int acc)
{
    return seg_lin(cpu, op->seg, op_ea(cpu, op), len, acc);
}

TCG_INLINE uint64_t rm_read(TCGCPU *cpu, const DecodedOp *op, int sz)
{
    if (op->rm != NOREG)
        return reg_get(cpu, op->rm, sz);
    return lin_ld(cpu, op_lin(cpu, op, 1u << sz, ACC_READ), sz);
}

TCG_INLINE void rm_write(TCGCPU *cpu, const DecodedOp *op, int sz, uint64_t v)
{
    if (op->rm != NOREG)
        reg_set(cpu, op->rm, sz, v);
    else
        lin_st(cpu, op_lin(cpu, op, 1u << sz, ACC_WRITE), sz, v);
}

TCG_INLINE uint64_t alu_op(TCGCPU *cpu, int sub, uint64_t a, uint64_t b, int sz)
{
    uint64_t r, cin;
    switch (sub) {
    case 0: r = a + b; set_cc(cpu, CC_OP_ADD, sz, r, a, b); break;
    case 1: r = a | b; set_cc_logic(cpu, sz, r); break;
    case 2:
        cin = cc_compute_cf(cpu);
        r = a + b + cin; set_cc(cpu, CC_OP_ADC, sz, r, a, b); cpu->cc_aux = cin; break;
    case 3:
        cin = cc_compute_cf(cpu);
        r = a - b - cin; set_cc(cpu, CC_OP_SBB, sz, r, a, b); cpu->cc_aux = cin; break;
    case 4: r = a & b; set_cc_logic(cpu, sz, r); break;
    case 5: case 7: r = a - b; set_cc(cpu, CC_OP_SUB, sz, r, a, b); break;
    default: r = a ^ b; set_cc_logic(cpu, sz, r); break;
    }
    return r & size_mask[sz];
}

/* Branch target: IP-relative, truncated to the operand size (16/32). */
static inline uint64_t branch_target(const TCGCPU *cpu, const DecodedOp *op, uint64_t t)
{
    return t & size_mask[op->sz < 1 ? 1 : op->sz];
}

/* ops-alu.c */
uint64_t alu_shift(TCGCPU *cpu, int kind, uint64_t v, unsigned count, int sz);
uint64_t alu_shd(TCGCPU *cpu, bool right, uint64_t dst, uint64_t src, unsigned count, int sz);
int helper_mul(TCGCPU *cpu, const DecodedOp *op);
int helper_div(TCGCPU *cpu, const DecodedOp *op);
uint64_t alu_imul2(TCGCPU *cpu, uint64_t a, uint64_t b, int sz);
int helper_bcd(TCGCPU *cpu, const DecodedOp *op);
int helper_bt(TCGCPU *cpu, const DecodedOp *op);
int helper_bitscan(TCGCPU *cpu, const DecodedOp *op);
int helper_cmpxchg(TCGCPU *cpu, const DecodedOp *op);
int helper_cmpxchg8b(TCGCPU *cpu, const DecodedOp *op);

/* ops-string.c */
int helper_string(TCGCPU *cpu, const DecodedOp *op);
bool io_permitted(TCGCPU *cpu, uint16_t port, unsigned len);
uint32_t cpu_io_read(TCGCPU *cpu, uint16_t port, int sz);
void cpu_io_write(TCGCPU *cpu, uint16_t port, int sz, uint32_t v);

/*
 * tb.h (not owned by the FPU/SSE work) has no op kinds for these yet; they
 * reuse kinds that exec.c already sends to helper_fpu.  The lead should add
 * X(X87) X(FXGRP) X(SSE) to TCG_OP_LIST and drop these aliases (OP_FNINIT
 * and OP_FNSTSW are no longer produced by the decoder).
 */
#define OP_X87   OP_FPU_NM
#define OP_FXGRP OP_FNSTCW
#define OP_SSE   OP_FLDCW

/* ops-fpu.c */
int helper_fpu(TCGCPU *cpu, const DecodedOp *op);
/* ops-sse.c, ops-sse-fp.c */
int helper_sse(TCGCPU *cpu, const DecodedOp *op);
int helper_sse_fp(TCGCPU *cpu, const DecodedOp *op);
/* Logs under -d unimp and raises #UD. */
void __attribute__((noreturn)) sse_unimp(TCGCPU *cpu, const DecodedOp *op);
int helper_sse_0f38(TCGCPU *cpu, const DecodedOp *op);   /* ops-sse-0f38.c */
/* ops-sse-0f38.c, for AESKEYGENASSIST in the 0F 3A map too: the AES S-box. */
uint8_t aes_sbox_byte(uint8_t x);
int helper_sse_0f3a(TCGCPU *cpu, const DecodedOp *op);   /* ops-sse-0f3a.c */
/*
 * ops-sse-0f3a.c, for exec.c's SSE_PCMPISTRI too: PCMPISTRI of xmm1 a and
 * xmm2/m128 b with control imm8 (ECX, the flags; SDM 2B "PCMPISTRI").
 */
void sse_pcmpistri(TCGCPU *cpu, const XMMReg *a, const XMMReg *b, unsigned imm);
void mmx_check(TCGCPU *cpu);
void mmx_enter(TCGCPU *cpu);
void mmx_set(TCGCPU *cpu, unsigned i, uint64_t v);
uint64_t mmx_get(const TCGCPU *cpu, unsigned i);
/* MMX source operand: the register, or 8 bytes of memory (no alignment rule). */
uint64_t mmx_src(TCGCPU *cpu, const DecodedOp *op);
void fpu_reset(TCGCPU *cpu, bool power_on);

/* ops-system.c */
int helper_in_out(TCGCPU *cpu, const DecodedOp *op);
int helper_cpuid(TCGCPU *cpu, const DecodedOp *op);
int helper_rdmsr(TCGCPU *cpu, const DecodedOp *op);
int helper_wrmsr(TCGCPU *cpu, const DecodedOp *op);
int helper_mov_cr(TCGCPU *cpu, const DecodedOp *op);
int helper_mov_dr(TCGCPU *cpu, const DecodedOp *op);
int helper_grp6(TCGCPU *cpu, const DecodedOp *op);
int helper_grp7(TCGCPU *cpu, const DecodedOp *op);
int helper_lar_lsl(TCGCPU *cpu, const DecodedOp *op);
int helper_flagop(TCGCPU *cpu, const DecodedOp *op);
int helper_pushf(TCGCPU *cpu, const DecodedOp *op);
int helper_popf(TCGCPU *cpu, const DecodedOp *op);
int helper_hlt(TCGCPU *cpu, const DecodedOp *op);
bool cpu_write_cr0(TCGCPU *cpu, uint64_t v);
bool cpu_write_cr4(TCGCPU *cpu, uint64_t v);
bool cpu_write_cr3(TCGCPU *cpu, uint64_t v);
bool tcg_cpuid_has_xsaveopt(void);
/* The configured model advertises all of these CPUID bits in feature word WORD. */
bool tcg_cpuid_feature(int word, uint32_t bits);

/* msr-mtrr-mca.c */
void mtrr_mca_reset(TCGCPU *cpu);
void mtrr_load(TCGCPU *cpu, const X86MTRRState *s);         /* firmware's MTRRs, at reset */
bool mtrr_mca_rdmsr(TCGCPU *cpu, uint32_t msr, uint64_t *v);
int mtrr_mca_wrmsr(TCGCPU *cpu, uint32_t msr, uint64_t v);   /* 1 done, 0 not ours, -1 #GP */

/* seg.c */
int helper_mov_seg(TCGCPU *cpu, const DecodedOp *op);
int helper_pop_seg(TCGCPU *cpu, const DecodedOp *op);
int helper_lseg(TCGCPU *cpu, const DecodedOp *op);
int helper_syscall(TCGCPU *cpu, const DecodedOp *op);
int helper_sysret(TCGCPU *cpu, const DecodedOp *op);
int helper_sysenter(TCGCPU *cpu, const DecodedOp *op);
int helper_sysexit(TCGCPU *cpu, const DecodedOp *op);
int helper_enter(TCGCPU *cpu, const DecodedOp *op);
int helper_pusha(TCGCPU *cpu, const DecodedOp *op);
int helper_popa(TCGCPU *cpu, const DecodedOp *op);
int helper_int(TCGCPU *cpu, const DecodedOp *op);

/*
 * Block lookup key of the next instruction: linear PC and TB flags.
 * The caller checks canonicality (a link never holds a non-canonical PC).
 */
static inline uint64_t cpu_tb_key(const TCGCPU *cpu, uint32_t *flags)
{
    uint64_t lin = cpu->seg[SEG_CS].base + cpu->rip;
    if (!cpu->code64)
        lin = (uint32_t)lin;
    *flags = cpu->code_size | ((cpu->eflags & FL_TF) ? TB_FLAG_SSTEP : 0) |
             (cpu->one_insn ? TB_FLAG_ONE : 0) | cpu->tb_flags_extra;
    return lin;
}

/* Follow a link of prev (TranslatedBlock.link) to the block for (lin, flags). */
static inline TranslatedBlock *tb_link_find(const TCGCPU *cpu, const TranslatedBlock *prev,
                                            uint64_t lin, uint32_t flags)
{
    for (int k = 0; k < TB_LINKS; k++) {
        TranslatedBlock *tb = prev->link[k].tb;
        if (prev->link[k].lin == lin && prev->link[k].gen == cpu->link_gen &&
            prev->link[k].flags == flags && tb && !tb->invalid)
            return tb;
    }
    return NULL;
}

/*
 * exec.c: run tb, then follow block links while nothing needs the run
 * loop's attention, at most max_blocks blocks in all (>= 1).  Returns the
 * number of blocks completed; cpu->cur_tb is the last block entered.
 */
long tcg_exec_tb(TCGCPU *cpu, TranslatedBlock *tb, long max_blocks);

/*
 * tcg-accel.c: the run loop's block lookup for exec.c's chain_direct, when
 * a near branch of prev to lin finds neither a current link nor a jump
 * cache entry (after a CR3 write every link is stale): the existing block
 * by physical address, recorded in the jump cache and in prev's exit slot
 * as the run loop would, or NULL (a block to translate, or one that spans
 * two pages) to go back to the run loop.  May raise #PF or #GP for the
 * fetch at lin, as the run loop's lookup would at the same point.
 */
TranslatedBlock *tcg_chain_lookup(TCGCPU *cpu, TranslatedBlock *prev, unsigned slot, uint64_t lin);

/*
 * SSE operands (ops-sse.c), shared with ops-sse-fp.c: the linear address of
 * a memory operand (#GP when align is asked and it is not 16-byte aligned),
 * and a source operand: the register, or len bytes of memory zero-extended.
 */
uint64_t sse_addr(TCGCPU *cpu, const DecodedOp *op, unsigned len, int acc, bool align);
XMMReg sse_src(TCGCPU *cpu, const DecodedOp *op, unsigned len, bool align);
/* Signed / unsigned saturation of a 32-bit intermediate to 16 bits (PACKSSDW, PACKUSDW ...). */
int16_t sse_sat_s16(int32_t v);
uint16_t sse_sat_u16(int32_t v);

/*
 * SIMD FP arithmetic (ops-sse-fp.c), shared with the 0F 3A map (DPPS, DPPD):
 * an operation accumulates MXCSR flags in an FPEnv, fp_commit then raises
 * #XM/#UD for unmasked ones or ORs them into MXCSR.
 */
typedef struct FPEnv {
    uint32_t mxcsr;
    unsigned flags;
    unsigned lane_de;       /* DE raised by the current element only */
} FPEnv;
/* op: 0 add, 1 mul, 4 sub, 5 min, 6 div, 7 max, 8 sqrt (opcode 58..5F order). */
uint64_t fp_arith(FPEnv *e, int op, uint64_t a, uint64_t b, int dbl);
void fp_commit(TCGCPU *cpu, const FPEnv *e);

#endif
