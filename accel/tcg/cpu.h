/*
 * Private state of Kestrel's software x86 CPU ("tcg" accelerator).
 *
 * Layering (each box only calls the ones below it):
 *   tcg-accel.c  AccelOps glue: run loop, kick, reset, get/set_regs
 *   exec.c       threaded interpreter over pre-decoded ops (computed goto)
 *   ops-*.c      out-of-line instruction helpers (ALU corner cases, strings,
 *                system instructions, x87 in ops-fpu.c + softfloat80.c +
 *                fpu-trans.c, SSE/MMX in ops-sse.c + ops-sse-fp.c);
 *                seg.c far transfers; excp.c delivery
 *   tb.c         translated-block cache keyed by guest physical address
 *   decode.c     x86 bytes -> DecodedOp records (knows nothing of execution)
 *   mmu.c        segmentation-free linear -> physical paging + soft TLB
 *
 * A native code generator can later replace exec.c for hot blocks: it sees
 * the same TranslatedBlock/DecodedOp records and the same memory helpers.
 *
 * References: Intel SDM (order 325462) vols 2 and 3A, AMD APM vols 2-3,
 * /work/shared/docs/x86-software-cpu.md.
 */
#ifndef TCG_CPU_H
#define TCG_CPU_H

/* The interpreter's operand and memory helpers: always inlined into the
 * handlers, whose constant arguments then fold the size switches away. */
#define TCG_INLINE static inline __attribute__((always_inline))

#include <inttypes.h>
#include <setjmp.h>
#include "kestrel/common.h"
#include "kestrel/x86.h"
#include "kestrel/memory.h"
#include "accel/tcg/fpu.h"

typedef struct Machine Machine;
typedef struct TranslatedBlock TranslatedBlock;

/* ---- EFLAGS (SDM 1 §3.4.3) ---- */
#define CC_C   0x0001u
#define CC_P   0x0004u
#define CC_A   0x0010u
#define CC_Z   0x0040u
#define CC_S   0x0080u
#define CC_O   0x0800u
#define CC_ALL (CC_C | CC_P | CC_A | CC_Z | CC_S | CC_O)
#define FL_TF   0x00000100u
#define FL_IF   0x00000200u
#define FL_DF   0x00000400u
#define FL_IOPL 0x00003000u
#define FL_NT   0x00004000u
#define FL_RF   0x00010000u
#define FL_VM   0x00020000u
#define FL_AC   0x00040000u
#define FL_VIF  0x00080000u
#define FL_VIP  0x00100000u
#define FL_ID   0x00200000u

/* ---- Exception vectors (SDM 3A §6.3.1) ---- */
enum {
    EXCP_DE = 0, EXCP_DB = 1, EXCP_NMI = 2, EXCP_BP = 3, EXCP_OF = 4, EXCP_BR = 5,
    EXCP_UD = 6, EXCP_NM = 7, EXCP_DF = 8, EXCP_TS = 10, EXCP_NP = 11, EXCP_SS = 12,
    EXCP_GP = 13, EXCP_PF = 14, EXCP_MF = 16, EXCP_AC = 17, EXCP_MC = 18, EXCP_XM = 19,
};

/* Not a vector: raise_exception's code for "unwind and run this instruction alone" (debug.c). */
#define EXCP_DBG_RESTART 0x100

/* #PF error code bits (SDM 3A §4.7) */
#define PFERR_P    0x01u
#define PFERR_W    0x02u
#define PFERR_U    0x04u
#define PFERR_RSVD 0x08u
#define PFERR_ID   0x10u

/* Debug registers (SDM 3A §17.2.3, §17.2.4). */
#define DR6_BD     (1u << 13)           /* debug register access detected (DR7.GD) */
#define DR6_BS     (1u << 14)           /* single step */
#define DR6_BT     (1u << 15)           /* task switch */
#define DR6_FIXED  0xffff0ff0u          /* reserved bits read as 1 (bit 16: no RTM) */
#define DR7_GD     (1u << 13)
#define DR7_FIXED  0x400u

/* More control-register bits than x86.h has. */
#define CR4_VME        (1u << 0)
#define CR4_PVI        (1u << 1)
#define CR4_TSD        (1u << 2)
#define CR4_DE         (1u << 3)
#define CR4_MCE        (1u << 6)
#define CR4_PCE        (1u << 8)
#define CR4_OSFXSR     (1u << 9)
#define CR4_OSXMMEXCPT (1u << 10)
#define CR4_OSXSAVE    (1u << 18)

