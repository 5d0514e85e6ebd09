/*
 * park.c — blocking and waking green threads (the protocol is in park.h).
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
#include "sched_internal.h"
#include "trace.h"
#include "foreign.h"

void wf_park_prepare(struct wf_thread *self)
{
	uint64_t w = atomic_load_explicit(&self->wait, memory_order_relaxed);
	atomic_store_explicit(&self->wait, ((w >> 2) + 1) << 2 | WF_WAIT_WAITING,
	                      memory_order_relaxed);
	self->deadline = 0;
}

void wf_park_reason(struct wf_thread *t, int kind, const void *obj)
{
	atomic_store_explicit(&t->block_obj, obj, memory_order_relaxed);
	atomic_store_explicit(&t->block_kind, (uint8_t)kind, memory_order_relaxed);
}

static bool wf_claim(struct wf_thread *t, uint64_t to)
{
	uint64_t cur = atomic_load_explicit(&t->wait, memory_order_relaxed);
	return (cur & 3) == WF_WAIT_WAITING &&
	       atomic_compare_exchange_strong_explicit(&t->wait, &cur, (cur & ~3ull) | to,
	                                               memory_order_acq_rel,
	                                               memory_order_relaxed);
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
	self->deadline = deadline;
	if (deadline)
		wf_timer_add(w, self, now);
	/* For observers only: the coarse clock costs a few ns, not a syscall. */
	atomic_store_explicit(&self->block_since, wf_coarse_ns(), memory_order_relaxed);
	self->state = WF_BLOCKED;
	WF_STAT_INC(w, parks);
	struct wf_thread *next = wf_pick_next(w);
	if (next == self) {
		/* Claimed before we got away and queued on this very worker: by
		 * popping it we took ourselves back.  Nothing to switch to. */
		if (deadline)
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
	uint64_t st = atomic_load_explicit(&self->wait, memory_order_acquire) & 3;
	return st == WF_WAIT_TIMEDOUT ? ETIMEDOUT : 0;
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

bool wf_unpark(struct wf_thread *t) { return wf_unpark_at(t, false); }
bool wf_unpark_first(struct wf_thread *t) { return wf_unpark_at(t, true); }

/* The TCB table is never freed (handle.c), so a handle that went stale
 * after the caller read it still names readable memory: the lookup says
 * NULL, or names a reused TCB whose on_cpu is merely a wrong hint. */
bool wf_handle_on_cpu(uintptr_t h)
{
	struct wf_thread *t = wf_tcb_lookup((weft_t)h);
	return t && atomic_load_explicit(&t->on_cpu, memory_order_relaxed);
}

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
