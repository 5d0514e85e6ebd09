/*
 * pt_test.h — the little harness of the pthread-layer tests.
 *
 * Every program in tests/pthread/ is an ordinary pthread program: it
 * includes glibc's <pthread.h> and no weft header, is built without linking
 * weft, and is run through weft-run.  A failed CHECK prints one line and
 * counts; the program exits non-zero if anything failed.
 *
 * green_check() is how a program knows it really runs on weft's green
 * threads: it finds weft_stats_get with dlsym (weft is preloaded with the
 * layer) and checks that more threads are alive than the process has
 * kernel threads.  pt_stats.h mirrors weft_stats_t (include/weft.h).
 */
#ifndef PT_TEST_H
#define PT_TEST_H

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pt_stats.h"

static atomic_int pt_fails, pt_checks;

#define CHECK(c) do { \
	atomic_fetch_add(&pt_checks, 1); \
	if (!(c)) { \
		atomic_fetch_add(&pt_fails, 1); \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
	} } while (0)

#define CHECK_EQ(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	atomic_fetch_add(&pt_checks, 1); \
	if (a_ != b_) { \
		atomic_fetch_add(&pt_fails, 1); \
		fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", \
		        __FILE__, __LINE__, #a, #b, a_, b_); \
	} } while (0)


static inline int kernel_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Threads alive right now, as weft counts them; -1 when weft is absent. */
static inline long weft_alive(void)
{
	int (*get)(int, struct pt_stats *) =
		(int (*)(int, struct pt_stats *))dlsym(RTLD_DEFAULT, "weft_stats_get");
	struct pt_stats s;
	if (!get || get(-1, &s))
		return -1;
	return (long)s.alive;
}

/* Call while at least `expect` threads created by the program are alive. */
static inline void green_check(long expect)
{
	long alive = weft_alive();
	int kts = kernel_threads();
	if (alive < expect || alive <= kts)
		fprintf(stderr, "green_check: %ld threads alive on %d kernel threads "
		        "(expected at least %ld)\n", alive, kts, expect);
	CHECK(alive >= expect);
	CHECK(alive > kts);
}

static inline struct timespec in_ns(clockid_t clock, long long ns)
{
	struct timespec t;
	clock_gettime(clock, &t);
	long long v = (long long)t.tv_sec * 1000000000LL + t.tv_nsec + ns;
	t.tv_sec = (time_t)(v / 1000000000LL);
	t.tv_nsec = (long)(v % 1000000000LL);
	return t;
}

static inline int finish(const char *name)
{
	int f = atomic_load(&pt_fails), c = atomic_load(&pt_checks);
	printf("%s: %d checks, %d failed\n", name, c, f);
	return f ? 1 : 0;
}

#endif
