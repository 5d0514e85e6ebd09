/*
 * pt_mutex.c — pthread_mutex_t and pthread_mutexattr_t on weft mutexes.
 *
 * Storage (docs/design.md, "The pthread layer").  A weft mutex (56 bytes) does
 * not fit in a pthread_mutex_t (40 bytes), so it lives in a 64-byte pool
 * cell, made on first use and published with one compare-and-swap into the
 * first word of the pthread_mutex_t; the loser of a race frees its
 * cell.  Every other field keeps glibc's meaning where programs or
 * initializers write it:
 *
 *   offset  glibc field   here
 *    0      __lock/count  weft_mutex_t * (NULL until first use)
 *    8      __owner       0
 *   12      __nusers      priority ceiling (PTHREAD_PRIO_PROTECT)
 *   16      __kind        glibc's type: 0 normal/timed, 1 recursive,
 *                         2 error-checking, 3 adaptive (the _NP static
 *                         initializers write it), | PT_M_PROTOCOL bits
 *
 * All-zero bytes (PTHREAD_MUTEX_INITIALIZER) are therefore a valid, unused
 * normal mutex.  pthread_mutex_destroy frees the cell and clears the word
 * (an EBUSY mutex is left alone), so a destroyed mutex can be initialized
 * again or simply reused, as with glibc.  A mutex that is freed with its
 * memory and never destroyed leaks its cell (64 bytes).
 *
 * Process-shared mutexes are refused (ENOTSUP from setpshared, as glibc
 * itself answers where futexes cannot be shared): a weft mutex holds
 * pointers into this process.  Robust mutexes are refused the same way.
 * Priority protocols are accepted and reported; weft has no priorities.
 */
#include <string.h>
#include "pt_internal.h"

struct pt_mutex {
	weft_mutex_t *_Atomic obj;
	uint32_t owner_unused;
	uint32_t ceiling;
	int kind;
};
_Static_assert(sizeof(pthread_mutex_t) == 40 &&
               offsetof(pthread_mutex_t, __data.__kind) == offsetof(struct pt_mutex, kind) &&
               sizeof(struct pt_mutex) <= sizeof(pthread_mutex_t) &&
               sizeof(weft_mutex_t) <= PT_POOL_OBJ,
               "pthread_mutex_t layout");
#define PT_M(m) ((struct pt_mutex *)(void *)(m))

/* pthread_mutexattr_t (an int): bits 0-3 type, 4-5 protocol, 12+ ceiling. */
#define PT_MA_TYPE(a)      ((a) & 0xf)
#define PT_MA_PROTO(a)     (((a) >> 4) & 0x3)
#define PT_MA_CEIL(a)      ((a) >> 12)
#define PT_M_PROTO_SHIFT   8     /* protocol kept in kind's bits 8-9 */
#define PT_MA(a) (*(int *)(void *)(a))

static int pt_weft_type(int kind)
{
	switch (kind & 0xf) {
	case PTHREAD_MUTEX_RECURSIVE:  return WEFT_MUTEX_RECURSIVE;
	case PTHREAD_MUTEX_ERRORCHECK: return WEFT_MUTEX_ERRORCHECK;
	default:                       return WEFT_MUTEX_NORMAL;   /* normal, adaptive */
	}
}

weft_mutex_t *pt_mutex_weft(pthread_mutex_t *m)
{
	weft_mutex_t *w = atomic_load_explicit(&PT_M(m)->obj, memory_order_acquire);
	if (pt_likely(w))
		return w;
	pt_init();
	if (!(w = pt_pool_alloc()))
		return NULL;
	weft_mutexattr_t a;
	weft_mutexattr_init(&a);
	weft_mutexattr_settype(&a, pt_weft_type(PT_M(m)->kind));
	weft_mutex_init(w, &a);
	weft_mutex_t *seen = NULL;
	/* Release: the initialized mutex is visible to whoever loads the
	 * pointer (acquire).  The loser frees its cell. */
	if (!atomic_compare_exchange_strong_explicit(&PT_M(m)->obj, &seen, w,
	                                             memory_order_acq_rel,
	                                             memory_order_acquire)) {
		pt_pool_free(w);
		return seen;
	}
	return w;
}

PT_API int pthread_mutexattr_init(pthread_mutexattr_t *a)
{
	PT_MA(a) = PTHREAD_MUTEX_DEFAULT;
	return 0;
}

PT_API int pthread_mutexattr_destroy(pthread_mutexattr_t *a) { (void)a; return 0; }

PT_API int pthread_mutexattr_settype(pthread_mutexattr_t *a, int type)
{
	if (type < PTHREAD_MUTEX_NORMAL || type > PTHREAD_MUTEX_ADAPTIVE_NP)
		return EINVAL;
	PT_MA(a) = (PT_MA(a) & ~0xf) | type;
	return 0;
}

PT_API int pthread_mutexattr_gettype(const pthread_mutexattr_t *a, int *type)
{
	*type = PT_MA_TYPE(PT_MA(a));
	return 0;
}

PT_API int pthread_mutexattr_setpshared(pthread_mutexattr_t *a, int pshared)
{
	(void)a;
	return pt_private_only(pshared);
}

