/*
 * once.c — weft_once: run an initializer exactly once; concurrent callers
 * block (park) until it has finished.
 *
 * Design.  A state word (NONE -> RUNNING -> DONE) and a wait queue.  The
 * fast path is one acquire load seeing DONE, which orders everything fn did
 * before the caller's next step (DONE is stored with release after fn).
 * Otherwise the caller takes the queue lock: on NONE it becomes the runner,
 * records its weft_t, and calls fn with no lock held (fn may block, create
 * threads, or itself use weft_once on other objects); on RUNNING it parks;
 * when fn returns the runner stores DONE and wakes every parked caller
 * under the lock.  A runner calling weft_once on the same object from fn
 * would wait for itself: detected by the recorded weft_t, EDEADLK.
 *
 * Rejected: spinning callers (fn may take long or block); a mutex and a
 * flag (the same queue with an extra object); pthread's cancellation
 * cleanup (weft has no cancellation: if fn's thread exits inside fn the
 * object stays RUNNING, documented).
 */
#include "waitq.h"

enum { WF_ONCE_NONE = 0, WF_ONCE_RUNNING = 1, WF_ONCE_DONE = 2 };

int weft_once(weft_once_t *o, void (*fn)(void))
{
	if (!o || !fn)
		return EINVAL;
	if (__atomic_load_n(&o->_state, __ATOMIC_ACQUIRE) == WF_ONCE_DONE)
		return 0;
	int err = 0;
	struct wf_thread *self = wf_sync_self(&err);
	uintptr_t h = self ? wf_thread_handle(self) : 0;
	weft_waitq_ *q = &o->_wq;

	wf_waitq_lock(q);
	switch (o->_state) {
	case WF_ONCE_NONE: {
		__atomic_store_n(&o->_state, WF_ONCE_RUNNING, __ATOMIC_RELAXED);
		o->_runner = h;
		wf_waitq_unlock(q);
		fn();
		wf_waitq_lock(q);
		o->_runner = 0;
		__atomic_store_n(&o->_state, WF_ONCE_DONE, __ATOMIC_RELEASE);
		struct wf_wbatch b = WF_WBATCH_INIT;
		struct wf_wnode *n;
		while ((n = wf_waitq_pop(q)))
			wf_wbatch_add(&b, n, WF_WAKE_GRANTED);
		wf_waitq_unlock(q);
		(void)wf_wbatch_wake(&b);   /* untimed waits: none is refused */
		return 0;
	}
	case WF_ONCE_RUNNING: {
		if (self && o->_runner == h) {
			wf_waitq_unlock(q);
			return EDEADLK;
		}
		if (!self) {
			wf_waitq_unlock(q);
			return err;
		}
		/* Parked until the runner stores DONE and wakes us; DONE is
		 * stored before the wake (whose claim is a release), so fn's
		 * effects are visible when we return. */
		struct wf_wnode n = { .thread = self };
		wf_park_reason(self, WF_BLOCK_ONCE, o);
		(void)wf_waitq_wait(q, &n, 0, false);
		return 0;
	}
	default:
		wf_waitq_unlock(q);
		return 0;
	}
}
