/*
 * pt_sem.c — unnamed POSIX semaphores (sem_*) on weft semaphores.
 *
 * Storage (docs/design.md, "The pthread layer"): in place.  A weft semaphore
 * is exactly the 32 bytes of a sem_t; sem_init makes it (sem_t has no static
 * initializer).
 *
 * Process-shared and named semaphores are glibc's own, real ones: sem_init
 * with pshared != 0 and sem_open give glibc's futex-based semaphore, which
 * works across processes, and every sem_* call on such a semaphore goes to
 * glibc.  They are told apart from weft's by address: the layer keeps the
 * few glibc semaphores a program has in a small table, and an empty table
 * (the usual case) costs one load per call.  A green thread that waits on
 * a glibc semaphore blocks its worker in the kernel, like any blocking
 * system call.
 *
 * These functions report errors through errno and -1, as POSIX specifies.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include "pt_internal.h"

_Static_assert(sizeof(sem_t) == sizeof(weft_sem_t) && _Alignof(sem_t) >= _Alignof(weft_sem_t),
               "sem_t layout");
#define PT_SEM(s) ((weft_sem_t *)(void *)(s))

#define PT_GLIBC_SEMS 256
static sem_t *pt_glibc_sems[PT_GLIBC_SEMS];
static int pt_nglibc;          /* entries in use (a hint for the fast path) */
static weft_mutex_t pt_glibc_lock = WEFT_MUTEX_INITIALIZER;

/* fork() (pt_init.c): a weft mutex, which a prepare handler may lock.  In
 * the child its queue may list threads that do not exist there: it starts
 * afresh instead of being unlocked. */
void pt_sem_fork_lock(void) { weft_mutex_lock(&pt_glibc_lock); }
void pt_sem_fork_unlock(void) { weft_mutex_unlock(&pt_glibc_lock); }
void pt_sem_fork_child(void) { pt_glibc_lock = (weft_mutex_t)WEFT_MUTEX_INITIALIZER; }

static bool pt_is_glibc(sem_t *s)
{
	if (pt_likely(__atomic_load_n(&pt_nglibc, __ATOMIC_ACQUIRE) == 0))
		return false;
	for (int i = 0; i < PT_GLIBC_SEMS; i++)
		if (__atomic_load_n(&pt_glibc_sems[i], __ATOMIC_RELAXED) == s)
			return true;
	return false;
}

static int pt_glibc_add(sem_t *s)
{
	int e = ENOSPC;
	weft_mutex_lock(&pt_glibc_lock);
	for (int i = 0; i < PT_GLIBC_SEMS && e; i++)
		if (!pt_glibc_sems[i]) {
			__atomic_store_n(&pt_glibc_sems[i], s, __ATOMIC_RELAXED);
			__atomic_add_fetch(&pt_nglibc, 1, __ATOMIC_RELEASE);
			e = 0;
		}
	weft_mutex_unlock(&pt_glibc_lock);
	return e;
}

static void pt_glibc_remove(sem_t *s)
{
	weft_mutex_lock(&pt_glibc_lock);
	for (int i = 0; i < PT_GLIBC_SEMS; i++)
		if (pt_glibc_sems[i] == s) {
			__atomic_store_n(&pt_glibc_sems[i], NULL, __ATOMIC_RELAXED);
			__atomic_sub_fetch(&pt_nglibc, 1, __ATOMIC_RELEASE);
			break;
		}
	weft_mutex_unlock(&pt_glibc_lock);
}

static int pt_sem_ret(int e)
{
	if (!e)
		return 0;
	errno = e;
	return -1;
}

PT_API int sem_init(sem_t *s, int pshared, unsigned value)
{
	if (value > SEM_VALUE_MAX)
		return pt_sem_ret(EINVAL);
	pt_init();
	if (pshared) {
		int r = pt_real(sem_init)(s, pshared, value);
		if (r == 0 && pt_glibc_add(s)) {
			pt_real(sem_destroy)(s);
			return pt_sem_ret(ENOSPC);
		}
		return r;
	}
	return pt_sem_ret(weft_sem_init(PT_SEM(s), value));
}

PT_API int sem_destroy(sem_t *s)
{
	if (pt_is_glibc(s)) {
		pt_glibc_remove(s);
		return pt_real(sem_destroy)(s);
	}
	return pt_sem_ret(weft_sem_destroy(PT_SEM(s)));
}

PT_API int sem_wait(sem_t *s)
{
	if (pt_is_glibc(s))
		return pt_real(sem_wait)(s);
	pt_init();
	return pt_sem_ret(weft_sem_wait(PT_SEM(s)));
}

PT_API int sem_trywait(sem_t *s)
{
	if (pt_is_glibc(s))
		return pt_real(sem_trywait)(s);
	return pt_sem_ret(weft_sem_trywait(PT_SEM(s)));
}

PT_API int sem_clockwait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
	if (pt_is_glibc(s))
		return pt_real(sem_clockwait)(s, clock, abs);
	struct timespec mono;
	int e = pt_abs_to_monotonic(clock, abs, &mono);
	if (e)
		return pt_sem_ret(e);
	pt_init();
	return pt_sem_ret(weft_sem_timedwait(PT_SEM(s), &mono));
}

PT_API int sem_timedwait(sem_t *s, const struct timespec *abs)
{
	if (pt_is_glibc(s))
		return pt_real(sem_timedwait)(s, abs);
	return sem_clockwait(s, CLOCK_REALTIME, abs);
}

PT_API int sem_post(sem_t *s)
{
	if (pt_is_glibc(s))
		return pt_real(sem_post)(s);
	return pt_sem_ret(weft_sem_post(PT_SEM(s)));
}

PT_API int sem_getvalue(sem_t *s, int *value)
{
	if (pt_is_glibc(s))
		return pt_real(sem_getvalue)(s, value);
	return pt_sem_ret(weft_sem_getvalue(PT_SEM(s), value));
}

PT_API sem_t *sem_open(const char *name, int oflag, ...)
{
	mode_t mode = 0;
	unsigned value = 0;
	if (oflag & O_CREAT) {
		va_list ap;
		va_start(ap, oflag);
		mode = (mode_t)va_arg(ap, int);
		value = va_arg(ap, unsigned);
		va_end(ap);
	}
	pt_init();
	sem_t *s = pt_real(sem_open)(name, oflag, mode, value);
	if (s != SEM_FAILED && pt_glibc_add(s)) {
		pt_real(sem_close)(s);
		errno = ENOSPC;
		return SEM_FAILED;
	}
	return s;
}

PT_API int sem_close(sem_t *s)
{
	pt_glibc_remove(s);
	return pt_real(sem_close)(s);
}
