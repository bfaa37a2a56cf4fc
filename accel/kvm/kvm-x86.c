/*
 * x86 state for the KVM accelerator: conversion between X86CPUState and
 * struct kvm_regs/kvm_sregs/kvm_debugregs, and the builders for the
 * power-on FPU, local APIC and MSR state and the GSI routing table.  Pure
 * functions over structs: tests/unit/test-kvm-cpuid.c exercises them
 * without /dev/kvm.
 *
 * Sources: <asm/kvm.h> struct layouts; Intel SDM vol. 3A 9.1.1 (state after
 * RESET), 10.4.7.1 (local APIC state after RESET), 10.12.5 / Table 10-6
 * (register offsets), vol. 4 (MSR numbers); /work/shared/docs/kvm-api.md
 * §1.8 (reset MSR list), §1.10 (FPU, LAPIC LINT0/LINT1), §3.1 (IRQ0 ->
 * GSI 2 routing), §7.7 (sregs pitfalls).
 */
#include "accel/kvm/kvm-internal.h"

#include <string.h>

/* ---- segments and registers ---- */

void kvm_segment_to_x86(const struct kvm_segment *k, X86Segment *s)
{
    s->selector = k->selector;
    s->base = k->base;
    s->limit = k->limit;                 /* both byte-granular (already scaled by G) */
    s->type = k->type & 0xf;
    s->s = k->s;
    s->dpl = k->dpl & 3;
    s->present = k->present;
    s->avl = k->avl;
    s->l = k->l;
    s->db = k->db;
    s->g = k->g;
    s->unusable = k->unusable;
}

void kvm_segment_from_x86(const X86Segment *s, struct kvm_segment *k)
{
    memset(k, 0, sizeof(*k));            /* padding must be zero (§7.18) */
    k->selector = s->selector;
    k->base = s->base;
    k->limit = s->limit;
    k->type = s->type & 0xf;
    k->s = s->s ? 1 : 0;
    k->dpl = s->dpl & 3;
    k->present = s->present ? 1 : 0;
    k->avl = s->avl ? 1 : 0;
    k->l = s->l ? 1 : 0;
    k->db = s->db ? 1 : 0;
    k->g = s->g ? 1 : 0;
    k->unusable = s->unusable ? 1 : 0;
}

/* X86CPUState's SEG_* order (ES CS SS DS FS GS) onto kvm_sregs' named fields. */
static struct kvm_segment *sregs_seg(struct kvm_sregs *sr, int seg)
{
    switch (seg) {
    case SEG_ES: return &sr->es;
    case SEG_CS: return &sr->cs;
    case SEG_SS: return &sr->ss;
    case SEG_DS: return &sr->ds;
    case SEG_FS: return &sr->fs;
    default:     return &sr->gs;
    }
}

void kvm_state_to_x86(const struct kvm_regs *r, const struct kvm_sregs *sr,
                      const struct kvm_debugregs *dr, X86CPUState *s)
{
    memset(s, 0, sizeof(*s));
    s->regs[R_EAX] = r->rax;
    s->regs[R_ECX] = r->rcx;
    s->regs[R_EDX] = r->rdx;
    s->regs[R_EBX] = r->rbx;
    s->regs[R_ESP] = r->rsp;
    s->regs[R_EBP] = r->rbp;
    s->regs[R_ESI] = r->rsi;
    s->regs[R_EDI] = r->rdi;
    s->regs[R_R8] = r->r8;
    s->regs[R_R9] = r->r9;
    s->regs[R_R10] = r->r10;
    s->regs[R_R11] = r->r11;
    s->regs[R_R12] = r->r12;
    s->regs[R_R13] = r->r13;
    s->regs[R_R14] = r->r14;
    s->regs[R_R15] = r->r15;
    s->rip = r->rip;
    s->rflags = r->rflags;

    for (int i = 0; i < SEG__COUNT; i++) {
        kvm_segment_to_x86(sregs_seg((struct kvm_sregs *)sr, i), &s->seg[i]);
    }
    kvm_segment_to_x86(&sr->ldt, &s->ldt);
    kvm_segment_to_x86(&sr->tr, &s->tr);
    s->gdt.base = sr->gdt.base;
    s->gdt.limit = sr->gdt.limit;
    s->idt.base = sr->idt.base;
    s->idt.limit = sr->idt.limit;
    s->cr0 = sr->cr0;
    s->cr2 = sr->cr2;
    s->cr3 = sr->cr3;
    s->cr4 = sr->cr4;
    s->cr8 = sr->cr8;
    s->efer = sr->efer;
    s->apic_base = sr->apic_base;

    if (dr) {
        for (int i = 0; i < 4; i++) {
            s->dr[i] = dr->db[i];
        }
        s->dr[4] = s->dr[6] = dr->dr6;   /* DR4/DR5 alias DR6/DR7 (SDM vol. 3B 17.2.2) */
        s->dr[5] = s->dr[7] = dr->dr7;
    }
}

