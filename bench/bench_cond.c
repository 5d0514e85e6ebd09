/*
 * bench_cond.c — condition-variable ping-pong: two threads share one mutex
 * and a turn variable, each waiting on its own condition variable until it
 * is its turn, then passing the turn and signalling the other.  The figure
 * is the time per round trip (A -> B -> A): elapsed / n.
 *
 *   cond-pingpong-1w  weft on 1 worker; pthreads pinned to one CPU
 *   cond-pingpong-2w  weft on 2 workers; pthreads free on two CPUs
 *
 * "cross" is the share of hand-offs where the receiving thread ran on a
 * different worker (weft) or CPU (pthread, sched_getcpu) than the sender:
 * with 2 workers weft decides itself where the two threads run.
 *
 * Go (bench/go/cond.go): the same program on sync.Mutex and two sync.Cond,
 * GOMAXPROCS = the worker count, n round trips like weft; no "cross" figure.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <weft.h>
#include "harness.h"

static struct bench_param params[] = {
	{ "n", 1000000, "round trips on weft" },
	{ "pn", 50000, "round trips on pthreads" },
};

static long iters;
static int turn;
static int sender_where;  /* worker or CPU of the last sender */
static long cross;        /* hand-offs received on another worker/CPU */
static atomic_int go;

static weft_mutex_t wm;
static weft_cond_t wc[2];

static void *weft_player(void *arg)
{
	int me = (int)(intptr_t)arg;
	while (!atomic_load_explicit(&go, memory_order_acquire))
		weft_yield();
	for (long i = 0; i < iters; i++) {
		weft_mutex_lock(&wm);
		while (turn != me)
			weft_cond_wait(&wc[me], &wm);
		int here = weft_worker_self();
		cross += here != sender_where;
		sender_where = here;
		turn = !me;
		weft_cond_signal(&wc[!me]);
		weft_mutex_unlock(&wm);
	}
	return NULL;
}

static double weft_round(long n)
{
	weft_t a, b;
	iters = n;
	turn = 0;
	cross = 0;
	sender_where = weft_worker_self();
	atomic_store(&go, 0);
	if (weft_create(&a, NULL, weft_player, (void *)0) ||
	    weft_create(&b, NULL, weft_player, (void *)1))
		bench_fail("weft_create failed");
	weft_stats_t s0;
	weft_stats_get(-1, &s0);
	bench_begin();
	atomic_store_explicit(&go, 1, memory_order_release);
	weft_join(a, NULL);
	weft_join(b, NULL);
	double ns = bench_end((double)n);
	bench_weft_stats(&s0, (double)n);  /* the last round's figures win */
	return ns;
}

static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pc[2] = { PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER };
static struct bench_gate gate = BENCH_GATE_INIT;

static void *pthread_player(void *arg)
{
	int me = (int)(intptr_t)arg;
	bench_gate_arrive(&gate);
	for (long i = 0; i < iters; i++) {
		pthread_mutex_lock(&pm);
		while (turn != me)
			pthread_cond_wait(&pc[me], &pm);
		int here = sched_getcpu();
		cross += here != sender_where;
		sender_where = here;
		turn = !me;
		pthread_cond_signal(&pc[!me]);
		pthread_mutex_unlock(&pm);
	}
	return NULL;
}

static double pthread_round(long n)
{
	pthread_t a, b;
	iters = n;
	turn = 0;
	cross = 0;
	sender_where = sched_getcpu();
	bench_gate_reset(&gate);
	if (pthread_create(&a, NULL, pthread_player, (void *)0) ||
	    pthread_create(&b, NULL, pthread_player, (void *)1))
		bench_fail("pthread_create failed");
	bench_gate_wait(&gate, 2);
	bench_begin();
	bench_gate_open(&gate);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return bench_end((double)n);
}

static void run_pingpong(int impl)
{
	double ns;
	long n;
	if (impl == BENCH_WEFT) {
		bench_weft_start();
		if (weft_mutex_init(&wm, NULL) || weft_cond_init(&wc[0], NULL) ||
		    weft_cond_init(&wc[1], NULL))
			bench_fail("weft sync init failed");
		n = bench_param("n");
		weft_round(n / 10 + 1);
		ns = weft_round(n);
	} else {
		n = bench_param("pn");
		pthread_round(n / 10 + 1);
		ns = pthread_round(n);
	}
	bench_result("roundtrip", BENCH_NS, ns);
	bench_result("cpu", BENCH_NS, bench_cpu_per_op());
	bench_result("cross", BENCH_PCT, 100.0 * (double)cross / (2.0 * (double)n));
}

static const struct bench_case cases[] = {
	{ .name = "cond-pingpong-1w", .what = "time per round trip; 1 worker / 1 CPU",
	  .primary = "roundtrip", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO, .weft_workers = 1,
	  .pin_one_cpu = 1, .run = run_pingpong },
	{ .name = "cond-pingpong-2w", .what = "time per round trip; 2 workers / 2 CPUs",
	  .primary = "roundtrip", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO, .weft_workers = 2,
	  .run = run_pingpong },
};

int main(int argc, char **argv)
{
	return bench_main(argc, argv, "bench_cond", cases, BENCH_COUNTOF(cases), params,
	                  BENCH_COUNTOF(params));
}
