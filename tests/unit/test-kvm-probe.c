/*
 * Can KVM run here, and if not, does Kestrel say why in one line?
 *
 * Without /dev/kvm (this machine, CI) the probe must fail with one line
 * naming the cause; the explanations for each cause (module missing, no
 * VT-x/AMD-V, nested VM, permissions) are checked with fake inputs.  Where
 * /dev/kvm exists the test opens it and checks the API version and the
 * probe's verdict; otherwise that case prints SKIP.
 *
 * The second half drives the whole accelerator (init, vcpu_init, reset,
 * vcpu_run, kick, set_irq, get/set_regs, cleanup) against a fake /dev/kvm
 * that checks the kernel's ordering rules (kvm-api.md §1.1, §7.3) and plays
 * scripted KVM_RUN exits, so the ioctl sequence is exercised without KVM.
 */
#include "accel/kvm/kvm-internal.h"
#include "kestrel/accel.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/irqchip.h"
#include "kestrel/lock.h"
#include "tests/testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static void check_one_line(const char *what, const char *s)
{
    CHECK_MSG(s && *s, "%s: empty explanation", what);
    CHECK_MSG(!strchr(s, '\n'), "%s: more than one line: \"%s\"", what, s);
    CHECK_MSG(strlen(s) < 240, "%s: too long for one line (%zu chars)", what, strlen(s));
}

static void test_kvm_accel_registered(void)
{
    const AccelOps *ops = accel_find("kvm");
    CHECK(ops != NULL);
    CHECK_STREQ("name", "kvm", ops->name);
    CHECK(ops->has_cpu);
    CHECK(!ops->single_thread);
    CHECK(ops->probe && ops->init && ops->vcpu_init && ops->vcpu_run && ops->vcpu_kick &&
          ops->set_irq && ops->reset && ops->get_regs && ops->set_regs && ops->cleanup &&
          ops->vcpu_thread_init);
}

static void test_probe_without_dev_kvm_says_why(void)
{
    if (access(KVM_DEV_PATH, F_OK) == 0) {
        test_skip(KVM_DEV_PATH " exists on this host (covered by test_probe_with_dev_kvm)");
    }
    char *why = NULL;
    CHECK(!accel_find("kvm")->probe(&why));
    check_one_line("probe", why);
    CHECK_MSG(g_str_has_prefix(why, "/dev/kvm does not exist"), "got \"%s\"", why);
    CHECK_MSG(strstr(why, "kmod/kvm-check"), "no pointer to kmod/kvm-check: \"%s\"", why);
    printf("# probe says: %s\n", why);
    g_free(why);
    /* NULL why is allowed */
    CHECK(!accel_find("kvm")->probe(NULL));
}

static void test_probe_with_dev_kvm(void)
{
    int fd = open(KVM_DEV_PATH, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        test_skip("no " KVM_DEV_PATH " on this host (module not loaded or no VT-x/AMD-V)");
    }
    char *why = NULL;
    bool ok = accel_find("kvm")->probe(&why);
    if (fd < 0) {
        int err = errno;
        CHECK(!ok);
        check_one_line("probe", why);
        if (err == EACCES) {
            CHECK_MSG(strstr(why, "'kvm' group"), "got \"%s\"", why);
        }
        g_free(why);
        return;
    }
    int api = ioctl(fd, KVM_GET_API_VERSION, 0);
    close(fd);
    CHECK_EQ("KVM_GET_API_VERSION", KVM_EXPECTED_API, api);
    if (!ok) {
        check_one_line("probe", why);
        CHECK_MSG(strstr(why, "KVM_CAP_"), "usable /dev/kvm but probe said \"%s\"", why);
    }
    g_free(why);
}

static void test_cpuinfo_flags_parsed(void)
{
    const char *intel = "processor\t: 0\nvendor_id\t: GenuineIntel\n"
                        "flags\t\t: fpu vme de pse tsc msr vmx smx est\n"
                        "bugs\t\t: spectre_v1\n";
    KvmCpuinfo ci = kvm_parse_cpuinfo(intel);
    CHECK(ci.readable && ci.vmx && !ci.svm && !ci.hypervisor);

    const char *amd_guest = "flags\t\t: fpu svm hypervisor lahf_lm\n";
    ci = kvm_parse_cpuinfo(amd_guest);
    CHECK(ci.svm && ci.hypervisor && !ci.vmx);

    /* "vmx" inside another word or another field does not count */
    ci = kvm_parse_cpuinfo("vmx flags\t: fpu\nflags\t\t: vmxnot svmlike\n");
    CHECK(!ci.vmx && !ci.svm);
    ci = kvm_parse_cpuinfo(NULL);
    CHECK(!ci.readable);
}

/* PVM-style hosts: /dev/kvm works, but no VT-x/AMD-V is under it. */
static void test_software_only_kvm_named_only_without_vmx_svm(void)
{
    KvmCpuinfo pvm = { .readable = true, .hypervisor = true };
    char *s = kvm_explain_software_only(&pvm);
    CHECK_MSG(s != NULL, "no caveat for a CPU without vmx/svm");
    if (s) {
        check_one_line("software-only", s);
        CHECK_MSG(strstr(s, "software-only") && strstr(s, "no vmx/svm") &&
                  strstr(s, "-accel tcg"), "got \"%s\"", s);
    }
    g_free(s);

    KvmCpuinfo vmx = { .readable = true, .vmx = true, .hypervisor = true };
    KvmCpuinfo svm = { .readable = true, .svm = true };
    KvmCpuinfo unknown = { .readable = false };
    CHECK_MSG(kvm_explain_software_only(&vmx) == NULL, "nested VT-x is hardware KVM");
    CHECK_MSG(kvm_explain_software_only(&svm) == NULL, "AMD-V is hardware KVM");
    CHECK_MSG(kvm_explain_software_only(&unknown) == NULL,
              "an unreadable cpuinfo must not demote KVM");
    CHECK(kvm_explain_software_only(NULL) == NULL);
}

static void test_explain_module_or_cpu(void)
{
    char *s = kvm_explain_open_error(ENOENT, NULL);
    CHECK_STREQ("unknown cpuinfo",
                "/dev/kvm does not exist (kvm module not loaded, or no VT-x/AMD-V: "
                "see kmod/kvm-check)", s);
    g_free(s);

    KvmCpuinfo vmx = { .readable = true, .vmx = true };
    s = kvm_explain_open_error(ENOENT, &vmx);
    check_one_line("vmx", s);
    CHECK_MSG(strstr(s, "modprobe kvm_intel") && strstr(s, "VT-x"), "got \"%s\"", s);
    g_free(s);

    KvmCpuinfo svm = { .readable = true, .svm = true };
    s = kvm_explain_open_error(ENOENT, &svm);
    CHECK_MSG(strstr(s, "modprobe kvm_amd") && strstr(s, "AMD-V"), "got \"%s\"", s);
    g_free(s);

    KvmCpuinfo guest = { .readable = true, .hypervisor = true };
    s = kvm_explain_open_error(ENOENT, &guest);
    check_one_line("nested", s);
    CHECK_MSG(strstr(s, "nested") && strstr(s, "no vmx/svm"), "got \"%s\"", s);
    g_free(s);

    KvmCpuinfo bare = { .readable = true };
    s = kvm_explain_open_error(ENOENT, &bare);
    CHECK_MSG(strstr(s, "firmware"), "got \"%s\"", s);
    g_free(s);
}

