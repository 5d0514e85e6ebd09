/*
 * rw.c — weft_read, weft_write, weft_readv, weft_writev, weft_pread,
 * weft_pwrite, and their deadline variants.
 *
 * Each does what libc's call does, choosing by the kind of descriptor how
 * to avoid blocking the worker (docs/design.md, "Blocking I/O"):
 *  - a socket: the same transfer with MSG_DONTWAIT (recvmsg and sendmsg do
 *    for a socket exactly what read and write do); ENOTSOCK says it is not
 *    one, for the cost of a failed system call;
 *  - a pipe, eventfd, timerfd, signalfd, /dev/null...: preadv2/pwritev2
 *    with RWF_NOWAIT at the current position (offset -1);
 *  - a FIFO, inotify, an eventfd write (RWF_NOWAIT refused: EOPNOTSUPP):
 *    wait until poll says ready, then the call itself in a blocking
 *    section, in case another reader drained it meanwhile;
 *  - a regular file, directory, block device or terminal: the call in a
 *    blocking section.
 * A read returns after its first transfer, as libc's does; a write on a
 * blocking descriptor goes on until everything is written (what libc's
 * write does on a pipe or a stream socket), returning what it wrote if an
 * error or the deadline stops it after some progress.  A socket write
 * after some progress sends with MSG_NOSIGNAL: libc's single call would not
 * raise SIGPIPE once it had written something either.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "io_internal.h"

/* ------------------------------------------------------------------ reads */

/* A read of a descriptor that is not a socket. */
static ssize_t wf_io_readv_file(struct wf_io_call *c, const struct iovec *iov, int iovcnt)
{
	int kind = wf_io_kind(c->fd);
	if (kind < 0)
		return -1;
	while (kind == WF_FDK_NOWAIT) {
		ssize_t r = preadv2(c->fd, iov, iovcnt, -1, RWF_NOWAIT);
		if (r >= 0)
			return r;
		if (WF_ERRNO == EOPNOTSUPP) {
			kind = WF_FDK_READY;
			break;
		}
		if (WF_ERRNO != EAGAIN)
			return -1;
		int e = wf_io_blocked(c, EPOLLIN);
		if (e == WF_IO_KERNEL)
			kind = WF_FDK_BLOCKING;
		else if (e) {
			WF_ERRNO = e;
			return -1;
		}
	}
	while (kind == WF_FDK_READY) {
		int e = wf_io_ready_now(c->fd, POLLIN);
		if (e < 0)
			return -1;
		if (e)
			break;
		e = wf_io_blocked(c, EPOLLIN);
		if (e == EAGAIN)
			return readv(c->fd, iov, iovcnt);  /* nonblocking: libc's answer, exactly */
		if (e == WF_IO_KERNEL)
			break;
		if (e) {
			WF_ERRNO = e;
			return -1;
		}
	}
	return WF_IO_IN_KERNEL(readv(c->fd, iov, iovcnt));
}

ssize_t wf_io_readv(int fd, const struct iovec *iov, int iovcnt, uint64_t deadline)
{
	if (iovcnt < 0 || iovcnt > IOV_MAX || !wf_io_self())
		return readv(fd, iov, iovcnt);
	int saved = WF_ERRNO;
	struct wf_io_call c = { .fd = fd, .deadline = deadline };
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	ssize_t r;
	for (;;) {
		r = recvmsg(fd, &m, MSG_DONTWAIT);
		if (r >= 0 || WF_ERRNO != EAGAIN)
			break;
		c.sock = true;
		int e = wf_io_blocked(&c, EPOLLIN);
		if (e == WF_IO_KERNEL)
			return WF_IO_IN_KERNEL(readv(fd, iov, iovcnt));
		if (e) {
			WF_ERRNO = e;
			return -1;
		}
	}
	if (r < 0 && WF_ERRNO == ENOTSOCK)
		r = wf_io_readv_file(&c, iov, iovcnt);
	if (r >= 0)
		WF_ERRNO = saved;
	return r;
}

static ssize_t wf_io_read(int fd, void *buf, size_t n, uint64_t deadline)
{
	if (!wf_io_self())
		return read(fd, buf, n);
	int saved = WF_ERRNO;
	struct wf_io_call c = { .fd = fd, .deadline = deadline };
	ssize_t r;
	for (;;) {
		r = recv(fd, buf, n, MSG_DONTWAIT);
		if (r >= 0 || WF_ERRNO != EAGAIN)
			break;
		c.sock = true;
		int e = wf_io_blocked(&c, EPOLLIN);
		if (e == WF_IO_KERNEL)
			return WF_IO_IN_KERNEL(read(fd, buf, n));
		if (e) {
			WF_ERRNO = e;
			return -1;
		}
	}
	if (r < 0 && WF_ERRNO == ENOTSOCK) {
		struct iovec v = { buf, n };
		r = wf_io_readv_file(&c, &v, 1);
	}
	if (r >= 0)
		WF_ERRNO = saved;
	return r;
}

