/*
 * The big machine lock; the rules are in include/kestrel/lock.h.
 */
#include "kestrel/lock.h"

static GMutex bql;
static __thread bool bql_held;

void bql_lock(void)
{
    g_assert(!bql_held);
    g_mutex_lock(&bql);
    bql_held = true;
}

void bql_unlock(void)
{
    g_assert(bql_held);
    bql_held = false;
    g_mutex_unlock(&bql);
}

bool bql_locked(void)
{
    return bql_held;
}

bool bql_lock_unless_held(void)
{
    if (bql_held)
        return false;
    bql_lock();
    return true;
}

void bql_unlock_if_taken(bool taken)
{
    if (taken)
        bql_unlock();
}

void bql_cond_wait(GCond *cond)
{
    g_assert(bql_held);
    bql_held = false;
    g_cond_wait(cond, &bql);
    bql_held = true;
}
