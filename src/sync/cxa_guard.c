/*
 * cxa_guard.c — C++ function-local statics (`static T v = init();`): a
 * green thread that finds another thread initializing the same static
 * parks, instead of blocking its worker.
 *
 * The problem.  The compiler guards such an initialization with
 * __cxa_guard_acquire / __cxa_guard_release / __cxa_guard_abort (the
 * Itanium C++ ABI) on a 64-bit guard variable.  libstdc++ makes a caller
 * that finds the initialization in progress sleep in the kernel (a futex
 * on the guard).  Under weft that caller is a green thread, and the
 * initializer it waits for is very often another green thread of the same
 * worker, preempted inside init() or parked in a weft call it makes:
 * the futex wait blocks the very worker that would have to run it.  With
 * one worker that hung for good (measured: 6 of 6 runs) until the monitor
 * learnt to hand a blocked worker's threads to another kernel thread;
 * since then each waiting thread costs a worker blocked in the kernel and
 * a stand-in kernel thread for at least 2 ms (measured: 7 waiters on one
 * worker, 7 hand-offs, 7 extra kernel threads), and the stand-ins run
 * out at WF_MAX_KTHREADS.
 *
 * The choice: a guard wait parks the green thread.  weft exports the three
 * functions, so the program's calls (and libstdc++'s own, which go through
 * its PLT) reach these.  A green thread that must wait links itself on one
 * of WF_GUARD_BUCKETS wait queues chosen by the guard's address and parks;
 * the thread that releases or aborts the guard wakes the parked waiters of
 * that guard.  Its worker runs the initializer meanwhile, or anything else.
 *
 * Rejected: making the initializer not preemptible (weft_preempt_disable
 * from acquire to release).  It removes only the preemption case: an
 * initializer that blocks in a weft call (a lock, a sleep, a condition
 * wait, I/O) still leaves the waiter blocking its worker, and a long
 * initializer would hold its worker for its whole run, unfair to every
 * other thread there.  Parking handles both, and keeps init() preemptible
 * like any other code of the program.
 *
 * The guard layout is libstdc++'s (GCC's libsupc++/guard.cc, futex
 * variant), so that every caller agrees whichever implementation it
 * reached: the first int of the guard holds WF_GUARD_DONE (its first byte,
 * which the compiler's inline fast path tests), WF_GUARD_PENDING while an
 * initialization runs, and WF_GUARD_WAITING once anybody waits.  A kernel
 * thread that is not a green thread (or a program in which weft never
 * started) gets libstdc++'s own __cxa_guard_acquire, found with
 * dlsym(RTLD_NEXT), or, where there is none (both linked statically), the
 * same futex wait done here.  Release and abort always wake both kinds of
 * waiter: FUTEX_WAKE (shared, as libstdc++ waits) for kernel threads, and
 * the parked green threads of the guard.
 *
 * No lost wake-up: a green waiter sets WAITING and re-reads the guard under
 * its bucket's lock before it links itself; the releaser changes the guard
 * (an atomic exchange, a full barrier) before it takes the bucket's lock to
 * look for waiters.  So either the waiter sees the guard changed and does
 * not park, or it is linked before the releaser looks.
 *
 * Limit: a thread that reaches, inside init(), the static it is
 * initializing waits for itself for ever (libstdc++ does the same when
 * threads exist; the C++ standard leaves it undefined).
 */
#include <limits.h>
#include <stdint.h>
#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/futex.h>
#include "waitq.h"

#define WF_GUARD_DONE    0x1        /* first byte: initialized */
#define WF_GUARD_PENDING 0x100      /* an initialization is running */
#define WF_GUARD_WAITING 0x10000    /* somebody waits for it */

/* Parked waiters, by guard address.  A bucket is shared by unrelated
 * guards only for the time somebody waits on them, which static
 * initialization makes rare and short. */
#define WF_GUARD_BUCKETS 64
static weft_waitq_ wf_guard_q[WF_GUARD_BUCKETS];

static weft_waitq_ *wf_guard_bucket(const int *g)
{
	uintptr_t a = (uintptr_t)g;
	return &wf_guard_q[((a >> 3) ^ (a >> 9)) % WF_GUARD_BUCKETS];
}

static int *wf_guard_word(uint64_t *g)
{
	return (int *)(void *)g;
}

/* --- waiting -------------------------------------------------------------- */

static long wf_guard_futex(int *g, int op, int val)
{
	return syscall(SYS_futex, g, op, val, NULL, NULL, 0);
}

static void wf_guard_park(struct wf_thread *self, int *g);

