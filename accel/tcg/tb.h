/*
 * Translated blocks: runs of pre-decoded x86 instructions, cached by the
 * guest PHYSICAL address of their first byte plus the decode mode (code
 * size), so the same code mapped at several linear addresses is decoded
 * once and survives TLB flushes.  The decoder fills DecodedOp records; an
 * execution engine (exec.c's interpreter today, a native code generator
 * later) runs them.  The op list is one X-macro shared by both.
 */
#ifndef TCG_TB_H
#define TCG_TB_H

#include "kestrel/common.h"

/* Every pre-decoded operation kind.  Operand forms: E = ModRM r/m, G = ModRM reg, I = imm. */
#define TCG_OP_LIST(X) \
    X(EXIT) X(NOP) X(UD) X(ILLEGAL_LOCK) \
    X(ALU_EG) X(ALU_GE) X(ALU_EI) X(TEST_EG) X(TEST_EI) \
    X(INC_E) X(DEC_E) X(NOT_E) X(NEG_E) \
    X(MUL_E) X(IMUL1_E) X(DIV_E) X(IDIV_E) X(IMUL_GE) X(IMUL_GEI) \
    X(SHIFT_E) X(SHD_E) \
    X(MOV_EG) X(MOV_GE) X(MOV_EI) X(MOV_RI) X(MOV_E_SEG) X(MOV_SEG_E) X(MOV_MOFFS_LD) X(MOV_MOFFS_ST) \
    X(LEA) X(MOVZX) X(MOVSX) X(XCHG_EG) X(XADD) X(CMPXCHG) X(CMPXCHG8B) X(BSWAP) \
    X(PUSH_R) X(PUSH_E) X(PUSH_I) X(PUSH_SEG) X(POP_R) X(POP_E) X(POP_SEG) \
    X(PUSHA) X(POPA) X(PUSHF) X(POPF) \
    X(JMP_REL) X(JCC) X(CALL_REL) X(RET) X(JMP_E) X(CALL_E) \
    X(JMP_FAR) X(CALL_FAR) X(JMP_FAR_E) X(CALL_FAR_E) X(RETF) X(IRET) \
    X(INT) X(INT3) X(INTO) X(LOOP) X(JCXZ) X(SETCC) X(CMOVCC) \
    X(BT_EG) X(BT_EI) X(BSF) X(BSR) X(TZCNT) X(LZCNT) X(POPCNT) \
    X(MOVS) X(CMPS) X(STOS) X(LODS) X(SCAS) X(INS) X(OUTS) \
    X(IN) X(OUT) X(FLAGOP) X(LAHF) X(SAHF) X(HLT) X(CPUID) X(RDTSC) X(RDTSCP) X(RDMSR) X(WRMSR) \
    X(GRP6) X(GRP7) X(MOV_CR) X(MOV_DR) X(CLTS) X(INVLPG) X(SWAPGS) \
    X(CBW) X(CWD) X(ENTER) X(LEAVE) X(BCD) X(SALC) X(XLAT) X(LSEG) \
    X(SYSCALL) X(SYSRET) X(SYSENTER) X(SYSEXIT) X(BOUND) X(ARPL) X(LAR) X(LSL) \
    X(FPU_NM) X(FNINIT) X(FNSTSW) X(FNSTCW) X(FLDCW) X(FWAIT) X(CLFLUSH) X(MOVSXD) \
    TCG_FASTOP_LIST(X)

