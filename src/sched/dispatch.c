/*
 * dispatch.c — switching between green threads on one worker.
 *
 * Design.  A switch goes straight from the running thread to the next one
 * (one wf_ctx_switch, ~10 ns) rather than through a scheduler context: the
 * scheduler context ("idle") is entered only when a worker has nothing to
 * run.  What must happen to the thread being left — mark it saved, release
 * the lock it parked under, free its stack once it is finished — cannot be
 * done by that thread (it is still on its stack) nor before the switch (it
 * is not saved yet), so it is recorded in the worker (prev, prev_action) and
 * done by whichever context runs next on that worker, first thing after the
 * switch returns: wf_after_switch.  This is Linux's finish_task_switch.
 *
 * Invariant: between wf_ctx_switch saving prev's stack pointer and
 * wf_after_switch running on the same worker, nothing else runs there (weft
 * code is never preempted), so prev's context is complete before any of the
 * actions publish it.
 *
 * Rejected: switching through the scheduler context at every switch (twice
 * the cost of a yield), and ucontext/swapcontext (a sigprocmask system call
 * per switch, ~1 µs here).
 */
#include <errno.h>
#include "sched_internal.h"
#include "cxx_state.h"
#include "trace.h"
#include "../kthreads/kthread.h"

#ifdef WF_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* How long an idle worker polls for work before sleeping: a ping-pong
 * between workers then rarely pays for a futex wake-up.  Between two
 * looks it pauses 1, 2, 4 ... up to WF_IDLE_GAP_MAX times: each look at
 * another worker's queue takes that cache line from its owner, which then
 * misses on it at its next push or pop (docs/design.md, "Idle"). */
#define WF_IDLE_SPIN_NS 50000
#define WF_IDLE_GAP_MAX 16

static inline void wf_asan_start(struct wf_thread *prev, struct wf_thread *next, int action)
{
#ifdef WF_ASAN
	__sanitizer_start_switch_fiber(action == WF_PREV_DONE ? NULL : &prev->asan_fake,
	                               next->asan_bottom, next->asan_size);
#else
	(void)prev; (void)next; (void)action;
#endif
}

static inline void wf_asan_finish(struct wf_thread *self, struct wf_worker *w)
{
#ifdef WF_ASAN
	const void *bottom;
	size_t size;
	__sanitizer_finish_switch_fiber(self ? self->asan_fake : NULL, &bottom, &size);
	/* Contexts running on stacks weft did not allocate (main, worker
	 * kernel stacks) learn their bounds the first time they are left. */
	struct wf_thread *p = w->prev;
	if (p && !p->asan_bottom) {
		p->asan_bottom = bottom;
		p->asan_size = size;
	}
#else
	(void)self; (void)w;
#endif
}

void wf_after_switch(struct wf_worker *w)
{
	struct wf_thread *p = w->prev;
	int action = w->prev_action;
	wf_spin_t *l = w->prev_unlock;
	w->prev = NULL;
	w->prev_unlock = NULL;
	w->prev_action = WF_PREV_NONE;
	if (!p)
		return;
	switch (action) {
	case WF_PREV_SAVED:
		/* p's registers are on its stack: it may now be resumed elsewhere. */
		atomic_store_explicit(&p->on_cpu, 0, memory_order_release);
		if (l)
			wf_spin_unlock(l);
		break;
	case WF_PREV_DONE:
		atomic_store_explicit(&p->on_cpu, 0, memory_order_release);
		if (wf_tracing())
			wf_trace_waker(w, p);  /* its joiner is woken on its behalf */
		wf_thread_finished(w, p);
		if (wf_tracing())
			wf_trace_waker(w, NULL);
		break;
	default:
		atomic_store_explicit(&p->on_cpu, 0, memory_order_release);
		break;
	}
}

struct wf_worker *wf_switch(struct wf_worker *w, struct wf_thread *prev,
                            struct wf_thread *next, int action, wf_spin_t *unlock_after)
{
	/* next may have been queued or woken while still switching away on
	 * another worker: wait until its context is saved.  The wait is short:
	 * that worker is inside weft, between two instructions of a switch —
	 * unless the kernel preempted that worker there, hence the backoff
	 * (cpu.h). */
	if (wf_unlikely(atomic_load_explicit(&next->on_cpu, memory_order_acquire))) {
		unsigned spins = 0;
		while (atomic_load_explicit(&next->on_cpu, memory_order_acquire))
			wf_spin_backoff(&spins);
	}
	atomic_store_explicit(&next->on_cpu, 1, memory_order_relaxed);
	/* Saved (on_cpu was 0) and last run elsewhere: rebase its TLS
	 * pointers into this worker's span (migrate.c). */
	if (wf_unlikely(next->worker != w) && next->worker) {
		wf_migrate(next, next->worker, w);
		WF_STAT_INC(w, migrations);
	}
	prev->saved_errno = *w->errno_loc;
	wf_cxx_save(w, prev);     /* the C++ runtime's words, like errno */
	w->prev = prev;
	w->prev_action = (uint8_t)action;
	w->prev_unlock = unlock_after;
	w->current = next;
	next->worker = w;
	next->state = WF_RUNNING;
	/* Observers (weft_dump) tell by this count whether a thread ran while
	 * they read its stack; relaxed: it only has to change. */
	atomic_store_explicit(&next->runs, atomic_load_explicit(&next->runs,
	                      memory_order_relaxed) + 1, memory_order_relaxed);
	if (next->kind != WF_KIND_IDLE)
		WF_STAT_INC(w, switches);
	/* Still on w: the trace record goes to the worker doing the switch. */
	if (wf_tracing())
		wf_trace_switch(w, prev, next, action);