/* MSR numbers (SDM 4) */
#define MTRR_VAR_COUNT 8                /* variable MTRRs (MTRRCAP.VCNT) */
#define MCA_BANKS      10               /* machine-check banks (MCG_CAP.Count), as QEMU */
#define MSR_IA32_TSC            0x10
#define MSR_IA32_APIC_BASE      0x1b
#define MSR_IA32_PLATFORM_ID    0x17
#define MSR_IA32_BIOS_SIGN_ID   0x8b
#define MSR_IA32_SYSENTER_CS    0x174
#define MSR_IA32_SYSENTER_ESP   0x175
#define MSR_IA32_SYSENTER_EIP   0x176
#define MSR_IA32_MISC_ENABLE    0x1a0
#define MSR_IA32_ARCH_CAPABILITIES 0x10a
#define MSR_IA32_PAT            0x277
#define MSR_EFER                0xc0000080u
#define MSR_STAR                0xc0000081u
#define MSR_LSTAR               0xc0000082u
#define MSR_CSTAR               0xc0000083u
#define MSR_FMASK               0xc0000084u
#define MSR_FS_BASE             0xc0000100u
#define MSR_GS_BASE             0xc0000101u
#define MSR_KERNEL_GS_BASE      0xc0000102u
#define MSR_TSC_AUX             0xc0000103u

/* ---- Segment cache ---- */
/*
 * attr packs the descriptor's access byte and flags the way VMX "access
 * rights" do: bits 0-3 type, 4 S, 5-6 DPL, 7 P, 12 AVL, 13 L, 14 D/B, 15 G.
 */
#define SEGA_TYPE(a)  ((a) & 0xfu)
#define SEGA_S        0x0010u
#define SEGA_DPL(a)   (((a) >> 5) & 3u)
#define SEGA_P        0x0080u
#define SEGA_L        0x2000u
#define SEGA_DB       0x4000u
#define SEGA_G        0x8000u
#define SEGA_CODE     0x0008u      /* type bit 3 with S=1 */
#define SEGA_CONF_EXPD 0x0004u     /* conforming (code) / expand-down (data) */
#define SEGA_RW       0x0002u      /* readable (code) / writable (data) */
#define SEGA_ACCESSED 0x0001u

/* Access permissions precomputed per segment for the fast path. */
#define SEGOK_R    0x01u   /* readable */
#define SEGOK_W    0x02u   /* writable */
#define SEGOK_FLAT 0x04u   /* base 0, limit 4G, expand-up: no limit check */

typedef struct SegCache {
    uint64_t base;
    uint32_t limit;
    uint16_t sel;
    uint16_t attr;
    uint8_t ok;             /* SEGOK_* */
    uint8_t unusable;       /* null selector loaded in protected mode */
} SegCache;

/* ---- Soft TLB ---- */
#define TLB_BITS 10
#define TLB_SIZE (1u << TLB_BITS)
#define TLB_PAGE_MASK (~(uint64_t)0xfff)
#define TLB_INVALID ((uint64_t)-1)
/* Low tag bits forcing the slow path while keeping the translation usable. */
#define TLB_FLAG_IO   0x1u      /* MMIO / unassigned / ROM write: go through address_space */
#define TLB_FLAG_CODE 0x2u      /* page holds translated code: invalidate on write */
#define TLB_FLAG_WATCH 0x4u     /* page holds a data-breakpoint range (debug.c) */
#define TLB_FLAG_MASK 0x7u

/*
 * 32 bytes, so that indexing a set is one shift: what only the slow paths
 * need (the physical page and the global bit) is in the parallel array
 * TCGCPU.tlb_phys (mmu.c tlb_phys_of).
 */
typedef struct TLBEntry {
    uint64_t tag_r, tag_w, tag_x;   /* linear page | flags, or TLB_INVALID */
    uintptr_t addend;               /* host = lin + addend (RAM pages) */
} TLBEntry;
#define TLB_PHYS_GLOBAL 0x1u        /* TCGCPU.tlb_phys: physical page | this bit */
_Static_assert(sizeof(TLBEntry) == 32, "a TLB set is indexed with one shift");

/*
 * TLB sets.  MMU_USER_AC is CPL 3 with alignment checking on (CR0.AM and
 * EFLAGS.AC, SDM 3A §6.15 interrupt 17): its set is never filled, so every
 * access takes the slow path, which checks alignment (mmu.c).
 */
enum { MMU_KERNEL = 0, MMU_USER = 1, MMU_USER_AC = 2, MMU__COUNT = 3 };

