/*
 * foreign.c — kernel threads that are not weft workers, using weft objects.
 *
 * Some kernel threads are not weft's: glibc's helper threads, a library's
 * own threads, threads that existed before weft started.  Such a thread may
 * lock a weft mutex, wait on a condition variable, post a semaphore.  It
 * cannot park — there is no scheduler on its kernel thread to switch to —
 * so it blocks in the kernel instead, and green threads and it wake each
 * other (docs/design.md, "Foreign threads").
 *
 * The whole wait protocol of park.h is kept; only its last step changes.
 * A foreign thread gets a TCB from the ordinary table (kind
 * WF_KIND_FOREIGN), which gives it what src/sync needs of a waiter: a
 * handle (owner identity for mutexes, rwlocks, spin and ticket locks) and
 * a wait word whose claim decides between waker and timeout exactly as for
 * a green thread.  Only how it sleeps differs: on a futex over the low 32
 * bits of that word.  A claim changes the kind, which lives in those bits,
 * so a claim made after the sleeper read the word makes the futex wait
 * return at once (the kernel compares the word under its own lock), and a
 * claim made before it is seen by the re-check: no wake-up is lost.  The
 * deadline is the futex's own absolute CLOCK_MONOTONIC timeout; when it
 * passes, the sleeper claims its wait itself (WAITING -> TIMEDOUT) and
 * returns ETIMEDOUT only if that claim wins, as the timer heap does for a
 * green thread.  A foreign TCB never enters a run queue or a timer heap
 * (its deadline field stays 0, so wf_unpark never cancels a timer for it).
 *
 * Lifetime.  The TCB is made on the kernel thread's first blocking weft
 * call and is retired when the kernel thread exits (a thread-exit
 * destructor).  Handle lookups (wf_tcb_lookup) refuse foreign TCBs, so no
 * join, detach or name call can reach one.  A waker that won a claim may
 * still issue its futex wake after the foreign thread returned and even
 * exited: TCBs are never unmapped (handle.c), so that wake lands on a
 * valid word, at worst a spurious wake-up of nobody.
 *
 * Rejected: EPERM for every blocking call from such a thread (what weft
 * did first: glibc's own helper threads, timers with SIGEV_THREAD, and
 * libraries' threads then cannot share a single lock with green threads);
 * a separate futex-based lock for foreign threads inside every object (two
 * locking protocols per object, and a mutex would need both to agree on
 * the owner); spinning foreign threads (they may wait for seconds).
 */
#include <string.h>
#include <time.h>
#include "sched_internal.h"
#include "foreign.h"
#include "../kthreads/kthread.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the futex word of a foreign wait is the low half of t->wait");

/* glibc's thread-exit destructor registration (what C++ thread_local uses);
 * called at the exit of every thread made by pthread_create, and at exit()
 * for the main thread. */
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso);
extern char __dso_handle[] __attribute__((visibility("hidden")));

static _Atomic uint32_t *wf_foreign_word(struct wf_thread *t)
{
	return (_Atomic uint32_t *)(void *)&t->wait;
}

/* The kernel thread is exiting: nothing of it can wait any more. */
static void wf_foreign_release(void *p)
{
	struct wf_thread *t = p;
	wf_tls_foreign = NULL;
	wf_spin_lock(&t->lk);
	wf_tcb_retire(t);
	wf_spin_unlock(&t->lk);
	wf_tcb_free(NULL, t);   /* no worker: the shared list */
}

struct wf_thread *wf_foreign_make(void)
{
	struct wf_thread *t = wf_tcb_alloc(NULL);
	if (!t)
		return NULL;
	t->kind = WF_KIND_FOREIGN;
	t->state = WF_RUNNING;
	strcpy(t->name, "(foreign)");
	if (__cxa_thread_atexit_impl(wf_foreign_release, t, __dso_handle)) {
		wf_tcb_retire(t);   /* no handle was given out */
		wf_tcb_free(NULL, t);   /* no worker: the shared list */
		return NULL;
	}
	wf_tls_foreign = t;
	return t;
}

int wf_park_foreign(wf_spin_t *held, uint64_t deadline)
{
	struct wf_thread *self = wf_tls_foreign;
	if (held)
		wf_spin_unlock(held);   /* nothing of ours can be resumed early */
	struct timespec ts, *tsp = NULL;
	if (deadline) {
		ts.tv_sec = (time_t)(deadline / 1000000000ull);
		ts.tv_nsec = (long)(deadline % 1000000000ull);
		tsp = &ts;
	}
	for (;;) {
		uint64_t cur = atomic_load_explicit(&self->wait, memory_order_acquire);
		if ((cur & 3) != WF_WAIT_WAITING)
			return (cur & 3) == WF_WAIT_TIMEDOUT ? ETIMEDOUT : 0;
		/* EAGAIN (claimed meanwhile) and EINTR: look again. */
		if (wf_futex_wait(wf_foreign_word(self), (uint32_t)cur, tsp) == ETIMEDOUT &&
		    atomic_compare_exchange_strong_explicit(&self->wait, &cur,
		                                            (cur & ~3ull) | WF_WAIT_TIMEDOUT,
		                                            memory_order_acq_rel,
		                                            memory_order_relaxed))
			return ETIMEDOUT;
	}
}

void wf_unpark_foreign(struct wf_thread *t)
{
	wf_futex_wake(wf_foreign_word(t), 1);
}
