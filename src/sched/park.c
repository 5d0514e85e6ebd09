/*
 * park.c — park.h, implemented: blocking and waking green threads (the
 * protocol is in park.h), preemption off and on, yielding, the clocks, and
 * the entry points that bring weft up for the layers above.
 *
 * A wait is claimed exactly once: by a waker (WAITING -> WOKEN) or by the
 * timer (WAITING -> TIMEDOUT), with a compare-and-swap on t->wait, whose
 * upper bits count the waits so that a claim meant for an earlier wait can
 * never succeed on a later one.  The claimer alone makes the thread ready.
 * The parking thread always switches away once it has published its wait,
 * even if a claim came before it got to switch: the claimer has already
 * queued it (on_cpu keeps it from being resumed before it is saved).
 */
#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "sched_internal.h"
#include "trace.h"
#include "foreign.h"
#include "../kthreads/kthread.h"
#include "../kthreads/libc_real.h"

/* Set once by each worker's kernel thread, before it runs anything. */
__thread struct wf_worker *wf_tls_worker __attribute__((tls_model("initial-exec")));

/* --- who is calling: a kernel thread that is not a worker (foreign.c) --- */

/* Set by a foreign kernel thread at its first blocking call, cleared at its
 * exit; never set on a worker. */
__thread struct wf_thread *wf_tls_foreign __attribute__((tls_model("initial-exec")));

struct wf_thread *wf_foreign_self(void)
{
	struct wf_thread *t = WF_TLS_LOAD(wf_tls_foreign);
	return t ? t : wf_foreign_make();
}

/* --- parking ------------------------------------------------------------ */

static inline void wf_wait_publish(struct wf_thread *self, uint64_t intr)
{
	uint64_t w = atomic_load_explicit(&self->wait, memory_order_relaxed);
	atomic_store_explicit(&self->wait, ((w >> WF_WAIT_SEQ_SHIFT) + 1) << WF_WAIT_SEQ_SHIFT |
	                      intr << WF_WAIT_INTR_SHIFT | WF_WAIT_WAITING,
	                      memory_order_relaxed);
	self->deadline = 0;
}

void wf_park_prepare(struct wf_thread *self) { wf_wait_publish(self, 0); }

void wf_park_prepare_intr(struct wf_thread *self, unsigned intr)
{
	/* cflags is the thread's own: stable while it parks, so whoever sees
	 * the cancel bit in the wait word may act on it. */
	if (atomic_load_explicit(&self->cflags, memory_order_relaxed) &
	    (WF_CF_DISABLED | WF_CF_EXITING))
		intr &= ~(unsigned)WF_INTR_CANCEL;
	wf_wait_publish(self, intr);
}

