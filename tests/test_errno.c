/*
 * test_errno.c — errno belongs to the green thread (weft.h).
 *
 * Covered: errno per thread, kept across switches and across a migration
 * between workers (with keys), and never changed by weft calls.
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

/* errno through calls the compiler cannot see into: __errno_location is
 * declared const, so gcc may keep &errno of the worker a thread started on
 * across a switch (docs/design.md, "glibc and clone workers: what was
 * measured"). */
static __attribute__((noinline, noipa)) int get_errno(void) { return errno; }
static __attribute__((noinline, noipa)) void set_errno(int v) { errno = v; }

/* ------------------------------------------------------------------------ */
/* errno                                                                    */
/* ------------------------------------------------------------------------ */

static atomic_int errno_bad;
static void *errno_child(void *a)
{
	int mine = (int)(intptr_t)a;
	set_errno(mine);
	for (int i = 0; i < 200; i++) {
		if (i % 10 == 9)
			weft_sleep_ns(10000);
		else
			weft_yield();
		if (get_errno() != mine)
			atomic_fetch_add(&errno_bad, 1);
	}
	return NULL;
}

START_TEST(t_errno_per_thread)
{
	set_workers("1");
	weft_t t[8];
	set_errno(3333);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(weft_create(&t[i], NULL, errno_child, (void *)(intptr_t)(100 + i)), 0);
		/* The child ran on this worker and set its errno: ours stays. */
		ck_assert_int_eq(get_errno(), 3333);
	}
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
		ck_assert_int_eq(get_errno(), 3333);
	}
	ck_assert_int_eq(atomic_load(&errno_bad), 0);
}
END_TEST

START_TEST(t_errno_per_thread_2w)
{
	set_workers("2");
	weft_t t[16];
	set_errno(4444);
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, errno_child, (void *)(intptr_t)(200 + i)), 0);
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	ck_assert_int_eq(get_errno(), 4444);
	ck_assert_int_eq(atomic_load(&errno_bad), 0);
}
END_TEST

static void *nop_child(void *a)
{
	weft_yield();
	return a;
}

START_TEST(t_errno_untouched_by_weft)
{
	set_workers("2");
	set_errno(4242);
	ck_assert_int_eq(weft_init(), 0);
	ck_assert_int_eq(get_errno(), 4242);
	weft_t t;
	ck_assert_int_eq(weft_create(&t, NULL, nop_child, NULL), 0);
	ck_assert_int_eq(get_errno(), 4242);
	ck_assert_int_eq(weft_yield(), 0);
	ck_assert_int_eq(weft_sleep_ns(1000), 0);
	ck_assert_int_eq(get_errno(), 4242);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	ck_assert_int_eq(get_errno(), 4242);
	/* Failing calls leave errno alone too. */
	ck_assert_int_eq(weft_join(t, NULL), ESRCH);
	ck_assert_int_eq(weft_detach(t), ESRCH);
	char b[2];
	ck_assert_int_eq(weft_setname(weft_self(), "long-ish"), 0);
	ck_assert_int_eq(weft_getname(weft_self(), b, sizeof b), ERANGE);
	ck_assert_int_eq(weft_join(weft_self(), NULL), EDEADLK);
	ck_assert_int_eq(weft_create(NULL, NULL, nop_child, NULL), EINVAL);
	ck_assert_int_eq(weft_attr_setstacksize(NULL, 1), EINVAL);
	weft_key_t k;
	ck_assert_int_eq(weft_key_create(&k, NULL), 0);
	ck_assert_int_eq(weft_setspecific(k, &k), 0);
	ck_assert_int_eq(weft_key_delete(k), 0);
	ck_assert_int_eq(weft_key_delete(k), EINVAL);
	ck_assert_int_eq(get_errno(), 4242);
}
END_TEST

