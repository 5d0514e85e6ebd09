/*
 * monitor.c — handing the threads of a worker stuck in the kernel to
 * another kernel thread.
 *
 * The problem.  A green thread that calls read() on a socket, libc's
 * sleep(), a pthread_mutex_lock or getaddrinfo blocks its whole worker
 * in the kernel, and with it every thread queued there.  When all workers
 * block so (an echo server with one green thread per connection, using
 * plain read and write, on 2 workers), nothing runs at all: measured, that
 * server deadlocked in 8 runs of 10.  weft cannot see such calls — they go
 * straight from the program to libc — so it must notice them from outside.
 *
 * The approach (Go's sysmon retake and handoffp are the model).  One
 * kernel thread, the monitor, looks at every worker every WF_MON_PERIOD_NS
 * while any worker is busy.  A worker that has neither switched threads
 * nor used CPU time since the last look, and that the kernel reports as
 * asleep (not merely waiting for a CPU), sits in a system call.  After
 * WF_MON_STUCK_NS so, the monitor retakes it: marks it BLOCKED, arms its
 * tick to fire as soon as it runs again, and gives its place to another
 * worker — a spare kernel thread woken, or a new one started — so that
 * WEFT_WORKERS workers keep running green threads.  The stand-in steals the
 * blocked worker's queue like any idle worker, preempted threads included
 * (migrate.c).  While the worker stays blocked the monitor also runs the
 * timers of threads that parked on it.  When its system call returns, the
 * worker finishes what it was doing until its next scheduling point (a
 * weft call, or its tick), then hands its thread to the global queue and
 * either rejoins, if a place is free, or waits as a spare (standby.c).
 * A call announced with weft_blocking_begin is retaken without asking the
 * kernel (blocking.c).
 *
 * Cost.  The monitor sleeps when every worker is idle (the first worker
 * to wake wakes it, wf_monitor_worker_awake), so an idle process stays
 * idle; otherwise it wakes 1/WF_MON_PERIOD_NS times a second and reads one
 * counter per worker, plus the CPU clock of a worker that has not switched
 * since its last look.  Nothing is added to a switch, a park or a wake-up.
 *
 * The scavenger.  The monitor is also the thread that gives memory back
 * (docs/design.md, "Stacks and overflow"): at each look it releases the
 * stacks queued for release (batches beyond the shared tier's bound,
 * src/context/stack.c), and every WF_TRIM_PERIOD_NS it trims the stacks
 * and TCBs nobody took during the whole period.  When every worker
 * sleeps it parks until the next trim while warm memory remains, then
 * for good: a process that goes idle after a burst gives its memory back
 * within two periods, and wakes nobody after that.
 *
 * Rejected: a worker per blocking call announced by wrapping libc (every
 * libc function that may block would need a wrapper, and unwrapped ones
 * would still deadlock); a fixed oversized pool of workers (the deadlock
 * only becomes rarer: 16 workers still deadlocked 1 run in 2); signalling
 * a stuck worker to move its thread away (the signal would end its system
 * call with EINTR, which weft must never cause).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "sched_internal.h"
#include "../kthreads/kthread.h"
#include "../kthreads/libc_real.h"

#define WF_MON_PERIOD_NS 1000000ull   /* looks, while a worker is busy */
#define WF_MON_STUCK_NS  2000000ull   /* asleep this long: retaken */
#define WF_MON_STACK     (64 * 1024)
#define WF_TRIM_PERIOD_NS 250000000ull   /* unused warm memory goes after this */

/* What the monitor saw of a worker at its last look (monitor only). */
struct wf_mon_obs {
	uint64_t switches;
	uint64_t cpu;
	uint64_t since;     /* when it last made progress */
	int stat_fd;        /* /proc/self/task/<tid>/stat, -1 until opened */
};

static struct {
	_Atomic uint32_t word;      /* the monitor sleeps on it */
	_Atomic uint32_t parked;    /* 1 while it sleeps with no timeout */
	/* Held by the monitor through each round of looks (retakes, new
	 * workers), and across fork() (fork.c), so that the child never
	 * inherits a round half done. */
	wf_spin_t lock;
	struct wf_mon_obs obs[WF_MAX_KTHREADS];
} wf_mon;

/* The monitor's stand-in for a retaken worker: a spare made active, or a
 * new worker.  False when neither is possible (WF_MAX_KTHREADS). */