/* Host pointers of RAM pages that hold paging structures (mmu.c page_walk). */
#define PTC_SIZE 16
typedef struct PTCacheEntry {
    uint64_t tag;                   /* physical page | 1, or 0 */
    uint8_t *host;
} PTCacheEntry;
enum { ACC_READ = 0, ACC_WRITE = 1, ACC_EXEC = 2 };

/* ---- Lazy flags ---- */
typedef enum CCOp {
    CC_OP_EFLAGS,   /* flags materialised in cc_aux */
    CC_OP_ADD, CC_OP_ADC, CC_OP_SUB, CC_OP_SBB,
    CC_OP_LOGIC,    /* CF=OF=AF=0 */
    CC_OP_INC, CC_OP_DEC,       /* cc_aux = old CF */
    CC_OP_SHL, CC_OP_SHR,       /* cc_a = value shifted by count-1 (SHR covers SAR) */
    CC_OP_MUL,      /* cc_aux != 0 -> CF=OF=1 */
} CCOp;

/* ---- x87 / SSE (SDM 1 §8.1, §10.2) ---- */
#define FSW_SF   0x0040u
#define FSW_ES   0x0080u
#define FSW_C0   0x0100u
#define FSW_C1   0x0200u
#define FSW_C2   0x0400u
#define FSW_TOP_SHIFT 11
#define FSW_TOP  0x3800u
#define FSW_C3   0x4000u
#define FSW_B    0x8000u
#define MXCSR_DAZ  0x0040u
#define MXCSR_FZ   0x8000u
#define MXCSR_MASK_SUPPORTED 0xffffu    /* FXSAVE MXCSR_MASK: DAZ supported */
/* XSAVE state components (SDM 1 §13.1): bits of XCR0 and XSTATE_BV. */
#define XSTATE_X87 0x1u
#define XSTATE_SSE 0x2u
#define XCR0_SUPPORTED (XSTATE_X87 | XSTATE_SSE)
#define XSAVE_AREA_SIZE 576u            /* 512-byte legacy region + 64-byte header */

typedef union XMMReg {
    uint8_t b[16];
    uint16_t w[8];
    uint32_t d[4];
    uint64_t q[2];
} XMMReg;

#define JC_BITS 12
#define JC_SIZE (1u << JC_BITS)

