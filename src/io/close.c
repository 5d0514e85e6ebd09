/*
 * close.c — weft_close: close(2), after waking every green thread waiting
 * on the descriptor in a weft call (they fail with EBADF).
 *
 * close(2) alone cannot do that: when it releases the file the kernel drops
 * the file from the poller's epoll set without an event, and a thread
 * inside the kernel on the descriptor (libc's blocking read) is not woken
 * either; weft only finds out at its next check of waited descriptors,
 * within about a second (wait.c).  While weft_close runs, a wait that
 * begins on the same number fails with EBADF at once, so no thread can
 * slip in between the wake-up and the close.  Threads blocked in the
 * kernel on the descriptor (in a blocking section: a regular file, a
 * terminal, an accept that lost its connection to another thread) are not
 * woken: as with libc, they hold the file until their call returns.
 */
#include <unistd.h>
#include "io_internal.h"

int weft_close(int fd)
{
	int saved = WF_ERRNO;
	wf_io_closing(fd);
	int r = close(fd);
	wf_io_closed(fd);
	if (r == 0)
		WF_ERRNO = saved;
	return r;
}
