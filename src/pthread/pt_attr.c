/*
 * pt_attr.c — pthread_attr_t.
 *
 * Storage: the layer's own record in place (pthread_attr_t has 56 bytes).
 * Detach state, stack size, caller-supplied stacks and guard size map onto
 * weft's thread attributes.  Scheduling policy, priority, inheritance,
 * contention scope and CPU affinity are accepted, validated and reported
 * back, and have no effect: weft has one scheduling class, every green
 * thread competes with every other (both PTHREAD_SCOPE_SYSTEM and
 * PTHREAD_SCOPE_PROCESS are accepted; the default reads SYSTEM, as on
 * glibc), and the guard page is always one page.
 *
 * An attribute object without the layer's magic number was made by glibc
 * (by a call before the layer's constructor, or by glibc's own
 * pthread_getattr_np): every call on it goes to glibc.
 */
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include "pt_internal.h"

struct pt_attr {
	uint32_t magic;
	int detach;
	size_t stacksize;    /* 0: the layer's default */
	void *stackaddr;     /* lowest address of a caller's stack, or NULL */
	size_t guardsize;
	int policy, prio, inherit, scope;
};
_Static_assert(sizeof(struct pt_attr) <= sizeof(pthread_attr_t) &&
               _Alignof(pthread_attr_t) >= _Alignof(struct pt_attr), "pthread_attr_t layout");
#define PT_A(a) ((struct pt_attr *)(void *)(a))
#define PT_A_MAGIC 0x70746174u

int pt_attr_to_weft(const pthread_attr_t *a, weft_attr_t *w, bool *any) PT_HIDDEN;

/* Translate for weft_create.  *any is false when a asks for nothing weft's
 * defaults do not give (then the caller passes NULL: the fast path). */
int pt_attr_to_weft(const pthread_attr_t *a, weft_attr_t *w, bool *any)
{
	const struct pt_attr *p = PT_A(a);
	*any = false;
	if (p->magic != PT_A_MAGIC)
		return EINVAL;
	if (p->detach == PTHREAD_CREATE_JOINABLE && !p->stacksize && !p->stackaddr)
		return 0;
	*any = true;
	weft_attr_init(w);
	int e = 0;
	if (p->stackaddr)
		e = weft_attr_setstack(w, p->stackaddr, p->stacksize);
	else if (p->stacksize)
		e = weft_attr_setstacksize(w, p->stacksize);
	if (!e && p->detach == PTHREAD_CREATE_DETACHED)
		e = weft_attr_setdetachstate(w, WEFT_CREATE_DETACHED);
	return e;
}

PT_API int pthread_attr_init(pthread_attr_t *a)
{
	if (pt_early())
		return pt_real(pthread_attr_init)(a);
	memset(a, 0, sizeof *a);
	struct pt_attr *p = PT_A(a);
	p->magic = PT_A_MAGIC;
	p->detach = PTHREAD_CREATE_JOINABLE;
	p->guardsize = (size_t)sysconf(_SC_PAGESIZE);
	p->policy = SCHED_OTHER;
	p->inherit = PTHREAD_INHERIT_SCHED;
	p->scope = PTHREAD_SCOPE_SYSTEM;
	return 0;
}

PT_API int pthread_attr_destroy(pthread_attr_t *a)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_destroy)(a);   /* glibc's */
	PT_A(a)->magic = 0;
	return 0;
}

PT_API int pthread_attr_setdetachstate(pthread_attr_t *a, int s)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_setdetachstate)(a, s);   /* glibc's */
	if (s != PTHREAD_CREATE_JOINABLE && s != PTHREAD_CREATE_DETACHED)
		return EINVAL;
	PT_A(a)->detach = s;
	return 0;
}

PT_API int pthread_attr_getdetachstate(const pthread_attr_t *a, int *s)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_getdetachstate)(a, s);   /* glibc's */
	*s = PT_A(a)->detach;
	return 0;
}

PT_API int pthread_attr_setstacksize(pthread_attr_t *a, size_t size)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_setstacksize)(a, size);   /* glibc's */
	if (size < (size_t)PTHREAD_STACK_MIN || size < WEFT_STACK_MIN)
		return EINVAL;
	PT_A(a)->stacksize = size;
	PT_A(a)->stackaddr = NULL;
	return 0;
}

PT_API int pthread_attr_getstacksize(const pthread_attr_t *a, size_t *size)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_getstacksize)(a, size);   /* glibc's */
	size_t s = PT_A(a)->stacksize;
	if (!s) {
		/* The default every green thread gets: read it off a fresh
		 * weft attribute (WEFT_STACK_SIZE as the layer set it up). */
		pt_init();
		weft_attr_t w;
		weft_attr_init(&w);
		weft_attr_getstacksize(&w, &s);
	}
	*size = s;
	return 0;
}

PT_API int pthread_attr_setstack(pthread_attr_t *a, void *addr, size_t size)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_setstack)(a, addr, size);   /* glibc's */
	if (size < (size_t)PTHREAD_STACK_MIN || size < WEFT_STACK_MIN ||
	    (uintptr_t)addr + size < (uintptr_t)addr)
		return EINVAL;
	PT_A(a)->stackaddr = addr;
	PT_A(a)->stacksize = size;
	return 0;
}

PT_API int pthread_attr_getstack(const pthread_attr_t *a, void **addr, size_t *size)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_getstack)(a, addr, size);   /* glibc's */
	*addr = PT_A(a)->stackaddr;
	return pthread_attr_getstacksize(a, size);
}

PT_API int pthread_attr_setguardsize(pthread_attr_t *a, size_t g)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_setguardsize)(a, g);   /* glibc's */
	PT_A(a)->guardsize = g;   /* reported; weft's guard is one page */
	return 0;
}

