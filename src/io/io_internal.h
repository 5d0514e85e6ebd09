/*
 * io_internal.h — shared by the files of src/io: descriptor records,
 * waiting for a descriptor, and the state of one drop-in call.
 *
 * src/io sees the scheduler only through park.h (docs/design.md,
 * "Layers"): it parks and wakes threads, and arms descriptors in the
 * poller's epoll set (poller.c), whose events come back to its handler
 * (wait.c).  How each kind of descriptor is handled, and why, is in
 * docs/design.md ("Blocking I/O").
 */
#ifndef WF_IO_INTERNAL_H
#define WF_IO_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>
#include "weft.h"
#include "../sched/park.h"

/* The errno of the kernel thread the caller runs on now.  A green thread
 * may resume on another worker after any park, and the compiler keeps an
 * address of errno computed before it (glibc declares __errno_location
 * const), which then names the old worker's errno.  Such addresses on the
 * thread's stack are rebased when it moves (docs/design.md, "Moving
 * threads between workers"), but src/io, the one layer that reads and sets
 * the caller's errno around calls that may park, does not depend on that:
 * every errno of src/io is WF_ERRNO, read anew through a call the compiler
 * cannot merge with an earlier one. */
int *wf_io_errno(void) WF_HIDDEN __attribute__((noinline));
#define WF_ERRNO (*wf_io_errno())

/* A green thread waiting for one descriptor: lives on its stack for the
 * wait, linked in the descriptor's record while the thread is parked. */
struct wf_io_waiter {
	struct wf_io_waiter *next, *prev;
	struct wf_thread *thread;
	int fd;
	uint32_t events;     /* EPOLLIN, EPOLLOUT, EPOLLPRI wanted */
	uint32_t revents;    /* the events that woke it (0: none, or not woken) */
	int err;             /* EBADF: the descriptor was closed while it waited */
	bool linked;
};

/*
 * What weft knows of one descriptor number.  Records live in a table
 * indexed by the number (fdtable.c), allocated a chunk at a time and never
 * freed, so the poller can look one up for any event without a lock.
 * A record describes the number, not the file behind it: the program may
 * close the number and reuse it for another file at any time, unseen.
 *
 * Invariants (under `lock`):
 *  - the waiters of the number are linked in head..tail, and nwait counts
 *    them;
 *  - `registered` is 1 when an epoll item for this number and the file it
 *    named when it was armed may exist in the poller's set (it may have
 *    vanished with the file: arming then finds out, wait.c);
 *  - while `closing` is nonzero (weft_close runs), no thread may start a
 *    wait on the number: it yields and retries its call (wait.c).
 */
struct wf_io_fd {
	wf_spin_t lock;
	uint8_t registered;
	uint8_t closing;
	_Atomic uint32_t nwait;  /* written under lock; read without it by the sweep */
	struct wf_io_waiter *head, *tail;
};

/* fdtable.c: the record of fd, allocated on first use; NULL when fd is
 * negative, too large for the table (WF_IO_MAX_FD), or out of memory. */
struct wf_io_fd *wf_io_fd_get(int fd) WF_HIDDEN;
/* The record of fd if it exists (never allocates). */
struct wf_io_fd *wf_io_fd_find(int fd) WF_HIDDEN;
/* One past the highest number that has a record. */
int wf_io_fd_top(void) WF_HIDDEN;
#define WF_IO_MAX_FD (1 << 24)
#define WF_IO_CHUNK_SHIFT 12                     /* records per chunk: 4096 */
#define WF_IO_CHUNK (1 << WF_IO_CHUNK_SHIFT)

/* wait.c: park the calling green thread until fd may be ready for
 * `events` (EPOLL* bits), the deadline passes (0: none) or the number is
 * closed with weft_close.  Returns 0 (woken: try again, it may be a false
 * alarm; also after a yield when weft_close was running on the number),
 * ETIMEDOUT, EBADF (closed while it waited), EINTR (a cancellation or a
 * signal sent to the thread: the caller then calls wf_interrupted), or an
 * error of arming it:
 * EPERM when the poller cannot watch it (a regular file; the caller then
 * blocks in the kernel instead), ENOMEM, ENOSPC.  *revents, when not NULL,
 * receives the events that woke it. */
int wf_io_wait(int fd, uint32_t events, uint64_t deadline, uint32_t *revents) WF_HIDDEN;
/* The same for several descriptors at once (weft_poll): n waiters with
 * fd and events set; any one's readiness wakes the caller.  Returns 0,
 * ETIMEDOUT, EBADF, EINTR, or an arming error; each waiter's revents and err say
 * what happened to it. */