ssize_t weft_read(int fd, void *buf, size_t n) { return wf_io_read(fd, buf, n, 0); }
ssize_t weft_read_until(int fd, void *buf, size_t n, uint64_t deadline)
{
	return wf_io_read(fd, buf, n, deadline);
}
ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt)
{
	return wf_io_readv(fd, iov, iovcnt, 0);
}
ssize_t weft_readv_until(int fd, const struct iovec *iov, int iovcnt, uint64_t deadline)
{
	return wf_io_readv(fd, iov, iovcnt, deadline);
}

/* ----------------------------------------------------------------- writes */

/* What is left of a vector after some bytes went: a private copy of it
 * that can be advanced (the caller's is const).  Small vectors live here,
 * larger ones on the heap (`mem`, freed by wf_iov_rest_free). */
struct wf_iov_rest {
	struct iovec *v;
	int n;
	struct iovec *mem;
	struct iovec small[8];
};

/* Advance r past `done` bytes. */
static void wf_iov_rest_advance(struct wf_iov_rest *r, size_t done)
{
	while (r->n && done >= r->v->iov_len) {
		done -= r->v->iov_len;
		r->v++;
		r->n--;
	}
	if (r->n) {
		r->v->iov_base = (char *)r->v->iov_base + done;
		r->v->iov_len -= done;
	}
}

/* Make r the part of iov[0..cnt) after `done` bytes: false if out of
 * memory (the caller then returns what it wrote: a short write). */
static bool wf_iov_rest_init(struct wf_iov_rest *r, const struct iovec *iov, int cnt, size_t done)
{
	r->mem = NULL;
	r->v = r->small;
	if (cnt > 8) {
		int saved = WF_ERRNO;
		r->v = r->mem = malloc(sizeof *r->v * (size_t)cnt);
		WF_ERRNO = saved;
		if (!r->v)
			return false;
	}
	memcpy(r->v, iov, sizeof *r->v * (size_t)cnt);
	r->n = cnt;
	wf_iov_rest_advance(r, done);
	return true;
}

static size_t wf_iov_total(const struct iovec *iov, int cnt)
{
	size_t t = 0;
	for (int i = 0; i < cnt; i++)
		t += iov[i].iov_len;
	return t;
}

#define WF_IO_SOCKET (-2)   /* the kind of a socket, in wf_io_writev */

/* One attempt at writing v[0..n) that never blocks, as `kind` says; -1
 * with errno (EAGAIN: it would have). */
static ssize_t wf_io_write_try(struct wf_io_call *c, int kind, const struct iovec *v, int n,
                               bool started)
{
	if (kind == WF_IO_SOCKET) {
		struct msghdr m = { .msg_iov = (struct iovec *)v, .msg_iovlen = (size_t)n };
		return sendmsg(c->fd, &m, MSG_DONTWAIT | (started ? MSG_NOSIGNAL : 0));
	}
	return pwritev2(c->fd, v, n, -1, RWF_NOWAIT);
}

/* A FIFO, an eventfd (RWF_NOWAIT refused): once poll says ready, write in a
 * blocking section, at most PIPE_BUF at a time so that a ready FIFO takes
 * it without blocking (a write of at most PIPE_BUF stays whole, as POSIX
 * promises).  What writev returns; on a nonblocking descriptor, libc's own
 * answer. */
static ssize_t wf_io_write_ready(struct wf_io_call *c, const struct iovec *v, int n)
{
	for (;;) {
		int e = wf_io_ready_now(c->fd, POLLOUT);
		if (e < 0)
			return -1;
		if (e)
			break;
		e = wf_io_blocked(c, EPOLLOUT);
		if (e == EAGAIN)
			return writev(c->fd, v, n);   /* nonblocking: libc's answer, exactly */
		if (e == WF_IO_KERNEL)
			break;
		if (e) {
			WF_ERRNO = e;
			return -1;
		}
	}
	if (wf_iov_total(v, n) <= PIPE_BUF)
		return WF_IO_IN_KERNEL(writev(c->fd, v, n));
	size_t len = v[0].iov_len < PIPE_BUF ? v[0].iov_len : PIPE_BUF;
	return WF_IO_IN_KERNEL(write(c->fd, v[0].iov_base, len));
}

/* Write what is left in `rest` (after `*done` bytes) until it is all
 * written, the attempt fails, or a wait says stop.  -1 with errno, or 0. */
