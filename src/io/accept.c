/*
 * accept.c — weft_accept, weft_accept4, weft_connect, and their deadline
 * variants.
 *
 * Neither call has a flag that makes it nonblocking on a blocking socket
 * (accept4's SOCK_NONBLOCK is for the new socket), and weft never sets
 * O_NONBLOCK on the program's descriptors.  So:
 *  - accept waits until poll says a connection is queued, then accepts in
 *    a blocking section: if another thread or process took the connection
 *    in between, the call blocks in the kernel as libc's would, and the
 *    worker's other threads are handed on (docs/design.md, "Blocked
 *    workers");
 *  - connect on a blocking socket runs in a blocking section: on loopback
 *    and on a local network it returns within the handshake; a slow peer
 *    holds the kernel thread, not the other green threads.  Its deadline
 *    is checked before the call only: a connect already in the kernel
 *    ends when the kernel's does (the kernel's own timeout, or the
 *    socket's SO_SNDTIMEO);
 *  - on a socket the program made nonblocking both are libc's calls.
 */
#include <sys/socket.h>
#include "io_internal.h"

static int wf_io_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags,
                        uint64_t deadline)
{
	if (!wf_io_self())
		return accept4(fd, addr, len, flags);
	struct wf_io_call c = { .fd = fd, .deadline = deadline, .sock = true };
	for (;;) {
		int e = wf_io_ready_now(fd, POLLIN);
		if (e < 0)
			return -1;
		if (e)
			break;
		/* libc's accept fails at once on what is not a listening socket
		 * (ENOTSOCK, EINVAL): so must this, before it waits. */
		int listening = 0;
		socklen_t optlen = sizeof listening;
		if (!c.checked && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen))
			return -1;
		if (!c.checked && !listening) {
			WF_ERRNO = EINVAL;
			return -1;
		}
		e = wf_io_blocked(&c, EPOLLIN);
		if (e == EAGAIN && c.nonblock)
			return accept4(fd, addr, len, flags);   /* libc's answer, exactly */
		if (e == WF_IO_KERNEL)
			break;
		if (e) {
			WF_ERRNO = e;
			return -1;
		}
	}
	return WF_IO_IN_KERNEL(accept4(fd, addr, len, flags));
}

int weft_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return wf_io_accept(fd, addr, len, 0, 0);
}
int weft_accept_until(int fd, struct sockaddr *addr, socklen_t *len, uint64_t deadline)
{
	return wf_io_accept(fd, addr, len, 0, deadline);
}
int weft_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	return wf_io_accept(fd, addr, len, flags, 0);
}
int weft_accept4_until(int fd, struct sockaddr *addr, socklen_t *len, int flags,
                       uint64_t deadline)
{
	return wf_io_accept(fd, addr, len, flags, deadline);
}

static int wf_io_connect(int fd, const struct sockaddr *addr, socklen_t len, uint64_t deadline)
{
	if (!wf_io_self())
		return connect(fd, addr, len);
	if (deadline && wf_clock_ns() >= deadline) {
		WF_ERRNO = ETIMEDOUT;
		return -1;
	}
	return WF_IO_IN_KERNEL(connect(fd, addr, len));
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	return wf_io_connect(fd, addr, len, 0);
}
int weft_connect_until(int fd, const struct sockaddr *addr, socklen_t len, uint64_t deadline)
{
	return wf_io_connect(fd, addr, len, deadline);
}
