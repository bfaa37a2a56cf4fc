/*
 * Clocks and timers.
 *
 * CLOCK_VIRTUAL runs only while the VM runs (PIT, RTC periodic interrupt,
 * HPET schedule against it); under the qtest accelerator it advances only
 * when the test steps it.  CLOCK_REAL is the host's monotonic clock (UI,
 * timeouts; named so to avoid POSIX CLOCK_REALTIME, a different thing).
 * CLOCK_HOST is wall-clock time (RTC date).
 *
 * Timer callbacks run on the main thread with the big lock held.
 */
#ifndef KESTREL_CLOCK_H
#define KESTREL_CLOCK_H

#include "kestrel/common.h"

typedef enum { CLOCK_VIRTUAL, CLOCK_REAL, CLOCK_HOST, CLOCK__COUNT } ClockType;

#define NS_PER_SEC 1000000000LL

int64_t clock_get_ns(ClockType type);

typedef struct Timer Timer;
typedef void (*TimerCallback)(void *opaque);

Timer *timer_new(ClockType type, TimerCallback cb, void *opaque);
void timer_free(Timer *t);
/* Arm (or re-arm) to fire once the clock reaches expire_ns (absolute). */
void timer_mod(Timer *t, int64_t expire_ns);
void timer_del(Timer *t);
bool timer_pending(const Timer *t);
int64_t timer_expire_time(const Timer *t);   /* -1 if not pending */

/* Stop/start the virtual clock with the VM (it does not advance while stopped). */
void clock_virtual_stop(void);
void clock_virtual_start(void);
bool clock_virtual_running(void);

/*
 * Manual mode (qtest): the virtual clock moves only through clock_virtual_step
 * and clock_virtual_set, which run every timer that expires on the way, in order.
 */
void clock_virtual_set_manual(bool manual);
int64_t clock_virtual_step(int64_t ns);
int64_t clock_virtual_set(int64_t ns);

/* Absolute expiry of the earliest CLOCK_VIRTUAL timer, or -1 if none is armed. */
int64_t clock_virtual_next_deadline(void);

/* Earliest deadline over all clocks in ns from now (-1 = none, 0 = overdue). */
int64_t timers_next_deadline_ns(void);
/* Run expired timers of all clocks; returns true if any ran. Big lock held. */
bool timers_run_expired(void);

/* Hooked by the main loop so that arming an earlier timer wakes it up. */
void timers_set_notify(void (*notify)(void));

#endif