static void test_explain_permission(void)
{
    char *s = kvm_explain_open_error(EACCES, NULL);
    check_one_line("EACCES", s);
    CHECK_MSG(strstr(s, "permission denied") && strstr(s, "'kvm' group"), "got \"%s\"", s);
    g_free(s);
    s = kvm_explain_open_error(EIO, NULL);
    check_one_line("EIO", s);
    CHECK_MSG(g_str_has_prefix(s, "/dev/kvm: "), "got \"%s\"", s);
    g_free(s);
}

/* A fake /dev/kvm answering KVM_CHECK_EXTENSION: everything but PIT2 and HLT. */
static int fake_check_extension(int fd, unsigned long req, void *arg)
{
    if (req != KVM_CHECK_EXTENSION) {
        errno = ENOTTY;
        return -1;
    }
    int cap = (int)(uintptr_t)arg;
    return cap == KVM_CAP_PIT2 || cap == KVM_CAP_HLT ? 0 : 1;
}

static int fake_all_caps(int fd, unsigned long req, void *arg)
{
    return req == KVM_CHECK_EXTENSION ? 1 : -1;
}

static void test_missing_caps_named(void)
{
    kvm_ioctl_fn = fake_check_extension;
    char *s = kvm_check_required_caps(-1);
    kvm_ioctl_fn = kvm_ioctl_real;
    check_one_line("caps", s);
    CHECK_MSG(strstr(s, "KVM_CAP_PIT2") && strstr(s, "KVM_CAP_HLT"), "got \"%s\"", s);
    CHECK_MSG(!strstr(s, "KVM_CAP_USER_MEMORY"), "present cap listed: \"%s\"", s);
    g_free(s);

    kvm_ioctl_fn = fake_all_caps;
    s = kvm_check_required_caps(-1);
    kvm_ioctl_fn = kvm_ioctl_real;
    CHECK_MSG(s == NULL, "all caps present but got \"%s\"", s ? s : "");
}

static MachineConfig *test_config(void)
{
    MachineConfig *cfg = g_new0(MachineConfig, 1);
    cfg->kernel_irqchip = true;
    cfg->smp_cpus = 1;
    return cfg;
}

/*
 * kernel-irqchip=off on the real /dev/kvm: the VM comes up without KVM's
 * irqchip (the board then builds hw/pc's), a vCPU can be created and reset,
 * and the engine tells the board to build the userspace chips.
 */
static void test_init_kernel_irqchip_off_initialises(void)
{
    int fd = open(KVM_DEV_PATH, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        test_skip("cannot open " KVM_DEV_PATH " here (%s); the fake-KVM test "
                  "test_fake_kvm_userspace_irqchip covers the ioctl sequence", g_strerror(errno));
    }
    close(fd);
    CHECK(kvm_ioctl_fn == kvm_ioctl_real);
    Machine m = { 0 };
    m.cfg = test_config();
    m.cfg->kernel_irqchip = false;
    m.smp_cpus = 1;
    GError *err = NULL;
    const AccelOps *kvm = accel_find("kvm");
    CHECK_MSG(kvm->init(&m, &err), "init with kernel-irqchip=off: %s",
              err ? err->message : "?");
    KvmState *st = m.accel_state;
    CHECK(st != NULL);
    CHECK(st->userspace_irqchip);
    CHECK_MSG(!kvm->has_kernel_irqchip(&m), "board would not build the userspace chips");
    /* No in-kernel irqchip exists, so KVM refuses its state (api.rst "KVM_GET_IRQCHIP"). */
    struct kvm_irqchip chip = { .chip_id = 0 };
    CHECK_MSG(ioctl(st->vm_fd, KVM_GET_IRQCHIP, &chip) < 0, "KVM has an in-kernel PIC");
    CHECK_MSG(kvm->vcpu_init(&m, 0, &err), "vcpu_init: %s", err ? err->message : "?");
    /* ... and no in-kernel LAPIC either (api.rst "KVM_GET_LAPIC": ENXIO). */
    struct kvm_lapic_state lapic;
    CHECK_MSG(ioctl(st->vcpus[0]->fd, KVM_GET_LAPIC, &lapic) < 0, "KVM has an in-kernel LAPIC");
    kvm->cleanup(&m);
    CHECK(m.accel_state == NULL);
    g_clear_error(&err);
}

static void test_init_bad_cpu_option_reported_first(void)
{
    Machine m = { 0 };
    m.cfg = test_config();
    m.cfg->cpu_model = g_strdup("kestrel64,+avx,+hyperdrive");
    m.smp_cpus = 1;
    GError *err = NULL;
    CHECK(!accel_find("kvm")->init(&m, &err));
    CHECK_MSG(err && strstr(err->message, "'hyperdrive'"), "got \"%s\"",
              err ? err->message : "(no error)");
    g_clear_error(&err);
}

static void test_init_without_dev_kvm_fails_with_reason(void)
{
    if (access(KVM_DEV_PATH, F_OK) == 0) {
        test_skip(KVM_DEV_PATH " exists on this host");
    }
    Machine m = { 0 };
    m.cfg = test_config();
    m.smp_cpus = 1;
    GError *err = NULL;
    CHECK(!accel_find("kvm")->init(&m, &err));
    CHECK_MSG(err && strstr(err->message, "/dev/kvm does not exist"), "got \"%s\"",
              err ? err->message : "(no error)");
    CHECK(m.accel_state == NULL);
    g_clear_error(&err);
    /* the other entry points tolerate an engine that never started */
    X86CPUState s;
    CHECK(!accel_find("kvm")->get_regs(&m, 0, &s));
    accel_find("kvm")->set_irq(&m, 4, 1);
    accel_find("kvm")->vcpu_kick(&m, 0);
    accel_find("kvm")->reset(&m);
    accel_find("kvm")->cleanup(&m);
}


/* ---- a fake /dev/kvm ---- */

#define FK_MAX_VCPUS 4

typedef int (*FakeRunScript)(int id, struct kvm_run *run, int call);

static struct FakeKvm {
    int sys_fd, vm_fd;
    int nvcpus;
    int vcpu_fd[FK_MAX_VCPUS];
    struct kvm_run *run[FK_MAX_VCPUS];
    bool irqchip, pit;
    uint32_t pit_flags;
    uint64_t idmap, tss;
    int routes;
    int irqchip_sets, pit_sets;
    struct kvm_userspace_memory_region slots[8];
    int nslots;
    struct {
        bool cpuid_set, ran, run_before_cpuid;
        uint32_t cpuid_1_eax, cpuid_nent;
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        struct kvm_debugregs dregs;
        struct kvm_lapic_state lapic;
        int mp_state;
        int msrs_set;
        uint16_t fcw;
        uint32_t mxcsr;
        uint64_t xcr0;
    } v[FK_MAX_VCPUS];
    int irq_lines;
    struct kvm_irq_level last_irq;
    FakeRunScript script;
    int run_calls;
    const char *violation;     /* first ordering rule broken */
    bool no_immediate_exit;    /* pretend an old kernel */
    bool no_user_msr;          /* pretend a kernel before KVM_CAP_X86_USER_SPACE_MSR */
    uint32_t sigmask_len;
    uint64_t sigmask;
    int immediate_exit_runs;   /* KVM_RUN entered with immediate_exit set */
    uint64_t user_msr_reasons; /* KVM_CAP_X86_USER_SPACE_MSR args[0] */
    int filter_ranges;         /* KVM_X86_SET_MSR_FILTER */
    struct {
        uint32_t flags, nmsrs, base;
        uint8_t bits;
    } filter[4];
    int lapic_sets;
    int interrupt_eexist;      /* KVM_INTERRUPT while one was queued */
    struct {
        bool irq_queued;
        int injected[8];
        int ninjected;
        int nmis;
        uint32_t cpuid_1_ecx;
    } u[FK_MAX_VCPUS];
} fk;

