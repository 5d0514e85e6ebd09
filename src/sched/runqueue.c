/*
 * runqueue.c — per-worker run queues, stealing, and waking idle workers.
 *
 * Each worker has, under one spinlock, a FIFO and a stack of
 * continuations.  The owner pushes new, woken, yielding and preempted
 * threads at the FIFO's tail (a few at its head: a woken mutex waiter,
 * an expired sleeper), and a yielding or preempted thread swaps itself
 * for the next one in one step (wf_rq_rotate).  A creator that lets its
 * new child run first goes on top of the continuation stack, and so does
 * a joiner woken by a child that finished here.  When its thread stops,
 * the owner takes the newest continuation first (depth-first: the parent
 * of what just stopped, on a warm stack), then the FIFO's head.
 *
 * An idle worker steals from the longest other queue: the oldest
 * continuation, the piece nearest the root of a fork-join tree (Cilk's
 * rule: the thief takes big pieces, the owner keeps the young ones), or
 * else the oldest half of the FIFO, up to WF_STEAL_BATCH.  A lone thread
 * just woken by a busy worker's thread, and a lone continuation, are left
 * to their worker for a few microseconds (wf_steal_hold_off: usually a
 * hand-off in progress, or a child about to finish).
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
 * Rejected: a Chase–Lev deque alone (the owner's end is LIFO, which
 * breaks the round-robin order preemption promises: hence a FIFO beside
 * the continuation stack); thieves taking the newest continuation (the
 * smallest piece, which then waited in join for the child left behind:
 * ~3,000 steals per skynet run on 2 workers, no faster than 1); and one
 * global queue (every switch would contend on one line across cores).
 *
 * Invariant: rq_len equals the number of threads linked in the FIFO and
 * the continuation stack, cq_len those of the stack; both change only
 * under rq_lock; readers without the lock use them as hints.
 */
#include "sched_internal.h"
#include "trace.h"
#include "../kthreads/kthread.h"

/* How long a thief waits before it takes the lone thread of a busy worker
 * that keeps switching: a few microseconds, see wf_steal_hold_off. */
#define WF_STEAL_GRACE_NS 3000

/* The thief's view of the victim it is waiting on (per worker: only a
 * worker's idle context steals, on that worker's kernel thread). */
static __thread struct {
	const struct wf_worker *victim;
	const struct wf_thread *idle;   /* victim->idle, read once */
	uint64_t switches;              /* victim's switch count when first seen */
	uint64_t since;                 /* when (wf_clock_ns) */
} wf_steal_wait __attribute__((tls_model("initial-exec")));

static uint64_t wf_switch_count(const struct wf_worker *v)
{
	return atomic_load_explicit(&v->stats.v[WF_STAT_IDX(switches)], memory_order_relaxed);
}

/* Should the thief leave victim's queue (n threads) alone for now?  Two
 * kinds of lone thread are usually about to run on their own worker:
 *  - one that a worker's running thread has just woken (rq_head_woken):
 *    it usually belongs to a hand-off whose waker is about to block
 *    (unlock then wait, signal then wait), and its own worker then runs
 *    it next on a warm cache; stealing it would move the pair across CPUs
 *    at every hand-off (a cross-CPU wake-up costs far more than the
 *    hand-off itself);
 *  - a lone continuation: a creator whose child runs now and usually
 *    finishes within nanoseconds (create then join); stealing it moved the
 *    creator to the other worker at nearly every create, to wait there in
 *    join for the child left behind.
 * So such a thread is taken only once the victim has not switched during
 * WF_STEAL_GRACE_NS: a waker or a child that keeps running delays it by
 * a few microseconds, once (Go's runqgrab sleeps 3 us before it steals
 * runnext, for the same reason).  The victim's switch counter shares a
 * cache line with what the victim writes at every switch, so it is read
 * only at the start and at the end of the grace, not at every poll.  Other
 * lone threads are not held back: one that yielded, was preempted or is
 * new has nobody about to give it the CPU, and holding it while its
 * worker keeps switching (two threads yielding in turns) would keep them
 * on one worker while this one sleeps.  Everything read here is a hint:
 * rq_len, rq_head_woken, cq_len, the idle context's on_cpu and the counter
 * are atomics, and a stale value only makes the thief steal a few polls
 * early or late. */
