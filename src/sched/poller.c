/*
 * poller.c — an idle worker sleeps in the poller, so that descriptor
 * readiness, a deadline or a kick wakes it.
 *
 * The problem.  A green thread that waits for a descriptor (src/io) parks;
 * something must notice when the descriptor becomes ready and wake it,
 * without busy polling and without an extra thread in the common case.
 * Workers already sleep when they have nothing to run: the natural place
 * to watch descriptors is that sleep.
 *
 * The design (Go's netpoller is the model).  One epoll set for the
 * process, made the first time src/io asks for it (a program that never
 * waits on a descriptor keeps its descriptor numbers).  src/io arms
 * descriptors in it, one EPOLLONESHOT arming per wait, with the
 * descriptor's number as the event's data, and hands us a handler for the
 * events.  An eventfd in the set (level-triggered, data WF_POLL_KICK) is
 * the poller's wake-up.  At most one worker sleeps in the set at a time,
 * the holder of `holder`: an idle worker takes it when descriptors are
 * waited on and nobody holds it, and sleeps in epoll_pwait2 until its
 * earliest deadline (at most WF_POLL_NAP_NS while descriptors are waited
 * on, so that src/io can re-check them); the other idle workers sleep on
 * their futex as before.  When the holder wakes it clears its `sleeping`
 * (so that the wake-ups it makes go to other sleepers), gives the events to
 * src/io's handler, which wakes the threads waiting for them onto this
 * worker's run queue, and lets go of the set.
 *
 * Waking a sleeper (wf_kick_idle, runqueue.c) claims it as before and
 * then wakes it the way it sleeps: its futex, or the eventfd when it is in
 * the poller.  A worker asleep on its futex is chosen first: the one in
 * the poller keeps watching descriptors while the other runs the work.
 *
 * The Dekker argument, extended.  A sleeper publishes `in_poller` and then
 * `sleeping`, counts itself in nsleeping (all seq_cst) and looks at the
 * queues once more; a producer pushes, fences (seq_cst), and reads
 * nsleeping.  One of the two sees the other, as before.  The new step is
 * the channel: a producer that claimed a sleeper in the poller writes the
 * eventfd, and the eventfd is level-triggered, so epoll_pwait2 returns at
 * once whether the sleeper is already in it or only about to enter it; the
 * count stays up until the next holder reads it, which wakes that holder
 * once for nothing (harmless: it looks for work and sleeps again).  Only
 * the holder reads the eventfd, so a kick is consumed only by a worker
 * that is awake.  Readiness needs no such argument: an armed descriptor's
 * event waits in the kernel's ready list until some epoll_wait collects it.
 *
 * When every worker is busy nobody sleeps in the set.  A thread made
 * ready by readiness would then wait until some worker runs out of work;
 * the monitor (monitor.c) polls the set without blocking when nobody has
 * for WF_POLL_STALE_NS and threads wait on descriptors (Go's sysmon does
 * the same), and the first thread to wait on a descriptor while nobody
 * holds the set kicks a sleeping worker to take it.
 *
 * Rejected: a poller thread of its own (every ready descriptor would cost
 * a wake-up of that thread and then a cross-thread hand-off to a worker:
 * two wake-ups where the idle worker needs none when it is the one
 * polling); every idle worker in epoll_wait on the set (the kernel wakes
 * an arbitrary one for the eventfd, so a kick could not reach the worker
 * it claimed, and the per-worker Dekker bookkeeping would break); io_uring
 * (its completions are posted by task work on the kernel thread that
 * submitted, which interrupts that thread's system calls unless
 * IORING_SETUP_DEFER_TASKRUN ties all reaping to that one thread — a bad
 * fit for threads that move between workers; docs/design.md, "The
 * poller").
 */
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "sched_internal.h"
#include "../kthreads/kthread.h"

