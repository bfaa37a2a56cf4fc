/*
 * Internal API of the software CPU for unit tests and for the future
 * userspace interrupt controller: create a CPU over any AddressSpace, run
 * it for a bounded number of blocks, and plug in an interrupt source.
 */
#ifndef TCG_INTERNAL_H
#define TCG_INTERNAL_H

#include "accel/tcg/cpu.h"

typedef enum {
    TCG_RUN_BUDGET,       /* max_blocks executed */
    TCG_RUN_HALTED,       /* HLT (or triple fault / parked AP) */
    TCG_RUN_EXIT,         /* kicked (exit_request) */
    TCG_RUN_EXCEPTION,    /* stop_on_exception and an exception was raised */
} TCGRunResult;

/* A standalone CPU (no Machine): power-on state, BSP. */
TCGCPU *tcg_cpu_new(AddressSpace *as, int id);
void tcg_cpu_free(TCGCPU *cpu);
/* Run up to max_blocks translated blocks. */
TCGRunResult tcg_cpu_exec(TCGCPU *cpu, long max_blocks);

/*
 * Interrupt controller hook: the userspace PIC/IOAPIC (platform issue)
 * registers here.  pending() says whether INTR is asserted for cpu id;
 * ack() performs the INTA cycle and returns the vector.  Both are called
 * with the big lock held.  Without a controller no interrupt is pending.
 */
typedef struct TCGInterruptController {
    bool (*pending)(void *opaque, int cpu_id);
    int (*ack)(void *opaque, int cpu_id);
    void *opaque;
} TCGInterruptController;
void tcg_set_interrupt_controller(const TCGInterruptController *ic);
/* The controller's INTR output may have changed (any thread): CPUs re-check it. */
void tcg_raise_interrupt_check(void);
/* Level of a GSI as last reported through AccelOps.set_irq (0 if none). */
int tcg_gsi_level(int gsi);

/*
 * The local APIC lives in the userspace irqchip (include/kestrel/irqchip.h)
 * when the CPU belongs to a machine; standalone test CPUs have none and keep
 * the architectural defaults.  These wrap the irqchip's CPU-side calls with
 * the big lock, for the MSR and CR8 instructions.
 */
#define MSR_IA32_TSC_DEADLINE 0x6e0      /* SDM 3A §10.5.4.1 */

bool tcg_has_apic(void);
/* -cpu for the software CPU (ops-system.c); *dropped: features left out, or NULL. */
bool tcg_cpuid_configure(const char *cpu_model, char **dropped, GError **errp);
uint64_t tcg_apic_base_read(TCGCPU *cpu);
bool tcg_apic_base_write(TCGCPU *cpu, uint64_t v);      /* false: #GP */
uint64_t tcg_apic_deadline_read(TCGCPU *cpu);
void tcg_apic_deadline_write(TCGCPU *cpu, uint64_t v);
uint8_t tcg_apic_cr8_read(TCGCPU *cpu);                 /* TPR[7:4] */
void tcg_apic_cr8_write(TCGCPU *cpu, uint8_t v);

#endif
