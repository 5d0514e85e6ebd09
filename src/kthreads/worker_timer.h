/*
 * worker_timer.h — one POSIX timer per worker kernel thread, on that
 * thread's CPU-time clock, delivered with SIGEV_THREAD_ID to that thread
 * only (why CPU time: worker_timer.c).
 */
#ifndef WF_WORKER_TIMER_H
#define WF_WORKER_TIMER_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "../context/cpu.h"

typedef struct wf_worker_timer {
	timer_t id;
	int created;
} wf_worker_timer;

/* Create a disarmed timer that sends `sig` to kernel thread `tid`, with
 * `cookie` as si_value.sival_ptr.  0 or errno. */
int wf_worker_timer_create(wf_worker_timer *t, pid_t tid, int sig, void *cookie) WF_HIDDEN;

/* Fire first after `first_ns` of the worker's CPU time, then every
 * `period_ns` of it (0: once).
 * first_ns == 0 disarms.  Any thread may call it. */
void wf_worker_timer_arm(wf_worker_timer *t, uint64_t first_ns, uint64_t period_ns) WF_HIDDEN;

#endif
