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
