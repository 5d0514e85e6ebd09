/*
 * thread.c — the life of a green thread: create, join, detach, exit.
 *
 * A new thread runs first: weft_create switches to the child at once and
 * puts its creator on top of the worker's continuation stack (runqueue.c),
 * so fork-join code runs depth-first and keeps few threads alive (skynet's
 * 1.1 million threads run in 2 MiB on one worker), and an idle worker
 * steals the oldest continuation, the biggest piece.  To keep threads
 * queued in the FIFO from waiting behind a creator that creates in a loop,
 * every WF_CREATE_STREAK-th such create lets the FIFO's head run first.
 * (Sending the creator behind them instead let its ancestors expand the
 * tree meanwhile, once per 64 creates: ~40,000 live threads' pages.)
 *
 * A joiner whose child finishes on another worker than its own resumes on
 * the child's worker, next (wf_unpark_joiner): the child's continuation.
 *
 * A finished thread gives its stack back at once (the worker does it after
 * switching away, wf_thread_finished): to a one-stack slot of the worker
 * (hot_stack) that the worker's next create with the default size takes,
 * else to the allocator.  Its TCB, holding the return value, stays until
 * it is joined, or is freed at once when detached.
 *
 * Invariant: t->state == WF_DONE, t->detached and t->joiner change only
 * under t->lk, and a handle is checked against t->gen under t->lk, so join,
 * detach and exit agree on one order.  Whoever sees the pair (DONE, claimed)
 * complete under t->lk (the joiner, the detacher, or the finisher of a
 * detached thread) retires the TCB (wf_tcb_retire: bumps gen) before
 * releasing t->lk and frees it (wf_tcb_free) only after, and touches t no
 * more: the TCB may be reused at once.
 *
 * Counting live threads.  There is no global counter: each worker counts
 * the threads it created and the threads that finished on it (its
 * `created` and `finished` statistics, single writer, no locked
 * instruction), and creates from kernel threads that are not workers count
 * in wf_rt.created_foreign.  wf_live_count sums them; see there why a sum
 * is never below the true count.  Main, waiting in weft_exit for the last
 * thread, and the finisher of that thread meet Dekker-style: main publishes
 * main_waiting and then sums; a finisher counts itself, then reads
 * main_waiting.  One of the two must see the other, which needs a full
 * barrier on both sides; the finisher's would be a locked instruction per
 * thread, so main pays for both instead, with membarrier(2) (as userspace
 * RCU does): it makes every thread of the process that is running execute
 * a full barrier, and one that is not running has passed through the
 * kernel's scheduler, itself a barrier.  A finisher's load of main_waiting
 * that came before that barrier on its CPU comes after its count there, so
 * main's sum sees the count; one that came after sees main_waiting.  The
 * finisher needs only to keep the compiler from moving the load above the
 * store.  Where membarrier is refused (old kernel, seccomp, valgrind),
 * main re-counts every WF_EXIT_POLL_NS instead of relying on a wake-up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "sched_internal.h"
#ifdef WF_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define WF_CREATE_STREAK 64
#define WF_EXIT_POLL_NS 1000000ull  /* main's re-count without membarrier */

/* Threads created and not finished, main excluded: exact when nothing is
 * created or finishing meanwhile, otherwise at least the number of threads
 * alive at the end of the call (never less).  Every finished count is read
 * first, with acquire: a thread counted there was created before it
 * finished, and its creator counted it before making it runnable, so that
 * creation is visible to the created reads that follow.  */
uint64_t wf_live_count(void)
{
	uint64_t fin = 0, cre = 0;
	for (int i = 0, n = wf_nkthreads(); i < n; i++)
		fin += atomic_load_explicit(&wf_rt.workers[i].stats.v[WF_STAT_IDX(finished)],
		                            memory_order_acquire);
	cre = atomic_load_explicit(&wf_rt.created_foreign, memory_order_acquire);
	for (int i = 0, n = wf_nkthreads(); i < n; i++)
		cre += atomic_load_explicit(&wf_rt.workers[i].stats.v[WF_STAT_IDX(created)],
		                            memory_order_acquire);
	return cre > fin ? cre - fin : 0;
}