static int fk_memfd(size_t size)
{
    int fd = memfd_create("fake-kvm", MFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, size) == 0);
    return fd;
}

static int fk_open(const char *path, int flags)
{
    CHECK_STREQ("path", KVM_DEV_PATH, path);
    CHECK(flags & O_RDWR);
    fk.sys_fd = fk_memfd(4096);
    return fk.sys_fd;
}

static int fk_cap(int cap)
{
    switch (cap) {
    case KVM_CAP_NR_MEMSLOTS: return 8;
    case KVM_CAP_NR_VCPUS: return 4;
    case KVM_CAP_MAX_VCPUS: return FK_MAX_VCPUS;
    case KVM_CAP_MAX_VCPU_ID: return FK_MAX_VCPUS;
    case KVM_CAP_IMMEDIATE_EXIT: return fk.no_immediate_exit ? 0 : 1;
    case KVM_CAP_X86_USER_SPACE_MSR: return fk.no_user_msr ? 0 : 7;
    case KVM_CAP_X86_MSR_FILTER: return fk.no_user_msr ? 0 : 1;
    default: return 1;
    }
}

static int fk_fail(int err)
{
    errno = err;
    return -1;
}

static void fk_violation(const char *what)
{
    if (!fk.violation) {
        fk.violation = what;
    }
}

static int fk_sys(unsigned long req, void *arg)
{
    switch (req) {
    case KVM_GET_API_VERSION:
        return 12;
    case KVM_CHECK_EXTENSION:
        return fk_cap((int)(uintptr_t)arg);
    case KVM_GET_VCPU_MMAP_SIZE:
        return 3 * 4096;
    case KVM_CREATE_VM:
        fk.vm_fd = fk_memfd(4096);
        return fk.vm_fd;
    case KVM_GET_SUPPORTED_CPUID: {
        static const struct kvm_cpuid_entry2 sup[] = {
            { .function = 0, .eax = 0xd, .ebx = 0x756e6547 },
            { .function = 1, .eax = 0x906ea, .ebx = 0x800, .ecx = 0x80b82201,
              .edx = 0x0f8bfbff },
            { .function = 0x80000000, .eax = 0x80000008 },
            { .function = 0x80000001, .ecx = 1, .edx = 0x20100800 },
            { .function = 0x80000008, .eax = 0x3027 },
            { .function = 0x40000001, .eax = 0x0100000b },
        };
        struct kvm_cpuid2 *c = arg;
        if (c->nent < 70) {               /* force one E2BIG round (§1.7) */
            return fk_fail(E2BIG);
        }
        memcpy(c->entries, sup, sizeof(sup));
        c->nent = ARRAY_LEN(sup);
        return 0;
    }
    case KVM_GET_MSR_INDEX_LIST: {
        struct kvm_msr_list *l = arg;
        if (l->nmsrs < 3) {
            l->nmsrs = 3;
            return fk_fail(E2BIG);
        }
        l->nmsrs = 3;
        l->indices[0] = MSR_IA32_TSC;
        l->indices[1] = MSR_IA32_MISC_ENABLE;
        l->indices[2] = MSR_LSTAR;
        return 0;
    }
    }
    return fk_fail(ENOTTY);
}

static int fk_vm(unsigned long req, void *arg)
{
    switch (req) {
    case KVM_CHECK_EXTENSION:
        return fk_cap((int)(uintptr_t)arg);
    case KVM_SET_IDENTITY_MAP_ADDR:
        if (fk.nvcpus) {
            fk_violation("identity map after KVM_CREATE_VCPU");
            return fk_fail(EINVAL);
        }
        fk.idmap = *(uint64_t *)arg;
        return 0;
    case KVM_SET_TSS_ADDR:
        fk.tss = (uintptr_t)arg;
        return 0;
    case KVM_CREATE_IRQCHIP:
        if (fk.nvcpus) {
            fk_violation("KVM_CREATE_IRQCHIP after KVM_CREATE_VCPU");
            return fk_fail(EINVAL);
        }
        if (fk.irqchip) {
            return fk_fail(EEXIST);
        }
        fk.irqchip = true;
        return 0;
    case KVM_CREATE_PIT2:
        if (!fk.irqchip) {
            fk_violation("KVM_CREATE_PIT2 before KVM_CREATE_IRQCHIP");
            return fk_fail(ENOENT);
        }
        fk.pit = true;
        fk.pit_flags = ((struct kvm_pit_config *)arg)->flags;
        return 0;
    case KVM_SET_GSI_ROUTING:
        if (!fk.irqchip) {
            return fk_fail(ENXIO);
        }
        fk.routes = ((struct kvm_irq_routing *)arg)->nr;
        return 0;
    case KVM_GET_IRQCHIP:
    case KVM_GET_PIT2:
        return 0;
    case KVM_SET_IRQCHIP:
        fk.irqchip_sets++;
        return 0;
    case KVM_SET_PIT2:
        fk.pit_sets++;
        return 0;
    case KVM_SET_USER_MEMORY_REGION:
        if (fk.nslots < 8) {
            fk.slots[fk.nslots++] = *(struct kvm_userspace_memory_region *)arg;
        }
        return 0;
    case KVM_CREATE_VCPU: {
        int id = (int)(uintptr_t)arg;
        if (id < 0 || id >= FK_MAX_VCPUS || fk.nvcpus >= FK_MAX_VCPUS) {
            return fk_fail(EINVAL);
        }
        int fd = fk_memfd(3 * 4096);
        fk.vcpu_fd[id] = fd;
        fk.run[id] = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        CHECK(fk.run[id] != MAP_FAILED);
        fk.nvcpus++;
        /* KVM's creation-time RESET (§1.9) */
        fk.v[id].regs.rdx = 0x600;
        fk.v[id].regs.rip = 0xfff0;
        fk.v[id].sregs.cs.selector = 0xf000;
        fk.v[id].sregs.cs.base = 0xffff0000;
        fk.v[id].sregs.tr.type = 0xb;
        fk.v[id].sregs.tr.present = 1;
        fk.v[id].sregs.apic_base = 0xfee00800 | (id == 0 ? 0x100 : 0);
        kvm_lapic_set_reg(&fk.v[id].lapic, APIC_LVR, 0x50014);
        fk.v[id].mp_state = id == 0 ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED;
        return fd;
    }
    case KVM_ENABLE_CAP: {
        struct kvm_enable_cap *c = arg;
        if (c->cap != KVM_CAP_X86_USER_SPACE_MSR) {
            return fk_fail(EINVAL);
        }
        fk.user_msr_reasons = c->args[0];
        return 0;
    }
    case KVM_X86_SET_MSR_FILTER: {
        struct kvm_msr_filter *f = arg;
        fk.filter_ranges = 0;
        for (int i = 0; i < KVM_MSR_FILTER_MAX_RANGES && f->ranges[i].nmsrs; i++) {
            if (fk.filter_ranges < 4) {
                fk.filter[fk.filter_ranges].flags = f->ranges[i].flags;
                fk.filter[fk.filter_ranges].nmsrs = f->ranges[i].nmsrs;
                fk.filter[fk.filter_ranges].base = f->ranges[i].base;
                fk.filter[fk.filter_ranges].bits = f->ranges[i].bitmap[0];
            }
            fk.filter_ranges++;
        }
        return 0;
    }
    case KVM_IRQ_LINE:
        if (!fk.irqchip) {
            fk_violation("KVM_IRQ_LINE without KVM_CREATE_IRQCHIP");
            return fk_fail(ENXIO);
        }
        fk.irq_lines++;
        fk.last_irq = *(struct kvm_irq_level *)arg;
        return 0;
    }
    return fk_fail(ENOTTY);
}

