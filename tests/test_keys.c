/*
 * test_keys.c — the Thread-specific data section of the API (weft.h).
 *
 * Covered: per-thread values, destructors with the right value at return
 * and at weft_exit, delete, recreate, every slot.
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
/* Thread-specific data                                                     */
/* ------------------------------------------------------------------------ */

static weft_key_t k1, k2;
static int vals[64];

static void *key_child(void *a)
{
	int i = (int)(intptr_t)a;
	ck_assert_ptr_null(weft_getspecific(k1));  /* unset in a new thread */
	ck_assert_ptr_null(weft_getspecific(k2));
	ck_assert_int_eq(weft_setspecific(k1, &vals[i]), 0);
	ck_assert_int_eq(weft_setspecific(k2, &vals[63 - i]), 0);
	for (int n = 0; n < 20; n++) {
		if (n % 3)
			weft_yield();
		else
			weft_sleep_ns(20000);
		ck_assert_ptr_eq(weft_getspecific(k1), &vals[i]);
		ck_assert_ptr_eq(weft_getspecific(k2), &vals[63 - i]);
	}
	ck_assert_int_eq(weft_setspecific(k1, NULL), 0);
	ck_assert_ptr_null(weft_getspecific(k1));
	return NULL;
}

START_TEST(t_keys_per_thread)
{
	set_workers("2");
	ck_assert_int_eq(weft_key_create(&k1, NULL), 0);
	ck_assert_int_eq(weft_key_create(&k2, NULL), 0);
	ck_assert(k1 != k2);
	int mine = 5;
	ck_assert_ptr_null(weft_getspecific(k1));
	ck_assert_int_eq(weft_setspecific(k1, &mine), 0);
	weft_t t[32];
	for (int i = 0; i < 32; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, key_child, (void *)(intptr_t)i), 0);
	for (int i = 0; i < 32; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	ck_assert_ptr_eq(weft_getspecific(k1), &mine);
	ck_assert_ptr_null(weft_getspecific(k2));
	ck_assert_int_eq(weft_key_delete(k1), 0);
	ck_assert_int_eq(weft_key_delete(k2), 0);
}
END_TEST

/* Destructors: run once per non-NULL value, in the finishing thread, with
 * the value it had, before its joiner returns. */
#define DT_N 40
struct dval { int idx; weft_t owner; };
static struct dval dvals[DT_N];
static atomic_int dcalls[DT_N], dcalls_total, dcalls_wrong, dcalls_k2;
static weft_key_t dk, dk2;

static void dtor(void *v)
{
	struct dval *d = v;
	if (d < dvals || d >= dvals + DT_N || !weft_equal(d->owner, weft_self()))
		atomic_fetch_add(&dcalls_wrong, 1);
	else
		atomic_fetch_add(&dcalls[d->idx], 1);
	/* A destructor is ordinary green-thread code: it may block. */
	weft_yield();
	weft_sleep_ns(10000);
	atomic_fetch_add(&dcalls_total, 1);
}

static void dtor2(void *v)
{
	(void)v;
	atomic_fetch_add(&dcalls_k2, 1);
}

static void *dtor_child(void *a)
{
	int i = (int)(intptr_t)a;
	dvals[i].idx = i;
	dvals[i].owner = weft_self();
	ck_assert_int_eq(weft_setspecific(dk, &dvals[i]), 0);
	/* dk2 set then cleared: no destructor call for NULL values. */
	ck_assert_int_eq(weft_setspecific(dk2, &dvals[i]), 0);
	ck_assert_int_eq(weft_setspecific(dk2, NULL), 0);
	weft_sleep_ns(100000);
	if (i % 2)
		weft_exit((void *)(intptr_t)i);
	return (void *)(intptr_t)i;
}

