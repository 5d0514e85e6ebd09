/*
 * test_migrate.c — threads that move between workers keep errno and their
 * TLS addresses right (docs/design.md, "Moving threads between workers").
 *
 * The compiler keeps &errno and the address of a __thread variable in a
 * register across calls and across code a tick interrupts: these loops are
 * compiled at -O2 whatever the build type (the attribute below), so that
 * the address really is computed once and carried, and each checks after
 * the move that what it carried is still this worker's.  Every test also
 * checks that threads really moved (the migrations counter), so none can
 * pass by not moving.
 *
 * Covered, on 2 and on 8 workers: errno set before a weft call that
 * blocks or yields (yield, sleep, mutex, condition variable) reads back
 * after it, and the report's own loop (errno = id; weft_yield(); errno ==
 * id?, 8 threads, 2M iterations each); errno and a cached __thread
 * address survive preemption of a spinning thread under a 1 ms quantum
 * while preempted threads circulate
 * between workers.  Green threads record what they saw; main asserts.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include "weft_check.h"

#define O2 __attribute__((optimize("O2"), noinline))

static atomic_long bad_errno, bad_tls;
static long iters;

static weft_mutex_t mu = WEFT_MUTEX_INITIALIZER;
static weft_cond_t cv = WEFT_COND_INITIALIZER;
static long turn;

static void setenv_workers(const char *workers, const char *quantum)
{
	setenv("WEFT_WORKERS", workers, 1);
	setenv("WEFT_QUANTUM_US", quantum, 1);
}

static uint64_t migrations(void)
{
	weft_stats_t s;
	ck_assert_int_eq(weft_stats_get(-1, &s), 0);
	return s.migrations;
}

/* One of the four weft calls after which a thread may resume elsewhere. */
O2 static void weft_call(long i)
{
	struct timespec ts;
	switch (i % 4) {
	case 0:
		weft_yield();
		break;
	case 1:
		weft_sleep_ns(2000);
		break;
	case 2:
		weft_mutex_lock(&mu);
		weft_mutex_unlock(&mu);
		break;
	default:
		weft_mutex_lock(&mu);
		if (++turn % 2) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += 50000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			weft_cond_timedwait(&cv, &mu, &ts);
		} else {
			weft_cond_signal(&cv);
		}
		weft_mutex_unlock(&mu);
		break;
	}
}

/* errno's address is computed once here and kept across every call. */
O2 static void *errno_across_calls(void *arg)
{
	int id = (int)(intptr_t)arg;
	long bad = 0;
	for (long i = 0; i < iters; i++) {
		errno = id;
		weft_call(i);
		if (errno != id)
			bad++;
	}
	atomic_fetch_add(&bad_errno, bad);
	return NULL;
}

static void run_threads(int n, void *(*fn)(void *))
{
	weft_t t[16];
	ck_assert_int_le(n, 16);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, fn, (void *)(intptr_t)(i + 1)), 0);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
}

/* Rounds until threads have moved often enough to tell (how often they
 * move depends on how the kernel runs the workers), or 30 rounds. */
static void errno_calls_on(const char *workers)
{
	setenv_workers(workers, "10000");
	iters = 5000;
	for (int round = 0; round < 30 && migrations() < 200; round++)
		run_threads(8, errno_across_calls);
	ck_assert_msg(migrations() >= 200, "threads hardly moved: %llu migrations",
	              (unsigned long long)migrations());
	ck_assert_int_eq(atomic_load(&bad_errno), 0);
}

START_TEST(t_errno_across_calls_2) { errno_calls_on("2"); }
END_TEST

START_TEST(t_errno_across_calls_8) { errno_calls_on("8"); }
END_TEST

/* The loop of the report that found the problem, as it was: errno set,
 * one yield, errno read back; at -O2 &errno is computed once and kept. */
O2 static void *errno_across_yield(void *arg)
{
	int id = (int)(intptr_t)arg;
	long bad = 0;
	for (long i = 0; i < iters; i++) {
		errno = id;
		weft_yield();
		if (errno != id)
			bad++;
	}
	atomic_fetch_add(&bad_errno, bad);
	return NULL;
}

