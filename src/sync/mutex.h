/*
 * mutex.h — what the condition variable needs from the mutex: release it
 * around a wait, take it back, and move a signalled waiter onto the
 * mutex's own queue (wait morphing) instead of waking it.
 */
#ifndef WF_SYNC_MUTEX_H
#define WF_SYNC_MUTEX_H

#include "waitq.h"

/* weft_t of m's holder (0 when free).  Exact when asked by the holder. */
uintptr_t wf_mutex_owner(const weft_mutex_t *m) WF_HIDDEN;

/* The caller holds m: release it completely (recursion included) and return
 * the recursion depth to restore later.  May take m's queue lock and wake a
 * waiter; never yields (the caller is about to park). */
unsigned wf_mutex_release_all(weft_mutex_t *m) WF_HIDDEN;

/* Take m back for the thread n describes (n->thread, n->handle) after a
 * condition wait, untimed, and restore the recursion depth.  how is the
 * wake-up n got last: WF_WAKE_GRANTED (m was handed to it: nothing to do),
 * WF_WAKE_WOKEN (woken from m's queue in normal mode: it owns m's WOKEN bit),
 * anything else (lock from scratch). */
void wf_mutex_relock(weft_mutex_t *m, struct wf_wnode *n, uint32_t how,
                     unsigned depth) WF_HIDDEN;

/* Does the calling thread hold m, with nobody queued on m (a hint: a waiter
 * may queue right after, it then merely finds a woken condition waiter
 * competing with it like any newcomer)?  Exact about the holding. */
bool wf_mutex_held_by_caller_alone(const weft_mutex_t *m) WF_HIDDEN;

/* Under m's queue lock: link n, a parked condition waiter, at the tail of
 * m's queue so that an unlock of m wakes it.  With only_if_held, does so
 * only when m is held at that instant (its holder's unlock is then sure to
 * see the waiter) and returns false otherwise. */
bool wf_mutex_requeue_locked(weft_mutex_t *m, struct wf_wnode *n, bool only_if_held,
                             uint64_t now) WF_HIDDEN;

#endif
