/*
 * pt_thread.c — threads: pthread_create, join, detach, exit, self, names,
 * stack lookup, and the scheduling calls weft accepts without acting on.
 *
 * A pthread_t is the weft_t of the green thread (both are pointer-sized
 * unsigned integers), so join, detach and the name calls map one to one.
 * A foreign thread (not a weft worker) asking for pthread_self() gets
 * glibc's own thread id with the top bit set: weft handles of live threads
 * never have it set in practice (it is the top bit of a 32-bit generation
 * count), so the two kinds never compare equal.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include "pt_internal.h"

#define PT_FOREIGN_BIT ((uintptr_t)1 << 63)

_Static_assert(sizeof(pthread_t) == sizeof(weft_t), "pthread_t is a weft_t");

int pt_attr_to_weft(const pthread_attr_t *a, weft_attr_t *w, bool *any) PT_HIDDEN;
void pt_attr_fill(pthread_attr_t *a, void *stackaddr, size_t stacksize, int detach) PT_HIDDEN;

PT_API int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*start)(void *),
                          void *arg)
{
	pt_init();
	weft_attr_t w;
	bool any = false;
	if (a) {
		int e = pt_attr_to_weft(a, &w, &any);
		if (e)
			return e;
	}
	return weft_create((weft_t *)t, any ? &w : NULL, start, arg);
}

PT_API int pthread_join(pthread_t t, void **ret)
{
	void *r;
	int e = weft_join((weft_t)t, &r);
	if (!e && ret)
		*ret = pt_join_result(r);
	return e;
}

PT_API int pthread_detach(pthread_t t)
{
	return weft_detach((weft_t)t);
}

PT_API void pthread_exit(void *ret)
{
	if (!pt_green())
		pt_real(pthread_exit)(ret);
	weft_exit(ret);
}

PT_API pthread_t pthread_self(void)
{
	/* Until weft is up (also while it starts: a sanitizer reporting from
	 * inside weft's start asks who is calling), glibc answers. */
	if (pt_unlikely(!__atomic_load_n(&pt_ready, __ATOMIC_ACQUIRE)))
		return pt_real(pthread_self)();
	/* A kernel thread that is no worker is foreign; asking weft_self
	 * there would wait for weft's start in a child of fork() that is
	 * starting its workers, and a sanitizer asks who a worker's new
	 * kernel thread is before weft's entry runs on it (deadlock). */
	weft_t s = pt_green() ? weft_self() : WEFT_NULL;
	if (pt_likely(s))
		return (pthread_t)s;
	return pt_real(pthread_self)() | PT_FOREIGN_BIT;
}

PT_API int pthread_equal(pthread_t a, pthread_t b) { return a == b; }

/* Does t name a live green thread?  0 or ESRCH. */
static int pt_alive(pthread_t t)
{
	char c;
	int e = weft_getname((weft_t)t, &c, 1);
	return e == ESRCH ? ESRCH : 0;
}

PT_API int pthread_setname_np(pthread_t t, const char *name)
{
	if (strlen(name) > 15)
		return ERANGE;   /* glibc's limit: 16 bytes with the terminator */
	return weft_setname((weft_t)t, name);
}

PT_API int pthread_getname_np(pthread_t t, char *buf, size_t len)
{
	return weft_getname((weft_t)t, buf, len);
}

/* The real pthread_t of the kernel thread that became "main". */
static pthread_t pt_main_kthread;
__attribute__((constructor)) static void pt_note_main(void)
{
	pt_main_kthread = pt_real(pthread_self)();
}

PT_API int pthread_getattr_np(pthread_t t, pthread_attr_t *a)
{
	/* Before weft is up every id is glibc's (pthread_self above), e.g. a
	 * sanitizer's look at the stack of weft's own start-up probe thread. */
	if (pt_unlikely(!__atomic_load_n(&pt_ready, __ATOMIC_ACQUIRE)))
		return pt_real(pthread_getattr_np)(t, a);
	if (t & PT_FOREIGN_BIT)
		return pt_real(pthread_getattr_np)(t & ~PT_FOREIGN_BIT, a);
	void *addr;
	size_t size;
	int e = weft_getstack((weft_t)t, &addr, &size);
	if (e == ENOENT) {
		/* "main", on the initial kernel thread's own stack. */
		pthread_attr_t real;
		if ((e = pt_real(pthread_getattr_np)(pt_main_kthread, &real)))
			return e;
		pt_real(pthread_attr_getstack)(&real, &addr, &size);
		pt_real(pthread_attr_destroy)(&real);
	} else if (e) {
		return e;
	}
	pt_attr_fill(a, addr, size, PTHREAD_CREATE_JOINABLE);
	return 0;
}

