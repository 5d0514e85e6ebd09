/*
 * credentials.c — setuid and its family reach every worker.
 *
 * glibc makes setuid(), setgid(), setgroups() and the rest process-wide by
 * having every thread on its lists repeat the change; the kernel threads
 * of the clone backend are not on those lists (docs/design.md, "Kernel
 * workers"), so they would keep the old credentials and go on running the
 * program's green threads with them.  libweft therefore exports these
 * functions, as it exports sigaction (program_signals.c): each calls
 * libc's, and once that succeeded makes every other clone kernel thread
 * take the credentials the caller now has (src/kthreads/setxid.c): the
 * workers get the request on the tick's signal (preempt.c), the monitor,
 * which blocks every signal, is woken to take it.  The monitor's lock is
 * held meanwhile, so no worker is being started (a new kernel thread
 * inherits the credentials of the thread that makes it, the monitor).  If
 * a thread cannot take them, or does not answer within 5 s, the process
 * is stopped with one line on stderr rather than go on with workers that
 * kept privileges the program meant to drop.  On the pthread backend
 * glibc reaches every worker itself and nothing is added.
 *
 * A change that libc makes internally (initgroups calls setgroups without
 * going through the exported symbol) is covered by exporting the outer
 * function too.  A raw system call (syscall(SYS_setuid, ...)) changes the
 * calling kernel thread only, with or without weft.
 */
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "sched_internal.h"
#include "../kthreads/kthread.h"

#define WF_CREDS_TIMEOUT_MS 5000

static void wf_creds_notify(pid_t tid, void *arg)
{
	(void)arg;
	if (!wf_monitor_poke(tid))
		wf_preempt_creds_notify(tid);
}

/* After `what` succeeded in libc: the same credentials on every worker. */
static void wf_creds_after(const char *what)
{
	int s = atomic_load(&wf_rt.state);
	if (s != WF_RT_READY && s != WF_RT_FORKED)
		return;   /* no worker was started (or is being started) */
	int saved = errno;
	wf_monitor_fork_lock();
	int e = wf_kt_creds_sync(wf_creds_notify, NULL, WF_CREDS_TIMEOUT_MS);
	wf_monitor_fork_unlock();
	if (e) {
		char line[160];
		int n = snprintf(line, sizeof line,
		                 "weft: %s: the new credentials could not be given to every "
		                 "worker (error %d): stopping\n", what, e);
		if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
			n = 0;
		abort();
	}
	errno = saved;
}

/* libc's definition of `name` (the next one after libweft's). */
static void *wf_creds_real(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (!p) {
		fprintf(stderr, "weft: %s not found in libc\n", name);
		abort();
	}
	return p;
}

#define WF_CREDS_WRAP(name, params, args)                                      \
	WEFT_API int name params                                               \
	{                                                                      \
		static int (*_Atomic real) params;                             \
		int (*fn) params = atomic_load_explicit(&real, memory_order_relaxed); \
		if (wf_unlikely(!fn)) {                                        \
			fn = (int (*) params)wf_creds_real(#name);             \
			atomic_store_explicit(&real, fn, memory_order_relaxed); \
		}                                                              \
		int ret_ = fn args;                                            \
		if (ret_ == 0)                                                 \
			wf_creds_after(#name);                                 \
		return ret_;                                                   \
	}

WF_CREDS_WRAP(setuid, (uid_t u), (u))
WF_CREDS_WRAP(setgid, (gid_t g), (g))
WF_CREDS_WRAP(seteuid, (uid_t u), (u))
WF_CREDS_WRAP(setegid, (gid_t g), (g))
WF_CREDS_WRAP(setreuid, (uid_t r, uid_t e), (r, e))
WF_CREDS_WRAP(setregid, (gid_t r, gid_t e), (r, e))
WF_CREDS_WRAP(setresuid, (uid_t r, uid_t e, uid_t s), (r, e, s))
WF_CREDS_WRAP(setresgid, (gid_t r, gid_t e, gid_t s), (r, e, s))
WF_CREDS_WRAP(setgroups, (size_t n, const gid_t *list), (n, list))
WF_CREDS_WRAP(initgroups, (const char *user, gid_t group), (user, group))
