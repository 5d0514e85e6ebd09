/*
 * call.c — what a drop-in call does when its attempt would block, and what
 * kind of descriptor it works on (docs/design.md, "Blocking I/O").
 *
 * A drop-in call must do what libc's would, except that waiting parks the
 * green thread instead of its worker.  Its attempts never block (the
 * socket call with MSG_DONTWAIT, preadv2/pwritev2 with RWF_NOWAIT); when
 * one says EAGAIN, libc's call would have waited, unless the program asked
 * it not to:
 *  - the descriptor is in nonblocking mode (O_NONBLOCK, which weft never
 *    changes): libc's call fails with EAGAIN, and so does weft's;
 *  - a socket has a receive or send timeout (SO_RCVTIMEO, SO_SNDTIMEO):
 *    libc's call waits that long, then fails with EAGAIN (or returns what
 *    it has), and so does weft's;
 *  - weft's own deadline (the _until calls): ETIMEDOUT.
 * These are read when the call would first block (one fcntl, plus one
 * getsockopt for a socket), not at every call: a call whose attempt
 * succeeds costs nothing more than libc's.  They are read again for every
 * call, not remembered per descriptor: the program may change them at any
 * time, and weft would not see it.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <termios.h>
#include "io_internal.h"

/* WF_ERRNO (io_internal.h).  As far as the compiler knows, the empty asm
 * may change e and has an effect of its own: without it gcc would find
 * this function const, as __errno_location is declared, and could merge
 * calls to it across a park again. */
int *wf_io_errno(void)
{
	int *e = __errno_location();
	__asm__ volatile("" : "+r"(e));
	return e;
}

/* Read the program's settings for c->fd (first would-block of the call):
 * 0, EAGAIN when the descriptor is nonblocking, or the fcntl error. */
static int wf_io_settings(struct wf_io_call *c, uint32_t events)
{
	c->checked = true;
	int fl = fcntl(c->fd, F_GETFL);
	if (fl < 0)
		return WF_ERRNO;
	if (fl & O_NONBLOCK) {
		c->nonblock = true;
		return EAGAIN;
	}
	if (c->sock) {
		struct timeval tv;
		socklen_t len = sizeof tv;
		int opt = events & EPOLLOUT ? SO_SNDTIMEO : SO_RCVTIMEO;
		if (getsockopt(c->fd, SOL_SOCKET, opt, &tv, &len) == 0 && (tv.tv_sec || tv.tv_usec))
			c->sock_dl = wf_clock_ns() + (uint64_t)tv.tv_sec * 1000000000ull +
			             (uint64_t)tv.tv_usec * 1000ull;
	}
	return 0;
}

int wf_io_blocked(struct wf_io_call *c, uint32_t events)
{
	if (c->nonblock)
		return EAGAIN;
	if (!c->checked) {
		int e = wf_io_settings(c, events);
		if (e)
			return e;
	}
	uint64_t dl = c->deadline;
	if (c->sock_dl && (!dl || c->sock_dl < dl))
		dl = c->sock_dl;
	if (dl && wf_clock_ns() >= dl)
		return dl == c->deadline ? ETIMEDOUT : EAGAIN;
	int e = wf_io_wait(c->fd, events, dl, NULL);
	switch (e) {
	case 0:
	case ETIMEDOUT:
		return WF_IO_RETRY;   /* one more attempt; then the deadline answers */
	case EPERM:
		return WF_IO_KERNEL;
	case EINTR:
		/* A cancellation acts here; a signal's handler runs, and the
		 * call waits again if the kernel would have restarted it
		 * (SA_RESTART, and no timeout: a socket's or weft's). */
		return wf_interrupted() == 0 && !dl ? WF_IO_RETRY : EINTR;
	default:
		return e;
	}
}

int wf_io_kind(int fd)
{
	struct stat st;
	if (fstat(fd, &st))
		return -1;
	switch (st.st_mode & S_IFMT) {
	case S_IFIFO:
	case 0:   /* an anonymous inode: eventfd, timerfd, signalfd, inotify... */
		return WF_FDK_NOWAIT;
	case S_IFCHR: {
		/* A terminal's read may return early by its own rules (VMIN,
		 * VTIME) that readiness does not show: only the kernel can do
		 * it exactly.  Other character devices: try RWF_NOWAIT. */
		struct termios t;
		int saved = WF_ERRNO;
		bool tty = tcgetattr(fd, &t) == 0;
		WF_ERRNO = saved;
		return tty ? WF_FDK_BLOCKING : WF_FDK_NOWAIT;
	}
	default:  /* regular files, directories, block devices */
		return WF_FDK_BLOCKING;
	}
}

int wf_io_ready_now(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r = poll(&p, 1, 0);
	if (r < 0)
		return -1;
	if (p.revents & POLLNVAL) {
		WF_ERRNO = EBADF;
		return -1;
	}
	return r > 0;
}
