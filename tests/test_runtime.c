/*
 * test_runtime.c — the Runtime section of the API (weft.h), as a
 * program sees it.
 *
 * Covered: init (idempotent, lazy, caller becomes "main" on worker 0),
 * weft_workers honouring WEFT_WORKERS and its default, weft_worker_self in
 * range; an idle process using no CPU; weft_exit from main waiting for
 * every thread and exiting 0; preemption control nesting.
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
/* Runtime                                                                  */
/* ------------------------------------------------------------------------ */

START_TEST(t_init_main)
{
	set_workers("2");
	ck_assert_int_eq(weft_init(), 0);
	ck_assert_int_eq(weft_init(), 0);  /* idempotent */
	ck_assert_int_eq(weft_workers(), 2);
	/* The caller became the green thread "main" on worker 0. */
	ck_assert_int_eq(weft_worker_self(), 0);
	weft_t me = weft_self();
	ck_assert(me != WEFT_NULL);
	ck_assert(weft_equal(me, weft_self()));
	char name[32];
	ck_assert_int_eq(weft_getname(me, name, sizeof name), 0);
	ck_assert_str_eq(name, "main");
	ck_assert_int_eq(weft_init(), 0);
}
END_TEST

static atomic_int lazy_ran;
static weft_t lazy_self;
static void *lazy_child(void *a)
{
	lazy_self = weft_self();
	int w = weft_worker_self();
	ck_assert(w >= 0 && w < 3);
	atomic_fetch_add(&lazy_ran, 1);
	return a;
}

START_TEST(t_lazy_init_by_create)
{
	set_workers("3");
	weft_t t;
	/* No weft_init: the first call initializes, its caller is "main". */
	ck_assert_int_eq(weft_create(&t, NULL, lazy_child, (void *)7), 0);
	ck_assert_int_eq(weft_worker_self() >= 0, 1);
	void *r;
	ck_assert_int_eq(weft_join(t, &r), 0);
	ck_assert_ptr_eq(r, (void *)7);
	ck_assert_int_eq(atomic_load(&lazy_ran), 1);
	ck_assert(weft_equal(lazy_self, t));
	ck_assert(!weft_equal(weft_self(), t));
	ck_assert_int_eq(weft_workers(), 3);
	char name[32];
	ck_assert_int_eq(weft_getname(weft_self(), name, sizeof name), 0);
	ck_assert_str_eq(name, "main");
}
END_TEST

START_TEST(t_lazy_init_by_self)
{
	set_workers("2");
	weft_t me = weft_self();
	ck_assert(me != WEFT_NULL);
	ck_assert_int_eq(weft_worker_self(), 0);
	ck_assert_int_eq(weft_workers(), 2);
	ck_assert_int_eq(weft_init(), 0);
	ck_assert(weft_equal(me, weft_self()));
}
END_TEST

static const int worker_counts[] = { 1, 2, 3, 5, 8 };
static atomic_int ws_bad, ws_standby;

/* An index from weft_workers() up is a standby worker standing in for one
 * found blocked in the kernel (a loaded machine can keep a worker asleep
 * on a kernel lock for the 2 ms it takes): valid only if the monitor did
 * hand one off. */
static void *ws_child(void *a)
{
	int n = (int)(intptr_t)a;
	for (int i = 0; i < 20; i++) {
		int w = weft_worker_self();
		weft_stats_t st;
		if (w < 0 || weft_stats_get(w, &st))
			atomic_fetch_add(&ws_bad, 1);
		else if (w >= n)
			atomic_fetch_add(&ws_standby, 1);
		if (i % 2)
			weft_yield();
		else
			weft_sleep_ns(50000);
	}
	return NULL;
}

START_TEST(t_workers_env)
{
	int n = worker_counts[_i];
	char buf[16];
	snprintf(buf, sizeof buf, "%d", n);
	set_workers(buf);
	ck_assert_int_eq(weft_workers(), n);
	ck_assert_int_eq(weft_init(), 0);
	ck_assert_int_eq(weft_workers(), n);
	weft_t t[64];
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, ws_child, (void *)(intptr_t)n), 0);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&ws_bad), 0);
	weft_stats_t st;
	ck_assert_int_eq(weft_stats_get(-1, &st), 0);
	ck_assert(atomic_load(&ws_standby) == 0 || st.handoffs > 0);
	int w = weft_worker_self();
	ck_assert(w >= 0 && (w < n || st.handoffs > 0));
}
END_TEST

