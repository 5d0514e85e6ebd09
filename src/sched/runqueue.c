/*
 * runqueue.c — per-worker FIFO run queues, stealing, and waking idle
 * workers.
 *
 * Each worker has one FIFO under a spinlock.  The owner pushes at the tail
 * (new and woken threads) and pops at the head, and a yielding or preempted
 * thread swaps itself for the head in one step (wf_rq_rotate); a
 * creator that lets its new child run first goes back to the head so it
 * continues right after.  An idle worker steals from the head of the
 * longest other queue: the oldest, i.e. the next due, thread — except
 * that a lone thread just woken by a busy worker's thread is left to that
 * worker for a few microseconds (wf_steal_hold_off: it is usually a
 * hand-off in progress).
 *
 * Any ready thread may be taken by any worker, a preempted one included:
 * a thread resumed on another kernel thread has its TLS pointers rebased
 * first (migrate.c).
 *
 * Fair shares across workers.  Per-worker queues alone share each worker's
 * CPU among its own threads: 5 spinners on 2 workers would get 1/3 and 1/2
 * of a CPU for ever, since no worker is ever idle enough to steal.  So with
 * more than one worker a preempted thread goes to one global FIFO (Go's
 * global run queue does the same), and a tick's next thread comes from the
 * worker's own queue and the global one in turn (wf_rq_preempt_rotate):
 * CPU-bound threads then circulate through every worker, and each gets its
 * W/N share.  Yielding and woken threads stay on per-worker queues (a yield
 * must stay cheap, and a wake-up is best run where its data is warm); the
 * global queue sees one push and one pop per quantum per worker.
 *
 * Rejected: a Chase–Lev deque (the owner's end is LIFO, which breaks the
 * round-robin order preemption promises), and one global queue (every
 * switch would contend on one line across cores).
 *
 * Invariant: rq_len equals the number of threads linked in the queue and is
 * only changed under rq_lock; readers without the lock use it as a hint.
 */
#include "sched_internal.h"
#include "trace.h"
#include "../kthreads/kthread.h"

/* Polls (one pause each, about 25 ns here) a thief waits before it takes
 * the lone thread of a busy worker: a few microseconds, see wf_rq_steal. */
#define WF_STEAL_GRACE 120

/* The thief's view of the victim it is waiting on (per worker: only a
 * worker's idle context steals, on that worker's kernel thread). */
static __thread struct {
	const struct wf_worker *victim;
	const struct wf_thread *idle;   /* victim->idle, read once */
	uint64_t switches;              /* victim's switch count when first seen */
	unsigned polls;
} wf_steal_wait __attribute__((tls_model("initial-exec")));

static uint64_t wf_switch_count(const struct wf_worker *v)
{
	return atomic_load_explicit(&v->stats.v[WF_STAT_IDX(switches)], memory_order_relaxed);
}

/* Should the thief leave victim's queue (n threads) alone for now?  A lone
 * thread that a worker's running thread has just woken (rq_head_woken)
 * usually belongs to a hand-off whose waker is about to block (unlock then
 * wait, signal then wait): its own worker then runs the woken thread next,
 * on a warm cache, and stealing it would move the pair across CPUs at every
 * hand-off (a cross-CPU wake-up costs far more than the hand-off itself).
 * So such a thread is taken only once the victim has not switched during
 * WF_STEAL_GRACE polls: a waker that keeps running delays it by a few
 * microseconds, once (Go's runqgrab sleeps 3 us before it steals runnext,
 * for the same reason).  The victim's switch counter shares a cache line
 * with what the victim writes at every switch, so it is read only at the
 * start and at the end of the grace, not at every poll.  Only woken
 * threads are held back: a lone thread that yielded, was preempted or is
 * new has no waker about to give it the CPU, and holding it while its
 * worker keeps switching (two threads yielding in turns) would keep them
 * on one worker while this one sleeps.  Everything read here is a hint:
 * rq_len, rq_head_woken, the idle context's on_cpu and the counter are
 * atomics, and a stale value only makes the thief steal a few polls early
 * or late. */
