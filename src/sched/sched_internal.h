/*
 * sched_internal.h — scheduler internals shared by the files of src/sched: the thread
 * control block, the worker, and the functions between them.  src/sync does
 * not include this file; it uses park.h only.
 */
#ifndef WF_SCHED_INTERNAL_H
#define WF_SCHED_INTERNAL_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "weft.h"
#include "../context/context.h"
#include "../context/cpu.h"
#include "../context/stack.h"
#include "../context/valgrind_stack.h"
#include "park.h"
#include "../kthreads/worker_timer.h"

enum wf_state { WF_FREE = 0, WF_READY, WF_RUNNING, WF_BLOCKED, WF_DONE };

/* What the worker does with the thread it just switched away from, once
 * that thread's context is saved (wf_after_switch). */
enum wf_prev_action {
	WF_PREV_NONE = 0, /* idle context: nothing */
	WF_PREV_SAVED,    /* already queued or parked: mark its context saved */
	WF_PREV_DONE,     /* finished: free its stack, wake its joiner */
};

/* Wait state word of a thread: (sequence << 4) | (interrupters << 2) | kind.
 * The sequence changes at every park so a stale timer can never wake a later
 * wait; the interrupters (WF_INTR_*, park.h) say what besides a waker and
 * the deadline may end this wait (cancel.c, signals.c).  An interruption is
 * claimed as TIMEDOUT, with t->intr set by the interrupter. */
enum { WF_WAIT_NONE = 0, WF_WAIT_WAITING = 1, WF_WAIT_WOKEN = 2, WF_WAIT_TIMEDOUT = 3 };
#define WF_WAIT_KIND       3ull
#define WF_WAIT_INTR_SHIFT 2
#define WF_WAIT_SEQ_SHIFT  4

struct wf_worker;

/* Words of the C++ runtime's per-kernel-thread state a green thread
 * carries (cxx_state.c): the two exception globals, std::call_once's two. */
#define WF_CXX_WORDS 4

/* A worker's part in running green threads (monitor.c, standby.c).
 * ACTIVE: one of the WEFT_WORKERS that run green threads.  BLOCKED: the
 * monitor found it stuck in the kernel under a green thread and gave its
 * place to another worker; it gives its threads up at its next scheduling
 * point.  SPARE: a kernel thread waiting to stand in for a blocked one.
 * ACTIVE -> BLOCKED and SPARE -> ACTIVE are the monitor's; BLOCKED ->
 * ACTIVE or SPARE the worker's own.  MAIN, for its life: the kernel thread
 * that initialized weft when that is not the process's initial thread; it
 * runs main and nothing else (main_kthread.c). */
enum wf_wstate { WF_WS_ACTIVE = 0, WF_WS_BLOCKED, WF_WS_SPARE, WF_WS_MAIN };

/*
 * Thread control block.  Lives in a never-freed table (handle.c) so that a
 * stale handle or a late timer can always read it safely; `gen` tells
 * whether it is still the thread a handle names.
 *
 * A thread is in exactly one place: running (w->current, on_cpu = 1), in one
 * run queue (via `next`), parked (wait != WAITING -> someone wakes it), or
 * DONE.  on_cpu stays 1 from the moment a worker switches to the thread
 * until the moment its context is completely saved again; a worker about to
 * resume it waits for 0, so a thread that is queued or woken while it is
 * still switching away is never resumed on two workers at once.
 */
struct wf_thread {
	/* First, as struct wf_thread_head (park.h) has them: */
	uint32_t index;                 /* slot in the TCB table */
	_Atomic uint32_t gen;           /* handle generation, bumped on reclaim */
	void *sp;                       /* saved context, valid when on_cpu == 0 */
	_Atomic uint32_t on_cpu;
	_Atomic uint32_t runs;          /* times switched to; written by the worker
	                                   switching to it, one at a time (on_cpu) */
	int saved_errno;
	/* The C++ runtime's per-kernel-thread words while not running
	 * (cxx_state.c), saved and restored at every switch like errno. */
	uintptr_t cxx[WF_CXX_WORDS];
	wf_spin_t lk;                   /* guards state DONE, detached, joiner */
	void *(*start)(void *);
	void *arg;
	void *ret;
	_Atomic uint64_t wait;          /* (seq << 4) | (WF_INTR_* << 2) | WF_WAIT_* */
	int32_t heap_idx;               /* index in timer heap, -1 = not in it */
	struct wf_thread *prev;         /* continuation-stack link to the newer
	                                   neighbour (runqueue.c), valid only
	                                   while on one; `next` is the older */
	uint8_t intr;                   /* its TIMEDOUT claim was an interruption:
	                                   written by the interrupter that won the
	                                   claim, read and cleared by wf_park */
	uint8_t intr_sig;               /* ... by this signal (0: a cancellation);
	                                   read by wf_interrupted */

