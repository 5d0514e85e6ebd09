/*
 * standby.c — a worker the monitor retook (monitor.c), from its own side.
 *
 * The monitor marks a worker BLOCKED while the worker sits in a system
 * call under a green thread, and puts another kernel thread in its place.
 * When the call returns, the thread that made it goes on running here
 * until its next scheduling point: a weft call that parks, yields or
 * exits, or the tick the monitor armed to come at once.  There it gives
 * up this worker: the thread goes to the global queue, where any active
 * worker takes it (migrate.c keeps its TLS pointers right), and this
 * worker's idle context runs wf_worker_standby: it hands over whatever is
 * still queued here, and rejoins the active workers if a place is free,
 * or else waits as a spare until the monitor needs a stand-in again.  A
 * spare keeps the timers of threads that parked on it: it wakes for their
 * deadlines and passes the woken threads on.
 *
 * Invariant: only the worker itself moves from BLOCKED (to ACTIVE or
 * SPARE); the monitor moves ACTIVE -> BLOCKED and SPARE -> ACTIVE, each
 * with a compare-and-swap, so no transition is lost.  nactive counts
 * ACTIVE workers; a rejoin takes a place only while nactive < WEFT_WORKERS.
 */
#include "sched_internal.h"
#include "../kthreads/kthread.h"

void wf_worker_hand_over(struct wf_worker *w, struct wf_thread *t)
{
	/* Queued before it is saved: whoever takes it waits for on_cpu. */
	wf_gq_push(t);
	wf_switch(w, t, w->idle, WF_PREV_SAVED, NULL);
}


static void wf_standby_wait(struct wf_worker *w)
{
	uint32_t v = atomic_load(&w->futex_word);
	if (atomic_load(&w->mstate) != WF_WS_SPARE)
		return;
	uint64_t dl = atomic_load(&w->next_deadline);
	struct timespec ts = { (time_t)(dl / 1000000000ull), (long)(dl % 1000000000ull) };
	wf_futex_wait(&w->futex_word, v, dl == UINT64_MAX ? NULL : &ts);
	if (atomic_load(&w->next_deadline) <= wf_clock_ns())
		wf_timer_run(w, wf_clock_ns());
}

void wf_worker_standby(struct wf_worker *w)
{
	for (;;) {
		uint8_t st = atomic_load(&w->mstate);
		if (st == WF_WS_ACTIVE)
			return;
		wf_rq_drain_global(w);
		if (st == WF_WS_BLOCKED) {
			if (atomic_fetch_add(&wf_rt.nactive, 1) < wf_rt.nworkers) {
				atomic_store(&w->mstate, WF_WS_ACTIVE);
				return;
			}
			atomic_fetch_sub(&wf_rt.nactive, 1);
			atomic_store(&w->mstate, WF_WS_SPARE);
			continue;
		}
		wf_standby_wait(w);
	}
}