/*
 * Specialised forms of the commonest ops, substituted after decoding by
 * tcg_specialize() (exec.c) so that the interpreter runs them without
 * operand-kind and size tests.  Unless noted: 32- or 64-bit operand size,
 * register operands are registers 0-15.  xx_RR: op->rm = op->rm OP op->reg;
 * xx_RI: op->rm = op->rm OP op->imm (pre-masked); LDn/LDZXn/STn: memory
 * load into op->reg / store of op->reg (ST8 and ST16 any register);
 * SHx_RI: shift op->rm by op->imm (1..width-1), ROL_RI / ROR_RI: rotate
 * it (the same counts; only CF and OF change); SHx_RCL: the same by CL
 * (masked; 0: no flag change); ADD16_RI / CMP16_RR: 16-bit operand, registers
 * 0-15, the upper 48 bits kept; xx_RM: op->reg = op->reg OP
 * memory; LEA_B: base + disp, LEA_BI: base + index * scale + disp (32/64-bit
 * addresses; RIP-relative ones use BASE_BLOCK_RIP); J<cc>: Jcc per
 * condition, the displacement relative to the block's start (in disp, as
 * for JMP64_REL and CALL64_REL: imm holds their op link).  xx_F: the
 * same memory op in 64-bit code with a 64-bit address through ES/CS/SS/DS
 * (no segment base), or FS/GS with the base in the free base or index slot
 * (exec.c XREG_SEG_BASE), RIP-relative ones based on BASE_BLOCK_RIP;
 * xx_FB: an xx_F without an index register.  LD32..LD16 and their _F
 * and _FB forms are three runs in the same order.  LD8:
 * byte load into registers 0-15 (partial write); CMP_MR: CMP memory, G;
 * CMP8_MR / CMP8_MI / CMP8_RM: byte CMP memory, G / memory, imm / G,
 * memory (G a register 0-15); LD16: 16-bit load into the low word of op->reg.
 * Register forms: MOV_RIW (32/64-bit, imm pre-masked), MOVZX8_RR /
 * MOVZX16_RR / MOVSXD_RR (source register 0-15), IMUL_RR (G = G * E),
 * CMOV_RR (G = E if condition op->sub), SETCC_R (byte register 0-15), NOT_R,
 * BSF_RR (G = index of E's lowest set bit; BSF_RR_NF: flags dead),
 * SHIFT8_RI (SHL/SHR/SAR, op->sub, of a byte register 0-15 by 1..7),
 * CMP8_RI / TEST8_RR / TEST8_RI (byte registers 0-15), INC_R / DEC_R,
 * MOV64_RR (MOV_RR with a 64-bit operand).  64-bit code with 64-bit
 * operands: PUSH64_R, POP64_R, CALL64_REL, RET64 (no imm16; op->sub: its block may
 * chain, so it may follow the return prediction), JMP64_REL
 * (displacement relative to the block's start, as J<cc>), JMP64_NEXT
 * (a JMP64_REL to the next op, which decode.c followed).  Memory
 * operands through an _F address, any operand size unless noted: INC_M_F /
 * DEC_M_F (INC/DEC memory), ST_I_F (MOV memory, imm), CMP_MI_F (CMP
 * memory, imm; 16-64-bit), TEST_MI_F (TEST memory, imm), JMP_M_F (JMP
 * through a 64-bit pointer in memory), CMPXCHG_M_F (CMPXCHG memory, G; not
 * FS/GS: its slow path is the generic helper), SHIFT_M_F (SHL/SHR/SAR,
 * op->sub, of memory by 1..width-1).  J<cc>_<P>:
 * flag producer P (CMP8_MR, CMP8_MI, CMP8_RM, CMP_MR: their _F/_FB
 * forms) fused with the J<cc> that is the next op, which stays in place
 * and gives the branch its target and link (JBE/JA_CMP_RI: CMP_RI with
 * JBE/JA; JB/JNB_CMP_RR: CMP_RR with JB/JNB).
 * Several instructions in one dispatch, the ops after the first staying in
 * place (in-block jump targets): PUSH64_RUN / POP64_RUN / MOV64_RUN: the
 * first of two or more PUSH64_R / POP64_R / MOV64_RR in a row (POP64_RUN
 * also of one POP64_R before a RET64, which it runs too); LD64_RUN /
 * ST64_RUN: the same for LD64_FB and ST64_FB mixed, the first a load / a
 * store.  INC_JNZ_CMP8_MI: INC_R followed by JNZ_CMP8_MI (a byte-scan loop
 * "inc r; cmp byte [m], imm; jnz").  LDn_<J>: an LDn_F or LDn_FB load
 * followed by the fused J<cc>_<P> op <J>, which it runs without a
 * dispatch ("mov cl, [m]; test cl, cl; jnz").
 * SSE_*: the commonest legacy-SSE integer forms (66 0F or F3 0F, the
 * OP_SSE fields kept as decoded so the generic helper can take over):
 * SSE_LDA / SSE_LDU / SSE_STA / SSE_STU: 16-byte aligned / unaligned load
 * into or store of xmm[op->reg] through an _F-style address (64-bit code,
 * 64-bit address, ES/CS/SS/DS, not RIP-relative); SSE_MOV_RR: xmm[reg] =
 * xmm[rm]; SSE_MOVD_XR: MOVD/MOVQ xmm, r32/r64; SSE_PMOVMSKB: r32, xmm;
 * the others xmm[reg] = xmm[reg] OP xmm[rm] (PSHUFD: = shuffle of xmm[rm];
 * PSHUFB is 66 0F 38 00); SSE_PCMPISTRI: 66 0F 3A 63, xmm[reg] against
 * xmm[rm] or an _F-style memory operand (unaligned, SSE_LDU's rules).
 * xx_NF: xx whose flags no one reads (tcg_specialize's flag liveness): the
 * same register result, the lazy flags left alone (the _NF kinds are one
 * run, ADD_RR_NF..DEC_R_NF).  INC_R_KC, DEC_R_KC,
 * J<cc>_DEC_R_KC: INC_R / DEC_R (fused) where CF is known to be op->imm
 * (0 or 1) when they run, so they need not compute it from the lazy flags.
 */
