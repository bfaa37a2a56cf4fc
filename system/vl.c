/*
 * The command line.  QEMU's options with QEMU's meanings, because that is
 * what users' fingers and test suites already type; anything else is one
 * clear error line and exit status 1, before anything starts.
 */
#include "kestrel/cmdline.h"
#include "kestrel/accel.h"
#include "kestrel/cpu-model.h"
#include "kestrel/device.h"
#include "kestrel/log.h"
#include "kestrel/opts.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define MAX_SERIAL 4
#define MAX_CPUS 255              /* xAPIC ids are 8-bit and the IOAPIC takes one */
#define MIN_RAM (2ULL << 20)
#define MAX_RAM (1ULL << 40)

typedef enum {
    OPT_HELP, OPT_VERSION, OPT_M, OPT_SMP, OPT_CPU, OPT_MACHINE, OPT_ACCEL, OPT_ENABLE_KVM,
    OPT_KERNEL, OPT_INITRD, OPT_APPEND, OPT_BIOS, OPT_SERIAL, OPT_CHARDEV, OPT_MONITOR,
    OPT_QTEST, OPT_DEBUGCON, OPT_DEVICE, OPT_GLOBAL, OPT_NOGRAPHIC, OPT_DISPLAY, OPT_NO_REBOOT,
    OPT_NO_SHUTDOWN, OPT_NAME, OPT_PIDFILE, OPT_LOGFILE, OPT_LOG, OPT_S, OPT_NODEFAULTS,
    OPT_DRIVE, OPT_HD, OPT_CDROM, OPT_FD, OPT_SNAPSHOT, OPT_BOOT, OPT_FW_CFG, OPT_VNC,
    OPT_NOT_YET,
} OptId;

typedef struct CmdOption {
    const char *name;
    bool has_arg;
    OptId id;
    const char *help;          /* NULL: not listed */
    const char *not_yet;       /* for OPT_NOT_YET: what it needs */
} CmdOption;

