/*
 * ticketlock.c — weft_ticketlock_t: a FIFO spinlock by fetch-and-add, whose
 * holder is never preempted.
 *
 * Design (the classic ticket lock, as in xv6-style lock_acquire /
 * lock_release).  acquire takes a ticket with one atomic fetch-and-add on
 * _next and waits until _serving equals it; release increments _serving
 * (only the holder writes it, so a plain load and a release store suffice).
 * Threads enter in ticket order: strictly FIFO, no starvation.  _owner
 * records the holder's weft_t for EDEADLK/EPERM.
 *
 * Preemption is off from before the ticket is taken until the release, so
 * the holder is never descheduled by the timer.  But a FIFO spinlock with
 * more waiters than workers has a twist a plain spinlock does not: the
 * next ticket may belong to a thread that is not running (it yielded while
 * waiting), and nobody else may enter meanwhile.  So waiters yield their
 * worker: the next in line after WF_TICKET_NEAR_SPINS pauses (the holder is
 * probably running elsewhere and about to release), those further back
 * after only WF_TICKET_FAR_SPINS (they cannot get in before the ones ahead
 * have run, so spinning only delays them).  With one worker this is what
 * lets the line move at all.  With nothing else to run on its worker, a
 * waiter gives its kernel thread's CPU away, then naps (wf_spin_wait_long):
 * with more workers than CPUs the kernel may have descheduled the worker
 * of the holder, or of the next in line.
 *
 * Rejected: proportional back-off without yielding (hangs with one
 * worker); MCS/CLH queue locks (per-waiter nodes, and the same yielding
 * problem); parking waiters (that is weft_mutex_t).
 */
#include "waitq.h"

#define WF_TICKET_NEAR_SPINS 256
#define WF_TICKET_FAR_SPINS  16

int weft_ticket_init(weft_ticketlock_t *l)
{
	if (!l)
		return EINVAL;
	l->_next = 0;
	l->_owner = 0;
	__atomic_store_n(&l->_serving, 0, __ATOMIC_RELEASE);
	return 0;
}

int weft_ticket_acquire(weft_ticketlock_t *l)
{
	if (!l)
		return EINVAL;
	int e;
	struct wf_thread *self = wf_sync_self(&e);
	if (!self)
		return e;
	uintptr_t h = wf_thread_handle(self);
	if (__atomic_load_n(&l->_owner, __ATOMIC_RELAXED) == h)
		return EDEADLK;
	wf_preempt_off();
	/* The ticket's uniqueness comes from the atomic add alone; ordering
	 * with the previous holder comes from the acquire load below. */
	uint32_t my = __atomic_fetch_add(&l->_next, 1, __ATOMIC_RELAXED);
	unsigned spins = 0, rounds = 0;
	for (;;) {
		uint32_t cur = __atomic_load_n(&l->_serving, __ATOMIC_ACQUIRE);
		if (cur == my)
			break;
		/* Unsigned distance: correct across wrap-around. */
		unsigned limit = my - cur == 1 ? WF_TICKET_NEAR_SPINS : WF_TICKET_FAR_SPINS;
		wf_cpu_relax();
		if (++spins >= limit) {
			spins = 0;
			wf_spin_wait_long(&rounds);
		}
	}
	__atomic_store_n(&l->_owner, h, __ATOMIC_RELAXED);
	return 0;
}

int weft_ticket_release(weft_ticketlock_t *l)
{
	if (!l)
		return EINVAL;
	struct wf_thread *self = wf_caller();
	if (!self || __atomic_load_n(&l->_owner, __ATOMIC_RELAXED) != wf_thread_handle(self))
		return EPERM;
	__atomic_store_n(&l->_owner, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->_serving, __atomic_load_n(&l->_serving, __ATOMIC_RELAXED) + 1,
	                 __ATOMIC_RELEASE);
	wf_preempt_on();
	return 0;
}
