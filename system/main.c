/*
 * Kestrel's entry point: parse the command line, build the machine, run it.
 * Every user-caused error reaches here as a GError: one line, exit status 1.
 */
#include "kestrel/cmdline.h"
#include "kestrel/accel.h"
#include "kestrel/chardev.h"
#include "kestrel/clock.h"
#include "kestrel/drive.h"
#include "kestrel/lock.h"
#include "kestrel/log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static char *pidfile_path;

static bool pidfile_write(const char *path, GError **errp)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        kestrel_set_error(errp, "-pidfile %s: %s", path, g_strerror(errno));
        return false;
    }
    /* A locked pidfile means another instance owns it, as with QEMU. */
    if (lockf(fd, F_TLOCK, 0) < 0) {
        kestrel_set_error(errp, "-pidfile %s: already locked by another running process", path);
        close(fd);
        return false;
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, buf, n) != n) {
        kestrel_set_error(errp, "-pidfile %s: %s", path, g_strerror(errno));
        close(fd);
        return false;
    }
    /* Keep fd open: the lock lives as long as we do. */
    pidfile_path = g_strdup(path);
    return true;
}

/*
 * Pick the engine.  With no -accel: KVM if usable, else the software CPU,
 * saying which and why in one line.  "a:b" tries in order.  An engine with a
 * caveat (KVM with no VT-x/AMD-V underneath, which emulates every guest
 * instruction in the host kernel) is passed over in a list when a later one
 * has none, and used with a warning when it is all there is.
 */
static const AccelOps *accel_select(MachineConfig *cfg, char **notice, char **warning,
                                    GError **errp)
{
    bool defaulted = cfg->accel == NULL;
    gchar **names = g_strsplit(defaulted ? "kvm:tcg" : cfg->accel, ":", -1);
    GString *reasons = g_string_new(NULL);
    const AccelOps *chosen = NULL, *fallback = NULL;
    char *fallback_caveat = NULL;

    for (gchar **n = names; *n && !chosen; n++) {
        const AccelOps *ops = accel_find(*n);
        char *why = NULL;
        if (!ops) {
            why = g_strdup(!strcmp(*n, "tcg") ? "the software CPU is not built in yet"
                                              : "no such accelerator (try -accel help)");
        } else if (ops->probe && !ops->probe(&why)) {
            if (!why)
                why = g_strdup("not usable here");
        } else if (ops->caveat && (why = ops->caveat()) != NULL) {
            if (!fallback) {
                fallback = ops;
                fallback_caveat = g_strdup(why);
            }
        } else {
            chosen = ops;
        }
        if (why) {
            g_string_append_printf(reasons, "%s%s: %s", reasons->len ? "; " : "", *n, why);
            g_free(why);
        }
    }
    if (!chosen && fallback) {
        chosen = fallback;
        *warning = g_strdup_printf("-accel %s: %s", fallback->name, fallback_caveat);
    } else if (!chosen) {
        kestrel_set_error(errp, "no usable accelerator (%s)", reasons->str);
    } else if (defaulted && !strcmp(chosen->name, "kvm")) {
        *notice = g_strdup("using KVM");
    } else if (reasons->len) {
        *notice = g_strdup_printf("using the %s accelerator (%s)",
                                  !strcmp(chosen->name, "tcg") ? "software CPU (tcg)"
                                                               : chosen->name,
                                  reasons->str);
    }
    g_free(fallback_caveat);
    g_string_free(reasons, TRUE);
    g_strfreev(names);
    return chosen;
}

static int run(int argc, char **argv)
{
    static MachineConfig cfg;
    static Machine machine;
    Machine *m = &machine;
    GError *err = NULL;

    machine_config_init(&cfg);
    switch (cmdline_parse(argc, argv, &cfg, &err)) {
    case CMDLINE_EXIT_OK:
        return 0;
    case CMDLINE_ERROR:
        goto fail;
    case CMDLINE_OK:
        break;
    }
    log_mask = cfg.log_mask;
    if (cfg.log_file && !log_set_file(cfg.log_file, &err))
        goto fail;

    m->cfg = &cfg;
    m->smp_cpus = cfg.smp_cpus;
    current_machine = m;

    main_loop_init();
    bql_lock();       /* the main thread holds it except in poll() (lock.h) */
    atexit(chardevs_cleanup);

    /* Printed once the machine is built, so a bad command line still gets one line. */
    char *accel_notice = NULL, *accel_warning = NULL;
    m->accel = accel_select(&cfg, &accel_notice, &accel_warning, &err);
    if (!m->accel)
        goto fail;
    if (!pc_machine_init(m, &err))
        goto fail;
    if (!m->accel->init(m, &err))
        goto fail;
    for (int i = 0; m->accel->has_cpu && i < m->smp_cpus; i++)
        if (!m->accel->vcpu_init(m, i, &err))
            goto fail;
    if (!chardevs_wait_for_clients(&err))
        goto fail;
    if (cfg.pidfile && !pidfile_write(cfg.pidfile, &err))
        goto fail;

    if (!pc_machine_reset(m, &err))
        goto fail;
    if (accel_notice) {
        error_report("%s", accel_notice);
        g_free(accel_notice);
    }
    if (accel_warning) {
        error_report("warning: %s", accel_warning);
        g_free(accel_warning);
    }
    if (m->accel->has_cpu && !m->accel->vcpu_run) {
        kestrel_set_error(&err, "accelerator %s cannot run guest code", m->accel->name);
        goto fail;
    }
    if (!cpus_start(m, &err))
        goto fail;
    if (cfg.start_paused)
        clock_virtual_stop();

    int status = main_loop_run(m);

    cpus_stop(m);
    if (m->accel->cleanup)
        m->accel->cleanup(m);
    drives_close_all();     /* flushes and unlocks images */
    chardevs_cleanup();
    if (pidfile_path)
        unlink(pidfile_path);
    return status;

fail:
    drives_close_all();
    chardevs_cleanup();
    if (pidfile_path)
        unlink(pidfile_path);
    error_report("%s", err ? err->message : "unknown error");
    g_clear_error(&err);
    return 1;
}

int main(int argc, char **argv)
{
    int status = run(argc, argv);
    fflush(stdout);
    /*
     * vCPU threads are joined and backends closed; _exit skips destructors of
     * libraries that may still hold references to freed guest memory.
     */
    exit(status);
}
