/*
 * bench_preempt.c — what preemption buys and what it costs.
 *
 *   spinner-shares    4 threads that never yield share one CPU for `secs`
 *                     seconds; figure: the largest distance of a thread's
 *                     share from 25 %, in percentage points.
 *                       weft     WEFT_WORKERS=1, default quantum (10 ms)
 *                       pthread  4 kernel threads pinned to one CPU (CFS)
 *   sleeper-late      a thread sleeping 2 ms at a time beside 4 spinners on
 *                     one CPU; figures: median and max lateness of a wake-up.
 *   compute-q10ms     2 spinners doing a fixed amount of work each on one
 *   compute-q-off     CPU; figure: ns per unit of work.  The two cases differ
 *                     only in WEFT_QUANTUM_US (10000 vs 0): their weft
 *                     figures give the overhead of preemption at the default
 *                     quantum; pthreads (pinned, CFS) is the same in both.
 *
 * Go (bench/go/preempt.go): goroutines with GOMAXPROCS=1; Go preempts a
 * goroutine that ran 10 ms with a signal, and compute-q-off runs it with
 * GODEBUG=asyncpreemptoff=1, Go's way of turning that off.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <weft.h>
#include "harness.h"

static struct bench_param params[] = {
	{ "secs", 5, "seconds the spinners run (shares)" },
	{ "sleeps", 500, "sleeps of the sleeper" },
	{ "work", 400000000, "loop iterations per spinner (compute)" },
};

#define NSPIN 4
static atomic_int stop;
static atomic_int started;
static uint64_t count[NSPIN];

/* The spin loops live here, in the program's own code: weft preempts only
 * there.  `volatile` keeps the compiler from collapsing the loops. */