typedef struct TCGCPU {
    /*
     * Guest registers first: the interpreter's hot state.  xregs views the
     * sixteen GPRs, RIP (16, BASE_RIP) and a register that is always zero
     * (17, REG_ZERO) as one array, so that an effective address is
     * disp + xregs[base] + (xregs[index] << scale) with no tests.
     * block_rip (18) is the RIP of the first instruction of the block
     * being run, the base of exec.c's RIP-relative operands.
     */
    union {
        uint64_t xregs[19];
        struct {
            uint64_t regs[16];
            uint64_t rip;
            uint64_t zero_reg;
            uint64_t block_rip;
        };
    };
    uint64_t cc_res, cc_a, cc_b, cc_aux;
    uint8_t cc_op, cc_size;          /* CCOp, log2(operand bytes) */
    uint32_t eflags;                 /* all bits except CC_ALL */

    SegCache seg[SEG__COUNT];
    SegCache ldt, tr;
    X86DescTable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer;
    uint64_t xcr0;                   /* enabled XSAVE state components (SDM 1 §13.3) */
    uint64_t dr[8];
    uint64_t apic_base;
    uint64_t star, lstar, cstar, fmask, kernel_gs_base, tsc_aux;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t pat, misc_enable;
    struct {
        uint64_t def_type;
        uint64_t var[2 * MTRR_VAR_COUNT];   /* PHYSBASEn, PHYSMASKn pairs */
        uint64_t fixed[11];                 /* FIX64K, FIX16K x2, FIX4K x8 */
    } mtrr;                                 /* msr-mtrr-mca.c */
    struct {
        uint64_t mcg_status, mcg_ctl;
        uint64_t bank[MCA_BANKS][4];        /* CTL, STATUS, ADDR, MISC */
    } mca;
    int64_t tsc_offset;
    /* Tests that compare two runs: the TSC counts retired instructions, not host time. */
    bool tsc_counts_insns;
    uint64_t pdpte[4];               /* PAE PDPTE registers loaded on MOV CR3 */

    /* x87 and SSE state (ops-fpu.c). */
    F80 fpr[8];                      /* physical registers R0-R7; ST(i) = R[(TOP+i)&7] */
    uint16_t fcw, fsw;               /* FSW holds TOP in bits 11-13 */
    uint8_t ftw_valid;               /* abridged tag: bit i set = R[i] not empty */
    uint16_t fop, fcs, fds;
    uint64_t fip, fdp;
    uint32_t mxcsr;
    XMMReg xmm[16];

    /* Derived mode state (cpu_update_hflags). */
    uint8_t cpl;
    uint8_t code_size;               /* 1=16, 2=32, 3=64 (log2 bytes) */
    uint8_t stack_size;              /* 1/2/3 from SS.B / long mode */
    bool pe, vm86, lma, code64;
    uint8_t mmu_idx;

    /* Run state. */
    bool halted;
    bool intr_shadow;                /* STI / MOV SS shadow: no INTR before next block */
    bool one_insn;                   /* run a TB_FLAG_ONE block next (shadow retiring) */
    bool cs_limited;                 /* TB_FLAG_CSLIM: the CS limit can cut code short */
    /* TB_FLAG_CSLIM if cs_limited, TB_FLAG_BP if an instruction breakpoint is enabled. */
    uint8_t tb_flags_extra;
    /* The last TB_FLAG_CSLIM instruction's start, for undoing a near branch past the limit. */
    struct {
        bool valid;
        uint16_t cs;
        uint64_t rip, next_rip, rsp, rcx;
    } cslim_undo;
    bool movss_shadow;               /* the shadow is MOV SS/POP SS's: it blocks NMI too */
    /*
     * NMI (SDM 3A §6.7.1): one latched NMI waits in nmi_pending; delivery
     * sets nmi_blocked until the next IRET (which unblocks even if it then
     * faults, SDM 3C §27.2.3 "NMI unblocking due to IRET").
     */
    bool nmi_pending, nmi_blocked;
    /*
     * Debug registers (SDM 3A ch. 17 "Debug, Branch Profile, TSC..."),
     * decoded from DR7 by cpu_debug_update (debug.c): bit i of each mask is
     * DRi enabled (L or G) with R/W 00 (execute), 01/11 (data write, data
     * read/write) or 10 (I/O, only counted while CR4.DE=1).
     * dr6_pending: B0-B3 of data / I/O breakpoints hit by the instruction
     * being executed, reported by a #DB trap after it (tcg-accel.c).
     */
    uint8_t bp_exec, bp_data, bp_io;
    uint32_t dr6_pending;
    bool dbg_restart;                /* run the current instruction alone (data breakpoint hit) */
    /*
     * Nonzero when the run loop has rare work at the next boundary: set
     * with dr6_pending, nmi_pending, dbg_restart and movss_shadow, so that
     * the loop tests one byte for all of them (tcg-accel.c).
     */
    uint8_t run_events;
    int excp_delivering;             /* vector being delivered, -1 none (for #DF) */
    int excp_vec;                    /* raised exception waiting for delivery */
    uint32_t excp_err;
    bool excp_has_err;
    bool excp_soft;                  /* INT n / INT3 / INTO: software interrupt */
    bool excp_v86_ivt;               /* soft: INT n redirected to the v8086 IVT (CR4.VME) */
    uint64_t excp_next_rip;          /* return address for software interrupts */
    jmp_buf jmp;                     /* longjmp target of raise_exception */
    volatile int exit_request;       /* kick: leave the loop at a block boundary */
    int irq_check;                   /* INTR may have changed: ask the controller */
    const TranslatedBlock *cur_tb;   /* block being executed (SMC detection) */
    uint64_t icount;                 /* instructions retired (blocks granularity) */
    bool shutdown;                   /* triple fault: stays halted until reset */
    bool stop_on_exception;          /* unit tests: record exceptions, do not deliver */
    int stopped_vec;                 /* -1 or the recorded vector */
    uint32_t stopped_err;

    TLBEntry tlb[MMU__COUNT][TLB_SIZE];
    TLBEntry tlb_ac_scratch;         /* MMU_USER_AC translations, never looked up */
    uint64_t tlb_phys[MMU__COUNT][TLB_SIZE];    /* physical page | TLB_PHYS_GLOBAL, per entry */
    uint64_t tlb_ac_scratch_phys;
    /*
     * Entries of tlb[MMU_KERNEL] and tlb[MMU_USER] filled since they were
     * last all invalid (mmu.c), so that a flush (a CR3 write: every Linux
     * context switch) walks the few in use instead of every set;
     * tlb_filled_n > TLB_SIZE: too many to list, walk them all.  The
     * MMU_USER_AC set is never filled (tlb_ac_scratch) and stays invalid.
     */
    uint16_t tlb_filled[2][TLB_SIZE];
    uint32_t tlb_filled_n[2];
    PTCacheEntry ptc[PTC_SIZE];      /* flushed with the TLB */
    /* Linear PC -> block; an entry counts only while its gen is link_gen (cpu_jc_flush). */
    struct { uint64_t lin; uint64_t gen; TranslatedBlock *tb; uint32_t flags; } jc[JC_SIZE];
    /*
     * Blocks by physical PC, in front of tb_find (tcg-accel.c): unlike the
     * jump cache it does not depend on the paging mode or CR3, so it
     * survives their changes, and is cleared only when blocks have been
     * freed since it was filled (pjc_gen != tb_free_gen).
     */
    TranslatedBlock *pjc[JC_SIZE];
    unsigned long pjc_gen;
    /*
     * Generation of the jump cache: block links (TranslatedBlock.link) made
     * by this CPU are valid while it is unchanged.  Values come from one
     * global counter (cpu_jc_flush), so no two CPUs ever share a value.
     */
    uint64_t link_gen;
    /*
     * Return prediction (exec.c ras_push): a near CALL in 64-bit code
     * pushes its return address and the block there, if the CALL's block
     * has one linked; a RET64 pops it, and when the address is the one
     * popped from the guest's stack goes on into that block without a
     * lookup.  An entry counts only while tb_link_epoch is what it was at
     * the push (no block invalidated or freed since) and in a block with
     * the CALL's flags (a return to a kernel address from CPL 3 must not
     * run the kernel's block, which would skip the page's U/S check);
     * cpu_jc_flush (a CR3 write, INVLPG) empties the stack.  A ring: deep calls overwrite the
     * oldest entries, whose returns then take the lookup.
     */
#define RAS_SIZE 16
    struct {
        uint64_t lin;                /* return address (linear) */
        TranslatedBlock *tb;         /* the block at lin, or NULL */
        struct DecodedOp *site;      /* the op whose link is that block, or NULL */
        uint32_t epoch;              /* tb_link_epoch at the push */
        uint32_t flags;              /* the CALL's block's flags (CPL: TB_FLAG_USER) */
    } ras[RAS_SIZE];
    unsigned ras_top;
    TranslatedBlock *prev_tb;        /* block run last, whose links may be followed */
    uint8_t exit_link;               /* prev_tb's exit: its link slot or TB_LINK_ANY (tb.h) */
    volatile int chain_break;        /* an APIC event: stop following block links */

    int id;
    Machine *m;
    AddressSpace *as;
} TCGCPU;