static bool wf_steal_hold_off(const struct wf_worker *victim, uint32_t n, uint64_t now)
{
	if (n != 1 || !(atomic_load_explicit(&victim->rq_head_woken, memory_order_relaxed) ||
	                atomic_load_explicit(&victim->cq_len, memory_order_relaxed))) {
		wf_steal_wait.victim = NULL;   /* a backlog, or nobody's hand-off: steal */
		return false;
	}
	if (wf_steal_wait.victim != victim) {
		wf_steal_wait.victim = victim;
		wf_steal_wait.idle = victim->idle;
		wf_steal_wait.switches = wf_switch_count(victim);
		wf_steal_wait.since = now;
	}
	if (atomic_load_explicit(&wf_steal_wait.idle->on_cpu, memory_order_relaxed)) {
		wf_steal_wait.victim = NULL;   /* an idle victim: steal */
		return false;
	}
	if (now - wf_steal_wait.since < WF_STEAL_GRACE_NS)
		return true;
	uint64_t sw = wf_switch_count(victim);
	if (sw != wf_steal_wait.switches) {
		/* It switched meanwhile: this lone thread may be a new one. */
		wf_steal_wait.switches = sw;
		wf_steal_wait.since = now;
		return true;
	}
	wf_steal_wait.victim = NULL;
	return false;
}

/* rq_len and cq_len change only under rq_lock (single writer at a time):
 * plain load + store, atomic only for the readers without the lock. */
static inline void wf_len_add(_Atomic uint32_t *c, int d)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint32_t)d,
	                      memory_order_relaxed);
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
	wf_len_add(&w->rq_len, 1);
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

void wf_rq_push_cont(struct wf_worker *w, struct wf_thread *t)
{
	t->state = WF_READY;
	t->prev = NULL;
	wf_spin_lock(&w->rq_lock);
	t->next = w->cq_top;
	if (w->cq_top)
		w->cq_top->prev = t;
	else
		w->cq_bot = t;
	w->cq_top = t;
	wf_len_add(&w->cq_len, 1);
	wf_len_add(&w->rq_len, 1);
	wf_spin_unlock(&w->rq_lock);
	if (!atomic_load_explicit(&w->timer_armed, memory_order_relaxed))
		wf_preempt_note_ready(w);
}

/* The FIFO's head, unlinked, or NULL.  rq_lock held. */
static struct wf_thread *wf_fifo_take_locked(struct wf_worker *w)
{
	struct wf_thread *t = w->rq_head;
	if (t) {
		w->rq_head = t->next;
		if (!w->rq_head)
			w->rq_tail = NULL;
		t->next = NULL;
		wf_len_add(&w->rq_len, -1);
		/* The new head, if any, was queued behind: not a fresh wake-up. */
		atomic_store_explicit(&w->rq_head_woken, false, memory_order_relaxed);
	}
	return t;
}

/* The newest (top) or the oldest (bottom) continuation, unlinked, or NULL.
 * rq_lock held. */
static struct wf_thread *wf_cq_take_locked(struct wf_worker *w, bool oldest)
{
	struct wf_thread *t = oldest ? w->cq_bot : w->cq_top;
	if (!t)
		return NULL;
	if (oldest) {
		w->cq_bot = t->prev;
		if (w->cq_bot)
			w->cq_bot->next = NULL;
		else
			w->cq_top = NULL;
	} else {
		w->cq_top = t->next;
		if (w->cq_top)
			w->cq_top->prev = NULL;
		else
			w->cq_bot = NULL;
	}
	t->next = t->prev = NULL;
	wf_len_add(&w->cq_len, -1);
	wf_len_add(&w->rq_len, -1);
	return t;
}

/* One ready thread of w: the FIFO's head first, or the newest
 * continuation first.  rq_lock held. */
static struct wf_thread *wf_rq_take_locked(struct wf_worker *w, bool fifo_first)
{
	struct wf_thread *t = fifo_first ? wf_fifo_take_locked(w) : wf_cq_take_locked(w, false);
	if (!t)
		t = fifo_first ? wf_cq_take_locked(w, false) : wf_fifo_take_locked(w);
	return t;
}

static struct wf_thread *wf_rq_take(struct wf_worker *w, bool fifo_first)
{
	if (!atomic_load_explicit(&w->rq_len, memory_order_relaxed))
		return NULL;
	wf_spin_lock(&w->rq_lock);
	struct wf_thread *t = wf_rq_take_locked(w, fifo_first);
	wf_spin_unlock(&w->rq_lock);
	return t;
}

struct wf_thread *wf_rq_pop(struct wf_worker *w)
{
	bool fifo_first = w->fifo_turn;
	w->fifo_turn = false;
	return wf_rq_take(w, fifo_first);
}

