/*
 * helpers.h — small helpers the test programs share: the monotonic clock,
 * timespecs for timed waits, and bounded waits for what another green
 * thread does.  Everything is static inline: a suite uses what it needs.
 */
#ifndef WEFT_TESTS_HELPERS_H
#define WEFT_TESTS_HELPERS_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <weft.h>

#define MS 1000000ull   /* ns in a millisecond */

/* Clock c in ns. */
static inline uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC in ns: weft's clock of deadlines. */
static inline uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* CPU time the whole process has used, in ns. */
static inline uint64_t cpu_ns(void) { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }

/* An absolute CLOCK_MONOTONIC time, as timed waits take it. */
static inline struct timespec ts_at(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	return ts;
}

/* The same, ns from now. */
static inline struct timespec ts_in(uint64_t ns) { return ts_at(now_ns() + ns); }

/* A thread body that returns its argument. */
static inline void *ret_arg(void *a) { return a; }

/* As a green thread, sleep until the atomic *v >= target (of any integer
 * type); 0 if `ms` milliseconds pass first, else 1. */
#define wait_atomic(v, target, ms) __extension__ ({ \
	uint64_t end_ = now_ns() + (uint64_t)(ms) * MS; \
	int ok_ = 1; \
	while (atomic_load(v) < (target)) { \
		if (now_ns() > end_) { \
			ok_ = 0; \
			break; \
		} \
		weft_sleep_ns(100000); \
	} \
	ok_; })

/* As a green thread, sleep until the handle t is stale (a call on it says
 * ESRCH); 0 if `ms` milliseconds pass first. */
static inline int wait_stale(weft_t t, unsigned ms)
{
	char buf[32];
	uint64_t end = now_ns() + ms * MS;
	while (weft_getname(t, buf, sizeof buf) != ESRCH) {
		if (now_ns() > end)
			return 0;
		weft_sleep_ns(100000);
	}
	return 1;
}

#endif
