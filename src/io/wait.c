/*
 * wait.c — a green thread waits for a descriptor: arming it in the
 * poller's epoll set, parking, and being woken when the poller reports its
 * events (docs/design.md, "Blocking I/O").
 *
 * One arming per wait.  A thread that would block on a number links itself
 * in the number's record (fdtable.c) and arms the number in the poller's
 * set with EPOLLONESHOT, for the union of what the number's waiters want,
 * all under the record's lock, then parks, and wf_park releases the lock
 * once the thread is saved (park.h).  For each event the poller reports
 * (wf_io_events) the handler takes the record's lock, wakes the waiters
 * whose events came (all of them on an error or a hang-up) and re-arms for
 * those left; the one-shot item fired at most once.
 *
 * Why arm at every wait instead of registering a descriptor once
 * (edge-triggered, as Go, mio and libuv do): those libraries see every
 * close, because descriptors are their own objects.  weft sees numbers the
 * program owns.  When the program closes a number with close(2) and the
 * file goes away, the kernel drops the epoll item without an event, and
 * when the number is reused for a new file (servers reuse numbers all the
 * time: accept hands out the lowest free one) a number believed registered
 * would have no item for its new file, and its first waiter would sleep
 * for ever.  EPOLL_CTL_MOD finds that out at every wait: it fails with
 * ENOENT exactly when the number's current file has no item, and the
 * number is then added afresh.  The price is one system call per wait.
 * One-shot rather than level-triggered: a level-triggered item would report
 * a readable descriptor again and again until the woken thread read it;
 * edge-triggered without one-shot would report edges nobody waits for.
 *
 * Wake-ups under the lock.  The handler claims each waiter (wf_unpark)
 * under the record's lock, and a woken or timed-out waiter takes that lock
 * before it returns.  So a thread can never begin another wait while a
 * claim meant for this one is still in flight (a claim must never meet a
 * later wait, park.h), and a node is only touched under the lock while its
 * thread is inside the wait.  The lock is per descriptor: the waiter holds
 * it while it arms, the poller while it handles that one descriptor's
 * event.  Lock order: a record's lock, then the scheduler's locks (inside
 * wf_unpark); never two records at once.
 *
 * Closing.  weft_close wakes the number's waiters with EBADF before it
 * closes, and holds off new waits until it has (wf_io_closing, _closed):
 * they yield and retry (wf_io_close_in_progress says why).  A
 * plain close(2) is invisible: once a second while any thread waits, the
 * handler polls every waited number at once (one poll(2)) and wakes the
 * waiters of a closed one with EBADF, after checking under the record's
 * lock that the number is still closed (a number reopened meanwhile has
 * waiters for its new file).  docs/design.md ("Closing a descriptor others
 * wait on") says exactly what is guaranteed.
 *
 * Rejected: a registration per descriptor for life, edge-triggered (see
 * above: a plain close leaves it stale, and nothing says so); waking
 * outside the lock with a hand-shake as src/sync does (the record is never
 * freed and there is nothing to pass on, so the lock costs nothing the
 * hand-shake would save); a poll(2) per wait on a private set (a system
 * call per wait too, and the worker could not sleep on several threads'
 * descriptors at once).
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include "io_internal.h"

#define WF_IO_SWEEP_NS 1000000000ull   /* closed numbers found within this */
#define WF_IO_CLOSING (-1)              /* wf_io_wait_many: weft_close runs */