#define TCG_FASTOP_LIST(X) \
    X(ADD_RR) X(OR_RR) X(AND_RR) X(SUB_RR) X(XOR_RR) X(CMP_RR) X(TEST_RR) X(MOV_RR) \
    X(ADD_RI) X(OR_RI) X(AND_RI) X(SUB_RI) X(XOR_RI) X(CMP_RI) X(TEST_RI) \
    X(SHL_RI) X(SHR_RI) X(SAR_RI) X(SHL_RCL) X(SHR_RCL) X(SAR_RCL) X(ROL_RI) X(ROR_RI) X(NOT_R) \
    X(BSF_RR) X(BSF_RR_NF) X(SHIFT8_RI) \
    X(ADD16_RI) X(CMP16_RR) \
    X(LD32) X(LD64) X(LDZX8) X(LDZX16) X(LD8) X(ST8) X(ST16) X(ST32) X(ST64) \
    X(ADD_RM) X(OR_RM) X(AND_RM) X(SUB_RM) X(XOR_RM) X(CMP_RM) X(CMP_MR) \
    X(CMP8_MR) X(CMP8_MI) X(CMP8_RM) X(LD16) \
    X(LD32_F) X(LD64_F) X(LDZX8_F) X(LDZX16_F) X(LD8_F) X(ST8_F) X(ST16_F) X(ST32_F) X(ST64_F) \
    X(ADD_RM_F) X(OR_RM_F) X(AND_RM_F) X(SUB_RM_F) X(XOR_RM_F) X(CMP_RM_F) X(CMP_MR_F) \
    X(CMP8_MR_F) X(CMP8_MI_F) X(CMP8_RM_F) X(LD16_F) \
    X(LD32_FB) X(LD64_FB) X(LDZX8_FB) X(LDZX16_FB) X(LD8_FB) X(ST8_FB) X(ST16_FB) X(ST32_FB) \
    X(ST64_FB) X(ADD_RM_FB) X(OR_RM_FB) X(AND_RM_FB) X(SUB_RM_FB) X(XOR_RM_FB) X(CMP_RM_FB) \
    X(CMP_MR_FB) X(CMP8_MR_FB) X(CMP8_MI_FB) X(CMP8_RM_FB) X(LD16_FB) \
    X(LEA_B) X(LEA_BI) X(MOV_RIW) X(MOVZX8_RR) X(MOVZX16_RR) X(MOVSXD_RR) X(IMUL_RR) \
    X(CMOV_RR) X(SETCC_R) X(CMP8_RI) X(TEST8_RR) X(TEST8_RI) X(INC_R) X(DEC_R) \
    X(PUSH64_R) X(POP64_R) X(CALL64_REL) X(RET64) X(JMP64_REL) X(JMP64_NEXT) X(MOV64_RR) \
    X(INC_M_F) X(DEC_M_F) X(ST_I_F) X(CMP_MI_F) X(TEST_MI_F) X(JMP_M_F) X(CMPXCHG_M_F) \
    X(SHIFT_M_F) \
    X(JO) X(JNO) X(JB) X(JNB) X(JZ) X(JNZ) X(JBE) X(JA) \
    X(JS) X(JNS) X(JP) X(JNP) X(JL) X(JGE) X(JLE) X(JG) \
    X(JZ_CMP8_MR) X(JNZ_CMP8_MR) X(JZ_CMP8_MI) X(JNZ_CMP8_MI) X(JZ_CMP8_RM) X(JNZ_CMP8_RM) \
    X(JZ_DEC_R) X(JNZ_DEC_R) X(JZ_TEST_RR) X(JNZ_TEST_RR) X(JZ_TEST8_RR) X(JNZ_TEST8_RR) \
    X(JZ_CMP_RI) X(JNZ_CMP_RI) X(JZ_CMP_RR) X(JNZ_CMP_RR) X(JB_CMP_MR) X(JNB_CMP_MR) \
    X(JZ_CMP8_RI) X(JNZ_CMP8_RI) X(JZ_TEST8_RI) X(JNZ_TEST8_RI) X(JBE_CMP_RI) X(JA_CMP_RI) \
    X(JZ_SUB_RI) X(JNZ_SUB_RI) X(JZ_ADD_RI) X(JNZ_ADD_RI) X(JB_CMP_RR) X(JNB_CMP_RR) \
    X(PUSH64_RUN) X(POP64_RUN) X(MOV64_RUN) X(LD64_RUN) X(ST64_RUN) X(INC_JNZ_CMP8_MI) \
    X(LD8_JZ_TEST8_RR) X(LD8_JNZ_TEST8_RR) X(LD8_JZ_CMP8_RM) X(LD8_JNZ_CMP8_RM) \
    X(LD64_JZ_TEST_RR) X(LD64_JNZ_TEST_RR) \
    X(SSE_LDA) X(SSE_LDU) X(SSE_STA) X(SSE_STU) X(SSE_MOV_RR) X(SSE_MOVD_XR) X(SSE_PMOVMSKB) \
    X(SSE_PXOR) X(SSE_POR) X(SSE_PAND) X(SSE_PANDN) X(SSE_PCMPEQB) X(SSE_PCMPEQD) \
    X(SSE_PMINUB) X(SSE_PSUBB) X(SSE_PSHUFD) X(SSE_PUNPCKLBW) X(SSE_PUNPCKLWD) X(SSE_PSHUFB) \
    X(SSE_PCMPISTRI) \
    X(ADD_RR_NF) X(OR_RR_NF) X(AND_RR_NF) X(SUB_RR_NF) X(XOR_RR_NF) \
    X(ADD_RI_NF) X(OR_RI_NF) X(AND_RI_NF) X(SUB_RI_NF) X(XOR_RI_NF) \
    X(SHL_RI_NF) X(SHR_RI_NF) X(SAR_RI_NF) X(ROL_RI_NF) X(ROR_RI_NF) X(INC_R_NF) X(DEC_R_NF) \
    X(INC_R_KC) X(DEC_R_KC) X(JZ_DEC_R_KC) X(JNZ_DEC_R_KC)

