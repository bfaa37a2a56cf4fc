/*
 * The accelerator interface: one interface, three engines (kvm, tcg, qtest).
 * Nothing outside accel/ knows which engine runs; devices never include this.
 *
 * Life cycle, driven by system/vl.c and system/cpus.c:
 *   probe -> init(machine) -> [board builds memory and devices] ->
 *   vcpu_init(id) for each CPU -> boot code sets BSP state (set_regs) ->
 *   cpus_start(): one thread per vCPU (or one thread total when
 *   single_thread), each calling vcpu_run() in a loop.
 */
#ifndef KESTREL_ACCEL_H
#define KESTREL_ACCEL_H

#include "kestrel/common.h"
#include "kestrel/x86.h"

typedef struct Machine Machine;

typedef enum {
    VCPU_RUN_AGAIN,      /* returned for a kick or a pause request: check and re-enter */
    VCPU_RUN_HALTED,     /* nothing to do (HLT with interrupts off forever, or parked AP) */
} VcpuRunResult;

typedef struct AccelOps {
    const char *name;                /* "kvm", "tcg", "qtest" */
    /* Can this engine run here?  If not, *why gets one line (caller frees). */
    bool (*probe)(char **why);
    /*
     * Usable, but unable to run guests at the speed its name promises here
     * (KVM without VT-x/AMD-V underneath)?  One line (caller frees), or NULL.
     * With no -accel, or in an "a:b" list, such an engine is passed over for
     * one without a caveat; asked for alone, it runs with a warning.
     */
    char *(*caveat)(void);
    /* Open the engine, create the VM; memory listener registration happens here. */
    bool (*init)(Machine *m, GError **errp);
    /* Create vCPU id (0 is the BSP); called before cpus_start. */
    bool (*vcpu_init)(Machine *m, int id, GError **errp);
    /* Called once in the vCPU thread before its first vcpu_run. */
    void (*vcpu_thread_init)(Machine *m, int id);
    /*
     * Run guest code on vCPU id until kicked or the machine wants to stop.
     * Called without the big lock; takes it around device access.  With
     * single_thread, id is -1 and the engine runs all vCPUs round-robin.
     */
    VcpuRunResult (*vcpu_run)(Machine *m, int id);
    /* From any thread: make vcpu_run return soon. */
    void (*vcpu_kick)(Machine *m, int id);
    /* Interrupt controller input: GSI level (ISA IRQ n is GSI n, except 0 -> 2 on the IOAPIC). */
    void (*set_irq)(Machine *m, int gsi, int level);
    /* In-kernel irqchip only: inject an MSI (KVM_SIGNAL_MSI). */
    void (*send_msi)(Machine *m, uint64_t addr, uint32_t data);
    /* System reset, with all vCPUs paused: CPUs to power-on state. */
    void (*reset)(Machine *m);
    bool (*get_regs)(Machine *m, int id, X86CPUState *s);
    bool (*set_regs)(Machine *m, int id, const X86CPUState *s);
    /* Release everything (vCPU threads already joined). */
    void (*cleanup)(Machine *m);
    /*
     * Does the engine bring its own interrupt controllers and PIT (KVM's
     * in-kernel irqchip)?  If NULL or false, the board creates the userspace
     * 8259s, 8254, IOAPIC and local APICs (include/kestrel/irqchip.h).
     */
    bool (*has_kernel_irqchip)(Machine *m);
    bool single_thread;              /* one thread runs all vCPUs */
    bool has_cpu;                    /* false for qtest: no guest code at all */
} AccelOps;

void accel_register(const AccelOps *ops);
const AccelOps *accel_find(const char *name);
/* "kvm", "tcg", "qtest" — for -accel help */
void accel_list(FILE *out);

#define ACCEL_REGISTER(ops) \
    static void __attribute__((constructor)) accel_register_##ops(void) \
    { accel_register(&(ops)); }

/* system/cpus.c: vCPU threads on top of AccelOps. */
bool cpus_start(Machine *m, GError **errp);
void cpus_pause(Machine *m);        /* returns when every vCPU is parked (big lock held) */
void cpus_resume(Machine *m);
void cpus_request_stop(Machine *m); /* any thread: park the vCPUs soon (guest reset/poweroff) */
void cpus_stop(Machine *m);         /* ask threads to exit and join them */
/* Any thread: wake vCPU threads parked after VCPU_RUN_HALTED (an interrupt arrived). */
void cpus_wake(Machine *m);
/* In a vCPU thread: true when vcpu_run should return (pause or exit pending). */
bool cpus_should_stop(Machine *m, int id);

#endif