/* Acquire as libstdc++ does when threads exist: 1 to initialize, 0 when
 * done.  While the initialization runs, a green thread (self) parks, any
 * other kernel thread sleeps in the kernel until the guard changes. */
static int wf_guard_acquire_wait(struct wf_thread *self, int *g)
{
	for (;;) {
		int e = 0;
		if (__atomic_compare_exchange_n(g, &e, WF_GUARD_PENDING, false,
		                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return 1;
		if (e == WF_GUARD_DONE)
			return 0;
		if (e == WF_GUARD_PENDING &&
		    !__atomic_compare_exchange_n(g, &e, e | WF_GUARD_WAITING, false,
		                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			if (e == WF_GUARD_DONE)
				return 0;
			continue;
		}
		if (self)
			wf_guard_park(self, g);
		else
			wf_guard_futex(g, FUTEX_WAIT, WF_GUARD_PENDING | WF_GUARD_WAITING);
	}
}

typedef int (*wf_guard_acquire_fn)(uint64_t *);
static wf_guard_acquire_fn wf_guard_next;   /* libstdc++'s, once looked up */
static int wf_guard_next_known;

static int wf_guard_acquire_foreign(uint64_t *g)
{
	/* Racy first lookups find the same answer: both stores are plain
	 * copies of it, published with release for the readers. */
	if (!__atomic_load_n(&wf_guard_next_known, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&wf_guard_next,
		                 (wf_guard_acquire_fn)dlsym(RTLD_NEXT, "__cxa_guard_acquire"),
		                 __ATOMIC_RELAXED);
		__atomic_store_n(&wf_guard_next_known, 1, __ATOMIC_RELEASE);
	}
	wf_guard_acquire_fn next = __atomic_load_n(&wf_guard_next, __ATOMIC_RELAXED);
	return next ? next(g) : wf_guard_acquire_wait(NULL, wf_guard_word(g));
}

/* Park until the guard is no longer PENDING|WAITING, as seen under the
 * bucket's lock. */
static void wf_guard_park(struct wf_thread *self, int *g)
{
	weft_waitq_ *q = wf_guard_bucket(g);
	struct wf_wnode n = { .thread = self, .obj = g };
	wf_waitq_lock(q);
	if (__atomic_load_n(g, __ATOMIC_ACQUIRE) != (WF_GUARD_PENDING | WF_GUARD_WAITING)) {
		wf_waitq_unlock(q);
		return;
	}
	wf_park_reason(self, WF_BLOCK_STATIC, g);
	(void)wf_waitq_wait(q, &n, 0, false);   /* untimed: returns 0, unlocked */
}

/* The guard left PENDING (now `was`): wake whoever waits for it. */
static void wf_guard_wake(int *g, int was)
{
	if (!(was & WF_GUARD_WAITING))
		return;
	wf_guard_futex(g, FUTEX_WAKE, INT_MAX);
	weft_waitq_ *q = wf_guard_bucket(g);
	struct wf_wbatch b = WF_WBATCH_INIT;
	wf_waitq_lock(q);
	for (struct wf_wnode *n = wf_waitq_head(q), *next; n; n = next) {
		next = n->next;
		if (n->obj == g) {
			wf_waitq_remove(q, n);
			wf_wbatch_add(&b, n, WF_WAKE_GRANTED);
		}
	}
	wf_waitq_unlock(q);
	(void)wf_wbatch_wake(&b);   /* untimed waits: none is refused */
}

/* --- the C++ ABI ------------------------------------------------------------ */

/* Exported: they take the place of the C++ runtime's for the program and
 * for the runtime itself.  Any thread may call them. */
WEFT_API int __cxa_guard_acquire(uint64_t *g);
WEFT_API void __cxa_guard_release(uint64_t *g);
WEFT_API void __cxa_guard_abort(uint64_t *g);

int __cxa_guard_acquire(uint64_t *g)
{
	if (__atomic_load_n((const uint8_t *)g, __ATOMIC_ACQUIRE))
		return 0;
	struct wf_thread *self = wf_current();
	if (!self)
		return wf_guard_acquire_foreign(g);
	return wf_guard_acquire_wait(self, wf_guard_word(g));
}

void __cxa_guard_release(uint64_t *g)
{
	int *gi = wf_guard_word(g);
	wf_guard_wake(gi, __atomic_exchange_n(gi, WF_GUARD_DONE, __ATOMIC_SEQ_CST));
}

void __cxa_guard_abort(uint64_t *g)
{
	int *gi = wf_guard_word(g);
	wf_guard_wake(gi, __atomic_exchange_n(gi, 0, __ATOMIC_SEQ_CST));
}