enum {
#define TCG_OP_ENUM(n) OP_##n,
    TCG_OP_LIST(TCG_OP_ENUM)
#undef TCG_OP_ENUM
    OP__COUNT
};

extern const char *const tcg_op_names[OP__COUNT];

#define NOREG  0xff
#define BASE_RIP 16          /* base register meaning RIP-relative (TCGCPU.xregs[16] is RIP) */
#define REG_ZERO 17          /* no base / no index (TCGCPU.xregs[17] is always 0) */
#define BASE_BLOCK_RIP 18    /* the block's first RIP (exec.c's RIP-relative _F forms) */

/* DecodedOp.pfx */
#define PFX_REP   0x01      /* F3 */
#define PFX_REPNE 0x02      /* F2 */
#define PFX_LOCK  0x04
#define PFX_CL    0x08      /* shift count from CL */
#define PFX_OSZ   0x10      /* 66 seen */
#define PFX_REX   0x20
/*
 * The lazy flags are not exact on entry: an earlier xx_NF op of the block
 * skipped its flags because a later op overwrites them first (exec.c,
 * tcg_specialize).  Such ops are register ops and flat loads, whose slow
 * path rebuilds the flags before it can fault (exec.c flags_recover, with
 * op->imm16).  tb_kill leaves them as they are, so that a block
 * invalidated under the interpreter's feet (a DMA write from another
 * thread) runs on to an op where the flags are exact before it exits.
 */
