/*
 * epoll_sleep.c — the second way a kernel worker sleeps: in an epoll set,
 * woken by descriptor readiness, by a deadline, or by an eventfd that is a
 * member of the set (the wake-up another thread sends).  The scheduler's
 * poller (src/sched/poller.c) is built on it; this file knows nothing of
 * green threads or of who waits on which descriptor.
 *
 * Raw system calls only, as in futex.c: the kernel's result comes back as
 * a negative errno value and the caller's errno is never touched (the
 * green thread whose worker makes these calls owns it).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kthread.h"
#include "kt_syscall.h"

int wf_kt_epoll_create(void)
{
	return (int)wf_syscall2(SYS_epoll_create1, EPOLL_CLOEXEC, 0);
}

int wf_kt_eventfd(void)
{
	return (int)wf_syscall2(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
}

int wf_kt_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{
	return (int)wf_syscall4(SYS_epoll_ctl, ep, op, fd, ev);
}

/* epoll_pwait2 (Linux 5.11) takes the timeout in nanoseconds; where the
 * kernel lacks it (ENOSYS, remembered) epoll_pwait takes milliseconds,
 * rounded up so that a deadline is never met early.  No signal mask is
 * passed: the worker's own stays in force. */
static int wf_kt_have_pwait2 = 1;

int wf_kt_epoll_wait(int ep, struct epoll_event *ev, int n, uint64_t timeout_ns)
{
	if (__atomic_load_n(&wf_kt_have_pwait2, __ATOMIC_RELAXED)) {
		struct timespec ts = { (time_t)(timeout_ns / 1000000000ull),
		                       (long)(timeout_ns % 1000000000ull) };
		long r = wf_syscall6(SYS_epoll_pwait2, ep, (long)ev, n,
		                     timeout_ns == UINT64_MAX ? 0 : (long)&ts, 0, 0);
		if (r != -ENOSYS)
			return (int)r;
		__atomic_store_n(&wf_kt_have_pwait2, 0, __ATOMIC_RELAXED);
	}
	long ms = -1;
	if (timeout_ns != UINT64_MAX) {
		uint64_t m = timeout_ns / 1000000ull + (timeout_ns % 1000000ull != 0);
		ms = m > INT32_MAX ? INT32_MAX : (long)m;
	}
	return (int)wf_syscall6(SYS_epoll_pwait, ep, (long)ev, n, ms, 0, 0);
}

void wf_kt_eventfd_signal(int efd)
{
	uint64_t one = 1;
	wf_syscall3(SYS_write, efd, &one, sizeof one);
}

void wf_kt_eventfd_drain(int efd)
{
	uint64_t v;
	wf_syscall3(SYS_read, efd, &v, sizeof v);   /* nonblocking: EAGAIN if empty */
}
