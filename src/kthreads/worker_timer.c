/*
 * worker_timer.c — per-worker preemption timers.
 *
 * CLOCK_MONOTONIC rather than a CPU-time clock: a worker whose thread sleeps
 * in the kernel accrues no CPU time, so a CPU-time timer would never fire
 * for the threads queued behind it (measured: deadlock within 0.1 s).
 * SIGEV_THREAD_ID aims each timer at its own worker, so a tick always
 * interrupts the worker whose quantum ran out.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
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
	if (timer_create(CLOCK_MONOTONIC, &sev, &t->id))
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