START_TEST(t_key_destructors)
{
	set_workers("2");
	ck_assert_int_eq(weft_key_create(&dk, dtor), 0);
	ck_assert_int_eq(weft_key_create(&dk2, dtor2), 0);
	weft_t t[DT_N];
	for (int i = 0; i < DT_N; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, dtor_child, (void *)(intptr_t)i), 0);
	for (int i = 0; i < DT_N; i++) {
		void *r;
		ck_assert_int_eq(weft_join(t[i], &r), 0);
		ck_assert_ptr_eq(r, (void *)(intptr_t)i);
		/* Ran before the thread finished, hence before join returned. */
		ck_assert_int_eq(atomic_load(&dcalls[i]), 1);
	}
	ck_assert_int_eq(atomic_load(&dcalls_total), DT_N);
	ck_assert_int_eq(atomic_load(&dcalls_wrong), 0);
	ck_assert_int_eq(atomic_load(&dcalls_k2), 0);
	for (int i = 0; i < DT_N; i++)
		ck_assert_int_eq(atomic_load(&dcalls[i]), 1);
}
END_TEST

static weft_key_t del_key;
static atomic_int del_calls, del_stage;
static void del_dtor(void *v) { (void)v; atomic_fetch_add(&del_calls, 1); }
static void *del_child(void *a)
{
	(void)a;
	ck_assert_int_eq(weft_setspecific(del_key, (void *)0x1234), 0);
	atomic_store(&del_stage, 1);
	while (atomic_load(&del_stage) != 2)
		weft_sleep_ns(100000);
	/* The key is gone: no value, no setting. */
	ck_assert_ptr_null(weft_getspecific(del_key));
	ck_assert_int_eq(weft_setspecific(del_key, (void *)1), EINVAL);
	return NULL;
}

START_TEST(t_key_delete)
{
	set_workers("2");
	ck_assert_int_eq(weft_key_create(&del_key, del_dtor), 0);
	weft_t t;
	ck_assert_int_eq(weft_create(&t, NULL, del_child, NULL), 0);
	while (atomic_load(&del_stage) != 1)
		weft_sleep_ns(100000);
	ck_assert_int_eq(weft_key_delete(del_key), 0);
	/* Recreating keys (any slot, including the freed one) shows no old
	 * value, in the main thread or the child. */
	weft_key_t fresh[WEFT_KEYS_MAX];
	int n = 0;
	while (n < WEFT_KEYS_MAX && weft_key_create(&fresh[n], NULL) == 0)
		n++;
	/* The deleted key's slot is free again: all WEFT_KEYS_MAX exist. */
	ck_assert_int_eq(n, WEFT_KEYS_MAX);
	for (int i = 0; i < n; i++)
		ck_assert_ptr_null(weft_getspecific(fresh[i]));
	atomic_store(&del_stage, 2);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	/* Destructors of a deleted key are not called. */
	ck_assert_int_eq(atomic_load(&del_calls), 0);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_key_delete(fresh[i]), 0);
}
END_TEST

static weft_key_t all_keys[WEFT_KEYS_MAX];
static void *all_keys_child(void *a)
{
	uintptr_t base = (uintptr_t)a;
	for (int i = 0; i < WEFT_KEYS_MAX; i++)
		ck_assert_int_eq(weft_setspecific(all_keys[i], (void *)(base + (uintptr_t)i)), 0);
	weft_yield();
	for (int i = 0; i < WEFT_KEYS_MAX; i++)
		ck_assert_ptr_eq(weft_getspecific(all_keys[i]), (void *)(base + (uintptr_t)i));
	return NULL;
}

START_TEST(t_keys_all_slots)
{
	set_workers("2");
	for (int i = 0; i < WEFT_KEYS_MAX; i++)
		ck_assert_int_eq(weft_key_create(&all_keys[i], NULL), 0);
	weft_t t[4];
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, all_keys_child,
		                             (void *)(uintptr_t)(0x10000 * (i + 1))), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *keys_suite(void)
{
	Suite *s = suite_create("keys");
	TCase *tc;

	tc = tcase_create("keys");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_keys_per_thread);
	tcase_add_test(tc, t_key_destructors);
	tcase_add_test(tc, t_key_delete);
	tcase_add_test(tc, t_keys_all_slots);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(keys_suite());
}