/* ---- Small inline helpers ---- */
static const uint64_t size_mask[4] = { 0xff, 0xffff, 0xffffffffu, ~(uint64_t)0 };

static inline uint64_t sext(uint64_t v, int sz)
{
    switch (sz) {
    case 0: return (uint64_t)(int64_t)(int8_t)v;
    case 1: return (uint64_t)(int64_t)(int16_t)v;
    case 2: return (uint64_t)(int64_t)(int32_t)v;
    default: return v;
    }
}

/* Byte registers: 0-15 are the low bytes, 16-19 are AH CH DH BH. */
TCG_INLINE uint64_t reg_get(const TCGCPU *cpu, int r, int sz)
{
    if (sz == 0 && r >= 16)
        return (cpu->regs[r - 16] >> 8) & 0xff;
    return cpu->regs[r] & size_mask[sz];
}

TCG_INLINE void reg_set(TCGCPU *cpu, int r, int sz, uint64_t v)
{
    switch (sz) {
    case 0:
        if (r >= 16)
            cpu->regs[r - 16] = (cpu->regs[r - 16] & ~(uint64_t)0xff00) | ((v & 0xff) << 8);
        else
            cpu->regs[r] = (cpu->regs[r] & ~(uint64_t)0xff) | (v & 0xff);
        break;
    case 1: cpu->regs[r] = (cpu->regs[r] & ~(uint64_t)0xffff) | (v & 0xffff); break;
    case 2: cpu->regs[r] = (uint32_t)v; break;       /* 32-bit writes zero-extend */
    default: cpu->regs[r] = v; break;
    }
}

TCG_INLINE void set_cc(TCGCPU *cpu, CCOp op, int sz, uint64_t res, uint64_t a, uint64_t b)
{
    cpu->cc_op = op;
    cpu->cc_size = sz;
    cpu->cc_res = res;
    cpu->cc_a = a;
    cpu->cc_b = b;
}

/* CC_OP_LOGIC reads only the result (flags.c, exec.c's cc_eval): cc_a/cc_b are left alone. */
TCG_INLINE void set_cc_logic(TCGCPU *cpu, int sz, uint64_t res)
{
    cpu->cc_op = CC_OP_LOGIC;
    cpu->cc_size = sz;
    cpu->cc_res = res;
}