static int wf_io_write_all(struct wf_io_call *c, int kind, const struct iovec *iov, int iovcnt,
                           size_t total, size_t *done)
{
	struct wf_iov_rest rest = { .v = (struct iovec *)iov, .n = iovcnt };
	bool copied = false;
	int ret = 0;
	if (*done && !(copied = wf_iov_rest_init(&rest, iov, iovcnt, *done)))
		return 0;   /* out of memory: a short write */
	while (*done < total) {
		ssize_t r = kind == WF_FDK_READY ? wf_io_write_ready(c, rest.v, rest.n)
		                                 : wf_io_write_try(c, kind, rest.v, rest.n, *done > 0);
		if (r < 0 && kind == WF_FDK_NOWAIT && WF_ERRNO == EOPNOTSUPP) {
			kind = WF_FDK_READY;
			continue;
		}
		if (r > 0) {
			*done += (size_t)r;
			if (*done >= total)
				break;
			if (copied) {
				wf_iov_rest_advance(&rest, (size_t)r);
			} else if (!(copied = wf_iov_rest_init(&rest, iov, iovcnt, *done))) {
				break;   /* out of memory: a short write */
			}
			continue;   /* the rest may fit now; if not, the attempt says so */
		}
		if (r == 0 || WF_ERRNO != EAGAIN) {
			ret = r < 0 ? -1 : 0;
			break;
		}
		c->sock = kind == WF_IO_SOCKET;
		int e = wf_io_blocked(c, EPOLLOUT);
		if (e == WF_IO_KERNEL) {
			r = WF_IO_IN_KERNEL(writev(c->fd, rest.v, rest.n));
			if (r > 0)
				*done += (size_t)r;
			ret = r < 0 ? -1 : 0;
			break;
		}
		if (e) {
			WF_ERRNO = e;
			ret = -1;
			break;
		}
	}
	if (copied)
		free(rest.mem);
	return ret;
}

ssize_t wf_io_writev(int fd, const struct iovec *iov, int iovcnt, uint64_t deadline)
{
	if (iovcnt < 0 || iovcnt > IOV_MAX || !wf_io_self())
		return writev(fd, iov, iovcnt);
	int saved = WF_ERRNO;
	struct wf_io_call c = { .fd = fd, .deadline = deadline };
	size_t total = wf_iov_total(iov, iovcnt), done = 0;
	/* The first attempt as a socket; ENOTSOCK says which kind it is. */
	ssize_t r = wf_io_write_try(&c, WF_IO_SOCKET, iov, iovcnt, false);
	int kind = WF_IO_SOCKET;
	if (r < 0 && WF_ERRNO == ENOTSOCK) {
		if ((kind = wf_io_kind(fd)) < 0)
			return -1;
		if (kind == WF_FDK_BLOCKING)
			return WF_IO_IN_KERNEL(writev(fd, iov, iovcnt));
		r = kind == WF_FDK_NOWAIT ? wf_io_write_try(&c, kind, iov, iovcnt, false) : -1;
		if (kind == WF_FDK_READY)
			WF_ERRNO = EAGAIN;
	}
	if (r >= 0)
		done = (size_t)r;
	else if (WF_ERRNO != EAGAIN && !(kind == WF_FDK_NOWAIT && WF_ERRNO == EOPNOTSUPP))
		return -1;
	if ((r >= 0 && done >= total) ||
	    wf_io_write_all(&c, kind, iov, iovcnt, total, &done) == 0 || done) {
		WF_ERRNO = saved;
		return (ssize_t)done;
	}
	return -1;
}

ssize_t weft_write(int fd, const void *buf, size_t n)
{
	struct iovec v = { (void *)buf, n };
	return wf_io_writev(fd, &v, 1, 0);
}
ssize_t weft_write_until(int fd, const void *buf, size_t n, uint64_t deadline)
{
	struct iovec v = { (void *)buf, n };
	return wf_io_writev(fd, &v, 1, deadline);
}
ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt)
{
	return wf_io_writev(fd, iov, iovcnt, 0);
}
ssize_t weft_writev_until(int fd, const struct iovec *iov, int iovcnt, uint64_t deadline)
{
	return wf_io_writev(fd, iov, iovcnt, deadline);
}

/* ------------------------------------------------------- pread and pwrite */

/* Positional transfers are for seekable files (a pipe or a socket fails
 * with ESPIPE at once): there is no readiness to wait for, only the disk,
 * so the call runs in a blocking section (docs/design.md, "Blocked
 * workers"). */
ssize_t weft_pread(int fd, void *buf, size_t n, off_t off)
{
	if (!wf_io_self())
		return pread(fd, buf, n, off);
	return WF_IO_IN_KERNEL(pread(fd, buf, n, off));
}

ssize_t weft_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (!wf_io_self())
		return pwrite(fd, buf, n, off);
	return WF_IO_IN_KERNEL(pwrite(fd, buf, n, off));
}