	/* From `state` up to `deadline`: zeroed for every new thread, in one go
	 * (wf_tcb_reset, handle.c).  A field that must start at zero in each
	 * life belongs here; see wf_tcb_reset for the ones that need not. */
	uint8_t state                   /* enum wf_state */
		__attribute__((aligned(16))); /* the block: a few vector stores */
	uint8_t detached;
	uint8_t joined;                 /* a joiner is registered */
	uint8_t kind;                   /* WF_KIND_* */
	uint8_t in_signal;              /* switched away inside the tick handler */
	_Atomic uint8_t block_kind;     /* enum wf_block (see block_obj) */
	_Atomic uint8_t cancel_req;     /* weft_cancel asked for it (any thread) */
	_Atomic uint8_t cflags;         /* WF_CF_*: written by the thread only */
	uint32_t preempt_off;           /* weft_preempt_disable depth */
	_Atomic uint8_t join_woken;     /* its finisher's wake-up of a joiner
	                                   failed (the join was interrupted) */
	struct wf_thread *next;         /* run-queue link */
	struct wf_worker *worker;       /* worker it runs or last ran on */
	void *sig_ctx;                  /* its ucontext_t then (valid while in_signal) */
	struct wf_thread *joiner;
	struct wf_worker *timer_worker; /* whose heap holds it */
	struct wf_tsd *tsd;             /* thread-specific values, lazily */
	/* What the thread parks on, for weft_dump and the gdb script: written
	 * by the thread itself before it parks (and by a cond's signaller that
	 * moves it onto a mutex), read racily by observers, hence atomic. */
	_Atomic(const void *) block_obj;
	_Atomic uint64_t block_since;   /* coarse CLOCK_MONOTONIC ns of the park */
	weft_cleanup_ *cleanup;         /* innermost cleanup record (cancel.c) */
	uint64_t sigmask_x;             /* its signal mask XOR wf_sig_base: 0 is
	                                   the default mask (signals.c) */
	/* End of the zeroed block. */
	uint64_t deadline;              /* ns, CLOCK_MONOTONIC; 0 = none */
	_Atomic uint64_t sig_pending;   /* signals sent to it and not delivered
	                                   (bit sig-1; signals.c) */
	/* The exception object of its exit unwinding (cancel.c): it must
	 * outlive the frames the unwinder runs through. */
	uint64_t unwind_exc[4] __attribute__((aligned(16)));

	wf_stack stack;
	unsigned vg_stack;              /* valgrind's handle of the stack, 0 none
	                                   (valgrind_stack.h): set with the
	                                   first context, dropped at the end */
	char name[32];
#ifdef WF_ASAN
	void *asan_fake;
	const void *asan_bottom;
	size_t asan_size;
#endif
};

/* FOREIGN: the identity of a kernel thread that is not a worker, made when
 * it first blocks on a weft object (foreign.c); never scheduled. */
enum { WF_KIND_USER = 0, WF_KIND_MAIN = 1, WF_KIND_IDLE = 2, WF_KIND_FOREIGN = 3 };

/* w->resume bits */
enum { WF_RESUME_UNBLOCK = 1, WF_RESUME_SIGNALS = 0x100 };

/* t->cflags (cancel.c) */
enum {
	WF_CF_DISABLED = 1,   /* weft_setcancelstate(WEFT_CANCEL_DISABLE) */
	WF_CF_ASYNC = 2,      /* weft_setcanceltype(WEFT_CANCEL_ASYNCHRONOUS) */
	WF_CF_EXITING = 4,    /* finishing: cleanup handlers and destructors run;
	                         no cancellation acts any more */
};

/* Per-worker statistics: written only by the owning worker (relaxed single-
 * writer increments), read by anyone. */
#define WF_STAT_COUNTERS (offsetof(weft_stats_t, alive) / sizeof(uint64_t))
struct wf_wstats {
	_Atomic uint64_t v[WF_STAT_COUNTERS];
};
#define WF_STAT_IDX(field) (offsetof(weft_stats_t, field) / sizeof(uint64_t))
#define WF_STAT_INC(w, field) do { \
	_Atomic uint64_t *c_ = &(w)->stats.v[WF_STAT_IDX(field)]; \
	atomic_store_explicit(c_, atomic_load_explicit(c_, memory_order_relaxed) + 1, \
	                      memory_order_relaxed); } while (0)
#define WF_STAT_ADD(w, field, n) do { \
	_Atomic uint64_t *c_ = &(w)->stats.v[WF_STAT_IDX(field)]; \
	atomic_store_explicit(c_, atomic_load_explicit(c_, memory_order_relaxed) + (n), \
	                      memory_order_relaxed); } while (0)

struct wf_worker {
	/* --- owned by the worker itself --- */
	struct wf_thread *current;      /* thread running on this worker; first,
	                                   as struct wf_worker_head (park.h) */
	int index;
	int *errno_loc;                 /* errno of this kernel thread (fixed for
	                                   its life), saved and restored at
	                                   every switch.  Through this pointer,
	                                   not &errno: __errno_location is const,
	                                   so the compiler may reuse an address
	                                   computed before a switch, which after
	                                   a migration is another worker's. */
	/* Its kernel thread's TLS span (wf_kt_tls_span) and alternate signal
	 * stack, fixed for its life: a thread that moves here from another
	 * worker has its pointers into that worker's span rebased into this
	 * one (migrate.c). */
	uintptr_t tls_lo, tls_hi;
	stack_t altstack;
	/* Where its kernel thread keeps the C++ runtime's per-thread words,
	 * fixed for its life (cxx_state.c); a word the runtime lacks points
	 * at cxx_spare. */
	uintptr_t *cxx_loc[WF_CXX_WORDS];
	uintptr_t cxx_spare[WF_CXX_WORDS];
	struct wf_thread *idle;         /* the worker's scheduler context */
	struct wf_thread *prev;         /* thread just switched away from */
	uint8_t prev_action;            /* enum wf_prev_action */
	wf_spin_t *prev_unlock;         /* lock to release once prev is saved */
	unsigned create_streak;         /* run-child-first creates in a row */
	bool fifo_turn;                 /* owner only: the next wf_rq_pop takes
	                                   the FIFO's head before a continuation */
	unsigned preempt_turn;          /* alternates local/global at a tick */
	wf_stack_cache stacks;          /* warm stacks */
	/* The stack of the thread that last finished here, if it has the
	 * default size and the slot was empty: the next create with default
	 * attributes takes it without calling the allocator (a create+join
	 * loop reuses one stack).  hot_stack.lo == NULL: empty.  hot_size is
	 * the default size rounded (0 until this worker first allocated one). */
	wf_stack hot_stack;
	size_t hot_size;
	/* Free TCBs (handle.c), as the stacks: a partial batch (newest first,
	 * linked through next) and at most one whole batch of WF_TCB_BATCH. */
	struct wf_thread *tcb_cur;
	unsigned tcb_ncur;
	struct wf_thread *tcb_full;
	_Atomic pid_t tid;              /* published by the worker itself */
	_Atomic uint8_t go;             /* set once its timer exists: it may run
	                                   green threads (runtime.c) */
	struct wf_wstats stats;

