/*
 * test_yield_sleep.c — weft_yield and weft_sleep_ns (the Threads section of
 * the API, weft.h).
 *
 * Covered: yield round-robin on one worker, and alone; sleep (at least the
 * time, in deadline order also when several expired together, without
 * blocking the worker); two threads that only yield spread over two
 * workers.
 *
 * Each test runs in its own forked process (Check's default), so each
 * initializes weft itself: environment variables are set at the top of a
 * test, before any weft call.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>
#include "child_capture.h"
#include "sched_helpers.h"

/* ------------------------------------------------------------------------ */
/* Yield and sleep                                                          */
/* ------------------------------------------------------------------------ */

#define RR_ROUNDS 10
static char rr_log[3 * RR_ROUNDS + 1];
static atomic_int rr_len;

static void *rr_child(void *a)
{
	char id = (char)(intptr_t)a;
	for (int i = 0; i < RR_ROUNDS; i++) {
		rr_log[atomic_fetch_add(&rr_len, 1)] = id;
		ck_assert_int_eq(weft_yield(), 0);
	}
	return NULL;
}

START_TEST(t_yield_round_robin)
{
	set_workers("1");
	/* Preemption off: only the yields decide the order. */
	ck_assert_int_eq(setenv("WEFT_QUANTUM_US", "0", 1), 0);
	weft_t t[3];
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, rr_child, (void *)(intptr_t)('A' + i)), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	char expect[3 * RR_ROUNDS + 1];
	for (int i = 0; i < RR_ROUNDS; i++)
		memcpy(expect + 3 * i, "ABC", 3);
	expect[3 * RR_ROUNDS] = '\0';
	rr_log[atomic_load(&rr_len)] = '\0';
	ck_assert_str_eq(rr_log, expect);
}
END_TEST

START_TEST(t_yield_alone)
{
	set_workers("1");
	/* Nothing else to run: yield returns at once. */
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(weft_yield(), 0);
	ck_assert_int_eq(weft_sleep_ns(0), 0);
}
END_TEST

static const uint64_t sleep_times[] = { 1 * MS, 3 * MS, 10 * MS, 25 * MS, 50 * MS };
static atomic_int sleep_short;

static void *sleeper(void *a)
{
	uint64_t ns = (uint64_t)(uintptr_t)a;
	for (int i = 0; i < 3; i++) {
		uint64_t t0 = now_ns();
		ck_assert_int_eq(weft_sleep_ns(ns), 0);
		uint64_t dt = now_ns() - t0;
		if (dt < ns)
			atomic_fetch_add(&sleep_short, 1);
		/* A wake-up that never comes, or comes very late, is a bug. */
		ck_assert_msg(dt < ns + 1000 * MS, "slept %llu ns for %llu", (unsigned long long)dt,
		              (unsigned long long)ns);
	}
	return NULL;
}

START_TEST(t_sleep_at_least)
{
	set_workers("2");
	for (size_t i = 0; i < sizeof sleep_times / sizeof sleep_times[0]; i++) {
		uint64_t t0 = now_ns();
		ck_assert_int_eq(weft_sleep_ns(sleep_times[i]), 0);
		ck_assert_uint_ge(now_ns() - t0, sleep_times[i]);
	}
	weft_t t[40];
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, sleeper,
		                             (void *)(uintptr_t)(sleep_times[i % 5] + (uint64_t)i * 1000)),
		                 0);
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&sleep_short), 0);
}
END_TEST

static char so_log[8];
static atomic_int so_len;
static uint64_t so_deadline[5];   /* by ms / 10 */
static void *sleep_order_child(void *a)
{
	uint64_t ms = (uint64_t)(uintptr_t)a;
	so_deadline[ms / 10] = now_ns() + ms * MS;
	weft_sleep_ns(ms * MS);
	so_log[atomic_fetch_add(&so_len, 1)] = (char)('0' + ms / 10);
	return NULL;
}

START_TEST(t_sleep_wakes_in_deadline_order)
{
	set_workers("1");
	ck_assert_int_eq(setenv("WEFT_QUANTUM_US", "0", 1), 0);
	static const int ms[] = { 40, 10, 30, 20 };
	weft_t t[4];
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, sleep_order_child,
		                             (void *)(uintptr_t)ms[i]), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	so_log[4] = '\0';
	/* The order of the deadlines the sleepers set: "1234" unless creating
	 * them took longer than the 10 ms between two sleeps (an emulator). */
	char want[5] = "1234";
	for (int i = 0; i < 4; i++)
		for (int j = i + 1; j < 4; j++)
			if (so_deadline[want[j] - '0'] < so_deadline[want[i] - '0']) {
				char c = want[i];
				want[i] = want[j];
				want[j] = c;
			}
	ck_assert_str_eq(so_log, want);
}
END_TEST

/* Sleepers whose deadlines all passed while the worker was busy wake in
 * deadline order too (the worker finds them expired together). */
