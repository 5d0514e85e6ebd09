/*
 * pt_cond.c — pthread_cond_t and pthread_condattr_t on weft condition
 * variables.
 *
 * Storage (docs/design.md, "The pthread layer"): in place.  A weft condition
 * variable is 40 bytes and all-zero bytes are a valid one, so it occupies the
 * first 40 of the 48 bytes of a pthread_cond_t, and the clock of timed waits
 * (pthread_condattr_setclock; 0 is CLOCK_REALTIME, the default) the next
 * 4.  PTHREAD_COND_INITIALIZER is all zero bytes: a usable condition variable
 * on CLOCK_REALTIME.  Timed waits convert the deadline to CLOCK_MONOTONIC
 * once, at the call (a later step of the wall clock is not followed).
 */
#include <string.h>
#include "pt_internal.h"

struct pt_cond {
	weft_cond_t c;
	int clock;
};
_Static_assert(sizeof(pthread_cond_t) == 48 && sizeof(struct pt_cond) <= sizeof(pthread_cond_t) &&
               _Alignof(pthread_cond_t) >= _Alignof(struct pt_cond), "pthread_cond_t layout");
#define PT_C(c) ((struct pt_cond *)(void *)(c))

/* pthread_condattr_t (an int): bit 0 process-shared (never set), bits 1+
 * the clock. */
#define PT_CA(a) (*(int *)(void *)(a))

PT_API int pthread_condattr_init(pthread_condattr_t *a)
{
	PT_CA(a) = CLOCK_REALTIME << 1;
	return 0;
}

PT_API int pthread_condattr_destroy(pthread_condattr_t *a) { (void)a; return 0; }

PT_API int pthread_condattr_setclock(pthread_condattr_t *a, clockid_t clock)
{
	if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)
		return EINVAL;
	PT_CA(a) = (int)clock << 1;
	return 0;
}

PT_API int pthread_condattr_getclock(const pthread_condattr_t *a, clockid_t *clock)
{
	*clock = (clockid_t)(PT_CA(a) >> 1);
	return 0;
}

PT_API int pthread_condattr_setpshared(pthread_condattr_t *a, int pshared)
{
	(void)a;
	return pt_private_only(pshared);
}

PT_API int pthread_condattr_getpshared(const pthread_condattr_t *a, int *pshared)
{
	(void)a;
	*pshared = PTHREAD_PROCESS_PRIVATE;
	return 0;
}

PT_API int pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a)
{
	memset(c, 0, sizeof *c);
	weft_cond_init(&PT_C(c)->c, NULL);
	PT_C(c)->clock = a ? PT_CA(a) >> 1 : CLOCK_REALTIME;
	return 0;
}

PT_API int pthread_cond_destroy(pthread_cond_t *c)
{
	return weft_cond_destroy(&PT_C(c)->c);
}

PT_API int pthread_cond_signal(pthread_cond_t *c)
{
	return weft_cond_signal(&PT_C(c)->c);
}

PT_API int pthread_cond_broadcast(pthread_cond_t *c)
{
	return weft_cond_broadcast(&PT_C(c)->c);
}

PT_API int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	weft_mutex_t *w = pt_mutex_weft(m);
	if (!w)
		return EAGAIN;
	return weft_cond_wait(&PT_C(c)->c, w);
}

PT_API int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                                  const struct timespec *abs)
{
	struct timespec mono;
	int e = pt_abs_to_monotonic(clock, abs, &mono);
	if (e)
		return e;
	weft_mutex_t *w = pt_mutex_weft(m);
	if (!w)
		return EAGAIN;
	return weft_cond_timedwait(&PT_C(c)->c, w, &mono);
}

PT_API int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                  const struct timespec *abs)
{
	return pthread_cond_clockwait(c, m, PT_C(c)->clock, abs);
}
