/*
 * Architectural x86 CPU state helpers shared by boot code and accelerators.
 */
#include "kestrel/x86.h"

#include <string.h>

static void seg_set(X86Segment *s, uint16_t sel, uint64_t base, uint32_t limit, uint8_t type,
                    bool code_or_data)
{
    s->selector = sel;
    s->base = base;
    s->limit = limit;
    s->type = type;
    s->s = code_or_data;
    s->dpl = 0;
    s->present = 1;
    s->avl = 0;
    s->l = 0;
    s->db = 0;
    s->g = 0;
    s->unusable = 0;
}

void x86_cpu_state_reset(X86CPUState *s, bool bsp)
{
    /* SDM vol. 3A table 9-1 "IA-32 Processor States Following Power-up, Reset, or INIT". */
    memset(s, 0, sizeof(*s));
    s->rip = 0xfff0;
    s->rflags = X86_RFLAGS_FIXED;
    s->regs[R_EDX] = 0x600;        /* processor signature; the engine may refine it */
    seg_set(&s->seg[SEG_CS], 0xf000, 0xffff0000, 0xffff, 0xb, true);   /* code, accessed, r/x */
    for (int i = 0; i < SEG__COUNT; i++)
        if (i != SEG_CS)
            seg_set(&s->seg[i], 0, 0, 0xffff, 0x3, true);               /* data, accessed, r/w */
    seg_set(&s->ldt, 0, 0, 0xffff, 0x2, false);
    seg_set(&s->tr, 0, 0, 0xffff, 0xb, false);                          /* busy 32-bit TSS */
    s->gdt.limit = 0xffff;
    s->idt.limit = 0xffff;
    s->cr0 = X86_CR0_ET | X86_CR0_NW | X86_CR0_CD;   /* 0x60000010 */
    s->xcr0 = 1;                                      /* x87 only */
    s->dr[6] = 0xffff0ff0;
    s->dr[7] = 0x400;
    s->apic_base = 0xfee00000 | (1u << 11) | (bsp ? 1u << 8 : 0);
}

void x86_cpu_state_flat32(X86CPUState *s, uint32_t eip)
{
    s->rip = eip;
    s->rflags = X86_RFLAGS_FIXED;
    s->cr0 = (s->cr0 | X86_CR0_PE) & ~(uint64_t)X86_CR0_PG;
    s->cr0 &= ~(uint64_t)(X86_CR0_NW | X86_CR0_CD);
    seg_set(&s->seg[SEG_CS], 0x10, 0, 0xffffffff, 0xb, true);
    s->seg[SEG_CS].db = 1;
    s->seg[SEG_CS].g = 1;
    for (int i = 0; i < SEG__COUNT; i++) {
        if (i == SEG_CS)
            continue;
        seg_set(&s->seg[i], 0x18, 0, 0xffffffff, 0x3, true);
        s->seg[i].db = 1;
        s->seg[i].g = 1;
    }
}

uint32_t x86_mtrr_fixed_msr(unsigned i)
{
    /* SDM 3A §11.11.2.2: one 64K register, two 16K registers, eight 4K registers. */
    if (i == 0)
        return X86_MSR_MTRR_FIX64K_00000;
    if (i < 3)
        return X86_MSR_MTRR_FIX16K_80000 + (i - 1);
    return X86_MSR_MTRR_FIX4K_C0000 + (i - 3);
}

/* Eight copies of a memory type: one fixed-range MSR with every sub-range of that type. */
static uint64_t mtrr_fixed_all(uint8_t type)
{
    return 0x0101010101010101ull * type;
}