static bool wf_steal_hold_off(const struct wf_worker *victim, uint32_t n)
{
	if (n != 1 || !atomic_load_explicit(&victim->rq_head_woken, memory_order_relaxed)) {
		wf_steal_wait.victim = NULL;   /* a backlog, or nobody's hand-off: steal */
		return false;
	}
	if (wf_steal_wait.victim != victim) {
		wf_steal_wait.victim = victim;
		wf_steal_wait.idle = victim->idle;
		wf_steal_wait.switches = wf_switch_count(victim);
		wf_steal_wait.polls = 0;
	}
	if (atomic_load_explicit(&wf_steal_wait.idle->on_cpu, memory_order_relaxed)) {
		wf_steal_wait.victim = NULL;   /* an idle victim: steal */
		return false;
	}
	if (++wf_steal_wait.polls < WF_STEAL_GRACE)
		return true;
	uint64_t sw = wf_switch_count(victim);
	if (sw != wf_steal_wait.switches) {
		/* It switched meanwhile: this lone thread may be a new one. */
		wf_steal_wait.switches = sw;
		wf_steal_wait.polls = 0;
		return true;
	}
	wf_steal_wait.victim = NULL;
	return false;
}

static void wf_rq_push_hinted(struct wf_worker *w, struct wf_thread *t, bool at_head,
                              bool woken)
{
	t->state = WF_READY;
	wf_spin_lock(&w->rq_lock);
	if (at_head || !w->rq_head)
		atomic_store_explicit(&w->rq_head_woken, woken, memory_order_relaxed);
	if (at_head) {
		t->next = w->rq_head;
		w->rq_head = t;
		if (!w->rq_tail)
			w->rq_tail = t;
	} else {
		t->next = NULL;
		if (w->rq_tail)
			w->rq_tail->next = t;
		else
			w->rq_head = t;
		w->rq_tail = t;
	}
	atomic_store_explicit(&w->rq_len, atomic_load_explicit(&w->rq_len,
	                      memory_order_relaxed) + 1, memory_order_relaxed);
	wf_spin_unlock(&w->rq_lock);
	/* w now has a competitor for its current thread: it needs ticks.  A
	 * push by w itself cannot race w's own tick handler; a push from
	 * another worker goes through wf_make_ready, which re-checks after a
	 * fence. */
	if (!atomic_load_explicit(&w->timer_armed, memory_order_relaxed))
		wf_preempt_note_ready(w);
}

void wf_rq_push(struct wf_worker *w, struct wf_thread *t, bool at_head)
{
	wf_rq_push_hinted(w, t, at_head, false);
}

static struct wf_thread *wf_rq_pop_locked(struct wf_worker *w)
{
	struct wf_thread *t = w->rq_head;
	if (t) {
		w->rq_head = t->next;
		if (!w->rq_head)
			w->rq_tail = NULL;
		t->next = NULL;
		atomic_store_explicit(&w->rq_len, atomic_load_explicit(&w->rq_len,
		                      memory_order_relaxed) - 1, memory_order_relaxed);
		/* The new head, if any, was queued behind: not a fresh wake-up. */
		atomic_store_explicit(&w->rq_head_woken, false, memory_order_relaxed);
	}
	return t;
}

struct wf_thread *wf_rq_pop(struct wf_worker *w)
{
	if (!atomic_load_explicit(&w->rq_len, memory_order_relaxed))
		return NULL;
	wf_spin_lock(&w->rq_lock);
	struct wf_thread *t = wf_rq_pop_locked(w);
	wf_spin_unlock(&w->rq_lock);
	return t;
}

/* Take the head for the running thread t and queue t at the tail, in one
 * critical section; NULL (and t not queued) when the queue is empty.  This
 * is how a yield and a preemption give up the CPU.  Invariant: rq_len
 * never reads 0 on the way, so a thief's last look before it sleeps
 * (wf_idle_sleep) cannot fall between the two halves.  As a pop followed by
 * a push it could: the thief saw an empty queue, went to sleep, and nothing
 * woke it again, because a push by the queue's own worker into a queue it
 * has just emptied does not kick (a yield must stay cheap) — two threads
 * yielding in turns then shared one worker while the other slept. */