static int wf_thread_setup(struct wf_worker *w, struct wf_thread *t, const weft_attr_t *a,
                           void *(*start)(void *), void *arg)
{
	size_t size = wf_rt.cfg.stack_size;
	if (a && a->_stackaddr) {
		t->stack.lo = a->_stackaddr;
		t->stack.hi = (char *)a->_stackaddr + a->_stacksize;
		t->stack.user = 1;
	} else if (a && a->_stacksize) {
		if (wf_stack_alloc(w ? &w->stacks : NULL, a->_stacksize, &t->stack))
			return EAGAIN;
	} else if (w && w->hot_stack.lo) {
		t->stack = w->hot_stack;  /* the default size: see wf_thread_finished */
		w->hot_stack.lo = NULL;
	} else {
		if (wf_stack_alloc(w ? &w->stacks : NULL, size, &t->stack))
			return EAGAIN;
		if (w)
			w->hot_size = (size_t)((char *)t->stack.hi - (char *)t->stack.lo);
	}
	t->start = start;
	t->arg = arg;
	t->detached = a && a->_detachstate == WEFT_CREATE_DETACHED;
	/* The creator's signal mask (signals.c); 0, the default, until any
	 * thread has another. */
	if (wf_unlikely(atomic_load_explicit(&wf_sig_active, memory_order_relaxed)) &&
	    w && w->current && w->current->kind != WF_KIND_IDLE)
		t->sigmask_x = w->current->sigmask_x;
	if (a && a->_name[0])
		memcpy(t->name, a->_name, sizeof t->name);
	wf_tcb_first_context(t, wf_thread_entry, t);
	return 0;
}

int weft_create(weft_t *out, const weft_attr_t *a, void *(*start)(void *), void *arg)
{
	if (!out || !start || (a && a->_magic != WF_ATTR_MAGIC))
		return EINVAL;
	/* A worker exists only once the runtime is up (its initializer is
	 * worker 0 and creates no thread before it is). */
	struct wf_worker *w = wf_worker_self();
	int e;
	/* Not READY on a worker: a child of fork() starts its workers here
	 * (runtime.c). */
	if (wf_unlikely(!w || atomic_load_explicit(&wf_rt.state, memory_order_relaxed) !=
	                      WF_RT_READY)) {
		if ((e = wf_runtime_ensure()))
			return e;
		w = wf_worker_self();
	}
	struct wf_thread *t = wf_tcb_alloc(w);
	if (!t)
		return EAGAIN;
	if ((e = wf_thread_setup(w, t, a, start, arg))) {
		wf_tcb_retire(t);  /* no handle was given out: no lock needed */
		wf_tcb_free(w, t);
		return e;
	}
	*out = wf_tcb_handle(t);

	/* Counted before t becomes runnable (wf_live_count relies on it). */
	struct wf_thread *self = w ? w->current : NULL;
	if (!self) {
		/* A kernel thread that is not a worker: hand it to worker 0. */
		atomic_fetch_add_explicit(&wf_rt.created_foreign, 1, memory_order_relaxed);
		wf_make_ready(&wf_rt.workers[0], t, false);
		return 0;
	}
	WF_STAT_INC(w, created);
	if (self->kind == WF_KIND_IDLE || self->preempt_off || wf_worker_retaken(w) ||
	    wf_worker_main_only(w)) {
		wf_make_ready(w, t, false);   /* main_kthread.c: to worker 0 */
		return 0;
	}
	/* Run the child now; the creator continues right after it, from the
	 * top of the continuation stack.  Once per WF_CREATE_STREAK creates,
	 * if other threads wait in the FIFO, the FIFO's head runs first when
	 * the child stops, so that a creator that loops does not keep them
	 * waiting (preemption, when on, shares the CPU in any case). */
	if (wf_unlikely(++w->create_streak >= WF_CREATE_STREAK)) {
		w->create_streak = 0;
		w->fifo_turn = wf_rq_fifo_busy(w);
	}
	wf_rq_push_cont(w, self);
	/* The creator can now run in parallel with its child: let an idle
	 * worker take it (a child that never yields would otherwise keep it
	 * queued while the other worker sleeps).  With one worker there is
	 * none: the only worker is this one, and it is awake. */
	if (wf_rt.nworkers > 1)
		wf_kick_for_work();
	wf_switch(w, self, t, WF_PREV_SAVED, NULL);
	return 0;
}

