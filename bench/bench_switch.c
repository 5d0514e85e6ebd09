/*
 * bench_switch.c — yield ping-pong: two threads on one CPU hand the CPU to
 * each other with a yield, n times each; the figure is the time per switch
 * (elapsed / 2n).
 *
 *   weft     WEFT_WORKERS=1, two green threads calling weft_yield()
 *   pthread  two kernel threads pinned to one CPU calling sched_yield()
 *   pth      two GNU Pth threads calling pth_yield(NULL) (if built with Pth)
 *   go       two goroutines calling runtime.Gosched(), GOMAXPROCS=1
 *            (bench/go/switch.go), n yields each like weft
 *
 * The timed section starts when both threads are ready (a start gate) and
 * ends when both are joined.  A warm-up round of n/10 runs first.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <weft.h>
#ifdef BENCH_HAVE_PTH
#include <pth.h>
#endif
#include "harness.h"

static struct bench_param params[] = {
	{ "n", 10000000, "yields per thread on weft" },
	{ "pn", 200000, "yields per thread on pthreads" },
	{ "thn", 100000, "yields per thread on GNU Pth" },
};

#include "yield_pingpong.h"

/* ------------------------------------------------------------------ weft */

static double weft_round(long n)
{
	weft_stats_t s0, s1;
	double ns = yp_weft_round(n, &s0, &s1);
	if ((double)(s1.yields - s0.yields) < 0.99 * (double)(2 * n))
		fprintf(stderr, "bench: warning: %llu switching yields for %ld calls\n",
		        (unsigned long long)(s1.yields - s0.yields), 2 * n);
	if (n >= 1000)
		bench_weft_stats(&s0, 2.0 * (double)n);
	return ns;
}

/* ------------------------------------------------------------------- pth */

#ifdef BENCH_HAVE_PTH
static void *pth_pinger(void *arg)
{
	(void)arg;
	while (!atomic_load(&yp_go))
		pth_yield(NULL);
	for (long i = 0; i < yp_iters; i++)
		pth_yield(NULL);
	return NULL;
}

static double pth_round(long n)
{
	yp_iters = n;
	atomic_store(&yp_go, 0);
	pth_t a = pth_spawn(PTH_ATTR_DEFAULT, pth_pinger, NULL);
	pth_t b = pth_spawn(PTH_ATTR_DEFAULT, pth_pinger, NULL);
	if (!a || !b)
		bench_fail("pth_spawn failed");
	pth_yield(NULL);  /* let both reach the gate */
	bench_begin();
	atomic_store(&yp_go, 1);
	pth_join(a, NULL);
	pth_join(b, NULL);
	return bench_end(2.0 * (double)n);
}
#endif

static void run_pingpong(int impl)
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
		yp_pthread_round(pn / 10 + 1);
		ns = yp_pthread_round(pn);
		break;
#ifdef BENCH_HAVE_PTH
	case BENCH_PTH:
		if (!pth_init())
			bench_fail("pth_init failed");
		pth_round(bench_param("thn") / 10 + 1);
		ns = pth_round(bench_param("thn"));
		break;
#endif
	}
	bench_result("switch", BENCH_NS, ns);
	bench_result("cpu", BENCH_NS, bench_cpu_per_op());
}

static const struct bench_case cases[] = {
	{ .name = "yield-pingpong", .what = "time per switch; 2 threads, 1 worker / 1 CPU",
	  .primary = "switch", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_PTH | BENCH_GO,
	  .weft_workers = 1, .pin_one_cpu = 1, .run = run_pingpong },
};

int main(int argc, char **argv)
{
	return bench_main(argc, argv, "bench_switch", cases, BENCH_COUNTOF(cases), params,
	                  BENCH_COUNTOF(params));
}
