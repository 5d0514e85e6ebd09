/*
 * test_per_worker.c — what belongs to the worker rather than to the green
 * thread (docs/guide.md, "C and C++ programs"): a __thread variable,
 * pthread_self() and the signal mask are the kernel thread's, shared by
 * every green thread that runs there; errno is not (test_errno.c).
 *
 * One worker and no preemption, so the two threads of each test run on
 * the same kernel thread, one after the other.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include "sched_helpers.h"

static void one_worker(void)
{
	set_workers("1");
	ck_assert_int_eq(setenv("WEFT_QUANTUM_US", "0", 1), 0);
}

/* Run first(), then second(), on the one worker; second's result. */
static void *run_pair(void *(*first)(void *), void *(*second)(void *))
{
	weft_t a, b;
	void *r;
	ck_assert_int_eq(weft_create(&a, NULL, first, NULL), 0);
	ck_assert_int_eq(weft_join(a, NULL), 0);
	ck_assert_int_eq(weft_create(&b, NULL, second, NULL), 0);
	ck_assert_int_eq(weft_join(b, &r), 0);
	return r;
}

static __thread long tls_value;

static void *tls_set(void *arg) { (void)arg; tls_value = 77; return NULL; }
static void *tls_get(void *arg) { (void)arg; return (void *)(intptr_t)tls_value; }

START_TEST(t_thread_variable_is_the_workers)
{
	one_worker();
	ck_assert_int_eq((intptr_t)run_pair(tls_set, tls_get), 77);
}
END_TEST

static pthread_t first_self;

static void *self_set(void *arg) { (void)arg; first_self = pthread_self(); return NULL; }
static void *self_same(void *arg) { (void)arg; return (void *)(intptr_t)pthread_equal(first_self, pthread_self()); }

START_TEST(t_pthread_self_is_the_workers)
{
	one_worker();
	ck_assert_int_ne((intptr_t)run_pair(self_set, self_same), 0);
}
END_TEST

static void *mask_block(void *arg)
{
	(void)arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &s, NULL);   /* and does not unblock it */
	return NULL;
}

static void *mask_read(void *arg)
{
	(void)arg;
	sigset_t s;
	pthread_sigmask(SIG_SETMASK, NULL, &s);
	return (void *)(intptr_t)sigismember(&s, SIGUSR2);
}

START_TEST(t_signal_mask_is_the_workers)
{
	one_worker();
	ck_assert_int_eq((intptr_t)run_pair(mask_block, mask_read), 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("per_worker");
	TCase *tc = tcase_create("per_worker");
	tcase_add_test(tc, t_thread_variable_is_the_workers);
	tcase_add_test(tc, t_pthread_self_is_the_workers);
	tcase_add_test(tc, t_signal_mask_is_the_workers);
	suite_add_tcase(s, tc);
	return weft_check_run(s);
}
