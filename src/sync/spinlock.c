/*
 * spinlock.c — weft_spinlock_t: a test-and-test-and-set spinlock whose
 * holder is never preempted.
 *
 * Design.  The lock word holds the holder's weft_t (0 when free), so a
 * relock by the holder is EDEADLK and an unlock by anyone else EPERM at no
 * extra cost: taking it is a compare-and-swap 0 -> handle, attempted only
 * after a plain load saw 0 (test-and-test-and-set: waiters spin on a
 * shared cache line, not on a stream of failed atomic writes), with a pause
 * hint between loads.
 *
 * Preemption is turned off (wf_preempt_off) before the first attempt and
 * back on after the release, so a holder is never descheduled by the
 * timer; a waiter spins only as long as a running holder's critical
 * section.  Preemption-off does not stop voluntary switches, and a waiter
 * yields its worker every WF_SPINLOCK_YIELD_SPINS pauses (wf_spin_wait_long):
 * with one worker, a holder that yielded or blocked inside its critical
 * section (a misuse, but one that must not hang the process) could not run
 * otherwise, and other ready threads on the waiter's worker get to run too.
 * With nothing else to run there, the waiter gives its kernel thread's CPU
 * away, then naps: the kernel may have descheduled the holder's worker
 * (more workers than CPUs), and spinning would keep it from the CPU.
 *
 * Rejected: plain test-and-set (every spin is a write, bouncing the line
 * between cores); spinning with preemption enabled (a preempted holder
 * makes every waiter spin for a whole quantum); parking waiters (that is
 * weft_mutex_t).
 */
#include "waitq.h"

#define WF_SPINLOCK_YIELD_SPINS 256

static inline uintptr_t wf_spinlock_load(const weft_spinlock_t *l)
{
	return __atomic_load_n(&l->_owner, __ATOMIC_RELAXED);
}

static inline bool wf_spinlock_try(weft_spinlock_t *l, uintptr_t h)
{
	uintptr_t z = 0;
	return wf_spinlock_load(l) == 0 &&
	       __atomic_compare_exchange_n(&l->_owner, &z, h, false, __ATOMIC_ACQUIRE,
	                                   __ATOMIC_RELAXED);
}

int weft_spin_init(weft_spinlock_t *l)
{
	if (!l)
		return EINVAL;
	__atomic_store_n(&l->_owner, 0, __ATOMIC_RELEASE);
	return 0;
}

int weft_spin_destroy(weft_spinlock_t *l)
{
	if (!l)
		return EINVAL;
	return wf_spinlock_load(l) ? EBUSY : 0;
}

int weft_spin_lock(weft_spinlock_t *l)
{
	if (!l)
		return EINVAL;
	int e;
	struct wf_thread *self = wf_sync_self(&e);
	if (!self)
		return e;
	uintptr_t h = wf_thread_handle(self);
	if (wf_spinlock_load(l) == h)
		return EDEADLK;
	wf_preempt_off();
	unsigned spins = 0, rounds = 0;
	while (!wf_spinlock_try(l, h)) {
		while (wf_spinlock_load(l)) {
			wf_cpu_relax();
			if (++spins >= WF_SPINLOCK_YIELD_SPINS) {
				spins = 0;
				wf_spin_wait_long(&rounds);
			}
		}
	}
	return 0;
}

int weft_spin_trylock(weft_spinlock_t *l)
{
	if (!l)
		return EINVAL;
	int e;
	struct wf_thread *self = wf_sync_self(&e);
	if (!self)
		return e;
	wf_preempt_off();
	if (wf_spinlock_try(l, wf_thread_handle(self)))
		return 0;
	wf_preempt_on();
	return EBUSY;
}

int weft_spin_unlock(weft_spinlock_t *l)
{
	if (!l)
		return EINVAL;
	struct wf_thread *self = wf_caller();
	if (!self || wf_spinlock_load(l) != wf_thread_handle(self))
		return EPERM;
	__atomic_store_n(&l->_owner, 0, __ATOMIC_RELEASE);
	wf_preempt_on();
	return 0;
}