PT_API int pthread_attr_getguardsize(const pthread_attr_t *a, size_t *g)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_getguardsize)(a, g);   /* glibc's */
	*g = PT_A(a)->guardsize;
	return 0;
}

PT_API int pthread_attr_setschedpolicy(pthread_attr_t *a, int policy)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_setschedpolicy)(a, policy);   /* glibc's */
	if (policy != SCHED_OTHER && policy != SCHED_FIFO && policy != SCHED_RR &&
	    policy != SCHED_BATCH && policy != SCHED_IDLE)
		return EINVAL;
	PT_A(a)->policy = policy;
	return 0;
}

PT_API int pthread_attr_getschedpolicy(const pthread_attr_t *a, int *policy)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_getschedpolicy)(a, policy);   /* glibc's */
	*policy = PT_A(a)->policy;
	return 0;
}

PT_API int pthread_attr_setschedparam(pthread_attr_t *a, const struct sched_param *sp)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_setschedparam)(a, sp);   /* glibc's */
	int lo = sched_get_priority_min(PT_A(a)->policy);
	int hi = sched_get_priority_max(PT_A(a)->policy);
	if (sp->sched_priority < lo || sp->sched_priority > hi)
		return EINVAL;
	PT_A(a)->prio = sp->sched_priority;
	return 0;
}

PT_API int pthread_attr_getschedparam(const pthread_attr_t *a, struct sched_param *sp)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_getschedparam)(a, sp);   /* glibc's */
	memset(sp, 0, sizeof *sp);
	sp->sched_priority = PT_A(a)->prio;
	return 0;
}

PT_API int pthread_attr_setinheritsched(pthread_attr_t *a, int inherit)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_setinheritsched)(a, inherit);   /* glibc's */
	if (inherit != PTHREAD_INHERIT_SCHED && inherit != PTHREAD_EXPLICIT_SCHED)
		return EINVAL;
	PT_A(a)->inherit = inherit;
	return 0;
}

PT_API int pthread_attr_getinheritsched(const pthread_attr_t *a, int *inherit)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_getinheritsched)(a, inherit);   /* glibc's */
	*inherit = PT_A(a)->inherit;
	return 0;
}

PT_API int pthread_attr_setscope(pthread_attr_t *a, int scope)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_setscope)(a, scope);   /* glibc's */
	if (scope != PTHREAD_SCOPE_SYSTEM && scope != PTHREAD_SCOPE_PROCESS)
		return EINVAL;
	PT_A(a)->scope = scope;
	return 0;
}

PT_API int pthread_attr_getscope(const pthread_attr_t *a, int *scope)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_getscope)(a, scope);   /* glibc's */
	*scope = PT_A(a)->scope;
	return 0;
}

PT_API int pthread_attr_setaffinity_np(pthread_attr_t *a, size_t size, const cpu_set_t *set)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_setaffinity_np)(a, size, set);   /* glibc's */
	(void)a;
	(void)size;
	(void)set;
	return 0;   /* accepted; green threads run on any worker */
}

PT_API int pthread_attr_getaffinity_np(const pthread_attr_t *a, size_t size, cpu_set_t *set)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_getaffinity_np)(a, size, set);   /* glibc's */
	(void)a;
	return sched_getaffinity(0, size, set) ? errno : 0;
}

/* Filled in by pthread_getattr_np (pt_thread.c). */
void pt_attr_fill(pthread_attr_t *a, void *stackaddr, size_t stacksize, int detach) PT_HIDDEN;
void pt_attr_fill(pthread_attr_t *a, void *stackaddr, size_t stacksize, int detach)
{
	pthread_attr_init(a);
	PT_A(a)->stackaddr = stackaddr;
	PT_A(a)->stacksize = stacksize;
	PT_A(a)->detach = detach;
}

/* Obsolete glibc names and extensions that take an attribute object: they
 * must not reach glibc with the layer's record, which glibc would write its
 * own fields into. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
PT_API int pthread_attr_setstackaddr(pthread_attr_t *a, void *addr)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_setstackaddr)(a, addr);
	/* The old interface names the top of the stack on a stack that grows
	 * down, and no size: keep the current (or default) size below it. */
	size_t size;
	pthread_attr_getstacksize(a, &size);
	PT_A(a)->stackaddr = (char *)addr - size;
	PT_A(a)->stacksize = size;
	return 0;
}

PT_API int pthread_attr_getstackaddr(const pthread_attr_t *a, void **addr)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_getstackaddr)(a, addr);
	*addr = PT_A(a)->stackaddr ? (char *)PT_A(a)->stackaddr + PT_A(a)->stacksize : NULL;
	return 0;
}
#pragma GCC diagnostic pop

/* A signal mask for new threads: accepted, not applied (signals are left
 * to weft's own handling, which is planned; docs/guide.md). */
PT_API int pthread_attr_setsigmask_np(pthread_attr_t *a, const sigset_t *set)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_setsigmask_np)(a, set);
	return 0;
}

PT_API int pthread_attr_getsigmask_np(const pthread_attr_t *a, sigset_t *set)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return pt_real(pthread_attr_getsigmask_np)(a, set);
	(void)set;
	return PTHREAD_ATTR_NO_SIGMASK_NP;
}

/* Process-wide defaults: reported as the layer's; only the stack size and
 * guard size could mean something, and weft fixes them at start. */
PT_API int pthread_getattr_default_np(pthread_attr_t *a)
{
	return pthread_attr_init(a);
}

PT_API int pthread_setattr_default_np(const pthread_attr_t *a)
{
	if (PT_A(a)->magic != PT_A_MAGIC)
		return EINVAL;
	return PT_A(a)->stacksize || PT_A(a)->stackaddr ? EINVAL : 0;
}
