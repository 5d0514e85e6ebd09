/*
 * worker_timer.c — per-worker preemption timers.
 *
 * Each timer counts its worker's own CPU time (the thread CPU clock of that
 * kernel thread) and is delivered with SIGEV_THREAD_ID to that thread only.
 *
 * Why CPU time.  A timer tick is a signal, and a signal whose handler runs
 * while its thread sleeps in a system call ends that call: nanosleep,
 * poll, epoll_wait, sigtimedwait, a timed futex wait, a read with a socket
 * timeout return EINTR (or, for sleep(), early), whatever SA_RESTART says.
 * With a CLOCK_MONOTONIC timer, sleep(1) in a green thread returned after
 * 11 ms and usleep(500000) failed at once.  A CPU-time timer cannot do
 * that: the clock does not advance while the worker sleeps in the kernel,
 * and the kernel checks CPU timers at its scheduler tick and, on kernels
 * with POSIX_CPU_TIMERS_TASK_WORK (x86-64 and arm64 Linux since 5.11/5.18),
 * sends the signal from the thread's return to user mode, after any system
 * call it was in has completed.  Measured: a thread alternating a spin and
 * usleep/nanosleep/poll/epoll_wait got EINTR from 52 % of its calls with a
 * monotonic 100 us timer and from none of ~8,000 with a CPU-time one.  A
 * worker blocked in the kernel also takes no ticks at all, so it no
 * longer burns CPU re-arming a timer for threads it cannot run.
 *
 * The cost: CPU timers fire only at the kernel's scheduler tick, so a
 * quantum or a deadline is rounded up to the next one (4 ms at HZ=250,
 * 1 ms at HZ=1000), and a worker that is not given a CPU (more workers
 * than CPUs) counts its quantum in CPU time, not wall time.
 *
 * Rejected: CLOCK_MONOTONIC (the EINTR above); a monitor that signals only
 * workers it sees running (the worker may enter a system call between the
 * look and the signal: a narrower window, not a closed one).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "kt_internal.h"
#include "worker_timer.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

int wf_worker_timer_create(wf_worker_timer *t, pid_t tid, int sig, void *cookie)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = sig;
	sev.sigev_value.sival_ptr = cookie;
	sev.sigev_notify_thread_id = tid;
	if (timer_create(wf_kt_cpu_clock(tid), &sev, &t->id))
		return errno;
	t->created = 1;
	return 0;
}

static void wf_ns_to_ts(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000ull);
	ts->tv_nsec = (long)(ns % 1000000000ull);
}

void wf_worker_timer_arm(wf_worker_timer *t, uint64_t first_ns, uint64_t period_ns)
{
	if (!t->created)
		return;
	struct itimerspec its;
	wf_ns_to_ts(first_ns, &its.it_value);
	wf_ns_to_ts(first_ns ? period_ns : 0, &its.it_interval);
	timer_settime(t->id, 0, &its, NULL);
}
