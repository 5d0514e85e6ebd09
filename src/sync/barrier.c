/*
 * barrier.c — weft_barrier_t: a reusable barrier for a fixed number of
 * threads.
 *
 * Design.  A count of arrivals and a FIFO wait queue under the queue lock.
 * Each arrival but the last parks; the last one resets the count for the
 * next phase, wakes every parked thread (granting each its release) and
 * returns WEFT_BARRIER_SERIAL_THREAD.  Exactly one thread per phase sees
 * the serial value because "last" is decided under the lock.  Phases
 * cannot mix: a thread released from phase k that arrives again at once
 * increments the reset count of phase k+1, and threads still parked from
 * phase k have already been dequeued — a wake is a grant, not a condition
 * to re-check, so no generation counter is needed.
 *
 * The serial thread dequeues everyone under the lock and wakes them after
 * unlocking, touching only their threads; the woken threads return without
 * touching the barrier again.  So any thread may destroy it as soon as its
 * own wait has returned.
 *
 * Rejected: a sense-reversing spin barrier (spins a worker away while
 * threads arrive slowly); a mutex + condition variable + generation (two
 * objects and a herd on the mutex at release, for the same guarantee).
 */
#include "waitq.h"

#define WF_BARRIER_MAGIC 0x77626172u

static inline bool wf_barrier_ok(const weft_barrier_t *b)
{
	return b && __atomic_load_n(&b->_magic, __ATOMIC_RELAXED) == WF_BARRIER_MAGIC;
}

int weft_barrier_init(weft_barrier_t *b, unsigned count)
{
	if (!b || count == 0)
		return EINVAL;
	b->_count = count;
	b->_arrived = 0;
	wf_waitq_init(&b->_wq);
	__atomic_store_n(&b->_magic, WF_BARRIER_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

int weft_barrier_destroy(weft_barrier_t *b)
{
	if (!wf_barrier_ok(b))
		return EINVAL;
	int e = 0;
	wf_waitq_lock(&b->_wq);
	if (b->_arrived)
		e = EBUSY;
	else
		__atomic_store_n(&b->_magic, 0, __ATOMIC_RELAXED);
	wf_waitq_unlock(&b->_wq);
	return e;
}

int weft_barrier_wait(weft_barrier_t *b)
{
	if (!wf_barrier_ok(b))
		return EINVAL;
	int err = 0;
	struct wf_thread *self = wf_sync_self(&err);
	weft_waitq_ *q = &b->_wq;
	wf_waitq_lock(q);
	if (b->_arrived + 1 == b->_count) {
		/* Last to arrive: next phase starts empty, release everyone. */
		b->_arrived = 0;
		struct wf_wbatch wb = WF_WBATCH_INIT;
		struct wf_wnode *n;
		while ((n = wf_waitq_pop(q)))
			wf_wbatch_add(&wb, n, WF_WAKE_GRANTED);
		wf_waitq_unlock(q);   /* last access to b */
		/* A claim is refused only to a waiter being cancelled at that
		 * moment: it finds itself dequeued (the phase is over for it)
		 * and waits for done. */
		wf_wnode_release(wf_wbatch_wake(&wb));
		return WEFT_BARRIER_SERIAL_THREAD;
	}
	if (!self) {
		wf_waitq_unlock(q);   /* would block and cannot park */
		return err;
	}
	b->_arrived++;
	/* A cancellation point (untimed: 0, or EINTR when cancelled). */
	struct wf_wnode n = { .thread = self, .intr = WF_INTR_CANCEL };
	wf_park_reason(self, WF_BLOCK_BARRIER, b);
	if (wf_waitq_wait(q, &n, 0, false) == 0)
		return 0;
	/* Cancelled.  Still queued: withdraw the arrival, the phase goes on
	 * without us.  Dequeued by the last arrival (raced): the phase
	 * completed with us in it, so the wait succeeds, and the request is
	 * acted on at the next cancellation point. */
	bool raced = n.raced;
	if (!raced)
		b->_arrived--;
	wf_waitq_timeout_unlock(q, &n);
	return raced ? 0 : wf_interrupted();
}
