/*
 * Clocks and timers (include/kestrel/clock.h).
 *
 * The virtual clock is host monotonic time minus the time the VM spent
 * stopped, so a paused guest sees no time pass.  In manual mode (qtest) it is
 * a plain counter moved by the test.  Timers sit in a list per clock sorted by
 * expiry; the main loop sleeps until the earliest and runs the expired ones.
 */
#include "kestrel/clock.h"
#include "kestrel/lock.h"

#include <time.h>

struct Timer {
    ClockType type;
    TimerCallback cb;
    void *opaque;
    int64_t expire;          /* -1: not pending */
    Timer *next;
};

static Timer *timer_lists[CLOCK__COUNT];
static GMutex timer_lock;    /* timers may be armed from vCPU threads under the big lock;
                                the list lock guards against the main loop's deadline query */
static void (*timers_notify)(void);

static bool virtual_manual;
static bool virtual_running = true;
static int64_t virtual_offset;       /* virtual = realtime - offset */
static int64_t virtual_stopped_at;   /* value while stopped */
static int64_t virtual_manual_now;

static int64_t host_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t clock_get_ns(ClockType type)
{
    switch (type) {
    case CLOCK_VIRTUAL:
        if (virtual_manual)
            return virtual_manual_now;
        if (!virtual_running)
            return virtual_stopped_at;
        return host_clock(CLOCK_MONOTONIC) - virtual_offset;
    case CLOCK_REAL:
        return host_clock(CLOCK_MONOTONIC);
    case CLOCK_HOST:
    default:
        return host_clock(CLOCK_REALTIME);
    }
}

void clock_virtual_stop(void)
{
    if (!virtual_running)
        return;
    virtual_stopped_at = clock_get_ns(CLOCK_VIRTUAL);
    virtual_running = false;
}

void clock_virtual_start(void)
{
    if (virtual_running)
        return;
    virtual_offset = host_clock(CLOCK_MONOTONIC) - virtual_stopped_at;
    virtual_running = true;
    if (timers_notify)
        timers_notify();
}

bool clock_virtual_running(void)
{
    return virtual_running;
}

void clock_virtual_set_manual(bool manual)
{
    if (manual && !virtual_manual)
        virtual_manual_now = clock_get_ns(CLOCK_VIRTUAL);
    virtual_manual = manual;
}

Timer *timer_new(ClockType type, TimerCallback cb, void *opaque)
{
    Timer *t = g_new0(Timer, 1);
    t->type = type;
    t->cb = cb;
    t->opaque = opaque;
    t->expire = -1;
    return t;
}

static void timer_unlink(Timer *t)
{
    for (Timer **p = &timer_lists[t->type]; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    t->next = NULL;
    t->expire = -1;
}

void timer_del(Timer *t)
{
    if (!t)
        return;
    g_mutex_lock(&timer_lock);
    if (t->expire >= 0)
        timer_unlink(t);
    g_mutex_unlock(&timer_lock);
}

void timer_free(Timer *t)
{
    timer_del(t);
    g_free(t);
}

void timer_mod(Timer *t, int64_t expire_ns)
{
    bool first;

    if (expire_ns < 0)
        expire_ns = 0;
    g_mutex_lock(&timer_lock);
    if (t->expire >= 0)
        timer_unlink(t);
    t->expire = expire_ns;
    Timer **p = &timer_lists[t->type];
    while (*p && (*p)->expire <= expire_ns)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
    first = timer_lists[t->type] == t;
    g_mutex_unlock(&timer_lock);
    if (first && timers_notify)
        timers_notify();
}

bool timer_pending(const Timer *t)
{
    return t->expire >= 0;
}

int64_t timer_expire_time(const Timer *t)
{
    return t->expire;
}

int64_t clock_virtual_next_deadline(void)
{
    g_mutex_lock(&timer_lock);
    int64_t d = timer_lists[CLOCK_VIRTUAL] ? timer_lists[CLOCK_VIRTUAL]->expire : -1;
    g_mutex_unlock(&timer_lock);
    return d;
}

int64_t timers_next_deadline_ns(void)
{
    int64_t best = -1;

    g_mutex_lock(&timer_lock);
    for (int c = 0; c < CLOCK__COUNT; c++) {
        Timer *t = timer_lists[c];
        if (!t)
            continue;
        /* A stopped or manually driven virtual clock never expires on its own. */
        if (c == CLOCK_VIRTUAL && (virtual_manual || !virtual_running))
            continue;
        int64_t d = t->expire - clock_get_ns(c);
        if (d < 0)
            d = 0;
        if (best < 0 || d < best)
            best = d;
    }
    g_mutex_unlock(&timer_lock);
    return best;
}

/* Run every timer of one clock that expired by 'now'.  Callbacks may re-arm timers. */
static bool timers_run_clock(ClockType c, int64_t now)
{
    bool ran = false;

    for (;;) {
        g_mutex_lock(&timer_lock);
        Timer *t = timer_lists[c];
        if (!t || t->expire > now) {
            g_mutex_unlock(&timer_lock);
            return ran;
        }
        timer_unlink(t);
        g_mutex_unlock(&timer_lock);
        t->cb(t->opaque);
        ran = true;
    }
}

bool timers_run_expired(void)
{
    bool ran = false;
    for (int c = 0; c < CLOCK__COUNT; c++) {
        if (c == CLOCK_VIRTUAL && (virtual_manual || !virtual_running))
            continue;
        ran |= timers_run_clock(c, clock_get_ns(c));
    }
    return ran;
}

int64_t clock_virtual_set(int64_t ns)
{
    if (!virtual_manual)
        return clock_get_ns(CLOCK_VIRTUAL);
    /* Advance timer by timer so each callback sees the clock at its own deadline. */
    for (;;) {
        int64_t d = clock_virtual_next_deadline();
        if (d < 0 || d > ns)
            break;
        if (d > virtual_manual_now)
            virtual_manual_now = d;
        timers_run_clock(CLOCK_VIRTUAL, virtual_manual_now);
    }
    if (ns > virtual_manual_now)
        virtual_manual_now = ns;
    return virtual_manual_now;
}

int64_t clock_virtual_step(int64_t ns)
{
    return clock_virtual_set(clock_get_ns(CLOCK_VIRTUAL) + (ns > 0 ? ns : 0));
}

void timers_set_notify(void (*notify)(void))
{
    timers_notify = notify;
}
