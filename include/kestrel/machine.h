/*
 * The machine: the parsed configuration, the board's memory map, IRQ lines
 * and the accelerator, plus run-state requests (shutdown, reset, exit) that
 * any device or backend may make.  Kestrel models one machine per process.
 */
#ifndef KESTREL_MACHINE_H
#define KESTREL_MACHINE_H

#include "kestrel/common.h"
#include "kestrel/memory.h"
#include "kestrel/irq.h"
#include "kestrel/x86.h"

typedef struct AccelOps AccelOps;
typedef struct Chardev Chardev;
typedef struct PCIBus PCIBus;
typedef struct FWCfgState FWCfgState;

#define MACHINE_NUM_GSI 24

/*
 * 16 KiB below the BIOS flash that the board never maps and reports as
 * reserved in e820, for the accelerator's private use (KVM: the identity-map
 * page and the three-page real-mode TSS on Intel hosts, kvm-api.md §1.3).
 */
#define PC_ACCEL_RESERVED_BASE 0xfeffc000ULL
#define PC_ACCEL_RESERVED_SIZE 0x4000ULL

typedef struct MachineConfig {
    uint64_t ram_size;               /* -m, bytes */
    int smp_cpus;                    /* -smp */
    char *cpu_model;                 /* -cpu, NULL = default */
    char *machine_type;              /* -M, "pc" */
    char *accel;                     /* -accel: "kvm", "tcg", "qtest", "kvm:tcg" or NULL */
    bool kernel_irqchip;             /* -machine kernel-irqchip=on|off */
    char *kernel, *initrd, *append;  /* -kernel -initrd -append */
    char *bios;                      /* -bios */
    char *name;                      /* -name */
    char *pidfile;
    bool no_reboot, no_shutdown;
    bool start_paused;               /* -S */
    bool nodefaults;
    bool nographic;
    char *display;                   /* -display: "none", "sdl", ... */
    GPtrArray *serial_specs;         /* -serial, in order (COM1..COM4) */
    GPtrArray *chardev_opts;         /* -chardev */
    GPtrArray *device_opts;          /* -device */
    GPtrArray *global_opts;          /* -global driver.prop=value */
    char *monitor_spec;              /* -monitor */
    char *qtest_spec;                /* -qtest */
    char *debugcon_spec;             /* -debugcon */
    GPtrArray *drive_opts;           /* -drive and the -hda/-cdrom/-fda sugar, expanded */
    GPtrArray *fw_cfg_opts;          /* -fw_cfg name=opt/x,file=|string= */
    char *boot_opts;                 /* -boot order=cdn,menu=on,... */
    bool snapshot;                   /* -snapshot */
    char *log_file;                  /* -D */
    unsigned log_mask;               /* -d */
} MachineConfig;

typedef struct Machine {
    MachineConfig *cfg;
    const AccelOps *accel;

    /* Memory map (hw/pc/pc.c builds it). */
    MemoryRegion *system_memory;     /* root container, 2^64 bytes */
    MemoryRegion *ram;               /* the one RAM block, ram_size bytes */
    uint64_t ram_below_4g;           /* RAM mapped at 0 */
    uint64_t ram_above_4g;           /* RAM mapped at 4 GiB */
    AddressSpace *as;                /* the CPU's view of system_memory */

    MemoryRegion *bios;              /* firmware flash at 4 GiB - size; NULL for direct boot */
    bool firmware_boot;              /* run the BIOS (no -kernel, or -kernel with -bios) */
    PCIBus *pci_bus;                 /* root bus (the i440FX host bridge creates it) */
    FWCfgState *fw_cfg;              /* the fw_cfg device */

    /* Interrupt controller inputs: ISA IRQs 0-15 and PCI GSIs 16-23. */
    IrqLine *gsi[MACHINE_NUM_GSI];

    int smp_cpus;
    /* Initial state of the boot CPU set by a direct-boot loader (else reset state). */
    bool bsp_state_valid;
    X86CPUState bsp_state;
    /*
     * MTRRs every CPU (BSP and APs) gets at reset when no firmware runs to
     * program them: a direct-boot loader sets them to what firmware would
     * have left (x86_mtrr_state_firmware).  If not valid, reset leaves the
     * power-on state (all 0, MTRRs disabled) for the firmware to program.
     */
    bool cpu_mtrr_valid;
    X86MTRRState cpu_mtrr;

    void *accel_state;               /* private to the accelerator */
} Machine;

extern Machine *current_machine;

/* Why the machine stops. */
typedef enum {
    SHUTDOWN_GUEST_POWEROFF,     /* ACPI S5 */
    SHUTDOWN_GUEST_RESET,        /* reset port, triple fault, 8042 pulse */
    SHUTDOWN_HOST_EXIT,          /* Ctrl-A x, signal, monitor quit */
    SHUTDOWN_GUEST_EXIT,         /* isa-debug-exit: status given */
} ShutdownCause;

/* Any thread.  Reset honours -no-reboot (exit 0 instead); poweroff honours -no-shutdown. */
void machine_request_reset(void);
void machine_request_poweroff(void);
/* Exit the process with this status as soon as the main loop sees it. */
void machine_request_exit(int status);
/* Triple fault / CPU shutdown: a reset (or exit under -no-reboot). */
void machine_request_cpu_shutdown(int cpu_id);
/* Fatal guest or engine error: state already printed; exit status 1. */
void machine_request_fatal(const char *why);

/* Byte address in guest RAM for loaders; NULL if not RAM. */
void *machine_ram_ptr(Machine *m, hwaddr addr, uint64_t len);

/* ISA IRQ line n (0-15) for a device: goes to the machine's interrupt controller. */
IrqLine *machine_isa_irq(Machine *m, int n);

/* Deliver an MSI write (address 0xFEExxxxx, data) to the interrupt controller. */
void machine_send_msi(Machine *m, uint64_t addr, uint32_t data);

/*
 * The board (hw/pc/pc.c): build the machine from m->cfg; system reset, which
 * also (re)loads a -kernel, so it fails on a bad kernel image.
 */
bool pc_machine_init(Machine *m, GError **errp);
bool pc_machine_reset(Machine *m, GError **errp);

/* Main loop (system/main-loop.c) */
void main_loop_init(void);
GMainContext *main_loop_context(void);
/* Run until a shutdown/exit request; returns the process exit status. */
int main_loop_run(Machine *m);
void main_loop_wakeup(void);

#endif