static bool wf_mon_activate_spare(void)
{
	for (int i = 0, n = wf_nkthreads(); i < n; i++) {
		struct wf_worker *s = &wf_rt.workers[i];
		uint8_t sp = WF_WS_SPARE;
		if (atomic_load_explicit(&s->mstate, memory_order_relaxed) == WF_WS_SPARE &&
		    atomic_compare_exchange_strong(&s->mstate, &sp, WF_WS_ACTIVE)) {
			atomic_fetch_add(&wf_rt.nactive, 1);
			atomic_fetch_add(&s->futex_word, 1);
			wf_futex_wake(&s->futex_word, 1);
			return true;
		}
	}
	struct wf_worker *w;
	if (wf_worker_add(&w))
		return false;
	wf_mon.obs[w->index].stat_fd = -1;
	atomic_fetch_add(&wf_rt.nactive, 1);
	return true;
}

static void wf_mon_retake(struct wf_worker *w)
{
	uint8_t act = WF_WS_ACTIVE;
	if (!atomic_compare_exchange_strong(&w->mstate, &act, WF_WS_BLOCKED))
		return;
	atomic_fetch_sub(&wf_rt.nactive, 1);
	atomic_fetch_add_explicit(&wf_rt.retakes, 1, memory_order_relaxed);
	wf_preempt_soon(w);
	wf_mon_activate_spare();
	wf_rq_drain_global(w);
}

/* One look at an active worker that is not asleep on its idle futex. */
static void wf_mon_look(struct wf_worker *w, struct wf_mon_obs *o, uint64_t now)
{
	uint64_t sw = atomic_load_explicit(&w->stats.v[WF_STAT_IDX(switches)],
	                                   memory_order_relaxed);
	const struct wf_thread *cur = __atomic_load_n(&w->current, __ATOMIC_RELAXED);
	if (cur == w->idle || sw != o->switches) {
		o->switches = sw;
		o->since = now;
		o->cpu = 0;
		return;
	}
	bool announced = atomic_load_explicit(&w->in_blocking, memory_order_relaxed);
	if (!announced) {
		uint64_t cpu = wf_kt_cpu_ns(w->tid);
		if (cpu != o->cpu) {   /* it ran: a thread in its quantum */
			o->cpu = cpu;
			o->since = now;
			return;
		}
	}
	if (now - o->since < WF_MON_STUCK_NS)
		return;
	if (!announced && wf_kt_runnable(w->tid, &o->stat_fd)) {
		o->since = now;   /* not asleep: only short of a CPU */
		return;
	}
	wf_mon_retake(w);
}

/* Park until a worker wakes (wf_monitor_worker_awake): Dekker with it, as
 * the idle sleep is with producers.  The monitor publishes `parked` and
 * then looks at every worker once more; a worker clears `sleeping`, then
 * reads `parked`.  One of the two sees the other. */
static void wf_mon_park(uint64_t until)
{
	uint32_t v = atomic_load(&wf_mon.word);
	atomic_store(&wf_mon.parked, 1);
	for (int i = 0, n = wf_nkthreads(); i < n; i++) {
		struct wf_worker *w = &wf_rt.workers[i];
		if (atomic_load(&w->mstate) == WF_WS_ACTIVE && !atomic_load(&w->sleeping)) {
			atomic_store(&wf_mon.parked, 0);
			return;
		}
	}
	struct timespec ts = { (time_t)(until / 1000000000ull), (long)(until % 1000000000ull) };
	wf_futex_wait(&wf_mon.word, v, until == UINT64_MAX ? NULL : &ts);
	atomic_store(&wf_mon.parked, 0);
}

void wf_monitor_worker_awake(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (wf_unlikely(atomic_load_explicit(&wf_mon.parked, memory_order_relaxed)) &&
	    atomic_exchange(&wf_mon.parked, 0)) {
		atomic_fetch_add(&wf_mon.word, 1);
		wf_futex_wake(&wf_mon.word, 1);
	}
}

/* The scavenger's round (header essay): release what is queued, and at
 * the end of each trim period what nobody took during it.  Returns when
 * the next trim is due, or UINT64_MAX while nothing is left to trim. */