	/* --- run queue: shared with thieves and wakers, under rq_lock: a
	 * FIFO, and the stack of continuations of run-child-first creates
	 * (runqueue.c) --- */
	wf_spin_t rq_lock __attribute__((aligned(WF_CACHELINE)));
	struct wf_thread *rq_head, *rq_tail;
	struct wf_thread *cq_top, *cq_bot;  /* newest, oldest continuation */
	_Atomic uint32_t rq_len;        /* threads in both */
	_Atomic uint32_t cq_len;        /* of which continuations */
	/* The head was pushed by a wake-up (wf_make_woken) and has not been
	 * popped since; written under rq_lock, read by thieves as a hint. */
	_Atomic bool rq_head_woken;

	/* --- idle sleep --- */
	_Atomic uint32_t futex_word __attribute__((aligned(WF_CACHELINE)));
	_Atomic uint32_t sleeping;      /* 1 while asleep: on futex_word, or in the
	                                   poller when in_poller (poller.c) */
	_Atomic uint8_t in_poller;      /* this sleep is in the poller: wake it
	                                   through the poller's eventfd */

	/* --- hand-off of a worker blocked in the kernel (monitor.c) --- */
	_Atomic uint8_t mstate;         /* enum wf_wstate */
	_Atomic uint8_t in_blocking;    /* inside weft_blocking_begin/end */

	/* --- preemption (preempt.c) --- */
	wf_worker_timer timer;
	_Atomic uint32_t timer_armed;   /* 1 while the timer may tick */
	_Atomic uint32_t tick_soon;     /* another thread asked for a tick now
	                                   (wf_preempt_soon); a disarm re-checks */
	uint64_t timer_due;             /* owner only: time of the next tick, 0 unknown */
	/* What a context resumed on w must do first (wf_preempt_resumed), in
	 * one word so that a switch tests it with one load:
	 * WF_RESUME_UNBLOCK (owner only): the tick handler left the tick
	 * signal blocked; WF_RESUME_SIGNALS (set once, by any thread): masks
	 * or signals of one thread are in use (signals.c).  Written with
	 * atomic read-modify-writes; the first is set at a preemption only. */
	_Atomic uint16_t resume;
	uint32_t in_handler;            /* owner only: depth of program signal
	                                   handlers running on this kernel
	                                   thread; no switch while nonzero */
	uint8_t tick_pending;           /* owner only: a deferred tick is owed */
	uint64_t kmask_x;               /* owner only: the thread mask (as in
	                                   t->sigmask_x) its kernel mask holds
	                                   outside handlers (signals.c) */

	/* --- timers: min-heap of parked threads by deadline --- */
	wf_spin_t tm_lock __attribute__((aligned(WF_CACHELINE)));
	struct wf_thread **heap;
	uint32_t heap_len, heap_cap;
	_Atomic uint64_t next_deadline; /* heap[0]->deadline, or UINT64_MAX */
} __attribute__((aligned(WF_CACHELINE)));

/* weft_attr_t._magic of an initialized attribute object (attr.c; weft_create
 * checks it too). */
#define WF_ATTR_MAGIC 0x77617474u

/* Stack size of a thread created without one (WEFT_STACK_SIZE overrides). */
#define WF_STACK_SIZE_DEFAULT ((size_t)64 << 10)

/* wf_rt.state (the gdb script reads WF_RT_READY by name). */
/* WF_RT_FORKED: a child of fork() whose runtime runs on the forking thread
 * alone; the first wf_runtime_ensure starts the rest (fork.c). */
enum wf_rt_state { WF_RT_NONE = 0, WF_RT_INITIALIZING, WF_RT_READY, WF_RT_FAILED,
                   WF_RT_FORKED };

