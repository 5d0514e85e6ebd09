/*
 * pt_signal.c — signals, cancellation and fork handlers: minimal versions.
 *
 * weft's own handling of signals, cancellation and fork is planned work
 * (weft_kill, weft_sigmask, weft_cancel, weft_atfork in the API plan); until
 * it lands, the layer answers these calls as follows, and docs/guide.md
 * lists the same:
 *  - pthread_sigmask: glibc's, on the worker's kernel thread: the mask
 *    belongs to the worker, not to the green thread.
 *  - pthread_kill: sig 0 checks that the thread exists; a signal to the
 *    caller itself is raised on its worker (its handler runs on the
 *    caller's stack); a signal to another green thread is delivered to the
 *    process (some thread handles it).  A foreign thread's id (from
 *    pthread_self there) goes to glibc.
 *  - pthread_cancel: deferred cancellation acted on only at
 *    pthread_testcancel; the thread then exits with PTHREAD_CANCELED.
 *    Cleanup handlers (pthread_cleanup_push) are not run, and the other
 *    cancellation points do not act.
 *  - pthread_setcancelstate/type: recorded per green thread and reported.
 *  - pthread_atfork: glibc's.
 * Nothing here interposes sigaction, signal or sigprocmask.
 */
#include <signal.h>
#include <unistd.h>
#include "pt_internal.h"

#define PT_FOREIGN_BIT ((uintptr_t)1 << 63)

PT_API int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	return pt_real(pthread_sigmask)(how, set, old);
}

PT_API int pthread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
	return pt_real(pthread_atfork)(prepare, parent, child);
}

PT_API int pthread_kill(pthread_t t, int sig)
{
	if (sig < 0 || sig >= NSIG)
		return EINVAL;
	if (t & PT_FOREIGN_BIT)
		return pt_real(pthread_kill)(t & ~PT_FOREIGN_BIT, sig);
	char c;
	if (weft_getname((weft_t)t, &c, 1) == ESRCH)
		return ESRCH;
	if (sig == 0)
		return 0;
	if ((weft_t)t == weft_self())
		return raise(sig) ? errno : 0;
	return kill(getpid(), sig) ? errno : 0;
}

/* Per green thread: cancel state and type, in one weft key. */
static weft_key_t pt_cancel_key;
static pthread_once_t pt_cancel_once = PTHREAD_ONCE_INIT;
static void pt_cancel_key_make(void) { weft_key_create(&pt_cancel_key, NULL); }

/* Pending requests: handles of threads asked to cancel. */
#define PT_CANCELS 256
static weft_t pt_cancels[PT_CANCELS];
static int pt_ncancels;
static weft_mutex_t pt_cancel_lock = WEFT_MUTEX_INITIALIZER;

static uintptr_t pt_cancel_bits(void)
{
	pthread_once(&pt_cancel_once, pt_cancel_key_make);
	return (uintptr_t)weft_getspecific(pt_cancel_key);
}

/* bit 0: disabled, bit 1: asynchronous (both 0 = POSIX default) */
PT_API int pthread_setcancelstate(int state, int *old)
{
	if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE)
		return EINVAL;
	uintptr_t b = pt_cancel_bits();
	if (old)
		*old = (b & 1) ? PTHREAD_CANCEL_DISABLE : PTHREAD_CANCEL_ENABLE;
	b = (b & ~(uintptr_t)1) | (state == PTHREAD_CANCEL_DISABLE);
	weft_setspecific(pt_cancel_key, (void *)b);
	return 0;
}

PT_API int pthread_setcanceltype(int type, int *old)
{
	if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS)
		return EINVAL;
	uintptr_t b = pt_cancel_bits();
	if (old)
		*old = (b & 2) ? PTHREAD_CANCEL_ASYNCHRONOUS : PTHREAD_CANCEL_DEFERRED;
	b = (b & ~(uintptr_t)2) | (type == PTHREAD_CANCEL_ASYNCHRONOUS ? 2 : 0);
	weft_setspecific(pt_cancel_key, (void *)b);
	return 0;
}

PT_API int pthread_cancel(pthread_t t)
{
	char c;
	if (weft_getname((weft_t)t, &c, 1) == ESRCH)
		return ESRCH;
	int e = 0;
	weft_mutex_lock(&pt_cancel_lock);
	bool found = false;
	for (int i = 0; i < PT_CANCELS && !found; i++) {
		found = pt_cancels[i] == (weft_t)t;
		if (!found && pt_cancels[i] && weft_getname(pt_cancels[i], &c, 1) == ESRCH) {
			pt_cancels[i] = 0;   /* that thread is gone */
			__atomic_sub_fetch(&pt_ncancels, 1, __ATOMIC_RELEASE);
		}
	}
	for (int i = 0; i < PT_CANCELS && !found; i++)
		if (!pt_cancels[i]) {
			pt_cancels[i] = (weft_t)t;
			__atomic_add_fetch(&pt_ncancels, 1, __ATOMIC_RELEASE);
			found = true;
		}
	if (!found)
		e = EAGAIN;
	weft_mutex_unlock(&pt_cancel_lock);
	return e;
}

void pt_testcancel(void)
{
	if (pt_likely(__atomic_load_n(&pt_ncancels, __ATOMIC_ACQUIRE) == 0))
		return;
	weft_t self = weft_self();
	if (!self || (pt_cancel_bits() & 1))
		return;
	bool mine = false;
	weft_mutex_lock(&pt_cancel_lock);
	for (int i = 0; i < PT_CANCELS; i++)
		if (pt_cancels[i] == self) {
			pt_cancels[i] = 0;
			__atomic_sub_fetch(&pt_ncancels, 1, __ATOMIC_RELEASE);
			mine = true;
			break;
		}
	weft_mutex_unlock(&pt_cancel_lock);
	if (mine)
		weft_exit(PTHREAD_CANCELED);
}

PT_API void pthread_testcancel(void)
{
	pt_testcancel();
}

PT_API int pthread_sigqueue(pthread_t t, int sig, const union sigval value)
{
	if (t & PT_FOREIGN_BIT)
		return pt_real(pthread_sigqueue)(t & ~PT_FOREIGN_BIT, sig, value);
	if (sig < 0 || sig >= NSIG)
		return EINVAL;
	char c;
	if (weft_getname((weft_t)t, &c, 1) == ESRCH)
		return ESRCH;
	if (sig == 0)
		return 0;
	return sigqueue(getpid(), sig, value) ? errno : 0;   /* to the process */
}
