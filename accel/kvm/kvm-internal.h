/*
 * Private to accel/kvm: the KVM VM and vCPU state, the ioctl hook, and the
 * pure helpers (register conversion, reset-state builders, memory slot
 * bookkeeping, exit decoding) that tests/unit/test-kvm-*.c call directly.
 *
 * All facts about the API come from /work/shared/docs/kvm-api.md and
 * <linux/kvm.h>; section numbers below refer to that fact sheet.
 */
#ifndef KESTREL_KVM_INTERNAL_H
#define KESTREL_KVM_INTERNAL_H

#include "kestrel/common.h"
#include "kestrel/machine.h"
#include "kestrel/memory.h"
#include "kestrel/x86.h"
#include "kestrel/irqchip.h"       /* APIC_DEFAULT_BASE; the userspace LAPIC */
#include "accel/kvm/kvm-cpuid.h"

#include <linux/kvm.h>
#include <pthread.h>

#define KVM_DEV_PATH            "/dev/kvm"
#define KVM_EXPECTED_API        12

/* §1.3: QEMU's placement, in the window the board reserves for us (machine.h). */
#define KVM_IDENTITY_MAP_ADDR   ((uint32_t)PC_ACCEL_RESERVED_BASE)
#define KVM_TSS_ADDR            (KVM_IDENTITY_MAP_ADDR + 0x1000u)
#define KVM_RESERVED_SIZE       ((uint32_t)PC_ACCEL_RESERVED_SIZE)

#define KVM_PAGE_SIZE           4096u

/*
 * Every ioctl goes through this pointer so the slot bookkeeping and the
 * reset sequence can run against a fake in tests (§8).  Returns like
 * ioctl(2): -1 with errno set on failure.
 */
typedef int (*KvmIoctlFn)(int fd, unsigned long request, void *arg);
extern KvmIoctlFn kvm_ioctl_fn;
int kvm_ioctl_real(int fd, unsigned long request, void *arg);
/* open(2) of /dev/kvm, swappable the same way. */
typedef int (*KvmOpenFn)(const char *path, int flags);
extern KvmOpenFn kvm_open_fn;

/* ---- probe ---- */

/* Scan /proc/cpuinfo text for the "flags" words that matter. */
typedef struct KvmCpuinfo {
    bool readable;               /* text was available at all */
    bool vmx, svm, hypervisor;
} KvmCpuinfo;
KvmCpuinfo kvm_parse_cpuinfo(const char *text);

/* One line saying why /dev/kvm could not be opened (errno from open()). */
char *kvm_explain_open_error(int err, const KvmCpuinfo *ci);

/* One line when /dev/kvm works but has no VT-x/AMD-V under it (PVM), else NULL. */
char *kvm_explain_software_only(const KvmCpuinfo *ci);

/* Capabilities Kestrel cannot run without (§1.2). */
typedef struct KvmCapName {
    int cap;
    const char *name;
} KvmCapName;
extern const KvmCapName kvm_required_caps[];
extern const size_t kvm_required_caps_count;
/* Ask fd about every required cap; NULL if all present, else one line naming the missing. */
char *kvm_check_required_caps(int fd);

/* ---- memory slots (§1.5) ---- */

typedef struct KvmSlot {
    bool used;
    uint32_t flags;              /* KVM_MEM_READONLY */
    hwaddr gpa;
    uint64_t size;
    uint64_t hva;
} KvmSlot;

typedef struct KvmSlotTable {
    int vm_fd;
    bool readonly_mem;           /* KVM_CAP_READONLY_MEM */
    bool warned_rom_as_ram;
    unsigned nr;                 /* KVM_CAP_NR_MEMSLOTS */
    KvmSlot *slots;
} KvmSlotTable;

void kvm_slots_init(KvmSlotTable *t, int vm_fd, unsigned nr, bool readonly_mem);
void kvm_slots_destroy(KvmSlotTable *t);
/*
 * The page-aligned part of a flat range that can be a slot: false for MMIO,
 * for ranges without a whole page, or where GPA and host address disagree
 * in their page offset (the rest stays slot-less and exits as MMIO, which
 * address_space_ld/st still serve).
 */
bool kvm_slot_window(const FlatRange *fr, hwaddr *gpa, uint64_t *size, uint64_t *hva);
/* Listener bodies: create / delete the slot for a RAM or ROM range. */
bool kvm_slots_region_add(KvmSlotTable *t, const FlatRange *fr, GError **errp);
void kvm_slots_region_del(KvmSlotTable *t, const FlatRange *fr);
/* Slot covering gpa, or NULL. */
const KvmSlot *kvm_slots_lookup(const KvmSlotTable *t, hwaddr gpa);