#define WF_POLL_EVENTS   128
#define WF_POLL_NAP_NS   1000000000ull  /* longest sleep while descriptors are waited on */
#define WF_POLL_STALE_NS 10000000ull    /* the monitor polls after this long unpolled */
#define WF_POLL_KICK     UINT64_MAX     /* the eventfd's event data */
#define WF_POLL_MONITOR  ((uintptr_t)1) /* holder: the monitor, not a worker */

static struct {
	wf_spin_t init_lock;
	_Atomic int ep;                 /* the set, -1 until made */
	int efd;                        /* its eventfd (the kick) */
	int err;                        /* making them failed (errno value), sticky */
	_Atomic uintptr_t holder;       /* the worker polling, WF_POLL_MONITOR, or 0 */
	_Atomic uint32_t waiters;       /* threads waiting on descriptors */
	_Atomic uint64_t last;          /* when the set was last polled */
	_Atomic(wf_poll_handler) handler;
	struct epoll_event ev[WF_POLL_EVENTS];   /* the holder's */
} wf_pl = { .ep = -1 };

int wf_poller_fd_get(void)
{
	int ep = atomic_load_explicit(&wf_pl.ep, memory_order_acquire);
	if (wf_likely(ep >= 0))
		return ep;
	wf_spin_lock(&wf_pl.init_lock);
	ep = atomic_load_explicit(&wf_pl.ep, memory_order_relaxed);
	if (ep < 0 && !wf_pl.err) {
		int e = wf_kt_epoll_create(), k = e >= 0 ? wf_kt_eventfd() : e;
		struct epoll_event kev = { .events = EPOLLIN, .data.u64 = WF_POLL_KICK };
		int a = k >= 0 ? wf_kt_epoll_ctl(e, EPOLL_CTL_ADD, k, &kev) : k;
		if (a < 0) {
			int saved = errno;   /* the caller's: a green thread's */
			if (k >= 0)
				close(k);
			if (e >= 0)
				close(e);
			errno = saved;
			wf_pl.err = -a;
		} else {
			wf_pl.efd = k;
			ep = e;
			atomic_store_explicit(&wf_pl.ep, e, memory_order_release);
		}
	}
	int err = wf_pl.err;
	wf_spin_unlock(&wf_pl.init_lock);
	return ep >= 0 ? ep : -err;
}

void wf_poller_handler_set(wf_poll_handler h)
{
	atomic_store_explicit(&wf_pl.handler, h, memory_order_release);
}

void wf_poller_waiting(int delta)
{
	if (delta < 0) {
		atomic_fetch_sub(&wf_pl.waiters, 1);
		return;
	}
	atomic_fetch_add(&wf_pl.waiters, 1);
	/* Nobody watches the set: have a sleeping worker take it.  A hint
	 * only, which a worker going to sleep at this very moment may miss;
	 * what guarantees a watcher is that the waiter's own worker either
	 * goes idle (and takes the set, or finds it held) or stays busy (and
	 * the monitor polls, wf_poller_monitor). */
	if (!atomic_load(&wf_pl.holder) && atomic_load(&wf_rt.nsleeping))
		wf_kick_idle();
}

/* Descriptors are waited on and nobody watches them: an idle worker
 * should sleep in the poller now rather than spin first. */
bool wf_poller_wanted(void)
{
	return atomic_load_explicit(&wf_pl.waiters, memory_order_relaxed) &&
	       !atomic_load_explicit(&wf_pl.holder, memory_order_relaxed) &&
	       atomic_load_explicit(&wf_pl.handler, memory_order_relaxed);
}

bool wf_poller_take(struct wf_worker *w)
{
	if (!wf_poller_wanted())
		return false;
	uintptr_t none = 0;
	return atomic_compare_exchange_strong(&wf_pl.holder, &none, (uintptr_t)w);
}