void kvm_state_from_x86(const X86CPUState *s, struct kvm_regs *r,
                        struct kvm_sregs *sr, struct kvm_debugregs *dr)
{
    memset(r, 0, sizeof(*r));
    r->rax = s->regs[R_EAX];
    r->rcx = s->regs[R_ECX];
    r->rdx = s->regs[R_EDX];
    r->rbx = s->regs[R_EBX];
    r->rsp = s->regs[R_ESP];
    r->rbp = s->regs[R_EBP];
    r->rsi = s->regs[R_ESI];
    r->rdi = s->regs[R_EDI];
    r->r8 = s->regs[R_R8];
    r->r9 = s->regs[R_R9];
    r->r10 = s->regs[R_R10];
    r->r11 = s->regs[R_R11];
    r->r12 = s->regs[R_R12];
    r->r13 = s->regs[R_R13];
    r->r14 = s->regs[R_R14];
    r->r15 = s->regs[R_R15];
    r->rip = s->rip;
    /* RFLAGS bit 1 is fixed to 1; VM entry fails without it (SDM vol. 3C 26.3.1.4). */
    r->rflags = s->rflags | X86_RFLAGS_FIXED;

    for (int i = 0; i < SEG__COUNT; i++) {
        kvm_segment_from_x86(&s->seg[i], sregs_seg(sr, i));
    }
    /*
     * A TR/LDTR with type 0 was never filled in by the caller (no valid
     * system-segment type is 0): keep KVM's, which is the power-on state.
     */
    if (s->ldt.type != 0 || s->ldt.unusable) {
        kvm_segment_from_x86(&s->ldt, &sr->ldt);
    }
    if (s->tr.type != 0) {
        kvm_segment_from_x86(&s->tr, &sr->tr);
    }
    memset(&sr->gdt, 0, sizeof(sr->gdt));
    sr->gdt.base = s->gdt.base;
    sr->gdt.limit = s->gdt.limit;
    memset(&sr->idt, 0, sizeof(sr->idt));
    sr->idt.base = s->idt.base;
    sr->idt.limit = s->idt.limit;
    sr->cr0 = s->cr0;
    sr->cr2 = s->cr2;
    sr->cr3 = s->cr3;
    sr->cr4 = s->cr4;
    sr->cr8 = s->cr8;
    sr->efer = s->efer;
    /* §7.7: 64-bit entry needs LMA together with LME and CR0.PG. */
    if ((s->cr0 & X86_CR0_PG) && (s->efer & X86_EFER_LME)) {
        sr->efer |= X86_EFER_LMA;
    }
    if (s->apic_base) {
        sr->apic_base = s->apic_base;
    }
    /* A set bit would queue an external interrupt (§7.7). */
    memset(sr->interrupt_bitmap, 0, sizeof(sr->interrupt_bitmap));

    if (dr) {
        memset(dr, 0, sizeof(*dr));
        for (int i = 0; i < 4; i++) {
            dr->db[i] = s->dr[i];
        }
        /* Architectural fixed bits (SDM vol. 3B 17.2.3/17.2.4). */
        dr->dr6 = s->dr[6] | 0xffff0ff0u;
        dr->dr7 = s->dr[7] | 0x400u;
    }
}