static int fk_vcpu(int id, unsigned long req, void *arg)
{
    typeof(fk.v[0]) *v = &fk.v[id];
    switch (req) {
    case KVM_SET_CPUID2: {
        if (v->ran) {
            return fk_fail(EBUSY);        /* §7.5 */
        }
        struct kvm_cpuid2 *c = arg;
        struct kvm_cpuid_entry2 *l1 = kvm_cpuid_find(c, 1, 0);
        v->cpuid_1_eax = l1 ? l1->eax : 0;
        fk.u[id].cpuid_1_ecx = l1 ? l1->ecx : 0;
        v->cpuid_nent = c->nent;
        v->cpuid_set = true;
        return 0;
    }
    case KVM_GET_REGS: *(struct kvm_regs *)arg = v->regs; return 0;
    case KVM_SET_REGS: v->regs = *(struct kvm_regs *)arg; return 0;
    case KVM_GET_SREGS: *(struct kvm_sregs *)arg = v->sregs; return 0;
    case KVM_SET_SREGS: v->sregs = *(struct kvm_sregs *)arg; return 0;
    case KVM_GET_DEBUGREGS: *(struct kvm_debugregs *)arg = v->dregs; return 0;
    case KVM_SET_DEBUGREGS: v->dregs = *(struct kvm_debugregs *)arg; return 0;
    case KVM_GET_LAPIC:
    case KVM_SET_LAPIC:
        if (!fk.irqchip) {
            fk_violation("KVM_GET/SET_LAPIC without an in-kernel LAPIC");
            return fk_fail(ENXIO);
        }
        if (req == KVM_GET_LAPIC) {
            *(struct kvm_lapic_state *)arg = v->lapic;
        } else {
            v->lapic = *(struct kvm_lapic_state *)arg;
            fk.lapic_sets++;
        }
        return 0;
    case KVM_INTERRUPT:
        if (fk.irqchip) {
            fk_violation("KVM_INTERRUPT with the in-kernel PIC");
            return fk_fail(ENXIO);
        }
        if (fk.u[id].irq_queued) {
            fk.interrupt_eexist++;
            return fk_fail(EEXIST);        /* api.rst "KVM_INTERRUPT" */
        }
        fk.u[id].irq_queued = true;
        if (fk.u[id].ninjected < 8) {
            fk.u[id].injected[fk.u[id].ninjected] = ((struct kvm_interrupt *)arg)->irq;
        }
        fk.u[id].ninjected++;
        return 0;
    case KVM_NMI:
        fk.u[id].nmis++;
        return 0;
    case KVM_GET_TSC_KHZ:
        return 2000000;
    case KVM_SET_FPU:
        v->fcw = ((struct kvm_fpu *)arg)->fcw;
        v->mxcsr = ((struct kvm_fpu *)arg)->mxcsr;
        return 0;
    case KVM_SET_XCRS:
        v->xcr0 = ((struct kvm_xcrs *)arg)->xcrs[0].value;
        return 0;
    case KVM_SET_MSRS: {
        struct kvm_msrs *m = arg;
        v->msrs_set += m->nmsrs;
        return m->nmsrs;                  /* §7.6: a count */
    }
    case KVM_SET_MP_STATE:
        if (!fk.irqchip && ((struct kvm_mp_state *)arg)->mp_state != KVM_MP_STATE_RUNNABLE) {
            fk_violation("KVM_SET_MP_STATE other than RUNNABLE without an in-kernel LAPIC");
            return fk_fail(EINVAL);
        }
        v->mp_state = ((struct kvm_mp_state *)arg)->mp_state;
        return 0;
    case KVM_SET_VCPU_EVENTS:
        return 0;
    case KVM_SET_SIGNAL_MASK: {
        struct kvm_signal_mask *sm = arg;
        fk.sigmask_len = sm->len;
        memcpy(&fk.sigmask, sm->sigset, sm->len == 8 ? 8 : 0);
        return 0;
    }
    case KVM_RUN: {
        if (!v->cpuid_set) {
            v->run_before_cpuid = true;
        }
        v->ran = true;
        struct kvm_run *run = fk.run[id];
        if (run->immediate_exit) {
            __atomic_add_fetch(&fk.immediate_exit_runs, 1, __ATOMIC_SEQ_CST);
            run->exit_reason = KVM_EXIT_INTR;
            return fk_fail(EINTR);
        }
        __atomic_add_fetch(&fk.run_calls, 1, __ATOMIC_SEQ_CST);
        fk.u[id].irq_queued = false;       /* entered: a queued interrupt is delivered */
        return fk.script ? fk.script(id, run, fk.run_calls) : fk_fail(EINTR);
    }
    }
    return fk_fail(ENOTTY);
}

static int fk_ioctl(int fd, unsigned long req, void *arg)
{
    if (fd == fk.sys_fd) {
        return fk_sys(req, arg);
    }
    if (fd == fk.vm_fd) {
        return fk_vm(req, arg);
    }
    for (int i = 0; i < FK_MAX_VCPUS; i++) {
        if (fk.vcpu_fd[i] == fd && fd > 0) {
            return fk_vcpu(i, req, arg);
        }
    }
    return fk_fail(EBADF);
}

/* A fresh fake KVM behind kvm_open_fn/kvm_ioctl_fn (set fk's knobs after this). */
static void fk_install(void)
{
    memset(&fk, 0, sizeof(fk));
    fk.sys_fd = fk.vm_fd = -1;
    kvm_open_fn = fk_open;
    kvm_ioctl_fn = fk_ioctl;
}

/* A machine with 2 MiB of RAM, brought up on the fake KVM. */
static Machine *fk_machine_irqchip(int ncpus, bool kernel_irqchip)
{
    fk_install();

    Machine *m = g_new0(Machine, 1);
    m->cfg = test_config();
    m->cfg->smp_cpus = ncpus;
    m->cfg->kernel_irqchip = kernel_irqchip;
    if (!kernel_irqchip) {
        m->cfg->cpu_model = g_strdup("host");   /* every feature KVM offers, x2APIC included */
    }
    m->smp_cpus = ncpus;
    m->system_memory = memory_region_new_container("system", UINT64_MAX);
    m->ram = memory_region_new_ram("pc.ram", 2 << 20, NULL);
    memory_region_add_subregion(m->system_memory, 0, m->ram, 0);
    m->as = address_space_new("memory", m->system_memory);
    m->accel = accel_find("kvm");

    GError *err = NULL;
    CHECK_MSG(m->accel->init(m, &err), "init: %s", err ? err->message : "?");
    if (!kernel_irqchip) {
        /* What the board (hw/pc/pc.c) does when has_kernel_irqchip says no. */
        CHECK(!m->accel->has_kernel_irqchip(m));
        CHECK_MSG(irqchip_userspace_init(m, &err), "irqchip_userspace_init: %s",
                  err ? err->message : "?");
    }
    for (int i = 0; i < ncpus; i++) {
        CHECK_MSG(m->accel->vcpu_init(m, i, &err), "vcpu_init %d: %s", i,
                  err ? err->message : "?");
    }
    m->accel->reset(m);
    CHECK_MSG(!fk.violation, "ordering rule broken: %s", fk.violation);
    return m;
}