START_TEST(t_workers_default)
{
	unsetenv("WEFT_WORKERS");
	cpu_set_t set;
	ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
	/* The default is the number of CPUs in the affinity mask
	 * (docs/design.md, "Configuration and errors"). */
	ck_assert_int_eq(weft_workers(), CPU_COUNT(&set));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* An idle process uses no CPU                                              */
/* ------------------------------------------------------------------------ */

static void *busy_child(void *a)
{
	for (int i = 0; i < 20; i++) {
		if (i % 5 == 0)
			weft_sleep_ns(50000);
		else
			weft_yield();
	}
	return a;
}

START_TEST(t_idle_uses_no_cpu)
{
	set_workers("2");
	weft_t t[500];
	for (int i = 0; i < 500; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, busy_child, NULL), 0);
	for (int i = 0; i < 500; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	/* Let workers finish their last polling rounds. */
	weft_sleep_ns(20 * MS);
	uint64_t c0 = cpu_ns(), t0 = now_ns();
	ck_assert_int_eq(weft_sleep_ns(200 * MS), 0);
	uint64_t c1 = cpu_ns(), t1 = now_ns();
	ck_assert_uint_ge(t1 - t0, 200 * MS);
	ck_assert_msg(c1 - c0 < 20 * MS, "process used %.1f ms of CPU in a 200 ms idle sleep",
	              (double)(c1 - c0) / 1e6);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* weft_exit from main                                                      */
/* ------------------------------------------------------------------------ */

struct shared { atomic_int ran, detached_ran, at_exit_seen; atomic_int atexit_called; };
static struct shared *shm;

static void at_exit_handler(void)
{
	atomic_store(&shm->at_exit_seen, atomic_load(&shm->ran) + atomic_load(&shm->detached_ran));
	atomic_store(&shm->atexit_called, 1);
}

static void *exit_child(void *a)
{
	weft_sleep_ns((uint64_t)(uintptr_t)a * MS);
	weft_yield();
	atomic_fetch_add(&shm->ran, 1);
	return NULL;
}

static void *exit_detached_child(void *a)
{
	weft_sleep_ns((uint64_t)(uintptr_t)a * MS);
	atomic_fetch_add(&shm->detached_ran, 1);
	return NULL;
}

/* A grandchild that runs weft and calls weft_exit from main.  It reports
 * problems through its exit status (it must not use Check). */
static void exit_main_child(void *main_ret)
{
	setenv("WEFT_WORKERS", "2", 1);
	atexit(at_exit_handler);
	weft_attr_t da;
	if (weft_attr_init(&da) || weft_attr_setdetachstate(&da, WEFT_CREATE_DETACHED))
		_exit(11);
	for (int i = 0; i < 20; i++) {
		weft_t t;
		if (weft_create(&t, NULL, exit_child, (void *)(uintptr_t)(10 + i * 3)))
			_exit(12);
	}
	for (int i = 0; i < 5; i++) {
		weft_t t;
		if (weft_create(&t, &da, exit_detached_child, (void *)(uintptr_t)(30 + i * 10)))
			_exit(13);
	}
	weft_exit(main_ret);
	_exit(14);  /* not reached */
}

static void run_exit_main(void *main_ret)
{
	shm = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(shm, MAP_FAILED);
	memset(shm, 0, sizeof *shm);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		exit_main_child(main_ret);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st), "child did not exit normally (status %#x)", st);
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	ck_assert_int_eq(atomic_load(&shm->ran), 20);
	ck_assert_int_eq(atomic_load(&shm->detached_ran), 5);
	/* atexit handlers ran, after every thread had finished. */
	ck_assert_int_eq(atomic_load(&shm->atexit_called), 1);
	ck_assert_int_eq(atomic_load(&shm->at_exit_seen), 25);
}

START_TEST(t_exit_from_main_waits)
{
	run_exit_main(NULL);
}
END_TEST

START_TEST(t_exit_from_main_status_zero)
{
	/* Whatever value main passes, the status is 0. */
	run_exit_main((void *)(intptr_t)3);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Preemption control (Runtime section)                                     */
/* ------------------------------------------------------------------------ */

static atomic_long pd_counter;
static atomic_int pd_stop;
static void *pd_other(void *a)
{
	(void)a;
	while (!atomic_load(&pd_stop)) {
		atomic_fetch_add(&pd_counter, 1);
		weft_yield();
	}
	return NULL;
}

static void *pd_holder(void *a)
{
	(void)a;
	weft_preempt_disable();
	weft_preempt_disable();
	weft_preempt_enable();  /* still disabled once */
	long c0 = atomic_load(&pd_counter);
	uint64_t end = now_ns() + 50 * MS;
	while (now_ns() < end)
		;
	/* Never preempted: the other thread, ready on the same single
	 * worker all along, did not run. */
	long c1 = atomic_load(&pd_counter);
	/* Blocking and yielding still work while disabled. */
	ck_assert_int_eq(weft_yield(), 0);
	ck_assert_int_eq(weft_sleep_ns(1000), 0);
	weft_preempt_enable();
	atomic_store(&pd_stop, 1);
	ck_assert_int_eq(c1, c0);
	return NULL;
}

START_TEST(t_preempt_disable_nests)
{
	set_workers("1");
	ck_assert_int_eq(setenv("WEFT_QUANTUM_US", "1000", 1), 0);
	weft_t o, h;
	/* pd_other yields after each step, so it is always ready. */
	ck_assert_int_eq(weft_create(&o, NULL, pd_other, NULL), 0);
	ck_assert_int_eq(weft_create(&h, NULL, pd_holder, NULL), 0);
	ck_assert_int_eq(weft_join(h, NULL), 0);
	ck_assert_int_eq(weft_join(o, NULL), 0);
	ck_assert_int_gt(atomic_load(&pd_counter), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *runtime_suite(void)
{
	Suite *s = suite_create("runtime");
	TCase *tc;

	tc = tcase_create("runtime");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_init_main);
	tcase_add_test(tc, t_lazy_init_by_create);
	tcase_add_test(tc, t_lazy_init_by_self);
	tcase_add_loop_test(tc, t_workers_env, 0, sizeof worker_counts / sizeof worker_counts[0]);
	tcase_add_test(tc, t_workers_default);
	tcase_add_test(tc, t_idle_uses_no_cpu);
	tcase_add_test(tc, t_preempt_disable_nests);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_exit_from_main_waits);
	tcase_add_test(tc, t_exit_from_main_status_zero);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(runtime_suite());
}