PT_API int pthread_mutexattr_getpshared(const pthread_mutexattr_t *a, int *pshared)
{
	(void)a;
	*pshared = PTHREAD_PROCESS_PRIVATE;
	return 0;
}

PT_API int pthread_mutexattr_setrobust(pthread_mutexattr_t *a, int robust)
{
	(void)a;
	if (robust == PTHREAD_MUTEX_STALLED)
		return 0;
	return robust == PTHREAD_MUTEX_ROBUST ? ENOTSUP : EINVAL;
}

PT_API int pthread_mutexattr_getrobust(const pthread_mutexattr_t *a, int *robust)
{
	(void)a;
	*robust = PTHREAD_MUTEX_STALLED;
	return 0;
}

PT_API int pthread_mutexattr_setprotocol(pthread_mutexattr_t *a, int protocol)
{
	if (protocol != PTHREAD_PRIO_NONE && protocol != PTHREAD_PRIO_INHERIT &&
	    protocol != PTHREAD_PRIO_PROTECT)
		return EINVAL;
	PT_MA(a) = (PT_MA(a) & ~0x30) | (protocol << 4);
	return 0;
}

PT_API int pthread_mutexattr_getprotocol(const pthread_mutexattr_t *a, int *protocol)
{
	*protocol = PT_MA_PROTO(PT_MA(a));
	return 0;
}

PT_API int pthread_mutexattr_setprioceiling(pthread_mutexattr_t *a, int ceiling)
{
	if (ceiling < 0 || ceiling > 0xfffff)
		return EINVAL;
	PT_MA(a) = (PT_MA(a) & 0xfff) | (ceiling << 12);
	return 0;
}

PT_API int pthread_mutexattr_getprioceiling(const pthread_mutexattr_t *a, int *ceiling)
{
	*ceiling = PT_MA_CEIL(PT_MA(a));
	return 0;
}

PT_API int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a)
{
	int attr = a ? PT_MA(a) : 0;
	memset(m, 0, sizeof *m);
	PT_M(m)->kind = PT_MA_TYPE(attr) | PT_MA_PROTO(attr) << PT_M_PROTO_SHIFT;
	PT_M(m)->ceiling = (uint32_t)PT_MA_CEIL(attr);
	return 0;
}

PT_API int pthread_mutex_destroy(pthread_mutex_t *m)
{
	weft_mutex_t *w = atomic_load_explicit(&PT_M(m)->obj, memory_order_acquire);
	if (!w)
		return 0;   /* never used */
	int e = weft_mutex_destroy(w);
	if (e)
		return e;   /* EBUSY: still in use, left as it is */
	atomic_store_explicit(&PT_M(m)->obj, NULL, memory_order_relaxed);
	pt_pool_free(w);
	return 0;
}

PT_API int pthread_mutex_lock(pthread_mutex_t *m)
{
	weft_mutex_t *w = atomic_load_explicit(&PT_M(m)->obj, memory_order_acquire);
	if (pt_unlikely(!w) && !(w = pt_mutex_weft(m)))
		return EAGAIN;
	return weft_mutex_lock(w);
}

PT_API int pthread_mutex_trylock(pthread_mutex_t *m)
{
	weft_mutex_t *w = atomic_load_explicit(&PT_M(m)->obj, memory_order_acquire);
	if (pt_unlikely(!w) && !(w = pt_mutex_weft(m)))
		return EAGAIN;
	return weft_mutex_trylock(w);
}

PT_API int pthread_mutex_unlock(pthread_mutex_t *m)
{
	weft_mutex_t *w = atomic_load_explicit(&PT_M(m)->obj, memory_order_acquire);
	if (pt_unlikely(!w))
		return EPERM;   /* never locked */
	return weft_mutex_unlock(w);
}

PT_API int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock,
                                   const struct timespec *abs)
{
	struct timespec mono;
	int e = pt_abs_to_monotonic(clock, abs, &mono);
	if (e)
		return e;
	weft_mutex_t *w = pt_mutex_weft(m);
	return w ? weft_mutex_timedlock(w, &mono) : EAGAIN;
}

PT_API int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs)
{
	return pthread_mutex_clocklock(m, CLOCK_REALTIME, abs);
}

PT_API int pthread_mutex_consistent(pthread_mutex_t *m)
{
	(void)m;
	return EINVAL;   /* no mutex is robust */
}

PT_API int pthread_mutex_getprioceiling(const pthread_mutex_t *m, int *ceiling)
{
	if ((PT_M(m)->kind >> PT_M_PROTO_SHIFT & 3) != PTHREAD_PRIO_PROTECT)
		return EINVAL;
	*ceiling = (int)PT_M(m)->ceiling;
	return 0;
}

PT_API int pthread_mutex_setprioceiling(pthread_mutex_t *m, int ceiling, int *old)
{
	if ((PT_M(m)->kind >> PT_M_PROTO_SHIFT & 3) != PTHREAD_PRIO_PROTECT ||
	    ceiling < 0 || ceiling > 0xfffff)
		return EINVAL;
	*old = (int)PT_M(m)->ceiling;
	PT_M(m)->ceiling = (uint32_t)ceiling;
	return 0;
}

