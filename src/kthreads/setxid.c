/*
 * setxid.c — the same credentials on every kernel thread the clone backend
 * made.
 *
 * Linux keeps credentials per kernel thread: setuid(2) and its family
 * change only the calling thread.  glibc makes them process-wide by
 * signalling every thread on its lists to repeat the call (SIGSETXID), and
 * clone workers are on none of its lists: after a program drops privileges
 * they would go on running its code as root.
 *
 * The fix: after the libc call succeeded (src/sched/credentials.c), the
 * caller reads the credentials its own thread now has (real, effective
 * and saved user and group ids, supplementary groups), publishes them as a
 * request, and has every clone kernel thread apply them to itself, each
 * from a signal handler or its own loop (the notify callback: the layer
 * above knows how to reach a worker), with raw system calls only.  The
 * caller waits until every one has done so.  A thread applies groups and
 * group ids before user ids, as a program dropping root must; when that
 * order is refused (the change gives privileges back: seteuid(0) after
 * seteuid(nobody)), it applies the user ids first and the groups again.
 * Every thread starts with the credentials the caller had (they were kept
 * equal), so what the kernel allowed the caller it allows them; a thread
 * that still fails is reported, and the caller does not go on with
 * mixed credentials (credentials.c aborts).
 *
 * Rejected: adding the workers to glibc's thread lists (private glibc
 * structures and locks beyond the ones the clone gate validates); refusing
 * setuid on the clone backend (programs drop privileges after starting
 * threads as a matter of course).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kt_internal.h"
#include "kt_syscall.h"

static struct {
	wf_spin_t lock;              /* one request at a time */
	_Atomic uint32_t seq;        /* the request's number */
	long uid[3], gid[3];
	long ngroups;
	gid_t *groups;
	_Atomic uint32_t pending;    /* threads that have not applied it */
	_Atomic uint32_t failed;     /* ... that could not */
} wf_xid = { .lock = WF_SPIN_INIT };

/* The request this kernel thread applied last. */
static __thread uint32_t wf_xid_done __attribute__((tls_model("initial-exec")));

static bool wf_xid_ids(long nr, const long v[3])
{
	return wf_syscall3(nr, v[0], v[1], v[2]) == 0;
}

void wf_kt_creds_apply(void)
{
	uint32_t seq = atomic_load_explicit(&wf_xid.seq, memory_order_acquire);
	if (seq == wf_xid_done || !atomic_load(&wf_xid.pending))
		return;
	wf_xid_done = seq;
	bool ok = wf_syscall2(SYS_setgroups, wf_xid.ngroups, wf_xid.groups) == 0 &&
	          wf_xid_ids(SYS_setresgid, wf_xid.gid);
	bool uid_ok = wf_xid_ids(SYS_setresuid, wf_xid.uid);
	if (!ok && uid_ok)   /* gaining privileges: user ids first */
		ok = wf_syscall2(SYS_setgroups, wf_xid.ngroups, wf_xid.groups) == 0 &&
		     wf_xid_ids(SYS_setresgid, wf_xid.gid);
	if (!ok || !uid_ok)
		atomic_fetch_add(&wf_xid.failed, 1);
	if (atomic_fetch_sub(&wf_xid.pending, 1) == 1)
		wf_futex_wake(&wf_xid.pending, 1);
}

int wf_kt_creds_sync(void (*notify)(pid_t tid, void *arg), void *arg, int timeout_ms)
{
	pid_t *tids = malloc(WF_KT_XID_MAX * sizeof *tids);
	long n = wf_syscall2(SYS_getgroups, 0, NULL);
	gid_t *groups = n > 0 ? malloc((size_t)n * sizeof *groups) : NULL;
	if (!tids || n < 0 || (n > 0 && !groups)) {
		free(tids);
		free(groups);
		return ENOMEM;
	}
	wf_spin_lock(&wf_xid.lock);
	uid_t u[3];
	gid_t g[3];
	int e = 0;
	if (wf_syscall3(SYS_getresuid, &u[0], &u[1], &u[2]) ||
	    wf_syscall3(SYS_getresgid, &g[0], &g[1], &g[2]) ||
	    (n = wf_syscall2(SYS_getgroups, n, groups)) < 0) {
		e = EAGAIN;
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		wf_xid.uid[i] = u[i];
		wf_xid.gid[i] = g[i];
	}
	wf_xid.ngroups = n;
	wf_xid.groups = groups;
	pid_t self = wf_kt_gettid();
	int k = 0;
	for (int i = 0, m = wf_kt_clone_tids(tids, WF_KT_XID_MAX); i < m; i++)
		if (tids[i] && tids[i] != self)
			tids[k++] = tids[i];
	atomic_store(&wf_xid.failed, 0);
	atomic_store(&wf_xid.pending, (uint32_t)k);
	atomic_fetch_add_explicit(&wf_xid.seq, 1, memory_order_release);
	for (int i = 0; i < k; i++)
		notify(tids[i], arg);
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	uint32_t p;
	while ((p = atomic_load(&wf_xid.pending)))
		if (wf_futex_wait(&wf_xid.pending, p, &dl) == ETIMEDOUT &&
		    atomic_load(&wf_xid.pending)) {
			e = ETIMEDOUT;
			break;
		}
	if (!e && atomic_load(&wf_xid.failed))
		e = EPERM;
	/* Threads that have not answered must not read the groups later. */
	atomic_store(&wf_xid.pending, 0);
out:
	wf_xid.groups = NULL;
	wf_spin_unlock(&wf_xid.lock);
	free(tids);
	free(groups);
	return e;
}