static int pt_concurrency;

PT_API int pthread_getconcurrency(void) { return __atomic_load_n(&pt_concurrency, __ATOMIC_RELAXED); }

PT_API int pthread_setconcurrency(int level)
{
	if (level < 0)
		return EINVAL;
	__atomic_store_n(&pt_concurrency, level, __ATOMIC_RELAXED);
	return 0;
}

static int pt_policy_ok(int policy, int prio)
{
	if (policy != SCHED_OTHER && policy != SCHED_FIFO && policy != SCHED_RR &&
	    policy != SCHED_BATCH && policy != SCHED_IDLE)
		return EINVAL;
	if (prio < sched_get_priority_min(policy) || prio > sched_get_priority_max(policy))
		return EINVAL;
	return 0;
}

/* Accepted and validated; weft has one scheduling class, so every thread
 * keeps reporting SCHED_OTHER with priority 0. */
PT_API int pthread_setschedparam(pthread_t t, int policy, const struct sched_param *sp)
{
	int e = pt_alive(t);
	return e ? e : pt_policy_ok(policy, sp->sched_priority);
}

PT_API int pthread_getschedparam(pthread_t t, int *policy, struct sched_param *sp)
{
	int e = pt_alive(t);
	if (e)
		return e;
	*policy = SCHED_OTHER;
	memset(sp, 0, sizeof *sp);
	return 0;
}

PT_API int pthread_setschedprio(pthread_t t, int prio)
{
	int e = pt_alive(t);
	return e ? e : pt_policy_ok(SCHED_OTHER, prio);
}

PT_API int pthread_setaffinity_np(pthread_t t, size_t size, const cpu_set_t *set)
{
	(void)size;
	(void)set;
	return pt_alive(t);   /* accepted; a green thread runs on any worker */
}

PT_API int pthread_getaffinity_np(pthread_t t, size_t size, cpu_set_t *set)
{
	int e = pt_alive(t);
	if (e)
		return e;
	return sched_getaffinity(0, size, set) ? errno : 0;
}

PT_API int pthread_getcpuclockid(pthread_t t, clockid_t *clock)
{
	(void)clock;
	int e = pt_alive(t);
	return e ? e : ENOENT;   /* no per-green-thread CPU clock */
}

/* Non-blocking and timed joins.  weft has no such join; a finished thread
 * is recognized as one whose handle is still valid (weft_getname) but whose
 * stack is gone (weft_getstack: ESRCH), and then weft_join returns at once.
 * The timed variants poll every millisecond: they are meant for rare use. */
PT_API int pthread_tryjoin_np(pthread_t t, void **ret)
{
	char c;
	if (weft_getname((weft_t)t, &c, 1) == ESRCH)
		return ESRCH;
	if ((weft_t)t == weft_self())
		return EDEADLK;
	void *addr;
	size_t size;
	if (weft_getstack((weft_t)t, &addr, &size) != ESRCH)
		return EBUSY;   /* running (or main) */
	return pthread_join(t, ret);
}

PT_API int pthread_clockjoin_np(pthread_t t, void **ret, clockid_t clock,
                                const struct timespec *abs)
{
	if (!abs)
		return pthread_join(t, ret);
	struct timespec mono;
	int e = pt_abs_to_monotonic(clock, abs, &mono);
	if (e)
		return e;
	for (;;) {
		if ((e = pthread_tryjoin_np(t, ret)) != EBUSY)
			return e;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > mono.tv_sec ||
		    (now.tv_sec == mono.tv_sec && now.tv_nsec >= mono.tv_nsec))
			return ETIMEDOUT;
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
}

PT_API int pthread_timedjoin_np(pthread_t t, void **ret, const struct timespec *abs)
{
	return pthread_clockjoin_np(t, ret, CLOCK_REALTIME, abs);
}