/* Runtime-wide state, fixed after init. */
struct wf_config {
	int workers;
	int cpus;                       /* CPUs of the affinity mask at start */
	uint64_t quantum_us;
	size_t stack_size;
	size_t stack_cache;             /* WEFT_STACK_CACHE: shared warm stacks */
	int kthreads_mode;
	int preempt_signal;
	int dump_signal;                /* 0 = none */
	const char *trace_path;         /* WEFT_TRACE; NULL = tracing off */
};
struct wf_runtime {
	struct wf_config cfg;
	/* Room for WF_MAX_KTHREADS workers: the first nworkers (WEFT_WORKERS)
	 * start with the runtime, spares are added by the monitor.  Indexes
	 * below nkthreads are initialized (release-published by the monitor,
	 * the only one to add). */
	struct wf_worker *workers;
	int nworkers;
	_Atomic int nkthreads;
	_Atomic int nactive;            /* workers in WF_WS_ACTIVE */
	struct wf_thread *main;
	_Atomic int state;              /* enum wf_rt_state */
	int init_error;
	_Atomic uint64_t created_foreign; /* threads created from non-worker kernel threads */
	_Atomic uint32_t nsleeping;     /* workers asleep on their futex */
	_Atomic int nspinning;          /* workers spinning in their idle loop */
	_Atomic uint32_t waking;        /* a create's wake-up is under way
	                                   (wf_kick_for_create) */
	/* The global queue (runqueue.c): preempted threads, when there is
	 * more than one worker.  FIFO under gq_lock; gq_len is its length,
	 * changed only under the lock, read without it as a hint. */
	wf_spin_t gq_lock __attribute__((aligned(WF_CACHELINE)));
	struct wf_thread *gq_head, *gq_tail;
	_Atomic uint32_t gq_len;
	_Atomic uint32_t main_waiting;  /* main is in weft_exit waiting for no thread alive */
	_Atomic uint64_t retakes;       /* workers the monitor retook (monitor.c) */
	/* The worker that runs main only, or NULL (main_kthread.c): set
	 * before any other worker starts, fixed afterwards. */
	struct wf_worker *main_kt;
	sigset_t worker_mask;           /* every worker's signal mask: the one the
	                                   initializing thread had (runtime.c) */
};
extern struct wf_runtime wf_rt WF_HIDDEN;

/* Kernel workers that may exist at once, spares included. */
#define WF_MAX_KTHREADS 4096

/* Workers in use, spares included (for loops over all of them). */
static inline int wf_nkthreads(void)
{
	return atomic_load_explicit(&wf_rt.nkthreads, memory_order_acquire);
}

/* Has the monitor given w's place away?  Checked at w's scheduling
 * points; relaxed: a change seen one round late only delays w's hand-over
 * by one switch. */
static inline bool wf_worker_retaken(const struct wf_worker *w)
{
	uint8_t st = atomic_load_explicit(&((struct wf_worker *)w)->mstate,
	                                  memory_order_relaxed);
	return wf_unlikely(st == WF_WS_BLOCKED || st == WF_WS_SPARE);
}

/* Is w the kernel thread of main only (WF_WS_MAIN, main_kthread.c)?  NULL
 * is not.  Fixed from initialization on. */
static inline bool wf_worker_main_only(const struct wf_worker *w)
{
	return wf_unlikely(w && w == wf_rt.main_kt);
}

/* The worker the calling kernel thread is, or NULL.  Read with
 * WF_TLS_LOAD, which uses the thread pointer of the kernel thread running
 * now (src/context/tls.h), so it stays right after a green thread
 * migrates.  Never take its address with a plain &. */
static inline struct wf_worker *wf_worker_self(void) { return WF_TLS_LOAD(wf_tls_worker); }

/* The views park.h gives src/sync. */
_Static_assert(offsetof(struct wf_worker, current) == offsetof(struct wf_worker_head, current),
               "struct wf_worker must begin as struct wf_worker_head");
_Static_assert(offsetof(struct wf_thread, index) == offsetof(struct wf_thread_head, index) &&
               offsetof(struct wf_thread, gen) == offsetof(struct wf_thread_head, gen),
               "struct wf_thread must begin as struct wf_thread_head");

/* runtime.c */
int wf_runtime_ensure(void) WF_HIDDEN;       /* lazy init: 0 or errno */
int wf_config_read(struct wf_config *cfg) WF_HIDDEN;

/* park.c (besides park.h) */
uint64_t wf_coarse_ns(void) WF_HIDDEN;       /* CLOCK_MONOTONIC_COARSE: ~5 ns, tick resolution */
/* Set for good once a cancellation or a signal was first sent to a thread
 * (see park.c for why parkers look at it). */
extern _Atomic uint32_t wf_intr_used WF_HIDDEN;
/* End t's wait if it is parked in one that `intr` (WF_INTR_* bits) may
 * end: claim it and make t ready; its wf_park returns EINTR.  sig is the
 * signal that interrupts (0 for a cancellation).  The caller has published
 * its request first (seq_cst).  Any thread, not from a signal handler.
 * False when t is not in such a wait. */
bool wf_interrupt(struct wf_thread *t, unsigned intr, int sig) WF_HIDDEN;
/* A full barrier on every running thread of the process (membarrier);
 * false where the kernel refuses it (thread.c). */
bool wf_barrier_all(void) WF_HIDDEN;

/* dispatch.c */
struct wf_worker *wf_switch(struct wf_worker *w, struct wf_thread *prev,
                            struct wf_thread *next, int action,
                            wf_spin_t *unlock_after) WF_HIDDEN;
void wf_after_switch(struct wf_worker *w) WF_HIDDEN;
struct wf_thread *wf_pick_next(struct wf_worker *w) WF_HIDDEN;
_Noreturn void wf_idle_main(struct wf_worker *w) WF_HIDDEN;
void wf_thread_entry(void *transfer, void *arg) WF_HIDDEN;
void wf_context_entered(struct wf_worker *w, struct wf_thread *self) WF_HIDDEN;

/* migrate.c: t, not running and last run on `from`, is about to be
 * resumed on `to` */
void wf_migrate(struct wf_thread *t, const struct wf_worker *from,
                const struct wf_worker *to) WF_HIDDEN;

/* runqueue.c */
void wf_rq_push(struct wf_worker *w, struct wf_thread *t, bool at_head) WF_HIDDEN;
/* t (w's running thread, about to run its new child) continues after the
 * child: on top of w's continuation stack. */
void wf_rq_push_cont(struct wf_worker *w, struct wf_thread *t) WF_HIDDEN;
/* The thread w runs next when its current one stops: the newest
 * continuation, else the FIFO's head (the other way round once after
 * fifo_turn); NULL if none.  Owner only. */
