/*
 * park.h — the whole interface of the scheduler (src/sched) to the layers
 * above it (src/sync, src/io): who is calling, park the caller, wake a
 * parked thread, preemption off and on, yield, blocking sections, the
 * poller, the clock, and bringing weft up.
 * Those layers include nothing else of src/sched and call nothing else of
 * it.  park.c defines everything declared here but one table, which
 * src/sync provides for the thread dump (wf_block_owner_at, below);
 * docs/design.md ("What park.h offers") lists it all, and the layers test
 * (tests/check_layers.sh) checks it.
 *
 * Protocol (no lost wake-up; docs/design.md, "Parking and the sync objects"):
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
 *            lost the claim).  An interrupted wait (EINTR, see
 *            wf_park_prepare_intr) is left the same way.
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
#include "../context/tls.h"

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
 * worker (or before init).  WF_TLS_LOAD: the worker of the kernel thread
 * running now, even after a switch earlier in the caller (tls.h). */
static inline struct wf_thread *wf_current(void)
{
	const struct wf_worker *w = WF_TLS_LOAD(wf_tls_worker);
	return w ? ((const struct wf_worker_head *)(const void *)w)->current : NULL;
}

/*
 * Foreign threads (docs/design.md, "Foreign threads").  A kernel thread
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
	return t ? t : WF_TLS_LOAD(wf_tls_foreign);
}

/* t's public handle: (generation << 32) | (slot + 1) (handle.c). */
static inline uintptr_t wf_thread_handle(const struct wf_thread *t)
{
	const struct wf_thread_head *h = (const struct wf_thread_head *)(const void *)t;
	uint64_t gen = atomic_load_explicit(&((struct wf_thread_head *)h)->gen,
	                                    memory_order_relaxed);
	return (uintptr_t)((gen << 32) | ((uint64_t)h->index + 1));
}

/*
 * What a parked thread waits for: the one list of block kinds.  weft_dump
 * (dump.c), the trace timeline (trace.c) and the gdb script describe a
 * parked thread from it, through the tables built from it: wf_block_kinds
 * (park.c) and wf_block_owner_at (src/sync).  The gdb script reads both
 * tables from the program's debug info, so it holds no copy.  Adding a
 * kind is adding a row; docs/design.md ("Observability") says why the list
 * is here rather than with the objects.
 *
 * X(NAME, tag, words, show, held, owner):
 *   NAME   WF_BLOCK_<NAME>, the number wf_park_reason records (in order);
 *   tag    the trace's "reason" (one word);
 *   words  weft_dump's and the gdb script's wording;
 *   show   how the object is shown: WF_SHOW_NOTHING, WF_SHOW_THREAD (obj
 *          is the wf_thread waited for), WF_SHOW_ADDRESS, WF_SHOW_NUMBER
 *          (obj is a small number cast to a pointer: a descriptor);
 *   held   how the object's owner holds it ("held by thread 3"), or NULL
 *          when the object has no owner to show;
 *   owner  WF_OWNER(type): the object is a `type` whose `_owner` holds its
 *          owner's weft_t; WF_NO_OWNER.  Only src/sync expands this
 *          column (into wf_block_owner_at): the scheduler never reads a
 *          field of a sync object itself.
 */
