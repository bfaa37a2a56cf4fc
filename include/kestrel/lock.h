/*
 * The big machine lock ("BQL") and the threading rules — the only place
 * they are written down.
 *
 * - The main thread runs glib's main loop and holds the big lock at all
 *   times except while it sleeps in poll().  Timers, chardev/socket input,
 *   block completions, UI and the monitor therefore run under the lock.
 * - Each vCPU thread runs guest code without the lock and takes it only to
 *   call into device code (a port or MMIO access, an interrupt acknowledge
 *   that reaches a userspace interrupt controller).
 * - Device callbacks, timers and IRQ sinks always run with the lock held, so
 *   device code is single-threaded code and never takes the lock itself.
 * - Lock order: the big lock first, then any engine-private lock (e.g. the
 *   vCPU park mutex in system/cpus.c).  Never block on a vCPU while holding
 *   an engine-private lock.
 * - The memory topology changes only under the big lock (see memory.h).
 */
#ifndef KESTREL_LOCK_H
#define KESTREL_LOCK_H

#include "kestrel/common.h"

void bql_lock(void);
void bql_unlock(void);
bool bql_locked(void);        /* true if the calling thread holds it */

/*
 * For engine code reached both with and without the lock (the software
 * CPU's device and page-walk paths): take it unless this thread already
 * holds it, and give it back only if it was taken here.
 */
bool bql_lock_unless_held(void);
void bql_unlock_if_taken(bool taken);

/* Condition-variable wait that releases the big lock while asleep. */
void bql_cond_wait(GCond *cond);

#endif