struct wf_thread *wf_rq_pop(struct wf_worker *w) WF_HIDDEN;
/* Are threads other than continuations queued on w?  A hint. */
static inline bool wf_rq_fifo_busy(const struct wf_worker *w)
{
	return atomic_load_explicit(&((struct wf_worker *)w)->rq_len, memory_order_relaxed) >
	       atomic_load_explicit(&((struct wf_worker *)w)->cq_len, memory_order_relaxed);
}
struct wf_thread *wf_rq_rotate(struct wf_worker *w, struct wf_thread *t) WF_HIDDEN;
/* A thread of another worker for thief, or NULL; now: wf_clock_ns(). */
struct wf_thread *wf_rq_steal(struct wf_worker *thief, uint64_t now) WF_HIDDEN;
/* The global queue: a thread to run instead of t, with t queued at the
 * global tail; NULL (t not queued) when no other thread is ready. */
struct wf_thread *wf_rq_preempt_rotate(struct wf_worker *w, struct wf_thread *t,
                                       bool local_first) WF_HIDDEN;
/* The global queue's head, for worker w (the caller's). */
struct wf_thread *wf_gq_pop(struct wf_worker *w) WF_HIDDEN;
static inline bool wf_gq_empty(void)
{
	return !atomic_load_explicit(&wf_rt.gq_len, memory_order_relaxed);
}
void wf_make_ready(struct wf_worker *w, struct wf_thread *t, bool at_head) WF_HIDDEN;
/* wf_make_ready for a thread woken from a park by another thread: a lone
 * such thread is left to w for a few microseconds (wf_rq_steal). */
void wf_make_woken(struct wf_worker *w, struct wf_thread *t, bool at_head) WF_HIDDEN;
/* ... on top of w's continuations, to run next (a joiner whose child
 * finished on w: the child's continuation, as if it had not been
 * stolen). */
void wf_make_woken_cont(struct wf_worker *w, struct wf_thread *t) WF_HIDDEN;
void wf_kick_idle(void) WF_HIDDEN;
/* wf_kick_idle unless a worker spins or such a wake-up is under way. */
void wf_kick_for_work(void) WF_HIDDEN;
void wf_gq_push(struct wf_thread *t) WF_HIDDEN;
void wf_rq_drain_global(struct wf_worker *w) WF_HIDDEN;
bool wf_any_ready(void) WF_HIDDEN;

/* timer_heap.c */
void wf_timer_add(struct wf_worker *w, struct wf_thread *t, uint64_t now) WF_HIDDEN;
void wf_timer_cancel(struct wf_thread *t) WF_HIDDEN;
int wf_timer_run(struct wf_worker *w, uint64_t now) WF_HIDDEN; /* threads woken */

/* handle.c (and the inline functions below) */
struct wf_thread *wf_tcb_alloc(struct wf_worker *w) WF_HIDDEN;
/* A batch of free TCBs (linked through next, n of them) to the shared list. */
void wf_tcb_put_batch(struct wf_thread *head, unsigned n) WF_HIDDEN;
/* Every free TCB of w's cache to the shared list (w, or its idle context). */
void wf_tcb_cache_flush(struct wf_worker *w) WF_HIDDEN;
/* The scavenger's part for TCBs (monitor.c): give back the memory of table
 * chunks whose TCBs all stayed free since the previous call.  Returns the
 * chunks it found wholly free but kept (more than stayed free all period):
 * candidates for the next call. */
size_t wf_tcb_trim(void) WF_HIDDEN;
/* TCBs ever put on the shared list (a counter that only grows). */
uint64_t wf_tcb_puts(void) WF_HIDDEN;
/* Table chunks whose memory was given back, ever, and those retired the
 * same way but cleared in place, the kernel keeping their memory (for
 * tests). */
uint64_t wf_tcb_chunks_released(void) WF_HIDDEN;
uint64_t wf_tcb_chunks_cleared(void) WF_HIDDEN;
uint32_t wf_tcb_slots(void) WF_HIDDEN;       /* slots ever used */

/* The TCB table (handle.c), inline here because every join, detach and
 * name call looks a handle up.  Chunks are published once and never freed. */
#define WF_CHUNK_SHIFT 10
#define WF_CHUNK_SLOTS (1u << WF_CHUNK_SHIFT)
#define WF_MAX_CHUNKS  (1u << 14)   /* 16 Mi threads alive at once */
extern struct wf_thread *_Atomic wf_chunks[WF_MAX_CHUNKS] WF_HIDDEN;

static inline struct wf_thread *wf_tcb_slot(uint32_t i)
{
	struct wf_thread *c = atomic_load_explicit(&wf_chunks[i >> WF_CHUNK_SHIFT],
	                                           memory_order_acquire);
	return c ? &c[i & (WF_CHUNK_SLOTS - 1)] : NULL;
}

/* A handle is (generation << 32) | (slot + 1). */
static inline weft_t wf_tcb_handle(const struct wf_thread *t)
{
	return (weft_t)wf_thread_handle(t);
}

/* In a child of fork() (handle.c, wf_tcb_forked_child): the slots below
 * wf_tcb_dead_hi, from wf_tcb_dead_lo up, hold threads that do not exist
 * there and have not been reclaimed yet, except wf_tcb_dead_keep (the
 * forking thread).  dead_hi and keep are written once, by the child's only
 * thread before it creates any other; dead_lo only grows, under the TCB
 * table's lock, each step after the slot it passes was retired.  0 in a
 * process that never forked: one compare. */
