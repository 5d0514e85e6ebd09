/*
 * bench_cancel.c — stopping a parked thread from outside, and fork() of a
 * process full of parked threads.
 *
 *   cancel-parked-1w  n rounds: create a thread that parks in a semaphore
 *                     wait (a cancellation point), then time the cancel
 *                     and the join that returns its result; the figure is
 *                     the time from the cancel call to the join's return.
 *                     weft with WEFT_WORKERS=1 (the new thread runs first
 *                     and parks before weft_create returns); pthreads
 *                     pinned to one CPU, pthread_cancel + pthread_join of a
 *                     thread in sem_wait (the creator yields until the
 *                     thread said it is about to wait, then once more).
 *   fork-parked       m threads parked in a semaphore wait, then r rounds
 *                     of fork(); the figure is the time from the fork call
 *                     in the parent to the return of the child's first
 *                     call into the thread library (weft_init, which starts
 *                     the child's workers; pthread_create + pthread_join
 *                     on pthreads), read on CLOCK_MONOTONIC in both and
 *                     sent back on a pipe.  weft with WEFT_WORKERS=2;
 *                     pthreads with 64 KiB stacks (weft's default size), pm
 *                     of them.
 *
 * Go (bench/go/cancel.go, GOMAXPROCS=1) has cancel-parked only: a goroutine
 * blocked on a context's Done channel, cancel() then a receive of its
 * "finished" message.  A Go program cannot fork.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft.h>
#include "harness.h"

static struct bench_param params[] = {
	{ "n", 200000, "cancel rounds on weft" },
	{ "pn", 20000, "cancel rounds on pthreads" },
	{ "m", 10000, "parked threads at the fork on weft" },
	{ "pm", 10000, "parked threads at the fork on pthreads" },
	{ "r", 20, "forks" },
};

/* ------------------------------------------------------------ cancel-parked */

static weft_sem_t wsem;

static void *weft_parker(void *arg)
{
	(void)arg;
	weft_sem_wait(&wsem);   /* cancelled here */
	return NULL;
}

static double weft_cancel_round(long n)
{
	uint64_t sum = 0;
	for (long i = 0; i < n; i++) {
		weft_t t;
		void *r;
		if (weft_create(&t, NULL, weft_parker, NULL))
			bench_fail("weft_create failed at %ld", i);
		uint64_t t0 = bench_now_ns();
		if (weft_cancel(t) || weft_join(t, &r))
			bench_fail("weft_cancel/weft_join failed at %ld", i);
		sum += bench_now_ns() - t0;
		if (r != WEFT_CANCELED)
			bench_fail("round %ld: the thread was not cancelled", i);
	}
	return (double)sum / (double)n;
}

static sem_t psem;
static atomic_int pready;

static void *pthread_parker(void *arg)
{
	(void)arg;
	atomic_store(&pready, 1);
	sem_wait(&psem);   /* cancelled here */
	return NULL;
}

static double pthread_cancel_round(long n)
{
	uint64_t sum = 0;
	for (long i = 0; i < n; i++) {
		pthread_t t;
		void *r;
		atomic_store(&pready, 0);
		if (pthread_create(&t, NULL, pthread_parker, NULL))
			bench_fail("pthread_create failed at %ld", i);
		while (!atomic_load(&pready))
			sched_yield();
		sched_yield();   /* one CPU: it runs on into sem_wait and sleeps */
		uint64_t t0 = bench_now_ns();
		if (pthread_cancel(t) || pthread_join(t, &r))
			bench_fail("pthread_cancel/pthread_join failed at %ld", i);
		sum += bench_now_ns() - t0;
		if (r != PTHREAD_CANCELED)
			bench_fail("round %ld: the thread was not cancelled", i);
	}
	return (double)sum / (double)n;
}

static void run_cancel(int impl)
{
	double ns = 0;
	if (impl == BENCH_WEFT) {
		long n = bench_param("n");
		bench_weft_start();
		if (weft_sem_init(&wsem, 0))
			bench_fail("weft_sem_init failed");
		weft_cancel_round(n / 10 + 1);
		ns = weft_cancel_round(n);
	} else {
		long pn = bench_param("pn");
		if (sem_init(&psem, 0, 0))
			bench_fail("sem_init failed");
		pthread_cancel_round(pn / 10 + 1);
		ns = pthread_cancel_round(pn);
	}
	bench_result("cancel", BENCH_NS, ns);
}