/* Take the next thread (as wf_rq_pop would) for the running thread t and
 * queue t at the FIFO's tail, in one critical section; NULL (and t not
 * queued) when nothing is queued.  This is how a yield and a preemption on
 * one worker give up the CPU.  A continuation goes first here too: its
 * creator has waited since its child started, and a creator left behind
 * yielding threads would wait until they all finished.  Invariant: rq_len never reads 0 on the way, so a thief's last
 * look before it sleeps (wf_idle_sleep) cannot fall between the two
 * halves.  As a pop followed by a push it could: the thief saw an empty
 * queue, went to sleep, and nothing woke it again, because a push by the
 * queue's own worker into a queue it has just emptied does not kick (a
 * yield must stay cheap) — two threads yielding in turns then shared one
 * worker while the other slept. */
struct wf_thread *wf_rq_rotate(struct wf_worker *w, struct wf_thread *t)
{
	if (!atomic_load_explicit(&w->rq_len, memory_order_relaxed))
		return NULL;
	bool fifo_first = w->fifo_turn;
	w->fifo_turn = false;
	wf_spin_lock(&w->rq_lock);
	/* t is counted before next is taken, so that rq_len goes n, n + 1, n
	 * and never shows 0 to a reader without the lock. */
	wf_len_add(&w->rq_len, 1);
	struct wf_thread *next = wf_rq_take_locked(w, fifo_first);
	if (next) {
		t->state = WF_READY;
		t->next = NULL;
		if (w->rq_tail)
			w->rq_tail->next = t;
		else
			w->rq_head = t;
		w->rq_tail = t;
		/* A new head was queued behind: not a fresh wake-up. */
		atomic_store_explicit(&w->rq_head_woken, false, memory_order_relaxed);
	} else {
		wf_len_add(&w->rq_len, -1);   /* a thief emptied it: t stays out */
	}
	wf_spin_unlock(&w->rq_lock);
	/* As after a push (wf_rq_push_hinted): t is now a competitor. */
	if (next && !atomic_load_explicit(&w->timer_armed, memory_order_relaxed))
		wf_preempt_note_ready(w);
	return next;
}

/* Threads a thief takes from a victim's FIFO in one steal: half of it, up
 * to this many (the first runs, the rest go to the thief's own FIFO). */
#define WF_STEAL_BATCH 32

struct wf_thread *wf_rq_steal(struct wf_worker *thief, uint64_t now)
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
	if (!victim || wf_steal_hold_off(victim, best, now) ||
	    !wf_spin_trylock(&victim->rq_lock))
		return NULL;
	/* The biggest piece: the oldest continuation, the one nearest the root
	 * of a fork-join tree, whose owner keeps the young ones (and their
	 * warm stacks).  With no continuation, the FIFO's oldest threads. */
	struct wf_thread *t = wf_cq_take_locked(victim, true), *more = NULL, *last = NULL;
	unsigned nmore = 0;
	if (!t && (t = wf_fifo_take_locked(victim))) {
		uint32_t fifo = atomic_load_explicit(&victim->rq_len, memory_order_relaxed) -
		                atomic_load_explicit(&victim->cq_len, memory_order_relaxed);
		for (uint32_t k = (fifo + 1) / 2; k && nmore < WF_STEAL_BATCH - 1; k--) {
			struct wf_thread *u = wf_fifo_take_locked(victim);
			if (last)
				last->next = u;
			else
				more = u;
			last = u;
			nmore++;
		}
	}
	wf_spin_unlock(&victim->rq_lock);
	if (!t)
		return NULL;
	if (wf_tracing()) {
		wf_trace_steal(thief, t, victim);
		for (struct wf_thread *u = more; u; u = u->next)
			wf_trace_steal(thief, u, victim);
	}
	if (more) {
		/* Still linked through next, oldest first: append to ours. */
		wf_spin_lock(&thief->rq_lock);
		if (thief->rq_tail) {
			thief->rq_tail->next = more;
		} else {
			thief->rq_head = more;
			atomic_store_explicit(&thief->rq_head_woken, false, memory_order_relaxed);
		}
		thief->rq_tail = last;
		wf_len_add(&thief->rq_len, (int)nmore);
		wf_spin_unlock(&thief->rq_lock);
		if (!atomic_load_explicit(&thief->timer_armed, memory_order_relaxed))
			wf_preempt_note_ready(thief);
	}
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