extern uint32_t wf_tcb_dead_hi WF_HIDDEN;
extern _Atomic uint32_t wf_tcb_dead_lo WF_HIDDEN;
extern struct wf_thread *wf_tcb_dead_keep WF_HIDDEN;

static inline bool wf_tcb_dead(const struct wf_thread *t)
{
	return wf_unlikely(t->index < wf_tcb_dead_hi) &&
	       t->index >= atomic_load_explicit(&wf_tcb_dead_lo, memory_order_acquire) &&
	       t != wf_tcb_dead_keep;
}

/* The TCB a handle names, or NULL if it is bad or stale.  A hint only: the
 * caller re-checks wf_tcb_handle(t) == h under t->lk.  The dead check comes
 * first: a slot found reclaimed (dead_lo past it, acquire) shows its bumped
 * generation to the load that follows. */
static inline struct wf_thread *wf_tcb_lookup(weft_t h)
{
	uint64_t v = (uint64_t)h;
	uint32_t slot = (uint32_t)v;
	uint32_t gen = (uint32_t)(v >> 32);
	if (slot == 0 || slot - 1 >= WF_MAX_CHUNKS * WF_CHUNK_SLOTS)
		return NULL;
	struct wf_thread *t = wf_tcb_slot(slot - 1);
	if (!t || wf_tcb_dead(t) || atomic_load_explicit(&t->gen, memory_order_acquire) != gen ||
	    t->state == WF_FREE || t->kind >= WF_KIND_IDLE)   /* idle, foreign */
		return NULL;
	return t;
}

/* Reclaiming a TCB takes two steps: retire, then free. */
#define WF_TCB_BATCH 64              /* free TCBs moved at once */

/* Retire t: from here on every outstanding handle of t is stale.  Called
 * with t->lk held, or when no one else can hold t's handle.  Every writer
 * of gen holds t->lk (or owns t outright), so the bump needs no atomic
 * read-modify-write; the release store pairs with the acquire load in
 * wf_tcb_lookup. */
static inline void wf_tcb_retire(struct wf_thread *t)
{
	t->state = WF_FREE;
	atomic_store_explicit(&t->gen, atomic_load_explicit(&t->gen, memory_order_relaxed) + 1,
	                      memory_order_release);
}

/* Put a retired TCB up for reuse, after t->lk was released: a TCB on a
 * free list may be handed out at once (from the global list, on another
 * worker), so its old owner must be done with its lock by then.  w is the
 * caller's worker or NULL. */
static inline void wf_tcb_free(struct wf_worker *w, struct wf_thread *t)
{
	if (wf_unlikely(!w)) {
		t->next = NULL;
		wf_tcb_put_batch(t, 1);
		return;
	}
	t->next = w->tcb_cur;
	w->tcb_cur = t;
	if (wf_likely(++w->tcb_ncur < WF_TCB_BATCH))
		return;
	/* A whole batch: keep it, and pass the older one on. */
	if (w->tcb_full)
		wf_tcb_put_batch(w->tcb_full, WF_TCB_BATCH);
	w->tcb_full = w->tcb_cur;
	w->tcb_cur = NULL;
	w->tcb_ncur = 0;
}
/* The TCB of a slot, for observers that walk the table: NULL past the end
 * and for a thread left behind by fork(). */
struct wf_thread *wf_tcb_at(uint32_t slot) WF_HIDDEN;

/* Lay out t's first context on its stack (t->stack): switching to t calls
 * entry(transfer, arg) there.  Registers the stack with valgrind (dropped
 * when the thread finishes, wf_thread_finished); under ASan, also records
 * the stack that the switch announces. */
static inline void wf_tcb_first_context(struct wf_thread *t,
                                        void (*entry)(void *transfer, void *arg), void *arg)
{
	t->sp = wf_ctx_make(t->stack.lo, t->stack.hi, entry, arg);
	t->vg_stack = wf_vg_stack_register(t->stack.lo, t->stack.hi);
#ifdef WF_ASAN
	t->asan_bottom = t->stack.lo;
	t->asan_size = (size_t)((char *)t->stack.hi - (char *)t->stack.lo);
#endif
}

/* The live TCB handle h names, with t->lk held, initializing weft on first
 * use; NULL (ESRCH) for a bad or stale handle, or if initialization failed.
 * The handle is checked again under the lock: t may have been reclaimed
 * since the lookup. */
static inline struct wf_thread *wf_tcb_lock_handle(weft_t h)
{
	if (wf_runtime_ensure())
		return NULL;
	struct wf_thread *t = wf_tcb_lookup(h);
	if (!t)
		return NULL;
	wf_spin_lock(&t->lk);
	if (wf_tcb_handle(t) == h && t->state != WF_FREE)
		return t;
	wf_spin_unlock(&t->lk);
	return NULL;
}

/* The calling green thread (not a worker's scheduler context), initializing
 * weft on first use; NULL on a kernel thread that is not a worker or if
 * initialization failed. */
static inline struct wf_thread *wf_self_init(void)
{
	if (wf_runtime_ensure())
		return NULL;
	struct wf_thread *t = wf_current();
	return t && t->kind != WF_KIND_IDLE ? t : NULL;
}

/* park.c: wf_unpark for the joiner of a thread that just finished on the
 * calling worker: it continues there next (wf_make_woken_cont). */
bool wf_unpark_joiner(struct wf_thread *t) WF_HIDDEN;

