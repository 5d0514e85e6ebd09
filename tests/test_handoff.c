/*
 * test_handoff.c — system calls weft was not told about: a worker blocked
 * in the kernel hands its threads to another kernel thread (the monitor,
 * docs/design.md "Blocked workers"), and the tick never makes a system
 * call fail with EINTR or return early.
 *
 * Each scenario below hung, or returned early, before: with one worker, a
 * green thread blocked in read(), sleep() or pthread_mutex_lock kept every
 * other thread of that worker from running, and a thread that should have
 * ended the blocking call was among them.  Green threads record what they
 * saw; main asserts.  No test judges timing: they judge whether the other
 * threads ran while one was blocked, and what the calls returned.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "weft_check.h"

static atomic_bool stop;
static _Atomic uint64_t spins[4];

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void start(const char *workers, const char *quantum_us)
{
	setenv("WEFT_WORKERS", workers, 1);
	if (quantum_us)
		setenv("WEFT_QUANTUM_US", quantum_us, 1);
	else
		unsetenv("WEFT_QUANTUM_US");
	ck_assert_int_eq(weft_init(), 0);
}

static void *spinner(void *arg)
{
	_Atomic uint64_t *n = arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		atomic_fetch_add_explicit(n, 1, memory_order_relaxed);
	return NULL;
}

static void start_spinners(weft_t *t, int n)
{
	atomic_store(&stop, false);
	for (int i = 0; i < n; i++) {
		atomic_store(&spins[i], 0);
		ck_assert_int_eq(weft_create(&t[i], NULL, spinner, &spins[i]), 0);
	}
}

static void stop_spinners(weft_t *t, int n)
{
	atomic_store(&stop, true);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
}

static uint64_t handoffs(void)
{
	weft_stats_t s;
	ck_assert_int_eq(weft_stats_get(-1, &s), 0);
	return s.handoffs;
}

/* ------------------------------------------------------------------------ */

struct sleep_result {
	unsigned left;
	uint64_t took;
	uint64_t spun[3];
};

static void *libc_sleeper(void *arg)
{
	struct sleep_result *r = arg;
	uint64_t before[3];
	for (int i = 0; i < 3; i++)
		before[i] = atomic_load(&spins[i]);
	uint64_t t0 = now_ns();
	r->left = sleep(1);
	r->took = now_ns() - t0;
	for (int i = 0; i < 3; i++)
		r->spun[i] = atomic_load(&spins[i]) - before[i];
	return NULL;
}

START_TEST(t_libc_sleep_beside_spinners)
{
	/* One worker: the sleeper blocks it in the kernel for a second. */
	start("1", NULL);
	weft_t sp[3], z;
	start_spinners(sp, 3);
	struct sleep_result r;
	ck_assert_int_eq(weft_create(&z, NULL, libc_sleeper, &r), 0);
	ck_assert_int_eq(weft_join(z, NULL), 0);
	stop_spinners(sp, 3);
	ck_assert_uint_eq(r.left, 0);
	ck_assert_msg(r.took >= 1000000000ull, "sleep(1) returned after %.1f ms", r.took / 1e6);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(r.spun[i] > 0, "spinner %d did not run while the worker slept", i);
	ck_assert_uint_ge(handoffs(), 1);
}
END_TEST

/* ------------------------------------------------------------------------ */

static atomic_long eintr, calls;

static void *timed_waiter(void *arg)
{
	(void)arg;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	uint64_t end = now_ns() + 1500000000ull;
	while (now_ns() < end) {
		long k = atomic_fetch_add(&calls, 1);
		int r;
		struct timespec ts = { 0, 1500000 };
		struct epoll_event ev;
		switch (k % 4) {
		case 0: r = usleep(1500); break;
		case 1: r = nanosleep(&ts, NULL); break;
		case 2: r = poll(NULL, 0, 2); break;
		default: r = epoll_wait(ep, &ev, 1, 2); break;
		}
		if (r < 0 && errno == EINTR)
			atomic_fetch_add(&eintr, 1);
	}
	close(ep);
	return NULL;
}

START_TEST(t_no_eintr_from_the_tick)
{
	/* Two workers, two spinners: ticks fly on both while a thread waits
	 * in four kinds of timed system call, thousands of times. */
	start("2", "1000");
	weft_t sp[2], w;
	start_spinners(sp, 2);
	ck_assert_int_eq(weft_create(&w, NULL, timed_waiter, NULL), 0);
	ck_assert_int_eq(weft_join(w, NULL), 0);
	stop_spinners(sp, 2);
	weft_stats_t s;
	ck_assert_int_eq(weft_stats_get(-1, &s), 0);
	ck_assert_uint_gt(s.ticks, 0);
	ck_assert_int_gt(atomic_load(&calls), 100);
	ck_assert_int_eq(atomic_load(&eintr), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */

static int pfd[2];
static char got[16];
static ssize_t got_n;

static void *pipe_reader(void *arg)
{
	(void)arg;
	got_n = read(pfd[0], got, sizeof got);   /* blocks the worker */
	return NULL;
}

static void *pipe_writer(void *arg)
{
	(void)arg;
	weft_sleep_ns(20000000);
	return (void *)(intptr_t)write(pfd[1], "hello", 5);
}

START_TEST(t_blocked_reader_and_its_writer)
{
	/* One worker.  The reader blocks it in read(); the writer, which
	 * alone can end that read, is queued behind it. */
	start("1", NULL);
	ck_assert_int_eq(pipe(pfd), 0);
	weft_t r, w;
	ck_assert_int_eq(weft_create(&r, NULL, pipe_reader, NULL), 0);
	ck_assert_int_eq(weft_create(&w, NULL, pipe_writer, NULL), 0);
	void *wrote;
	ck_assert_int_eq(weft_join(w, &wrote), 0);
	ck_assert_int_eq(weft_join(r, NULL), 0);
	ck_assert_int_eq((intptr_t)wrote, 5);
	ck_assert_int_eq(got_n, 5);
	ck_assert_int_eq(memcmp(got, "hello", 5), 0);
	ck_assert_uint_ge(handoffs(), 1);
}
END_TEST

/* ------------------------------------------------------------------------ */

static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static atomic_int pm_done;

static void *pm_holder(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pm);
	weft_sleep_ns(30000000);   /* parks holding it: the other thread runs */
	pthread_mutex_unlock(&pm);
	atomic_fetch_add(&pm_done, 1);
	return NULL;
}

static void *pm_waiter(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pm);   /* blocks the worker on a futex */
	pthread_mutex_unlock(&pm);
	atomic_fetch_add(&pm_done, 1);
	return NULL;
}