/* ---- register state (kvm-x86.c) ---- */

void kvm_segment_to_x86(const struct kvm_segment *k, X86Segment *s);
void kvm_segment_from_x86(const X86Segment *s, struct kvm_segment *k);
/* KVM -> X86CPUState.  dregs may be NULL (dr[] left zero). */
void kvm_state_to_x86(const struct kvm_regs *regs, const struct kvm_sregs *sregs,
                      const struct kvm_debugregs *dregs, X86CPUState *s);
/*
 * X86CPUState -> KVM.  sregs must hold what KVM_GET_SREGS returned (fields
 * X86CPUState lacks are kept); interrupt_bitmap is cleared (§7.7).  An
 * apic_base of 0 keeps KVM's value.
 */
void kvm_state_from_x86(const X86CPUState *s, struct kvm_regs *regs,
                        struct kvm_sregs *sregs, struct kvm_debugregs *dregs);

/* Power-on FPU: FCW 0x37f, MXCSR 0x1f80, all tags empty (§1.10). */
void kvm_fpu_reset_state(struct kvm_fpu *fpu);
/*
 * Local APIC registers after RESET (SDM vol. 3A 10.4.7.1), keeping the
 * version register found in *st.  The BSP gets LINT0 = ExtINT and
 * LINT1 = NMI as a PC BIOS programs them, so the PIC reaches the BSP in
 * virtual-wire mode on a direct kernel boot (§1.10).
 */
void kvm_lapic_reset_state(struct kvm_lapic_state *st, uint32_t apic_id, bool bsp);
uint32_t kvm_lapic_get_reg(const struct kvm_lapic_state *st, unsigned offset);
void kvm_lapic_set_reg(struct kvm_lapic_state *st, unsigned offset, uint32_t value);

#define APIC_ID         0x20
#define APIC_LVR        0x30
#define APIC_TPR        0x80
#define APIC_LDR        0xd0
#define APIC_DFR        0xe0
#define APIC_SVR        0xf0
#define APIC_ESR        0x280
#define APIC_LVT_CMCI   0x2f0
#define APIC_ICR_LOW    0x300
#define APIC_ICR_HIGH   0x310
#define APIC_LVT_TIMER  0x320
#define APIC_LVT_THERM  0x330
#define APIC_LVT_PMC    0x340
#define APIC_LVT_LINT0  0x350
#define APIC_LVT_LINT1  0x360
#define APIC_LVT_ERROR  0x370
#define APIC_TMICT      0x380
#define APIC_TMCCT      0x390
#define APIC_TDCR       0x3e0
#define APIC_LVT_MASKED         (1u << 16)
#define APIC_DM_NMI             (4u << 8)
#define APIC_DM_EXTINT          (7u << 8)

/* MSR numbers (SDM vol. 4) and KVM's (asm/kvm_para.h). */
#define MSR_IA32_TSC            0x10
#define MSR_IA32_APICBASE       0x1b
#define MSR_IA32_SYSENTER_CS    0x174
#define MSR_IA32_SYSENTER_ESP   0x175
#define MSR_IA32_SYSENTER_EIP   0x176
#define MSR_IA32_MISC_ENABLE    0x1a0
#define MSR_IA32_CR_PAT         0x277
#define MSR_STAR                0xc0000081
#define MSR_LSTAR               0xc0000082
#define MSR_CSTAR               0xc0000083
#define MSR_SYSCALL_MASK        0xc0000084
#define MSR_KERNEL_GS_BASE      0xc0000102
#define MSR_KVM_WALL_CLOCK      0x11
#define MSR_KVM_SYSTEM_TIME     0x12
#define MSR_KVM_WALL_CLOCK_NEW  0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define MSR_KVM_ASYNC_PF_EN     0x4b564d02
#define MSR_KVM_STEAL_TIME      0x4b564d03
#define MSR_KVM_PV_EOI_EN       0x4b564d04
#define MISC_ENABLE_FAST_STRING (1ull << 0)
#define PAT_POWER_ON            0x0007040600070406ull

#define APICBASE_BSP            (1ull << 8)
#define APICBASE_ENABLE         (1ull << 11)

/*
 * Reset MSR list (§1.8): the entries whose index is in 'known' (the
 * KVM_GET_MSR_INDEX_LIST answer; NULL = take all).  Returns the count.
 */
unsigned kvm_msrs_reset_list(struct kvm_msr_entry *out, unsigned max,
                             const struct kvm_msr_list *known);