void x86_mtrr_state_firmware(X86MTRRState *s, uint64_t ram_below_4g)
{
    const uint64_t top = 1ull << 32;

    memset(s, 0, sizeof(*s));
    /*
     * Fixed ranges (SDM 3A §11.11.2.2, one type byte per sub-range): 0-7FFFF
     * (FIX64K) and 80000-9FFFF (FIX16K_80000) are RAM, write-back; A0000-BFFFF
     * (FIX16K_A0000) is the VGA window, UC; C0000-FFFFF (the eight FIX4K) is
     * option ROM and BIOS space, write-protect.  SeaBIOS gives RAM its type
     * only where RAM exists; direct boot needs at least 1 MiB, so all of it.
     */
    s->fixed[0] = mtrr_fixed_all(X86_MTRR_TYPE_WB);
    s->fixed[1] = mtrr_fixed_all(X86_MTRR_TYPE_WB);
    s->fixed[2] = mtrr_fixed_all(X86_MTRR_TYPE_UC);
    for (unsigned i = 3; i < X86_MTRR_FIXED_COUNT; i++)
        s->fixed[i] = mtrr_fixed_all(X86_MTRR_TYPE_WP);

    /*
     * The 32-bit PCI hole, UC.  SeaBIOS on the i440FX starts it at 2 GiB when
     * RAM below 4 GiB ends at or below 2 GiB, at 3 GiB when it ends at or
     * below 3 GiB, else right at the end of RAM, and covers [start, 4 GiB)
     * with one variable range.  A range is a naturally aligned power of two
     * (base & ~mask == 0, SDM 3A §11.11.3), which one range only is for the
     * first two cases; for a hole starting at an odd address SeaBIOS's mask
     * comes out wrong, so here the hole is split into aligned power-of-two
     * pieces instead, one range each, smallest (lowest) first.  Should the
     * pieces outnumber the ranges, the lowest are left out: that stretch of
     * the hole stays write-back, which is harmless (Linux maps MMIO UC-
     * through PAT), whereas marking RAM UC would make Linux trim it.
     */
    uint64_t start = ram_below_4g <= 0x80000000ull ? 0x80000000ull
                   : ram_below_4g <= 0xC0000000ull ? 0xC0000000ull : ram_below_4g;
    start = (start + 0xfff) & ~0xfffull;        /* ranges are whole 4 KiB pages */
    uint64_t piece_base[64], piece_size[64];
    unsigned n = 0;
    for (uint64_t base = start; base < top && n < 64; n++) {
        /* The lowest set bit of base: the largest aligned block there; it never passes 4 GiB. */
        uint64_t size = base & -base;
        piece_base[n] = base;
        piece_size[n] = size;
        base += size;
    }
    unsigned skip = n > X86_MTRR_VAR_COUNT ? n - X86_MTRR_VAR_COUNT : 0;
    for (unsigned i = skip; i < n; i++) {
        unsigned r = i - skip;
        s->var[2 * r] = piece_base[i] | X86_MTRR_TYPE_UC;
        s->var[2 * r + 1] = ~(piece_size[i] - 1) | X86_MTRR_PHYSMASK_VALID;
    }

    /* MTRRs and fixed ranges on, everything not covered above write-back. */
    s->def_type = X86_MTRR_DEF_TYPE_E | X86_MTRR_DEF_TYPE_FE | X86_MTRR_TYPE_WB;
}

static void seg_dump(FILE *out, const char *name, const X86Segment *s)
{
    fprintf(out, "%-3s=%04x %016" G_GINT64_MODIFIER "x %08x type=%x s=%u dpl=%u p=%u l=%u db=%u g=%u%s\n",
            name, s->selector, s->base, s->limit, s->type, s->s, s->dpl, s->present, s->l, s->db,
            s->g, s->unusable ? " unusable" : "");
}

void x86_cpu_state_dump(const X86CPUState *s, FILE *out)
{
    static const char *const gpr[16] = { "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI",
                                         "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15" };
    static const char *const segs[SEG__COUNT] = { "ES", "CS", "SS", "DS", "FS", "GS" };

    for (int i = 0; i < 16; i++)
        fprintf(out, "%-3s=%016" G_GINT64_MODIFIER "x%s", gpr[i], s->regs[i], i % 4 == 3 ? "\n" : " ");
    fprintf(out, "RIP=%016" G_GINT64_MODIFIER "x RFL=%08" G_GINT64_MODIFIER "x\n", s->rip, s->rflags);
    for (int i = 0; i < SEG__COUNT; i++)
        seg_dump(out, segs[i], &s->seg[i]);
    seg_dump(out, "LDT", &s->ldt);
    seg_dump(out, "TR", &s->tr);
    fprintf(out, "GDT=     %016" G_GINT64_MODIFIER "x %08x\n", s->gdt.base, s->gdt.limit);
    fprintf(out, "IDT=     %016" G_GINT64_MODIFIER "x %08x\n", s->idt.base, s->idt.limit);
    fprintf(out, "CR0=%08" G_GINT64_MODIFIER "x CR2=%016" G_GINT64_MODIFIER "x CR3=%016"
            G_GINT64_MODIFIER "x CR4=%08" G_GINT64_MODIFIER "x\n", s->cr0, s->cr2, s->cr3, s->cr4);
    fprintf(out, "EFER=%016" G_GINT64_MODIFIER "x APICBASE=%016" G_GINT64_MODIFIER "x\n", s->efer,
            s->apic_base);
}
