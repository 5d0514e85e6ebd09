/*
 * blocking.c — weft_blocking_begin/end: a green thread announces a call
 * that may block its kernel thread.
 *
 * Announcing costs two stores.  The monitor (monitor.c) then treats the
 * worker as blocked as soon as the section has lasted WF_MON_STUCK_NS,
 * without asking the kernel, and hands its threads to another kernel
 * thread; a short call (a read from the page cache) is never retaken.
 * At the end, a retaken worker gives the calling thread to the active
 * workers and stands by (standby.c).
 */
#include <errno.h>
#include "sched_internal.h"

int weft_blocking_begin(void)
{
	struct wf_worker *w = wf_worker_self();
	struct wf_thread *self = w ? w->current : NULL;
	if (!self || self->kind == WF_KIND_IDLE)
		return 0;   /* not a green thread: nothing to hand off */
	atomic_store_explicit(&w->in_blocking, 1, memory_order_release);
	return 0;
}

int weft_blocking_end(void)
{
	struct wf_worker *w = wf_worker_self();
	struct wf_thread *self = w ? w->current : NULL;
	if (!self || self->kind == WF_KIND_IDLE)
		return 0;
	atomic_store_explicit(&w->in_blocking, 0, memory_order_relaxed);
	if (wf_worker_retaken(w) && !self->preempt_off)
		wf_worker_hand_over(w, self);
	return 0;
}