static Machine *fk_machine(int ncpus)
{
    return fk_machine_irqchip(ncpus, true);
}

static void test_fake_kvm_bring_up_order(void)
{
    Machine *m = fk_machine(2);
    CHECK_EQ("identity map", 0xfeffc000, fk.idmap);
    CHECK_EQ("TSS", 0xfeffd000, fk.tss);
    CHECK(fk.irqchip && fk.pit);
    /* no board device on port 0x61: the kernel PIT answers it */
    CHECK_EQ("PIT flags", KVM_PIT_SPEAKER_DUMMY, fk.pit_flags);
    CHECK_EQ("GSI routes", 38, fk.routes);
    CHECK_EQ("RAM slot count", 1, fk.nslots);
    CHECK_EQ("RAM slot GPA", 0, fk.slots[0].guest_phys_addr);
    CHECK_EQ("RAM slot size", 2 << 20, fk.slots[0].memory_size);
    CHECK_EQ("RAM slot HVA", (uintptr_t)memory_region_host_ptr(m->ram), fk.slots[0].userspace_addr);
    for (int i = 0; i < 2; i++) {
        CHECK(fk.v[i].cpuid_set);
        CHECK_MSG(fk.v[i].cpuid_nent >= 8, "vCPU %d CPUID has %u entries", i,
                  fk.v[i].cpuid_nent);
    }
    m->accel->cleanup(m);
    CHECK(m->accel_state == NULL);
}

static void test_fake_kvm_reset_state(void)
{
    Machine *m = fk_machine(2);
    /* BSP */
    CHECK_EQ("vCPU0 RDX = CPUID.1:EAX", fk.v[0].cpuid_1_eax, fk.v[0].regs.rdx);
    CHECK_EQ("kestrel64 signature", 0x00060fb1, fk.v[0].cpuid_1_eax);
    CHECK_EQ("vCPU0 RIP", 0xfff0, fk.v[0].regs.rip);
    CHECK_EQ("vCPU0 RFLAGS", 2, fk.v[0].regs.rflags);
    CHECK_EQ("vCPU0 CS base", 0xffff0000, fk.v[0].sregs.cs.base);
    CHECK_EQ("vCPU0 APIC base (BSP, enabled)", 0xfee00900, fk.v[0].sregs.apic_base);
    CHECK_EQ("vCPU0 MP state", KVM_MP_STATE_RUNNABLE, fk.v[0].mp_state);
    CHECK_EQ("vCPU0 LINT0", APIC_DM_EXTINT, kvm_lapic_get_reg(&fk.v[0].lapic, APIC_LVT_LINT0));
    CHECK_EQ("vCPU0 LINT1", APIC_DM_NMI, kvm_lapic_get_reg(&fk.v[0].lapic, APIC_LVT_LINT1));
    CHECK_EQ("LAPIC version kept", 0x50014, kvm_lapic_get_reg(&fk.v[0].lapic, APIC_LVR));
    CHECK_EQ("FCW", 0x37f, fk.v[0].fcw);
    CHECK_EQ("MXCSR", 0x1f80, fk.v[0].mxcsr);
    CHECK_EQ("XCR0", 1, fk.v[0].xcr0);
    /*
     * Set at vcpu_init and at reset: of the index list only TSC, MISC_ENABLE
     * and LSTAR, plus the 28 MTRR MSRs (not in KVM's index list; zero, the
     * power-on state, without a direct boot).
     */
    CHECK_EQ("MSRs written", 2 * (3 + 28), fk.v[0].msrs_set);
    /* AP */
    CHECK_EQ("vCPU1 APIC base (AP)", 0xfee00800, fk.v[1].sregs.apic_base);
    CHECK_EQ("vCPU1 MP state waits for SIPI", KVM_MP_STATE_INIT_RECEIVED, fk.v[1].mp_state);
    CHECK_EQ("vCPU1 APIC ID", 1u << 24, kvm_lapic_get_reg(&fk.v[1].lapic, APIC_ID));
    CHECK_EQ("vCPU1 LINT0 masked", APIC_LVT_MASKED,
             kvm_lapic_get_reg(&fk.v[1].lapic, APIC_LVT_LINT0));
    /* system reset restores PIC x2 + IOAPIC and the PIT */
    CHECK_EQ("KVM_SET_IRQCHIP at reset", 3, fk.irqchip_sets);
    CHECK_EQ("KVM_SET_PIT2 at reset", 1, fk.pit_sets);

    /* direct boot: the loader's state lands on the BSP only */
    x86_cpu_state_reset(&m->bsp_state, true);
    x86_cpu_state_flat32(&m->bsp_state, 0x100000);
    m->bsp_state.regs[R_ESI] = 0x7000;
    m->bsp_state_valid = true;
    m->accel->reset(m);
    CHECK_EQ("BSP RIP", 0x100000, fk.v[0].regs.rip);
    CHECK_EQ("BSP RSI", 0x7000, fk.v[0].regs.rsi);
    CHECK_EQ("BSP CS selector", 0x10, fk.v[0].sregs.cs.selector);
    CHECK_EQ("BSP CR0.PE", 1, fk.v[0].sregs.cr0 & 1);
    CHECK_EQ("AP still at reset vector", 0xfff0, fk.v[1].regs.rip);

    X86CPUState got;
    CHECK(m->accel->get_regs(m, 0, &got));
    CHECK_EQ("get_regs RIP", 0x100000, got.rip);
    CHECK_EQ("get_regs CS.db", 1, got.seg[SEG_CS].db);
    got.rip = 0x200000;
    CHECK(m->accel->set_regs(m, 0, &got));
    CHECK_EQ("set_regs RIP", 0x200000, fk.v[0].regs.rip);
    CHECK(!m->accel->get_regs(m, 7, &got));
    m->accel->cleanup(m);
}

static uint32_t port_seen[4];
static int port_writes;
static uint32_t fk_port_read(void *o, uint16_t off, unsigned size) { return 0x5a; }
static void fk_port_write(void *o, uint16_t off, uint32_t v, unsigned size)
{
    if (port_writes < 4) {
        port_seen[port_writes] = v;
    }
    port_writes++;
}
static const IoPortOps fk_port_ops = { .read = fk_port_read, .write = fk_port_write,
                                       .max_access = 4 };

/* OUT 0x42 to port 0x510, a 4-byte read of unassigned MMIO, then a triple fault. */
static int script_io_mmio_shutdown(int id, struct kvm_run *run, int call)
{
    switch (call) {
    case 1:
        run->exit_reason = KVM_EXIT_IO;
        run->io.direction = KVM_EXIT_IO_OUT;
        run->io.size = 1;
        run->io.port = 0x510;
        run->io.count = 1;
        run->io.data_offset = 4096;
        ((uint8_t *)run)[4096] = 0x42;
        return 0;
    case 2:
        run->exit_reason = KVM_EXIT_MMIO;
        run->mmio.phys_addr = 0xfe000000;
        run->mmio.len = 4;
        run->mmio.is_write = 0;
        memset(run->mmio.data, 0, 8);
        return 0;
    case 3:
        run->exit_reason = KVM_EXIT_SHUTDOWN;
        return 0;
    default:
        return fk_fail(EINTR);
    }
}

