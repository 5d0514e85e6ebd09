/*
 * sem.c — weft_sem_t: counting semaphores with direct token handoff.
 *
 * Design.  A count and a FIFO wait queue.  Taking a token when one is there
 * is a lock-free compare-and-swap on the count.  Otherwise the waiter takes
 * the queue lock, looks once more, and parks.  A post takes the queue lock
 * and, if anyone waits, hands its token straight to the oldest waiter
 * (which returns without touching the count); only with nobody waiting does
 * it add to the count.  Hence:
 *
 *   Invariant: under the queue lock, the queue is non-empty only while the
 *   count is 0.  (A waiter enqueues only after seeing 0 under the lock; the
 *   count grows only under the lock and only when the queue is empty; the
 *   lock-free path only decrements.)
 *
 * Tokens are conserved through timeouts: a post that dequeues a waiter
 * whose deadline has just been claimed by the timer (wf_unpark false) gives
 * the token to the next waiter or to the count; the waiter returns
 * ETIMEDOUT.  A waiter's result is wf_park's (park.h), never its node.
 *
 * FIFO handoff also means no barging: a token posted while threads wait can
 * only go to the oldest of them, so no waiter starves.
 *
 * Rejected: a post that increments the count and wakes a waiter to
 * compete for it (a newcomer can take the token first, so waiters can
 * starve, and the woken one may find nothing and park again); a lock-free
 * post guarded by a waiter count read after the increment (Dekker-style,
 * as glibc does with a futex: it saves a lock on post, but the handoff
 * above needs the lock anyway whenever there are waiters).
 */
#include <limits.h>
#include "waitq.h"

#define WF_SEM_MAGIC 0x7773656du

_Static_assert(WEFT_SEM_VALUE_MAX <= (unsigned)INT_MAX, "getvalue returns an int");

static inline bool wf_sem_ok(const weft_sem_t *s)
{
	return s && __atomic_load_n(&s->_magic, __ATOMIC_RELAXED) == WF_SEM_MAGIC;
}

/* Lock-free take: true if a token was taken. */
static inline bool wf_sem_take(weft_sem_t *s)
{
	uint32_t v = __atomic_load_n(&s->_value, __ATOMIC_RELAXED);
	while (v > 0)
		if (__atomic_compare_exchange_n(&s->_value, &v, v - 1, false,
		                                __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return true;
	return false;
}

int weft_sem_init(weft_sem_t *s, unsigned value)
{
	if (!s || value > WEFT_SEM_VALUE_MAX)
		return EINVAL;
	s->_value = value;
	wf_waitq_init(&s->_wq);
	__atomic_store_n(&s->_magic, WF_SEM_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

int weft_sem_destroy(weft_sem_t *s)
{
	if (!wf_sem_ok(s))
		return EINVAL;
	int e = 0;
	wf_waitq_lock(&s->_wq);   /* waits out a poster still inside */
	if (!wf_waitq_empty(&s->_wq))
		e = EBUSY;
	else
		__atomic_store_n(&s->_magic, 0, __ATOMIC_RELAXED);
	wf_waitq_unlock(&s->_wq);
	return e;
}

static int wf_sem_wait(weft_sem_t *s, uint64_t deadline)
{
	if (!wf_sem_ok(s))
		return EINVAL;
	if (wf_sem_take(s))
		return 0;
	int e;
	struct wf_thread *self = wf_sync_self(&e);
	if (!self)
		return e;
	weft_waitq_ *q = &s->_wq;
again:
	wf_waitq_lock(q);
	/* Look again under the lock: a post that ran since our first look
	 * either left a token in the count or will find us queued. */
	if (wf_sem_take(s)) {
		wf_waitq_unlock(q);
		return 0;
	}
	/* A cancellation point, and a signal ends the wait with EINTR, or
	 * waits again when its handler has SA_RESTART (as sem_wait does). */
	struct wf_wnode n = { .thread = self, .intr = WF_INTR_CANCEL | WF_INTR_SIGNAL };
	wf_park_reason(self, WF_BLOCK_SEM, s);
	int r = wf_waitq_wait(q, &n, deadline, false);
	if (r == 0)
		return 0;   /* WF_WAKE_GRANTED: the poster's token is ours */
	wf_waitq_timeout_unlock(q, &n);   /* a racing poster passed its token on */
	if (r != EINTR)
		return ETIMEDOUT;
	if (wf_interrupted())
		return EINTR;
	if (wf_sem_take(s))
		return 0;
	goto again;
}

int weft_sem_wait(weft_sem_t *s)
{
	return wf_sem_wait(s, 0);
}

int weft_sem_timedwait(weft_sem_t *s, const struct timespec *abs_monotonic)
{
	uint64_t dl;
	int e = wf_timespec_to_ns(abs_monotonic, &dl);
	return e ? e : wf_sem_wait(s, dl);
}

int weft_sem_trywait(weft_sem_t *s)
{
	if (!wf_sem_ok(s))
		return EINVAL;
	return wf_sem_take(s) ? 0 : EAGAIN;
}

int weft_sem_post(weft_sem_t *s)
{
	if (!wf_sem_ok(s))
		return EINVAL;
	weft_waitq_ *q = &s->_wq;
	struct wf_wnode *refused = NULL;
	int e = 0;
	wf_waitq_lock(q);
	for (;;) {
		struct wf_wnode *n = wf_waitq_pop(q);
		if (!n) {
			/* Nobody waits.  Only this path (under the lock)
			 * increments, so the check cannot be overtaken;
			 * lock-free takers only decrement. */
			if (__atomic_load_n(&s->_value, __ATOMIC_RELAXED) >= WEFT_SEM_VALUE_MAX)
				e = EOVERFLOW;
			else
				__atomic_fetch_add(&s->_value, 1, __ATOMIC_RELEASE);
			wf_waitq_unlock(q);   /* last access to s */
			break;
		}
		struct wf_thread *t = wf_waitq_grant(n, WF_WAKE_GRANTED);
		wf_waitq_unlock(q);
		if (wf_unpark(t))
			break;   /* token handed over; n is gone for us */
		/* n's thread is timing out and will not take the token:
		 * offer it to the next waiter, or the count. */
		wf_wnode_refused(&refused, n);
		wf_waitq_lock(q);
	}
	wf_wnode_release(refused);
	return e;
}

int weft_sem_getvalue(weft_sem_t *s, int *value)
{
	if (!wf_sem_ok(s) || !value)
		return EINVAL;
	*value = (int)__atomic_load_n(&s->_value, __ATOMIC_RELAXED);
	return 0;
}
