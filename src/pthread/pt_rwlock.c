/*
 * pt_rwlock.c — pthread_rwlock_t on weft reader-writer locks.
 *
 * Storage (docs/design.md, "The pthread layer"): in place.  A weft rwlock is
 * 40 bytes and all-zero bytes are a valid one, so it occupies the first 40 of
 * the 56 bytes of a pthread_rwlock_t.  glibc's __flags word (offset 48), which
 * its _NP static initializers set, is left alone and ignored: weft's rwlock
 * always serves readers and writers in arrival order, so writers never starve
 * (glibc's default prefers readers).  A consequence to know: a thread that
 * takes a second read lock while a writer waits deadlocks.
 */
#include <string.h>
#include "pt_internal.h"

_Static_assert(sizeof(pthread_rwlock_t) == 56 && sizeof(weft_rwlock_t) <= 48 &&
               _Alignof(pthread_rwlock_t) >= _Alignof(weft_rwlock_t),
               "pthread_rwlock_t layout");
#define PT_RW(l) ((weft_rwlock_t *)(void *)(l))

/* pthread_rwlockattr_t (a long): the kind in the low int (reported only). */
#define PT_RWA(a) (*(int *)(void *)(a))

PT_API int pthread_rwlockattr_init(pthread_rwlockattr_t *a)
{
	memset(a, 0, sizeof *a);
	return 0;
}

PT_API int pthread_rwlockattr_destroy(pthread_rwlockattr_t *a) { (void)a; return 0; }

PT_API int pthread_rwlockattr_setpshared(pthread_rwlockattr_t *a, int pshared)
{
	(void)a;
	return pt_private_only(pshared);
}

PT_API int pthread_rwlockattr_getpshared(const pthread_rwlockattr_t *a, int *pshared)
{
	(void)a;
	*pshared = PTHREAD_PROCESS_PRIVATE;
	return 0;
}

PT_API int pthread_rwlockattr_setkind_np(pthread_rwlockattr_t *a, int kind)
{
	if (kind < PTHREAD_RWLOCK_PREFER_READER_NP ||
	    kind > PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP)
		return EINVAL;
	PT_RWA(a) = kind;
	return 0;
}

PT_API int pthread_rwlockattr_getkind_np(const pthread_rwlockattr_t *a, int *kind)
{
	*kind = PT_RWA(a);
	return 0;
}

PT_API int pthread_rwlock_init(pthread_rwlock_t *l, const pthread_rwlockattr_t *a)
{
	(void)a;
	memset(l, 0, sizeof *l);
	return weft_rwlock_init(PT_RW(l), NULL);
}

PT_API int pthread_rwlock_destroy(pthread_rwlock_t *l)
{
	return weft_rwlock_destroy(PT_RW(l));
}

PT_API int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
	pt_init();
	return weft_rwlock_rdlock(PT_RW(l));
}

PT_API int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
	pt_init();
	return weft_rwlock_wrlock(PT_RW(l));
}

PT_API int pthread_rwlock_tryrdlock(pthread_rwlock_t *l)
{
	pt_init();
	return weft_rwlock_tryrdlock(PT_RW(l));
}

PT_API int pthread_rwlock_trywrlock(pthread_rwlock_t *l)
{
	pt_init();
	return weft_rwlock_trywrlock(PT_RW(l));
}

PT_API int pthread_rwlock_unlock(pthread_rwlock_t *l)
{
	return weft_rwlock_unlock(PT_RW(l));
}

PT_API int pthread_rwlock_clockrdlock(pthread_rwlock_t *l, clockid_t clock,
                                      const struct timespec *abs)
{
	struct timespec mono;
	int e = pt_abs_to_monotonic(clock, abs, &mono);
	if (e)
		return e;
	pt_init();
	return weft_rwlock_timedrdlock(PT_RW(l), &mono);
}

PT_API int pthread_rwlock_clockwrlock(pthread_rwlock_t *l, clockid_t clock,
                                      const struct timespec *abs)
{
	struct timespec mono;
	int e = pt_abs_to_monotonic(clock, abs, &mono);
	if (e)
		return e;
	pt_init();
	return weft_rwlock_timedwrlock(PT_RW(l), &mono);
}

PT_API int pthread_rwlock_timedrdlock(pthread_rwlock_t *l, const struct timespec *abs)
{
	return pthread_rwlock_clockrdlock(l, CLOCK_REALTIME, abs);
}

PT_API int pthread_rwlock_timedwrlock(pthread_rwlock_t *l, const struct timespec *abs)
{
	return pthread_rwlock_clockwrlock(l, CLOCK_REALTIME, abs);
}
