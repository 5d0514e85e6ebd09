/*
 * foreign.h — what park.c needs of foreign.c: a foreign thread's identity,
 * made on first use, and the two halves of its wait (the kernel-side wait
 * and its wake-up).  For park.c only.
 */
#ifndef WF_SCHED_FOREIGN_H
#define WF_SCHED_FOREIGN_H

#include <stdint.h>
#include "park.h"

/* Make the calling kernel thread's foreign TCB and set wf_tls_foreign
 * (wf_foreign_self, park.h, when it has none yet); NULL when no TCB can be
 * had. */
struct wf_thread *wf_foreign_make(void) WF_HIDDEN;

/* wf_park for a caller with no worker: release held, sleep on the caller's
 * wait word until its wait is claimed (0) or deadline passes and the
 * caller's own claim wins (ETIMEDOUT). */
int wf_park_foreign(wf_spin_t *held, uint64_t deadline) WF_HIDDEN;

/* wf_unpark's second half for a foreign waiter whose wait the caller has
 * just claimed: wake it in the kernel. */
void wf_unpark_foreign(struct wf_thread *t) WF_HIDDEN;

#endif