static const CmdOption options[] = {
    { "h", false, OPT_HELP, NULL },
    { "help", false, OPT_HELP, "-help            this text" },
    { "version", false, OPT_VERSION, "-version         print the version" },
    { "m", true, OPT_M, "-m SIZE          guest RAM (512M, 2G; plain numbers are MiB) [128M]" },
    { "smp", true, OPT_SMP, "-smp N[,cores=,threads=,sockets=]  number of CPUs [1]" },
    { "cpu", true, OPT_CPU, "-cpu MODEL[,+feat,-feat]  CPU model (-cpu help)" },
    { "M", true, OPT_MACHINE, NULL },
    { "machine", true, OPT_MACHINE, "-machine pc[,accel=A][,kernel-irqchip=on|off]  board (-M)" },
    { "accel", true, OPT_ACCEL, "-accel kvm|tcg|qtest  CPU engine; kvm:tcg tries in order (-accel help)" },
    { "enable-kvm", false, OPT_ENABLE_KVM, "-enable-kvm      same as -accel kvm" },
    { "kernel", true, OPT_KERNEL, "-kernel FILE     boot a Linux bzImage or Multiboot kernel directly" },
    { "initrd", true, OPT_INITRD, "-initrd FILE     initramfs (Linux) or \"mod args,mod2\" (Multiboot)" },
    { "append", true, OPT_APPEND, "-append STRING   kernel command line" },
    { "bios", true, OPT_BIOS, "-bios FILE       firmware image" },
    { "serial", true, OPT_SERIAL, "-serial SPEC     COM1..COM4 backend: stdio, mon:stdio, pty, null, file:P, tcp:H:P, unix:P, chardev:ID" },
    { "chardev", true, OPT_CHARDEV, "-chardev BACKEND,id=ID[,...]  character backend" },
    { "monitor", true, OPT_MONITOR, "-monitor SPEC    human monitor (only 'none' for now)" },
    { "qtest", true, OPT_QTEST, "-qtest SPEC      device test protocol endpoint (with -accel qtest)" },
    { "debugcon", true, OPT_DEBUGCON, "-debugcon SPEC   port 0xe9 debug console backend" },
    { "device", true, OPT_DEVICE, "-device NAME[,prop=val...]  add a device (-device help)" },
    { "global", true, OPT_GLOBAL, "-global DRIVER.PROP=VALUE  default property value" },
    { "nographic", false, OPT_NOGRAPHIC, "-nographic       no window; serial and monitor on this terminal" },
    { "display", true, OPT_DISPLAY, "-display none    display backend" },
    { "vnc", true, OPT_VNC, "-vnc none        no VNC server (the only value for now)" },
    { "no-reboot", false, OPT_NO_REBOOT, "-no-reboot       exit (status 0) instead of rebooting" },
    { "no-shutdown", false, OPT_NO_SHUTDOWN, "-no-shutdown     stop instead of exiting on guest power-off" },
    { "name", true, OPT_NAME, "-name NAME       guest name" },
    { "pidfile", true, OPT_PIDFILE, "-pidfile FILE    write the process id to FILE" },
    { "D", true, OPT_LOGFILE, "-D FILE          write the -d log to FILE" },
    { "d", true, OPT_LOG, "-d ITEM,...      enable logging (-d help)" },
    { "S", false, OPT_S, "-S               do not start the CPUs" },
    { "nodefaults", false, OPT_NODEFAULTS, "-nodefaults      no default devices (COM1)" },
    { "drive", true, OPT_DRIVE, "-drive file=F[,if=ide|floppy|none][,index=N][,media=disk|cdrom][,format=raw|qcow2][,snapshot=on][,readonly=on][,cache=..]" },
    { "hda", true, OPT_HD, "-hda/-hdb/-hdc/-hdd FILE  IDE disk 0-3 (primary master .. secondary slave)" },
    { "hdb", true, OPT_HD, NULL },
    { "hdc", true, OPT_HD, NULL },
    { "hdd", true, OPT_HD, NULL },
    { "cdrom", true, OPT_CDROM, "-cdrom FILE      IDE CD-ROM (secondary master, like -hdc)" },
    { "fda", true, OPT_FD, "-fda/-fdb FILE   floppy image A:/B: (1.44M, 2.88M, 720K, ...)" },
    { "fdb", true, OPT_FD, NULL },
    { "snapshot", false, OPT_SNAPSHOT, "-snapshot        write to temporary overlays; images stay untouched" },
    { "boot", true, OPT_BOOT, "-boot [order=]DRIVES[,once=D][,menu=on|off][,splash-time=MS][,reboot-timeout=MS][,strict=on]  a=floppy c=disk d=CD n=net" },
    { "fw_cfg", true, OPT_FW_CFG, "-fw_cfg name=opt/NAME,file=F|string=S  pass a blob to the firmware" },
    { "netdev", true, OPT_NOT_YET, NULL, "network backends" },
    { "nic", true, OPT_NOT_YET, NULL, "network devices" },
    { "vga", true, OPT_NOT_YET, NULL, "the VGA device" },
    { "boot", true, OPT_NOT_YET, NULL, "firmware boot (SeaBIOS)" },
    { "s", false, OPT_NOT_YET, NULL, "the gdb stub" },
    { "gdb", true, OPT_NOT_YET, NULL, "the gdb stub" },
    { "qmp", true, OPT_NOT_YET, NULL, "the QMP monitor" },
    { "daemonize", false, OPT_NOT_YET, NULL, "daemon mode" },
};

static void print_help(void)
{
    printf("Kestrel %s, a PC emulator\n"
           "usage: kestrel [options]\n"
           "  e.g. kestrel -m 1G -smp 2 -kernel bzImage -initrd initrd.img "
           "-append console=ttyS0 -nographic\n\n",
           KESTREL_VERSION);
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        if (options[i].help)
            printf("  %s\n", options[i].help);
    printf("\nOn a -nographic/stdio console: Ctrl-A x exits, Ctrl-A h lists the other keys.\n");
}

void machine_config_init(MachineConfig *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->ram_size = 128ULL << 20;      /* QEMU's default */
    cfg->smp_cpus = 1;
    cfg->machine_type = g_strdup("pc");
    cfg->kernel_irqchip = true;
    cfg->serial_specs = g_ptr_array_new_with_free_func(g_free);
    cfg->chardev_opts = g_ptr_array_new_with_free_func(g_free);
    cfg->device_opts = g_ptr_array_new_with_free_func(g_free);
    cfg->global_opts = g_ptr_array_new_with_free_func(g_free);
    cfg->drive_opts = g_ptr_array_new_with_free_func(g_free);
    cfg->fw_cfg_opts = g_ptr_array_new_with_free_func(g_free);
}

