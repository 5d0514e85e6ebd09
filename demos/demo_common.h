/*
 * demo_common.h — what the demos share: the clock, reading a numeric
 * option, and starting a named green thread.  Names show up in thread
 * dumps (WEFT_DUMP_SIGNAL) and traces (WEFT_TRACE).
 */
#ifndef WEFT_DEMO_COMMON_H
#define WEFT_DEMO_COMMON_H

#include <errno.h>
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
