/*
 * main_kthread.c — weft initialized by a kernel thread that is not the
 * process's initial thread.
 *
 * The problem.  The kernel thread that initializes weft becomes worker 0
 * and its code continues as the green thread main.  When that kernel
 * thread is a plain pthread, its start routine eventually returns: glibc
 * then ends whatever kernel thread runs that code.  Measured: the threads
 * queued on worker 0 never ran again (pthread backend); and since main,
 * like any green thread, moves between workers, the return may well run on
 * another worker, whose kernel thread glibc would then tear down as if it
 * were the pthread (its thread_local destructors, its TSD, its stack), with
 * that worker's threads in it.
 *
 * The approach: workers outlive their creator.  When the initializer is
 * not the initial thread (gettid() != getpid(), or, in a child of fork(),
 * the forking kernel thread was not: wf_runtime_on_initial_thread), weft
 * starts all WEFT_WORKERS workers as kernel threads of its own, and the
 * initializing kernel thread becomes one more worker, in state WF_WS_MAIN,
 * that runs main and nothing else.  A child of fork() whose forker was
 * main on such a worker keeps the arrangement (runtime.c).  main never leaves it, so the start routine always
 * returns on its own kernel thread, and glibc ends exactly that one; no
 * other thread ever runs there, so none is left behind when it ends.  The
 * rules that keep it so, each where the decision is made:
 *   - wf_main_kthread_route (sched_internal.h), used by every make-ready:
 *     main is queued on its own kernel thread, and any other thread made
 *     ready there (woken by main, created by main) goes to worker 0;
 *   - thieves and the "anything ready?" look skip it (runqueue.c);
 *   - it has no tick (preempt.c: nothing competes with main there), is
 *     never retaken by the monitor (monitor.c: it is not ACTIVE), and a
 *     yield never takes from the global queue there (park.c);
 *   - its scheduler context (below) only runs main's timers and sleeps on
 *     the worker's futex until main is queued (wf_main_kthread_kick); it
 *     never steals.  It never sets `sleeping`, so wf_kick_idle never
 *     spends a wake-up on it.
 * Its index is WEFT_WORKERS (spares come after it), so weft_worker_self()
 * in main says it is not one of the workers 0..WEFT_WORKERS-1.
 *
 * Rejected: refusing weft_init on such a thread (it works until the thread
 * ends, and programs that keep it alive lose nothing); handing worker 0's
 * threads to others when its kernel thread ends (main may be running on
 * another worker at that moment: that worker, not the pthread, would end);
 * pinning main to a worker that also runs other threads (every queue,
 * steal, hand-off and retake path would have to know the pinned thread).
 */
#include <time.h>
#include "sched_internal.h"
#include "../kthreads/kthread.h"

/* main was queued on w (wf_ready): wake w's scheduler context if it sleeps.
 * The bump pairs with the read before its last look at its queue. */
void wf_main_kthread_kick(struct wf_worker *w)
{
	atomic_fetch_add(&w->futex_word, 1);
	wf_futex_wake(&w->futex_word, 1);
}

/* Its scheduler context: run main whenever it is queued, keep its timers,
 * sleep otherwise.  No lost wake-up: the futex word is read before the
 * queue is looked at, and a waker queues main before it bumps the word. */
static _Noreturn void wf_main_kthread_idle(struct wf_worker *w)
{
	struct wf_thread *self = w->idle;
	for (;;) {
		uint32_t v = atomic_load(&w->futex_word);
		uint64_t dl = atomic_load(&w->next_deadline);
		if (dl != UINT64_MAX && dl <= wf_clock_ns())
			wf_timer_run(w, wf_clock_ns());
		struct wf_thread *t = wf_rq_pop(w);
		if (t) {
			w = wf_switch(w, self, t, WF_PREV_NONE, NULL);
			continue;
		}
		dl = atomic_load(&w->next_deadline);
		struct timespec ts = { (time_t)(dl / 1000000000ull), (long)(dl % 1000000000ull) };
		WF_STAT_INC(w, idle_sleeps);
		wf_futex_wait(&w->futex_word, v, dl == UINT64_MAX ? NULL : &ts);
	}
}

void wf_main_kthread_entry(void *transfer, void *arg)
{
	(void)arg;
	struct wf_worker *w = transfer;
	wf_context_entered(w, w->idle);
	wf_main_kthread_idle(w);
}

int wf_main_kthread_start(struct wf_worker *w)
{
	atomic_store(&w->mstate, WF_WS_MAIN);
	wf_rt.main_kt = w;
	return wf_make_main(w, wf_main_kthread_entry);
}
