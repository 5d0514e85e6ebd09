/*
 * foreign.h — the two halves of a wait by a foreign thread (park.h), for
 * park.c only: the kernel-side wait and its wake-up.
 */
#ifndef WF_SCHED_FOREIGN_H
#define WF_SCHED_FOREIGN_H

#include <stdint.h>
#include "park.h"

/* wf_park for a caller with no worker: release held, sleep on the caller's
 * wait word until its wait is claimed (0) or deadline passes and the
 * caller's own claim wins (ETIMEDOUT). */
int wf_park_foreign(wf_spin_t *held, uint64_t deadline) WF_HIDDEN;

/* wf_unpark's second half for a foreign waiter whose wait the caller has
 * just claimed: wake it in the kernel. */
void wf_unpark_foreign(struct wf_thread *t) WF_HIDDEN;

#endif
