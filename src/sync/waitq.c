/*
 * waitq.c — the out-of-line half of the wait queue (waitq.h has the design):
 * the generic park-and-clean-up-after-timeout sequence, and who is calling
 * on a primitive's first use.
 */
#include "waitq.h"

int wf_waitq_wait(weft_waitq_ *q, struct wf_wnode *n, uint64_t deadline, bool at_head)
{
	wf_waitq_enqueue(q, n, at_head);
	int r = wf_waitq_park(q, deadline);
	if (r == 0)
		return 0;   /* n->wake was written before the waker's claim */
	/* Timed out or interrupted.  n is still linked unless a waker
	 * dequeued it before the timer's or the interrupter's claim; under
	 * q's lock the two cases are told apart by n->q. */
	wf_waitq_lock(q);
	if (n->q == q)
		wf_waitq_remove(q, n);
	else
		n->raced = 1;
	return r;
}

void wf_waitq_timeout_unlock(weft_waitq_ *q, struct wf_wnode *n)
{
	wf_waitq_unlock(q);
	if (!n->raced)
		return;
	/* The waker that dequeued us is about to find its claim refused and
	 * pass its grant on; it marks us done after its last access to the
	 * object.  It runs on another worker inside weft (it cannot be
	 * switched out there), so this is short unless the kernel deschedules
	 * it: then give the CPU away rather than spin through our time slice. */
	unsigned spins = 0;
	while (!__atomic_load_n(&n->done, __ATOMIC_ACQUIRE))
		wf_spin_backoff(&spins);
}

struct wf_thread *wf_sync_self_slow(int *err)
{
	int e = wf_ensure_init();
	if (e) {
		*err = e;
		return NULL;
	}
	struct wf_thread *t = wf_current();
	if (!t && !(t = wf_foreign_self()))   /* a foreign thread (park.h) */
		*err = EAGAIN;
	return t;
}