/* Forget every linear PC -> block mapping of this CPU (jump cache and links). */
extern uint64_t tcg_link_gen_counter;
void tb_forget_all_op_links(void);          /* tb.c */
static inline void cpu_jc_flush(TCGCPU *cpu)
{
    /*
     * A new generation forgets every jump-cache entry and link at once: a
     * CR3 write or INVLPG (Linux: every context switch) no longer clears
     * the 128 KiB table, and an entry of an old generation is never
     * followed, so its block may have been freed (tb_reap flushes too).
     */
    cpu->link_gen = ++tcg_link_gen_counter;
    if (unlikely((uint32_t)cpu->link_gen == 0)) {
        /* exec.c xlinks keep the low half: forget them all, and 0 means none. */
        tb_forget_all_op_links();
        cpu->link_gen = ++tcg_link_gen_counter;
    }
    cpu->prev_tb = NULL;
    memset(cpu->ras, 0, sizeof(cpu->ras));    /* its blocks were found through the old mapping */
}

/* Jcc condition cond from materialised flags f (CC_OP_EFLAGS keeps them in cc_aux). */
TCG_INLINE bool cc_eval_flags(uint32_t f, int cond)
{
    bool r;
    switch (cond >> 1) {
    case 0: r = f & CC_O; break;
    case 1: r = f & CC_C; break;
    case 2: r = f & CC_Z; break;
    case 3: r = f & (CC_C | CC_Z); break;
    case 4: r = f & CC_S; break;
    case 5: r = f & CC_P; break;
    case 6: r = !(f & CC_S) != !(f & CC_O); break;
    default: r = (f & CC_Z) || !(f & CC_S) != !(f & CC_O); break;
    }
    return (cond & 1) ? !r : r;
}

/* flags.c */
uint32_t cc_compute_all(const TCGCPU *cpu);
uint32_t cc_compute_cf(const TCGCPU *cpu);
bool cc_test(const TCGCPU *cpu, int cond);           /* Jcc condition 0-15 */
uint32_t cpu_get_eflags(const TCGCPU *cpu);
/* Write EFLAGS bits selected by mask (arithmetic bits included). */
void cpu_set_eflags(TCGCPU *cpu, uint32_t val, uint32_t mask);
static inline void cc_set_flags(TCGCPU *cpu, uint32_t arith)
{
    cpu->cc_op = CC_OP_EFLAGS;
    cpu->cc_aux = arith & CC_ALL;
}

/* excp.c */
void raise_exception(TCGCPU *cpu, int vec) __attribute__((noreturn));
void raise_exception_err(TCGCPU *cpu, int vec, uint32_t err) __attribute__((noreturn));
void raise_softint(TCGCPU *cpu, int vec, uint64_t next_rip) __attribute__((noreturn));
void raise_softint_v86_ivt(TCGCPU *cpu, int vec, uint64_t next_rip) __attribute__((noreturn));
void cpu_deliver_pending_exception(TCGCPU *cpu);
void cpu_deliver_interrupt(TCGCPU *cpu, int vec);
void helper_iret(TCGCPU *cpu, int opsz, uint64_t next_rip);

/* seg.c */
void cpu_update_hflags(TCGCPU *cpu);
void cpu_update_mmu_idx(TCGCPU *cpu);
void seg_compute_ok(TCGCPU *cpu, int s);
void seg_load_real(TCGCPU *cpu, int s, uint16_t sel);
void seg_load(TCGCPU *cpu, int s, uint16_t sel);     /* MOV/POP/Lxx: mode-aware */
/* Protected-mode loads faulting with check_vec: #GP (MOV/POP/Lxx, LLDT) or #TS (task switch). */
void seg_load_checked(TCGCPU *cpu, int s, uint16_t sel, int check_vec);
void ldt_load(TCGCPU *cpu, uint16_t sel, int check_vec);
void seg_set_from_desc(SegCache *sc, uint16_t sel, uint32_t lo, uint32_t hi);
bool desc_fetch(TCGCPU *cpu, uint16_t sel, uint32_t *lo, uint32_t *hi);
void desc_fetch_or_fault(TCGCPU *cpu, uint16_t sel, uint32_t *lo, uint32_t *hi, int vec, uint32_t err);
void seg_check_slow(TCGCPU *cpu, int s, uint64_t off, unsigned len, int acc);
void helper_far_jmp(TCGCPU *cpu, uint16_t sel, uint64_t off, uint64_t next_rip);
void helper_far_call(TCGCPU *cpu, uint16_t sel, uint64_t off, int opsz, uint64_t next_rip);
void helper_far_ret(TCGCPU *cpu, int opsz, uint16_t pop_bytes);
void helper_ltr(TCGCPU *cpu, uint16_t sel);
uint64_t tss_stack(TCGCPU *cpu, int dpl, uint16_t *ss_out);

