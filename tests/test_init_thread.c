/*
 * test_init_thread.c — weft initialized by a kernel thread that is not the
 * process's initial thread (docs/design.md, "Initialized by another
 * thread").
 *
 * Covered: a plain pthread that initializes weft, creates threads and
 * returns leaves them running on weft's own workers (1 and 2 workers);
 * main, on that pthread, blocks and wakes through every kind of weft call
 * and never leaves its kernel thread, and no other green thread ever runs
 * there; weft_exit from such a main waits for the others; the clone
 * backend's gate passes on such a thread (it used to fail, naming the
 * wrong check).
 *
 * Each test runs in its own forked process (Check's default) and sets its
 * environment before the first weft call.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "child_capture.h"
#include "sched_helpers.h"

static atomic_int finished, bad;
static atomic_int main_tid;      /* the initializing pthread's kernel tid */

static void *sleeper(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++) {
		weft_yield();
		if (gettid() == atomic_load(&main_tid))
			atomic_fetch_add(&bad, 1);   /* ran on main's kernel thread */
	}
	weft_sleep_ns(20 * 1000000ull);
	if (gettid() == atomic_load(&main_tid))
		atomic_fetch_add(&bad, 1);
	atomic_fetch_add(&finished, 1);
	return NULL;
}

struct starter_res {
	int init, worker_self, workers;
};

/* Initialize weft, start 20 threads (not joined), return at once. */
static void *starter(void *arg)
{
	struct starter_res *r = arg;
	atomic_store(&main_tid, gettid());
	r->init = weft_init();
	if (r->init)
		return NULL;
	for (int i = 0; i < 20; i++) {
		weft_t t;
		if (weft_create(&t, NULL, sleeper, NULL) || weft_detach(t))
			atomic_fetch_add(&bad, 1);
	}
	r->worker_self = weft_worker_self();
	r->workers = weft_workers();
	return NULL;
}

static void returns_on(const char *workers)
{
	set_workers(workers);
	pthread_t p;
	struct starter_res r = { -1, -1, -1 };
	ck_assert_int_eq(pthread_create(&p, NULL, starter, &r), 0);
	ck_assert_int_eq(pthread_join(p, NULL), 0);
	ck_assert_int_eq(r.init, 0);
	for (int i = 0; i < 1000 && atomic_load(&finished) < 20; i++)
		usleep(10000);
	int done = atomic_load(&finished), wrong = atomic_load(&bad);
	ck_assert_int_eq(done, 20);
	ck_assert_int_eq(wrong, 0);
	/* main's kernel thread is none of the workers 0..n-1 */
	ck_assert_int_eq(r.worker_self, r.workers);
}

START_TEST(t_initializer_returns_1) { returns_on("1"); }
END_TEST

START_TEST(t_initializer_returns_2) { returns_on("2"); }
END_TEST

/* ---- main on its own kernel thread ------------------------------------- */

static weft_mutex_t mu = WEFT_MUTEX_INITIALIZER;
static weft_cond_t cv = WEFT_COND_INITIALIZER;
static int turn;

/* Ping-pong with main on a condition variable. */
static void *partner(void *arg)
{
	(void)arg;
	for (int i = 0; i < 200; i++) {
		weft_mutex_lock(&mu);
		while (turn != 1)
			weft_cond_wait(&cv, &mu);
		turn = 0;
		weft_cond_signal(&cv);
		weft_mutex_unlock(&mu);
		if (gettid() == atomic_load(&main_tid))
			atomic_fetch_add(&bad, 1);
	}
	return NULL;
}