START_TEST(t_sleepers_expired_together_wake_in_order)
{
	set_workers("1");
	ck_assert_int_eq(setenv("WEFT_QUANTUM_US", "0", 1), 0);
	static const int ms[] = { 10, 20, 30, 40 };
	weft_t t[4];
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, sleep_order_child,
		                             (void *)(uintptr_t)ms[i]), 0);
	/* Keep the only worker busy past every deadline. */
	uint64_t end = now_ns() + 80 * MS;
	while (now_ns() < end)
		;
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	so_log[4] = '\0';
	/* The order of the deadlines the sleepers set: "1234" unless creating
	 * them took longer than the 10 ms between two sleeps (an emulator). */
	char want[5] = "1234";
	for (int i = 0; i < 4; i++)
		for (int j = i + 1; j < 4; j++)
			if (so_deadline[want[j] - '0'] < so_deadline[want[i] - '0']) {
				char c = want[i];
				want[i] = want[j];
				want[j] = c;
			}
	ck_assert_str_eq(so_log, want);
}
END_TEST

/* A sleeping thread parks: its worker runs others meanwhile. */
static atomic_int nb_sleeping, nb_awake;
static atomic_long nb_progress_while_asleep;
static void *nb_sleeper(void *a)
{
	(void)a;
	atomic_store(&nb_sleeping, 1);
	weft_sleep_ns(100 * MS);
	atomic_store(&nb_awake, 1);
	return NULL;
}
static void *nb_counter(void *a)
{
	(void)a;
	while (!atomic_load(&nb_awake)) {
		if (atomic_load(&nb_sleeping))
			atomic_fetch_add(&nb_progress_while_asleep, 1);
		weft_yield();
	}
	return NULL;
}

START_TEST(t_sleep_does_not_block_worker)
{
	set_workers("1");
	weft_t s, c;
	ck_assert_int_eq(weft_create(&s, NULL, nb_sleeper, NULL), 0);
	ck_assert_int_eq(weft_create(&c, NULL, nb_counter, NULL), 0);
	ck_assert_int_eq(weft_join(s, NULL), 0);
	ck_assert_int_eq(weft_join(c, NULL), 0);
	ck_assert_int_gt(atomic_load(&nb_progress_while_asleep), 100);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Two threads that only yield spread over two workers                      */
/* ------------------------------------------------------------------------ */

/* Each yields in a loop with a little work between yields, so the queue of
 * the worker running one of them always holds the other: an idle worker
 * must steal it (neither was woken by a thread about to block, so the
 * hand-off grace of runqueue.c does not apply, however often the worker
 * switches).  It also catches a queue that reads empty while its worker
 * switches between the two (a yield as pop-then-push): the thief's last
 * look before sleeping could land there, and nothing woke it again. */
static atomic_int spread_stop;
static atomic_int spread_worker[2];

static weft_t spread_second;

static void *spread_yielder(void *a)
{
	int i = (int)(long)a;
	/* The first creates the second: the queue never holds both at once,
	 * so the thief always meets a lone thread. */
	if (i == 0)
		ck_assert_int_eq(weft_create(&spread_second, NULL, spread_yielder, (void *)1L), 0);
	while (!atomic_load_explicit(&spread_stop, memory_order_relaxed)) {
		for (volatile int k = 0; k < 100; k++)   /* well under a microsecond */
			;
		atomic_store(&spread_worker[i], weft_worker_self());
		weft_yield();
	}
	return NULL;
}

START_TEST(t_yielders_spread_over_workers)
{
	ck_assert_int_eq(setenv("WEFT_QUANTUM_US", "0", 1), 0);
	set_workers("2");
	weft_t first;
	ck_assert_int_eq(weft_create(&first, NULL, spread_yielder, (void *)0L), 0);
	ck_assert_int_eq(weft_sleep_ns(300 * MS), 0);
	int w0 = atomic_load(&spread_worker[0]), w1 = atomic_load(&spread_worker[1]);
	atomic_store(&spread_stop, 1);
	ck_assert_int_eq(weft_join(first, NULL), 0);
	ck_assert_int_eq(weft_join(spread_second, NULL), 0);
	ck_assert_msg(w0 != w1, "both yielders on worker %d after 300 ms", w0);
	weft_stats_t st;
	ck_assert_int_eq(weft_stats_get(-1, &st), 0);
	ck_assert_uint_ge(st.steals, 1);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *yield_sleep_suite(void)
{
	Suite *s = suite_create("yield-sleep");
	TCase *tc;

	tc = tcase_create("yield_sleep");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_yield_round_robin);
	tcase_add_test(tc, t_yield_alone);
	tcase_add_test(tc, t_sleep_at_least);
	tcase_add_test(tc, t_sleep_wakes_in_deadline_order);
	tcase_add_test(tc, t_sleepers_expired_together_wake_in_order);
	tcase_add_test(tc, t_sleep_does_not_block_worker);
	tcase_add_test(tc, t_yielders_spread_over_workers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(yield_sleep_suite());
}