#define WF_BLOCK_KINDS(X) \
	X(NONE, "other", "parked", WF_SHOW_ADDRESS, NULL, WF_NO_OWNER) \
	X(JOIN, "join", "joining", WF_SHOW_THREAD, NULL, WF_NO_OWNER) \
	X(SLEEP, "sleep", "sleeping", WF_SHOW_NOTHING, NULL, WF_NO_OWNER) \
	X(MUTEX, "mutex", "waiting for mutex", WF_SHOW_ADDRESS, "held", \
	  WF_OWNER(weft_mutex_t)) \
	X(COND, "cond", "waiting on cond", WF_SHOW_ADDRESS, NULL, WF_NO_OWNER) \
	X(SEM, "sem", "waiting on semaphore", WF_SHOW_ADDRESS, NULL, WF_NO_OWNER) \
	X(RWLOCK_READ, "rwlock-read", "waiting to read-lock rwlock", WF_SHOW_ADDRESS, \
	  "write-locked", WF_OWNER(weft_rwlock_t)) \
	X(RWLOCK_WRITE, "rwlock-write", "waiting to write-lock rwlock", WF_SHOW_ADDRESS, \
	  "write-locked", WF_OWNER(weft_rwlock_t)) \
	X(BARRIER, "barrier", "waiting at barrier", WF_SHOW_ADDRESS, NULL, WF_NO_OWNER) \
	X(ONCE, "once", "waiting for once", WF_SHOW_ADDRESS, NULL, WF_NO_OWNER) \
	X(EXIT, "exit", "in weft_exit, waiting for all threads to finish", WF_SHOW_NOTHING, \
	  NULL, WF_NO_OWNER) \
	X(STATIC, "static", "waiting for a C++ static's initialization", WF_SHOW_ADDRESS, \
	  NULL, WF_NO_OWNER) \
	X(FD, "fd", "waiting for descriptor", WF_SHOW_NUMBER, NULL, WF_NO_OWNER) \
	X(POLL, "poll", "polling descriptors", WF_SHOW_NOTHING, NULL, WF_NO_OWNER)

#define WF_BLOCK_ENUM_(name, tag, words, show, held, owner) WF_BLOCK_##name,
enum wf_block { WF_BLOCK_KINDS(WF_BLOCK_ENUM_) WF_BLOCK_COUNT };
#undef WF_BLOCK_ENUM_

enum wf_block_show { WF_SHOW_NOTHING = 0, WF_SHOW_THREAD, WF_SHOW_ADDRESS, WF_SHOW_NUMBER };

/* A row of the list, for the observers (park.c builds wf_block_kinds). */
struct wf_block_kind {
	const char *tag;
	const char *words;
	const char *held;
	enum wf_block_show show;
};
extern const struct wf_block_kind wf_block_kinds[WF_BLOCK_COUNT] WF_HIDDEN;

/* Where each kind's object keeps its owner's weft_t (offset in the object,
 * for a kind whose `held` is not NULL), built by src/sync from the owner
 * column: the one thing the scheduler takes from the layer above, and only
 * to describe a thread (weft_dump), never to schedule one.  The object may
 * be gone by the time it is read: read it as weft_dump does. */
extern const uint16_t wf_block_owner_at[WF_BLOCK_COUNT] WF_HIDDEN;

/* Record what t is about to park on (t itself, before wf_park; or whoever
 * moves a parked t onto another object's queue, under that queue's lock). */
void wf_park_reason(struct wf_thread *t, int kind, const void *obj) WF_HIDDEN;

/* Start a new wait for the caller (before it becomes visible to wakers). */
void wf_park_prepare(struct wf_thread *self) WF_HIDDEN;

/*
 * Interruptible waits (docs/design.md, "Cancellation" and "Signals to one
 * thread").  A wait may also be ended by an interrupter: a cancellation
 * request (the wait is a cancellation point) or a signal sent to the
 * thread (the call returns EINTR, or wakes spuriously, where POSIX says
 * so).  Such a wait starts with wf_park_prepare_intr naming what may
 * interrupt it; wf_park then returns EINTR when an interrupter won the
 * claim (also at once, if one was already due when it was called).  The
 * waiter holds nothing then and treats EINTR like ETIMEDOUT: it relocks
 * its queue and unlinks itself if still linked, or, if a waker dequeued it
 * and lost the claim, waits for that waker to be done (waitq.h).  Once it
 * has left every queue and taken back what the call must hold on return
 * (a cond wait: its mutex), it calls wf_interrupted.
 *
 * This is the hook for every blocking call of a layer above the scheduler,
 * the I/O calls included: prepare with the interrupters the call has in
 * POSIX (a call that is a cancellation point: WF_INTR_CANCEL; one that
 * fails with EINTR: WF_INTR_SIGNAL), and on EINTR, clean up and return
 * wf_interrupted()'s result.
 */
