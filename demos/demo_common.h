/*
 * demo_common.h — what the demos share: the clock, reading a numeric
 * option, and starting a named green thread.  Names show up in thread
 * dumps (WEFT_DUMP_SIGNAL) and traces (WEFT_TRACE).
 */
#ifndef WEFT_DEMO_COMMON_H
#define WEFT_DEMO_COMMON_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <weft.h>

/* CLOCK_MONOTONIC in ns. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The kernel's scheduler tick, measured: weft's tick counts the worker's
 * CPU time, and the kernel fires CPU-time timers only at its own tick
 * (4 ms at HZ=250, 1 ms at HZ=1000), so a deadline beside CPU-bound
 * threads is met within about one of them.  The median time a one-shot
 * 100 us CPU timer of the calling thread takes to fire while it spins;
 * call it before starting weft. */
static volatile int demo_cpu_timer_fired;
static inline void demo_on_cpu_timer(int sig) { (void)sig; demo_cpu_timer_fired = 1; }

static inline uint64_t demo_kernel_tick_ns(void)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = demo_on_cpu_timer;
	sigemptyset(&sa.sa_mask);
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGPROF;
	timer_t id;
	if (sigaction(SIGPROF, &sa, &old) || timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &id))
		return 4000000;   /* HZ=250, the common default */
	uint64_t took[5];
	for (int i = 0; i < 5; i++) {
		struct itimerspec its = { { 0, 0 }, { 0, 100000 } };
		demo_cpu_timer_fired = 0;
		uint64_t t0 = now_ns();
		timer_settime(id, 0, &its, NULL);
		while (!demo_cpu_timer_fired && now_ns() - t0 < 1000000000ull)
			;
		took[i] = now_ns() - t0;
	}
	timer_delete(id);
	sigaction(SIGPROF, &old, NULL);
	for (int i = 1; i < 5; i++)   /* insertion sort: the median of five */
		for (int j = i; j > 0 && took[j] < took[j - 1]; j--) {
			uint64_t x = took[j];
			took[j] = took[j - 1];
			took[j - 1] = x;
		}
	return took[2];
}

/* s as a decimal int in [lo, hi] into *out: 0, or -1 if it is not one. */
static inline int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

/* Create a green thread running fn(arg), named by `fmt` with `i` (a printf
 * format taking one int).  On failure say so on stderr, as `prog`, and
 * return the error. */
static inline int demo_create(const char *prog, weft_t *t, void *(*fn)(void *), void *arg,
                              const char *fmt, int i)
{
	char name[32];
	weft_attr_t a;
	int e = weft_attr_init(&a);
	snprintf(name, sizeof name, fmt, i);
	if (!e)
		e = weft_attr_setname(&a, name);
	if (!e)
		e = weft_create(t, &a, fn, arg);
	weft_attr_destroy(&a);
	if (e)
		fprintf(stderr, "%s: weft_create: %s\n", prog, strerror(e));
	return e;
}

#endif
