/*
 * dump_signal.c — WEFT_DUMP_SIGNAL: print weft_dump to stderr when the
 * process receives that signal, and carry on, the way Go's SIGQUIT does
 * (without Go's exit).
 *
 * weft_dump takes stdio locks and allocates, so it cannot run in a signal
 * handler.  The handler only posts a semaphore (async-signal-safe); a
 * kernel thread of weft's own, with every signal blocked, waits on it and
 * writes the dump.  That thread is a plain pthread, not a worker: it keeps
 * working while all workers are busy or stuck, which is when a dump is
 * wanted.  Signals arriving during a dump are coalesced into one more dump.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include "sched_internal.h"
#include "../kthreads/libc_real.h"

static sem_t wf_dump_sem;
/* libc's, resolved at install: the lookup is not async-signal-safe. */
static int (*wf_dump_post)(sem_t *);
static int (*wf_dump_getvalue)(sem_t *, int *);

static void wf_dump_handler(int sig)
{
	(void)sig;
	int e = errno;
	int pending = 0;
	/* At most one wake-up queued: a burst of signals gives one dump. */
	if (wf_dump_getvalue(&wf_dump_sem, &pending) || pending == 0)
		wf_dump_post(&wf_dump_sem);
	errno = e;
}

static void *wf_dump_thread(void *arg)
{
	(void)arg;
	for (;;) {
		while (WF_LIBC(sem_wait)(&wf_dump_sem) && errno == EINTR)
			;
		weft_dump(stderr);
	}
	return NULL;
}

int wf_dump_signal_install(void)
{
	int sig = wf_rt.cfg.dump_signal;
	if (!sig)
		return 0;
	if (WF_LIBC(sem_init)(&wf_dump_sem, 0, 0))
		return EAGAIN;
	wf_dump_post = &WF_LIBC(sem_post);
	wf_dump_getvalue = &WF_LIBC(sem_getvalue);
	sigset_t all, old;
	sigfillset(&all);
	WF_LIBC(pthread_sigmask)(SIG_SETMASK, &all, &old);   /* inherited by the thread */
	pthread_t th;
	pthread_attr_t a;
	WF_LIBC(pthread_attr_init)(&a);
	WF_LIBC(pthread_attr_setdetachstate)(&a, PTHREAD_CREATE_DETACHED);
	int e = WF_LIBC(pthread_create)(&th, &a, wf_dump_thread, NULL);
	WF_LIBC(pthread_attr_destroy)(&a);
	WF_LIBC(pthread_sigmask)(SIG_SETMASK, &old, NULL);
	if (e)
		return EAGAIN;
	WF_LIBC(pthread_setname_np)(th, "weft-dump");
	struct sigaction sa = { .sa_handler = wf_dump_handler, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	return wf_signal_own(sig, &sa) ? EAGAIN : 0;
}
