/*
 * sock.c — weft_recv, weft_recvfrom, weft_recvmsg, weft_send, weft_sendto,
 * weft_sendmsg, and their deadline variants.
 *
 * The transfer itself with MSG_DONTWAIT added; when it says EAGAIN the call
 * waits as call.c decides (the program's O_NONBLOCK and socket timeouts,
 * weft's deadline) and tries again.  Calls the program made nonblocking
 * itself (MSG_DONTWAIT), or that never wait (MSG_OOB, MSG_ERRQUEUE), are
 * libc's.  A send goes on until all is sent, as libc's blocking send does
 * on a stream socket (a datagram is sent whole or not at all), with
 * MSG_NOSIGNAL after some progress (libc's single call would not raise
 * SIGPIPE then either) and without the ancillary data, which went with
 * the first part.  MSG_WAITALL on a stream socket gathers until the buffer
 * is full, the peer closes, or an error; on other sockets it means
 * nothing, as in the kernel; with MSG_PEEK, or through recvmsg, it runs in
 * a blocking section (the kernel waits for the whole amount).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "io_internal.h"

/* Flags with which the call never waits: libc's call as it is. */
#define WF_IO_NOWAIT_FLAGS (MSG_DONTWAIT | MSG_OOB | MSG_ERRQUEUE)

static bool wf_io_stream(int fd)
{
	int type = 0;
	socklen_t len = sizeof type;
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

/* One receive that waits like libc's: -1 with errno, or the count. */
static ssize_t wf_io_recv_once(struct wf_io_call *c, void *buf, size_t n, int flags,
                               struct sockaddr *from, socklen_t *fromlen)
{
	for (;;) {
		ssize_t r = recvfrom(c->fd, buf, n, flags | MSG_DONTWAIT, from, fromlen);
		if (r >= 0 || WF_ERRNO != EAGAIN)
			return r;
		int e = wf_io_blocked(c, EPOLLIN);
		if (e == WF_IO_KERNEL)
			return WF_IO_IN_KERNEL(recvfrom(c->fd, buf, n, flags, from, fromlen));
		if (e) {
			WF_ERRNO = e;
			return -1;
		}
	}
}

static ssize_t wf_io_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
                              socklen_t *fromlen, uint64_t deadline)
{
	if ((flags & WF_IO_NOWAIT_FLAGS) || !wf_io_self())
		return recvfrom(fd, buf, n, flags, from, fromlen);
	if ((flags & (MSG_WAITALL | MSG_PEEK)) == (MSG_WAITALL | MSG_PEEK))
		return WF_IO_IN_KERNEL(recvfrom(fd, buf, n, flags, from, fromlen));
	int saved = WF_ERRNO;
	struct wf_io_call c = { .fd = fd, .deadline = deadline, .sock = true };
	ssize_t r = wf_io_recv_once(&c, buf, n, flags & ~MSG_WAITALL, from, fromlen);
	if ((flags & MSG_WAITALL) && r > 0 && (size_t)r < n && wf_io_stream(fd)) {
		size_t done = (size_t)r;
		while (done < n) {
			r = wf_io_recv_once(&c, (char *)buf + done, n - done, flags & ~MSG_WAITALL,
			                    NULL, NULL);
			if (r <= 0)
				break;
			done += (size_t)r;
		}
		r = (ssize_t)done;   /* what came before an error or the end, as the kernel's */
	}
	if (r >= 0)
		WF_ERRNO = saved;
	return r;
}

ssize_t wf_io_recvmsg(int fd, struct msghdr *m, int flags, uint64_t deadline)
{
	if ((flags & WF_IO_NOWAIT_FLAGS) || !wf_io_self())
		return recvmsg(fd, m, flags);
	if (flags & MSG_WAITALL)
		return WF_IO_IN_KERNEL(recvmsg(fd, m, flags));
	int saved = WF_ERRNO;
	struct wf_io_call c = { .fd = fd, .deadline = deadline, .sock = true };
	for (;;) {
		ssize_t r = recvmsg(fd, m, flags | MSG_DONTWAIT);
		if (r >= 0) {
			WF_ERRNO = saved;
			return r;
		}
		if (WF_ERRNO != EAGAIN)
			return -1;
		int e = wf_io_blocked(&c, EPOLLIN);
		if (e == WF_IO_KERNEL)
			return WF_IO_IN_KERNEL(recvmsg(fd, m, flags));
		if (e) {
			WF_ERRNO = e;
			return -1;
		}
	}
}

/* Send all of buf (to `to`, for an unconnected socket). */
static ssize_t wf_io_sendto(int fd, const void *buf, size_t n, int flags,
                            const struct sockaddr *to, socklen_t tolen, uint64_t deadline)
{
	if ((flags & WF_IO_NOWAIT_FLAGS) || !wf_io_self())
		return sendto(fd, buf, n, flags, to, tolen);
	int saved = WF_ERRNO;
	struct wf_io_call c = { .fd = fd, .deadline = deadline, .sock = true };
	size_t done = 0;
	ssize_t r;
	do {
		int more = done ? MSG_NOSIGNAL : 0;
		r = sendto(fd, (const char *)buf + done, n - done, flags | MSG_DONTWAIT | more, to, tolen);
		if (r > 0) {
			done += (size_t)r;
			continue;
		}
		if (r == 0 || WF_ERRNO != EAGAIN)
			break;
		int e = wf_io_blocked(&c, EPOLLOUT);
		if (e == WF_IO_KERNEL) {
			r = WF_IO_IN_KERNEL(sendto(fd, (const char *)buf + done, n - done, flags | more,
			                           to, tolen));
			if (r > 0)
				done += (size_t)r;
			break;
		}
		if (e) {
			WF_ERRNO = e;
			r = -1;
			break;
		}
	} while (done < n);
	if (done || r >= 0) {
		WF_ERRNO = saved;
		return (ssize_t)done;
	}
	return -1;
}