static bool parse_mem(MachineConfig *cfg, const char *arg, GError **errp)
{
    KOpts *o = kopts_parse(arg, "size", errp);
    uint64_t size;
    bool ok = o != NULL;

    if (ok) {
        ok = kopts_get_size(o, "size", cfg->ram_size, 'M', &size, errp);
        /* Hot-plug limits are accepted for compatibility; there is no memory hot-plug. */
        kopts_get(o, "slots");
        kopts_get(o, "maxmem");
    }
    if (ok)
        ok = kopts_check_all_used(o, "-m", errp);
    kopts_free(o);
    if (!ok) {
        if (errp && *errp)
            g_prefix_error(errp, "-m %s: ", arg);
        return false;
    }
    if (size < MIN_RAM || size > MAX_RAM) {
        kestrel_set_error(errp, "-m %s: RAM size must be between 2M and 1T", arg);
        return false;
    }
    cfg->ram_size = (size + 0xfff) & ~0xfffULL;     /* whole pages */
    return true;
}

static bool parse_smp(MachineConfig *cfg, const char *arg, GError **errp)
{
    KOpts *o = kopts_parse(arg, "cpus", errp);
    uint64_t cpus, sockets, dies, cores, threads, maxcpus;
    bool ok = o != NULL;
    bool cpus_given = ok && kopts_get(o, "cpus") != NULL;

    ok = ok && kopts_get_uint(o, "cpus", 0, &cpus, errp) &&
         kopts_get_uint(o, "sockets", 0, &sockets, errp) &&
         kopts_get_uint(o, "dies", 1, &dies, errp) &&
         kopts_get_uint(o, "cores", 0, &cores, errp) &&
         kopts_get_uint(o, "threads", 0, &threads, errp) &&
         kopts_get_uint(o, "maxcpus", 0, &maxcpus, errp) &&
         kopts_check_all_used(o, "-smp", errp);
    kopts_free(o);
    if (!ok) {
        if (errp && *errp)
            g_prefix_error(errp, "-smp %s: ", arg);
        return false;
    }
    if (!cpus && !cpus_given) {
        /* QEMU: with only the topology given, the CPU count is its product. */
        cpus = (sockets ? sockets : 1) * dies * (cores ? cores : 1) * (threads ? threads : 1);
    }
    if (sockets && cores && threads && sockets * dies * cores * threads < cpus) {
        kestrel_set_error(errp, "-smp %s: topology has fewer CPUs than cpus=%" G_GUINT64_FORMAT,
                          arg, cpus);
        return false;
    }
    if (cpus < 1 || cpus > MAX_CPUS) {
        kestrel_set_error(errp, "-smp %s: the number of CPUs must be between 1 and %d", arg,
                          MAX_CPUS);
        return false;
    }
    if (maxcpus && maxcpus < cpus) {
        kestrel_set_error(errp, "-smp %s: maxcpus is smaller than the number of CPUs", arg);
        return false;
    }
    cfg->smp_cpus = (int)cpus;
    return true;
}

static bool set_accel(MachineConfig *cfg, const char *names, GError **errp)
{
    /* Several -accel options try in order, like "kvm:tcg". */
    if (cfg->accel) {
        char *joined = g_strconcat(cfg->accel, ":", names, NULL);
        g_free(cfg->accel);
        cfg->accel = joined;
    } else {
        cfg->accel = g_strdup(names);
    }
    return true;
}

/* "help", or "?" (QEMU's older spelling, which kvm-unit-tests' x86/run still probes with). */
static bool is_help_arg(const char *arg)
{
    return !strcmp(arg, "help") || !strcmp(arg, "?");
}

