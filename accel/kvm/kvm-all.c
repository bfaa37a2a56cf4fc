/*
 * The KVM accelerator: VM and vCPU creation, the memory listener that turns
 * RAM/ROM ranges into KVM memory slots, the KVM_RUN loop and its exits,
 * interrupt lines into the in-kernel PIC/IOAPIC, and system reset.
 *
 * Spec: Linux Documentation/virt/kvm/api.rst as restated in
 * /work/shared/docs/kvm-api.md (section numbers below are that sheet's),
 * struct layouts from <linux/kvm.h>.  Bring-up order follows §1.1:
 * open, API version, capabilities, CREATE_VM, identity map, TSS,
 * CREATE_IRQCHIP, CREATE_PIT2, GSI routing, memory slots, then per vCPU
 * CREATE_VCPU, mmap, SET_CPUID2 and the reset state.
 *
 * By default the in-kernel PIC, IOAPIC, LAPICs and PIT are used; the PIT
 * also answers port 0x61 (KVM_PIT_SPEAKER_DUMMY) unless a board device
 * claims that port.  GSI routing follows QEMU: ISA IRQ0 reaches IOAPIC pin 2
 * (§3.1).
 *
 * With -machine kernel-irqchip=off (§3.5) KVM gets no irqchip and no PIT;
 * the board builds hw/pc's 8259s, 8254, IOAPIC and LAPICs as for the
 * software CPU, and this file is their CPU side (include/kestrel/irqchip.h):
 * the 0xfee00000 page is plain MMIO, routed to the LAPIC of the vCPU whose
 * thread exits (irqchip_current_cpu); IA32_APIC_BASE and IA32_TSC_DEADLINE
 * exit through an MSR filter (KVM_CAP_X86_USER_SPACE_MSR); before each
 * KVM_RUN the vCPU takes INIT/SIPI/NMI and injects a maskable interrupt
 * with KVM_INTERRUPT when KVM reported ready_for_interrupt_injection and
 * IF, else asks for an interrupt-window exit; HLT exits and the vCPU thread
 * sleeps (cpus.c) until the irqchip's kick hook wakes it; APs wait for SIPI
 * outside KVM_RUN; CR8 is passed both ways through kvm_run.cr8.
 *
 * Not implemented: split irqchip, SMIs with kernel-irqchip=off, coalesced
 * MMIO, ioeventfd/irqfd, MSI routes (KVM_SIGNAL_MSI only), dirty logging,
 * guest debug, XSAVE state beyond KVM_SET_FPU + XCR0, save/restore of state,
 * TSC frequency control (the host's is used).
 *
 * Threads (include/kestrel/lock.h): KVM_RUN runs without the big lock; a
 * port or MMIO exit takes it around the device call.  A kick sets
 * kvm_run.immediate_exit and sends KVM_KICK_SIGNAL to the vCPU thread
 * (§2.5 pattern A); kernels without KVM_CAP_IMMEDIATE_EXIT get pattern B
 * (the signal is unblocked only inside KVM_RUN via KVM_SET_SIGNAL_MASK).
 * Reset, get_regs and set_regs run in the main thread while every vCPU is
 * parked outside KVM_RUN; a parked vCPU never has an I/O exit left
 * uncompleted (vcpu_run re-enters once with immediate_exit first, §2.1).
 */
#include "accel/kvm/kvm-internal.h"
#include "kestrel/accel.h"
#include "kestrel/ioport.h"
#include "kestrel/irqchip.h"
#include "kestrel/lock.h"
#include "kestrel/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#define KVM_KICK_SIGNAL SIGUSR1

/* ---- ioctl layer ---- */

int kvm_ioctl_real(int fd, unsigned long request, void *arg)
{
    return ioctl(fd, request, arg);
}

KvmIoctlFn kvm_ioctl_fn = kvm_ioctl_real;

static int kvm_open_real(const char *path, int flags)
{
    return open(path, flags);
}

KvmOpenFn kvm_open_fn = kvm_open_real;

static int kvm_ioctl(int fd, unsigned long request, void *arg)
{
    return kvm_ioctl_fn(fd, request, arg);
}

static int kvm_check_extension(int fd, int cap)
{
    int r = kvm_ioctl(fd, KVM_CHECK_EXTENSION, (void *)(uintptr_t)cap);
    return r < 0 ? 0 : r;
}

/* ---- probe ---- */

KvmCpuinfo kvm_parse_cpuinfo(const char *text)
{
    KvmCpuinfo ci = { 0 };
    if (!text) {
        return ci;
    }
    ci.readable = true;
    char **lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        if (!g_str_has_prefix(*l, "flags")) {
            continue;
        }
        const char *colon = strchr(*l, ':');
        if (!colon) {
            continue;
        }
        char **words = g_strsplit_set(colon + 1, " \t", -1);
        for (char **w = words; *w; w++) {
            ci.vmx |= !strcmp(*w, "vmx");
            ci.svm |= !strcmp(*w, "svm");
            ci.hypervisor |= !strcmp(*w, "hypervisor");
        }
        g_strfreev(words);
    }
    g_strfreev(lines);
    return ci;
}

char *kvm_explain_open_error(int err, const KvmCpuinfo *ci)
{
    switch (err) {
    case ENOENT:
        if (!ci || !ci->readable) {
            return g_strdup(KVM_DEV_PATH " does not exist (kvm module not loaded, or no "
                            "VT-x/AMD-V: see kmod/kvm-check)");
        }
        if (!ci->vmx && !ci->svm) {
            if (ci->hypervisor) {
                return g_strdup(KVM_DEV_PATH " does not exist: this CPU shows no VT-x/AMD-V "
                                "(no vmx/svm flag in /proc/cpuinfo; we run inside a VM "
                                "without nested virtualisation: see kmod/kvm-check)");
            }
            return g_strdup(KVM_DEV_PATH " does not exist: this CPU shows no VT-x/AMD-V "
                            "(no vmx/svm flag in /proc/cpuinfo; absent or disabled in the "
                            "firmware setup: see kmod/kvm-check)");
        }
        return g_strdup_printf(KVM_DEV_PATH " does not exist although the CPU has %s "
                               "(kvm module not loaded? try 'modprobe %s': see kmod/kvm-check)",
                               ci->vmx ? "VT-x" : "AMD-V", ci->vmx ? "kvm_intel" : "kvm_amd");
    case EACCES:
    case EPERM:
        return g_strdup(KVM_DEV_PATH ": permission denied (add your user to the 'kvm' group: "
                        "sudo usermod -aG kvm $USER, then log in again; see kmod/kvm-check)");
    case ENXIO:
    case ENODEV:
        return g_strdup(KVM_DEV_PATH ": no such device (kvm is loaded but found no usable "
                        "VT-x/AMD-V: see kmod/kvm-check)");
    default:
        return g_strdup_printf(KVM_DEV_PATH ": %s (see kmod/kvm-check)", g_strerror(err));
    }
}