struct wf_thread *wf_rq_rotate(struct wf_worker *w, struct wf_thread *t)
{
	if (!atomic_load_explicit(&w->rq_len, memory_order_relaxed))
		return NULL;
	wf_spin_lock(&w->rq_lock);
	struct wf_thread *next = w->rq_head;
	if (next) {
		t->state = WF_READY;
		t->next = NULL;
		w->rq_tail->next = t;
		w->rq_tail = t;
		w->rq_head = next->next;
		next->next = NULL;
		/* The new head was queued behind: not a fresh wake-up. */
		atomic_store_explicit(&w->rq_head_woken, false, memory_order_relaxed);
	}
	wf_spin_unlock(&w->rq_lock);
	/* As after a push (wf_rq_push_hinted): t is now a competitor. */
	if (next && !atomic_load_explicit(&w->timer_armed, memory_order_relaxed))
		wf_preempt_note_ready(w);
	return next;
}

struct wf_thread *wf_rq_steal(struct wf_worker *thief)
{
	struct wf_worker *victim = NULL;
	uint32_t best = 0;
	for (int i = 0, n = wf_nkthreads(); i < n; i++) {
		struct wf_worker *v = &wf_rt.workers[i];
		uint32_t n = atomic_load_explicit(&v->rq_len, memory_order_relaxed);
		if (v != thief && n > best && !wf_worker_main_only(v)) {
			best = n;
			victim = v;
		}
	}
	if (!victim || wf_steal_hold_off(victim, best) || !wf_spin_trylock(&victim->rq_lock))
		return NULL;
	struct wf_thread *t = wf_rq_pop_locked(victim);   /* the oldest */
	wf_spin_unlock(&victim->rq_lock);
	if (t && wf_tracing())
		wf_trace_steal(thief, t, victim);
	return t;
}

/* --- the global queue ---------------------------------------------------- */

void wf_gq_push(struct wf_thread *t)
{
	t->state = WF_READY;
	t->next = NULL;
	wf_spin_lock(&wf_rt.gq_lock);
	if (wf_rt.gq_tail)
		wf_rt.gq_tail->next = t;
	else
		wf_rt.gq_head = t;
	wf_rt.gq_tail = t;
	uint32_t n = atomic_load_explicit(&wf_rt.gq_len, memory_order_relaxed);
	atomic_store_explicit(&wf_rt.gq_len, n + 1, memory_order_relaxed);
	wf_spin_unlock(&wf_rt.gq_lock);
	/* Every push here is a producer's: wake a sleeping worker (its seq_cst
	 * fence orders the push before the look at the sleepers, as in
	 * wf_ready), and give every busy worker a tick, since the thread
	 * competes for all of them.  The second only when the queue was empty:
	 * otherwise the workers were already told. */
	wf_kick_idle();
	if (n == 0)
		for (int i = 0, n = wf_nkthreads(); i < n; i++)
			if (!atomic_load_explicit(&wf_rt.workers[i].timer_armed, memory_order_relaxed))
				wf_preempt_note_ready(&wf_rt.workers[i]);
}

struct wf_thread *wf_gq_pop(void)
{
	if (wf_gq_empty())
		return NULL;
	wf_spin_lock(&wf_rt.gq_lock);
	struct wf_thread *t = wf_rt.gq_head;
	if (t) {
		wf_rt.gq_head = t->next;
		if (!wf_rt.gq_head)
			wf_rt.gq_tail = NULL;
		t->next = NULL;
		atomic_store_explicit(&wf_rt.gq_len, atomic_load_explicit(&wf_rt.gq_len,
		                      memory_order_relaxed) - 1, memory_order_relaxed);
	}
	wf_spin_unlock(&wf_rt.gq_lock);
	return t;
}

/* Move everything queued on w to the global queue: w was retaken
 * (monitor.c, standby.c), and a thread left in its queue would only be
 * stolen by an idle worker, never compete with a busy one's for ticks.
 * Any thread may call. */
void wf_rq_drain_global(struct wf_worker *w)
{
	struct wf_thread *t;
	while ((t = wf_rq_pop(w)))
		wf_gq_push(t);
}