static void spin_until_stop(int i)
{
	volatile uint64_t *c = &count[i];
	atomic_fetch_add(&started, 1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		(*c)++;
}

static void spin_work(long n)
{
	volatile uint64_t x = 0;
	for (long i = 0; i < n; i++)
		x += (uint64_t)i;
}

static void *weft_spinner(void *a) { spin_until_stop((int)(long)a); return NULL; }
static void *pthread_spinner(void *a) { spin_until_stop((int)(long)a); return NULL; }

static double max_share_distance(void)
{
	uint64_t total = 0;
	for (int i = 0; i < NSPIN; i++)
		total += count[i];
	if (!total)
		bench_fail("spinners did not run");
	double worst = 0;
	for (int i = 0; i < NSPIN; i++) {
		double d = 100.0 * (double)count[i] / (double)total - 100.0 / NSPIN;
		if (d < 0)
			d = -d;
		if (d > worst)
			worst = d;
	}
	return worst;
}

static void sleep_ns_pthread(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------- shares */

static void run_shares(int impl)
{
	long secs = bench_param("secs");
	weft_t wt[NSPIN];
	pthread_t pt[NSPIN];
	if (impl == BENCH_WEFT)
		bench_weft_start();
	for (long i = 0; i < NSPIN; i++) {
		int e = impl == BENCH_WEFT ? weft_create(&wt[i], NULL, weft_spinner, (void *)i)
		                           : pthread_create(&pt[i], NULL, pthread_spinner, (void *)i);
		if (e)
			bench_fail("create failed: %d", e);
	}
	if (impl == BENCH_WEFT)
		weft_sleep_ns((uint64_t)secs * 1000000000ull);
	else
		sleep_ns_pthread((uint64_t)secs * 1000000000ull);
	atomic_store(&stop, 1);
	for (int i = 0; i < NSPIN; i++)
		impl == BENCH_WEFT ? weft_join(wt[i], NULL) : pthread_join(pt[i], NULL);
	bench_result("max-share-distance-pp", BENCH_PCT, max_share_distance());
}

/* ---------------------------------------------------------- sleeper */

static void run_sleeper(int impl)
{
	long n = bench_param("sleeps");
	const uint64_t period = 2000000;
	uint64_t *late = malloc(sizeof *late * (size_t)n);
	weft_t wt[NSPIN];
	pthread_t pt[NSPIN];
	if (!late)
		bench_fail("out of memory");
	if (impl == BENCH_WEFT)
		bench_weft_start();
	for (long i = 0; i < NSPIN; i++) {
		int e = impl == BENCH_WEFT ? weft_create(&wt[i], NULL, weft_spinner, (void *)i)
		                           : pthread_create(&pt[i], NULL, pthread_spinner, (void *)i);
		if (e)
			bench_fail("create failed: %d", e);
	}
	while (atomic_load(&started) < NSPIN) {
		if (impl == BENCH_WEFT)
			weft_sleep_ns(100000);
		else
			sleep_ns_pthread(100000);
	}
	for (long i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();
		if (impl == BENCH_WEFT)
			weft_sleep_ns(period);
		else
			sleep_ns_pthread(period);
		late[i] = bench_now_ns() - t0 - period;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < NSPIN; i++)
		impl == BENCH_WEFT ? weft_join(wt[i], NULL) : pthread_join(pt[i], NULL);
	qsort(late, (size_t)n, sizeof *late, cmp_u64);
	bench_result("median-late", BENCH_NS, (double)late[n / 2]);
	bench_result("max-late", BENCH_NS, (double)late[n - 1]);
	free(late);
}

/* ---------------------------------------------------------- compute */

static void *weft_worker_fn(void *a) { spin_work((long)a); return NULL; }
static void *pthread_worker_fn(void *a) { spin_work((long)a); return NULL; }

static void run_compute(int impl)
{
	long n = bench_param("work");
	weft_t wt[2];
	pthread_t pt[2];
	if (impl == BENCH_WEFT)
		bench_weft_start();
	spin_work(n / 20);  /* warm up */
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < 2; i++) {
		int e = impl == BENCH_WEFT ? weft_create(&wt[i], NULL, weft_worker_fn, (void *)n)
		                           : pthread_create(&pt[i], NULL, pthread_worker_fn, (void *)n);
		if (e)
			bench_fail("create failed: %d", e);
	}
	for (int i = 0; i < 2; i++)
		impl == BENCH_WEFT ? weft_join(wt[i], NULL) : pthread_join(pt[i], NULL);
	uint64_t t1 = bench_now_ns();
	bench_result("ns-per-iteration", BENCH_NS, (double)(t1 - t0) / (2.0 * (double)n));
	if (impl == BENCH_WEFT) {
		weft_stats_t st;
		weft_stats_get(-1, &st);
		bench_result("preemptions", BENCH_COUNT, (double)st.preemptions);
	}
}

static const struct bench_case cases[] = {
	{ .name = "spinner-shares", .what = "max distance from a fair share",
	  .primary = "max-share-distance-pp", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO,
	  .weft_workers = 1, .pin_one_cpu = 1, .run = run_shares },
	{ .name = "sleeper-late", .what = "lateness of a 2 ms sleep beside 4 spinners",
	  .primary = "median-late", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO,
	  .weft_workers = 1, .pin_one_cpu = 1, .run = run_sleeper },
	{ .name = "compute-q10ms", .what = "per loop iteration, 2 spinners on one CPU",
	  .primary = "ns-per-iteration", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO,
	  .weft_workers = 1, .pin_one_cpu = 1, .run = run_compute,
	  .weft_env = "WEFT_QUANTUM_US=10000" },
	{ .name = "compute-q-off", .what = "per loop iteration, 2 spinners on one CPU",
	  .primary = "ns-per-iteration", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO,
	  .weft_workers = 1, .pin_one_cpu = 1, .run = run_compute,
	  .weft_env = "WEFT_QUANTUM_US=0", .go_env = "GODEBUG=asyncpreemptoff=1" },
};

int main(int argc, char **argv)
{
	return bench_main(argc, argv, "preempt", cases, BENCH_COUNTOF(cases),
	                  params, BENCH_COUNTOF(params));
}