	wf_asan_start(prev, next, action);
	struct wf_worker *nw = wf_ctx_switch(&prev->sp, next->sp, w);
	/* Resumed: possibly on another worker.  Everything below uses nw. */
	wf_asan_finish(prev, nw);
	wf_after_switch(nw);
	*nw->errno_loc = prev->saved_errno;
	wf_cxx_restore(nw, prev);
	/* Last: the signal hook may run the thread's handlers or act on its
	 * asynchronous cancellation (unwinding it), which must find its own
	 * errno and C++ state. */
	wf_preempt_resumed(nw, prev);
	return nw;
}

/* The first code of every new context (thread or scheduler): finish the
 * switch that started it, exactly as a resumed wf_switch does. */
void wf_context_entered(struct wf_worker *w, struct wf_thread *self)
{
	wf_asan_finish(NULL, w);
	wf_after_switch(w);
	wf_preempt_resumed(w, self);
}

/* First code of a new green thread. */
void wf_thread_entry(void *transfer, void *arg)
{
	struct wf_worker *w = transfer;
	struct wf_thread *t = arg;
	wf_context_entered(w, t);
	*w->errno_loc = 0;
	wf_cxx_fresh(w);
	wf_thread_exit(t->start(t->arg));
}

/* The next thread for w when the current one stops: its run queue, else its
 * scheduler context (which steals or sleeps). */
struct wf_thread *wf_pick_next(struct wf_worker *w)
{
	/* A retaken worker runs nothing more: its idle context stands by. */
	struct wf_thread *t = wf_worker_retaken(w) ? NULL : wf_rq_pop(w);
	return t ? t : w->idle;
}

static struct wf_thread *wf_find_work(struct wf_worker *w, uint64_t now)
{
	if (atomic_load_explicit(&w->next_deadline, memory_order_relaxed) <= now)
		wf_timer_run(w, now);
	struct wf_thread *t = wf_rq_pop(w);
	if (!t)
		t = wf_gq_pop(w);
	if (!t && (t = wf_rq_steal(w, now)))
		WF_STAT_INC(w, steals);
	return t;
}

/* May an idle worker spin?  Only on a CPU nobody else needs: spinners and
 * busy workers together no more than the CPUs of the affinity mask.  With
 * more workers than CPUs (WEFT_WORKERS=8 on 2 CPUs) a spinner took the
 * CPU of a busy worker, perhaps of the very one whose queue it watched.
 * The counts are read without a lock: a hint. */
static bool wf_idle_may_spin(void)
{
	/* Awake: the caller, the spinners and the busy workers. */
	int awake = atomic_load_explicit(&wf_rt.nactive, memory_order_relaxed) -
	            (int)atomic_load_explicit(&wf_rt.nsleeping, memory_order_relaxed);
	return awake <= wf_rt.cfg.cpus;
}

/* Poll for work for up to WF_IDLE_SPIN_NS, further and further apart; stop
 * early when descriptors become waited on and nobody watches them (the
 * poller wants a sleeper: spinning on would delay their wake-ups). */
static struct wf_thread *wf_idle_spin(struct wf_worker *w, uint64_t from)
{
	uint64_t now = from;
	for (unsigned gap = 1; now - from < WF_IDLE_SPIN_NS && !wf_worker_retaken(w) &&
	                       !wf_poller_wanted();) {
		for (unsigned k = 0; k < gap; k++)
			wf_cpu_relax();
		if (gap < WF_IDLE_GAP_MAX)
			gap *= 2;
		if (wf_unlikely(wf_sig_waiting()))
			wf_sig_distribute();   /* as in wf_idle_main */
		now = wf_clock_ns();
		struct wf_thread *t = wf_find_work(w, now);
		if (t)
			return t;
	}
	return NULL;
}