/* ---- FPU ---- */

void kvm_fpu_reset_state(struct kvm_fpu *fpu)
{
    memset(fpu, 0, sizeof(*fpu));
    fpu->fcw = 0x37f;        /* SDM vol. 1 8.1.5: FINIT value, all exceptions masked */
    fpu->mxcsr = 0x1f80;     /* SDM vol. 1 10.2.3: all SIMD exceptions masked */
    fpu->ftwx = 0;           /* abridged tag word: every register empty */
}

/* ---- local APIC ---- */

uint32_t kvm_lapic_get_reg(const struct kvm_lapic_state *st, unsigned offset)
{
    return ld32_le(&st->regs[offset]);
}

void kvm_lapic_set_reg(struct kvm_lapic_state *st, unsigned offset, uint32_t value)
{
    st32_le(&st->regs[offset], value);
}

void kvm_lapic_reset_state(struct kvm_lapic_state *st, uint32_t apic_id, bool bsp)
{
    uint32_t version = kvm_lapic_get_reg(st, APIC_LVR);   /* read-only, KVM's own */

    memset(st->regs, 0, sizeof(st->regs));
    kvm_lapic_set_reg(st, APIC_LVR, version);
    /* xAPIC ID format: bits 31-24 (byte 35 of the page, §1.10). */
    kvm_lapic_set_reg(st, APIC_ID, apic_id << 24);
    kvm_lapic_set_reg(st, APIC_DFR, 0xffffffffu);         /* flat model */
    kvm_lapic_set_reg(st, APIC_SVR, 0xff);                /* spurious vector FF, software-disabled */
    static const unsigned lvts[] = { APIC_LVT_CMCI, APIC_LVT_TIMER, APIC_LVT_THERM,
                                     APIC_LVT_PMC, APIC_LVT_LINT0, APIC_LVT_LINT1,
                                     APIC_LVT_ERROR };
    for (size_t i = 0; i < ARRAY_LEN(lvts); i++) {
        kvm_lapic_set_reg(st, lvts[i], APIC_LVT_MASKED);
    }
    if (bsp) {
        /* MP spec 3.6.2.2 virtual-wire mode as the BIOS leaves it. */
        kvm_lapic_set_reg(st, APIC_LVT_LINT0, APIC_DM_EXTINT);
        kvm_lapic_set_reg(st, APIC_LVT_LINT1, APIC_DM_NMI);
    }
}

/* ---- MSRs ---- */

static const struct kvm_msr_entry reset_msrs[] = {
    { .index = MSR_IA32_TSC, .data = 0 },
    { .index = MSR_IA32_SYSENTER_CS, .data = 0 },
    { .index = MSR_IA32_SYSENTER_ESP, .data = 0 },
    { .index = MSR_IA32_SYSENTER_EIP, .data = 0 },
    { .index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING },
    { .index = MSR_IA32_CR_PAT, .data = PAT_POWER_ON },
    { .index = MSR_STAR, .data = 0 },
    { .index = MSR_LSTAR, .data = 0 },
    { .index = MSR_CSTAR, .data = 0 },
    { .index = MSR_SYSCALL_MASK, .data = 0 },
    { .index = MSR_KERNEL_GS_BASE, .data = 0 },
    /*
     * kvmclock off until the guest enables it.  The wall-clock MSRs are
     * write-only triggers (writing makes KVM store the time at that GPA),
     * so they are deliberately not in this list.
     */
    { .index = MSR_KVM_SYSTEM_TIME, .data = 0 },
    { .index = MSR_KVM_SYSTEM_TIME_NEW, .data = 0 },
    { .index = MSR_KVM_ASYNC_PF_EN, .data = 0 },
    { .index = MSR_KVM_STEAL_TIME, .data = 0 },
    { .index = MSR_KVM_PV_EOI_EN, .data = 0 },
};