/* Worker w has switched away from the finished thread t. */
void wf_thread_finished(struct wf_worker *w, struct wf_thread *t)
{
#ifdef WF_ASAN
	/* The thread never returned from its frames: clear their redzones so
	 * the memory (a recycled stack, or the caller's own) is clean. */
	__asan_unpoison_memory_region(t->stack.lo,
	                              (size_t)((char *)t->stack.hi - (char *)t->stack.lo));
#endif
	/* No longer a stack for valgrind.  Memcheck marked what lies below the
	 * thread's last stack pointer inaccessible (popped frames): memory the
	 * caller lent (weft_attr_setstack) is its data again. */
	wf_vg_stack_deregister(t->vg_stack);
	t->vg_stack = 0;
	if (t->stack.user)
		wf_vg_defined(t->stack.lo, (size_t)((char *)t->stack.hi - (char *)t->stack.lo));
	/* Keep the stack for the next default create on this worker if the
	 * slot is free; the allocator still counts it as in use, one per
	 * worker at most. */
	size_t bytes = (size_t)((char *)t->stack.hi - (char *)t->stack.lo);
	if (!w->hot_stack.lo && !t->stack.user && bytes == w->hot_size)
		w->hot_stack = t->stack;
	else
		wf_stack_free(&w->stacks, &t->stack);
	/* Single writer (w); release: see wf_live_count. */
	_Atomic uint64_t *fin = &w->stats.v[WF_STAT_IDX(finished)];
	atomic_store_explicit(fin, atomic_load_explicit(fin, memory_order_relaxed) + 1,
	                      memory_order_release);
	wf_spin_lock(&t->lk);
	t->state = WF_DONE;
	struct wf_thread *joiner = t->joiner;
	bool detached = t->detached;
	if (detached)
		wf_tcb_retire(t);
	wf_spin_unlock(&t->lk);
	/* t may be joined and reused from here on: only the copies above. */
	if (detached)
		wf_tcb_free(w, t);
	/* The joiner goes on where its child stopped, as a parent does whose
	 * child was not stolen: on this worker, next (a woken thread queued
	 * behind others here kept the whole fork-join tree above it waiting).
	 * A joiner whose wait was interrupted (cancelled) meanwhile sees DONE
	 * and waits for join_woken before it reclaims t: our claim must fail
	 * on that wait, never meet a later one (weft_join). */
	if (joiner && !wf_unpark_joiner(joiner))
		atomic_store_explicit(&t->join_woken, 1, memory_order_release);
	/* Dekker with wf_main_exit, whose membarrier stands for our fence
	 * (header essay): only the compiler must keep the order. */
	atomic_signal_fence(memory_order_seq_cst);
	if (wf_unlikely(atomic_load_explicit(&wf_rt.main_waiting, memory_order_relaxed))) {
		atomic_thread_fence(memory_order_seq_cst);
		if (wf_live_count() == 0)
			wf_unpark(wf_rt.main);  /* more than one finisher may: main re-checks */
	}
}

void wf_worker_caches_flush(struct wf_worker *w)
{
	if (w->hot_stack.lo) {
		wf_stack_free(&w->stacks, &w->hot_stack);
		w->hot_stack.lo = NULL;
	}
	wf_stack_cache_flush(&w->stacks);
	wf_tcb_cache_flush(w);
}

/* A full barrier on every running thread of the process (see the header
 * essay).  False if the kernel refuses it.  Any thread (main's exit, the
 * first interrupter: park.c). */
bool wf_barrier_all(void)
{
	static _Atomic int registered;  /* 0 not tried, 1 yes, -1 refused */
	int e = errno;
	if (!atomic_load(&registered))
		atomic_store(&registered,
		             syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
		                     0, 0) == 0 ? 1 : -1);
	bool ok = atomic_load(&registered) > 0 &&
	          syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
	errno = e;
	return ok;
}

static _Noreturn void wf_main_exit(struct wf_thread *self)
{
	/* Wait for every other thread.  main_waiting is set before the final
	 * count, and a finisher reads it after counting itself: one of the two
	 * sees the other (membarrier, header essay).  A wake-up that finds
	 * threads still alive (a finisher's sum that raced a create) parks
	 * again. */
	for (;;) {
		wf_park_prepare(self);
		wf_park_reason(self, WF_BLOCK_EXIT, NULL);
		atomic_store(&wf_rt.main_waiting, 1);
		bool exact = wf_barrier_all();
		atomic_thread_fence(memory_order_seq_cst);
		if (wf_live_count() == 0)
			break;
		wf_park(NULL, exact ? 0 : wf_clock_ns() + WF_EXIT_POLL_NS);
	}
	exit(0);
}