static uint64_t wf_mon_scavenge(uint64_t now)
{
	static uint64_t next_trim, puts;
	static bool kept;   /* the last trim kept TCB chunks that may go next */
	wf_stack_scavenge();
	if (!next_trim)
		next_trim = now + WF_TRIM_PERIOD_NS;
	if (now >= next_trim) {
		puts = wf_tcb_puts();
		wf_stack_trim();
		kept = wf_tcb_trim() > 0;
		next_trim = now + WF_TRIM_PERIOD_NS;
	}
	/* Stacks in the shared tiers, or TCBs freed to the shared list since
	 * (workers that went to sleep flushed their caches there): worth
	 * another trim. */
	bool more = kept || wf_stack_warm_bytes() || wf_tcb_puts() != puts;
	return more ? next_trim : UINT64_MAX;
}

static void wf_monitor_main(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	WF_LIBC(pthread_sigmask)(SIG_BLOCK, &all, NULL);   /* never the program's signals */
	prctl(PR_SET_NAME, "weft-monitor");   /* as ps -L, top -H and gdb show it */
	for (;;) {
		/* The scavenger's locks are the allocators' own, which a fork
		 * takes (wf_stack_fork_lock, wf_tcb_fork_lock): not under ours. */
		uint64_t due = wf_mon_scavenge(wf_clock_ns());
		wf_spin_lock(&wf_mon.lock);
		uint64_t now = wf_clock_ns();
		bool busy = false;
		for (int i = 0, n = wf_nkthreads(); i < n; i++) {
			struct wf_worker *w = &wf_rt.workers[i];
			struct wf_mon_obs *o = &wf_mon.obs[i];
			switch (atomic_load_explicit(&w->mstate, memory_order_relaxed)) {
			case WF_WS_ACTIVE:
				if (atomic_load_explicit(&w->sleeping, memory_order_relaxed)) {
					o->since = now;
					continue;
				}
				busy = true;
				wf_mon_look(w, o, now);
				break;
			case WF_WS_BLOCKED: {
				/* Its sleepers' deadlines are the monitor's to keep. */
				uint64_t dl = atomic_load(&w->next_deadline);
				if (dl <= now)
					wf_timer_run(w, now);
				wf_rq_drain_global(w);
				dl = atomic_load(&w->next_deadline);
				if (dl < due)
					due = dl;
				break;
			}
			default:
				break;
			}
		}
		wf_spin_unlock(&wf_mon.lock);
		if (!busy) {
			wf_mon_park(due);
			continue;
		}
		/* Every worker may be busy: descriptors nobody polled lately
		 * (poller.c). */
		wf_poller_monitor(now);
		uint64_t wake = now + WF_MON_PERIOD_NS < due ? now + WF_MON_PERIOD_NS : due;
		struct timespec ts = { (time_t)(wake / 1000000000ull), (long)(wake % 1000000000ull) };
		wf_futex_wait(&wf_mon.word, atomic_load(&wf_mon.word), &ts);
	}
}

int wf_monitor_start(void)
{
	for (int i = 0; i < WF_MAX_KTHREADS; i++)
		wf_mon.obs[i].stat_fd = -1;
	/* Born with every signal blocked (it inherits this mask): in the moment
	 * before wf_monitor_main blocks them itself, a signal sent to the
	 * process would otherwise run the program's handler here. */
	sigset_t all, old;
	sigfillset(&all);
	WF_LIBC(pthread_sigmask)(SIG_SETMASK, &all, &old);
	pid_t tid;
	int e = wf_kt_spawn(wf_monitor_main, NULL, WF_MON_STACK, &tid);
	WF_LIBC(pthread_sigmask)(SIG_SETMASK, &old, NULL);
	return e ? EAGAIN : 0;
}

void wf_monitor_fork_lock(void) { wf_spin_lock(&wf_mon.lock); }
void wf_monitor_fork_unlock(void) { wf_spin_unlock(&wf_mon.lock); }

/* In a child of fork(): no monitor runs, and the files it had open name the
 * parent's threads.  wf_monitor_start starts a new one. */
void wf_monitor_forked_child(void)
{
	for (int i = 0; i < WF_MAX_KTHREADS; i++) {
		if (wf_mon.obs[i].stat_fd >= 0)
			close(wf_mon.obs[i].stat_fd);
		wf_mon.obs[i] = (struct wf_mon_obs){ .stat_fd = -1 };
	}
	atomic_store(&wf_mon.word, 0);
	atomic_store(&wf_mon.parked, 0);
}