/* t (running on w, not yet saved) gives up the CPU at a tick.  The next
 * thread comes from w's own queue and the global one in turn, so that
 * neither waits for the other to drain, but from w's own first when asked
 * (a sleeper whose deadline the tick just met waits at its head); t goes to the global tail only if
 * there is a next thread (it keeps running otherwise).  Between the pop
 * and the push a thief may find every queue empty and go to sleep: the
 * push kicks it (wf_gq_push). */
struct wf_thread *wf_rq_preempt_rotate(struct wf_worker *w, struct wf_thread *t, bool local_first)
{
	bool global_first = !local_first && (++w->preempt_turn & 1) && !wf_gq_empty();
	struct wf_thread *next = global_first ? wf_gq_pop() : wf_rq_pop(w);
	if (!next)
		next = global_first ? wf_rq_pop(w) : wf_gq_pop();
	if (next)
		wf_gq_push(t);
	return next;
}

bool wf_any_ready(void)
{
	if (!wf_gq_empty())
		return true;
	for (int i = 0, n = wf_nkthreads(); i < n; i++)
		if (atomic_load(&wf_rt.workers[i].rq_len) &&
		    !wf_worker_main_only(&wf_rt.workers[i]))
			return true;
	return false;
}

/* Wake v, which this caller claimed (cleared its `sleeping`), the way it
 * sleeps.  in_poller is read after the claim: v published it before
 * `sleeping`, and a value v cleared since means v is awake already, when
 * the futex wake below only bumps a word nobody waits on. */
static void wf_idle_wake(struct wf_worker *v)
{
	atomic_fetch_sub(&wf_rt.nsleeping, 1);
	if (atomic_load_explicit(&v->in_poller, memory_order_relaxed)) {
		wf_poller_kick();
		return;
	}
	atomic_fetch_add(&v->futex_word, 1);
	wf_futex_wake(&v->futex_word, 1);
}

/* Wake one sleeping worker, if any (the producer's half of the Dekker
 * argument in dispatch.c, wf_idle_sleep).  A worker asleep on its futex is
 * chosen before the one in the poller, which keeps watching descriptors
 * while the other takes the work. */
void wf_kick_idle(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&wf_rt.nsleeping, memory_order_relaxed))
		return;
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0, n = wf_nkthreads(); i < n; i++) {
			struct wf_worker *v = &wf_rt.workers[i];
			if (!atomic_load_explicit(&v->sleeping, memory_order_relaxed) ||
			    (!pass && atomic_load_explicit(&v->in_poller, memory_order_relaxed)))
				continue;
			if (atomic_exchange(&v->sleeping, 0)) {
				wf_idle_wake(v);
				return;
			}
		}
	}
}

/* Make t runnable on w's queue and make sure some worker will run it. */
static void wf_ready(struct wf_worker *w, struct wf_thread *t, bool at_head, bool woken)
{
	/* main and the kernel thread that runs only main (main_kthread.c). */
	w = wf_main_kthread_route(w, t);
	/* Before the push: once queued, t may run and park again. */
	if (wf_tracing())
		wf_trace_wake(t);
	wf_rq_push_hinted(w, t, at_head, woken);
	if (wf_worker_main_only(w)) {
		wf_main_kthread_kick(w);
		return;
	}
	/* The caller is the only worker and pushed on its own queue: no other
	 * worker can be asleep, and rq_push has already noted the competitor
	 * (a push by w itself cannot race w's tick handler), so neither the
	 * fence nor the kick has anything to do.  A push from another kernel
	 * thread (not a worker) still takes the full path. */
	if (wf_rt.nworkers == 1 && w == wf_worker_self())
		return;
	wf_kick_idle();  /* its seq_cst fence orders the push before ... */
	if (!atomic_load_explicit(&w->timer_armed, memory_order_relaxed))
		wf_preempt_note_ready(w);  /* ... this re-check (see preempt.c) */
}

void wf_make_ready(struct wf_worker *w, struct wf_thread *t, bool at_head)
{
	wf_ready(w, t, at_head, false);
}

void wf_make_woken(struct wf_worker *w, struct wf_thread *t, bool at_head)
{
	wf_ready(w, t, at_head, true);
}
