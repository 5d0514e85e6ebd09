/*
 * timer_heap.c — per-worker deadlines of parked threads (sleeps and timed
 * waits): a binary min-heap under tm_lock.  A thread is added to the heap of
 * the worker it parks on; a waker removes it (wf_timer_cancel) before making
 * it ready; the owner pops expired entries in its scheduler.
 *
 * Invariant: t->heap_idx >= 0 exactly when t is in t->timer_worker's heap,
 * and both change only under that worker's tm_lock.  next_deadline mirrors
 * heap[0] so that schedulers can test "anything due?" without the lock.
 */
#include <stdlib.h>
#include "sched_internal.h"

static void wf_heap_set(struct wf_worker *w, uint32_t i, struct wf_thread *t)
{
	w->heap[i] = t;
	t->heap_idx = (int32_t)i;
}

static void wf_heap_up(struct wf_worker *w, uint32_t i)
{
	struct wf_thread *t = w->heap[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (w->heap[p]->deadline <= t->deadline)
			break;
		wf_heap_set(w, i, w->heap[p]);
		i = p;
	}
	wf_heap_set(w, i, t);
}

static void wf_heap_down(struct wf_worker *w, uint32_t i)
{
	struct wf_thread *t = w->heap[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= w->heap_len)
			break;
		if (c + 1 < w->heap_len && w->heap[c + 1]->deadline < w->heap[c]->deadline)
			c++;
		if (t->deadline <= w->heap[c]->deadline)
			break;
		wf_heap_set(w, i, w->heap[c]);
		i = c;
	}
	wf_heap_set(w, i, t);
}

static void wf_heap_remove_at(struct wf_worker *w, uint32_t i)
{
	struct wf_thread *t = w->heap[i];
	t->heap_idx = -1;
	w->heap_len--;
	if (i < w->heap_len) {
		struct wf_thread *last = w->heap[w->heap_len];
		wf_heap_set(w, i, last);
		wf_heap_down(w, i);
		wf_heap_up(w, (uint32_t)last->heap_idx);
	}
}

static void wf_heap_publish(struct wf_worker *w)
{
	atomic_store_explicit(&w->next_deadline,
	                      w->heap_len ? w->heap[0]->deadline : UINT64_MAX,
	                      memory_order_relaxed);
}

/* Called by t itself while parking on w.  Memory for the heap grows by
 * doubling; on allocation failure the thread is still parked correctly but
 * will only be woken by wf_unpark (documented limit: never hit in tests). */
void wf_timer_add(struct wf_worker *w, struct wf_thread *t, uint64_t now)
{
	wf_spin_lock(&w->tm_lock);
	if (w->heap_len == w->heap_cap) {
		uint32_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
		struct wf_thread **h = realloc(w->heap, cap * sizeof *h);
		if (!h) {
			wf_spin_unlock(&w->tm_lock);
			return;
		}
		w->heap = h;
		w->heap_cap = cap;
	}
	t->timer_worker = w;
	wf_heap_set(w, w->heap_len++, t);
	wf_heap_up(w, (uint32_t)t->heap_idx);
	wf_heap_publish(w);
	wf_spin_unlock(&w->tm_lock);
	wf_preempt_note_deadline(w, t->deadline, now);
}

void wf_timer_cancel(struct wf_thread *t)
{
	struct wf_worker *w = t->timer_worker;
	if (!w)
		return;
	wf_spin_lock(&w->tm_lock);
	if (t->heap_idx >= 0) {
		wf_heap_remove_at(w, (uint32_t)t->heap_idx);
		wf_heap_publish(w);
	}
	t->timer_worker = NULL;
	wf_spin_unlock(&w->tm_lock);
}

/* Wake every thread of w whose deadline is <= now.  The claim of the wait
 * (WAITING -> TIMEDOUT) is made under tm_lock, so a waker, which must take
 * tm_lock to cancel the timer after winning its own claim, can never let the
 * thread re-park before this claim fails or succeeds. */
int wf_timer_run(struct wf_worker *w, uint64_t now)
{
	int woken = 0;
	/* Claimed threads, latest deadline first (linked through `next`,
	 * unused while a thread is parked); pushed at the head in that order
	 * so the earliest deadline runs first.  Pushing each at the head as
	 * it was popped ran threads that expired together in reverse order. */
	struct wf_thread *expired = NULL;
	for (;;) {
		wf_spin_lock(&w->tm_lock);
		if (!w->heap_len || w->heap[0]->deadline > now) {
			wf_heap_publish(w);
			wf_spin_unlock(&w->tm_lock);
			while (expired) {
				struct wf_thread *t = expired;
				expired = t->next;
				wf_make_ready(w, t, true);
			}
			return woken;
		}
		struct wf_thread *t = w->heap[0];
		wf_heap_remove_at(w, 0);
		t->timer_worker = NULL;
		uint64_t cur = atomic_load_explicit(&t->wait, memory_order_relaxed);
		bool mine = (cur & 3) == WF_WAIT_WAITING &&
		            atomic_compare_exchange_strong(&t->wait, &cur,
		                                           (cur & ~3ull) | WF_WAIT_TIMEDOUT);
		wf_heap_publish(w);
		wf_spin_unlock(&w->tm_lock);
		if (mine) {
			/* A sleeper whose time has come runs next, once. */
			t->next = expired;
			expired = t;
			woken++;
		}
	}
}