static void test_fake_kvm_run_loop_exits(void)
{
    Machine *m = fk_machine(1);
    GError *err = NULL;
    CHECK(ioport_register(0x510, 1, &fk_port_ops, NULL, "fk-port", &err));
    fk.script = script_io_mmio_shutdown;
    m->accel->vcpu_thread_init(m, 0);

    CHECK_EQ("vcpu_run after triple fault", VCPU_RUN_HALTED, m->accel->vcpu_run(m, 0));
    CHECK_EQ("KVM_RUN calls", 3, fk.run_calls);
    CHECK_EQ("port writes", 1, port_writes);
    CHECK_EQ("OUT value", 0x42, port_seen[0]);
    CHECK_EQ("unassigned MMIO read", 0xffffffff, ld32_le(fk.run[0]->mmio.data));
    CHECK(!fk.v[0].run_before_cpuid);

    /* a shut-down vCPU stays out of KVM_RUN until reset */
    CHECK_EQ("vcpu_run while stopped", VCPU_RUN_HALTED, m->accel->vcpu_run(m, 0));
    CHECK_EQ("no KVM_RUN while stopped", 3, fk.run_calls);
    m->accel->reset(m);
    CHECK_EQ("vcpu_run after reset (EINTR)", VCPU_RUN_AGAIN, m->accel->vcpu_run(m, 0));
    CHECK_EQ("KVM_RUN after reset", 4, fk.run_calls);
    m->accel->cleanup(m);
}

static int script_internal_error(int id, struct kvm_run *run, int call)
{
    run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
    run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
    run->internal.ndata = 2;
    run->internal.data[0] = 0x1234;
    run->internal.data[1] = 0x5678;
    return 0;
}

static void test_fake_kvm_internal_error_stops_vcpu(void)
{
    Machine *m = fk_machine(1);
    fk.script = script_internal_error;
    CHECK_EQ("vcpu_run", VCPU_RUN_HALTED, m->accel->vcpu_run(m, 0));
    CHECK_EQ("vcpu_run again", VCPU_RUN_HALTED, m->accel->vcpu_run(m, 0));
    CHECK_EQ("KVM_RUN calls", 1, fk.run_calls);
    m->accel->cleanup(m);
}

static void test_fake_kvm_kick_and_irq(void)
{
    Machine *m = fk_machine(1);
    m->accel->vcpu_thread_init(m, 0);
    /* the kick signal has a handler: delivering it to ourselves must be harmless */
    m->accel->vcpu_kick(m, 0);
    CHECK_EQ("immediate_exit set by kick", 1, fk.run[0]->immediate_exit);
    /* nothing asks the vCPU to stop, so the stale kick is cleared and KVM_RUN runs */
    CHECK_EQ("vcpu_run", VCPU_RUN_AGAIN, m->accel->vcpu_run(m, 0));
    CHECK_EQ("immediate_exit cleared", 0, fk.run[0]->immediate_exit);
    CHECK_EQ("KVM_RUN reached the script", 1, fk.run_calls);

    m->accel->set_irq(m, 4, 1);
    CHECK_EQ("KVM_IRQ_LINE calls", 1, fk.irq_lines);
    CHECK_EQ("irq", 4, fk.last_irq.irq);
    CHECK_EQ("level", 1, fk.last_irq.level);
    m->accel->set_irq(m, 0, 0);
    CHECK_EQ("irq 0", 0, fk.last_irq.irq);
    CHECK_EQ("level 0", 0, fk.last_irq.level);
    m->accel->set_irq(m, 24, 1);           /* out of range: ignored */
    m->accel->set_irq(m, -1, 1);
    CHECK_EQ("KVM_IRQ_LINE calls", 2, fk.irq_lines);
    m->accel->cleanup(m);
}

/* An OUT that exits, then a guest that runs until kicked. */
static int script_out_then_spin(int id, struct kvm_run *run, int call)
{
    if (call == 1) {
        run->exit_reason = KVM_EXIT_IO;
        run->io.direction = KVM_EXIT_IO_OUT;
        run->io.size = 1;
        run->io.port = 0x511;
        run->io.count = 1;
        run->io.data_offset = 4096;
        return 0;
    }
    for (;;) {
        if (__atomic_load_n(&run->immediate_exit, __ATOMIC_SEQ_CST)) {
            return fk_fail(EINTR);
        }
        struct timespec ts = { 0, 1000000 };
        if (nanosleep(&ts, NULL) < 0 && errno == EINTR) {
            return fk_fail(EINTR);        /* the kick signal */
        }
    }
}

static Machine *pause_machine;

/* The device access is still running when the pause request arrives. */
static void pause_port_write(void *o, uint16_t off, uint32_t v, unsigned size)
{
    while (!cpus_should_stop(pause_machine, 0)) {
        g_usleep(1000);
    }
}

static const IoPortOps pause_port_ops = { .write = pause_port_write, .read = fk_port_read,
                                          .max_access = 1 };

static void test_fake_kvm_pause_completes_pending_io(void)
{
    Machine *m = fk_machine(1);
    pause_machine = m;
    GError *err = NULL;
    CHECK(ioport_register(0x511, 1, &pause_port_ops, NULL, "pause-port", &err));
    fk.script = script_out_then_spin;
    m->cfg->start_paused = false;
    CHECK_MSG(cpus_start(m, &err), "cpus_start: %s", err ? err->message : "?");
    for (int i = 0; i < 5000 && __atomic_load_n(&fk.run_calls, __ATOMIC_SEQ_CST) < 1; i++) {
        g_usleep(1000);
    }
    CHECK_EQ("the OUT exit happened", 1, __atomic_load_n(&fk.run_calls, __ATOMIC_SEQ_CST));
    cpus_pause(m);
    /* §2.1: parked only after one KVM_RUN with immediate_exit that completed the OUT */
    CHECK_MSG(__atomic_load_n(&fk.immediate_exit_runs, __ATOMIC_SEQ_CST) >= 1,
              "vCPU parked with an uncompleted I/O exit");
    CHECK_EQ("no guest code ran after the pause", 1,
             __atomic_load_n(&fk.run_calls, __ATOMIC_SEQ_CST));
    cpus_resume(m);
    for (int i = 0; i < 5000 && __atomic_load_n(&fk.run_calls, __ATOMIC_SEQ_CST) < 2; i++) {
        g_usleep(1000);
    }
    CHECK_EQ("guest resumed", 2, __atomic_load_n(&fk.run_calls, __ATOMIC_SEQ_CST));
    cpus_stop(m);                          /* kick must get the spinning "guest" out */
    m->accel->cleanup(m);
}

static bool kick_pending(void)
{
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, SIGUSR1);
}