START_TEST(t_pthread_mutex_across_green_threads)
{
	start("1", NULL);
	weft_t a, b;
	ck_assert_int_eq(weft_create(&a, NULL, pm_holder, NULL), 0);
	ck_assert_int_eq(weft_create(&b, NULL, pm_waiter, NULL), 0);
	ck_assert_int_eq(weft_join(a, NULL), 0);
	ck_assert_int_eq(weft_join(b, NULL), 0);
	ck_assert_int_eq(atomic_load(&pm_done), 2);
}
END_TEST

/* ------------------------------------------------------------------------ */

static int bfd[2];

static void *announced_reader(void *arg)
{
	(void)arg;
	char c;
	int b = weft_blocking_begin();
	ssize_t n = read(bfd[0], &c, 1);
	int e = weft_blocking_end();
	return (void *)(intptr_t)(b || e ? -100 : n);
}

static void *late_writer(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 200000000 };
	nanosleep(&ts, NULL);
	return (void *)(intptr_t)write(bfd[1], "x", 1);
}

START_TEST(t_blocking_section)
{
	/* One worker; the data comes from a plain pthread 200 ms later.
	 * Meanwhile a spinner must run. */
	start("1", NULL);
	ck_assert_int_eq(pipe(bfd), 0);
	weft_t sp[1], r;
	start_spinners(sp, 1);
	ck_assert_int_eq(weft_create(&r, NULL, announced_reader, NULL), 0);
	uint64_t before = atomic_load(&spins[0]);
	pthread_t pw;
	ck_assert_int_eq(pthread_create(&pw, NULL, late_writer, NULL), 0);
	void *n;
	ck_assert_int_eq(weft_join(r, &n), 0);
	ck_assert_int_eq((intptr_t)n, 1);
	ck_assert_uint_gt(atomic_load(&spins[0]), before);
	stop_spinners(sp, 1);
	pthread_join(pw, NULL);
	ck_assert_uint_ge(handoffs(), 1);
	/* Outside a green thread they do nothing. */
	ck_assert_int_eq(weft_blocking_begin(), 0);
	ck_assert_int_eq(weft_blocking_end(), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */

enum { PAIRS = 100, MSGS = 50 };
static atomic_long echo_bad, echo_ok;

static void *echo_server(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[64];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n <= 0 || write(fd, buf, (size_t)n) != n)
			break;
	}
	close(fd);
	return NULL;
}

static void *echo_client(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[32], back[32];
	for (int i = 0; i < MSGS; i++) {
		int len = snprintf(buf, sizeof buf, "%d:%d", fd, i);
		if (write(fd, buf, (size_t)len) != len) {
			atomic_fetch_add(&echo_bad, 1);
			break;
		}
		int have = 0;
		while (have < len) {
			ssize_t n = read(fd, back + have, (size_t)(len - have));
			if (n <= 0)
				break;
			have += (int)n;
		}
		if (have == len && memcmp(buf, back, (size_t)len) == 0)
			atomic_fetch_add(&echo_ok, 1);
		else
			atomic_fetch_add(&echo_bad, 1);
	}
	close(fd);
	return NULL;
}

START_TEST(t_echo_with_plain_blocking_calls)
{
	/* The deadlock of a thread-per-connection echo server on 2 workers,
	 * over socketpairs: every read blocks a worker. */
	start("2", NULL);
	for (int round = 0; round < 5; round++) {
		weft_t t[2 * PAIRS];
		for (int i = 0; i < PAIRS; i++) {
			int sv[2];
			ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
			ck_assert_int_eq(weft_create(&t[2 * i], NULL, echo_server,
			                             (void *)(intptr_t)sv[0]), 0);
			ck_assert_int_eq(weft_create(&t[2 * i + 1], NULL, echo_client,
			                             (void *)(intptr_t)sv[1]), 0);
		}
		for (int i = 0; i < 2 * PAIRS; i++)
			ck_assert_int_eq(weft_join(t[i], NULL), 0);
	}
	ck_assert_int_eq(atomic_load(&echo_bad), 0);
	ck_assert_int_eq(atomic_load(&echo_ok), 5 * PAIRS * MSGS);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("handoff");
	TCase *tc = tcase_create("handoff");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_libc_sleep_beside_spinners);
	tcase_add_test(tc, t_no_eintr_from_the_tick);
	tcase_add_test(tc, t_blocked_reader_and_its_writer);
	tcase_add_test(tc, t_pthread_mutex_across_green_threads);
	tcase_add_test(tc, t_blocking_section);
	tcase_add_test(tc, t_echo_with_plain_blocking_calls);
	suite_add_tcase(s, tc);
	return weft_check_run(s);
}
