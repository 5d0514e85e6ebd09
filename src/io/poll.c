/*
 * poll.c — weft_poll, weft_poll_until and weft_fd_wait: waiting for
 * readiness itself.
 *
 * A first poll(2) with a zero timeout answers every call whose descriptors
 * are ready already, including the cases poll reports without waiting (a
 * closed number: POLLNVAL; a regular file: always ready).  Otherwise the
 * green thread waits on each descriptor through the poller (wait.c) and,
 * woken, asks poll(2) again: a wake-up is a hint, poll's answer is the
 * result.  Negative descriptors are skipped, as poll skips them.
 */
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include "io_internal.h"

/* poll's events as epoll's (the same bits on Linux, spelled out). */
static uint32_t wf_io_epoll_events(short events)
{
	uint32_t e = 0;
	if (events & (POLLIN | POLLRDNORM | POLLRDBAND))
		e |= EPOLLIN;
	if (events & POLLPRI)
		e |= EPOLLPRI;
	if (events & (POLLOUT | POLLWRNORM | POLLWRBAND))
		e |= EPOLLOUT;
	return e;
}

/* Wait until one of fds may be ready, or the deadline: 0, ETIMEDOUT, or an
 * errno value (ENOMEM). */
static int wf_io_poll_wait(struct pollfd *fds, nfds_t n, uint64_t deadline)
{
	struct wf_io_waiter small[4], *w = small;
	nfds_t k = 0;
	for (nfds_t i = 0; i < n; i++)
		k += fds[i].fd >= 0;
	if (k > 4 && !(w = malloc(sizeof *w * k)))
		return ENOMEM;
	k = 0;
	for (nfds_t i = 0; i < n; i++) {
		if (fds[i].fd < 0)
			continue;
		w[k].fd = fds[i].fd;
		w[k++].events = wf_io_epoll_events(fds[i].events);
	}
	/* No descriptor at all: poll sleeps until its timeout, and so does
	 * this.  A number closed meanwhile (EBADF): poll answers for it on
	 * the next look. */
	int e = wf_io_wait_many(w, (int)k, deadline);
	if (w != small)
		free(w);
	return e == EBADF ? 0 : e;
}

/* A kernel thread that is not a green thread waits in poll(2) itself, the
 * deadline turned into a timeout again after each interruption. */
static int wf_io_poll_kernel(struct pollfd *fds, nfds_t n, uint64_t deadline)
{
	for (;;) {
		int ms = -1;
		if (deadline) {
			uint64_t now = wf_clock_ns();
			uint64_t left = deadline > now ? deadline - now : 0;
			ms = left / 1000000ull > INT32_MAX ? INT32_MAX
			     : (int)(left / 1000000ull + (left % 1000000ull != 0));
		}
		int r = poll(fds, n, ms);
		if (r != 0 && !(r < 0 && WF_ERRNO == EINTR))
			return r;
		if (r == 0 && deadline && wf_clock_ns() >= deadline)
			return 0;
	}
}

/* poll's answer once something is ready, or 0 once the deadline (0: none)
 * has passed; -1 with errno. */
static int wf_io_poll(struct pollfd *fds, nfds_t n, uint64_t deadline)
{
	for (;;) {
		int r = poll(fds, n, 0);
		if (r != 0)
			return r;
		if (deadline && wf_clock_ns() >= deadline)
			return 0;
		int e = wf_io_poll_wait(fds, n, deadline);
		if (e == EPERM)   /* a number weft cannot watch: poll(2) itself */
			return WF_IO_IN_KERNEL(wf_io_poll_kernel(fds, n, deadline));
		if (e == EINTR) {
			(void)wf_interrupted();   /* poll is never restarted */
			WF_ERRNO = EINTR;
			return -1;
		}
		if (e && e != ETIMEDOUT) {
			WF_ERRNO = e;
			return -1;
		}
	}
}

int weft_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	if (timeout_ms == 0 || !wf_io_self())
		return poll(fds, n, timeout_ms);
	int saved = WF_ERRNO;
	uint64_t deadline = timeout_ms > 0 ? wf_clock_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
	int r = wf_io_poll(fds, n, deadline);
	if (r >= 0)
		WF_ERRNO = saved;
	return r;
}

int weft_poll_until(struct pollfd *fds, nfds_t n, uint64_t deadline)
{
	int saved = WF_ERRNO;
	int r = wf_io_self() ? wf_io_poll(fds, n, deadline) : wf_io_poll_kernel(fds, n, deadline);
	if (r == 0) {
		WF_ERRNO = ETIMEDOUT;
		return -1;
	}
	if (r > 0)
		WF_ERRNO = saved;
	return r;
}

int weft_fd_wait(int fd, short events, uint64_t deadline)
{
	int saved = WF_ERRNO;
	struct pollfd p = { .fd = fd, .events = events };
	int r = fd < 0 ? (WF_ERRNO = EBADF, -1)
	        : wf_io_self() ? wf_io_poll(&p, 1, deadline) : wf_io_poll_kernel(&p, 1, deadline);
	int e = r < 0 ? WF_ERRNO : r == 0 ? ETIMEDOUT : (p.revents & POLLNVAL) ? EBADF : 0;
	WF_ERRNO = saved;
	return e;
}

uint64_t weft_now_ns(void) { return wf_clock_ns(); }