/* A thread's errno and key values survive a migration between workers. */
#define MIG_N 6
#define MIG_SPIN 4
static weft_key_t mig_key;
static int mig_val[MIG_N];
static atomic_int mig_moves[MIG_N], mig_stop, mig_done;

static void *migrant(void *a)
{
	int i = (int)(intptr_t)a;
	int mine = 7000 + i;
	unsigned r = (unsigned)i * 7919u + 1;
	set_errno(mine);
	ck_assert_int_eq(weft_setspecific(mig_key, &mig_val[i]), 0);
	int w = weft_worker_self();
	int moves = 0;
	uint64_t end = now_ns() + 20000 * MS;
	for (long n = 0; moves < 2 && now_ns() < end; n++) {
		/* Sleeps of varied length leave a worker idle now and then;
		 * an idle worker steals, which is what moves threads. */
		r = r * 1103515245u + 12345u;
		if (n % 4 == 3)
			weft_sleep_ns(20000 + (r >> 16) % 200000);
		else
			weft_yield();
		int e = get_errno();
		ck_assert_msg(e == mine, "thread %d: errno %d after a switch, expected %d "
		              "(worker %d -> %d)", i, e, mine, w, weft_worker_self());
		ck_assert_ptr_eq(weft_getspecific(mig_key), &mig_val[i]);
		int w2 = weft_worker_self();
		ck_assert(w2 >= 0);
		if (w2 >= 2) {
			/* A standby worker standing in for one the monitor found
			 * blocked (a slow machine, an emulator): only then. */
			weft_stats_t st;
			ck_assert_int_eq(weft_stats_get(-1, &st), 0);
			ck_assert_msg(st.handoffs > 0, "worker %d of 2, and no handoff", w2);
		}
		if (w2 != w) {
			moves++;
			w = w2;
		}
	}
	atomic_store(&mig_moves[i], moves);
	atomic_fetch_add(&mig_done, 1);
	return NULL;
}

/* Competitors that keep the run queues busy, each with its own errno. */
static void *spinner(void *a)
{
	int mine = -100 - (int)(intptr_t)a;
	set_errno(mine);
	volatile unsigned long x = 0;
	for (long n = 0; !atomic_load(&mig_stop); n++) {
		for (int i = 0; i < 2000; i++)
			x += (unsigned long)i;
		if (n % 16 == 15)
			weft_sleep_ns(300000);
		else
			weft_yield();
		ck_assert_int_eq(get_errno(), mine);
	}
	return NULL;
}

START_TEST(t_migration_keeps_errno_and_keys)
{
	set_workers("2");
	ck_assert_int_eq(weft_key_create(&mig_key, NULL), 0);
	weft_t sp[MIG_SPIN], mg[MIG_N];
	for (int i = 0; i < MIG_SPIN; i++)
		ck_assert_int_eq(weft_create(&sp[i], NULL, spinner, (void *)(intptr_t)i), 0);
	for (int i = 0; i < MIG_N; i++)
		ck_assert_int_eq(weft_create(&mg[i], NULL, migrant, (void *)(intptr_t)i), 0);
	for (int i = 0; i < MIG_N; i++)
		ck_assert_int_eq(weft_join(mg[i], NULL), 0);
	atomic_store(&mig_stop, 1);
	for (int i = 0; i < MIG_SPIN; i++)
		ck_assert_int_eq(weft_join(sp[i], NULL), 0);
	for (int i = 0; i < MIG_N; i++)
		ck_assert_msg(atomic_load(&mig_moves[i]) >= 1,
		              "thread %d never changed workers", i);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *errno_suite(void)
{
	Suite *s = suite_create("errno");
	TCase *tc;

	tc = tcase_create("errno");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_errno_per_thread);
	tcase_add_test(tc, t_errno_per_thread_2w);
	tcase_add_test(tc, t_errno_untouched_by_weft);
	tcase_add_test(tc, t_migration_keeps_errno_and_keys);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(errno_suite());
}