/* thread.c */
uint64_t wf_live_count(void) WF_HIDDEN;      /* threads alive, main excluded */
void wf_thread_finished(struct wf_worker *w, struct wf_thread *t) WF_HIDDEN;
/* w is going to sleep: its warm stacks and free TCBs go to the shared
 * tiers, where other workers take them and the scavenger trims them
 * (w's idle context only). */
void wf_worker_caches_flush(struct wf_worker *w) WF_HIDDEN;
_Noreturn void wf_thread_exit(void *ret) WF_HIDDEN;

/* keys.c */
void wf_tsd_run_destructors(struct wf_thread *t) WF_HIDDEN;

/* preempt.c */
int wf_preempt_init(void) WF_HIDDEN;
int wf_preempt_timer_create(struct wf_worker *w) WF_HIDDEN;  /* 0 or errno */
void wf_preempt_soon(struct wf_worker *w) WF_HIDDEN;         /* tick at its next run */
void wf_preempt_resumed_slow(struct wf_worker *w, struct wf_thread *self,
                             uint16_t resume) WF_HIDDEN;
/* First thing of a context resumed on w (see preempt.c). */
static inline void wf_preempt_resumed(struct wf_worker *w, struct wf_thread *self)
{
	uint16_t r = atomic_load_explicit(&w->resume, memory_order_relaxed);
	if (wf_unlikely(r))
		wf_preempt_resumed_slow(w, self, r);
}
void wf_preempt_note_ready(struct wf_worker *w) WF_HIDDEN;
void wf_preempt_note_deadline(struct wf_worker *w, uint64_t deadline,
                              uint64_t now) WF_HIDDEN;
void wf_preempt_pending(struct wf_thread *self) WF_HIDDEN;

/* dump_signal.c: WEFT_DUMP_SIGNAL's handler and dump thread (0 or EAGAIN) */
int wf_dump_signal_install(void) WF_HIDDEN;

/* program_signals.c: weft owns the program's handlers (see there) */
int wf_sigaction_raw(int sig, const struct sigaction *act, struct sigaction *old) WF_HIDDEN;
int wf_signal_own(int sig, const struct sigaction *weft_act) WF_HIDDEN;  /* 0 or errno */
/* A delivery of a signal weft owns that is not weft's: run the program's
 * handler.  False when the program's action is SIG_DFL (the caller
 * applies it: wf_signal_default restores it in the kernel). */
bool wf_signal_forward(int sig, siginfo_t *si, void *uc) WF_HIDDEN;
void wf_signal_default(int sig) WF_HIDDEN;
/* wf_signal_forward, and the default action (restored, raised again) when
 * the program has none: what the delivery would have done without weft.
 * From weft's handler of sig, with sig blocked. */
void wf_signal_pass(int sig, siginfo_t *si, void *uc) WF_HIDDEN;
/* Is the program's action for an owned sig SIG_IGN?  Async-signal-safe. */
bool wf_signal_ignored(int sig) WF_HIDDEN;
void wf_signals_adopt(void) WF_HIDDEN;

/* signals.c: signals for one green thread (see there) */
/* Nonzero once switches have signal work: a mask other than the default,
 * a signal sent to a thread, an asynchronous cancellation (0, 1 while the
 * first raiser makes its barrier, 2). */
extern _Atomic uint32_t wf_sig_active WF_HIDDEN;
extern uint64_t wf_sig_base WF_HIDDEN;        /* the default mask, bit sig-1 */
extern pid_t wf_sig_pid WF_HIDDEN;            /* getpid(), kept in a child */
void wf_flag_raise(_Atomic uint32_t *f) WF_HIDDEN;
void wf_sig_init(int preempt_sig, int dump_sig) WF_HIDDEN;
void wf_sig_worker_start(struct wf_worker *w) WF_HIDDEN;
void wf_sig_worker_added(struct wf_worker *w) WF_HIDDEN;   /* published */
bool wf_sig_deliverable(struct wf_thread *t) WF_HIDDEN;
void wf_sig_deliver(struct wf_thread *self) WF_HIDDEN;
/* self's wait ended with EINTR and no cancellation acts: run the handlers
 * of the signals that ended it, if they did not run yet; 0 when every one
 * of them asked for interrupted calls to restart (SA_RESTART), else EINTR
 * (wf_interrupted, park.h). */
int wf_sig_interrupted(struct wf_thread *self) WF_HIDDEN;
void wf_sig_distribute(void) WF_HIDDEN;
extern _Atomic uint64_t wf_sig_proc WF_HIDDEN;  /* for wf_sig_waiting */
/* Process signals that every green thread blocked when they were given out
 * (bit sig-1): the next thread to unblock one, or to be switched to while
 * not blocking it, takes it. */
extern _Atomic uint64_t wf_sig_held WF_HIDDEN;
/* Process signals wait for a green thread (idle loop: one load). */
static inline bool wf_sig_waiting(void)
{
	return atomic_load_explicit(&wf_sig_proc, memory_order_relaxed);
}
/* A delivery of sig to a program handler (handler: the program's action
 * is one), from the handler wrapper: true to run it here and now, false
 * when it belongs to another thread or moment.  Async-signal-safe. */
bool wf_sig_route(int sig, siginfo_t *si, bool handler) WF_HIDDEN;
/* The switch-in hook (wf_preempt_resumed, once WF_RESUME_SIGNALS is set
 * on w): the kernel mask of self, signals due to it, an asynchronous
 * cancellation. */
void wf_sig_resumed(struct wf_worker *w, struct wf_thread *self) WF_HIDDEN;
void wf_sig_forked_child(struct wf_thread *self) WF_HIDDEN;
bool wf_signal_has_handler(int sig) WF_HIDDEN;  /* program_signals.c */
/* program_signals.c: the program's handler for sig asks that interrupted
 * calls restart (SA_RESTART). */
