/*
 * vCPU threads on top of the accelerator interface (accel.h).
 *
 * Each vCPU thread loops calling the engine's vcpu_run without the big lock.
 * Pausing (for reset, -S, -no-shutdown) sets a flag, kicks every vCPU and
 * waits until all threads are parked on the condition variable here.  A
 * thread whose engine reports VCPU_RUN_HALTED sleeps until cpus_wake.
 * Lock order: the big lock, then cpus.lock (lock.h).
 */
#include "kestrel/accel.h"
#include "kestrel/machine.h"
#include "kestrel/lock.h"

static struct {
    GMutex lock;
    GCond cond;
    bool pause;
    bool exit;
    int nthreads;
    int parked;
    unsigned wake_gen;
    GThread **threads;
    bool started;
} cpus;

typedef struct VcpuThreadArg {
    Machine *m;
    int id;
} VcpuThreadArg;

bool cpus_should_stop(Machine *m, int id)
{
    return __atomic_load_n(&cpus.pause, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&cpus.exit, __ATOMIC_ACQUIRE);
}

void cpus_wake(Machine *m)
{
    g_mutex_lock(&cpus.lock);
    cpus.wake_gen++;
    g_cond_broadcast(&cpus.cond);
    g_mutex_unlock(&cpus.lock);
}

static gpointer vcpu_thread(gpointer opaque)
{
    VcpuThreadArg *arg = opaque;
    Machine *m = arg->m;
    int id = arg->id;
    const AccelOps *ops = m->accel;

    if (ops->vcpu_thread_init)
        ops->vcpu_thread_init(m, id);
    for (;;) {
        g_mutex_lock(&cpus.lock);
        if (cpus.pause && !cpus.exit) {
            cpus.parked++;
            g_cond_broadcast(&cpus.cond);
            while (cpus.pause && !cpus.exit)
                g_cond_wait(&cpus.cond, &cpus.lock);
            cpus.parked--;
        }
        bool quit = cpus.exit;
        unsigned gen = cpus.wake_gen;
        g_mutex_unlock(&cpus.lock);
        if (quit)
            break;

        VcpuRunResult r = ops->vcpu_run(m, id);
        if (r == VCPU_RUN_HALTED) {
            g_mutex_lock(&cpus.lock);
            while (gen == cpus.wake_gen && !cpus.pause && !cpus.exit)
                g_cond_wait(&cpus.cond, &cpus.lock);
            g_mutex_unlock(&cpus.lock);
        }
    }
    g_free(arg);
    return NULL;
}

static void cpus_kick_all(Machine *m)
{
    const AccelOps *ops = m->accel;
    if (ops->single_thread)
        ops->vcpu_kick(m, -1);
    else
        for (int i = 0; i < m->smp_cpus; i++)
            ops->vcpu_kick(m, i);
}

bool cpus_start(Machine *m, GError **errp)
{
    const AccelOps *ops = m->accel;

    if (!ops->has_cpu)
        return true;
    cpus.nthreads = ops->single_thread ? 1 : m->smp_cpus;
    cpus.threads = g_new0(GThread *, cpus.nthreads);
    cpus.pause = m->cfg->start_paused;
    for (int i = 0; i < cpus.nthreads; i++) {
        VcpuThreadArg *arg = g_new(VcpuThreadArg, 1);
        arg->m = m;
        arg->id = ops->single_thread ? -1 : i;
        char *name = g_strdup_printf("vcpu%d", i);
        cpus.threads[i] = g_thread_try_new(name, vcpu_thread, arg, errp);
        g_free(name);
        if (!cpus.threads[i]) {
            g_free(arg);
            return false;
        }
    }
    cpus.started = true;
    return true;
}

/*
 * A guest asked for a reset or power-off from a vCPU thread: like QEMU, stop
 * running guest code now rather than when the main loop gets round to it.
 * Otherwise the CPU runs on past the request (SeaBIOS follows its 0xCF9
 * write with "lidt; int3", which then triple-faults into a second reset).
 * The main loop's cpus_pause()/cpus_resume() around the reset complete it.
 */
void cpus_request_stop(Machine *m)
{
    if (!cpus.started || !m)
        return;
    g_mutex_lock(&cpus.lock);
    cpus.pause = true;
    g_mutex_unlock(&cpus.lock);
    cpus_kick_all(m);
}

void cpus_pause(Machine *m)
{
    if (!cpus.started)
        return;
    g_mutex_lock(&cpus.lock);
    cpus.pause = true;
    g_mutex_unlock(&cpus.lock);
    cpus_kick_all(m);
    /* vCPUs may be waiting for the big lock to finish a device access: drop it meanwhile. */
    bool held = bql_locked();
    if (held)
        bql_unlock();
    g_mutex_lock(&cpus.lock);
    g_cond_broadcast(&cpus.cond);     /* wake halted ones so they park */
    while (cpus.parked < cpus.nthreads && !cpus.exit)
        g_cond_wait(&cpus.cond, &cpus.lock);
    g_mutex_unlock(&cpus.lock);
    if (held)
        bql_lock();
}

void cpus_resume(Machine *m)
{
    if (!cpus.started)
        return;
    g_mutex_lock(&cpus.lock);
    cpus.pause = false;
    g_cond_broadcast(&cpus.cond);
    g_mutex_unlock(&cpus.lock);
}

void cpus_stop(Machine *m)
{
    if (!cpus.started)
        return;
    g_mutex_lock(&cpus.lock);
    cpus.exit = true;
    g_cond_broadcast(&cpus.cond);
    g_mutex_unlock(&cpus.lock);
    cpus_kick_all(m);
    bool held = bql_locked();
    if (held)
        bql_unlock();
    for (int i = 0; i < cpus.nthreads; i++)
        g_thread_join(cpus.threads[i]);
    if (held)
        bql_lock();
    cpus.started = false;
}
