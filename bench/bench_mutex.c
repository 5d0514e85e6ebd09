/*
 * bench_mutex.c — mutex lock + unlock.
 *
 *   mutex-uncontended  one thread locks and unlocks one mutex n times;
 *                      time per lock+unlock pair.  weft on 1 worker
 *                      (WEFT_MUTEX_DEFAULT), pthread_mutex_t with default
 *                      attributes.
 *   mutex-contended    64 threads each do `per` times: lock, increment a
 *                      shared counter, unlock; time per operation
 *                      (elapsed / (64 * per)).  weft on 2 workers; 64 kernel
 *                      threads free on 2 CPUs.  The clock starts when all
 *                      64 are waiting at a start gate, just before they are
 *                      released; the final count is checked.
 *
 * Go (bench/go/mutex.go): sync.Mutex, goroutines for threads, GOMAXPROCS =
 * the worker count (1, then 2), the same n, threads and per.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <weft.h>
#include "harness.h"

static struct bench_param params[] = {
	{ "n", 50000000, "lock+unlock pairs, uncontended" },
	{ "threads", 64, "threads, contended" },
	{ "per", 1000000, "lock/increment/unlock per thread, contended (100K for quick runs)" },
};

#define MAX_THREADS 4096

static void run_uncontended(int impl)
{
	long n = bench_param("n");
	double ns = 0;
	if (impl == BENCH_WEFT) {
		bench_weft_start();
		weft_mutex_t m;
		if (weft_mutex_init(&m, NULL))
			bench_fail("weft_mutex_init failed");
		for (int round = 0; round < 2; round++) {
			long k = round ? n : n / 10 + 1;
			bench_begin();
			for (long i = 0; i < k; i++) {
				weft_mutex_lock(&m);
				weft_mutex_unlock(&m);
			}
			ns = bench_end((double)k);
		}
		weft_mutex_destroy(&m);
	} else {
		pthread_mutex_t m;
		pthread_mutex_init(&m, NULL);
		for (int round = 0; round < 2; round++) {
			long k = round ? n : n / 10 + 1;
			bench_begin();
			for (long i = 0; i < k; i++) {
				pthread_mutex_lock(&m);
				pthread_mutex_unlock(&m);
			}
			ns = bench_end((double)k);
		}
		pthread_mutex_destroy(&m);
	}
	bench_result("pair", BENCH_NS, ns);
	bench_result("cpu", BENCH_NS, bench_cpu_per_op());
}

static long per;
static long counter;
static atomic_int go;
static weft_mutex_t wm;
static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static struct bench_gate gate = BENCH_GATE_INIT;

static void *weft_worker(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&go, memory_order_acquire))
		weft_yield();
	for (long i = 0; i < per; i++) {
		weft_mutex_lock(&wm);
		counter++;
		weft_mutex_unlock(&wm);
	}
	return NULL;
}

static void *pthread_worker(void *arg)
{
	(void)arg;
	bench_gate_arrive(&gate);
	for (long i = 0; i < per; i++) {
		pthread_mutex_lock(&pm);
		counter++;
		pthread_mutex_unlock(&pm);
	}
	return NULL;
}

static void run_contended(int impl)
{
	long nt = bench_param("threads");
	per = bench_param("per");
	if (nt < 1 || nt > MAX_THREADS)
		bench_fail("--threads must be 1..%d", MAX_THREADS);
	double ns;
	if (impl == BENCH_WEFT) {
		static weft_t t[MAX_THREADS];
		bench_weft_start();
		if (weft_mutex_init(&wm, NULL))
			bench_fail("weft_mutex_init failed");
		for (long i = 0; i < nt; i++)
			if (weft_create(&t[i], NULL, weft_worker, NULL))
				bench_fail("weft_create failed");
		weft_stats_t s0;
		weft_stats_get(-1, &s0);
		bench_begin();
		atomic_store_explicit(&go, 1, memory_order_release);
		for (long i = 0; i < nt; i++)
			weft_join(t[i], NULL);
		ns = bench_end((double)(nt * per));
		bench_weft_stats(&s0, (double)(nt * per));
	} else {
		static pthread_t t[MAX_THREADS];
		for (long i = 0; i < nt; i++)
			if (pthread_create(&t[i], NULL, pthread_worker, NULL))
				bench_fail("pthread_create failed");
		bench_gate_wait(&gate, nt);
		bench_begin();
		bench_gate_open(&gate);
		for (long i = 0; i < nt; i++)
			pthread_join(t[i], NULL);
		ns = bench_end((double)(nt * per));
	}
	if (counter != nt * per)
		bench_fail("counter %ld, expected %ld: the mutex let two threads in", counter, nt * per);
	bench_result("op", BENCH_NS, ns);
	bench_result("cpu", BENCH_NS, bench_cpu_per_op());
}

static const struct bench_case cases[] = {
	{ .name = "mutex-uncontended", .what = "time per lock+unlock; 1 thread",
	  .primary = "pair", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO, .weft_workers = 1,
	  .run = run_uncontended },
	{ .name = "mutex-contended", .what = "time per lock+increment+unlock; 64 threads, 2 workers / 2 CPUs",
	  .primary = "op", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO, .weft_workers = 2,
	  .run = run_contended },
};

int main(int argc, char **argv)
{
	return bench_main(argc, argv, "bench_mutex", cases, BENCH_COUNTOF(cases), params,
	                  BENCH_COUNTOF(params));
}