#define PFX_CC_STALE 0x40
#define PFX_ENDS  0x80      /* ends the block (set by decoder) */

typedef struct DecodedOp {
    /*
     * The interpreter's handler for idx (exec.c, set by tcg_specialize and
     * tb_kill): dispatch is one load and an indirect jump.
     */
    const void *handler;
    uint16_t idx;           /* OP_* */
    uint8_t len;            /* instruction length in bytes */
    uint8_t sz;             /* operand size, log2 bytes (0..3) */
    uint8_t asz;            /* address size, log2 bytes (1..3) */
    uint8_t seg;            /* segment for the memory operand */
    uint8_t reg;            /* ModRM.reg (extended), or the opcode's register */
    uint8_t rm;             /* register operand, or NOREG when memory */
    union {
        struct {
            uint8_t base, index, scale;     /* memory operand: REG_ZERO when absent */
            uint8_t sub;    /* ALU op, condition code, group sub-op, ... */
        };
        uint32_t link_epoch;    /* op links: link_tb is valid while this is tb_link_epoch */
    };
    uint8_t pfx;            /* PFX_* */
    uint8_t link;           /* TranslatedBlock.link slot of this exit, or TB_LINK_ANY (exec.c) */
    uint16_t imm16;         /* far pointer selector, ENTER frame size */
    int32_t disp;
    uint16_t off;           /* offset of the instruction from the block start (decode.c) */
    uint8_t seq;            /* 1 + index of the op in its block (exec.c's icount) */
    union {
        uint64_t imm;
        /*
         * Op links (exec.c op_link_fill): the direct branch kinds
         * JMP64_REL, J<cc> and CALL64_REL keep their target in disp (from
         * the block's start) and here the block at that target, when it
         * lies in the page of the block's start; link_epoch says whether
         * it may be followed.  The block at a CALL's return address (its
         * return prediction, exec.c ras_push) is linked the same way from
         * the EXIT op after the CALL, or from a CALL64_REL whose target is
         * on another page.
         */
        struct TranslatedBlock *link_tb;
    };
} DecodedOp;


/*
 * Successors remembered per block: a block exits at its end and at every
 * taken conditional branch inside it (decode.c), so it has several.  Each
 * direct exit (Jcc, JMP/CALL rel, the end of the block) owns one of the
 * first TB_LINKS_DIRECT slots (DecodedOp.link), so following it is one
 * compare; indirect exits (RET, JMP/CALL r/m, helpers) share the others.
 */
#define TB_LINKS 8
#define TB_LINKS_DIRECT 6
#define TB_LINK_ANY 0xff

typedef struct TranslatedBlock TranslatedBlock;
struct TranslatedBlock {
    uint64_t pc_phys;           /* physical address of the first byte */
    uint64_t page2;             /* physical page of the tail, or UINT64_MAX */
    uint32_t flags;             /* decode mode (TB_FLAG_*) */
    uint32_t size;              /* bytes covered */
    uint32_t n_ops;             /* instructions (ops[n_ops] is an EXIT sentinel) */
    volatile bool invalid;
    TranslatedBlock *hash_next;
    TranslatedBlock *page_next[2];
    TranslatedBlock **page_pprev[2];    /* what points at this block in each page list (tb.c) */
    TranslatedBlock *dead_next;
    uint64_t exec_count;        /* entries from the run loop (a future JIT's hotness heuristic) */
    /*
     * Block chaining: the last TB_LINKS successors seen, keyed like the jump
     * cache (linear PC, flags) and stamped with the generation of the CPU
     * jump cache that made them (TCGCPU.link_gen); a link is followed only
     * while that generation is current, which also guarantees the target
     * has not been freed (tb_reap flushes every jump cache).
     */
    struct {
        uint64_t lin;
        uint64_t gen;
        TranslatedBlock *tb;
        uint32_t flags;
    } link[TB_LINKS];
    uint32_t link_next;         /* slot to replace on a miss */
    /*
     * On a cache line of its own (tb_alloc aligns blocks): entering a
     * block reads its first op, which then spans one line, not two.
     */
    DecodedOp ops[] __attribute__((aligned(64)));
};