/* Sleep until kicked or until the earliest local deadline: on the worker's
 * futex, or, when threads wait on descriptors and no other worker watches
 * them, in the poller (poller.c), where readiness wakes it too.
 *
 * Lost wake-ups are excluded Dekker-style: a sleeper publishes how it
 * sleeps (`in_poller`), then `sleeping`, and counts itself in nsleeping
 * (all seq_cst) before its last look at the queues; a producer pushes,
 * then (seq_cst fence) reads nsleeping and claims a sleeper by clearing
 * its `sleeping` (wf_kick_idle).  One of the two sees the other.  The
 * claimed sleeper is woken through the channel it sleeps on: its futex
 * (the word it read before publishing has changed, so a late futex_wait
 * returns at once) or the poller's eventfd (level-triggered: a late
 * epoll_pwait2 returns at once).  A poller that wakes for readiness clears
 * its own `sleeping` before it hands the events on, so that the threads it
 * wakes kick other sleepers, not itself. */
static void wf_idle_sleep(struct wf_worker *w)
{
	bool poll = wf_poller_take(w);
	uint32_t v = atomic_load(&w->futex_word);
	atomic_store(&w->in_poller, poll);
	atomic_store(&w->sleeping, 1);
	atomic_fetch_add(&wf_rt.nsleeping, 1);
	uint64_t dl = atomic_load(&w->next_deadline);
	int events = 0;
	/* A sleeper that did not take the poller looks again once it counts
	 * in nsleeping: whoever let go of the set meanwhile (the monitor)
	 * reads nsleeping after that (wf_poller_monitor), so one of the two
	 * sees the other.  Without this look, the set's holder could let go
	 * between our first look and our count, see nobody asleep, and leave
	 * the descriptors unwatched: a thread waiting on one slept forever. */
	atomic_thread_fence(memory_order_seq_cst);   /* the count before the look */
	bool poll_missed = !poll && wf_poller_wanted();
	if (!poll_missed && !wf_any_ready() && (dl == UINT64_MAX || dl > wf_clock_ns())) {
		WF_STAT_INC(w, idle_sleeps);
		if (poll) {
			events = wf_poller_wait(w, dl);
		} else {
			struct timespec ts, *tsp = NULL;
			if (dl != UINT64_MAX) {
				ts.tv_sec = (time_t)(dl / 1000000000ull);
				ts.tv_nsec = (long)(dl % 1000000000ull);
				tsp = &ts;
			}
			wf_futex_wait(&w->futex_word, v, tsp);
		}
	}
	/* Whoever clears `sleeping` owns the decrement of nsleeping. */
	if (atomic_exchange(&w->sleeping, 0))
		atomic_fetch_sub(&wf_rt.nsleeping, 1);
	atomic_store_explicit(&w->in_poller, 0, memory_order_relaxed);
	if (poll)
		wf_poller_done(w, events);
	wf_monitor_worker_awake();
}

_Noreturn void wf_idle_main(struct wf_worker *w)
{
	struct wf_thread *self = w->idle;
	uint64_t idle_from = 0;   /* when the worker found nothing to run; 0 = busy */
	for (;;) {
		struct wf_thread *t = NULL;
		if (wf_worker_retaken(w))
			wf_worker_standby(w);
		/* A process signal this idle worker (or a thread that blocks
		 * it) took, for a green thread (signals.c). */
		if (wf_unlikely(wf_sig_waiting()))
			wf_sig_distribute();
		uint64_t now = wf_clock_ns();
		if (!wf_worker_retaken(w) && !(t = wf_find_work(w, now))) {
			if (!idle_from)
				idle_from = now;
			/* Descriptors waited on and nobody watching them: one
			 * look for work, then straight to the poller (spinning
			 * would delay their wake-ups by the length of the spin). */
			if (!wf_poller_wanted() && wf_idle_may_spin()) {
				atomic_fetch_add(&wf_rt.nspinning, 1);
				t = wf_idle_spin(w, now);
				atomic_fetch_sub(&wf_rt.nspinning, 1);
			}
		}
		if (t) {
			if (idle_from) {
				WF_STAT_ADD(w, idle_ns, wf_clock_ns() - idle_from);
				idle_from = 0;
			}
			/* Only this worker ever resumes its idle context. */
			w = wf_switch(w, self, t, WF_PREV_NONE, NULL);
			continue;
		}
		if (!wf_worker_retaken(w)) {
			/* Nothing to run for a while: what this worker keeps
			 * warm is better off where a busy worker can take it,
			 * and where the scavenger can give it back. */
			wf_worker_caches_flush(w);
			/* A wake-up for new work (wf_kick_for_work) may be for
			 * this worker, or found nobody: either way the next
			 * create may wake another.  Before the last look at the
			 * queues in wf_idle_sleep (seq_cst), and again after. */
			atomic_store(&wf_rt.waking, 0);
			wf_idle_sleep(w);
			atomic_store(&wf_rt.waking, 0);
		}
	}
}
