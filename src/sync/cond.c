/*
 * cond.c — weft_cond_t: condition variables with wait morphing.
 *
 * Design.  A condition variable is one FIFO wait queue plus the mutex its
 * current waiters use.  A waiter links itself into the cond's queue, then
 * releases the mutex, then parks, so a signal that follows the mutex release
 * (or any predicate change made under the mutex) finds it queued: no lost
 * wake-up (docs/design.md, "Parking and the sync objects").  The cond's lock
 * is not held across the mutex release, which may wake a mutex waiter (system
 * calls included) and would make every signaller spin through it.  In that
 * window the node is "arming": linked, but its wait is not published, so a
 * signaller that pops it must not claim it (a claim before the switch could
 * queue the waiter on its own worker, which would then try to switch to
 * itself).  It just leaves WF_WAKE_SIGNAL in the node; the waiter, relocking
 * the cond, finds itself unlinked and returns with the signal.  Otherwise it
 * publishes the wait and parks under the cond's lock as park.h prescribes.
 *
 * Broadcast does not simply wake: a woken waiter's first act is to lock
 * the mutex, which the broadcaster usually still holds, so N waiters would
 * run only to park again at once (the thundering herd).  Instead, while
 * the mutex is held, waiters are moved from the cond's queue to the tail
 * of the mutex's queue, still parked, and are woken by the mutex's unlock
 * like any mutex waiter ("wait morphing", Linux's FUTEX_CMP_REQUEUE).
 * When the mutex is free at that instant nobody would unlock it, so
 * broadcast wakes the oldest and moves the rest: the woken one is bound to
 * lock the mutex and its unlock then wakes the next (mutex.c, I3).
 *
 * Signal moves its waiter the same way when the mutex is held by another
 * thread or has waiters queued (the signalled thread then takes its turn
 * behind them).  In the common case, the signaller itself holding the
 * mutex and nobody queued on it, signal wakes the waiter directly, as it
 * does when the mutex is free.  The woken thread goes to the signaller's
 * own run queue, so it runs once the signaller leaves its CPU, which in
 * the usual signal-then-unlock or signal-then-wait is after the mutex was
 * released; its relock is then one compare-and-swap.  Moving it instead
 * would send both sides of every hand-off down the mutex's slow paths
 * (the unlock wakes it with WOKEN set, and the signaller's next lock and
 * release find that bit): about 780 more instructions per ping-pong round
 * trip (docs/benchmarks.md).  A signaller that is preempted, or keeps the
 * mutex past a thief's grace (runqueue.c), leaves the woken thread to find
 * the mutex held and queue on it like any locker: a wasted wake-up, never
 * a lost or a double one (the claim and the timeout rules below are those
 * of any direct wake).
 *
 * Lock order: cond queue, then mutex queue (signal and broadcast requeue
 * under both; wait parks and the timeout path looks for its node under
 * both).  The mutex never takes a cond's lock.
 *
 * Timeouts.  A waiter whose deadline passes takes both locks and finds its
 * node in one of three places:
 *   - still on the cond's queue: unlink, relock the mutex, ETIMEDOUT;
 *   - on the mutex's queue: it was signalled first, so the signal is its
 *     own; it parks again there, untimed (pthread semantics: the deadline
 *     bounds the wait for the signal, not for the mutex), and returns 0;
 *   - nowhere: a waker dequeued it and then lost the claim to the timer
 *     (wf_unpark false).  A signaller then passed the signal to the next
 *     waiter (ETIMEDOUT here); a mutex unlock passed its wake-up on, and
 *     the signal, received earlier, stands (0 here).
 * So a signal is consumed by exactly one waiter, which returns 0.
 *
 * Rejected: a sequence counter with waiters re-checking it (glibc's old
 * design; its bookkeeping is what made it subtle, and it wakes herds);
 * per-waiter semaphores (an allocation per wait); waking and letting the
 * mutex sort it out (the herd above).
 */
#include "mutex.h"

#define WF_CONDATTR_MAGIC 0x77636e64u
#define WF_COND_DEAD      0xdeadc0ddu

int weft_condattr_init(weft_condattr_t *a)
{
	if (!a)
		return EINVAL;
	a->_magic = WF_CONDATTR_MAGIC;
	return 0;
}

int weft_condattr_destroy(weft_condattr_t *a)
{
	if (!a || a->_magic != WF_CONDATTR_MAGIC)
		return EINVAL;
	a->_magic = 0;
	return 0;
}