static bool msr_known(const struct kvm_msr_list *known, uint32_t index)
{
    if (!known) {
        return true;
    }
    for (uint32_t i = 0; i < known->nmsrs; i++) {
        if (known->indices[i] == index) {
            return true;
        }
    }
    return false;
}

unsigned kvm_msrs_reset_list(struct kvm_msr_entry *out, unsigned max,
                             const struct kvm_msr_list *known)
{
    unsigned n = 0;
    for (size_t i = 0; i < ARRAY_LEN(reset_msrs) && n < max; i++) {
        if (msr_known(known, reset_msrs[i].index)) {
            out[n++] = reset_msrs[i];
        }
    }
    return n;
}

unsigned kvm_msrs_mtrr_list(struct kvm_msr_entry *out, unsigned max,
                            const X86MTRRState *mtrr, unsigned phys_bits)
{
    static const X86MTRRState power_on;         /* SDM 3A Table 9-1: MTRRs disabled */
    const X86MTRRState *st = mtrr ? mtrr : &power_on;
    /* PHYSMASK bits at and above MAXPHYADDR are reserved (SDM 3A §11.11.2.3). */
    uint64_t phys_mask = phys_bits >= 64 ? ~0ull : (1ull << phys_bits) - 1;
    unsigned n = 0;

    for (unsigned i = 0; i < X86_MTRR_FIXED_COUNT && n < max; i++) {
        out[n++] = (struct kvm_msr_entry){ .index = x86_mtrr_fixed_msr(i), .data = st->fixed[i] };
    }
    for (unsigned i = 0; i < 2 * X86_MTRR_VAR_COUNT && n < max; i++) {
        uint64_t v = (i & 1) ? st->var[i] & phys_mask : st->var[i];
        out[n++] = (struct kvm_msr_entry){ .index = X86_MSR_MTRR_PHYSBASE0 + i, .data = v };
    }
    /* The enable bits last, once the ranges they enable are in place. */
    if (n < max) {
        out[n++] = (struct kvm_msr_entry){ .index = X86_MSR_MTRR_DEF_TYPE, .data = st->def_type };
    }
    return n;
}

/* ---- GSI routing ---- */

struct kvm_irq_routing *kvm_gsi_routing_build(void)
{
    /* 15 PIC routes (GSI 0-15 but 2) + 23 IOAPIC routes (GSI 0-23 but 2). */
    const unsigned max = 16 + 24;
    struct kvm_irq_routing *r = g_malloc0(sizeof(*r) + max * sizeof(r->entries[0]));
    unsigned n = 0;

    for (unsigned gsi = 0; gsi < 24; gsi++) {
        if (gsi == 2) {
            continue;       /* the cascade / IRQ0 override target: nothing raises GSI 2 */
        }
        if (gsi < 16) {
            struct kvm_irq_routing_entry *e = &r->entries[n++];
            e->gsi = gsi;
            e->type = KVM_IRQ_ROUTING_IRQCHIP;
            e->u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
            e->u.irqchip.pin = gsi & 7;
        }
        struct kvm_irq_routing_entry *e = &r->entries[n++];
        e->gsi = gsi;
        e->type = KVM_IRQ_ROUTING_IRQCHIP;
        e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        /* MADT interrupt source override ISA IRQ0 -> GSI 2 (ACPI 6.5 5.2.12.5). */
        e->u.irqchip.pin = gsi == 0 ? 2 : gsi;
    }
    r->nr = n;
    return r;
}

/* ---- MMIO splitting ---- */

unsigned kvm_mmio_split(hwaddr addr, unsigned len, unsigned sizes[8])
{
    unsigned n = 0;
    if (len > 8) {
        len = 8;             /* kvm_run.mmio.data holds 8 bytes */
    }
    while (len && n < 8) {
        unsigned size = 8;
        while (size > len || (addr & (size - 1))) {
            size >>= 1;
        }
        sizes[n++] = size;
        addr += size;
        len -= size;
    }
    return n;
}