int wf_io_wait_many(struct wf_io_waiter *w, int n, uint64_t deadline) WF_HIDDEN;
/* Wake every thread waiting on fd with EBADF, and refuse new waits until
 * wf_io_closed (weft_close).  No effect on a number without a record. */
void wf_io_closing(int fd) WF_HIDDEN;
void wf_io_closed(int fd) WF_HIDDEN;

/* The calling green thread, initializing weft on first use; NULL on a
 * kernel thread that is not a green thread (the call is then libc's). */
static inline struct wf_thread *wf_io_self(void)
{
	struct wf_thread *t = wf_current();
	if (wf_likely(t))
		return t;
	int saved = WF_ERRNO;
	t = wf_ensure_init() ? NULL : wf_current();
	WF_ERRNO = saved;
	return t;
}

/* call.c: one drop-in call, across the waits it makes. */
struct wf_io_call {
	int fd;
	bool sock;           /* fd is a socket (its own timeouts apply) */
	bool checked;        /* O_NONBLOCK and the socket's timeouts were read */
	bool nonblock;       /* ... and the descriptor is nonblocking */
	uint64_t deadline;   /* weft's deadline (ETIMEDOUT), 0 none */
	uint64_t sock_dl;    /* SO_RCVTIMEO / SO_SNDTIMEO as a deadline (EAGAIN), 0 none */
};

/* What happens when an attempt would block (wf_io_blocked's answer, when
 * it is not an errno value). */
enum {
	WF_IO_RETRY = 0,     /* waited: the descriptor may be ready, try again */
	WF_IO_KERNEL = -1,   /* cannot be watched: do the call blocking, in a
	                        blocking section */
};

/* An attempt on c->fd said it would block (EAGAIN): WF_IO_RETRY after a
 * wait, WF_IO_KERNEL, or the errno value the call must fail with (EAGAIN:
 * the program made the descriptor nonblocking, or its socket timeout
 * passed; ETIMEDOUT: the deadline passed; EBADF: closed while waiting). */
int wf_io_blocked(struct wf_io_call *c, uint32_t events) WF_HIDDEN;

/* How weft avoids blocking on a descriptor that is not a socket (from
 * fstat; docs/design.md, "Blocking I/O"). */
enum wf_io_kind {
	WF_FDK_NOWAIT,      /* pipes, eventfd, timerfd, signalfd, /dev/null...:
	                        RWF_NOWAIT; EOPNOTSUPP turns it into READY */
	WF_FDK_READY,       /* FIFOs, inotify, eventfd writes: readiness, then
	                        the call in a blocking section */
	WF_FDK_BLOCKING,    /* regular files, directories, block devices,
	                        ttys and other character devices: the call in a
	                        blocking section */
};
/* The kind of fd (not a socket), or -1 with errno set (EBADF). */
int wf_io_kind(int fd) WF_HIDDEN;

/* Is fd ready for `events` (POLL* bits) right now?  1 ready (or in error,
 * or hung up), 0 not, -1 with errno set (EBADF for a closed number). */
int wf_io_ready_now(int fd, short events) WF_HIDDEN;

/* expr (a call that may block in the kernel) inside a blocking section
 * (docs/design.md, "Blocked workers"); its errno survives the section.
 * A cancellation point at the entry: a request that comes while the call
 * is in the kernel is acted on at the next point. */
#define WF_IO_IN_KERNEL(expr) __extension__ ({ \
	wf_cancel_point(); \
	wf_blocking_enter(); \
	__typeof__(expr) r_ = (expr); \
	int e_ = WF_ERRNO; \
	wf_blocking_leave(); \
	WF_ERRNO = e_; \
	r_; })

/* Deadlines: weft's public deadlines are absolute CLOCK_MONOTONIC ns, 0 for
 * none, as park.h's. */

/* rw.c, sock.c: the bodies behind the public calls, with a deadline. */
ssize_t wf_io_readv(int fd, const struct iovec *iov, int iovcnt, uint64_t deadline) WF_HIDDEN;
ssize_t wf_io_writev(int fd, const struct iovec *iov, int iovcnt, uint64_t deadline) WF_HIDDEN;
ssize_t wf_io_recvmsg(int fd, struct msghdr *m, int flags, uint64_t deadline) WF_HIDDEN;
ssize_t wf_io_sendmsg(int fd, const struct msghdr *m, int flags, uint64_t deadline) WF_HIDDEN;

#endif