static CmdlineResult parse_accel(MachineConfig *cfg, const char *arg, GError **errp)
{
    KOpts *o = kopts_parse(arg, "accel", errp);
    if (!o)
        return CMDLINE_ERROR;
    const char *name = kopts_get(o, "accel");
    CmdlineResult r = CMDLINE_OK;
    if (!name) {
        kestrel_set_error(errp, "-accel %s: missing accelerator name (kvm, tcg, qtest)", arg);
        r = CMDLINE_ERROR;
    } else if (is_help_arg(name)) {
        accel_list(stdout);
        r = CMDLINE_EXIT_OK;
    } else {
        /* Tuning knobs QEMU users pass; accepted, with no effect on a single-threaded engine. */
        kopts_get(o, "thread");
        kopts_get(o, "tb-size");
        if (!kopts_check_all_used(o, "-accel", errp))
            r = CMDLINE_ERROR;
        else
            set_accel(cfg, name, errp);
    }
    kopts_free(o);
    return r;
}

static CmdlineResult parse_machine(MachineConfig *cfg, const char *arg, GError **errp)
{
    KOpts *o = kopts_parse(arg, "type", errp);
    CmdlineResult r = CMDLINE_ERROR;
    if (!o)
        return CMDLINE_ERROR;
    const char *type = kopts_get(o, "type");
    const char *accel = kopts_get(o, "accel");
    const char *irqchip = kopts_get(o, "kernel-irqchip");
    if (type && is_help_arg(type)) {
        printf("Supported machines:\n"
               "pc                   Standard PC (i440FX + PIIX, 1996) (default)\n");
        r = CMDLINE_EXIT_OK;
        goto out;
    }
    if (type) {
        if (strcmp(type, "pc") && !g_str_has_prefix(type, "pc-i440fx-")) {
            kestrel_set_error(errp, "-machine %s: unsupported machine type (only 'pc', the i440FX "
                              "board, is implemented; try -machine help)", type);
            goto out;
        }
        g_free(cfg->machine_type);
        cfg->machine_type = g_strdup("pc");
    }
    if (accel)
        set_accel(cfg, accel, errp);
    if (irqchip) {
        if (!strcmp(irqchip, "split")) {
            kestrel_set_error(errp, "-machine kernel-irqchip=split is not supported (use on or off)");
            goto out;
        }
        if (!parse_bool(irqchip, &cfg->kernel_irqchip)) {
            kestrel_set_error(errp, "-machine kernel-irqchip=%s: expected on, off", irqchip);
            goto out;
        }
    }
    /* Accepted for compatibility with scripts written for QEMU's pc machine. */
    kopts_get(o, "usb");
    kopts_get(o, "vmport");
    kopts_get(o, "dump-guest-core");
    kopts_get(o, "mem-merge");
    if (!kopts_check_all_used(o, "-machine", errp))
        goto out;
    r = CMDLINE_OK;
out:
    kopts_free(o);
    return r;
}

static const CmdOption *option_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        if (!strcmp(options[i].name, name))
            return &options[i];
    return NULL;
}

static void replace(char **slot, const char *v)
{
    g_free(*slot);
    *slot = g_strdup(v);
}