bool wf_signal_restarts(int sig) WF_HIDDEN;

/* cancel.c */
/* Finish the calling green thread (weft_exit, a cancellation): cleanup
 * handlers (unwinding its frames when the unwinder is there), then
 * wf_thread_exit.  The first call's result stands. */
_Noreturn void wf_exit_begin(void *ret) WF_HIDDEN;
/* Is an asynchronous cancellation of self due, at a safe point?  Then act
 * (does not return); w is self's worker, in a tick handler or resuming
 * into one. */
void wf_cancel_async_check(struct wf_worker *w, struct wf_thread *self) WF_HIDDEN;
int wf_intr_finish(void) WF_HIDDEN;   /* wf_interrupted (park.h) */

/* poller.c: the idle worker's sleep in the epoll set (park.h has the
 * part src/io uses) */
int wf_poller_fd_get(void) WF_HIDDEN;
void wf_poller_handler_set(wf_poll_handler h) WF_HIDDEN;
void wf_poller_waiting(int delta) WF_HIDDEN;
bool wf_poller_wanted(void) WF_HIDDEN;           /* sleep there now, not after a spin */
bool wf_poller_take(struct wf_worker *w) WF_HIDDEN;   /* w will sleep in it */
int wf_poller_wait(struct wf_worker *w, uint64_t deadline) WF_HIDDEN;  /* events */
void wf_poller_done(struct wf_worker *w, int n) WF_HIDDEN;  /* dispatch, let go */
void wf_poller_kick(void) WF_HIDDEN;             /* wake the worker in it */
void wf_poller_monitor(uint64_t now) WF_HIDDEN;  /* the monitor's look */
void wf_poller_forked_child(void) WF_HIDDEN;     /* fork.c: a set of its own */

/* monitor.c */
int wf_monitor_start(void) WF_HIDDEN;          /* 0 or EAGAIN */
void wf_monitor_worker_awake(void) WF_HIDDEN;  /* a worker left its idle sleep */

/* standby.c: w (its idle context running) was retaken: give its threads
 * away, then rejoin or wait as a spare until the monitor activates it. */
void wf_worker_standby(struct wf_worker *w) WF_HIDDEN;
/* t (running on retaken w) gives up w: to the global queue, then w's idle
 * context.  From a scheduling point of t's own (yield, tick). */
void wf_worker_hand_over(struct wf_worker *w, struct wf_thread *t) WF_HIDDEN;

/* runtime.c: a new worker, spare or active (monitor.c); 0 or EAGAIN */
int wf_worker_add(struct wf_worker **out) WF_HIDDEN;
/* runtime.c, for main_kthread.c: what every worker learns about its own
 * kernel thread, on it; make the caller the green thread main, running on
 * w, whose scheduler context will start in idle_entry */
void wf_worker_kthread_facts(struct wf_worker *w) WF_HIDDEN;
int wf_make_main(struct wf_worker *w,
                 void (*idle_entry)(void *transfer, void *arg)) WF_HIDDEN;

/* main_kthread.c: the initializing kernel thread, when it is not the
 * process's initial thread, becomes worker w, which runs main only; 0 or
 * errno. */
int wf_main_kthread_start(struct wf_worker *w) WF_HIDDEN;
/* main_kthread.c: the scheduler context of such a worker starts here. */
void wf_main_kthread_entry(void *transfer, void *arg) WF_HIDDEN;
/* main was queued on w, its own kernel thread: wake it. */
void wf_main_kthread_kick(struct wf_worker *w) WF_HIDDEN;
/* A thread made ready on w: the worker it must be queued on instead, when
 * w or t concerns main's own kernel thread. */
static inline struct wf_worker *wf_main_kthread_route(struct wf_worker *w,
                                                      const struct wf_thread *t)
{
	if (wf_likely(!wf_rt.main_kt))
		return w;
	if (t == wf_rt.main)
		return wf_rt.main_kt;
	return w == wf_rt.main_kt ? &wf_rt.workers[0] : w;
}

/* runtime.c: in a child of fork(), rebuild the runtime around self (the
 * forking green thread, or NULL when a kernel thread that is not a worker
 * forked); initial: the forking kernel thread was the process's initial
 * thread (wf_runtime_on_initial_thread, asked before the fork) */
void wf_runtime_forked_child(struct wf_thread *self, bool initial) WF_HIDDEN;
/* runtime.c: is the caller the process's initial thread, whose stack holds
 * no thread descriptor and whose code never returns into pthread's? */
bool wf_runtime_on_initial_thread(void) WF_HIDDEN;

/* fork.c */
void wf_fork_install(void) WF_HIDDEN;   /* register weft's fork handlers, once */
/* handle.c, keys.c, program_signals.c, monitor.c: their locks across fork */
void wf_tcb_fork_lock(void) WF_HIDDEN;
void wf_tcb_fork_unlock(void) WF_HIDDEN;
void wf_tcb_forked_child(struct wf_thread *keep) WF_HIDDEN;
void wf_keys_fork_lock(void) WF_HIDDEN;
void wf_keys_fork_unlock(void) WF_HIDDEN;
void wf_signals_fork_lock(void) WF_HIDDEN;
void wf_signals_fork_unlock(void) WF_HIDDEN;
void wf_monitor_fork_lock(void) WF_HIDDEN;
void wf_monitor_fork_unlock(void) WF_HIDDEN;
void wf_monitor_forked_child(void) WF_HIDDEN;

/* overflow.c */
int wf_overflow_install(void) WF_HIDDEN;

#endif