/* The last steps of a finishing thread, after its cleanup handlers
 * (cancel.c): key destructors, then "main" waits for the others and exits,
 * any other thread switches away for good with ret as its result. */
_Noreturn void wf_thread_exit(void *ret)
{
	struct wf_worker *w = wf_worker_self();
	struct wf_thread *self = w ? w->current : NULL;
	if (!self || self->kind == WF_KIND_IDLE) {
		fprintf(stderr, "weft: weft_exit called outside a green thread\n");
		abort();
	}
	atomic_store_explicit(&self->cflags, atomic_load_explicit(&self->cflags,
	                      memory_order_relaxed) | WF_CF_EXITING, memory_order_relaxed);
	if (self->tsd) {
		/* No value was ever set when there is no tsd: nothing to run. */
		wf_tsd_run_destructors(self);
		w = wf_worker_self();   /* destructors may have blocked and migrated */
	}
	if (self->kind == WF_KIND_MAIN)
		wf_main_exit(self);
	self->ret = ret;
	self->preempt_off = 1;  /* from here on, only weft code runs */
	wf_switch(w, self, wf_pick_next(w), WF_PREV_DONE, NULL);
	__builtin_unreachable();
}

void weft_exit(void *ret)
{
	wf_runtime_ensure();
	wf_exit_begin(ret);   /* cleanup handlers, then wf_thread_exit (cancel.c) */
}

/* The join of t (t->lk held) was interrupted by a cancellation.  If t has
 * not finished, withdraw (t stays joinable) and return true with t->lk
 * released.  If it has, the join completes: its finisher saw us as joiner
 * and its wake-up found our wait already claimed; wait until that attempt
 * is over (join_woken), so that it cannot claim a later wait of ours, and
 * return false with t->lk held.  The request stays pending for the next
 * cancellation point. */
static bool wf_join_interrupted(struct wf_thread *t)
{
	if (t->state != WF_DONE) {
		t->joiner = NULL;
		t->joined = 0;
		wf_spin_unlock(&t->lk);
		return true;
	}
	wf_spin_unlock(&t->lk);
	unsigned spins = 0;
	while (!atomic_load_explicit(&t->join_woken, memory_order_acquire))
		wf_spin_backoff(&spins);
	wf_spin_lock(&t->lk);
	return false;
}

int weft_join(weft_t h, void **ret)
{
	/* On a worker the runtime is up: skip wf_self_init's checks. */
	struct wf_worker *w = wf_worker_self();
	struct wf_thread *self = w ? w->current : NULL;
	if (wf_unlikely(!self || self->kind == WF_KIND_IDLE)) {
		self = wf_self_init();
		if (!self)
			return wf_runtime_ensure() ? wf_runtime_ensure() : EPERM;
	}
	struct wf_thread *t = wf_tcb_lookup(h);
	if (!t)
		return ESRCH;
	if (t == self)
		return EDEADLK;
	wf_spin_lock(&t->lk);
	if (wf_tcb_handle(t) != h || t->state == WF_FREE) {
		wf_spin_unlock(&t->lk);
		return ESRCH;
	}
	if (t->detached || t->joined) {
		wf_spin_unlock(&t->lk);
		return EINVAL;
	}
	t->joined = 1;
	if (t->state != WF_DONE) {
		t->joiner = self;
		wf_park_reason(self, WF_BLOCK_JOIN, t);
		wf_park_prepare_intr(self, WF_INTR_CANCEL);   /* a cancellation point */
		int r = wf_park(&t->lk, 0);  /* releases t->lk once we are saved */
		wf_spin_lock(&t->lk);
		if (wf_unlikely(r == EINTR) && wf_join_interrupted(t))
			return wf_interrupted();   /* acts on the cancellation */
	}
	if (ret)
		*ret = t->ret;
	wf_tcb_retire(t);
	wf_spin_unlock(&t->lk);
	wf_tcb_free(wf_worker_self(), t);  /* parking may have migrated us */
	return 0;
}

int weft_detach(weft_t h)
{
	struct wf_thread *t = wf_tcb_lock_handle(h);
	if (!t)
		return ESRCH;
	if (t->detached || t->joined || t->kind == WF_KIND_MAIN) {
		wf_spin_unlock(&t->lk);
		return EINVAL;
	}
	t->detached = 1;
	bool done = t->state == WF_DONE;
	if (done)
		wf_tcb_retire(t);
	wf_spin_unlock(&t->lk);
	if (done)
		wf_tcb_free(wf_worker_self(), t);
	return 0;
}