/* Send all of m's data; the ancillary data goes with the first part. */
ssize_t wf_io_sendmsg(int fd, const struct msghdr *m, int flags, uint64_t deadline)
{
	if ((flags & WF_IO_NOWAIT_FLAGS) || !wf_io_self() || !m)
		return sendmsg(fd, m, flags);
	int saved = WF_ERRNO;
	struct wf_io_call c = { .fd = fd, .deadline = deadline, .sock = true };
	size_t total = 0, done = 0;
	for (size_t i = 0; i < m->msg_iovlen; i++)
		total += m->msg_iov[i].iov_len;
	struct msghdr cur = *m;
	struct iovec small[8], *mem = NULL;
	ssize_t r;
	for (;;) {
		r = sendmsg(fd, &cur, flags | MSG_DONTWAIT | (done ? MSG_NOSIGNAL : 0));
		if (r > 0) {
			done += (size_t)r;
			if (done >= total)
				break;
			if (!mem && cur.msg_iov == m->msg_iov) {
				/* The rest, in a private vector (the caller's is const). */
				struct iovec *v = m->msg_iovlen <= 8 ? small
				                  : (mem = malloc(sizeof *v * m->msg_iovlen));
				if (!v)
					break;   /* out of memory: a short send */
				memcpy(v, m->msg_iov, sizeof *v * m->msg_iovlen);
				cur.msg_iov = v;
			}
			size_t skip = (size_t)r;
			while (cur.msg_iovlen && skip >= cur.msg_iov->iov_len) {
				skip -= cur.msg_iov->iov_len;
				cur.msg_iov++;
				cur.msg_iovlen--;
			}
			cur.msg_iov->iov_base = (char *)cur.msg_iov->iov_base + skip;
			cur.msg_iov->iov_len -= skip;
			cur.msg_control = NULL;   /* sent with the first part */
			cur.msg_controllen = 0;
			continue;
		}
		if (r == 0 || WF_ERRNO != EAGAIN)
			break;
		int e = wf_io_blocked(&c, EPOLLOUT);
		if (e == WF_IO_KERNEL) {
			r = WF_IO_IN_KERNEL(sendmsg(fd, &cur, flags | (done ? MSG_NOSIGNAL : 0)));
			if (r > 0)
				done += (size_t)r;
			break;
		}
		if (e) {
			WF_ERRNO = e;
			r = -1;
			break;
		}
	}
	free(mem);
	if (done || r >= 0) {
		WF_ERRNO = saved;
		return (ssize_t)done;
	}
	return -1;
}

ssize_t weft_recv(int fd, void *buf, size_t n, int flags)
{
	return wf_io_recvfrom(fd, buf, n, flags, NULL, NULL, 0);
}
ssize_t weft_recv_until(int fd, void *buf, size_t n, int flags, uint64_t deadline)
{
	return wf_io_recvfrom(fd, buf, n, flags, NULL, NULL, deadline);
}
ssize_t weft_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
                      socklen_t *fromlen)
{
	return wf_io_recvfrom(fd, buf, n, flags, from, fromlen, 0);
}
ssize_t weft_recvfrom_until(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
                            socklen_t *fromlen, uint64_t deadline)
{
	return wf_io_recvfrom(fd, buf, n, flags, from, fromlen, deadline);
}
ssize_t weft_recvmsg(int fd, struct msghdr *m, int flags)
{
	return wf_io_recvmsg(fd, m, flags, 0);
}
ssize_t weft_recvmsg_until(int fd, struct msghdr *m, int flags, uint64_t deadline)
{
	return wf_io_recvmsg(fd, m, flags, deadline);
}
ssize_t weft_send(int fd, const void *buf, size_t n, int flags)
{
	return wf_io_sendto(fd, buf, n, flags, NULL, 0, 0);
}
ssize_t weft_send_until(int fd, const void *buf, size_t n, int flags, uint64_t deadline)
{
	return wf_io_sendto(fd, buf, n, flags, NULL, 0, deadline);
}
ssize_t weft_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
                    socklen_t tolen)
{
	return wf_io_sendto(fd, buf, n, flags, to, tolen, 0);
}
ssize_t weft_sendto_until(int fd, const void *buf, size_t n, int flags,
                          const struct sockaddr *to, socklen_t tolen, uint64_t deadline)
{
	return wf_io_sendto(fd, buf, n, flags, to, tolen, deadline);
}
ssize_t weft_sendmsg(int fd, const struct msghdr *m, int flags)
{
	return wf_io_sendmsg(fd, m, flags, 0);
}
ssize_t weft_sendmsg_until(int fd, const struct msghdr *m, int flags, uint64_t deadline)
{
	return wf_io_sendmsg(fd, m, flags, deadline);
}