int weft_cond_init(weft_cond_t *c, const weft_condattr_t *a)
{
	if (!c || (a && a->_magic != WF_CONDATTR_MAGIC))
		return EINVAL;
	c->_reserved = 0;
	c->_mutex = NULL;
	wf_waitq_init(&c->_wq);
	__atomic_store_n(&c->_state, 0, __ATOMIC_RELEASE);
	return 0;
}

int weft_cond_destroy(weft_cond_t *c)
{
	if (!c)
		return EINVAL;
	int e = 0;
	wf_waitq_lock(&c->_wq);   /* waits out a signaller still inside */
	if (c->_state)
		e = EINVAL;
	else if (!wf_waitq_empty(&c->_wq))
		e = EBUSY;
	else
		__atomic_store_n(&c->_state, WF_COND_DEAD, __ATOMIC_RELAXED);
	wf_waitq_unlock(&c->_wq);
	return e;
}

static int wf_cond_wait(weft_cond_t *c, weft_mutex_t *m, uint64_t deadline)
{
	if (!c || !m)
		return EINVAL;
	int e;
	struct wf_thread *self = wf_sync_self(&e);
	if (!self)
		return e;
	uintptr_t h = wf_thread_handle(self);
	if (wf_mutex_owner(m) != h)
		return EPERM;
	weft_waitq_ *cq = &c->_wq, *mq = &m->_wq;
	struct wf_wnode n = { .thread = self, .handle = h, .obj = m };

	wf_waitq_lock(cq);
	if (c->_state || (!wf_waitq_empty(cq) && c->_mutex != m)) {
		wf_waitq_unlock(cq);
		return EINVAL;
	}
	c->_mutex = m;
	/* Link n "arming": signallers see it but neither claim nor requeue it
	 * (its wait is not published yet); a signal that finds it dequeues
	 * it and leaves WF_WAKE_SIGNAL, and that signal is ours. */
	n.arming = 1;
	wf_waitq_push_tail(cq, &n);
	wf_waitq_unlock(cq);
	/* Linked first, released second: whoever gets the mutex next and
	 * signals finds us.  The release may wake a mutex waiter, system calls
	 * included; doing it without cq's lock keeps signallers from spinning
	 * through it. */
	unsigned depth = wf_mutex_release_all(m);
	int r = 0;
	wf_waitq_lock(cq);
	if (n.q == cq) {
		/* Still waiting: publish the wait and park (park.h protocol).  A
		 * cancellation point, and a signal sent to the thread ends the
		 * wait as a spurious wake-up. */
		n.arming = 0;
		wf_park_reason(self, WF_BLOCK_COND, c);
		wf_park_prepare_intr(self, WF_INTR_CANCEL | WF_INTR_SIGNAL);
		r = wf_waitq_park(cq, deadline);
	} else {
		wf_waitq_unlock(cq);   /* signalled while arming: n.wake == SIGNAL */
	}

	/* A timeout and an interruption (EINTR) leave the queues alike; they
	 * differ only in what the call then returns. */
	int ret = 0;
	bool intr = false;   /* interrupted without having been signalled */
	for (;;) {
		if (r == 0)
			break;   /* n.wake: SIGNAL, or GRANTED/WOKEN by m's unlock */
		wf_waitq_lock(cq);
		wf_waitq_lock(mq);
		if (n.q == cq) {
			wf_waitq_remove(cq, &n);
			wf_waitq_unlock(mq);
			wf_waitq_unlock(cq);
			ret = r == EINTR ? 0 : ETIMEDOUT;
			intr = r == EINTR;
			n.wake = WF_WAKE_NONE;
			break;
		}
		if (n.q == mq) {
			/* Signalled and moved before the timeout: keep our place
			 * in the mutex's queue and wait for it, untimed.  Signalled
			 * before an interruption: the signal is ours, the wait
			 * succeeds, and a cancellation acts at the next point. */
			wf_waitq_unlock(cq);
			n.wake = WF_WAKE_NONE;
			wf_park_reason(self, WF_BLOCK_MUTEX, m);
			wf_park_prepare(self);
			r = wf_waitq_park(mq, 0);
			continue;
		}
		/* Dequeued by a waker that lost the claim; it passes its wake-up
		 * on and marks us done when it is out of both objects.  Only a
		 * signal received before (the requeue) is ours. */
		wf_waitq_unlock(mq);
		n.raced = 1;
		wf_waitq_timeout_unlock(cq, &n);
		ret = n.requeued || r == EINTR ? 0 : ETIMEDOUT;
		intr = r == EINTR && !n.requeued;
		n.wake = WF_WAKE_NONE;
		break;
	}
	wf_mutex_relock(m, &n, n.wake, depth);
	/* Interrupted: the mutex is ours again, so a cancellation's cleanup
	 * handlers run with it held, as POSIX requires; a signal's handler has
	 * run, and the wait returns 0 (a spurious wake-up). */
	if (wf_unlikely(intr))
		(void)wf_interrupted();
	return ret;
}

