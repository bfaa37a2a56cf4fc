/*
 * Architectural x86 CPU state as the rest of the machine sees it: boot code
 * sets it, the monitor/gdbstub read it, accelerators convert it to and from
 * their own representation.  (Intel SDM vol. 3A ch. 2-3 for the fields.)
 */
#ifndef KESTREL_X86_H
#define KESTREL_X86_H

#include "kestrel/common.h"

enum { R_EAX, R_ECX, R_EDX, R_EBX, R_ESP, R_EBP, R_ESI, R_EDI,
       R_R8, R_R9, R_R10, R_R11, R_R12, R_R13, R_R14, R_R15 };
enum { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG__COUNT };

/* A segment register with its hidden descriptor cache. */
typedef struct X86Segment {
    uint16_t selector;
    uint64_t base;
    uint32_t limit;          /* byte-granular, already scaled by G */
    uint8_t type;            /* descriptor type field, 4 bits */
    uint8_t s, dpl, present, avl, l, db, g;
    uint8_t unusable;        /* null selector loaded (VMX "unusable") */
} X86Segment;

typedef struct X86DescTable {
    uint64_t base;
    uint16_t limit;
} X86DescTable;

#define X86_CR0_PE (1u << 0)
#define X86_CR0_MP (1u << 1)
#define X86_CR0_EM (1u << 2)
#define X86_CR0_TS (1u << 3)
#define X86_CR0_ET (1u << 4)
#define X86_CR0_NE (1u << 5)
#define X86_CR0_WP (1u << 16)
#define X86_CR0_AM (1u << 18)
#define X86_CR0_NW (1u << 29)
#define X86_CR0_CD (1u << 30)
#define X86_CR0_PG (1u << 31)

#define X86_CR4_PSE (1u << 4)
#define X86_CR4_PAE (1u << 5)
#define X86_CR4_PGE (1u << 7)

#define X86_EFER_SCE (1u << 0)
#define X86_EFER_LME (1u << 8)
#define X86_EFER_LMA (1u << 10)
#define X86_EFER_NXE (1u << 11)

#define X86_RFLAGS_FIXED (1u << 1)
#define X86_RFLAGS_IF    (1u << 9)

typedef struct X86CPUState {
    uint64_t regs[16];
    uint64_t rip, rflags;
    X86Segment seg[SEG__COUNT];
    X86Segment ldt, tr;
    X86DescTable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t efer;
    /* XCR0 (SDM 1 §13.3); 0 = not known (bit 0 is always set in a real XCR0). */
    uint64_t xcr0;
    uint64_t dr[8];
    uint64_t apic_base;
} X86CPUState;

/*
 * Memory-type range registers (SDM 3A §11.11; §12.11 in the editions that
 * renumbered the chapters, as accel/tcg/msr-mtrr-mca.c cites), as the MSRs
 * hold them.  At power-on and RESET they are all 0 (MTRRs disabled, SDM 3A
 * Table 9-1) and firmware programs them; INIT keeps them.  Boot code that
 * replaces the firmware (direct -kernel boot) describes here what firmware
 * would have left, and each accelerator loads it into every vCPU at reset.
 *
 * PHYSMASKn is given as a 64-bit mask: bits from the range's size up to bit
 * 63 set.  A CPU keeps only the bits below its MAXPHYADDR (CPUID 80000008H
 * EAX[7:0]; the bits above are reserved, SDM 3A §11.11.2.3), so each
 * accelerator clips the mask to the width its CPU model reports, as
 * firmware does when it reads that leaf.
 */
#define X86_MSR_MTRR_PHYSBASE0     0x200   /* PHYSBASEn = 0x200 + 2n, PHYSMASKn = 0x201 + 2n */
#define X86_MSR_MTRR_FIX64K_00000  0x250
#define X86_MSR_MTRR_FIX16K_80000  0x258   /* and _A0000 at 0x259 */
#define X86_MSR_MTRR_FIX4K_C0000   0x268   /* ... _F8000 at 0x26F */
#define X86_MSR_MTRR_DEF_TYPE      0x2ff

#define X86_MTRR_TYPE_UC   0
#define X86_MTRR_TYPE_WC   1
#define X86_MTRR_TYPE_WT   4
#define X86_MTRR_TYPE_WP   5
#define X86_MTRR_TYPE_WB   6
#define X86_MTRR_DEF_TYPE_FE     (1u << 10)   /* fixed ranges enabled */
#define X86_MTRR_DEF_TYPE_E      (1u << 11)   /* MTRRs enabled */
#define X86_MTRR_PHYSMASK_VALID  (1u << 11)

#define X86_MTRR_VAR_COUNT    8    /* variable ranges described (MTRRCAP.VCNT of our CPUs) */
#define X86_MTRR_FIXED_COUNT  11   /* FIX64K_00000, FIX16K_80000/A0000, FIX4K_C0000..F8000 */

typedef struct X86MTRRState {
    uint64_t def_type;                          /* IA32_MTRR_DEF_TYPE */
    uint64_t fixed[X86_MTRR_FIXED_COUNT];       /* in the order above */
    uint64_t var[2 * X86_MTRR_VAR_COUNT];       /* PHYSBASEn, PHYSMASKn pairs */
} X86MTRRState;

/* MSR index of fixed[i] (i < X86_MTRR_FIXED_COUNT). */
uint32_t x86_mtrr_fixed_msr(unsigned i);
/*
 * The MTRRs a PC's firmware (SeaBIOS, mtrr_setup after PCI setup) leaves on
 * every CPU, for a machine whose RAM below 4 GiB ends at ram_below_4g:
 * write-back by default and for RAM below 640 KiB, UC for the VGA window
 * A0000-BFFFF, write-protect for the ROM area C0000-FFFFF, and the 32-bit
 * PCI hole up to 4 GiB UC through variable ranges.
 */
void x86_mtrr_state_firmware(X86MTRRState *s, uint64_t ram_below_4g);

/* Power-on state (SDM vol. 3A 9.1.1): CS.sel=F000 base=FFFF0000, IP=FFF0. */
void x86_cpu_state_reset(X86CPUState *s, bool bsp);
/*
 * Flat 32-bit protected mode with paging off (Linux 32-bit boot protocol and
 * Multiboot): CS = 0x10 execute/read, DS/ES/SS/FS/GS = 0x18 read/write, all
 * base 0 limit 4G.  Caller sets GDT contents in guest memory if it wants them
 * to survive a segment reload.
 */
void x86_cpu_state_flat32(X86CPUState *s, uint32_t eip);
/* Print registers in the style of QEMU's "info registers" (for dumps and -d cpu). */
void x86_cpu_state_dump(const X86CPUState *s, FILE *out);

#endif