struct wf_thread *wf_gq_pop(struct wf_worker *w)
{
	if (wf_gq_empty())
		return NULL;
	wf_spin_lock(&wf_rt.gq_lock);
	struct wf_thread *t = wf_rt.gq_head;
	uint32_t left = 0;
	if (t) {
		wf_rt.gq_head = t->next;
		if (!wf_rt.gq_head)
			wf_rt.gq_tail = NULL;
		t->next = NULL;
		left = atomic_load_explicit(&wf_rt.gq_len, memory_order_relaxed) - 1;
		atomic_store_explicit(&wf_rt.gq_len, left, memory_order_relaxed);
	}
	wf_spin_unlock(&wf_rt.gq_lock);
	/* The threads left behind compete with t for w: w needs ticks.  A push
	 * onto an empty global queue arms every worker's timer, but not the
	 * timer of a worker started since (the monitor's stand-in for a
	 * blocked one), which would run t for ever while they wait. */
	if (left && !atomic_load_explicit(&w->timer_armed, memory_order_relaxed))
		wf_preempt_note_ready(w);
	return t;
}

/* Move everything queued on w to the global queue: w was retaken
 * (monitor.c, standby.c), and a thread left in its queue would only be
 * stolen by an idle worker, never compete with a busy one's for ticks.
 * Any thread may call. */
void wf_rq_drain_global(struct wf_worker *w)
{
	struct wf_thread *t;
	while ((t = wf_rq_take(w, false)))
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
	struct wf_thread *next = global_first ? wf_gq_pop(w) : wf_rq_pop(w);
	if (!next)
		next = global_first ? wf_rq_pop(w) : wf_gq_pop(w);
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

/*
 * Wake an idle worker for new work (a creator that could run beside its
 * child, a thread made ready).  At most one such wake-up is under way at a
 * time, and none while a worker spins in its idle loop (Go's wakep does
 * the same): a spinner will find the work, and waking a worker at every
 * create of a loop, or at every hand-off of a ping-pong, cost a system
 * call each (with 8 workers on 2 CPUs, where idle workers do not spin, a
 * condition-variable ping-pong took 1.46 µs a round trip against 0.25 µs
 * on 2 workers).  `waking` is set here and cleared by every worker that
 * wakes up or goes to sleep (dispatch.c).  No lost wake-up: the producer
 * pushed before its fence and reads nspinning and waking after it; a
 * spinner, and a worker that clears waking, look at the queues after
 * their seq_cst update and once more before sleeping (wf_idle_sleep), so
 * either the producer sees them and someone is bound to look, or they see
 * the push.  The fence also orders the push before the caller's later
 * look at the target's timer (wf_ready).
 *
 * A create needs the fence as much as a wake-up does, although its own
 * worker is awake and resumes the creator when the child stops.  Without
 * it a worker going to sleep as the creator pushes can miss the push, and
 * nothing wakes it again if the child never stops (preemption off, a
 * child that spins until its creator acts) or if creator and child then
 * only yield in turns (a yield pushes on its own queue, which does not
 * kick): both stay on one worker for ever while the other sleeps
 * (docs/design.md, "Waking for new work").  On x86-64 the fence is one
 * locked instruction on the stack; a create+join loop on 2 workers ran no
 * faster without it.
 */
void wf_kick_for_work(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&wf_rt.nspinning, memory_order_relaxed) ||
	    atomic_load_explicit(&wf_rt.waking, memory_order_relaxed) ||
	    !atomic_load_explicit(&wf_rt.nsleeping, memory_order_relaxed) ||
	    atomic_exchange(&wf_rt.waking, 1))
		return;
	wf_kick_idle();
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

/* Make t runnable on w's queue (its FIFO, or on top of its continuations)
 * and make sure some worker will run it. */
static void wf_ready(struct wf_worker *w, struct wf_thread *t, bool at_head, bool woken,
                     bool cont)
{
	/* main and the kernel thread that runs only main (main_kthread.c). */
	w = wf_main_kthread_route(w, t);
	/* Before the push: once queued, t may run and park again. */
	if (wf_tracing())
		wf_trace_wake(t);
	if (cont)
		wf_rq_push_cont(w, t);
	else
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
	wf_kick_for_work();  /* its seq_cst fence orders the push before ... */
	if (!atomic_load_explicit(&w->timer_armed, memory_order_relaxed))
		wf_preempt_note_ready(w);  /* ... this re-check (see preempt.c) */
}

void wf_make_ready(struct wf_worker *w, struct wf_thread *t, bool at_head)
{
	wf_ready(w, t, at_head, false, false);
}

void wf_make_woken(struct wf_worker *w, struct wf_thread *t, bool at_head)
{
	wf_ready(w, t, at_head, true, false);
}

void wf_make_woken_cont(struct wf_worker *w, struct wf_thread *t)
{
	wf_ready(w, t, false, true, true);
}
