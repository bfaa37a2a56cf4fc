/*
 * The main loop and run-state requests.
 *
 * The main thread runs glib's default GMainContext and holds the big lock
 * except while it sleeps in poll() (lock.h).  Timers are a GSource whose
 * timeout is the earliest deadline.  Shutdown, reset and exit requests may
 * come from any thread (a vCPU doing a port write, a signal handler via
 * exit requests); they set flags and wake the loop, which acts on them with
 * the vCPUs paused.
 */
#include "kestrel/machine.h"
#include "kestrel/accel.h"
#include "kestrel/clock.h"
#include "kestrel/device.h"
#include "kestrel/lock.h"
#include "kestrel/log.h"

#include <signal.h>
#include <stdlib.h>

Machine *current_machine;

static volatile int reset_requested, poweroff_requested, exit_requested, fatal_requested;
static int triple_fault_cpu;       /* CPU id + 1 of the first triple fault since the last reset */
static volatile int exit_status;
static GPollFunc default_poll;


GMainContext *main_loop_context(void)
{
    return g_main_context_default();
}

void main_loop_wakeup(void)
{
    g_main_context_wakeup(g_main_context_default());
}

void machine_request_reset(void)
{
    __atomic_store_n(&reset_requested, 1, __ATOMIC_SEQ_CST);
    cpus_request_stop(current_machine);
    main_loop_wakeup();
}

void machine_request_poweroff(void)
{
    __atomic_store_n(&poweroff_requested, 1, __ATOMIC_SEQ_CST);
    cpus_request_stop(current_machine);
    main_loop_wakeup();
}

void machine_request_exit(int status)
{
    /* The first exit request wins: a later Ctrl-A x must not mask a test's status. */
    if (!__atomic_exchange_n(&exit_requested, 1, __ATOMIC_SEQ_CST))
        exit_status = status;
    main_loop_wakeup();
}

void machine_request_cpu_shutdown(int cpu_id)
{
    LOG(LOG_GUEST_ERROR, "cpu %d: triple fault, resetting the machine\n", cpu_id);
    /* Remembered (+1, first one wins) so that -no-reboot can say why it exits. */
    int none = 0;
    __atomic_compare_exchange_n(&triple_fault_cpu, &none, cpu_id + 1, false,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    machine_request_reset();
}

void machine_request_fatal(const char *why)
{
    error_report("%s", why);
    if (!__atomic_exchange_n(&exit_requested, 1, __ATOMIC_SEQ_CST))
        exit_status = 1;
    __atomic_store_n(&fatal_requested, 1, __ATOMIC_SEQ_CST);
    main_loop_wakeup();
}

static gboolean timer_source_prepare(GSource *src, gint *timeout)
{
    int64_t ns = timers_next_deadline_ns();
    if (ns < 0)
        *timeout = -1;
    else
        *timeout = (gint)MIN((ns + 999999) / 1000000, G_MAXINT);
    return ns == 0;
}

static gboolean timer_source_check(GSource *src)
{
    return timers_next_deadline_ns() == 0;
}

static gboolean timer_source_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    timers_run_expired();
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs timer_source_funcs = {
    .prepare = timer_source_prepare,
    .check = timer_source_check,
    .dispatch = timer_source_dispatch,
};

static gint poll_without_bql(GPollFD *fds, guint nfds, gint timeout)
{
    gint r;
    /* Sleeping with the lock would stall every vCPU that needs a device. */
    if (timeout == 0)
        return default_poll(fds, nfds, timeout);
    bql_unlock();
    r = default_poll(fds, nfds, timeout);
    bql_lock();
    return r;
}

static void on_terminate_signal(int sig)
{
    /* Only async-signal-safe work here; the loop does the rest. */
    if (!__atomic_exchange_n(&exit_requested, 1, __ATOMIC_SEQ_CST))
        exit_status = 128 + sig;
    g_main_context_wakeup(g_main_context_default());
}

void main_loop_init(void)
{
    GMainContext *ctx = g_main_context_default();
    GSource *src = g_source_new(&timer_source_funcs, sizeof(GSource));

    g_source_attach(src, ctx);
    g_source_unref(src);
    default_poll = g_main_context_get_poll_func(ctx);
    g_main_context_set_poll_func(ctx, poll_without_bql);
    timers_set_notify(main_loop_wakeup);

    struct sigaction sa = { .sa_handler = on_terminate_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int main_loop_run(Machine *m)
{
    GMainContext *ctx = g_main_context_default();

    for (;;) {
        if (__atomic_load_n(&exit_requested, __ATOMIC_SEQ_CST))
            break;
        if (__atomic_exchange_n(&poweroff_requested, 0, __ATOMIC_SEQ_CST)) {
            if (!m->cfg->no_shutdown) {
                exit_status = 0;
                break;
            }
            /* -no-shutdown: stay alive with the guest stopped, as QEMU does. */
            cpus_pause(m);
            clock_virtual_stop();
        }
        if (__atomic_exchange_n(&reset_requested, 0, __ATOMIC_SEQ_CST)) {
            int tf = __atomic_exchange_n(&triple_fault_cpu, 0, __ATOMIC_SEQ_CST);
            if (m->cfg->no_reboot) {
                /*
                 * QEMU exits silently here; an OS developer whose kernel just
                 * vanished wants to know it was a triple fault (-d int shows more).
                 */
                if (tf)
                    error_report("guest triple fault on CPU %d: exiting because of -no-reboot", tf - 1);
                exit_status = 0;
                break;
            }
            GError *err = NULL;
            cpus_pause(m);
            if (!pc_machine_reset(m, &err)) {
                /* The kernel file changed or vanished since start-up. */
                error_report("reset: %s", err->message);
                g_error_free(err);
                exit_status = 1;
                break;
            }
            cpus_resume(m);
        }
        g_main_context_iteration(ctx, TRUE);
    }
    return exit_status;
}