#define TB_FLAG_CODE16 1u
#define TB_FLAG_CODE32 2u
#define TB_FLAG_CODE64 3u
#define TB_FLAG_SIZE_MASK 3u
#define TB_FLAG_SSTEP 4u        /* EFLAGS.TF: one instruction per block, #DB after it */
/*
 * One instruction, no trap: the block right after STI / MOV SS, so that a
 * pending interrupt is taken after exactly one instruction (SDM 3A §6.8.3),
 * as in "sti; nop; cli" windows, instead of after a whole block.
 */
#define TB_FLAG_ONE   8u
/*
 * The CS limit can cut code short (protected mode, not 64-bit, a 32-bit CS
 * below 4 GiB or a 16-bit CS below 64 KiB: rare).  Blocks hold one
 * instruction and are checked against the limit before they run
 * (tcg-accel.c cs_limit_check).
 */
#define TB_FLAG_CSLIM 16u
/*
 * An instruction breakpoint is enabled (DR7, debug.c): the run loop checks
 * each such block against DR0-DR3 before running it, so no link ever leads
 * into one (tcg-accel.c tb_lookup_cpu).
 */
#define TB_FLAG_BP    32u
/*
 * Fetched with user privilege (CPL 3: TCGCPU.mmu_idx is not MMU_KERNEL).
 * The block is the same code either way, but the jump cache and the links
 * map a linear PC to a block without a TLB lookup: keyed with this bit, a
 * block the kernel ran on a supervisor page is never reached from CPL 3,
 * whose fetch must fault there (SDM 3A §4.6).
 */
#define TB_FLAG_USER  64u
/* Blocks of one instruction that return to the run loop (no links). */
#define TB_FLAGS_ALONE (TB_FLAG_SSTEP | TB_FLAG_ONE | TB_FLAG_CSLIM)

#define TB_MAX_INSNS 64

void tb_cache_init(void);
TranslatedBlock *tb_alloc(unsigned n_ops);
/* Insert; returns a bitmask of pages (1 = first, 2 = second) that newly hold code. */
unsigned tb_insert(TranslatedBlock *tb);
TranslatedBlock *tb_find(uint64_t pc_phys, uint32_t flags);
/*
 * The same, for code whose next linear page maps physical page page2
 * (UINT64_MAX: it maps nothing): a block that ends on its first page or
 * runs onto page2.  The same first page can be followed by different
 * second pages in different address spaces, each with its own block.
 */
TranslatedBlock *tb_find_page2(uint64_t pc_phys, uint32_t flags, uint64_t page2);
bool tb_page_has_code(uint64_t paddr_page);
void tb_invalidate_phys_range(uint64_t pa, uint64_t len);
void tb_flush_all(void);
/* Free invalidated blocks; true if any were freed (callers flush jump caches). */
bool tb_reap(void);
/* Counts the tb_reap calls that freed blocks (caches of block pointers compare it). */
extern unsigned long tb_free_gen;
/*
 * Generation of op links (DecodedOp.link_tb): a new one whenever a block
 * is invalidated or freed, so that no op link leads into either.  Never 0,
 * the value of an op without a link.
 */
extern uint32_t tb_link_epoch;
/* exec.c: forget the op links of tb (tb_link_epoch wrapped around). */
void tcg_forget_op_links(TranslatedBlock *tb);
/* The same once enough blocks are dead to be worth a jump-cache flush. */
bool tb_reap_batch(void);
unsigned tb_count(void);
/* exec.c: substitute the specialised op kinds (TCG_FASTOP_LIST) in a new block. */
void tcg_specialize(TranslatedBlock *tb);
/* exec.c: the interpreter's handler for op kind idx (DecodedOp.handler). */
const void *tcg_op_handler(unsigned idx);

#endif
