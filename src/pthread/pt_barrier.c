/*
 * pt_barrier.c — pthread_barrier_t on weft barriers, and pthread spinlocks.
 *
 * Barrier storage (docs/design.md, "The pthread layer"): a weft barrier (40
 * bytes) does not fit in a pthread_barrier_t (32 bytes), and a barrier has no
 * static initializer, so pthread_barrier_init takes a pool cell and stores
 * its address in the first word; pthread_barrier_destroy gives it back.
 *
 * Spinlocks: a pthread_spinlock_t is an int, too small for a weft spinlock
 * (which records its holder), so the lock is kept in place as the int
 * itself (0 free, 1 held; zero bytes are an unlocked spinlock, as with
 * glibc) and built from weft's public preemption control: the holder is
 * not preempted, and a waiter yields its worker after a bounded spin, as
 * weft's own spinlock does.  POSIX leaves relocking and a stranger's unlock
 * undefined; they are not detected.
 */
#include <sched.h>
#include <string.h>
#include "pt_internal.h"

_Static_assert(sizeof(pthread_barrier_t) >= sizeof(void *) &&
               sizeof(weft_barrier_t) <= PT_POOL_OBJ, "pthread_barrier_t layout");
#define PT_BAR(b) (*(weft_barrier_t **)(void *)(b))
#define PT_BA(a) (*(int *)(void *)(a))
#define PT_SPIN_YIELD 1000

PT_API int pthread_barrierattr_init(pthread_barrierattr_t *a)
{
	PT_BA(a) = PTHREAD_PROCESS_PRIVATE;
	return 0;
}

PT_API int pthread_barrierattr_destroy(pthread_barrierattr_t *a) { (void)a; return 0; }

PT_API int pthread_barrierattr_setpshared(pthread_barrierattr_t *a, int pshared)
{
	(void)a;
	return pt_private_only(pshared);
}

PT_API int pthread_barrierattr_getpshared(const pthread_barrierattr_t *a, int *pshared)
{
	(void)a;
	*pshared = PTHREAD_PROCESS_PRIVATE;
	return 0;
}

PT_API int pthread_barrier_init(pthread_barrier_t *b, const pthread_barrierattr_t *a,
                                unsigned count)
{
	(void)a;
	if (count == 0)
		return EINVAL;
	weft_barrier_t *w = pt_pool_alloc();
	if (!w)
		return ENOMEM;
	int e = weft_barrier_init(w, count);
	if (e) {
		pt_pool_free(w);
		return e;
	}
	memset(b, 0, sizeof *b);
	PT_BAR(b) = w;
	return 0;
}

PT_API int pthread_barrier_destroy(pthread_barrier_t *b)
{
	weft_barrier_t *w = PT_BAR(b);
	if (!w)
		return EINVAL;
	int e = weft_barrier_destroy(w);
	if (e)
		return e;
	PT_BAR(b) = NULL;
	pt_pool_free(w);
	return 0;
}

PT_API int pthread_barrier_wait(pthread_barrier_t *b)
{
	weft_barrier_t *w = PT_BAR(b);
	if (!w)
		return EINVAL;
	pt_init();
	int r = weft_barrier_wait(w);
	return r == WEFT_BARRIER_SERIAL_THREAD ? PTHREAD_BARRIER_SERIAL_THREAD : r;
}

PT_API int pthread_spin_init(pthread_spinlock_t *l, int pshared)
{
	if (pshared != PTHREAD_PROCESS_PRIVATE && pshared != PTHREAD_PROCESS_SHARED)
		return EINVAL;
	/* A process-shared spinlock is the same int: nothing in it is a
	 * pointer, and a holder in another process is just another holder. */
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
	return 0;
}

PT_API int pthread_spin_destroy(pthread_spinlock_t *l)
{
	return __atomic_load_n(l, __ATOMIC_RELAXED) ? EBUSY : 0;
}

PT_API int pthread_spin_trylock(pthread_spinlock_t *l)
{
	weft_preempt_disable();
	if (__atomic_load_n(l, __ATOMIC_RELAXED) == 0 &&
	    __atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) == 0)
		return 0;
	weft_preempt_enable();
	return EBUSY;
}

PT_API int pthread_spin_lock(pthread_spinlock_t *l)
{
	/* Preemption stays off from here to the unlock: a holder that was
	 * preempted would make every waiter spin for a whole quantum. */
	weft_preempt_disable();
	unsigned spins = 0;
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
			pt_cpu_relax();
			if (++spins >= PT_SPIN_YIELD) {
				spins = 0;
				/* The holder may be queued on this very worker. */
				if (weft_yield() == EPERM)
					sched_yield();
			}
		}
	}
	return 0;
}

PT_API int pthread_spin_unlock(pthread_spinlock_t *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
	weft_preempt_enable();
	return 0;
}
