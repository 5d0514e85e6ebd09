/*
 * bench_create.c — sequential create + join of a trivial thread (it returns
 * its argument), n times; the figure is the time per create+join pair.
 *
 *   create-join-1w  weft with WEFT_WORKERS=1; pthreads pinned to one CPU;
 *                   GNU Pth (one kernel thread by nature)
 *   create-join-2w  weft with WEFT_WORKERS=2; pthreads free on two CPUs
 *
 * Go (bench/go/create.go, GOMAXPROCS = the worker count, n pairs like weft):
 * a goroutine sends its argument on a channel and the creator receives it,
 * which is how Go waits for one goroutine's result.
 *
 * Default attributes everywhere: weft's default stack (WEFT_STACK_SIZE,
 * 64 KiB), glibc's default (8 MiB, cached by glibc between threads), Pth's
 * default (64 KiB).  A warm-up round of n/10 runs first.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <weft.h>
#ifdef BENCH_HAVE_PTH
#include <pth.h>
#endif
#include "harness.h"

static struct bench_param params[] = {
	{ "n", 2000000, "create+join pairs on weft" },
	{ "pn", 20000, "create+join pairs on pthreads" },
	{ "thn", 50000, "create+join pairs on GNU Pth" },
};

static void *trivial(void *arg) { return arg; }

static double weft_round(long n)
{
	weft_stats_t s0;
	weft_stats_get(-1, &s0);
	bench_begin();
	for (long i = 0; i < n; i++) {
		weft_t t;
		void *r;
		if (weft_create(&t, NULL, trivial, (void *)(intptr_t)i))
			bench_fail("weft_create failed at %ld", i);
		if (weft_join(t, &r) || r != (void *)(intptr_t)i)
			bench_fail("weft_join failed at %ld", i);
	}
	double ns = bench_end((double)n);
	bench_weft_stats(&s0, (double)n);  /* the last round's figures win */
	return ns;
}

static double pthread_round(long n)
{
	bench_begin();
	for (long i = 0; i < n; i++) {
		pthread_t t;
		void *r;
		if (pthread_create(&t, NULL, trivial, (void *)(intptr_t)i))
			bench_fail("pthread_create failed at %ld", i);
		if (pthread_join(t, &r) || r != (void *)(intptr_t)i)
			bench_fail("pthread_join failed at %ld", i);
	}
	return bench_end((double)n);
}

#ifdef BENCH_HAVE_PTH
static double pth_round(long n)
{
	bench_begin();
	for (long i = 0; i < n; i++) {
		void *r;
		pth_t t = pth_spawn(PTH_ATTR_DEFAULT, trivial, (void *)(intptr_t)i);
		if (!t)
			bench_fail("pth_spawn failed at %ld", i);
		if (!pth_join(t, &r) || r != (void *)(intptr_t)i)
			bench_fail("pth_join failed at %ld", i);
	}
	return bench_end((double)n);
}
#endif

static void run_create(int impl)
{
	long n = bench_param("n"), pn = bench_param("pn");
	double ns = 0;
	switch (impl) {
	case BENCH_WEFT:
		bench_weft_start();
		weft_round(n / 10 + 1);
		ns = weft_round(n);
		break;
	case BENCH_PTHREAD:
		pthread_round(pn / 10 + 1);
		ns = pthread_round(pn);
		break;
#ifdef BENCH_HAVE_PTH
	case BENCH_PTH: {
		long thn = bench_param("thn");
		if (!pth_init())
			bench_fail("pth_init failed");
		pth_round(thn / 10 + 1);
		ns = pth_round(thn);
		break;
	}
#endif
	}
	bench_result("pair", BENCH_NS, ns);
	bench_result("cpu", BENCH_NS, bench_cpu_per_op());
}

static const struct bench_case cases[] = {
	{ .name = "create-join-1w", .what = "time per create+join; 1 worker / 1 CPU",
	  .primary = "pair", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_PTH | BENCH_GO,
	  .weft_workers = 1, .pin_one_cpu = 1, .run = run_create },
	{ .name = "create-join-2w", .what = "time per create+join; 2 workers / 2 CPUs",
	  .primary = "pair", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO,
	  .weft_workers = 2, .pin_one_cpu = 0, .run = run_create },
};

int main(int argc, char **argv)
{
	return bench_main(argc, argv, "bench_create", cases, BENCH_COUNTOF(cases), params,
	                  BENCH_COUNTOF(params));
}