static void wf_io_link(struct wf_io_fd *r, struct wf_io_waiter *n)
{
	n->next = NULL;
	n->prev = r->tail;
	if (r->tail)
		r->tail->next = n;
	else
		r->head = n;
	r->tail = n;
	n->linked = true;
	atomic_store_explicit(&r->nwait, atomic_load_explicit(&r->nwait, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

static void wf_io_unlink(struct wf_io_fd *r, struct wf_io_waiter *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		r->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		r->tail = n->prev;
	n->next = n->prev = NULL;
	n->linked = false;
	atomic_store_explicit(&r->nwait, atomic_load_explicit(&r->nwait, memory_order_relaxed) - 1,
	                      memory_order_relaxed);
}

/* Arm r's number in the poller's set for what its waiters want (r locked,
 * at least one waiter linked).  0 or an errno value: EPERM for a file epoll
 * cannot watch (a regular file, a directory), EBADF, ENOMEM, ENOSPC. */
static int wf_io_arm(struct wf_io_fd *r, int fd)
{
	int ep = wf_poller_fd();
	if (ep < 0)
		return -ep;
	uint32_t want = 0;
	for (const struct wf_io_waiter *n = r->head; n; n = n->next)
		want |= n->events;
	struct epoll_event ev = { .events = want | EPOLLONESHOT, .data.u64 = (uint64_t)fd };
	if (r->registered) {
		if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == 0)
			return 0;
		if (WF_ERRNO != ENOENT)
			return WF_ERRNO;
		/* The number's file has no item: a new file behind an old number. */
		r->registered = 0;
	}
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 ||
	    (WF_ERRNO == EEXIST && epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == 0)) {
		r->registered = 1;
		return 0;
	}
	return WF_ERRNO;
}

/* Wake, under r's lock, the waiters that `got` concerns: those waiting for
 * one of its events, or all of them on an error or a hang-up, or all of
 * them with `err` when it is set.  A claim that fails means the waiter's
 * deadline won: it finds itself unlinked and returns ETIMEDOUT. */
static void wf_io_wake(struct wf_io_fd *r, uint32_t got, int err)
{
	bool all = err || (got & (EPOLLERR | EPOLLHUP));
	struct wf_io_waiter *n = r->head;
	while (n) {
		struct wf_io_waiter *next = n->next;
		if (all || (n->events & got)) {
			wf_io_unlink(r, n);
			n->revents = got;
			n->err = err;
			wf_unpark(n->thread);
		}
		n = next;
	}
}

/* --- the poller's side --------------------------------------------------- */

/* The sweep's state: only the thread holding the poller calls the handler,
 * one at a time (poller.c), so it needs no lock. */
static uint64_t wf_io_next_sweep;
static struct pollfd *wf_io_sweep_fds;
static int wf_io_sweep_cap;

static bool wf_io_sweep_add(int *k, int fd)
{
	if (*k == wf_io_sweep_cap) {
		int cap = wf_io_sweep_cap ? 2 * wf_io_sweep_cap : 256;
		struct pollfd *p = realloc(wf_io_sweep_fds, sizeof *p * (size_t)cap);
		if (!p)
			return false;
		wf_io_sweep_fds = p;
		wf_io_sweep_cap = cap;
	}
	wf_io_sweep_fds[(*k)++] = (struct pollfd){ .fd = fd };
	return true;
}

/* Wake the waiters of numbers closed with close(2) (see the top). */
static void wf_io_sweep(void)
{
	int k = 0;
	for (int fd = 0, top = wf_io_fd_top(); fd < top; fd++) {
		struct wf_io_fd *r = wf_io_fd_find(fd);
		if (!r) {
			fd |= WF_IO_CHUNK - 1;   /* a chunk never allocated: skip it */
			continue;
		}
		if (atomic_load_explicit(&r->nwait, memory_order_relaxed) && !wf_io_sweep_add(&k, fd))
			break;
	}
	if (!k || poll(wf_io_sweep_fds, (nfds_t)k, 0) <= 0)
		return;
	for (int i = 0; i < k; i++) {
		if (!(wf_io_sweep_fds[i].revents & POLLNVAL))
			continue;
		int fd = wf_io_sweep_fds[i].fd;
		struct wf_io_fd *r = wf_io_fd_find(fd);
		wf_spin_lock(&r->lock);
		/* Still closed now that no wait can begin on it (the lock): the
		 * waiters waited on the file that went away. */
		if (fcntl(fd, F_GETFD) < 0 && WF_ERRNO == EBADF) {
			wf_io_wake(r, 0, EBADF);
			r->registered = 0;
		}
		wf_spin_unlock(&r->lock);
	}
}

static void wf_io_events(const struct epoll_event *ev, int n, uint64_t now)
{
	for (int i = 0; i < n; i++) {
		int fd = (int)ev[i].data.u64;
		struct wf_io_fd *r = wf_io_fd_find(fd);
		if (!r)
			continue;
		wf_spin_lock(&r->lock);
		wf_io_wake(r, ev[i].events, 0);
		/* The item fired and is disarmed: arm it for those still
		 * waiting; if that fails, let them retry and meet the error. */
		if (r->head && wf_io_arm(r, fd))
			wf_io_wake(r, EPOLLERR, 0);
		wf_spin_unlock(&r->lock);
	}
	if (now >= wf_io_next_sweep) {
		wf_io_sweep();
		wf_io_next_sweep = now + WF_IO_SWEEP_NS;
	}
}

/* In a child of fork(), on its only thread: the waiters linked in the
 * records are threads that do not exist there, a record's lock may be
 * held by one of them, and every registration was in the parent's set,
 * which the child no longer uses (the scheduler gives it a set of its own:
 * poller.c).  Each record starts over. */
static void wf_io_forked_child(void)
{
	for (int fd = 0, top = wf_io_fd_top(); fd < top; fd += WF_IO_CHUNK) {
		struct wf_io_fd *r = wf_io_fd_find(fd);
		for (int i = 0; r && i < WF_IO_CHUNK; i++)
			r[i] = (struct wf_io_fd){ .lock = WF_SPIN_INIT };
	}
	wf_io_next_sweep = 0;
}

static void wf_io_attach(void)
{
	static atomic_bool attached;
	if (wf_unlikely(!atomic_load_explicit(&attached, memory_order_acquire))) {
		static wf_spin_t once = WF_SPIN_INIT;
		wf_spin_lock(&once);
		if (!atomic_load_explicit(&attached, memory_order_relaxed)) {
			wf_poller_attach(wf_io_events);
			/* Registered after weft's own fork handlers (weft is up):
			 * its child handler runs after the scheduler's. */
			wf_park_atfork_child(wf_io_forked_child);
			atomic_store_explicit(&attached, true, memory_order_release);
		}
		wf_spin_unlock(&once);
	}
}

/* --- the waiter's side --------------------------------------------------- */

/* A wait met weft_close running on its number.  It must not fail: once the
 * closer's close(2) has returned, the number may already name a new file
 * that another thread opened (accept and socket hand out the lowest free
 * number), and the caller may be that thread, about to wait on its own new
 * socket.  Nor may it wait: the closer's wake-up has passed.  So it lets
 * the closer finish (a yield: the closer is running or runnable, and
 * weft_close does not block on weft) and answers "try again": the caller's
 * next attempt meets the closed number (EBADF, as libc's call would) or the
 * new file. */
static int wf_io_close_in_progress(void)
{
	wf_yield_internal();
	return 0;
}

int wf_io_wait(int fd, uint32_t events, uint64_t deadline, uint32_t *revents)
{
	struct wf_thread *self = wf_current();
	struct wf_io_fd *r = wf_io_fd_get(fd);
	if (!r)
		return fd < 0 ? EBADF : EPERM;   /* beyond the table: block in the kernel */
	wf_io_attach();
	struct wf_io_waiter n = { .thread = self, .fd = fd, .events = events };
	wf_spin_lock(&r->lock);
	if (r->closing) {
		wf_spin_unlock(&r->lock);
		return wf_io_close_in_progress();
	}
	wf_poller_wait_count(1);
	/* A cancellation point, and a signal sent to the thread ends the
	 * wait (wf_io_blocked decides between EINTR and a restart). */
	wf_park_prepare_intr(self, WF_INTR_CANCEL | WF_INTR_SIGNAL);
	wf_io_link(r, &n);
	int e = wf_io_arm(r, fd);
	if (e) {
		wf_io_unlink(r, &n);   /* never seen by a waker: the wait is dropped */
		wf_spin_unlock(&r->lock);
		wf_poller_wait_count(-1);
		return e;
	}
	wf_park_reason(self, WF_BLOCK_FD, (const void *)(uintptr_t)fd);
	int w = wf_park(&r->lock, deadline);
	wf_spin_lock(&r->lock);
	if (n.linked)
		wf_io_unlink(r, &n);
	wf_spin_unlock(&r->lock);
	wf_poller_wait_count(-1);
	if (revents)
		*revents = n.revents;
	return n.err ? n.err : w;
}

int wf_io_wait_many(struct wf_io_waiter *ws, int count, uint64_t deadline)
{
	struct wf_thread *self = wf_current();
	wf_io_attach();
	wf_poller_wait_count(1);
	/* Published on several records, unlocking each: a waker may claim the
	 * wait from the first one on, so its deadline is set first (park.h). */
	wf_park_prepare_until_intr(self, deadline, WF_INTR_CANCEL | WF_INTR_SIGNAL);
	wf_park_reason(self, WF_BLOCK_POLL, NULL);
	int err = 0, linked = 0;
	while (linked < count && !err) {
		struct wf_io_waiter *n = &ws[linked];
		int fd = n->fd;
		uint32_t events = n->events;
		*n = (struct wf_io_waiter){ .thread = self, .fd = fd, .events = events };
		struct wf_io_fd *r = wf_io_fd_get(n->fd);
		if (!r) {
			err = n->fd < 0 ? EBADF : EPERM;
			break;
		}
		wf_spin_lock(&r->lock);
		if (r->closing) {
			err = WF_IO_CLOSING;
		} else {
			wf_io_link(r, n);
			if ((err = wf_io_arm(r, n->fd)))
				wf_io_unlink(r, n);
			else
				linked++;
		}
		wf_spin_unlock(&r->lock);
	}
	/* On an error, end the wait at once, unless a waker or the timer
	 * already claimed it and queued the caller: then park to be resumed
	 * from that queue. */
	int w = err && wf_park_cancel() ? 0 : wf_park_armed();
	for (int i = 0; i < linked; i++) {
		struct wf_io_fd *r = wf_io_fd_find(ws[i].fd);
		wf_spin_lock(&r->lock);
		if (ws[i].linked)
			wf_io_unlink(r, &ws[i]);
		wf_spin_unlock(&r->lock);
		if (!err && ws[i].err)
			err = ws[i].err;
	}
	wf_poller_wait_count(-1);
	/* An interrupter that claimed the wait first is answered (the caller
	 * acts on it, then tries again and meets the close or the new file). */
	if (err == WF_IO_CLOSING)
		return w == EINTR ? EINTR : wf_io_close_in_progress();
	return err ? err : w;
}

/* --- weft_close ---------------------------------------------------------- */

void wf_io_closing(int fd)
{
	struct wf_io_fd *r = wf_io_fd_find(fd);
	if (!r)
		return;
	wf_spin_lock(&r->lock);
	r->closing++;
	wf_io_wake(r, 0, EBADF);
	wf_spin_unlock(&r->lock);
}

void wf_io_closed(int fd)
{
	struct wf_io_fd *r = wf_io_fd_find(fd);
	if (!r)
		return;
	wf_spin_lock(&r->lock);
	r->closing--;
	r->registered = 0;   /* whatever it names next is a new file */
	wf_spin_unlock(&r->lock);
}