enum { WF_INTR_CANCEL = 1, WF_INTR_SIGNAL = 2 };

/* wf_park_prepare for a wait that `intr` (WF_INTR_* bits) may also end.
 * WF_INTR_CANCEL is dropped while the caller cannot be cancelled (disabled,
 * or already finishing). */
void wf_park_prepare_intr(struct wf_thread *self, unsigned intr) WF_HIDDEN;

/* After a wait ended with EINTR and was cleaned up: act on a pending
 * cancellation if cancellation is enabled (this does not return: the
 * thread runs its cleanup handlers and finishes), else deliver the
 * signals that interrupted it (their handlers run now if they did not
 * already) and return EINTR, or 0 when every one of those handlers was
 * installed with SA_RESTART: a call that the kernel would restart then
 * waits again; one it never restarts (sleeps, poll, calls with a
 * timeout) fails with EINTR all the same. */
int wf_interrupted(void) WF_HIDDEN;

/* A cancellation point that does not park: act on a pending cancellation
 * now if cancellation is enabled (does not return then).  For a call that
 * is about to block its kernel thread in a system call, where a request
 * that comes meanwhile is only seen at the next point. */
void wf_cancel_point(void) WF_HIDDEN;

/* Block the caller until wf_unpark or until deadline_ns (CLOCK_MONOTONIC ns,
 * 0 = none).  `held` (may be NULL) is released once the caller's context is
 * saved.  Returns 0 when woken, ETIMEDOUT when the deadline passed first,
 * EINTR when an interrupter did (only after wf_park_prepare_intr).
 * If deadline_ns is already past, returns ETIMEDOUT at once (releasing held).
 * A foreign caller (wf_foreign_self, after wf_park_prepare on it) releases
 * held at once and sleeps in the kernel until claimed. */
int wf_park(wf_spin_t *held, uint64_t deadline_ns) WF_HIDDEN;

/* Start a wait whose deadline (0 = none) is armed at once: wf_park_prepare,
 * and the thread's timer set now rather than in wf_park.  For a thread that
 * publishes itself on several queues before it parks (src/io's poll),
 * unlocking each as it goes: a waker may claim it from the moment it is
 * on the first queue, and the claim must find the deadline already set (a
 * claim cancels the timer; a timer set after the claim would outlive the
 * wait and could end a later one).  Then wf_park_armed, not wf_park. */
void wf_park_prepare_until(struct wf_thread *self, uint64_t deadline) WF_HIDDEN;
/* The same for a wait that `intr` (WF_INTR_* bits) may also end; then
 * wf_park_armed returns EINTR when an interrupter did (wf_park_prepare_intr). */
void wf_park_prepare_until_intr(struct wf_thread *self, uint64_t deadline,
                                unsigned intr) WF_HIDDEN;

/* Park after wf_park_prepare_until (holding nothing).  If a waker already
 * claimed the wait, returns once the caller is resumed from the queue the
 * waker put it on.  0 when woken, ETIMEDOUT when the deadline won, EINTR
 * when an interrupter did (wf_park_prepare_until_intr). */
int wf_park_armed(void) WF_HIDDEN;

/* End the caller's wait started with wf_park_prepare_until before parking
 * (it could not publish itself everywhere): true when nobody had claimed
 * it, and the caller goes on without parking; false when a waker or the
 * timer claimed it first and queued the caller, which must then
 * wf_park_armed to be resumed from that queue. */
bool wf_park_cancel(void) WF_HIDDEN;