/* -------------------------------------------------------------- fork-parked */

static void *trivial(void *arg) { return arg; }

/* Fork r times; in each child, call first_call (the thread library's first
 * call there) and send back the time it returned.  Mean ns per fork. */
static double fork_rounds(long r, int (*first_call)(void))
{
	uint64_t sum = 0;
	for (long i = 0; i < r; i++) {
		int fds[2];
		if (pipe(fds))
			bench_fail("pipe failed");
		uint64_t t0 = bench_now_ns();
		pid_t p = fork();
		if (p < 0)
			bench_fail("fork failed at %ld", i);
		if (p == 0) {
			int e = first_call();
			uint64_t t1 = bench_now_ns();
			_exit(e || write(fds[1], &t1, sizeof t1) != (ssize_t)sizeof t1 ? 3 : 0);
		}
		close(fds[1]);
		uint64_t t1 = 0;
		ssize_t got = read(fds[0], &t1, sizeof t1);
		close(fds[0]);
		int st;
		if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
		    got != (ssize_t)sizeof t1)
			bench_fail("fork round %ld: the child failed (status 0x%x)", i, st);
		sum += t1 - t0;
	}
	return (double)sum / (double)r;
}

static int weft_first_call(void) { return weft_init(); }

static int pthread_first_call(void)
{
	pthread_t t;
	void *r;
	return pthread_create(&t, NULL, trivial, (void *)1) || pthread_join(t, &r) ||
	       r != (void *)1;
}

static void run_fork(int impl)
{
	long r = bench_param("r");
	double ns = 0;
	if (impl == BENCH_WEFT) {
		long m = bench_param("m");
		bench_weft_start();
		if (weft_sem_init(&wsem, 0))
			bench_fail("weft_sem_init failed");
		weft_t *t = malloc((size_t)m * sizeof *t);
		if (!t)
			bench_fail("out of memory");
		for (long i = 0; i < m; i++)
			if (weft_create(&t[i], NULL, weft_parker, NULL))
				bench_fail("weft_create failed at %ld", i);
		fork_rounds(r / 10 + 1, weft_first_call);
		ns = fork_rounds(r, weft_first_call);
		for (long i = 0; i < m; i++)
			weft_sem_post(&wsem);
		for (long i = 0; i < m; i++)
			weft_join(t[i], NULL);
		free(t);
	} else {
		long pm = bench_param("pm");
		if (sem_init(&psem, 0, 0))
			bench_fail("sem_init failed");
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 64 * 1024);
		pthread_t *t = malloc((size_t)pm * sizeof *t);
		if (!t)
			bench_fail("out of memory");
		for (long i = 0; i < pm; i++)
			if (pthread_create(&t[i], &a, pthread_parker, NULL))
				bench_fail("pthread_create failed at %ld", i);
		pthread_attr_destroy(&a);
		fork_rounds(r / 10 + 1, pthread_first_call);
		ns = fork_rounds(r, pthread_first_call);
		for (long i = 0; i < pm; i++)
			sem_post(&psem);
		for (long i = 0; i < pm; i++)
			pthread_join(t[i], NULL);
		free(t);
	}
	bench_result("fork", BENCH_NS, ns);
}

static const struct bench_case cases[] = {
	{ .name = "cancel-parked-1w", .what = "cancel of a parked thread to the join's return; 1 worker / 1 CPU",
	  .primary = "cancel", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO,
	  .weft_workers = 1, .pin_one_cpu = 1, .run = run_cancel },
	{ .name = "fork-parked", .what = "fork() with parked threads to the child's first call returning; 2 workers",
	  .primary = "fork", .impls = BENCH_WEFT | BENCH_PTHREAD,
	  .weft_workers = 2, .pin_one_cpu = 0, .show_maxrss = 1, .run = run_fork },
};

int main(int argc, char **argv)
{
	return bench_main(argc, argv, "bench_cancel", cases, BENCH_COUNTOF(cases), params,
	                  BENCH_COUNTOF(params));
}