/* mmu.c */
void tlb_flush(TCGCPU *cpu, bool include_global);
void tlb_flush_page(TCGCPU *cpu, uint64_t lin);
void tlb_drop_code_write(TCGCPU *cpu, uint64_t paddr_page);
uint64_t mem_ld_slow(TCGCPU *cpu, uint64_t lin, int sz, int idx);
void mem_st_slow(TCGCPU *cpu, uint64_t lin, int sz, uint64_t v, int idx);
/*
 * Host address of lin for a plain RAM access (filling the TLB, so #PF is
 * raised here), or NULL when the page is MMIO/ROM-for-writes or, for a
 * write, holds translated code: then the caller takes the per-access path.
 */
uint8_t *tlb_host_ptr(TCGCPU *cpu, uint64_t lin, int acc);
/* 64-bit mode, current privilege: #SS (seg SS) or #GP unless lin is canonical, then the above. */
uint64_t mem_ld_slow_canon(TCGCPU *cpu, uint64_t lin, int sz, int seg);
void mem_st_slow_canon(TCGCPU *cpu, uint64_t lin, int sz, uint64_t v, int seg);
/* Translate a code address; returns host pointer of the page (or NULL for MMIO). */
uint8_t *mmu_translate_code(TCGCPU *cpu, uint64_t lin, uint64_t *paddr_page, bool *fault_ok);
bool mmu_translate(TCGCPU *cpu, uint64_t lin, int acc, int idx, uint64_t *paddr, bool raise);
uint64_t phys_ld(TCGCPU *cpu, uint64_t pa, int sz);
void phys_st(TCGCPU *cpu, uint64_t pa, int sz, uint64_t v);
bool cpu_load_pdptes(TCGCPU *cpu, uint64_t cr3);

/* ---- Memory access with segmentation ---- */
static inline bool canonical(uint64_t a) { return (uint64_t)((int64_t)(a << 16) >> 16) == a; }

TCG_INLINE uint64_t seg_lin(TCGCPU *cpu, int s, uint64_t off, unsigned len, int acc)
{
    if (cpu->code64) {
        uint64_t lin = off + (s >= SEG_FS ? cpu->seg[s].base : 0);
        if (unlikely(!canonical(lin)))
            raise_exception_err(cpu, s == SEG_SS ? EXCP_SS : EXCP_GP, 0);
        return lin;
    }
    const SegCache *sc = &cpu->seg[s];
    unsigned need = acc == ACC_WRITE ? SEGOK_W | SEGOK_FLAT : SEGOK_R | SEGOK_FLAT;
    if (unlikely((sc->ok & need) != need))
        seg_check_slow(cpu, s, off, len, acc);
    return (uint32_t)(sc->base + off);
}

TCG_INLINE uint64_t ld_raw(const uint8_t *p, int sz)
{
    switch (sz) {
    case 0: return *p;
    case 1: return ld16_le(p);
    case 2: return ld32_le(p);
    default: return ld64_le(p);
    }
}

TCG_INLINE void st_raw(uint8_t *p, int sz, uint64_t v)
{
    switch (sz) {
    case 0: *p = (uint8_t)v; break;
    case 1: st16_le(p, (uint16_t)v); break;
    case 2: st32_le(p, (uint32_t)v); break;
    default: st64_le(p, v); break;
    }
}

/* Linear-address loads/stores: the soft-TLB fast path. */
TCG_INLINE uint64_t lin_ld_idx(TCGCPU *cpu, uint64_t lin, int sz, int idx)
{
    TLBEntry *e = &cpu->tlb[idx][(lin >> 12) & (TLB_SIZE - 1)];
    if (likely(e->tag_r == (lin & TLB_PAGE_MASK) && (lin & 0xfff) + (1u << sz) <= 0x1000))
        return ld_raw((uint8_t *)(e->addend + (uintptr_t)lin), sz);
    return mem_ld_slow(cpu, lin, sz, idx);
}

TCG_INLINE void lin_st_idx(TCGCPU *cpu, uint64_t lin, int sz, uint64_t v, int idx)
{
    TLBEntry *e = &cpu->tlb[idx][(lin >> 12) & (TLB_SIZE - 1)];
    if (likely(e->tag_w == (lin & TLB_PAGE_MASK) && (lin & 0xfff) + (1u << sz) <= 0x1000)) {
        st_raw((uint8_t *)(e->addend + (uintptr_t)lin), sz, v);
        return;
    }
    mem_st_slow(cpu, lin, sz, v, idx);
}