/* Run child() in every child of fork() made after this call, after the
 * scheduler's own fork handler has rebuilt the runtime there (it is the
 * earlier registration: call this only once weft is up).  For a layer
 * above whose state the child must reset (src/io's records).  Through
 * glibc's pthread_atfork, not the pthread layer's (docs/design.md, "weft's
 * own calls of libc's pthread functions").  0 or ENOMEM. */
int wf_park_atfork_child(void (*child)(void)) WF_HIDDEN;

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

/* Yield the worker to another ready thread (for bounded spin loops); on a
 * foreign thread, yield its CPU (a sched_yield system call). */
void wf_yield_internal(void) WF_HIDDEN;

/* One round of a spin-wait for another green thread that has lasted a
 * while (spin and ticket locks): yield the worker to another ready
 * thread; with none, give the kernel thread's CPU away, first with
 * sched_yield, after WF_SPIN_KERNEL_YIELDS rounds in a row with short
 * naps: the thread waited for may hold its lock on a worker the kernel
 * has descheduled (more workers than CPUs), and a waiter that only spun
 * would burn the CPU that worker waits for.  *rounds counts the rounds
 * (start it at 0).  On a foreign thread, only the kernel thread's part. */
void wf_spin_wait_long(unsigned *rounds) WF_HIDDEN;

/* Is the thread with handle h running on a worker right now (or switching
 * away from one)?  A hint for spinners: false for a stale or unknown
 * handle, and the answer may change as soon as it is returned. */
bool wf_handle_on_cpu(uintptr_t h) WF_HIDDEN;

/* Initialize weft if nobody has yet (what the first weft call does): 0, or
 * the error initialization failed with, every time after. */
int wf_ensure_init(void) WF_HIDDEN;

/* How many threads can run at once: the number of workers, initializing
 * weft if needed; 1 if initialization failed. */
int wf_parallel(void) WF_HIDDEN;

/* A call that may block the calling kernel thread in the kernel follows:
 * weft_blocking_begin/end for the layers above (blocking.c; docs/design.md
 * "Blocked workers").  Nothing on a kernel thread that is not a green
 * thread. */
void wf_blocking_enter(void) WF_HIDDEN;
void wf_blocking_leave(void) WF_HIDDEN;

/*
 * Waiting for descriptors (src/io): the poller, the epoll set an idle
 * worker sleeps in (poller.c; docs/design.md "The poller").  src/io arms a
 * descriptor in it with EPOLLONESHOT for each wait, the descriptor number
 * as the event's data.u64 (below 2^63), and parks; whoever polls the set
 * next — an idle worker asleep in it, or the monitor when every worker is
 * busy — hands the events to src/io's handler.
 */
struct epoll_event;
/* src/io's handler: n events (none when called only so that src/io can
 * look at its waiters, at least once a second while any wait).  Runs in a
 * scheduler context (a worker's idle context, or the monitor's kernel
 * thread): it may wf_unpark, never park.  `now` is wf_clock_ns(). */
typedef void (*wf_poll_handler)(const struct epoll_event *ev, int n, uint64_t now);
/* The set's descriptor, made on the first call; a negative errno value if
 * it cannot be made (then always the same one). */
int wf_poller_fd(void) WF_HIDDEN;
/* Install the handler (once, before the first wait). */
void wf_poller_attach(wf_poll_handler h) WF_HIDDEN;
/* A thread starts (+1) or ends (-1) a wait on descriptors: while any
 * waits, idle workers watch the set. */
void wf_poller_wait_count(int delta) WF_HIDDEN;

/* Monotonic clock in ns (CLOCK_MONOTONIC), the clock of park deadlines. */
uint64_t wf_clock_ns(void) WF_HIDDEN;

/* An absolute CLOCK_MONOTONIC timespec as a park deadline: EINVAL for NULL,
 * or tv_nsec out of range; a negative tv_sec is long past (1).  Never 0,
 * which means "no deadline". */
int wf_timespec_to_ns(const struct timespec *ts, uint64_t *ns) WF_HIDDEN;

#endif