static void *busy_main(void *arg)
{
	int *ok = arg;
	pid_t me = gettid();
	atomic_store(&main_tid, me);
	if (weft_init())
		return NULL;
	weft_t t[4];
	for (int i = 0; i < 4; i++)
		if (weft_create(&t[i], NULL, sleeper, NULL))
			return NULL;
	weft_t p;
	if (weft_create(&p, NULL, partner, NULL))
		return NULL;
	for (int i = 0; i < 200; i++) {
		weft_mutex_lock(&mu);
		turn = 1;
		weft_cond_signal(&cv);
		while (turn != 0)
			weft_cond_wait(&cv, &mu);
		weft_mutex_unlock(&mu);
		if (i % 50 == 0) {
			weft_yield();
			weft_sleep_ns(100000);
		}
		if (gettid() != me)
			return NULL;   /* main left its kernel thread */
	}
	for (int i = 0; i < 4; i++)
		if (weft_join(t[i], NULL))
			return NULL;
	if (weft_join(p, NULL) || gettid() != me)
		return NULL;
	*ok = 1;
	return NULL;
}

START_TEST(t_main_blocks_on_its_thread)
{
	set_workers("2");
	pthread_t p;
	int ok = 0;
	ck_assert_int_eq(pthread_create(&p, NULL, busy_main, &ok), 0);
	ck_assert_int_eq(pthread_join(p, NULL), 0);
	int done = atomic_load(&finished), wrong = atomic_load(&bad);
	ck_assert_int_eq(ok, 1);
	ck_assert_int_eq(done, 4);
	ck_assert_int_eq(wrong, 0);
}
END_TEST

/* ---- weft_exit from such a main ----------------------------------------- */

static void *exiting_main(void *arg)
{
	(void)arg;
	atomic_store(&main_tid, gettid());
	for (int i = 0; i < 5; i++) {
		weft_t t;
		if (weft_create(&t, NULL, sleeper, NULL))
			_exit(3);
	}
	weft_exit(NULL);   /* waits for the five, then exit(0) */
}

static void exit_child(void *arg)
{
	(void)arg;
	setenv("WEFT_WORKERS", "2", 1);
	pthread_t p;
	if (pthread_create(&p, NULL, exiting_main, NULL))
		_exit(4);
	pthread_join(p, NULL);
	_exit(5);   /* never: the process ends in weft_exit */
}

START_TEST(t_exit_from_main_on_pthread)
{
	char err[1024];
	int st = weft_test_run_captured(exit_child, NULL, err, sizeof err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, stderr: %s", st, err);
	ck_assert_str_eq(err, "");
}
END_TEST

/* ---- the clone gate on such a thread ------------------------------------ */

static void *init_only(void *arg)
{
	*(int *)arg = weft_init();
	return NULL;
}

static void gate_child(void *arg)
{
	(void)arg;
	setenv("WEFT_WORKERS", "2", 1);
	setenv("WEFT_KTHREADS", "clone", 1);
	int e = -1;
	pthread_t p;
	if (pthread_create(&p, NULL, init_only, &e) || pthread_join(p, NULL))
		_exit(4);
	_exit(e == 0 ? 0 : 6);
}

/* The gate takes the resolver slot of a pthread for what it is. */
START_TEST(t_clone_gate_on_pthread)
{
	char err[1024];
	int st = weft_test_run_captured(gate_child, NULL, err, sizeof err);
#if defined(__x86_64__)
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, stderr: %s", st, err);
	ck_assert_str_eq(err, "");
#else
	/* The gate fails closed off x86-64 (docs/design.md, "The clone gate"),
	 * and says so, not some other check. */
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 6, "status %#x, stderr: %s", st, err);
	ck_assert_msg(strstr(err, "architecture check"), "stderr: %s", err);
#endif
}
END_TEST

int main(void)
{
	Suite *s = suite_create("init_thread");
	TCase *tc = tcase_create("init_thread");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_initializer_returns_1);
	tcase_add_test(tc, t_initializer_returns_2);
	tcase_add_test(tc, t_main_blocks_on_its_thread);
	tcase_add_test(tc, t_exit_from_main_on_pthread);
	tcase_add_test(tc, t_clone_gate_on_pthread);
	suite_add_tcase(s, tc);
	return weft_check_run(s);
}