static void test_fake_kvm_kick_without_immediate_exit(void)
{
    fk_install();
    fk.no_immediate_exit = true;
    Machine *m = g_new0(Machine, 1);
    m->cfg = test_config();
    m->smp_cpus = 1;
    m->system_memory = memory_region_new_container("system", UINT64_MAX);
    m->as = address_space_new("memory", m->system_memory);
    GError *err = NULL;
    CHECK_MSG(accel_find("kvm")->init(m, &err), "init: %s", err ? err->message : "?");
    CHECK(accel_find("kvm")->vcpu_init(m, 0, &err));
    accel_find("kvm")->vcpu_thread_init(m, 0);
    /* pattern B (§2.5): KVM_RUN's mask lets the kick in, the thread's blocks it */
    CHECK_EQ("KVM_SET_SIGNAL_MASK len", 8, fk.sigmask_len);
    CHECK_EQ("kick unblocked inside KVM_RUN", 0, fk.sigmask & (1ull << (SIGUSR1 - 1)));
    accel_find("kvm")->vcpu_kick(m, 0);
    CHECK_EQ("immediate_exit untouched", 0, fk.run[0]->immediate_exit);
    CHECK_MSG(kick_pending(), "kick signal not left pending while blocked");
    CHECK_EQ("vcpu_run", VCPU_RUN_AGAIN, accel_find("kvm")->vcpu_run(m, 0));
    CHECK_MSG(!kick_pending(), "kick signal not consumed after EINTR");
    accel_find("kvm")->cleanup(m);
}

static void test_fake_kvm_smp_limit(void)
{
    fk_install();
    Machine m = { 0 };
    m.cfg = test_config();
    m.smp_cpus = FK_MAX_VCPUS + 1;
    GError *err = NULL;
    CHECK(!accel_find("kvm")->init(&m, &err));
    CHECK_MSG(err && strstr(err->message, "at most 4 vCPUs"), "got \"%s\"",
              err ? err->message : "(no error)");
    g_clear_error(&err);
}

/* ---- kernel-irqchip=off on the fake KVM (kvm-api.md §3.5) ---- */

static Machine *us_m;
static int us_step;                       /* what the scripted KVM_RUN does next */

static void us_lapic_write(int cpu, unsigned reg, uint32_t v)
{
    int saved = irqchip_current_cpu;
    irqchip_current_cpu = cpu;
    bql_lock();
    address_space_st(us_m->as, APIC_DEFAULT_BASE + reg, v, 4);
    bql_unlock();
    irqchip_current_cpu = saved;
}

/* An APIC bus message, as the IOAPIC or another CPU's ICR would send it. */
static void us_deliver(uint8_t dest, uint8_t mode, uint8_t vector)
{
    bql_lock();
    apic_deliver(dest, false, mode, vector, true, false);
    bql_unlock();
}

static int script_userspace(int id, struct kvm_run *run, int call)
{
    switch (us_step++) {
    case 0:
        /* An interrupt is pending but KVM has not said the guest can take one. */
        CHECK_EQ("window requested before injecting", 1, run->request_interrupt_window);
        CHECK_EQ("nothing injected yet", 0, fk.u[0].ninjected);
        run->exit_reason = KVM_EXIT_IRQ_WINDOW_OPEN;
        run->ready_for_interrupt_injection = 1;
        run->if_flag = 1;
        return 0;
    case 1:
        CHECK_EQ("injected at the window exit", 1, fk.u[0].ninjected);
        CHECK_EQ("vector", 0x40, fk.u[0].injected[0]);
        CHECK_EQ("no window once the interrupt is in", 0, run->request_interrupt_window);
        run->exit_reason = KVM_EXIT_HLT;      /* STI; HLT */
        run->ready_for_interrupt_injection = 1;
        run->if_flag = 1;
        return 0;
    case 2:
        /* Woken from HLT by vector 0x50, injected straight away. */
        CHECK_EQ("second injection", 2, fk.u[0].ninjected);
        CHECK_EQ("second vector", 0x50, fk.u[0].injected[1]);
        CHECK_EQ("CR8 given to KVM = TPR >> 4", 0, run->cr8);
        run->exit_reason = KVM_EXIT_SET_TPR;  /* MOV CR8, 5 lowered nothing, but exits */
        run->cr8 = 5;
        return 0;
    case 3:
        CHECK_EQ("CR8 kept on re-entry", 5, run->cr8);
        run->exit_reason = KVM_EXIT_X86_RDMSR;
        run->msr.reason = KVM_MSR_EXIT_REASON_FILTER;
        run->msr.index = MSR_IA32_APICBASE;
        run->msr.data = 0;
        run->msr.error = 0xff;
        return 0;
    case 4:
        CHECK_EQ("RDMSR IA32_APIC_BASE from the userspace LAPIC", 0xfee00900, run->msr.data);
        CHECK_EQ("RDMSR error", 0, run->msr.error);
        run->exit_reason = KVM_EXIT_X86_WRMSR;
        run->msr.reason = KVM_MSR_EXIT_REASON_FILTER;
        run->msr.index = MSR_IA32_APICBASE;
        run->msr.data = 0xfee00d00;           /* x2APIC enable: reserved here */
        run->msr.error = 0;
        return 0;
    case 5:
        CHECK_EQ("WRMSR of a reserved IA32_APIC_BASE bit is #GP", 1, run->msr.error);
        run->exit_reason = KVM_EXIT_HLT;      /* CLI; HLT */
        run->ready_for_interrupt_injection = 0;
        run->if_flag = 0;
        return 0;
    case 6:
        /* The NMI got the CPU out of HLT; the fixed interrupt still waits for IF. */
        CHECK_EQ("KVM_NMI", 1, fk.u[0].nmis);
        CHECK_EQ("window requested for the IF=0 interrupt", 1, run->request_interrupt_window);
        CHECK_EQ("not injected with IF=0", 2, fk.u[0].ninjected);
        return fk_fail(EINTR);
    case 7:
        /* vCPU 1 after INIT + SIPI 0x9f: real mode at 9f00:0000 (SDM 3A 8.4.4.1). */
        CHECK_EQ("AP KVM_RUN", 1, id);
        CHECK_EQ("AP CS selector", 0x9f00, fk.v[1].sregs.cs.selector);
        CHECK_EQ("AP CS base", 0x9f000, fk.v[1].sregs.cs.base);
        CHECK_EQ("AP RIP", 0, fk.v[1].regs.rip);
        CHECK_EQ("AP CR0.PE clear", 0, fk.v[1].sregs.cr0 & 1);
        return fk_fail(EINTR);
    default:
        return fk_fail(EINTR);
    }
}