CmdlineResult cmdline_parse(int argc, char **argv, MachineConfig *cfg, GError **errp)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            /* QEMU treats a bare argument as -hda; we have no disks yet. */
            kestrel_set_error(errp, "%s: unexpected argument (disk images need -drive, which is "
                              "not implemented yet; options start with '-')", a);
            return CMDLINE_ERROR;
        }
        const char *name = a + 1 + (a[1] == '-');
        const CmdOption *opt = option_find(name);
        if (!opt) {
            kestrel_set_error(errp, "%s: invalid option (see kestrel -help)", a);
            return CMDLINE_ERROR;
        }
        const char *arg = NULL;
        if (opt->has_arg) {
            if (i + 1 >= argc) {
                kestrel_set_error(errp, "%s: requires an argument", a);
                return CMDLINE_ERROR;
            }
            arg = argv[++i];
        }
        CmdlineResult r = CMDLINE_OK;
        switch (opt->id) {
        case OPT_HELP:
            print_help();
            return CMDLINE_EXIT_OK;
        case OPT_VERSION:
            printf("Kestrel emulator version %s\n", KESTREL_VERSION);
            return CMDLINE_EXIT_OK;
        case OPT_M:
            if (!parse_mem(cfg, arg, errp))
                return CMDLINE_ERROR;
            break;
        case OPT_SMP:
            if (!parse_smp(cfg, arg, errp))
                return CMDLINE_ERROR;
            break;
        case OPT_CPU: {
            if (is_help_arg(arg)) {
                x86_cpu_model_list(stdout);
                return CMDLINE_EXIT_OK;
            }
            /* Checked now so a typo fails before anything starts, whatever the engine. */
            X86CPUSpec spec;
            if (!x86_cpu_spec_parse(arg, &spec, errp))
                return CMDLINE_ERROR;
            replace(&cfg->cpu_model, arg);
            break;
        }
        case OPT_MACHINE:
            r = parse_machine(cfg, arg, errp);
            break;
        case OPT_ACCEL:
            r = parse_accel(cfg, arg, errp);
            break;
        case OPT_ENABLE_KVM:
            set_accel(cfg, "kvm", errp);
            break;
        case OPT_KERNEL:
            replace(&cfg->kernel, arg);
            break;
        case OPT_INITRD:
            replace(&cfg->initrd, arg);
            break;
        case OPT_APPEND:
            replace(&cfg->append, arg);
            break;
        case OPT_BIOS:
            replace(&cfg->bios, arg);
            break;
        case OPT_SERIAL:
            if (cfg->serial_specs->len >= MAX_SERIAL) {
                kestrel_set_error(errp, "-serial %s: at most %d serial ports (COM1-COM4)", arg,
                                  MAX_SERIAL);
                return CMDLINE_ERROR;
            }
            g_ptr_array_add(cfg->serial_specs, g_strdup(arg));
            break;
        case OPT_CHARDEV:
            g_ptr_array_add(cfg->chardev_opts, g_strdup(arg));
            break;
        case OPT_MONITOR:
            if (strcmp(arg, "none") != 0) {
                kestrel_set_error(errp, "-monitor %s: the monitor is not implemented yet (only "
                                  "-monitor none is accepted)", arg);
                return CMDLINE_ERROR;
            }
            replace(&cfg->monitor_spec, arg);
            break;
        case OPT_QTEST:
            replace(&cfg->qtest_spec, arg);
            break;
        case OPT_DEBUGCON:
            replace(&cfg->debugcon_spec, arg);
            break;
        case OPT_DEVICE:
            if (is_help_arg(arg)) {
                device_type_list(stdout);
                return CMDLINE_EXIT_OK;
            }
            if (g_str_has_suffix(arg, ",help") || g_str_has_suffix(arg, ",?")) {
                char *tname = g_strndup(arg, strchr(arg, ',') - arg);
                const DeviceType *t = device_type_find(tname);
                if (!t) {
                    kestrel_set_error(errp, "-device %s: unknown device type (try -device help)",
                                      tname);
                    g_free(tname);
                    return CMDLINE_ERROR;
                }
                g_free(tname);
                device_type_print_props(t, stdout);
                return CMDLINE_EXIT_OK;
            }
            g_ptr_array_add(cfg->device_opts, g_strdup(arg));
            break;
        case OPT_GLOBAL:
            g_ptr_array_add(cfg->global_opts, g_strdup(arg));
            break;
        case OPT_NOGRAPHIC:
            cfg->nographic = true;
            break;
        case OPT_DISPLAY: {
            char *kind = g_strndup(arg, strcspn(arg, ","));
            if (!strcmp(kind, "help")) {
                printf("Available display backends:\nnone\n");
                g_free(kind);
                return CMDLINE_EXIT_OK;
            }
            if (strcmp(kind, "none") != 0) {
                kestrel_set_error(errp, "-display %s: not available yet (only -display none; the "
                                  "SDL window comes with the display issue)", arg);
                g_free(kind);
                return CMDLINE_ERROR;
            }
            g_free(cfg->display);
            cfg->display = kind;
            break;
        }
        case OPT_VNC:
            /*
             * kvm-unit-tests and libvirt pass "-vnc none" to say "no VNC
             * server", which is what we have; a real display needs the server.
             */
            if (strcmp(arg, "none") != 0) {
                kestrel_set_error(errp, "-vnc %s: not supported yet (no VNC server; only "
                                  "-vnc none, or use -display none / -nographic)", arg);
                return CMDLINE_ERROR;
            }
            break;
        case OPT_NO_REBOOT:
            cfg->no_reboot = true;
            break;
        case OPT_NO_SHUTDOWN:
            cfg->no_shutdown = true;
            break;
        case OPT_NAME:
            /* "-name guest=NAME,debug-threads=on" or a plain name */
            replace(&cfg->name, g_str_has_prefix(arg, "guest=") ? arg + 6 : arg);
            break;
        case OPT_PIDFILE:
            replace(&cfg->pidfile, arg);
            break;
        case OPT_LOGFILE:
            replace(&cfg->log_file, arg);
            break;
        case OPT_LOG:
            if (!strcmp(arg, "help")) {
                log_print_categories(stdout);
                return CMDLINE_EXIT_OK;
            }
            if (!log_parse_mask(arg, &cfg->log_mask, errp))
                return CMDLINE_ERROR;
            break;
        case OPT_S:
            cfg->start_paused = true;
            break;
        case OPT_NODEFAULTS:
            cfg->nodefaults = true;
            break;
        case OPT_DRIVE:
            g_ptr_array_add(cfg->drive_opts, g_strdup(arg));
            break;
        case OPT_HD:
        case OPT_CDROM:
        case OPT_FD: {
            /* QEMU's shorthands: -hdX = index 0-3, -cdrom = index 2, -fdX = floppy unit. */
            GString *spec = g_string_new("file=");
            for (const char *c = arg; *c; c++) {
                g_string_append_c(spec, *c);
                if (*c == ',')
                    g_string_append_c(spec, ',');
            }
            if (opt->id == OPT_HD)
                g_string_append_printf(spec, ",index=%d,media=disk", name[2] - 'a');
            else if (opt->id == OPT_CDROM)
                g_string_append(spec, ",index=2,media=cdrom");
            else
                g_string_append_printf(spec, ",if=floppy,index=%d", name[2] - 'a');
            g_ptr_array_add(cfg->drive_opts, g_string_free(spec, FALSE));
            break;
        }
        case OPT_SNAPSHOT:
            cfg->snapshot = true;
            break;
        case OPT_BOOT:
            replace(&cfg->boot_opts, arg);
            break;
        case OPT_FW_CFG:
            g_ptr_array_add(cfg->fw_cfg_opts, g_strdup(arg));
            break;
        case OPT_NOT_YET:
            kestrel_set_error(errp, "%s: not implemented yet (needs %s)", a, opt->not_yet);
            return CMDLINE_ERROR;
        }
        if (r != CMDLINE_OK)
            return r;
    }

    /* Cross-option checks, so a bad combination fails before anything starts. */
    if ((cfg->initrd || cfg->append) && !cfg->kernel) {
        kestrel_set_error(errp, "%s given without -kernel", cfg->initrd ? "-initrd" : "-append");
        return CMDLINE_ERROR;
    }
    if (cfg->kernel && access(cfg->kernel, R_OK) != 0) {
        /* QEMU's words: kvm-unit-tests greps "could not open kernel" to see the line was accepted. */
        kestrel_set_error(errp, "-kernel %s: could not open kernel file: %s", cfg->kernel,
                          g_strerror(errno));
        return CMDLINE_ERROR;
    }
    if (cfg->bios && access(cfg->bios, R_OK) != 0) {
        kestrel_set_error(errp, "-bios %s: %s", cfg->bios, g_strerror(errno));
        return CMDLINE_ERROR;
    }
    if (cfg->snapshot)
        for (guint i = 0; i < cfg->drive_opts->len; i++) {
            char **p = (char **)&g_ptr_array_index(cfg->drive_opts, i);
            /* Appended last so it wins; an explicit snapshot=off before it is overridden,
             * as in QEMU where -snapshot applies to every drive. */
            char *with = g_strconcat(*p, ",snapshot=on", NULL);
            g_free(*p);
            *p = with;
        }
    if (cfg->qtest_spec && (!cfg->accel || strcmp(cfg->accel, "qtest") != 0)) {
        /* QEMU's qtest implies the qtest accelerator. */
        g_free(cfg->accel);
        cfg->accel = g_strdup("qtest");
    }
    if (cfg->accel && !strcmp(cfg->accel, "qtest") && !cfg->qtest_spec) {
        kestrel_set_error(errp, "-accel qtest needs -qtest SPEC (the test protocol endpoint)");
        return CMDLINE_ERROR;
    }
    for (guint i = 0; i < cfg->global_opts->len; i++)
        if (!device_set_global(g_ptr_array_index(cfg->global_opts, i), errp))
            return CMDLINE_ERROR;
    return CMDLINE_OK;
}