const KvmCapName kvm_required_caps[] = {
    { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
    { KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
    { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
    { KVM_CAP_PIT2, "KVM_CAP_PIT2" },
    { KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
    { KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
    { KVM_CAP_HLT, "KVM_CAP_HLT" },
    { KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE" },
};
const size_t kvm_required_caps_count = ARRAY_LEN(kvm_required_caps);

char *kvm_check_required_caps(int fd)
{
    GString *missing = NULL;
    for (size_t i = 0; i < kvm_required_caps_count; i++) {
        if (kvm_check_extension(fd, kvm_required_caps[i].cap) > 0) {
            continue;
        }
        if (!missing) {
            missing = g_string_new("KVM lacks required capabilities: ");
        } else {
            g_string_append(missing, ", ");
        }
        g_string_append(missing, kvm_required_caps[i].name);
    }
    if (missing) {
        g_string_append(missing, " (host kernel too old?)");
        return g_string_free(missing, false);
    }
    return NULL;
}

static char *read_cpuinfo(void)
{
    char *text = NULL;
    if (!g_file_get_contents("/proc/cpuinfo", &text, NULL, NULL)) {
        return NULL;
    }
    return text;
}

/* Open /dev/kvm and check version and caps; -1 with *why set on failure. */
static int kvm_open_checked(char **why)
{
    int fd = kvm_open_fn(KVM_DEV_PATH, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        char *text = read_cpuinfo();
        KvmCpuinfo ci = kvm_parse_cpuinfo(text);
        g_free(text);
        *why = kvm_explain_open_error(err, &ci);
        return -1;
    }
    int api = kvm_ioctl(fd, KVM_GET_API_VERSION, NULL);
    if (api != KVM_EXPECTED_API) {
        *why = api < 0 ? g_strdup_printf("KVM_GET_API_VERSION failed: %s", g_strerror(errno))
                       : g_strdup_printf("KVM API version %d, Kestrel needs %d", api,
                                         KVM_EXPECTED_API);
        close(fd);
        return -1;
    }
    *why = kvm_check_required_caps(fd);
    if (*why) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * /dev/kvm opens but the CPU shows neither VT-x nor AMD-V: a paravirtual KVM
 * (PVM and the like) that has no hardware to run an unmodified guest in, so
 * the host kernel's instruction emulator executes every guest instruction.
 * Seen on such a host: Debian's kernel printed nothing within 60 s under
 * -accel kvm (QEMU's KVM likewise), where the software CPU reaches the
 * initramfs shell in about 20 s.  NULL when vmx/svm is there or cpuinfo is
 * unreadable (then we cannot tell, and trust KVM).
 */
char *kvm_explain_software_only(const KvmCpuinfo *ci)
{
    if (!ci || !ci->readable || ci->vmx || ci->svm) {
        return NULL;
    }
    return g_strdup("KVM here is software-only (no vmx/svm flag in /proc/cpuinfo: a "
                    "paravirtual KVM such as PVM emulates every guest instruction); "
                    "-accel tcg is much faster");
}

static char *kvm_caveat(void)
{
    char *text = read_cpuinfo();
    KvmCpuinfo ci = kvm_parse_cpuinfo(text);
    g_free(text);
    return kvm_explain_software_only(&ci);
}

static bool kvm_probe(char **why)
{
    char *reason = NULL;
    int fd = kvm_open_checked(&reason);
    if (fd < 0) {
        if (why) {
            *why = reason;
        } else {
            g_free(reason);
        }
        return false;
    }
    close(fd);
    return true;
}

/* ---- memory slots (§1.5) ---- */

void kvm_slots_init(KvmSlotTable *t, int vm_fd, unsigned nr, bool readonly_mem)
{
    memset(t, 0, sizeof(*t));
    t->vm_fd = vm_fd;
    t->nr = nr ? nr : 32;            /* api.rst: assume 32 if the cap is absent */
    t->readonly_mem = readonly_mem;
    t->slots = g_new0(KvmSlot, t->nr);
}

void kvm_slots_destroy(KvmSlotTable *t)
{
    g_free(t->slots);
    t->slots = NULL;
    t->nr = 0;
}

bool kvm_slot_window(const FlatRange *fr, hwaddr *gpa, uint64_t *size, uint64_t *hva)
{
    if (!fr->host || fr->size == 0) {
        return false;                                   /* MMIO */
    }
    uint64_t mask = KVM_PAGE_SIZE - 1;
    uintptr_t host = (uintptr_t)fr->host;
    if ((fr->start & mask) != (host & mask)) {
        return false;                                   /* cannot be congruent */
    }
    hwaddr start = (fr->start + mask) & ~mask;
    if (fr->start + fr->size < fr->start) {
        return false;                                   /* wraps: malformed */
    }
    hwaddr end = (fr->start + fr->size) & ~mask;
    if (end <= start) {
        return false;                                   /* no whole page inside */
    }
    *gpa = start;
    *size = end - start;
    *hva = host + (start - fr->start);
    return true;
}

static const char *slot_errno_hint(int err)
{
    switch (err) {
    case EEXIST: return "overlaps another slot or KVM's private TSS/identity-map pages";
    case EINVAL: return "bad alignment, flags or slot number";
    case EFAULT: return "host memory not mapped";
    default:     return g_strerror(err);
    }
}

static int slot_set(KvmSlotTable *t, unsigned id, uint32_t flags, hwaddr gpa, uint64_t size,
                    uint64_t hva)
{
    struct kvm_userspace_memory_region r;
    memset(&r, 0, sizeof(r));
    r.slot = id;
    r.flags = flags;
    r.guest_phys_addr = gpa;
    r.memory_size = size;
    r.userspace_addr = hva;
    return kvm_ioctl(t->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

bool kvm_slots_region_add(KvmSlotTable *t, const FlatRange *fr, GError **errp)
{
    hwaddr gpa;
    uint64_t size, hva;

    if (!kvm_slot_window(fr, &gpa, &size, &hva)) {
        return true;                 /* stays slot-less: every access exits as MMIO */
    }
    bool rom = fr->readonly || (fr->leaf && memory_region_kind(fr->leaf) == MR_ROM);
    uint32_t flags = 0;
    if (rom) {
        if (t->readonly_mem) {
            flags = KVM_MEM_READONLY;            /* writes exit as MMIO and are dropped */
        } else if (!t->warned_rom_as_ram) {
            /* §1.5: without READONLY_MEM the only way to execute ROM is as RAM. */
            error_report("warning: KVM lacks KVM_CAP_READONLY_MEM: ROM is guest-writable");
            t->warned_rom_as_ram = true;
        }
    }

    unsigned id;
    for (id = 0; id < t->nr && t->slots[id].used; id++) {
    }
    if (id == t->nr) {
        kestrel_set_error(errp, "KVM: out of memory slots (%u) mapping %s at 0x%" PRIx64,
                          t->nr, fr->leaf ? memory_region_name(fr->leaf) : "RAM", gpa);
        return false;
    }
    if (slot_set(t, id, flags, gpa, size, hva) < 0) {
        int err = errno;
        kestrel_set_error(errp, "KVM_SET_USER_MEMORY_REGION slot %u [0x%" PRIx64 ", 0x%" PRIx64
                          ") failed: %s", id, gpa, gpa + size, slot_errno_hint(err));
        return false;
    }
    t->slots[id] = (KvmSlot){ .used = true, .flags = flags, .gpa = gpa, .size = size,
                              .hva = hva };
    return true;
}

void kvm_slots_region_del(KvmSlotTable *t, const FlatRange *fr)
{
    hwaddr gpa;
    uint64_t size, hva;

    if (!kvm_slot_window(fr, &gpa, &size, &hva)) {
        return;
    }
    for (unsigned id = 0; id < t->nr; id++) {
        KvmSlot *s = &t->slots[id];
        if (s->used && s->gpa == gpa && s->size == size && s->hva == hva) {
            /* memory_size 0 deletes; the other fields must still be valid */
            if (slot_set(t, id, s->flags, gpa, 0, hva) < 0) {
                error_report("KVM: deleting memory slot %u at 0x%" PRIx64 " failed: %s",
                             id, gpa, g_strerror(errno));
            }
            s->used = false;
            return;
        }
    }
}

const KvmSlot *kvm_slots_lookup(const KvmSlotTable *t, hwaddr gpa)
{
    for (unsigned id = 0; id < t->nr; id++) {
        const KvmSlot *s = &t->slots[id];
        if (s->used && gpa >= s->gpa && gpa - s->gpa < s->size) {
            return s;
        }
    }
    return NULL;
}

static void kvm_listener_add(MemoryListener *l, const FlatRange *fr)
{
    KvmState *s = l->opaque;
    GError *err = NULL;
    if (!kvm_slots_region_add(&s->slots, fr, &err)) {
        /* The guest would run with a hole where RAM should be: stop now. */
        machine_request_fatal(err->message);
        g_error_free(err);
    }
}

static void kvm_listener_del(MemoryListener *l, const FlatRange *fr)
{
    KvmState *s = l->opaque;
    kvm_slots_region_del(&s->slots, fr);
}

/* ---- exits: port I/O and MMIO ---- */

static uint64_t ld_le_n(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static void st_le_n(uint8_t *p, unsigned n, uint64_t v)
{
    for (unsigned i = 0; i < n; i++) {
        p[i] = v >> (8 * i);
    }
}

bool kvm_handle_io(struct kvm_run *run, size_t run_size)
{
    unsigned size = run->io.size;
    uint64_t count = run->io.count;
    if (size != 1 && size != 2 && size != 4) {
        return false;
    }
    /* §2.3: count items of size bytes, back to back at data_offset. */
    uint64_t bytes = count * size;
    if (run->io.data_offset > run_size || bytes > run_size - run->io.data_offset) {
        return false;
    }
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    for (uint64_t i = 0; i < count; i++, data += size) {
        if (run->io.direction == KVM_EXIT_IO_IN) {
            st_le_n(data, size, ioport_read(run->io.port, size));
        } else {
            ioport_write(run->io.port, (uint32_t)ld_le_n(data, size), size);
        }
    }
    return true;
}

bool kvm_handle_mmio(AddressSpace *as, struct kvm_run *run)
{
    unsigned sizes[8];
    unsigned len = run->mmio.len;
    if (len == 0 || len > sizeof(run->mmio.data)) {
        return false;
    }
    unsigned n = kvm_mmio_split(run->mmio.phys_addr, len, sizes);
    unsigned off = 0;
    for (unsigned i = 0; i < n; i++) {
        hwaddr addr = run->mmio.phys_addr + off;
        if (run->mmio.is_write) {
            address_space_st(as, addr, ld_le_n(run->mmio.data + off, sizes[i]), sizes[i]);
        } else {
            st_le_n(run->mmio.data + off, sizes[i], address_space_ld(as, addr, sizes[i]));
        }
        off += sizes[i];
    }
    return true;
}

/* ---- the VM ---- */

static KvmState *kvm_state(Machine *m)
{
    return m->accel_state;
}

static KvmVcpu *kvm_vcpu(Machine *m, int id)
{
    KvmState *s = kvm_state(m);
    if (!s || id < 0 || id >= s->nr_vcpus) {
        return NULL;
    }
    return s->vcpus[id];
}

/* kernel-irqchip=off: the machine whose vCPUs the userspace irqchip kicks. */
static Machine *kvm_us_machine;
static void kvm_irqchip_kick(Machine *m, int cpu);
static uint64_t kvm_read_guest_tsc(int cpu);

static void kvm_kick_handler(int sig)
{
    /* Nothing: its only job is to make KVM_RUN return EINTR (§2.5). */
}

static struct kvm_cpuid2 *kvm_get_supported_cpuid(int kvm_fd, GError **errp)
{
    /* E2BIG means our array is too small: grow and retry (§1.7). */
    for (unsigned nent = 64; nent <= 4096; nent *= 2) {
        struct kvm_cpuid2 *c = kvm_cpuid_alloc(nent);
        if (kvm_ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            return c;
        }
        int err = errno;
        g_free(c);
        if (err != E2BIG) {
            kestrel_set_error(errp, "KVM_GET_SUPPORTED_CPUID failed: %s", g_strerror(err));
            return NULL;
        }
    }
    kestrel_set_error(errp, "KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
    return NULL;
}

static struct kvm_msr_list *kvm_get_msr_list(int kvm_fd)
{
    struct kvm_msr_list probe = { .nmsrs = 0 };
    /* The first call fails with E2BIG and tells us the count (§1.8). */
    if (kvm_ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG) {
        return NULL;
    }
    unsigned n = probe.nmsrs;
    struct kvm_msr_list *l = g_malloc0(sizeof(*l) + (n + 1) * sizeof(l->indices[0]));
    l->nmsrs = n;
    if (kvm_ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
        g_free(l);
        return NULL;
    }
    return l;
}

static void kvm_state_free(KvmState *s)
{
    if (!s) {
        return;
    }
    if (s->listener_as) {
        address_space_remove_listener(s->listener_as, &s->listener);
    }
    for (int i = 0; i < s->nr_vcpus; i++) {
        KvmVcpu *v = s->vcpus[i];
        if (!v) {
            continue;
        }
        if (v->run) {
            munmap(v->run, v->run_size);
        }
        if (v->fd >= 0) {
            close(v->fd);
        }
        g_free(v);
    }
    g_free(s->vcpus);
    kvm_slots_destroy(&s->slots);
    g_free(s->supported_cpuid);
    g_free(s->msr_list);
    if (s->vm_fd >= 0) {
        close(s->vm_fd);
    }
    if (s->kvm_fd >= 0) {
        close(s->kvm_fd);
    }
    g_free(s);
}

/* TSC-deadline mode needs a LAPIC that sees the MSR: KVM's, or ours through the filter. */
static bool kvm_tsc_deadline_ok(const KvmState *s)
{
    return s->cap_tsc_deadline && (!s->userspace_irqchip || s->msr_filter);
}

static bool kvm_vm_ioctl_checked(KvmState *s, unsigned long req, void *arg, const char *what,
                                 GError **errp)
{
    if (kvm_ioctl(s->vm_fd, req, arg) < 0) {
        kestrel_set_error(errp, "KVM: %s failed: %s", what, g_strerror(errno));
        return false;
    }
    return true;
}

/* §1.4, §7.3: the in-kernel PIC/IOAPIC/LAPICs, then the PIT, then QEMU's GSI routing. */
static bool kvm_create_kernel_irqchip(KvmState *s, GError **errp)
{
    if (!kvm_vm_ioctl_checked(s, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP", errp)) {
        return false;
    }
    struct kvm_pit_config pit;
    memset(&pit, 0, sizeof(pit));
    /*
     * §1.4: port 0x61 carries PIT channel 2's gate and OUT2, which Linux
     * polls to calibrate the TSC.  Unless a board device claims the port,
     * let the kernel answer it from its own PIT.
     */
    if (!ioport_owner(0x61)) {
        pit.flags = KVM_PIT_SPEAKER_DUMMY;
    }
    if (!kvm_vm_ioctl_checked(s, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2", errp)) {
        return false;
    }
    struct kvm_irq_routing *routing = kvm_gsi_routing_build();
    bool routed = kvm_vm_ioctl_checked(s, KVM_SET_GSI_ROUTING, routing,
                                       "KVM_SET_GSI_ROUTING", errp);
    g_free(routing);
    if (!routed) {
        return false;
    }
    /* The freshly created PIC/IOAPIC/PIT state is the power-on state reset() restores. */
    s->have_reset_irqchip = true;
    for (int chip = 0; chip < 3; chip++) {
        memset(&s->reset_irqchip[chip], 0, sizeof(s->reset_irqchip[chip]));
        s->reset_irqchip[chip].chip_id = chip;
        if (kvm_ioctl(s->vm_fd, KVM_GET_IRQCHIP, &s->reset_irqchip[chip]) < 0) {
            s->have_reset_irqchip = false;
        }
    }
    memset(&s->reset_pit, 0, sizeof(s->reset_pit));
    s->have_reset_pit = kvm_ioctl(s->vm_fd, KVM_GET_PIT2, &s->reset_pit) == 0;
    return true;
}

/*
 * kernel-irqchip=off: without its LAPIC, KVM keeps IA32_APIC_BASE to itself
 * and drops TSC-deadline writes (the timer is the LAPIC's).  Deny both MSRs
 * in an MSR filter and ask for KVM_EXIT_X86_RDMSR/WRMSR on filtered MSRs
 * (api.rst "KVM_CAP_X86_USER_SPACE_MSR", "KVM_X86_SET_MSR_FILTER"), so
 * hw/pc/apic.c answers them.  Without the filter, TSC-deadline is not
 * advertised and the APIC base is followed through run->apic_base.
 */
static void kvm_msr_filter_setup(KvmState *s)
{
    static uint8_t deny[1];              /* one MSR per range, its bit clear: deny */
    struct kvm_enable_cap cap;
    struct kvm_msr_filter filter;

    s->msr_filter = false;
    if (!(kvm_check_extension(s->vm_fd, KVM_CAP_X86_USER_SPACE_MSR) > 0) ||
        !(kvm_check_extension(s->vm_fd, KVM_CAP_X86_MSR_FILTER) > 0)) {
        return;
    }
    memset(&cap, 0, sizeof(cap));
    cap.cap = KVM_CAP_X86_USER_SPACE_MSR;
    cap.args[0] = KVM_MSR_EXIT_REASON_FILTER;
    if (kvm_ioctl(s->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
        LOG(LOG_UNIMP, "kvm: KVM_CAP_X86_USER_SPACE_MSR: %s\n", g_strerror(errno));
        return;
    }
    memset(&filter, 0, sizeof(filter));
    filter.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
    filter.ranges[0].flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;
    filter.ranges[0].nmsrs = 1;
    filter.ranges[0].base = MSR_IA32_APICBASE;
    filter.ranges[0].bitmap = deny;
    filter.ranges[1] = filter.ranges[0];
    filter.ranges[1].base = MSR_IA32_TSC_DEADLINE;
    if (kvm_ioctl(s->vm_fd, KVM_X86_SET_MSR_FILTER, &filter) < 0) {
        LOG(LOG_UNIMP, "kvm: KVM_X86_SET_MSR_FILTER: %s\n", g_strerror(errno));
        return;
    }
    s->msr_filter = true;
}

static bool kvm_init(Machine *m, GError **errp)
{
    MachineConfig *cfg = m->cfg;
    char *why = NULL;

    KvmState *s = g_new0(KvmState, 1);
    s->kvm_fd = s->vm_fd = -1;
    /* kernel-irqchip=off: the board creates hw/pc's PIC, PIT, IOAPIC and LAPICs (§3.5). */
    s->userspace_irqchip = cfg && !cfg->kernel_irqchip;

    /* Bad -cpu options are the user's: report them before touching the host. */
    if (!x86_cpu_spec_parse(cfg ? cfg->cpu_model : NULL, &s->cpu_spec, errp)) {
        goto fail;
    }

    s->kvm_fd = kvm_open_checked(&why);
    if (s->kvm_fd < 0) {
        kestrel_set_error(errp, "KVM: %s", why);
        g_free(why);
        goto fail;
    }
    s->mmap_size = kvm_ioctl(s->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
    if (s->mmap_size < (int)KVM_PAGE_SIZE) {
        kestrel_set_error(errp, "KVM_GET_VCPU_MMAP_SIZE failed: %s", g_strerror(errno));
        goto fail;
    }

    /* §1.1 step 5: type 0 on x86; EINTR is retried as QEMU does. */
    do {
        s->vm_fd = kvm_ioctl(s->kvm_fd, KVM_CREATE_VM, (void *)0);
    } while (s->vm_fd < 0 && errno == EINTR);
    if (s->vm_fd < 0) {
        kestrel_set_error(errp, "KVM_CREATE_VM failed: %s%s", g_strerror(errno),
                          errno == ENOMEM ? " (host out of memory?)" : "");
        goto fail;
    }

    /* Capabilities: prefer the VM's answers (§1.1 step 3). */
    int capfd = kvm_check_extension(s->kvm_fd, KVM_CAP_CHECK_EXTENSION_VM) ? s->vm_fd
                                                                            : s->kvm_fd;
    s->cap_immediate_exit = kvm_check_extension(capfd, KVM_CAP_IMMEDIATE_EXIT) > 0;
    s->cap_xcrs = kvm_check_extension(capfd, KVM_CAP_XCRS) > 0;
    s->cap_mp_state = kvm_check_extension(capfd, KVM_CAP_MP_STATE) > 0;
    s->cap_tsc_deadline = kvm_check_extension(capfd, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    s->cap_debugregs = kvm_check_extension(capfd, KVM_CAP_DEBUGREGS) > 0;
    s->cap_vcpu_events = kvm_check_extension(capfd, KVM_CAP_VCPU_EVENTS) > 0;
    s->cap_user_nmi = kvm_check_extension(capfd, KVM_CAP_USER_NMI) > 0;
    int nr_vcpus = kvm_check_extension(capfd, KVM_CAP_NR_VCPUS);
    int max_vcpus = kvm_check_extension(capfd, KVM_CAP_MAX_VCPUS);
    int max_id = kvm_check_extension(capfd, KVM_CAP_MAX_VCPU_ID);
    /* api.rst "KVM_CREATE_VCPU": NR defaults to 4, MAX to NR, MAX_VCPU_ID to MAX. */
    if (nr_vcpus <= 0) {
        nr_vcpus = 4;
    }
    if (max_vcpus <= 0) {
        max_vcpus = nr_vcpus;
    }
    if (max_id <= 0) {
        max_id = max_vcpus;
    }
    s->max_vcpus = MIN(max_vcpus, max_id);
    if (m->smp_cpus > s->max_vcpus) {
        kestrel_set_error(errp, "-smp %d: KVM on this host allows at most %d vCPUs",
                          m->smp_cpus, s->max_vcpus);
        goto fail;
    }
    if (m->smp_cpus > nr_vcpus) {
        error_report("warning: -smp %d is above KVM's recommended maximum of %d vCPUs",
                     m->smp_cpus, nr_vcpus);
    }

    /* §1.3: identity map then TSS, both before any vCPU; QEMU's addresses. */
    if (kvm_check_extension(capfd, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
        uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
        if (!kvm_vm_ioctl_checked(s, KVM_SET_IDENTITY_MAP_ADDR, &idmap,
                                  "KVM_SET_IDENTITY_MAP_ADDR", errp)) {
            goto fail;
        }
    }
    if (!kvm_vm_ioctl_checked(s, KVM_SET_TSS_ADDR, (void *)(uintptr_t)KVM_TSS_ADDR,
                              "KVM_SET_TSS_ADDR", errp)) {
        goto fail;
    }

    if (s->userspace_irqchip) {
        kvm_msr_filter_setup(s);
    } else if (!kvm_create_kernel_irqchip(s, errp)) {
        goto fail;
    }

    s->supported_cpuid = kvm_get_supported_cpuid(s->kvm_fd, errp);
    if (!s->supported_cpuid) {
        goto fail;
    }
    X86FeatureSet missing;
    KvmCpuidConfig ccfg = { .apic_id = 0, .nr_cpus = m->smp_cpus > 0 ? m->smp_cpus : 1,
                            .tsc_deadline = kvm_tsc_deadline_ok(s),
                            .userspace_apic = s->userspace_irqchip };
    g_free(kvm_cpuid_build(s->supported_cpuid, &s->cpu_spec, &ccfg, missing));
    char *names = x86_feature_set_describe(missing);
    if (*names) {
        error_report("warning: KVM on this host cannot provide -cpu feature(s): %s (ignored)",
                     names);
    }
    g_free(names);
    s->msr_list = kvm_get_msr_list(s->kvm_fd);

    /*
     * Kick signal: a do-nothing handler.  KVM_RUN returns -EINTR whatever
     * SA_RESTART says (the kernel does not restart it), while SA_RESTART
     * spares device code running in the vCPU thread from EINTR surprises.
     */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kvm_kick_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(KVM_KICK_SIGNAL, &sa, NULL);

    s->nr_vcpus = m->smp_cpus > 0 ? m->smp_cpus : 1;
    s->vcpus = g_new0(KvmVcpu *, s->nr_vcpus);

    kvm_slots_init(&s->slots, s->vm_fd, kvm_check_extension(capfd, KVM_CAP_NR_MEMSLOTS),
                   kvm_check_extension(capfd, KVM_CAP_READONLY_MEM) > 0);
    m->accel_state = s;
    s->listener.region_add = kvm_listener_add;
    s->listener.region_del = kvm_listener_del;
    s->listener.opaque = s;
    if (m->as) {
        /* Replays every current range: RAM and ROM become slots right here. */
        s->listener_as = m->as;
        address_space_add_listener(m->as, &s->listener);
    }
    if (s->userspace_irqchip) {
        /* include/kestrel/irqchip.h engine protocol: kicks and the guest's TSC. */
        kvm_us_machine = m;
        irqchip_set_kick(kvm_irqchip_kick);
        apic_set_tsc_reader(kvm_read_guest_tsc);
    }
    return true;

fail:
    m->accel_state = NULL;
    kvm_state_free(s);
    return false;
}

/* ---- vCPUs ---- */

static bool kvm_get_x86(KvmState *s, KvmVcpu *v, X86CPUState *x, GError **errp)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_debugregs dregs;

    memset(&regs, 0, sizeof(regs));
    memset(&sregs, 0, sizeof(sregs));
    memset(&dregs, 0, sizeof(dregs));
    if (kvm_ioctl(v->fd, KVM_GET_REGS, &regs) < 0 ||
        kvm_ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
        kestrel_set_error(errp, "KVM: reading vCPU %d registers failed: %s", v->id,
                          g_strerror(errno));
        return false;
    }
    bool have_dregs = s->cap_debugregs && kvm_ioctl(v->fd, KVM_GET_DEBUGREGS, &dregs) == 0;
    kvm_state_to_x86(&regs, &sregs, have_dregs ? &dregs : NULL, x);
    return true;
}

static bool kvm_set_x86(KvmState *s, KvmVcpu *v, const X86CPUState *x, GError **errp)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_debugregs dregs;

    /* §7.7: always GET before SET so fields X86CPUState lacks stay valid. */
    memset(&sregs, 0, sizeof(sregs));
    if (kvm_ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
        kestrel_set_error(errp, "KVM_GET_SREGS on vCPU %d failed: %s", v->id,
                          g_strerror(errno));
        return false;
    }
    kvm_state_from_x86(x, &regs, &sregs, &dregs);
    if (kvm_ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0) {
        kestrel_set_error(errp, "KVM_SET_SREGS on vCPU %d failed: %s (inconsistent segment or "
                          "control register state?)", v->id, g_strerror(errno));
        return false;
    }
    if (kvm_ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
        kestrel_set_error(errp, "KVM_SET_REGS on vCPU %d failed: %s", v->id, g_strerror(errno));
        return false;
    }
    if (s->cap_debugregs && kvm_ioctl(v->fd, KVM_SET_DEBUGREGS, &dregs) < 0) {
        kestrel_set_error(errp, "KVM_SET_DEBUGREGS on vCPU %d failed: %s", v->id,
                          g_strerror(errno));
        return false;
    }
    return true;
}

/*
 * mtrr: the MTRRs firmware would have left (direct boot, machine.h), or NULL
 * for the power-on state; either way RESET replaces what the guest had.
 */
static bool kvm_set_reset_msrs(KvmState *s, KvmVcpu *v, const X86MTRRState *mtrr,
                               GError **errp)
{
    enum { MAX_RESET_MSRS = 64 };
    struct kvm_msr_entry list[MAX_RESET_MSRS];
    unsigned n = kvm_msrs_reset_list(list, MAX_RESET_MSRS, s->msr_list);
    n += kvm_msrs_mtrr_list(list + n, MAX_RESET_MSRS - n, mtrr, v->phys_bits);
    struct kvm_msrs *req = g_malloc0(sizeof(*req) + n * sizeof(req->entries[0]));
    unsigned done = 0;
    bool ok = true;

    /* §7.6: KVM_SET_MSRS returns how many it set and stops at the first it refuses. */
    while (done < n) {
        req->nmsrs = n - done;
        memcpy(req->entries, &list[done], (n - done) * sizeof(req->entries[0]));
        int r = kvm_ioctl(v->fd, KVM_SET_MSRS, req);
        if (r < 0) {
            kestrel_set_error(errp, "KVM_SET_MSRS on vCPU %d failed: %s", v->id,
                              g_strerror(errno));
            ok = false;
            break;
        }
        done += r;
        if (done < n) {
            LOG(LOG_UNIMP, "kvm: vCPU %d: KVM refused reset value of MSR 0x%x\n", v->id,
                list[done].index);
            done++;
        }
    }
    g_free(req);
    return ok;
}

/*
 * What RESET and INIT share: no exception, interrupt or NMI left queued in
 * KVM (e.g. from the triple fault that caused the reset), and the
 * architectural power-on registers in *x for v.
 */
static void kvm_vcpu_power_on_state(KvmState *s, KvmVcpu *v, X86CPUState *x)
{
    if (s->cap_vcpu_events) {
        struct kvm_vcpu_events ev;
        memset(&ev, 0, sizeof(ev));
        ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
        if (kvm_ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0) {
            LOG(LOG_UNIMP, "kvm: vCPU %d: KVM_SET_VCPU_EVENTS: %s\n", v->id,
                g_strerror(errno));
        }
    }
    x86_cpu_state_reset(x, v->id == 0);
    if (v->cpuid_1_eax) {
        x->regs[R_EDX] = v->cpuid_1_eax;  /* §1.9: KVM's reset put 0x600 there */
    }
}

/* One vCPU to its power-on state (§1.9, §1.10). */
static bool kvm_vcpu_reset(Machine *m, KvmVcpu *v, GError **errp)
{
    KvmState *s = kvm_state(m);
    bool bsp = v->id == 0;

    X86CPUState x;
    kvm_vcpu_power_on_state(s, v, &x);
    if (!kvm_set_x86(s, v, &x, errp)) {
        return false;
    }

    struct kvm_fpu fpu;
    kvm_fpu_reset_state(&fpu);
    if (kvm_ioctl(v->fd, KVM_SET_FPU, &fpu) < 0) {
        kestrel_set_error(errp, "KVM_SET_FPU on vCPU %d failed: %s", v->id, g_strerror(errno));
        return false;
    }
    if (s->cap_xcrs) {
        struct kvm_xcrs xcrs;
        memset(&xcrs, 0, sizeof(xcrs));
        xcrs.nr_xcrs = 1;
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = 1;          /* XCR0 = x87 only (SDM vol. 1 13.3) */
        if (kvm_ioctl(v->fd, KVM_SET_XCRS, &xcrs) < 0) {
            kestrel_set_error(errp, "KVM_SET_XCRS on vCPU %d failed: %s", v->id,
                              g_strerror(errno));
            return false;
        }
    }
    if (!kvm_set_reset_msrs(s, v, m->cpu_mtrr_valid ? &m->cpu_mtrr : NULL, errp)) {
        return false;
    }

    v->stopped = false;
    v->io_pending = false;
    if (s->userspace_irqchip) {
        /*
         * §3.5: no KVM LAPIC and no usable MP state.  hw/pc/apic.c resets
         * with the devices; here only the CPU side: APs wait for SIPI, the
         * BSP runs, TPR 0, no interrupt window asked for and none assumed.
         */
        v->halted = false;
        v->wait_sipi = !bsp;
        v->cr8 = 0;
        v->apic_base = 0;
        __atomic_store_n(&v->event_check, 1, __ATOMIC_SEQ_CST);
        if (v->run) {
            v->run->request_interrupt_window = 0;
            v->run->ready_for_interrupt_injection = 0;
            v->run->cr8 = 0;
        }
        return true;
    }

    struct kvm_lapic_state lapic;
    memset(&lapic, 0, sizeof(lapic));
    if (kvm_ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0) {
        kestrel_set_error(errp, "KVM_GET_LAPIC on vCPU %d failed: %s", v->id, g_strerror(errno));
        return false;
    }
    kvm_lapic_reset_state(&lapic, v->id, bsp);
    if (kvm_ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0) {
        kestrel_set_error(errp, "KVM_SET_LAPIC on vCPU %d failed: %s", v->id, g_strerror(errno));
        return false;
    }

    if (s->cap_mp_state) {
        /*
         * BSP runs; APs wait for SIPI inside KVM_RUN, so the in-kernel LAPIC
         * handles the guest's INIT-SIPI-SIPI without exits (§1.10).
         */
        struct kvm_mp_state mp = {
            .mp_state = bsp ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_INIT_RECEIVED,
        };
        if (kvm_ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0) {
            kestrel_set_error(errp, "KVM_SET_MP_STATE on vCPU %d failed: %s", v->id,
                              g_strerror(errno));
            return false;
        }
    }
    v->stopped = false;
    v->io_pending = false;
    return true;
}

static bool kvm_vcpu_init(Machine *m, int id, GError **errp)
{
    KvmState *s = kvm_state(m);
    if (!s || id < 0 || id >= s->nr_vcpus) {
        kestrel_set_error(errp, "KVM: vCPU %d out of range", id);
        return false;
    }
    if (!s->listener_as && m->as) {
        s->listener_as = m->as;
        address_space_add_listener(m->as, &s->listener);
    }

    KvmVcpu *v = g_new0(KvmVcpu, 1);
    v->id = id;
    v->fd = kvm_ioctl(s->vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)id);
    if (v->fd < 0) {
        kestrel_set_error(errp, "KVM_CREATE_VCPU %d failed: %s", id, g_strerror(errno));
        g_free(v);
        return false;
    }
    s->vcpus[id] = v;                    /* from here kvm_state_free releases it */
    v->run_size = s->mmap_size;
    void *run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (run == MAP_FAILED) {
        kestrel_set_error(errp, "KVM: mmap of vCPU %d kvm_run failed: %s", id,
                          g_strerror(errno));
        return false;
    }
    v->run = run;

    KvmCpuidConfig ccfg = { .apic_id = id, .nr_cpus = s->nr_vcpus,
                            .tsc_deadline = kvm_tsc_deadline_ok(s),
                            .userspace_apic = s->userspace_irqchip };
    struct kvm_cpuid2 *cpuid = kvm_cpuid_build(s->supported_cpuid, &s->cpu_spec, &ccfg, NULL);
    int r = kvm_ioctl(v->fd, KVM_SET_CPUID2, cpuid);
    int err = errno;
    struct kvm_cpuid_entry2 *leaf1 = kvm_cpuid_find(cpuid, 1, 0);
    v->cpuid_1_eax = leaf1 ? leaf1->eax : 0;
    /* Without leaf 80000008H, 36 bits (SDM 3A §4.1.4), as firmware assumes. */
    struct kvm_cpuid_entry2 *addr_sizes = kvm_cpuid_find(cpuid, 0x80000008, 0);
    v->phys_bits = addr_sizes && (addr_sizes->eax & 0xff) ? addr_sizes->eax & 0xff : 36;
    g_free(cpuid);
    if (r < 0) {
        kestrel_set_error(errp, "KVM_SET_CPUID2 on vCPU %d failed: %s (try -cpu host)", id,
                          g_strerror(err));
        return false;
    }
    if (s->userspace_irqchip && id == 0) {
        /* The userspace LAPIC converts TSC-deadline values with the guest's TSC rate. */
        int khz = kvm_ioctl(v->fd, KVM_GET_TSC_KHZ, NULL);
        if (khz > 0) {
            apic_set_tsc_hz((uint64_t)khz * 1000);
        }
    }
    return kvm_vcpu_reset(m, v, errp);
}

static void kvm_vcpu_thread_init(Machine *m, int id)
{
    KvmState *s = kvm_state(m);
    KvmVcpu *v = kvm_vcpu(m, id);
    if (!v) {
        return;
    }
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, KVM_KICK_SIGNAL);
    if (s->cap_immediate_exit) {
        /* Pattern A: the signal stays deliverable; immediate_exit closes the race. */
        pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
    } else {
        /* Pattern B: blocked here, unblocked only while inside KVM_RUN. */
        sigset_t cur;
        pthread_sigmask(SIG_BLOCK, &kick, NULL);
        pthread_sigmask(SIG_BLOCK, NULL, &cur);
        sigdelset(&cur, KVM_KICK_SIGNAL);
        /* The kernel's sigset is 64 bits on x86-64: the first 8 bytes of glibc's. */
        struct kvm_signal_mask *mask = g_malloc0(sizeof(*mask) + 8);
        mask->len = 8;
        memcpy(mask->sigset, &cur, 8);
        int r = kvm_ioctl(v->fd, KVM_SET_SIGNAL_MASK, mask);
        g_free(mask);
        if (r < 0) {
            error_report("KVM_SET_SIGNAL_MASK on vCPU %d failed: %s", id, g_strerror(errno));
        }
    }
    v->thread = pthread_self();
    __atomic_store_n(&v->thread_known, true, __ATOMIC_RELEASE);
    irqchip_current_cpu = id;            /* whose LAPIC the 0xfee00000 page is, in this thread */
}

/* Pattern B leaves the kick pending after KVM_RUN returns: consume it. */
static void kvm_eat_kicks(void)
{
    sigset_t kick;
    struct timespec zero = { 0, 0 };
    sigemptyset(&kick);
    sigaddset(&kick, KVM_KICK_SIGNAL);
    while (sigtimedwait(&kick, NULL, &zero) > 0) {
    }
}

static const char *internal_suberror_name(uint32_t sub)
{
    switch (sub) {
    case KVM_INTERNAL_ERROR_EMULATION:
        return "instruction emulation failed (code or descriptor tables outside RAM?)";
    case KVM_INTERNAL_ERROR_SIMUL_EX:
        return "exception while delivering an exception";
    case KVM_INTERNAL_ERROR_DELIVERY_EV:
        return "exit during event delivery (IDT or stack outside RAM?)";
    case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
        return "unexpected hardware exit reason";
    default:
        return "unknown suberror";
    }
}

/* Print what the vCPU was doing and stop the machine with status 1. */
static VcpuRunResult kvm_vcpu_fatal(Machine *m, KvmVcpu *v, const char *why)
{
    KvmState *s = kvm_state(m);
    X86CPUState x;
    GError *err = NULL;

    if (kvm_get_x86(s, v, &x, &err)) {
        x86_cpu_state_dump(&x, stderr);
    } else {
        error_report("%s", err->message);
        g_error_free(err);
    }
    v->stopped = true;
    char *msg = g_strdup_printf("KVM: vCPU %d: %s", v->id, why);
    machine_request_fatal(msg);          /* prints msg, exit status 1 */
    g_free(msg);
    return VCPU_RUN_HALTED;
}

/* ---- kernel-irqchip=off: the CPU side of hw/pc's interrupt controllers (§3.5) ---- */

static void kvm_vcpu_kick(Machine *m, int id);

static bool kvm_on_vcpu_thread(KvmVcpu *v)
{
    return __atomic_load_n(&v->thread_known, __ATOMIC_ACQUIRE) &&
           pthread_equal(v->thread, pthread_self());
}

/*
 * The irqchip's kick hook (big lock held, any thread; include/kestrel/irqchip.h):
 * cpu has new pending work.  Its thread re-reads apic_pending() before the
 * next KVM_RUN; a thread inside KVM_RUN is kicked out, a halted one woken.
 */
static void kvm_irqchip_kick(Machine *m, int cpu)
{
    KvmVcpu *v = kvm_vcpu(m, cpu);
    if (!v) {
        return;
    }
    __atomic_store_n(&v->event_check, 1, __ATOMIC_SEQ_CST);
    if (!kvm_on_vcpu_thread(v)) {
        kvm_vcpu_kick(m, cpu);
    }
    cpus_wake(m);
}

/*
 * The guest's TSC for hw/pc/apic.c's TSC-deadline timer.  Its own vCPU
 * thread reads IA32_TSC from KVM and remembers the offset to the host TSC;
 * other threads (which may not issue vCPU ioctls, §7.4) add that offset.
 */
static uint64_t kvm_read_guest_tsc(int cpu)
{
    KvmVcpu *v = kvm_us_machine ? kvm_vcpu(kvm_us_machine, cpu) : NULL;
    if (!v) {
        return __rdtsc();
    }
    if (kvm_on_vcpu_thread(v)) {
        /* kvm_msrs ends in a flexible array: one entry on the stack, no malloc per read. */
        struct {
            struct kvm_msrs hdr;
            struct kvm_msr_entry entry;
        } req = { .hdr.nmsrs = 1, .entry.index = MSR_IA32_TSC };
        int r = kvm_ioctl(v->fd, KVM_GET_MSRS, &req);
        uint64_t tsc = req.entry.data;
        if (r == 1) {
            __atomic_store_n(&v->tsc_offset, (int64_t)(tsc - __rdtsc()), __ATOMIC_RELAXED);
            return tsc;
        }
    }
    return __rdtsc() + (uint64_t)__atomic_load_n(&v->tsc_offset, __ATOMIC_RELAXED);
}

void kvm_handle_apic_msr(int cpu, struct kvm_run *run)
{
    bool write = run->exit_reason == KVM_EXIT_X86_WRMSR;
    run->msr.error = 0;
    switch (run->msr.index) {
    case MSR_IA32_APICBASE:
        if (write) {
            run->msr.error = !apic_set_base(cpu, run->msr.data);   /* reserved bits: #GP */
        } else {
            run->msr.data = apic_get_base(cpu);
        }
        break;
    case MSR_IA32_TSC_DEADLINE:
        if (write) {
            apic_set_tsc_deadline(cpu, run->msr.data);
        } else {
            run->msr.data = apic_get_tsc_deadline(cpu);
        }
        break;
    default:
        /* Only the filtered MSRs exit here; anything else is KVM's business. */
        LOG(LOG_GUEST_ERROR, "kvm: vCPU %d: %s of MSR 0x%x exited to userspace: #GP\n", cpu,
            write ? "WRMSR" : "RDMSR", run->msr.index);
        run->msr.error = 1;
        break;
    }
}

/* INIT (SDM vol. 3A 9.1, table 9-1): registers to their INIT values, nothing queued. */
static bool kvm_vcpu_take_init(KvmState *s, KvmVcpu *v, GError **errp)
{
    X86CPUState x;
    kvm_vcpu_power_on_state(s, v, &x);
    x.apic_base = 0;                     /* INIT leaves IA32_APIC_BASE alone: keep KVM's */
    v->run->request_interrupt_window = 0;
    v->run->ready_for_interrupt_injection = 0;
    return kvm_set_x86(s, v, &x, errp);
}

/* Start-up IPI (SDM vol. 3A 8.4.4.1): real mode at CS = vector << 8, IP = 0. */
static bool kvm_vcpu_take_sipi(KvmState *s, KvmVcpu *v, uint8_t vector, GError **errp)
{
    X86CPUState x;
    if (!kvm_get_x86(s, v, &x, errp)) {
        return false;
    }
    x.seg[SEG_CS].selector = (uint16_t)(vector << 8);
    x.seg[SEG_CS].base = (uint64_t)vector << 12;
    x.rip = 0;
    return kvm_set_x86(s, v, &x, errp);
}

/*
 * Before KVM_RUN, big lock held: take what the userspace LAPIC has for this
 * CPU, in include/kestrel/irqchip.h's order (INIT, SIPI, NMI, INTR).  A
 * maskable interrupt is injected with KVM_INTERRUPT only when KVM said at
 * the last exit that the guest can take one (§3.5); otherwise KVM is asked
 * for an interrupt-window exit.  Returns false while the CPU stays out of
 * KVM_RUN (halted, or waiting for SIPI).
 */
static bool kvm_apic_events(KvmState *s, KvmVcpu *v)
{
    struct kvm_run *run = v->run;
    int id = v->id;
    GError *err = NULL;
    unsigned p = apic_pending(id);

    if (p & APIC_PENDING_INIT) {
        apic_take_event(id, APIC_PENDING_INIT);
        if (!kvm_vcpu_take_init(s, v, &err)) {
            goto fatal;
        }
        v->wait_sipi = true;
        v->halted = false;
        LOG(LOG_INT, "kvm: vCPU %d INIT, waiting for SIPI\n", id);
        p = apic_pending(id);
    }
    if (p & APIC_PENDING_SIPI) {
        uint8_t vector = apic_sipi_vector(id);
        apic_take_event(id, APIC_PENDING_SIPI);
        if (v->wait_sipi) {
            if (!kvm_vcpu_take_sipi(s, v, vector, &err)) {
                goto fatal;
            }
            v->wait_sipi = false;
            v->halted = false;
            LOG(LOG_INT, "kvm: vCPU %d SIPI vector 0x%02x\n", id, vector);
        }
    }
    v->cr8 = apic_get_tpr(id) >> 4;
    if (v->wait_sipi) {
        run->request_interrupt_window = 0;
        return false;
    }
    if (p & APIC_PENDING_SMI) {
        apic_take_event(id, APIC_PENDING_SMI);
        LOG(LOG_UNIMP, "kvm: vCPU %d: SMI dropped (no SMM with kernel-irqchip=off)\n", id);
    }
    if (p & APIC_PENDING_NMI) {
        apic_take_event(id, APIC_PENDING_NMI);
        if (s->cap_user_nmi && kvm_ioctl(v->fd, KVM_NMI, NULL) == 0) {
            v->halted = false;
        } else {
            LOG(LOG_UNIMP, "kvm: vCPU %d: NMI dropped (KVM_NMI: %s)\n", id, g_strerror(errno));
        }
    }
    bool window = false;
    if (p & APIC_PENDING_INTR) {
        if (v->halted && run->if_flag) {
            v->halted = false;           /* HLT ends on an interrupt the CPU will take */
        }
        if (!v->halted) {
            if (run->ready_for_interrupt_injection && run->if_flag) {
                int vector = apic_ack_intr(id);
                if (vector >= 0) {
                    struct kvm_interrupt irq = { .irq = (uint32_t)vector };
                    if (kvm_ioctl(v->fd, KVM_INTERRUPT, &irq) < 0) {
                        error_report("warning: KVM_INTERRUPT vector 0x%02x on vCPU %d: %s",
                                     vector, id, g_strerror(errno));
                    }
                    LOG(LOG_INT, "kvm: vCPU %d: inject vector 0x%02x\n", id, vector);
                    /* One at a time: KVM recomputes this at the next exit. */
                    run->ready_for_interrupt_injection = 0;
                    window = (apic_pending(id) & APIC_PENDING_INTR) != 0;
                }
            } else {
                window = true;
            }
        }
    }
    run->request_interrupt_window = window;
    return !v->halted;

fatal:
    machine_request_fatal(err->message);
    g_error_free(err);
    v->stopped = true;
    return false;
}

/*
 * After KVM_RUN: CR8 writes the guest made without exiting (and, without
 * the MSR filter, IA32_APIC_BASE writes KVM kept) go to the userspace LAPIC.
 */
static void kvm_apic_after_run(KvmState *s, KvmVcpu *v)
{
    struct kvm_run *run = v->run;
    bool tpr = (run->cr8 & 0xf) != v->cr8;
    bool base = !s->msr_filter && run->apic_base != v->apic_base;
    if (!tpr && !base) {
        return;
    }
    bql_lock();
    if (tpr) {
        v->cr8 = run->cr8 & 0xf;
        apic_set_tpr(v->id, (uint8_t)(v->cr8 << 4));
    }
    if (base) {
        v->apic_base = run->apic_base;
        if (!apic_set_base(v->id, v->apic_base)) {
            LOG(LOG_GUEST_ERROR, "kvm: vCPU %d: APIC base 0x%" PRIx64 " refused\n", v->id,
                (uint64_t)v->apic_base);
        }
    }
    bql_unlock();
    __atomic_store_n(&v->event_check, 1, __ATOMIC_SEQ_CST);   /* a lower TPR may unmask */
}

static VcpuRunResult kvm_vcpu_run(Machine *m, int id)
{
    KvmState *s = kvm_state(m);
    KvmVcpu *v = kvm_vcpu(m, id);
    if (!v || !v->run) {
        return VCPU_RUN_HALTED;
    }
    struct kvm_run *run = v->run;

    if (v->stopped) {
        return VCPU_RUN_HALTED;          /* until reset() */
    }
    for (;;) {
        /*
         * Clear a stale kick before looking at the stop flag: cpus.c sets
         * the flag before kicking, so a kick we clear here is one whose
         * reason we are about to see.
         */
        __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        if (cpus_should_stop(m, id)) {
            if (!v->io_pending) {
                return VCPU_RUN_AGAIN;
            }
            /*
             * §2.1: re-enter once so KVM finishes the IN/MMIO instruction
             * and returns EINTR before running guest code; the parked
             * state is then whole.  (A long string I/O may exit once more
             * first: that exit is handled below and we come back here.)
             */
            if (s->cap_immediate_exit) {
                __atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
            } else {
                pthread_kill(pthread_self(), KVM_KICK_SIGNAL);  /* pending until KVM_RUN */
            }
        } else if (s->userspace_irqchip) {
            /* Consume the kick flag before looking, so a later kick is never lost. */
            bool check = __atomic_exchange_n(&v->event_check, 0, __ATOMIC_SEQ_CST);
            if (check || v->halted || v->wait_sipi) {
                bql_lock();
                bool runnable = kvm_apic_events(s, v);
                bql_unlock();
                if (!runnable) {
                    return VCPU_RUN_HALTED;     /* cpus.c sleeps until a kick wakes it */
                }
            }
        }
        if (s->userspace_irqchip) {
            run->cr8 = v->cr8;              /* KVM loads CR8 from here on every entry */
        }

        int r = kvm_ioctl(v->fd, KVM_RUN, NULL);
        if (s->userspace_irqchip) {
            kvm_apic_after_run(s, v);
        }
        if (r < 0) {
            int err = errno;
            if (err == EINTR || err == EAGAIN) {
                /* Kick, signal, or an AP woken from UNINITIALIZED: pending I/O is done. */
                v->io_pending = false;
                if (!s->cap_immediate_exit) {
                    kvm_eat_kicks();
                }
                return VCPU_RUN_AGAIN;
            }
            char *why = g_strdup_printf("KVM_RUN failed: %s", g_strerror(err));
            VcpuRunResult res = kvm_vcpu_fatal(m, v, why);
            g_free(why);
            return res;
        }
        v->io_pending = false;

        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            bql_lock();
            bool ok = kvm_handle_io(run, v->run_size);
            bql_unlock();
            if (!ok) {
                return kvm_vcpu_fatal(m, v, "malformed KVM_EXIT_IO data");
            }
            v->io_pending = true;
            break;
        }
        case KVM_EXIT_MMIO: {
            bql_lock();
            bool ok = kvm_handle_mmio(m->as, run);
            if (s->userspace_irqchip) {
                v->cr8 = apic_get_tpr(id) >> 4;   /* the access may have been a TPR write */
            }
            bql_unlock();
            if (!ok) {
                return kvm_vcpu_fatal(m, v, "malformed KVM_EXIT_MMIO data");
            }
            v->io_pending = true;
            break;
        }
        case KVM_EXIT_INTR:
            return VCPU_RUN_AGAIN;
        case KVM_EXIT_HLT:
            /* Only without the in-kernel LAPIC: RIP is past the HLT; sleep until an event. */
            if (!s->userspace_irqchip) {
                return VCPU_RUN_HALTED;
            }
            v->halted = true;
            break;
        case KVM_EXIT_IRQ_WINDOW_OPEN:
            /* §3.5: asked for with request_interrupt_window; inject before re-entering. */
            __atomic_store_n(&v->event_check, 1, __ATOMIC_SEQ_CST);
            break;
        case KVM_EXIT_SET_TPR:
            break;                       /* CR8 lowered: kvm_apic_after_run took it */
        case KVM_EXIT_X86_RDMSR:
        case KVM_EXIT_X86_WRMSR:
            bql_lock();
            kvm_handle_apic_msr(id, run);
            bql_unlock();
            v->io_pending = true;        /* KVM completes the RDMSR/WRMSR on the next KVM_RUN */
            break;
        case KVM_EXIT_SHUTDOWN:
            /* §7.11: triple fault = system reset; the vCPU state is garbage meanwhile. */
            v->stopped = true;
            machine_request_cpu_shutdown(id);
            return VCPU_RUN_HALTED;
        case KVM_EXIT_SYSTEM_EVENT:
            switch (run->system_event.type) {
            case KVM_SYSTEM_EVENT_SHUTDOWN:
                v->stopped = true;
                machine_request_poweroff();
                return VCPU_RUN_HALTED;
            case KVM_SYSTEM_EVENT_RESET:
                v->stopped = true;
                machine_request_reset();
                return VCPU_RUN_HALTED;
            case KVM_SYSTEM_EVENT_CRASH:
                return kvm_vcpu_fatal(m, v, "guest reported a crash (KVM_SYSTEM_EVENT_CRASH)");
            default:
                LOG(LOG_UNIMP, "kvm: vCPU %d: system event %u ignored\n", id,
                    run->system_event.type);
                break;
            }
            break;
        case KVM_EXIT_INTERNAL_ERROR: {
            GString *why = g_string_new(NULL);
            g_string_printf(why, "KVM internal error, suberror %u: %s",
                            run->internal.suberror,
                            internal_suberror_name(run->internal.suberror));
            for (uint32_t i = 0; i < run->internal.ndata && i < ARRAY_LEN(run->internal.data);
                 i++) {
                g_string_append_printf(why, "%s0x%" PRIx64, i ? " " : "; data ",
                                       (uint64_t)run->internal.data[i]);
            }
            VcpuRunResult res = kvm_vcpu_fatal(m, v, why->str);
            g_string_free(why, true);
            return res;
        }
        case KVM_EXIT_FAIL_ENTRY: {
            char *why = g_strdup_printf("VM entry failed, hardware reason 0x%" PRIx64
                                        " on host CPU %u (0x80000021 = invalid guest state)",
                                        (uint64_t)run->fail_entry.hardware_entry_failure_reason,
                                        run->fail_entry.cpu);
            VcpuRunResult res = kvm_vcpu_fatal(m, v, why);
            g_free(why);
            return res;
        }
        case KVM_EXIT_IOAPIC_EOI:
            break;                       /* not requested; nothing to do */
        case KVM_EXIT_DEBUG:
            LOG(LOG_UNIMP, "kvm: vCPU %d: unexpected debug exit ignored\n", id);
            break;
        default: {
            char *why = g_strdup_printf("unhandled KVM exit reason %u%s", run->exit_reason,
                                        run->exit_reason == KVM_EXIT_UNKNOWN
                                            ? " (KVM_EXIT_UNKNOWN)" : "");
            if (run->exit_reason == KVM_EXIT_UNKNOWN) {
                g_free(why);
                why = g_strdup_printf("KVM_EXIT_UNKNOWN, hardware exit reason 0x%" PRIx64,
                                      (uint64_t)run->hw.hardware_exit_reason);
            }
            VcpuRunResult res = kvm_vcpu_fatal(m, v, why);
            g_free(why);
            return res;
        }
        }
    }
}

static void kvm_vcpu_kick(Machine *m, int id)
{
    KvmState *s = kvm_state(m);
    if (!s) {
        return;
    }
    if (id < 0) {
        for (int i = 0; i < s->nr_vcpus; i++) {
            kvm_vcpu_kick(m, i);
        }
        return;
    }
    KvmVcpu *v = kvm_vcpu(m, id);
    if (!v || !v->run || !__atomic_load_n(&v->thread_known, __ATOMIC_ACQUIRE)) {
        return;
    }
    if (s->cap_immediate_exit) {
        __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    }
    pthread_kill(v->thread, KVM_KICK_SIGNAL);
}

static void kvm_set_irq(Machine *m, int gsi, int level)
{
    KvmState *s = kvm_state(m);
    if (!s || s->userspace_irqchip || gsi < 0 || gsi >= MACHINE_NUM_GSI) {
        return;                          /* userspace irqchip: the board already routed it */
    }
    /* §3.1: level 1 = asserted; our routing sends GSI 0 to PIC pin 0 and IOAPIC pin 2. */
    struct kvm_irq_level irq;
    memset(&irq, 0, sizeof(irq));
    irq.irq = gsi;
    irq.level = level ? 1 : 0;
    if (kvm_ioctl(s->vm_fd, KVM_IRQ_LINE, &irq) < 0) {
        static bool warned;
        if (!warned) {
            warned = true;
            error_report("warning: KVM_IRQ_LINE gsi %d: %s", gsi, g_strerror(errno));
        }
    }
}

/* kvm-api.md: KVM_SIGNAL_MSI delivers one message through the in-kernel LAPICs. */
static void kvm_send_msi(Machine *m, uint64_t addr, uint32_t data)
{
    KvmState *s = kvm_state(m);
    if (!s)
        return;
    struct kvm_msi msi;
    memset(&msi, 0, sizeof(msi));
    msi.address_lo = (uint32_t)addr;
    msi.address_hi = (uint32_t)(addr >> 32);
    msi.data = data;
    if (kvm_ioctl(s->vm_fd, KVM_SIGNAL_MSI, &msi) < 0) {
        static bool warned;
        if (!warned) {
            warned = true;
            error_report("warning: KVM_SIGNAL_MSI: %s", g_strerror(errno));
        }
    }
}

static void kvm_reset(Machine *m)
{
    KvmState *s = kvm_state(m);
    GError *err = NULL;
    if (!s) {
        return;
    }

    /* §7.11: interrupt controllers and PIT back to the state KVM created them in. */
    if (s->have_reset_irqchip) {
        for (int chip = 0; chip < 3; chip++) {
            struct kvm_irqchip c = s->reset_irqchip[chip];
            if (kvm_ioctl(s->vm_fd, KVM_SET_IRQCHIP, &c) < 0) {
                error_report("warning: KVM_SET_IRQCHIP %d at reset: %s", chip, g_strerror(errno));
            }
        }
    }
    if (s->have_reset_pit) {
        struct kvm_pit_state2 p = s->reset_pit;
        if (kvm_ioctl(s->vm_fd, KVM_SET_PIT2, &p) < 0) {
            error_report("warning: KVM_SET_PIT2 at reset: %s", g_strerror(errno));
        }
    }

    for (int i = 0; i < s->nr_vcpus; i++) {
        KvmVcpu *v = s->vcpus[i];
        if (v && !kvm_vcpu_reset(m, v, &err)) {
            goto fatal;
        }
    }
    if (m->bsp_state_valid && s->nr_vcpus > 0 && s->vcpus[0]) {
        /* Direct kernel boot: the loader's entry state on the BSP. */
        if (!kvm_set_x86(s, s->vcpus[0], &m->bsp_state, &err)) {
            goto fatal;
        }
    }
    return;

fatal:
    machine_request_fatal(err->message);
    g_error_free(err);
}

static bool kvm_get_regs(Machine *m, int id, X86CPUState *x)
{
    KvmVcpu *v = kvm_vcpu(m, id);
    GError *err = NULL;
    if (!v) {
        return false;
    }
    if (!kvm_get_x86(kvm_state(m), v, x, &err)) {
        error_report("%s", err->message);
        g_error_free(err);
        return false;
    }
    return true;
}

static bool kvm_set_regs(Machine *m, int id, const X86CPUState *x)
{
    KvmVcpu *v = kvm_vcpu(m, id);
    GError *err = NULL;
    if (!v) {
        return false;
    }
    if (!kvm_set_x86(kvm_state(m), v, x, &err)) {
        error_report("%s", err->message);
        g_error_free(err);
        return false;
    }
    return true;
}

static void kvm_cleanup(Machine *m)
{
    KvmState *s = kvm_state(m);
    if (s && s->userspace_irqchip && kvm_us_machine == m) {
        irqchip_set_kick(NULL);
        apic_set_tsc_reader(NULL);
        kvm_us_machine = NULL;
    }
    kvm_state_free(s);
    m->accel_state = NULL;
}

/* The in-kernel PIC/IOAPIC/LAPIC/PIT, unless kernel-irqchip=off (then hw/pc's). */
static bool kvm_has_kernel_irqchip(Machine *m)
{
    return m->cfg->kernel_irqchip;
}

static const AccelOps kvm_accel_ops = {
    .name = "kvm",
    .probe = kvm_probe,
    .caveat = kvm_caveat,
    .init = kvm_init,
    .vcpu_init = kvm_vcpu_init,
    .vcpu_thread_init = kvm_vcpu_thread_init,
    .vcpu_run = kvm_vcpu_run,
    .vcpu_kick = kvm_vcpu_kick,
    .set_irq = kvm_set_irq,
    .send_msi = kvm_send_msi,
    .reset = kvm_reset,
    .get_regs = kvm_get_regs,
    .set_regs = kvm_set_regs,
    .cleanup = kvm_cleanup,
    .has_kernel_irqchip = kvm_has_kernel_irqchip,
    .single_thread = false,
    .has_cpu = true,
};

ACCEL_REGISTER(kvm_accel_ops)
