/*
 * bench_switch.c — yield ping-pong: two threads on one CPU hand the CPU to
 * each other with a yield, n times each; the figure is the time per switch
 * (elapsed / 2n).
 *
 *   weft     WEFT_WORKERS=1, two green threads calling weft_yield()
 *   pthread  two kernel threads pinned to one CPU calling sched_yield()
 *   pth      two GNU Pth threads calling pth_yield(NULL) (if built with Pth)
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

static atomic_int go;
static long iters;

/* ------------------------------------------------------------------ weft */

static void *weft_pinger(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&go, memory_order_acquire))
		weft_yield();
	for (long i = 0; i < iters; i++)
		weft_yield();
	return NULL;
}

static double weft_round(long n)
{
	weft_t a, b;
	iters = n;
	atomic_store(&go, 0);
	if (weft_create(&a, NULL, weft_pinger, NULL) || weft_create(&b, NULL, weft_pinger, NULL))
		bench_fail("weft_create failed");
	weft_stats_t s0, s1;
	weft_stats_get(-1, &s0);
	bench_begin();
	atomic_store_explicit(&go, 1, memory_order_release);
	weft_join(a, NULL);
	weft_join(b, NULL);
	double ns = bench_end(2.0 * (double)n);
	weft_stats_get(-1, &s1);
	if ((double)(s1.yields - s0.yields) < 0.99 * (double)(2 * n))
		fprintf(stderr, "bench: warning: %llu switching yields for %ld calls\n",
		        (unsigned long long)(s1.yields - s0.yields), 2 * n);
	if (n >= 1000)
		bench_weft_stats(&s0, 2.0 * (double)n);
	return ns;
}

/* --------------------------------------------------------------- pthread */

static struct bench_gate gate = BENCH_GATE_INIT;

static void *pthread_pinger(void *arg)
{
	(void)arg;
	bench_gate_arrive(&gate);
	for (long i = 0; i < iters; i++)
		sched_yield();
	return NULL;
}

static double pthread_round(long n)
{
	pthread_t a, b;
	iters = n;
	bench_gate_reset(&gate);
	if (pthread_create(&a, NULL, pthread_pinger, NULL) ||
	    pthread_create(&b, NULL, pthread_pinger, NULL))
		bench_fail("pthread_create failed");
	bench_gate_wait(&gate, 2);
	bench_begin();
	bench_gate_open(&gate);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return bench_end(2.0 * (double)n);
}

/* ------------------------------------------------------------------- pth */

#ifdef BENCH_HAVE_PTH
static void *pth_pinger(void *arg)
{
	(void)arg;
	while (!atomic_load(&go))
		pth_yield(NULL);
	for (long i = 0; i < iters; i++)
		pth_yield(NULL);
	return NULL;
}

static double pth_round(long n)
{
	iters = n;
	atomic_store(&go, 0);
	pth_t a = pth_spawn(PTH_ATTR_DEFAULT, pth_pinger, NULL);
	pth_t b = pth_spawn(PTH_ATTR_DEFAULT, pth_pinger, NULL);
	if (!a || !b)
		bench_fail("pth_spawn failed");
	pth_yield(NULL);  /* let both reach the gate */
	bench_begin();
	atomic_store(&go, 1);
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
		pthread_round(pn / 10 + 1);
		ns = pthread_round(pn);
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
	  .primary = "switch", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_PTH,
	  .weft_workers = 1, .pin_one_cpu = 1, .run = run_pingpong },
};

int main(int argc, char **argv)
{
	return bench_main(argc, argv, "bench_switch", cases, BENCH_COUNTOF(cases), params,
	                  BENCH_COUNTOF(params));
}
