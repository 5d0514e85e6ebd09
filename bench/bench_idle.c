/*
 * bench_idle.c — resident memory per idle thread: create many threads that
 * block at once and stay blocked; the figure is the growth of the
 * process's resident set (/proc/self/statm) divided by the thread count.
 *
 *   weft     WEFT_WORKERS=2, 100,000 threads with the default stack
 *            (64 KiB), each parked in weft_sem_wait on one semaphore (or in
 *            weft_sleep_ns of an hour with --sem=0, or when weft is built
 *            without its sync layer)
 *   pthread  10,000 threads with a PTHREAD_STACK_MIN stack, each blocked in
 *            pthread_cond_wait.  Only user-space memory is counted: each
 *            kernel thread also costs a kernel stack and a task_struct
 *            (about 20 KiB) that no RSS shows.
 *   go       GOMAXPROCS=2, as many goroutines as weft's threads, each blocked
 *            receiving from a channel nobody sends on (bench/go/idle.go)
 *
 * The baseline is read after the runtime is up and one thread has been
 * created and joined, so start-up costs are not charged to the threads;
 * per-slab and per-table costs are (amortized).  Figures: RSS and virtual
 * size per thread, the thread count and the stack size used.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <weft.h>
#include "harness.h"

static struct bench_param params[] = {
	{ "threads", 100000, "idle threads on weft" },
	{ "pthreads", 10000, "idle threads on pthreads" },
#ifdef BENCH_HAVE_SYNC
	{ "sem", 1, "weft threads park on a semaphore (1) or in a long sleep (0)" },
#else
	{ "sem", 0, "weft threads park on a semaphore (1, needs the sync layer) or sleep (0)" },
#endif
};

static atomic_long arrived;

/* ------------------------------------------------------------------ weft */

#ifdef BENCH_HAVE_SYNC
static weft_sem_t sem;
#endif

static void *weft_idle(void *arg)
{
	(void)arg;
	atomic_fetch_add(&arrived, 1);
#ifdef BENCH_HAVE_SYNC
	if (bench_param("sem")) {
		weft_sem_wait(&sem);
		return NULL;
	}
#endif
	weft_sleep_ns(3600ull * 1000000000ull);
	return NULL;
}

static void *trivial(void *arg) { return arg; }

static void run_weft(long n)
{
	bench_weft_start();
#ifdef BENCH_HAVE_SYNC
	if (weft_sem_init(&sem, 0))
		bench_fail("weft_sem_init failed");
#else
	if (bench_param("sem"))
		bench_fail("--sem=1 needs weft's sync layer");
#endif
	weft_t t;
	if (weft_create(&t, NULL, trivial, NULL) || weft_join(t, NULL))
		bench_fail("warm-up thread failed");
	weft_sleep_ns(10 * 1000000);
	long long rss0 = bench_rss_bytes(), vsz0 = bench_vsz_bytes();
	weft_attr_t a;
	weft_attr_init(&a);
	weft_attr_setdetachstate(&a, WEFT_CREATE_DETACHED);
	for (long i = 0; i < n; i++)
		if (weft_create(&t, &a, weft_idle, NULL))
			bench_fail("weft_create failed after %ld threads", i);
	while (atomic_load(&arrived) < n)
		weft_sleep_ns(1000000);
	weft_sleep_ns(20 * 1000000);  /* the last arrivals finish parking */
	long long rss1 = bench_rss_bytes(), vsz1 = bench_vsz_bytes();
	bench_result("rss/thread", BENCH_BYTES, (double)(rss1 - rss0) / (double)n);
	bench_result("vsz/thread", BENCH_BYTES, (double)(vsz1 - vsz0) / (double)n);
	bench_result("threads", BENCH_COUNT, (double)n);
}

/* --------------------------------------------------------------- pthread */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_all = PTHREAD_COND_INITIALIZER, cv_never = PTHREAD_COND_INITIALIZER;
static long target;

static void *pthread_idle(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	if (atomic_fetch_add(&arrived, 1) + 1 == target)
		pthread_cond_signal(&cv_all);
	for (;;)
		pthread_cond_wait(&cv_never, &mu);
	return NULL;
}

static void run_pthread(long n)
{
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	size_t stack = PTHREAD_STACK_MIN;
	if (pthread_attr_setstacksize(&a, stack))
		bench_fail("pthread_attr_setstacksize(%zu) refused", stack);
	if (pthread_create(&t, &a, trivial, NULL) || pthread_join(t, NULL))
		bench_fail("warm-up thread failed");
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	target = n;
	long long rss0 = bench_rss_bytes(), vsz0 = bench_vsz_bytes();
	for (long i = 0; i < n; i++) {
		int e = pthread_create(&t, &a, pthread_idle, NULL);
		if (e)
			bench_fail("pthread_create failed after %ld threads: %s", i, strerror(e));
	}
	pthread_mutex_lock(&mu);
	while (atomic_load(&arrived) < n)
		pthread_cond_wait(&cv_all, &mu);
	pthread_mutex_unlock(&mu);
	long long rss1 = bench_rss_bytes(), vsz1 = bench_vsz_bytes();
	bench_result("rss/thread", BENCH_BYTES, (double)(rss1 - rss0) / (double)n);
	bench_result("vsz/thread", BENCH_BYTES, (double)(vsz1 - vsz0) / (double)n);
	bench_result("threads", BENCH_COUNT, (double)n);
	bench_result("stack", BENCH_BYTES, (double)stack);
}

static void run_idle(int impl)
{
	if (impl == BENCH_WEFT)
		run_weft(bench_param("threads"));
	else
		run_pthread(bench_param("pthreads"));
}

static const struct bench_case cases[] = {
	{ .name = "idle-rss", .what = "resident memory per blocked thread; weft 100K, pthreads 10K",
	  .primary = "rss/thread", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO, .weft_workers = 2,
	  .run = run_idle },
};

int main(int argc, char **argv)
{
	return bench_main(argc, argv, "bench_idle", cases, BENCH_COUNTOF(cases), params,
	                  BENCH_COUNTOF(params));
}