int wf_poller_wait(struct wf_worker *w, uint64_t deadline)
{
	(void)w;
	uint64_t now = wf_clock_ns(), to = UINT64_MAX;
	if (deadline != UINT64_MAX)
		to = deadline > now ? deadline - now : 0;
	if (atomic_load_explicit(&wf_pl.waiters, memory_order_relaxed) && to > WF_POLL_NAP_NS)
		to = WF_POLL_NAP_NS;
	int n = wf_kt_epoll_wait(atomic_load_explicit(&wf_pl.ep, memory_order_relaxed),
	                         wf_pl.ev, WF_POLL_EVENTS, to);
	return n > 0 ? n : 0;
}

/* The holder's events (n of them in wf_pl.ev): drop the kick, hand the
 * rest to src/io, and let go of the set. */
static void wf_poller_dispatch(int n)
{
	int m = 0;
	for (int i = 0; i < n; i++) {
		if (wf_pl.ev[i].data.u64 == WF_POLL_KICK)
			wf_kt_eventfd_drain(wf_pl.efd);
		else
			wf_pl.ev[m++] = wf_pl.ev[i];
	}
	uint64_t now = wf_clock_ns();
	atomic_store_explicit(&wf_pl.last, now, memory_order_relaxed);
	wf_poll_handler h = atomic_load_explicit(&wf_pl.handler, memory_order_acquire);
	if (h && (m || atomic_load_explicit(&wf_pl.waiters, memory_order_relaxed)))
		h(wf_pl.ev, m, now);
	atomic_store_explicit(&wf_pl.holder, 0, memory_order_release);
}

void wf_poller_done(struct wf_worker *w, int n)
{
	(void)w;
	wf_poller_dispatch(n);
}

void wf_poller_kick(void)
{
	if (atomic_load_explicit(&wf_pl.ep, memory_order_acquire) >= 0)
		wf_kt_eventfd_signal(wf_pl.efd);
}

void wf_poller_monitor(uint64_t now)
{
	if (!atomic_load_explicit(&wf_pl.waiters, memory_order_relaxed) ||
	    now - atomic_load_explicit(&wf_pl.last, memory_order_relaxed) < WF_POLL_STALE_NS ||
	    !atomic_load_explicit(&wf_pl.handler, memory_order_acquire))
		return;
	uintptr_t none = 0;
	if (!atomic_compare_exchange_strong(&wf_pl.holder, &none, WF_POLL_MONITOR))
		return;
	int n = wf_kt_epoll_wait(atomic_load_explicit(&wf_pl.ep, memory_order_relaxed),
	                         wf_pl.ev, WF_POLL_EVENTS, 0);
	wf_poller_dispatch(n > 0 ? n : 0);
	/* A worker that went to sleep while the monitor held the set slept
	 * on its futex: if it was the last one awake, nobody watches the set
	 * now and the monitor is about to park.  Have a sleeper take it.  The
	 * fence orders the release of the set before the look at nsleeping
	 * (Dekker with wf_idle_sleep, which counts itself, then looks at the
	 * set again). */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&wf_pl.waiters) && atomic_load(&wf_rt.nsleeping))
		wf_kick_idle();
}

/* In a child of fork(): the set and its eventfd are the parent's (the
 * child's copies of the two descriptors name the same epoll instance,
 * whose items are the parent's waits and whose events the parent's
 * workers collect), and whoever held it or waited there does not exist.
 * The child closes its copies and makes a set of its own at its first
 * wait on a descriptor; src/io forgets its waiters the same way (its own
 * fork handler).  On the child's only thread, before it runs anything
 * else. */
void wf_poller_forked_child(void)
{
	int ep = atomic_load_explicit(&wf_pl.ep, memory_order_relaxed);
	if (ep >= 0) {
		int saved = errno;
		close(wf_pl.efd);
		close(ep);
		errno = saved;
	}
	wf_pl.init_lock = (wf_spin_t)WF_SPIN_INIT;
	wf_pl.err = 0;
	atomic_store(&wf_pl.ep, -1);
	atomic_store(&wf_pl.holder, 0);
	atomic_store(&wf_pl.waiters, 0);
	atomic_store(&wf_pl.last, 0);
}