static void test_fake_kvm_userspace_irqchip(void)
{
    Machine *m = us_m = fk_machine_irqchip(2, false);
    const AccelOps *kvm = m->accel;

    /* Bring-up: no KVM irqchip, PIT or routes; the LAPIC's MSRs exit to us. */
    CHECK(!fk.irqchip && !fk.pit);
    CHECK_EQ("GSI routes", 0, fk.routes);
    CHECK_EQ("KVM_SET_LAPIC calls", 0, fk.lapic_sets);
    CHECK_EQ("user-space MSR exits on filter", KVM_MSR_EXIT_REASON_FILTER, fk.user_msr_reasons);
    CHECK_EQ("MSR filter ranges", 2, fk.filter_ranges);
    CHECK_EQ("filter range 0", MSR_IA32_APICBASE, fk.filter[0].base);
    CHECK_EQ("filter range 1", MSR_IA32_TSC_DEADLINE, fk.filter[1].base);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ("filter range: one MSR", 1, fk.filter[i].nmsrs);
        CHECK_EQ("filter range: reads and writes", KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
                 fk.filter[i].flags);
        CHECK_EQ("filter range: denied (bit clear)", 0, fk.filter[i].bits & 1);
    }
    CHECK_EQ("CPUID x2APIC hidden", 0, fk.u[0].cpuid_1_ecx & CPUID_1_ECX_X2APIC);
    CHECK_MSG(fk.u[0].cpuid_1_ecx & CPUID_1_ECX_TSC_DEADLINE,
              "TSC-deadline not advertised although the MSR filter is in place");
    /* Board lines go to hw/pc's chips, never to KVM_IRQ_LINE. */
    kvm->set_irq(m, 4, 1);
    kvm->set_irq(m, 4, 0);
    CHECK_EQ("KVM_IRQ_LINE calls", 0, fk.irq_lines);

    kvm->vcpu_thread_init(m, 1);
    kvm->vcpu_thread_init(m, 0);          /* this thread is vCPU 0 from here on */
    fk.script = script_userspace;
    us_step = 0;

    /* The AP waits for SIPI outside KVM_RUN. */
    CHECK_EQ("AP before SIPI", VCPU_RUN_HALTED, kvm->vcpu_run(m, 1));
    CHECK_EQ("no KVM_RUN for the waiting AP", 0, fk.run_calls);

    /* Fixed interrupt 0x40: interrupt window, KVM_INTERRUPT, then HLT with nothing left. */
    us_lapic_write(0, 0xf0, 0x1ff);       /* SVR: APIC software-enabled */
    us_deliver(0, 0, 0x40);
    CHECK_EQ("vcpu_run ends halted", VCPU_RUN_HALTED, kvm->vcpu_run(m, 0));
    CHECK_EQ("KVM_RUN calls", 2, fk.run_calls);
    CHECK_EQ("halted vCPU stays out of KVM_RUN", VCPU_RUN_HALTED, kvm->vcpu_run(m, 0));
    CHECK_EQ("KVM_RUN calls while halted", 2, fk.run_calls);

    /* 0x50 wakes it (HLT with IF=1); then CR8 = 5 and the MSR exits. */
    us_deliver(0, 0, 0x50);
    CHECK_EQ("vcpu_run after the wake-up", VCPU_RUN_HALTED, kvm->vcpu_run(m, 0));
    CHECK_EQ("KVM_RUN calls", 6, fk.run_calls);
    CHECK_EQ("TPR from CR8", 0x50, apic_get_tpr(0));
    CHECK_EQ("KVM_INTERRUPT while one was queued", 0, fk.interrupt_eexist);

    /* HLT with IF=0: a fixed interrupt does not wake it, an NMI does. */
    us_lapic_write(0, 0x80, 0);           /* TPR 0 */
    us_lapic_write(0, 0xb0, 0);           /* EOI 0x50 */
    us_lapic_write(0, 0xb0, 0);           /* EOI 0x40 */
    us_deliver(0, 0, 0x60);
    CHECK_EQ("IF=0 HLT ignores INTR", VCPU_RUN_HALTED, kvm->vcpu_run(m, 0));
    CHECK_EQ("KVM_RUN calls", 6, fk.run_calls);
    us_deliver(0, 4, 0);                  /* NMI */
    CHECK_EQ("NMI wakes it", VCPU_RUN_AGAIN, kvm->vcpu_run(m, 0));
    CHECK_EQ("KVM_RUN calls", 7, fk.run_calls);

    /* INIT, then SIPI 0x9f to APIC 1 (what an ICR write of the BSP sends). */
    us_deliver(1, 5, 0);
    CHECK_EQ("AP after INIT only", VCPU_RUN_HALTED, kvm->vcpu_run(m, 1));
    CHECK_EQ("KVM_RUN calls", 7, fk.run_calls);
    us_deliver(1, 6, 0x9f);
    CHECK_EQ("AP after SIPI", VCPU_RUN_AGAIN, kvm->vcpu_run(m, 1));
    CHECK_EQ("KVM_RUN calls", 8, fk.run_calls);
    CHECK_EQ("script steps", 8, us_step);
    CHECK_MSG(!fk.violation, "KVM rule broken: %s", fk.violation);

    /* A system reset sends the AP back to waiting for SIPI. */
    kvm->reset(m);
    CHECK_EQ("AP after reset", VCPU_RUN_HALTED, kvm->vcpu_run(m, 1));
    CHECK_EQ("KVM_RUN calls", 8, fk.run_calls);
    kvm->cleanup(m);
}

/*
 * Without MSR exits KVM would swallow TSC-deadline writes (no LAPIC of its
 * own): the CPU must then not advertise TSC-deadline.
 */
static void test_fake_kvm_irqchip_off_without_msr_filter(void)
{
    fk_install();
    fk.no_user_msr = true;
    Machine *m = g_new0(Machine, 1);
    m->cfg = test_config();
    m->cfg->kernel_irqchip = false;
    m->cfg->cpu_model = g_strdup("host");
    m->smp_cpus = 1;
    m->system_memory = memory_region_new_container("system", UINT64_MAX);
    m->as = address_space_new("memory", m->system_memory);
    GError *err = NULL;
    const AccelOps *kvm = accel_find("kvm");
    CHECK_MSG(kvm->init(m, &err), "init: %s", err ? err->message : "?");
    CHECK_MSG(kvm->vcpu_init(m, 0, &err), "vcpu_init: %s", err ? err->message : "?");
    CHECK(!fk.irqchip && !fk.pit);
    CHECK_EQ("MSR filter ranges", 0, fk.filter_ranges);
    CHECK_EQ("CPUID TSC-deadline", 0, fk.u[0].cpuid_1_ecx & CPUID_1_ECX_TSC_DEADLINE);
    CHECK_EQ("CPUID x2APIC hidden", 0, fk.u[0].cpuid_1_ecx & CPUID_1_ECX_X2APIC);
    CHECK_MSG(!fk.violation, "KVM rule broken: %s", fk.violation);
    kvm->cleanup(m);
}

static const TestCase cases[] = {
    TEST_CASE(test_kvm_accel_registered),
    TEST_CASE(test_probe_without_dev_kvm_says_why),
    TEST_CASE(test_probe_with_dev_kvm),
    TEST_CASE(test_cpuinfo_flags_parsed),
    TEST_CASE(test_explain_module_or_cpu),
    TEST_CASE(test_software_only_kvm_named_only_without_vmx_svm),
    TEST_CASE(test_explain_permission),
    TEST_CASE(test_missing_caps_named),
    TEST_CASE(test_init_kernel_irqchip_off_initialises),
    TEST_CASE(test_init_bad_cpu_option_reported_first),
    TEST_CASE(test_init_without_dev_kvm_fails_with_reason),
    TEST_CASE(test_fake_kvm_bring_up_order),
    TEST_CASE(test_fake_kvm_reset_state),
    TEST_CASE(test_fake_kvm_run_loop_exits),
    TEST_CASE(test_fake_kvm_internal_error_stops_vcpu),
    TEST_CASE(test_fake_kvm_kick_and_irq),
    TEST_CASE(test_fake_kvm_kick_without_immediate_exit),
    TEST_CASE(test_fake_kvm_pause_completes_pending_io),
    TEST_CASE(test_fake_kvm_smp_limit),
    TEST_CASE(test_fake_kvm_userspace_irqchip),
    TEST_CASE(test_fake_kvm_irqchip_off_without_msr_filter),
    { 0 },
};

int main(int argc, char **argv)
{
    return test_main("kvm-probe", cases, argc, argv);
}