/*
 * The MTRR MSRs at reset: *mtrr (a direct boot's firmware-like state,
 * include/kestrel/x86.h) with PHYSMASK clipped to phys_bits (the vCPU's
 * CPUID 80000008H EAX[7:0]), or all 0 (power-on, MTRRs disabled) if mtrr is
 * NULL.  KVM leaves the MTRRs out of KVM_GET_MSR_INDEX_LIST yet keeps them
 * per vCPU (as QEMU sets them), so no index-list filter.  Returns the count
 * (1 + X86_MTRR_FIXED_COUNT + 2 * X86_MTRR_VAR_COUNT if max allows).
 */
unsigned kvm_msrs_mtrr_list(struct kvm_msr_entry *out, unsigned max,
                            const X86MTRRState *mtrr, unsigned phys_bits);

/* §3.1: QEMU-style routing, GSI 0 -> PIC pin 0 + IOAPIC pin 2, GSI 2 -> nothing. */
struct kvm_irq_routing *kvm_gsi_routing_build(void);

/*
 * Split an MMIO exit of len bytes at addr into naturally aligned power-of-2
 * pieces (KVM hands us 1..8 bytes; page-crossing accesses arrive in odd
 * sizes).  Returns the count; sizes[] gets each piece's size in order.
 */
unsigned kvm_mmio_split(hwaddr addr, unsigned len, unsigned sizes[8]);

/* ---- VM and vCPUs (kvm-all.c) ---- */

typedef struct KvmVcpu {
    int id;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool thread_known;
    bool io_pending;             /* last exit was IO/MMIO: KVM completes it on the next KVM_RUN */
    bool stopped;                /* after triple fault / fatal error: no KVM_RUN until reset */
    uint32_t cpuid_1_eax;        /* goes into RDX at reset (§1.9) */
    unsigned phys_bits;          /* MAXPHYADDR in its CPUID (80000008H EAX[7:0]) */
    /*
     * kernel-irqchip=off (§3.5): the CPU-side state of the userspace
     * LAPIC protocol (include/kestrel/irqchip.h), touched only by the
     * vCPU's own thread except event_check, which the kick hook sets.
     */
    bool halted;                 /* HLT exit: no KVM_RUN until an event wakes it */
    bool wait_sipi;              /* after INIT (APs from reset): only SIPI starts it */
    int event_check;             /* atomic: apic_pending() may have changed */
    uint8_t cr8;                 /* TPR[7:4] as last given to / taken from run->cr8 */
    uint64_t apic_base;          /* without the MSR filter: run->apic_base last seen */
    int64_t tsc_offset;          /* guest TSC - host TSC, measured in the vCPU thread */
} KvmVcpu;

typedef struct KvmState {
    int kvm_fd, vm_fd;
    int mmap_size;
    bool cap_immediate_exit, cap_xcrs, cap_mp_state, cap_tsc_deadline;
    bool cap_debugregs, cap_vcpu_events;
    int max_vcpus;
    KvmSlotTable slots;
    MemoryListener listener;
    AddressSpace *listener_as;
    struct kvm_cpuid2 *supported_cpuid;
    X86CPUSpec cpu_spec;
    struct kvm_msr_list *msr_list;
    bool userspace_irqchip;      /* kernel-irqchip=off: hw/pc PIC/PIT/IOAPIC/LAPICs */
    bool msr_filter;             /* IA32_APIC_BASE and TSC_DEADLINE exit to us */
    bool cap_user_nmi;
    bool have_reset_irqchip;
    struct kvm_irqchip reset_irqchip[3];     /* PIC master, PIC slave, IOAPIC as created */
    bool have_reset_pit;
    struct kvm_pit_state2 reset_pit;
    int nr_vcpus;
    KvmVcpu **vcpus;             /* [smp_cpus] */
} KvmState;

/*
 * Exit handlers, exposed for tests with a fake kvm_run: port I/O
 * (count repetitions at data_offset) and MMIO on as.  The caller holds the
 * big lock.  Return false if the exit data is malformed.
 */
bool kvm_handle_io(struct kvm_run *run, size_t run_size);
bool kvm_handle_mmio(AddressSpace *as, struct kvm_run *run);

/*
 * KVM_EXIT_X86_RDMSR/WRMSR for the MSRs the userspace LAPIC owns
 * (IA32_APIC_BASE 0x1b, IA32_TSC_DEADLINE 0x6e0) on vCPU cpu; anything
 * else is refused with #GP (run->msr.error = 1).  Big lock held.
 */
void kvm_handle_apic_msr(int cpu, struct kvm_run *run);

#define MSR_IA32_TSC_DEADLINE   0x6e0

#endif