#define WF_BLOCK_ROW_(name, tag, words, show, held, owner) \
	[WF_BLOCK_##name] = { tag, words, held, show },
const struct wf_block_kind wf_block_kinds[WF_BLOCK_COUNT] = { WF_BLOCK_KINDS(WF_BLOCK_ROW_) };
#undef WF_BLOCK_ROW_

void wf_park_reason(struct wf_thread *t, int kind, const void *obj)
{
	atomic_store_explicit(&t->block_obj, obj, memory_order_relaxed);
	atomic_store_explicit(&t->block_kind, (uint8_t)kind, memory_order_relaxed);
}

/* A TCB left behind by fork() (wf_tcb_dead) is never claimed: its thread
 * does not exist in the child, whose objects may still list it as a waiter
 * (a mutex that a prepare handler locked while it waited, unlocked by the
 * child handler).  Its waker sees the claim refused, as when a timeout won,
 * and passes the grant on; the node it marks done lies in a stack that
 * nothing will run on. */
static bool wf_claim(struct wf_thread *t, uint64_t to)
{
	if (wf_tcb_dead(t))
		return false;
	uint64_t cur = atomic_load_explicit(&t->wait, memory_order_relaxed);
	return (cur & 3) == WF_WAIT_WAITING &&
	       atomic_compare_exchange_strong_explicit(&t->wait, &cur, (cur & ~3ull) | to,
	                                               memory_order_acq_rel,
	                                               memory_order_relaxed);
}

/*
 * Interrupters (cancel.c, signals.c) and a parking thread meet Dekker-style:
 * the interrupter publishes its request (cancel_req, sig_pending), then
 * reads the wait word; the parker publishes its wait, then reads the
 * requests (wf_park_intr_due).  One of the two sees the other, so an
 * interruptible wait never sleeps through a request.  Both sides need a
 * full barrier between their store and their load; the parker's would be a
 * fence on every interruptible park, so until the process first sends a
 * cancellation or a signal to a thread it is skipped, by wf_intr_used: the
 * first interrupter sets it and then runs a process-wide barrier
 * (wf_barrier_all, membarrier), after which every parker reads it as set.
 * A parker that read it clear did so before that barrier, so its wait word
 * was visible to the interrupter's load that follows the barrier.  Where
 * membarrier is refused, wf_intr_used is set from the start.
 */
_Atomic uint32_t wf_intr_used;

/* self has published an interruptible wait: is an interruption due? */
static bool wf_park_intr_due(struct wf_thread *self)
{
	uint64_t intr = (atomic_load_explicit(&self->wait, memory_order_relaxed) >>
	                 WF_WAIT_INTR_SHIFT) & 3;
	if (wf_likely(!intr) || !atomic_load_explicit(&wf_intr_used, memory_order_relaxed))
		return false;
	atomic_thread_fence(memory_order_seq_cst);
	return ((intr & WF_INTR_CANCEL) && atomic_load(&self->cancel_req)) ||
	       ((intr & WF_INTR_SIGNAL) && wf_sig_deliverable(self));
}

/* The part of every park after the deadline is set: switch away (unless
 * a claim already queued the caller on this very worker), then read which
 * claim ended the wait. */
static int wf_park_away(struct wf_worker *w, struct wf_thread *self, wf_spin_t *held)
{
	/* For observers only: the coarse clock costs a few ns, not a syscall. */
	atomic_store_explicit(&self->block_since, wf_coarse_ns(), memory_order_relaxed);
	self->state = WF_BLOCKED;
	WF_STAT_INC(w, parks);
	struct wf_thread *next = wf_pick_next(w);
	if (next == self) {
		/* Claimed before we got away and queued on this very worker: by
		 * popping it we took ourselves back.  Nothing to switch to. */
		if (self->deadline)
			wf_timer_cancel(self);
		self->state = WF_RUNNING;
		if (held)
			wf_spin_unlock(held);
	} else {
		if (wf_tracing())
			wf_trace_block(w, self);
		w = wf_switch(w, self, next, WF_PREV_SAVED, held);
	}
	atomic_store_explicit(&self->block_kind, WF_BLOCK_NONE, memory_order_relaxed);
	uint64_t st = atomic_load_explicit(&self->wait, memory_order_acquire) & WF_WAIT_KIND;
	if (st != WF_WAIT_TIMEDOUT)
		return 0;
	if (wf_unlikely(self->intr)) {
		/* The interrupter left the timer to us: it claimed without the
		 * queue lock a waker holds, so it may have claimed before we
		 * added ourselves to the heap (wf_interrupt). */
		self->intr = 0;
		if (self->deadline)
			wf_timer_cancel(self);
		return EINTR;
	}
	return ETIMEDOUT;
}

int wf_park(wf_spin_t *held, uint64_t deadline)
{
	struct wf_worker *w = wf_worker_self();
	if (wf_unlikely(!w))
		return wf_park_foreign(held, deadline);   /* no green thread */
	struct wf_thread *self = w->current;
	uint64_t now = deadline ? wf_clock_ns() : 0;  /* read once per timed park */
	if (deadline && deadline <= now && wf_claim(self, WF_WAIT_TIMEDOUT)) {
		if (held)
			wf_spin_unlock(held);
		return ETIMEDOUT;
	}
	if (wf_unlikely(wf_park_intr_due(self)) && wf_claim(self, WF_WAIT_TIMEDOUT)) {
		self->intr_sig = 0;   /* the requests say what ended it */
		if (held)
			wf_spin_unlock(held);
		return EINTR;
	}
	self->deadline = deadline;
	if (deadline)
		wf_timer_add(w, self, now);
	return wf_park_away(w, self, held);
}

void wf_park_prepare_until(struct wf_thread *self, uint64_t deadline)
{
	wf_park_prepare_until_intr(self, deadline, 0);
}

void wf_park_prepare_until_intr(struct wf_thread *self, uint64_t deadline, unsigned intr)
{
	wf_park_prepare_intr(self, intr);
	if (deadline) {
		/* Before anyone can claim: a waker cancels the timer it finds. */
		self->deadline = deadline;
		wf_timer_add(wf_worker_self(), self, wf_clock_ns());
	}
}

int wf_park_armed(void)
{
	struct wf_worker *w = wf_worker_self();
	struct wf_thread *self = w->current;
	/* The parker's half of the Dekker with interrupters (above). */
	if (wf_unlikely(wf_park_intr_due(self)) && wf_claim(self, WF_WAIT_TIMEDOUT)) {
		self->intr_sig = 0;
		if (self->deadline)
			wf_timer_cancel(self);
		return EINTR;
	}
	return wf_park_away(w, self, NULL);
}

bool wf_park_cancel(void)
{
	struct wf_thread *self = wf_current();
	if (!wf_claim(self, WF_WAIT_TIMEDOUT))
		return false;
	if (self->deadline)
		wf_timer_cancel(self);
	return true;
}

int wf_interrupted(void) { return wf_intr_finish(); }

void wf_cancel_point(void) { weft_testcancel(); }

bool wf_interrupt(struct wf_thread *t, unsigned intr, int sig)
{
	uint64_t cur = atomic_load(&t->wait);   /* seq_cst: after the request */
	if ((cur & WF_WAIT_KIND) != WF_WAIT_WAITING ||
	    !((cur >> WF_WAIT_INTR_SHIFT) & intr) ||
	    !atomic_compare_exchange_strong(&t->wait, &cur,
	                                    (cur & ~WF_WAIT_KIND) | WF_WAIT_TIMEDOUT))
		return false;
	/* The claim is ours: t stays parked until we queue it, and reads intr
	 * only after it runs again (ordered by the run queue's lock).  Its
	 * timer is t's to cancel: unlike a waker, which dequeued t under the
	 * lock that t holds until it has parked, we may have claimed the wait
	 * before t added itself to its worker's heap, and a cancel here would
	 * miss the entry t is about to add.  A timer that fires meanwhile finds
	 * the wait claimed and drops the entry. */
	t->intr = 1;
	t->intr_sig = (uint8_t)sig;
	struct wf_worker *w = wf_worker_self();
	if (!w)
		w = t->worker;
	WF_STAT_INC(w, wakeups);
	wf_make_woken(w, t, false);
	return true;
}

static bool wf_unpark_at(struct wf_thread *t, bool at_head)
{
	/* Read before the claim: once claimed, a foreign t may return, exit
	 * and have its TCB reused (foreign.c). */
	bool foreign = t->kind == WF_KIND_FOREIGN;
	if (!wf_claim(t, WF_WAIT_WOKEN))
		return false;
	if (wf_unlikely(foreign)) {
		wf_unpark_foreign(t);
		return true;
	}
	if (t->deadline)
		wf_timer_cancel(t);
	struct wf_worker *w = wf_worker_self();
	if (!w)
		w = t->worker;
	WF_STAT_INC(w, wakeups);
	wf_make_woken(w, t, at_head);
	return true;
}

bool wf_unpark_joiner(struct wf_thread *t)
{
	if (!wf_claim(t, WF_WAIT_WOKEN))
		return false;
	/* A join has no deadline: no timer to cancel. */
	struct wf_worker *w = wf_worker_self();
	WF_STAT_INC(w, wakeups);
	wf_make_woken_cont(w, t);
	return true;
}

bool wf_unpark(struct wf_thread *t) { return wf_unpark_at(t, false); }
bool wf_unpark_first(struct wf_thread *t) { return wf_unpark_at(t, true); }

/* --- for spinners ------------------------------------------------------- */

/* The TCB table is never freed (handle.c), so a handle that went stale
 * after the caller read it still names readable memory: the lookup says
 * NULL, or names a reused TCB whose on_cpu is merely a wrong hint. */
bool wf_handle_on_cpu(uintptr_t h)
{
	struct wf_thread *t = wf_tcb_lookup((weft_t)h);
	return t && atomic_load_explicit(&t->on_cpu, memory_order_relaxed);
}

/* Yield; false if there was nothing to switch to. */
static bool wf_yield_switch(void)
{
	struct wf_worker *w = wf_worker_self();
	if (wf_unlikely(!w))
		return false;   /* a foreign thread: no worker to give */
	struct wf_thread *self = w->current;
	if (wf_worker_retaken(w)) {
		wf_worker_hand_over(w, self);
		return true;
	}
	if (atomic_load_explicit(&w->next_deadline, memory_order_relaxed) != UINT64_MAX)
		wf_timer_run(w, wf_clock_ns());
	/* Queued before it is saved: whoever picks it waits for on_cpu == 0. */
	struct wf_thread *next = wf_rq_rotate(w, self);
	if (!next && !wf_gq_empty() && !wf_worker_main_only(w))
		next = wf_rq_preempt_rotate(w, self, false);
	if (!next)
		return false;
	WF_STAT_INC(w, yields);
	wf_switch(w, self, next, WF_PREV_SAVED, NULL);
	return true;
}

void wf_yield_internal(void)
{
	if (!wf_yield_switch() && wf_unlikely(!wf_worker_self()))
		syscall(SYS_sched_yield);   /* a foreign thread: give up the CPU */
}

#define WF_SPIN_KERNEL_YIELDS 16
#define WF_SPIN_NAP_NS 50000ull

void wf_spin_wait_long(unsigned *rounds)
{
	if (wf_yield_switch()) {
		*rounds = 0;
		return;
	}
	if (++*rounds <= WF_SPIN_KERNEL_YIELDS)
		syscall(SYS_sched_yield);   /* the kernel's, not a layer's: never fails */
	else
		wf_kt_nap(WF_SPIN_NAP_NS);
}

/* --- blocking sections and the poller, for src/io ------------------------ */

void wf_blocking_enter(void) { weft_blocking_begin(); }
void wf_blocking_leave(void) { weft_blocking_end(); }

int wf_poller_fd(void) { return wf_poller_fd_get(); }
void wf_poller_attach(wf_poll_handler h) { wf_poller_handler_set(h); }
void wf_poller_wait_count(int delta) { wf_poller_waiting(delta); }

/* --- preemption off and on ---------------------------------------------- */

void wf_preempt_off(void)
{
	struct wf_thread *t = wf_current();
	if (t)
		t->preempt_off++;
}

void wf_preempt_on(void)
{
	struct wf_thread *t = wf_current();
	if (t && t->preempt_off && --t->preempt_off == 0)
		wf_preempt_pending(t);  /* a tick deferred meanwhile is owed now */
}

void weft_preempt_disable(void)
{
	wf_runtime_ensure();
	wf_preempt_off();
}

void weft_preempt_enable(void) { wf_preempt_on(); }

/* --- bringing weft up ---------------------------------------------------- */

int wf_ensure_init(void) { return wf_runtime_ensure(); }

int wf_parallel(void)
{
	if (wf_likely(atomic_load_explicit(&wf_rt.state, memory_order_acquire) == WF_RT_READY))
		return wf_rt.nworkers;
	return wf_runtime_ensure() ? 1 : wf_rt.nworkers;
}

/* --- clocks ---------------------------------------------------------------- */

static inline uint64_t wf_clock_read(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t wf_clock_ns(void) { return wf_clock_read(CLOCK_MONOTONIC); }

uint64_t wf_coarse_ns(void) { return wf_clock_read(CLOCK_MONOTONIC_COARSE); }

int wf_timespec_to_ns(const struct timespec *ts, uint64_t *ns)
{
	if (!ts || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)
		return EINVAL;
	if (ts->tv_sec < 0) {
		*ns = 1;  /* long past */
		return 0;
	}
	if ((uint64_t)ts->tv_sec > UINT64_MAX / 1000000000ull - 1)
		*ns = UINT64_MAX - 1;
	else
		*ns = (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
	if (*ns == 0)
		*ns = 1;  /* 0 means "no deadline" internally */
	return 0;
}

int wf_park_atfork_child(void (*child)(void))
{
	return WF_LIBC(pthread_atfork)(NULL, NULL, child);
}
