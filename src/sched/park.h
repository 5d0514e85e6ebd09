/*
 * park.h — the one interface between blocking objects (src/sync) and the
 * scheduler: park the caller, wake a parked thread.
 *
 * Protocol (DESIGN §3.1, no lost wake-up):
 *   waiter:  lock(q); wf_park_prepare(); enqueue self; wf_park(&q.lock, dl);
 *            wf_park releases q.lock only after the waiter's registers are
 *            saved, so a waker that finds it in q can never resume a thread
 *            still running on another worker.
 *   waker:   lock(q); t = dequeue; if (wf_unpark(t)) ...woke it... ; unlock(q)
 *            wf_unpark returns false when t's wait is already timing out:
 *            the waker must treat t as gone (and, say, wake the next one).
 *            A waker may also dequeue under the lock and call wf_unpark
 *            after releasing it, provided a waiter that times out and finds
 *            itself dequeued waits for that waker to finish (src/sync does
 *            this with a per-waiter "done" mark): the claim must never meet
 *            a later wait of the same thread.
 *   timeout: the scheduler's timer claims the wait; wf_park returns
 *            ETIMEDOUT and the waiter, holding nothing, must lock q and unlink
 *            itself if it is still queued (a waker may have dequeued it and
 *            lost the claim).
 * Lock order: a wait-queue lock may be held while calling wf_unpark (which
 * takes the timer and run-queue locks); the scheduler never takes a wait-
 * queue lock.
 */
#ifndef WF_PARK_H
#define WF_PARK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include "../context/cpu.h"

struct wf_thread;
struct wf_worker;

/* Every lock, unlock and wait asks who the caller is, so the answer is
 * inline: a worker's record begins with the thread it runs and a TCB with
 * its slot and generation, in these shapes (sched_internal.h asserts it).
 * As calls into src/sched they were about 70 instructions of a 1,600
 * instruction condition-variable round trip. */
struct wf_worker_head { struct wf_thread *current; };
struct wf_thread_head { uint32_t index; _Atomic uint32_t gen; };

/* The worker the calling kernel thread is, or NULL (see sched_internal.h). */
extern __thread struct wf_worker *wf_tls_worker
	__attribute__((tls_model("initial-exec"))) WF_HIDDEN;

/* The calling green thread, or NULL on a kernel thread that is not a weft
 * worker (or before init). */
static inline struct wf_thread *wf_current(void)
{
	const struct wf_worker *w = wf_tls_worker;
	return w ? ((const struct wf_worker_head *)(const void *)w)->current : NULL;
}

/*
 * Foreign threads (docs/design.md §6 "Foreign threads").  A kernel thread
 * that is not a weft worker has no scheduler to switch to.  When it uses a
 * weft object it is given a TCB of its own (kind WF_KIND_FOREIGN: an
 * identity and a wait word, never queued, never run by a worker), and it
 * waits in the kernel, on a futex over its wait word, instead of parking.
 * Everything else in the protocol above is unchanged: wf_park branches once
 * on "no worker", wf_unpark once on "the waiter is foreign" (foreign.c).
 */
extern __thread struct wf_thread *wf_tls_foreign
	__attribute__((tls_model("initial-exec"))) WF_HIDDEN;

/* The calling kernel thread's foreign TCB, made on first use (and released
 * when the kernel thread exits).  NULL when no TCB can be had (the table is
 * full or out of memory).  Only for callers that are not green threads. */
struct wf_thread *wf_foreign_self(void) WF_HIDDEN;

/* Who is calling, for owner checks: the green thread, else the kernel
 * thread's foreign TCB if it has one, else NULL (it owns nothing). */
static inline struct wf_thread *wf_caller(void)
{
	struct wf_thread *t = wf_current();
	return t ? t : wf_tls_foreign;
}

/* t's public handle: (generation << 32) | (slot + 1) (handle.c). */
static inline uintptr_t wf_thread_handle(const struct wf_thread *t)
{
	const struct wf_thread_head *h = (const struct wf_thread_head *)(const void *)t;
	uint64_t gen = atomic_load_explicit(&((struct wf_thread_head *)h)->gen,
	                                    memory_order_relaxed);
	return (uintptr_t)((gen << 32) | ((uint64_t)h->index + 1));
}

/* What a parked thread waits for, shown by weft_dump and the gdb script.
 * The values are part of the gdb script's contract (share/weft/weft-gdb.py). */
enum wf_block {
	WF_BLOCK_NONE = 0,
	WF_BLOCK_JOIN,         /* obj: the wf_thread joined */
	WF_BLOCK_SLEEP,        /* obj: NULL; the TCB's deadline says until when */
	WF_BLOCK_MUTEX,        /* obj: weft_mutex_t */
	WF_BLOCK_COND,         /* obj: weft_cond_t */
	WF_BLOCK_SEM,          /* obj: weft_sem_t */
	WF_BLOCK_RWLOCK_READ,  /* obj: weft_rwlock_t */
	WF_BLOCK_RWLOCK_WRITE, /* obj: weft_rwlock_t */
	WF_BLOCK_BARRIER,      /* obj: weft_barrier_t */
	WF_BLOCK_ONCE,         /* obj: weft_once_t */
	WF_BLOCK_EXIT,         /* main in weft_exit, waiting for all threads */
};

/* Record what t is about to park on (t itself, before wf_park; or whoever
 * moves a parked t onto another object's queue, under that queue's lock). */
void wf_park_reason(struct wf_thread *t, int kind, const void *obj) WF_HIDDEN;

/* Start a new wait for the caller (before it becomes visible to wakers). */
void wf_park_prepare(struct wf_thread *self) WF_HIDDEN;

/* Block the caller until wf_unpark or until deadline_ns (CLOCK_MONOTONIC ns,
 * 0 = none).  `held` (may be NULL) is released once the caller's context is
 * saved.  Returns 0 when woken, ETIMEDOUT when the deadline passed first.
 * If deadline_ns is already past, returns ETIMEDOUT at once (releasing held).
 * A foreign caller (wf_foreign_self, after wf_park_prepare on it) releases
 * held at once and sleeps in the kernel until claimed. */
int wf_park(wf_spin_t *held, uint64_t deadline_ns) WF_HIDDEN;

/* Claim and wake t (see protocol).  The woken thread runs on the caller's
 * worker's queue (stolen by idle workers).  Returns false if t's wait was
 * already claimed by a timeout. */
bool wf_unpark(struct wf_thread *t) WF_HIDDEN;

/* Same, but t goes to the head of the queue: for a handoff that should run
 * next. */
bool wf_unpark_first(struct wf_thread *t) WF_HIDDEN;

/* Preemption control for internal critical sections held across user code
 * (spin and ticket locks): nestable, per green thread. */
void wf_preempt_off(void) WF_HIDDEN;
void wf_preempt_on(void) WF_HIDDEN;

/* Monotonic clock in ns, and conversion of an absolute timespec (EINVAL for
 * tv_nsec out of range or negative tv_sec). */
uint64_t wf_clock_ns(void) WF_HIDDEN;
int wf_timespec_to_ns(const struct timespec *ts, uint64_t *ns) WF_HIDDEN;

/* Is the thread with handle h running on a worker right now (or switching
 * away from one)?  A hint for spinners: false for a stale or unknown
 * handle, and the answer may change as soon as it is returned. */
bool wf_handle_on_cpu(uintptr_t h) WF_HIDDEN;

/* Yield the worker to another ready thread (for bounded spin loops); on a
 * foreign thread, yield its CPU (sched_yield system call). */
void wf_yield_internal(void) WF_HIDDEN;

#endif
