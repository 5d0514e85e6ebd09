/*
 * yield_pingpong.h — the yield ping-pong workload, shared by bench_switch
 * (what a switch costs) and bench_trace (what tracing adds to it).
 *
 * Two threads yield `n` times each; the clock runs from the moment both
 * are ready until both are joined, and the figure is elapsed / 2n.
 *   weft     two green threads on the caller's worker, weft_yield();
 *            they spin on `yp_go` with weft_yield until the clock starts.
 *   pthread  two kernel threads (the case pins the process to one CPU),
 *            sched_yield(); a gate holds them until the clock starts.
 * Included by one benchmark program each: everything here is static.
 */
#ifndef WEFT_BENCH_YIELD_PINGPONG_H
#define WEFT_BENCH_YIELD_PINGPONG_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <weft.h>
#include "harness.h"

static atomic_int yp_go;
static long yp_iters;

static void *yp_weft_pinger(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&yp_go, memory_order_acquire))
		weft_yield();
	for (long i = 0; i < yp_iters; i++)
		weft_yield();
	return NULL;
}

/* One timed round on weft; ns per switch.  When `s0`/`s1` are not NULL
 * they receive weft's counters at the start and at the end of the timed
 * section. */
static double yp_weft_round(long n, weft_stats_t *s0, weft_stats_t *s1)
{
	weft_t a, b;
	yp_iters = n;
	atomic_store(&yp_go, 0);
	if (weft_create(&a, NULL, yp_weft_pinger, NULL) ||
	    weft_create(&b, NULL, yp_weft_pinger, NULL))
		bench_fail("weft_create failed");
	if (s0)
		weft_stats_get(-1, s0);
	bench_begin();
	atomic_store_explicit(&yp_go, 1, memory_order_release);
	weft_join(a, NULL);
	weft_join(b, NULL);
	double ns = bench_end(2.0 * (double)n);
	if (s1)
		weft_stats_get(-1, s1);
	return ns;
}

static struct bench_gate yp_gate = BENCH_GATE_INIT;

static void *yp_pthread_pinger(void *arg)
{
	(void)arg;
	bench_gate_arrive(&yp_gate);
	for (long i = 0; i < yp_iters; i++)
		sched_yield();
	return NULL;
}

/* One timed round on pthreads; ns per switch. */
static double yp_pthread_round(long n)
{
	pthread_t a, b;
	yp_iters = n;
	bench_gate_reset(&yp_gate);
	if (pthread_create(&a, NULL, yp_pthread_pinger, NULL) ||
	    pthread_create(&b, NULL, yp_pthread_pinger, NULL))
		bench_fail("pthread_create failed");
	bench_gate_wait(&yp_gate, 2);
	bench_begin();
	bench_gate_open(&yp_gate);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return bench_end(2.0 * (double)n);
}

#endif
