/*
 * bench_skynet.c — the skynet benchmark: skynet(num, size) returns num when
 * size is 1, else creates 10 children skynet(num + i*size/10, size/10),
 * joins them and returns the sum of their results.  The root is a thread
 * created by main; with size 10^k the tree has (10^(k+1) - 1) / 9 threads
 * and the answer is size*(size-1)/2.
 *
 *   weft     WEFT_WORKERS=2, size 1,000,000 (1,111,111 threads)
 *   pthread  free on two CPUs, size 10,000 (11,111 threads): a million
 *            kernel threads is not feasible
 *   go       GOMAXPROCS=2, size 1,000,000 like weft: the original skynet
 *            program, each parent collecting its children's results on one
 *            channel (bench/go/skynet.go)
 *
 * Figures: the whole run (from creating the root to joining it; runtime
 * initialization excluded), the time per thread (the ratio compares this),
 * the thread count, and, for the whole child process, its peak RSS
 * (ru_maxrss) and the share of its CPU time spent in the kernel (sys-share;
 * sys-cpu is that time).  Stacks:
 * weft's default (64 KiB); pthreads get the same 64 KiB (--pstack, 0 for
 * glibc's 8 MiB default).  Each repetition is one cold run in a fresh
 * process: no warm-up.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <weft.h>
#include "harness.h"

static struct bench_param params[] = {
	{ "size", 1000000, "leaves on weft (a power of 10)" },
	{ "psize", 10000, "leaves on pthreads (a power of 10)" },
	{ "pstack", 65536, "pthread stack size in bytes (0: glibc default)" },
};

/* num and size packed in one pointer-sized argument: both are below 2^32. */
#define PACK(num, size) ((void *)(((uintptr_t)(num) << 32) | (uintptr_t)(size)))
#define NUM(a) ((uint64_t)(uintptr_t)(a) >> 32)
#define SIZE(a) ((uint64_t)(uintptr_t)(a) & 0xffffffffu)

static void *weft_skynet(void *arg)
{
	uint64_t num = NUM(arg), size = SIZE(arg);
	if (size == 1)
		return (void *)(uintptr_t)num;
	weft_t kid[10];
	uint64_t sub = size / 10, sum = 0;
	for (int i = 0; i < 10; i++)
		if (weft_create(&kid[i], NULL, weft_skynet, PACK(num + (uint64_t)i * sub, sub)))
			bench_fail("weft_create failed");
	for (int i = 0; i < 10; i++) {
		void *r;
		if (weft_join(kid[i], &r))
			bench_fail("weft_join failed");
		sum += (uint64_t)(uintptr_t)r;
	}
	return (void *)(uintptr_t)sum;
}

static pthread_attr_t pattr;

static void *pthread_skynet(void *arg)
{
	uint64_t num = NUM(arg), size = SIZE(arg);
	if (size == 1)
		return (void *)(uintptr_t)num;
	pthread_t kid[10];
	uint64_t sub = size / 10, sum = 0;
	for (int i = 0; i < 10; i++)
		if (pthread_create(&kid[i], &pattr, pthread_skynet, PACK(num + (uint64_t)i * sub, sub)))
			bench_fail("pthread_create failed");
	for (int i = 0; i < 10; i++) {
		void *r;
		if (pthread_join(kid[i], &r))
			bench_fail("pthread_join failed");
		sum += (uint64_t)(uintptr_t)r;
	}
	return (void *)(uintptr_t)sum;
}

static void run_skynet(int impl)
{
	uint64_t size = (uint64_t)bench_param(impl == BENCH_WEFT ? "size" : "psize");
	uint64_t threads = 0;
	for (uint64_t s = size; ; s /= 10) {
		threads = threads * 10 + 1;
		if (s == 1)
			break;
		if (s % 10)
			bench_fail("size %llu is not a power of 10", (unsigned long long)size);
	}
	if (size >= (1ull << 32))
		bench_fail("size too large");
	void *r = NULL;
	double ns;
	if (impl == BENCH_WEFT) {
		bench_weft_start();
		weft_t root;
		weft_stats_t s0;
		weft_stats_get(-1, &s0);
		bench_begin();
		if (weft_create(&root, NULL, weft_skynet, PACK(0, size)) || weft_join(root, &r))
			bench_fail("weft root failed");
		ns = bench_end((double)threads);
		bench_weft_stats(&s0, (double)threads);
	} else {
		pthread_attr_init(&pattr);
		long long st = bench_param("pstack");
		if (st && pthread_attr_setstacksize(&pattr, (size_t)st))
			bench_fail("pthread_attr_setstacksize(%lld) refused", st);
		pthread_t root;
		bench_begin();
		if (pthread_create(&root, &pattr, pthread_skynet, PACK(0, size)) ||
		    pthread_join(root, &r))
			bench_fail("pthread root failed");
		ns = bench_end((double)threads);
	}
	uint64_t want = size * (size - 1) / 2;
	if ((uint64_t)(uintptr_t)r != want)
		bench_fail("skynet(%llu) = %llu, expected %llu", (unsigned long long)size,
		           (unsigned long long)(uintptr_t)r, (unsigned long long)want);
	bench_result("thread", BENCH_NS, ns);
	bench_result("time", BENCH_NS, ns * (double)threads);
	bench_result("cpu-time", BENCH_NS, bench_cpu_per_op() * (double)threads);
	bench_result("threads", BENCH_COUNT, (double)threads);
}

static const struct bench_case cases[] = {
	{ .name = "skynet", .what = "time per thread; weft 1M leaves, pthreads 10K leaves; 2 workers / 2 CPUs",
	  .primary = "thread", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO, .weft_workers = 2,
	  .show_maxrss = 1, .run = run_skynet },
};

int main(int argc, char **argv)
{
	return bench_main(argc, argv, "bench_skynet", cases, BENCH_COUNTOF(cases), params,
	                  BENCH_COUNTOF(params));
}
