/*
 * fork.c — fork() from a green thread, and weft_atfork.
 *
 * The problem.  fork() copies the calling kernel thread only.  In a weft
 * process that is one worker, in the middle of running one green thread,
 * and the copy holds whatever the other workers held at that instant:
 * weft's spinlocks (half-updated free lists, a stack class being carved),
 * run queues full of threads that do not exist in the child, timers that
 * are not inherited, a monitor that is gone.  A child that called weft
 * deadlocked or ran ghosts.
 *
 * The approach, POSIX's for threads: only the caller exists in the child,
 * and it becomes the child's "main".  weft registers fork handlers
 * (pthread_atfork) when it starts, so glibc runs them in the POSIX order
 * around every fork: weft's prepare handler runs after the prepare
 * handlers registered later (weft_atfork, which makes sure weft is up
 * first, so its own handlers are always the earlier registration), and its
 * child and parent handlers before theirs.  The prepare handler takes, in
 * a fixed order, every lock the child will go on using, so that none is
 * held by a thread that is not copied: the monitor's (no round of retakes
 * or new workers half done), the clone backend's list of kernel threads,
 * the table of the program's signal handlers, the key table, the TCB
 * table (and the trim of its chunks), every lock of the stack allocator
 * (its shared tiers and release queue), and the forking thread's own TCB
 * lock (a joiner or a canceller may be using it).  Signals are blocked
 * on the caller meanwhile, as for every holder of the handler table.  The
 * parent handler releases them.  The child handler releases them too, then
 * rebuilds the runtime around the forking thread (runtime.c,
 * wf_runtime_forked_child): a fresh worker 0 on this kernel thread with a
 * new scheduler context, every other TCB reclaimed (their handles stale),
 * queues, counts and signal state empty, tracing off (the file is the
 * parent's).  The other workers, their timers and the monitor start at the
 * child's first weft call that initializes: a fork that only execs pays
 * for none of them.
 *
 * The run queues, the global queue and the timer heaps are not locked
 * across the fork: the child does not keep them (its workers start
 * empty), so whatever state their locks were in is dropped with them, and
 * holding them would stop every other worker's scheduling for the length
 * of the fork and deadlock a prepare handler that wakes a thread.  Trace
 * buffers have no lock (one writer each); the child stops tracing.
 *
 * Limits (docs/guide.md): objects that other threads held or waited on at
 * the fork are unusable in the child, as with pthreads; the stacks of the
 * other threads stay allocated in the child (copy-on-write views of the
 * parent's, never touched); a handler registered with pthread_atfork before
 * weft started runs its prepare after weft's and must not call weft.
 *
 * Rejected: stopping every worker at a safe point before the fork (a
 * worker blocked in a system call or spinning in libc is reached late or
 * never, and a fork would wait for it); interposing fork() (glibc's own
 * locking of malloc and stdio around the fork is not reachable from
 * outside, and pthread_atfork already gives the order POSIX wants);
 * restarting the workers inside the child handler (a fork+exec would pay
 * for kernel threads it never uses).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include "sched_internal.h"
#include "../kthreads/kthread.h"
#include "../kthreads/libc_real.h"

/* One fork at a time goes through weft's handlers: forks from two workers
 * at once would share wf_fork.  Taken first by prepare, released last by
 * the parent and the child handlers (the forker cannot switch threads in
 * between: it is inside fork). */
static wf_spin_t wf_fork_serial = WF_SPIN_INIT;

static struct {
	bool held;                  /* prepare took the locks (weft was up) */
	struct wf_thread *self;     /* the forking green thread, or NULL */
	bool initial;               /* forking on the process's initial thread */
	sigset_t mask;              /* the caller's mask before prepare */
} wf_fork;

static void wf_fork_lock(void)
{
	wf_monitor_fork_lock();
	wf_kt_fork_lock();
	wf_signals_fork_lock();
	wf_keys_fork_lock();
	wf_tcb_fork_lock();
	wf_stack_fork_lock();
	if (wf_fork.self)
		wf_spin_lock(&wf_fork.self->lk);
}

static void wf_fork_unlock(bool child)
{
	if (wf_fork.self)
		wf_spin_unlock(&wf_fork.self->lk);
	wf_stack_fork_unlock();
	wf_tcb_fork_unlock();
	wf_keys_fork_unlock();
	wf_signals_fork_unlock();
	wf_kt_fork_unlock(child);
	wf_monitor_fork_unlock();
}

static void wf_fork_prepare(void)
{
	wf_spin_lock(&wf_fork_serial);
	int st = atomic_load(&wf_rt.state);
	wf_fork.held = st == WF_RT_READY || st == WF_RT_FORKED;
	if (!wf_fork.held)
		return;   /* weft is not up: nothing to keep */
	sigset_t all;
	sigfillset(&all);
	WF_LIBC(pthread_sigmask)(SIG_SETMASK, &all, &wf_fork.mask);
	struct wf_thread *self = wf_current();
	wf_fork.self = self && self->kind != WF_KIND_IDLE ? self : NULL;
	wf_fork.initial = wf_runtime_on_initial_thread();
	wf_fork_lock();
}

static void wf_fork_parent(void)
{
	if (wf_fork.held) {
		wf_fork_unlock(false);
		WF_LIBC(pthread_sigmask)(SIG_SETMASK, &wf_fork.mask, NULL);
	}
	wf_spin_unlock(&wf_fork_serial);
}

static void wf_fork_child(void)
{
	if (wf_fork.held) {
		wf_fork_unlock(true);
		wf_runtime_forked_child(wf_fork.self, wf_fork.initial);
		WF_LIBC(pthread_sigmask)(SIG_SETMASK, &wf_fork.mask, NULL);
	}
	wf_spin_unlock(&wf_fork_serial);
}

void wf_fork_install(void)
{
	/* Once per process image: a child that initializes again keeps the
	 * registration it inherited. */
	static bool installed;
	if (!installed && WF_LIBC(pthread_atfork)(wf_fork_prepare, wf_fork_parent, wf_fork_child) == 0)
		installed = true;
}

int weft_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
	/* weft's own handlers are registered when it starts: before these. */
	if (wf_runtime_ensure())
		return EAGAIN;
	return WF_LIBC(pthread_atfork)(prepare, parent, child) ? ENOMEM : 0;
}
