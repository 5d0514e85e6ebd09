/*
 * pt_sleep.c — sleeping and yielding: sleep, usleep, nanosleep,
 * clock_nanosleep, sched_yield (glibc's headers turn pthread_yield into
 * sched_yield).
 *
 * From a green thread these park the thread (weft_sleep_ns) or yield it
 * (weft_yield), so its worker runs others meanwhile; from a foreign thread
 * they are glibc's own.  A green sleep is never cut short: weft's timer
 * never interrupts it, and it does not return early with EINTR for a
 * signal either (the remaining-time outputs are left untouched, as on a
 * sleep that completed).  Clocks a green thread can sleep on: CLOCK_REALTIME,
 * CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI (relative or absolute; an
 * absolute wall-clock time is converted once, at the call).  Other clocks
 * (CPU-time clocks) go to glibc and block the worker.
 */
#include <sched.h>
#include <unistd.h>
#include "pt_internal.h"

static int pt_park_ns(uint64_t ns)
{
	return weft_sleep_ns(ns);
}

PT_API unsigned sleep(unsigned s)
{
	if (!pt_green())
		return pt_real(sleep)(s);
	pt_park_ns((uint64_t)s * 1000000000ull);
	return 0;
}

PT_API int usleep(useconds_t us)
{
	if (!pt_green())
		return pt_real(usleep)(us);
	pt_park_ns((uint64_t)us * 1000ull);
	return 0;
}

static bool pt_ts_ok(const struct timespec *ts)
{
	return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}

static uint64_t pt_ts_ns(const struct timespec *ts)
{
	uint64_t s = (uint64_t)ts->tv_sec;
	if (s > UINT64_MAX / 1000000000ull - 1)
		return UINT64_MAX - 1;
	return s * 1000000000ull + (uint64_t)ts->tv_nsec;
}

PT_API int nanosleep(const struct timespec *req, struct timespec *rem)
{
	if (!pt_green())
		return pt_real(nanosleep)(req, rem);
	if (!pt_ts_ok(req)) {
		errno = EINVAL;
		return -1;
	}
	pt_park_ns(pt_ts_ns(req));
	return 0;
}

PT_API int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req,
                           struct timespec *rem)
{
	bool known = clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC ||
	             clock == CLOCK_BOOTTIME || clock == CLOCK_TAI;
	if (!pt_green() || !known)
		return pt_real(clock_nanosleep)(clock, flags, req, rem);
	if (!pt_ts_ok(req))
		return EINVAL;
	uint64_t ns = pt_ts_ns(req);
	if (flags & TIMER_ABSTIME) {
		struct timespec now;
		clock_gettime(clock, &now);
		uint64_t n = pt_ts_ns(&now);
		if (ns <= n)
			return 0;
		ns -= n;
	}
	pt_park_ns(ns);
	return 0;
}

PT_API int sched_yield(void)
{
	if (weft_yield() == EPERM)
		return pt_real(sched_yield)();
	return 0;
}