/* 8 threads, 2M iterations each (200k under ASan, ten times slower). */
static void errno_yield_on(const char *workers)
{
	setenv_workers(workers, "10000");
#ifdef WF_ASAN
	iters = 200000;
#else
	iters = 2000000;
#endif
	/* Rounds until the threads moved often enough to tell (how often
	 * depends on how the kernel runs the workers: a loaded machine once
	 * gave 6 moves in a round), or 20 rounds. */
	for (int round = 0; round < 20 && (round == 0 || migrations() < 20); round++)
		run_threads(8, errno_across_yield);
	ck_assert_msg(migrations() >= 20, "threads hardly moved: %llu migrations",
	              (unsigned long long)migrations());
	ck_assert_int_eq(atomic_load(&bad_errno), 0);
}

START_TEST(t_errno_across_yield_2) { errno_yield_on("2"); }
END_TEST

START_TEST(t_errno_across_yield_8) { errno_yield_on("8"); }
END_TEST

static __thread int tls_marker;

/* This worker's &tls_marker, computed afresh. */
O2 static int *tls_here(void)
{
	int *p = &tls_marker;
	__asm__ volatile("" : "+r"(p));
	return p;
}

/* Spins in this file's code, where ticks preempt, with errno set and a
 * __thread address held in a register (the empty asm makes the compiler
 * keep it there rather than recompute it). */
O2 static void *spin_with_tls(void *arg)
{
	int id = (int)(intptr_t)arg;
	long bad_e = 0, bad_t = 0;
	uint64_t until = 0;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	until = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + 500000000ull;
	for (long i = 0;; i++) {
		errno = id;
		int *cached = &tls_marker;
		__asm__ volatile("" : "+r"(cached));
		for (volatile unsigned k = 0; k < 20000; k++)
			;
		__asm__ volatile("" : "+r"(cached) : : "memory");  /* errno re-read below */
		if (cached != tls_here())
			bad_t++;
		if (errno != id)
			bad_e++;
		if ((i & 63) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			if ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec > until)
				break;
		}
	}
	atomic_fetch_add(&bad_errno, bad_e);
	atomic_fetch_add(&bad_tls, bad_t);
	return NULL;
}

/* Rounds of 0.5 s until enough preemptions moved threads (how many a
 * round gets depends on how much CPU the kernel gives the workers), or
 * 40 rounds. */
static void preempted_on(const char *workers, int threads)
{
	setenv_workers(workers, "1000");
	weft_stats_t s;
	for (int round = 0; round < 40; round++) {
		run_threads(threads, spin_with_tls);
		ck_assert_int_eq(weft_stats_get(-1, &s), 0);
		if (s.preemptions > 200 && s.migrations > 100)
			break;
	}
	ck_assert_msg(s.preemptions > 200, "only %llu preemptions",
	              (unsigned long long)s.preemptions);
	ck_assert_msg(s.migrations > 100, "preempted threads hardly moved: %llu migrations",
	              (unsigned long long)s.migrations);
	ck_assert_int_eq(atomic_load(&bad_errno), 0);
	ck_assert_int_eq(atomic_load(&bad_tls), 0);
}

START_TEST(t_preempted_keep_tls_2) { preempted_on("2", 5); }
END_TEST

START_TEST(t_preempted_keep_tls_8) { preempted_on("8", 12); }
END_TEST

int main(void)
{
	Suite *s = suite_create("migrate");
	/* Two cases, so that one can run alone (CK_RUN_CASE=preempted: CI's
	 * memcheck step, where too few moves at weft calls happen in time). */
	TCase *tc = tcase_create("calls");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_errno_across_calls_2);
	tcase_add_test(tc, t_errno_across_calls_8);
	tcase_add_test(tc, t_errno_across_yield_2);
	tcase_add_test(tc, t_errno_across_yield_8);
	suite_add_tcase(s, tc);
	tc = tcase_create("preempted");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_preempted_keep_tls_2);
	tcase_add_test(tc, t_preempted_keep_tls_8);
	suite_add_tcase(s, tc);
	return weft_check_run(s);
}