int weft_cond_wait(weft_cond_t *c, weft_mutex_t *m)
{
	return wf_cond_wait(c, m, 0);
}

int weft_cond_timedwait(weft_cond_t *c, weft_mutex_t *m, const struct timespec *abs_monotonic)
{
	uint64_t dl;
	int e = wf_timespec_to_ns(abs_monotonic, &dl);
	return e ? e : wf_cond_wait(c, m, dl);
}

/*
 * The lock-free "nobody waits" test of signal and broadcast is exact for
 * every waiter that matters: a waiter links itself (count++, release)
 * before it releases the mutex, and the signaller changed the predicate
 * under that mutex after acquiring it, so it reads the count after the
 * increment.  A waiter that enqueues later re-checks the predicate under
 * the mutex first and needs no signal.
 */
int weft_cond_signal(weft_cond_t *c)
{
	if (!c || __atomic_load_n(&c->_state, __ATOMIC_RELAXED))
		return EINVAL;
	weft_waitq_ *cq = &c->_wq;
	if (!wf_waitq_count(cq))
		return 0;
	struct wf_wnode *refused = NULL;
	wf_waitq_lock(cq);
	for (;;) {
		struct wf_wnode *n = wf_waitq_pop(cq);
		if (!n || n->arming) {
			if (n)
				n->wake = WF_WAKE_SIGNAL;   /* the signal is its own */
			wf_waitq_unlock(cq);
			break;
		}
		weft_mutex_t *m = n->obj;
		/* Held by us with nobody queued: wake directly (see the essay). */
		bool moved = false;
		if (!wf_mutex_held_by_caller_alone(m)) {
			wf_waitq_lock(&m->_wq);
			moved = wf_mutex_requeue_locked(m, n, true, wf_clock_ns());
			wf_waitq_unlock(&m->_wq);
		}
		if (moved) {
			wf_waitq_unlock(cq);
			break;   /* still parked; the holder's unlock will wake it */
		}
		struct wf_thread *t = wf_waitq_grant(n, WF_WAKE_SIGNAL);
		wf_waitq_unlock(cq);
		if (wf_unpark(t))
			break;
		/* n is timing out (it returns ETIMEDOUT): signal the next. */
		wf_wnode_refused(&refused, n);
		wf_waitq_lock(cq);
	}
	wf_wnode_release(refused);
	return 0;
}

int weft_cond_broadcast(weft_cond_t *c)
{
	if (!c || __atomic_load_n(&c->_state, __ATOMIC_RELAXED))
		return EINVAL;
	weft_waitq_ *cq = &c->_wq;
	if (!wf_waitq_count(cq))
		return 0;
	wf_waitq_lock(cq);
	/* Arming waiters just take the signal; the others are requeued. */
	struct wf_wnode *first = NULL, *n;
	for (n = wf_waitq_head(cq); n && !first; ) {
		struct wf_wnode *next = n->next;
		wf_waitq_remove(cq, n);
		if (n->arming)
			n->wake = WF_WAKE_SIGNAL;
		else
			first = n;
		n = next;
	}
	if (!first) {
		wf_waitq_unlock(cq);
		return 0;
	}
	/* All waiters use first's mutex (wait enforces it). */
	weft_mutex_t *m = first->obj;
	uint64_t now = wf_clock_ns();
	wf_waitq_lock(&m->_wq);
	bool held = wf_mutex_requeue_locked(m, first, true, now);
	while ((n = wf_waitq_pop(cq))) {
		if (n->arming)
			n->wake = WF_WAKE_SIGNAL;
		else
			(void)wf_mutex_requeue_locked(m, n, false, now);
	}
	wf_waitq_unlock(&m->_wq);
	if (held) {
		wf_waitq_unlock(cq);
		return 0;
	}
	/* m is free: wake the oldest, after the others are on m's queue.
	 * Woken or timing out, it relocks m, and its unlock wakes the next;
	 * so the result of the claim is moot, but a refused node's thread
	 * waits to be marked done. */
	struct wf_thread *t = wf_waitq_grant(first, WF_WAKE_SIGNAL);
	wf_waitq_unlock(cq);
	if (!wf_unpark(t))
		wf_wnode_release(first);
	return 0;
}