TCG_INLINE uint64_t lin_ld(TCGCPU *cpu, uint64_t lin, int sz)
{ return lin_ld_idx(cpu, lin, sz, cpu->mmu_idx); }
TCG_INLINE void lin_st(TCGCPU *cpu, uint64_t lin, int sz, uint64_t v)
{ lin_st_idx(cpu, lin, sz, v, cpu->mmu_idx); }
/* Probe a store before doing anything irreversible (faults if not writable). */
void lin_probe_write(TCGCPU *cpu, uint64_t lin, unsigned len);

TCG_INLINE uint64_t seg_ld(TCGCPU *cpu, int s, uint64_t off, int sz)
{ return lin_ld(cpu, seg_lin(cpu, s, off, 1u << sz, ACC_READ), sz); }
TCG_INLINE void seg_st(TCGCPU *cpu, int s, uint64_t off, int sz, uint64_t v)
{ lin_st(cpu, seg_lin(cpu, s, off, 1u << sz, ACC_WRITE), sz, v); }

/* Stack: SS-relative with the stack-address size (SS.B / 64-bit). */
TCG_INLINE uint64_t sp_mask(const TCGCPU *cpu) { return size_mask[cpu->stack_size]; }

TCG_INLINE void sp_set(TCGCPU *cpu, uint64_t sp)
{
    uint64_t m = sp_mask(cpu);
    cpu->regs[R_ESP] = (cpu->regs[R_ESP] & ~m) | (sp & m);
}

TCG_INLINE void cpu_push(TCGCPU *cpu, int sz, uint64_t v)
{
    uint64_t sp = (cpu->regs[R_ESP] - (1u << sz)) & sp_mask(cpu);
    seg_st(cpu, SEG_SS, sp, sz, v);
    sp_set(cpu, sp);
}

TCG_INLINE uint64_t cpu_pop(TCGCPU *cpu, int sz)
{
    uint64_t sp = cpu->regs[R_ESP] & sp_mask(cpu);
    uint64_t v = seg_ld(cpu, SEG_SS, sp, sz);
    sp_set(cpu, sp + (1u << sz));
    return v;
}

/* Supervisor (implicit) access to system tables by linear address. */
static inline uint64_t sys_ld(TCGCPU *cpu, uint64_t lin, int sz)
{ return lin_ld_idx(cpu, lin, sz, MMU_KERNEL); }
static inline void sys_st(TCGCPU *cpu, uint64_t lin, int sz, uint64_t v)
{ lin_st_idx(cpu, lin, sz, v, MMU_KERNEL); }

/* debug.c */
void cpu_debug_update(TCGCPU *cpu);                  /* after DR0-DR3/DR7 change */
void dbg_data_access(TCGCPU *cpu, uint64_t lin, unsigned len, int acc);
uint64_t dbg_tlb_watch(TCGCPU *cpu, uint64_t page, int acc);   /* TLB_FLAG_WATCH or 0 */
void dbg_deliver_trap(TCGCPU *cpu, uint32_t dr6_bits);
uint32_t dbg_io_hits(TCGCPU *cpu, uint16_t port, unsigned len);   /* B0-B3 of I/O breakpoints */
void dbg_io_record(TCGCPU *cpu, uint32_t hits);
void dbg_check_insn(TCGCPU *cpu, uint64_t lin);      /* #DB fault at an instruction breakpoint */
bool dbg_insn_bp_inside(const TCGCPU *cpu, uint64_t lin, uint32_t size);
void dbg_single_insn(TCGCPU *cpu);                   /* unwind to run this instruction alone */

/* ops-system.c */
uint64_t cpu_rdtsc(TCGCPU *cpu);
void cpu_reset_state(TCGCPU *cpu, bool bsp);
void cpu_init_state(TCGCPU *cpu);       /* INIT: RESET less what INIT keeps */
void cpu_to_x86_state(const TCGCPU *cpu, X86CPUState *s);
void cpu_from_x86_state(TCGCPU *cpu, const X86CPUState *s);
void cpu_dump(TCGCPU *cpu);

/* tcg-accel.c: after a port/MMIO access (the device may have changed the memory map). */
void tcg_after_device_access(TCGCPU *cpu);
/* tcg-accel.c: interrupt controller hook (no userspace PIC yet). */
int tcg_pending_interrupt(TCGCPU *cpu);    /* vector or -1 */
int tcg_ack_interrupt(TCGCPU *cpu);

#endif
