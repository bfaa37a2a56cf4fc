/*
 * Userspace interrupt controllers (hw/pc/i8259.c, hw/pc/ioapic.c,
 * hw/pc/apic.c) and how CPU engines talk to them.  Used when the engine has
 * no in-kernel irqchip: the software CPU, KVM with kernel-irqchip=off, and
 * the qtest accelerator (so device tests see PIC/PIT behaviour).
 *
 * Wiring (the board): ISA IRQ n -> 8259 input n and IOAPIC pin n, except ISA
 * IRQ 0 -> IOAPIC pin 2 (pc-platform.md §2) and ISA IRQ 2 (the cascade) ->
 * neither; PCI GSIs 16-23 -> IOAPIC pins.  Board line numbers (m->gsi[n],
 * irqchip_set_gsi, AccelOps.set_irq, qtest "IRQ raise n") are ISA IRQ
 * numbers below 16, not IOAPIC pins.  The master 8259's INT output -> LINT0
 * of every local APIC (taken as ExtINT where LVT0 is unmasked ExtINT — the
 * BSP's is at reset, as a BIOS leaves it — or straight to CPU 0 while its
 * APIC is globally disabled).  IOAPIC redirection entries deliver to local
 * APICs as APIC bus messages (apic_deliver).  The chips exist once per
 * process (irqchip_userspace_init succeeds once).
 *
 * CPU side, called by the engine in the vCPU thread with the big lock held:
 *   apic_pending(cpu)  - what is pending (maskable INTR, NMI, INIT, SIPI)
 *   apic_ack_intr(cpu) - the CPU takes the maskable interrupt: returns the
 *                        vector (LAPIC: IRR->ISR; ExtINT: 8259 INTA cycle)
 *   apic_take_event(cpu, ev) - consume an NMI/INIT/SIPI event
 * Whenever something becomes pending for a CPU, the controllers call the
 * kick function the engine registered, so a halted vCPU wakes up.
 *
 * The local APIC's MMIO page (0xfee00000 by default, per-CPU base MSR) is one
 * region; which CPU's APIC an access reaches is irqchip_current_cpu, a
 * thread-local the engine sets before it dispatches MMIO.
 *
 * Engine protocol (all calls with the big lock held):
 *  - Register a kick hook once (irqchip_set_kick).  It may run on any thread
 *    (timers run on the main thread) and must make vcpu_run of that CPU look
 *    at apic_pending soon and wake it if halted (vcpu_kick + cpus_wake).
 *  - Before executing an instruction boundary where interrupts may be taken,
 *    after a kick or after any device access / TPR write / EOI of its own:
 *    p = apic_pending(cpu).  Priority: INIT, then SIPI (only in wait-for-SIPI),
 *    NMI, then INTR if RFLAGS.IF and no interrupt shadow: v = apic_ack_intr(cpu);
 *    v < 0 means nothing to deliver after all (do nothing).  HLT ends when
 *    apic_pending reports INTR (IF=1), NMI, INIT or SIPI.
 *  - INIT: apic_take_event(cpu, APIC_PENDING_INIT), reset the CPU to its INIT
 *    state and park it waiting for SIPI; SIPI: v = apic_sipi_vector(cpu),
 *    apic_take_event(cpu, APIC_PENDING_SIPI), start real mode at CS = v << 8,
 *    IP = 0.  Application processors start out waiting for SIPI.
 *  - NMI: apic_take_event(cpu, APIC_PENDING_NMI) and deliver vector 2.
 *  - MSR 0x1b -> apic_get_base/apic_set_base (false: #GP); MSR 0x6e0 ->
 *    apic_get/set_tsc_deadline; CR8 reads apic_get_tpr(cpu) >> 4 and writes
 *    apic_set_tpr(cpu, v << 4).  CPUID must advertise the APIC (1:EDX bit 9)
 *    and may advertise TSC-deadline (1:ECX bit 24), never x2APIC (1:ECX 21).
 */
#ifndef KESTREL_IRQCHIP_H
#define KESTREL_IRQCHIP_H

#include "kestrel/common.h"

typedef struct Machine Machine;

#define APIC_DEFAULT_BASE 0xfee00000ULL
#define IOAPIC_DEFAULT_BASE 0xfec00000ULL

enum {
    APIC_PENDING_INTR = 1u << 0,   /* maskable interrupt (gated by RFLAGS.IF in the CPU) */
    APIC_PENDING_NMI  = 1u << 1,
    APIC_PENDING_INIT = 1u << 2,
    APIC_PENDING_SIPI = 1u << 3,
    APIC_PENDING_SMI  = 1u << 4,
};

/* Which CPU the current thread is executing for (-1: none, e.g. DMA or qtest = CPU 0). */
extern __thread int irqchip_current_cpu;

/* Engine hook: called (big lock held) when cpu has new pending work. */
void irqchip_set_kick(void (*kick)(Machine *m, int cpu));

/* Board: create the userspace PIC pair, IOAPIC and one local APIC per CPU. */
bool irqchip_userspace_init(Machine *m, GError **errp);
/* Board's GSI sink when the userspace chips are in use. */
void irqchip_set_gsi(Machine *m, int gsi, int level);

unsigned apic_pending(int cpu);
int apic_ack_intr(int cpu);                 /* -1 if nothing deliverable (spurious) */
uint8_t apic_sipi_vector(int cpu);          /* valid while APIC_PENDING_SIPI */
void apic_take_event(int cpu, unsigned event);

/* IA32_APIC_BASE MSR (0x1b) and the TPR (CR8 in 64-bit mode). */
uint64_t apic_get_base(int cpu);
bool apic_set_base(int cpu, uint64_t value);  /* false: reserved bits (#GP) */
uint8_t apic_get_tpr(int cpu);
void apic_set_tpr(int cpu, uint8_t tpr);
/* IA32_TSC_DEADLINE (0x6e0); the engine passes its TSC frequency at init. */
void apic_set_tsc_deadline(int cpu, uint64_t deadline);
uint64_t apic_get_tsc_deadline(int cpu);
void apic_set_tsc_hz(uint64_t hz);
/*
 * Optional: how to read cpu's TSC (big lock held), so a deadline converts to
 * CLOCK_VIRTUAL exactly.  Without it the TSC is assumed to be
 * CLOCK_VIRTUAL ns * hz / 1e9.
 */
void apic_set_tsc_reader(uint64_t (*read_tsc)(int cpu));

/* A message on the APIC bus (IOAPIC redirection, MSI, IPI): SDM vol. 3A 10.6/10.11. */
void apic_deliver(uint8_t dest, bool dest_logical, uint8_t delivery_mode, uint8_t vector,
                  bool level, bool trigger_level);

#endif
