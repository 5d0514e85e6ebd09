/*
 * test_threads.c — the Threads section of the API (weft.h): the
 * life of a green thread.
 *
 * Covered: create/join with return values from `return` and weft_exit,
 * join blocking, join from another thread, join order; weft_self/weft_equal
 * and WEFT_NULL; create from a kernel thread that is not a worker; names
 * (set, get, from attributes, truncation at 31 bytes, readable until
 * joined); detached threads (by attribute, by weft_detach while running and
 * after finishing) becoming stale; a stack overflow reported as one line
 * before SIGABRT (on worker 0 and on another worker, and when it is the
 * preemption tick's signal frame that does not fit).
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
/* Create, join, exit                                                       */
/* ------------------------------------------------------------------------ */

static __attribute__((noinline)) int exit_deep(int depth, void *v)
{
	if (depth == 0)
		weft_exit(v);
	if (depth > 0)
		return exit_deep(depth - 1, v) + 1;
	return 0;
}

static void *by_return(void *a)
{
	weft_yield();
	return (void *)((uintptr_t)a * 7 + 1);
}

static void *by_exit(void *a)
{
	weft_yield();
	exit_deep(5, (void *)((uintptr_t)a * 7 + 1));
	ck_abort_msg("weft_exit returned");
	return NULL;
}

START_TEST(t_join_values)
{
	set_workers("2");
	enum { N = 200 };
	weft_t t[N];
	for (uintptr_t i = 0; i < N; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, i % 2 ? by_exit : by_return,
		                             (void *)i), 0);
	/* Join in reverse order: some are done, some not. */
	for (int i = N - 1; i >= 0; i--) {
		void *r = NULL;
		ck_assert_int_eq(weft_join(t[i], &r), 0);
		ck_assert_ptr_eq(r, (void *)((uintptr_t)i * 7 + 1));
	}
	/* ret may be NULL. */
	weft_t u;
	ck_assert_int_eq(weft_create(&u, NULL, by_exit, (void *)3), 0);
	ck_assert_int_eq(weft_join(u, NULL), 0);
	/* Extreme values pass through untouched. */
	static const uintptr_t vals[] = { 0, UINTPTR_MAX, (uintptr_t)1 << 63 };
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(weft_create(&u, NULL, ret_arg, (void *)vals[i]), 0);
		void *r = (void *)0x1;
		ck_assert_int_eq(weft_join(u, &r), 0);
		ck_assert_ptr_eq(r, (void *)vals[i]);
	}
}
END_TEST

static atomic_int jw_done;
static void *slow_child(void *a)
{
	weft_sleep_ns(30 * MS);
	atomic_store(&jw_done, 1);
	return a;
}

START_TEST(t_join_blocks_until_finished)
{
	set_workers("2");
	weft_t t;
	uint64_t t0 = now_ns();
	ck_assert_int_eq(weft_create(&t, NULL, slow_child, (void *)99), 0);
	void *r;
	ck_assert_int_eq(weft_join(t, &r), 0);
	ck_assert_int_eq(atomic_load(&jw_done), 1);
	ck_assert_ptr_eq(r, (void *)99);
	ck_assert_uint_ge(now_ns() - t0, 30 * MS);
}
END_TEST

static void *joins_other(void *a)
{
	weft_t target = (weft_t)a;
	void *r;
	ck_assert_int_eq(weft_join(target, &r), 0);
	return (void *)((uintptr_t)r + 1);
}

START_TEST(t_join_from_other_thread)
{
	set_workers("2");
	weft_t a, b;
	ck_assert_int_eq(weft_create(&a, NULL, slow_child, (void *)40), 0);
	ck_assert_int_eq(weft_create(&b, NULL, joins_other, (void *)a), 0);
	void *r;
	ck_assert_int_eq(weft_join(b, &r), 0);
	ck_assert_ptr_eq(r, (void *)41);
	/* a was joined by b: stale now. */
	ck_assert_int_eq(weft_join(a, NULL), ESRCH);
}
END_TEST

static weft_t se_handles[8];
static void *se_child(void *a)
{
	int i = (int)(intptr_t)a;
	se_handles[i] = weft_self();
	weft_sleep_ns(5 * MS);  /* all alive at once */
	ck_assert(weft_equal(se_handles[i], weft_self()));
	return NULL;
}

START_TEST(t_self_equal)
{
	set_workers("2");
	weft_t t[8];
	weft_t me = weft_self();
	ck_assert(me != WEFT_NULL);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(weft_create(&t[i], NULL, se_child, (void *)(intptr_t)i), 0);
		ck_assert(t[i] != WEFT_NULL);
	}
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	for (int i = 0; i < 8; i++) {
		ck_assert(weft_equal(se_handles[i], t[i]));
		ck_assert(weft_equal(t[i], t[i]));
		ck_assert(!weft_equal(t[i], me));
		ck_assert(!weft_equal(t[i], WEFT_NULL));
		for (int j = 0; j < 8; j++)
			if (j != i)
				ck_assert(!weft_equal(t[i], t[j]));
	}
	ck_assert(weft_equal(me, weft_self()));
	ck_assert(!weft_equal(me, WEFT_NULL));
	ck_assert_uint_eq(WEFT_NULL, 0);
	ck_assert_uint_eq(sizeof(weft_t), sizeof(void *));
	ck_assert((weft_t)-1 > 0);  /* unsigned */
}
END_TEST

/* A kernel thread that is not a worker may create threads (weft.h: "Who
 * may call: any code"); it is not a green thread itself. */
struct foreign { weft_t t; int create_rc, worker_self; weft_t self; };
static void *foreign_thread(void *a)
{
	struct foreign *f = a;
	f->worker_self = weft_worker_self();
	f->self = weft_self();
	f->create_rc = weft_create(&f->t, NULL, ret_arg, (void *)1234);
	return NULL;
}

START_TEST(t_create_from_foreign_kthread)
{
	set_workers("2");
	ck_assert_int_eq(weft_init(), 0);
	pthread_t p;
	struct foreign f = { 0, -1, 99, 99 };
	ck_assert_int_eq(pthread_create(&p, NULL, foreign_thread, &f), 0);
	ck_assert_int_eq(pthread_join(p, NULL), 0);
	ck_assert_int_eq(f.worker_self, -1);
	ck_assert(f.self == WEFT_NULL);
	ck_assert_int_eq(f.create_rc, 0);
	void *r;
	ck_assert_int_eq(weft_join(f.t, &r), 0);
	ck_assert_ptr_eq(r, (void *)1234);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Names                                                                    */
/* ------------------------------------------------------------------------ */

static atomic_int nm_go, nm_done;
static char nm_seen[64];
static void *nm_child(void *a)
{
	(void)a;
	while (!atomic_load(&nm_go))
		weft_sleep_ns(200000);
	ck_assert_int_eq(weft_getname(weft_self(), nm_seen, sizeof nm_seen), 0);
	atomic_store(&nm_done, 1);
	return NULL;
}


START_TEST(t_names)
{
	set_workers("2");
	char buf[64];
	weft_t me = weft_self();
	ck_assert_int_eq(weft_setname(me, "the-boss"), 0);
	ck_assert_int_eq(weft_getname(me, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "the-boss");

	/* Naming another (running, blocked) thread; it sees its new name. */
	weft_t t;
	ck_assert_int_eq(weft_create(&t, NULL, nm_child, NULL), 0);
	ck_assert_int_eq(weft_setname(t, "worker-bee"), 0);
	ck_assert_int_eq(weft_getname(t, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "worker-bee");
	atomic_store(&nm_go, 1);
	ck_assert(wait_atomic(&nm_done, 1, 5000));
	ck_assert_str_eq(nm_seen, "worker-bee");
	/* Done (or finishing) but not joined: the handle is still valid. */
	ck_assert_int_eq(weft_getname(t, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "worker-bee");
	ck_assert_int_eq(weft_setname(t, "retired"), 0);
	ck_assert_int_eq(weft_getname(t, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "retired");
	ck_assert_int_eq(weft_join(t, NULL), 0);

	/* Truncation: at most 31 bytes are kept. */
	ck_assert_int_eq(weft_setname(me, long_name), 0);
	memset(buf, 'X', sizeof buf);
	ck_assert_int_eq(weft_getname(me, buf, sizeof buf), 0);
	ck_assert_uint_eq(strlen(buf), 31);
	ck_assert_int_eq(memcmp(buf, long_name, 31), 0);
	/* 32 bytes of buffer are exactly enough for the longest name. */
	char b32[32];
	ck_assert_int_eq(weft_getname(me, b32, sizeof b32), 0);
	ck_assert_int_eq(memcmp(b32, long_name, 31), 0);
	ck_assert_int_eq(b32[31], '\0');

	/* Exactly 31 bytes are kept whole; the empty name is a name. */
	char n31[32];
	memcpy(n31, long_name, 31);
	n31[31] = '\0';
	ck_assert_int_eq(weft_setname(me, n31), 0);
	ck_assert_int_eq(weft_getname(me, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, n31);
	ck_assert_int_eq(weft_setname(me, ""), 0);
	ck_assert_int_eq(weft_getname(me, buf, 1), 0);
	ck_assert_str_eq(buf, "");
	/* The caller's buffer is only written up to the terminator. */
	ck_assert_int_eq(weft_setname(me, "ab"), 0);
	memset(buf, 'Z', sizeof buf);
	ck_assert_int_eq(weft_getname(me, buf, 3), 0);
	ck_assert_str_eq(buf, "ab");
	ck_assert_int_eq(buf[3], 'Z');
}
END_TEST

static void *attrname_child(void *a)
{
	char buf[64];
	ck_assert_int_eq(weft_getname(weft_self(), buf, sizeof buf), 0);
	ck_assert_str_eq(buf, (const char *)a);
	return NULL;
}

START_TEST(t_name_from_attr)
{
	set_workers("2");
	weft_attr_t at;
	ck_assert_int_eq(weft_attr_init(&at), 0);
	ck_assert_int_eq(weft_attr_setname(&at, "from-attr"), 0);
	weft_t t1, t2;
	ck_assert_int_eq(weft_create(&t1, &at, attrname_child, "from-attr"), 0);
	/* The name was copied: changing the attribute later does not rename
	 * the first thread. */
	ck_assert_int_eq(weft_attr_setname(&at, long_name), 0);
	char trunc[32];
	memcpy(trunc, long_name, 31);
	trunc[31] = '\0';
	ck_assert_int_eq(weft_create(&t2, &at, attrname_child, trunc), 0);
	char buf[64];
	ck_assert_int_eq(weft_getname(t1, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "from-attr");
	ck_assert_int_eq(weft_join(t1, NULL), 0);
	ck_assert_int_eq(weft_join(t2, NULL), 0);
	ck_assert_int_eq(weft_attr_destroy(&at), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Detached threads                                                         */
/* ------------------------------------------------------------------------ */

static atomic_int dt_gate, dt_ran;
static void *dt_child(void *a)
{
	(void)a;
	while (!atomic_load(&dt_gate))
		weft_sleep_ns(100000);
	atomic_fetch_add(&dt_ran, 1);
	return (void *)1;
}

START_TEST(t_detached_by_attr)
{
	set_workers("2");
	weft_attr_t a;
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_setdetachstate(&a, WEFT_CREATE_DETACHED), 0);
	weft_t t[16];
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(weft_create(&t[i], &a, dt_child, NULL), 0);
	/* Still running: valid but not joinable. */
	char buf[32];
	for (int i = 0; i < 16; i++) {
		ck_assert_int_eq(weft_getname(t[i], buf, sizeof buf), 0);
		ck_assert_int_eq(weft_join(t[i], NULL), EINVAL);
	}
	atomic_store(&dt_gate, 1);
	ck_assert(wait_atomic(&dt_ran, 16, 5000));
	/* Reclaimed after finishing: stale. */
	for (int i = 0; i < 16; i++) {
		ck_assert(wait_stale(t[i], 5000));
		ck_assert_int_eq(weft_join(t[i], NULL), ESRCH);
		ck_assert_int_eq(weft_detach(t[i]), ESRCH);
		ck_assert_int_eq(weft_setname(t[i], "x"), ESRCH);
	}
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
}
END_TEST

static atomic_int fin_flag;
static void *finish_fast(void *a)
{
	atomic_store(&fin_flag, 1);
	return a;
}

START_TEST(t_detach_running_and_finished)
{
	set_workers("2");
	weft_t t;
	/* Detach while it runs (blocked on the gate). */
	ck_assert_int_eq(weft_create(&t, NULL, dt_child, NULL), 0);
	ck_assert_int_eq(weft_detach(t), 0);
	ck_assert_int_eq(weft_join(t, NULL), EINVAL);
	atomic_store(&dt_gate, 1);
	ck_assert(wait_atomic(&dt_ran, 1, 5000));
	ck_assert(wait_stale(t, 5000));
	ck_assert_int_eq(weft_join(t, NULL), ESRCH);

	/* Detach after it finished (not joined): reclaimed, stale. */
	weft_t u;
	ck_assert_int_eq(weft_create(&u, NULL, finish_fast, NULL), 0);
	ck_assert(wait_atomic(&fin_flag, 1, 5000));
	weft_sleep_ns(5 * MS);
	ck_assert_int_eq(weft_detach(u), 0);
	ck_assert(wait_stale(u, 5000));
	ck_assert_int_eq(weft_join(u, NULL), ESRCH);
	ck_assert_int_eq(weft_detach(u), ESRCH);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Stack overflow                                                           */
/* ------------------------------------------------------------------------ */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winfinite-recursion"
static __attribute__((noinline)) int recurse_forever(int n)
{
	volatile char frame[256];
	frame[0] = (char)n;
	__asm__ __volatile__("" : : "r"(frame) : "memory");
	return recurse_forever(n + 1) + frame[0];
}
#pragma GCC diagnostic pop

static atomic_int ov_claimed;

static void *overflower(void *a)
{
	int want_other_worker = (int)(intptr_t)a;
	if (want_other_worker) {
		/* Get onto a worker other than 0 (the process's first thread),
		 * so the report comes from a worker's own alternate stack.
		 * Several candidates sleep for varied times on worker 0; when
		 * their timers fire they are queued there and the idle worker
		 * steals them.  The first one to land elsewhere overflows. */
		unsigned r = (unsigned)(uintptr_t)&a;
		uint64_t end = now_ns() + 10000 * MS;
		for (;;) {
			if (weft_worker_self() != 0) {
				int z = 0;
				if (atomic_compare_exchange_strong(&ov_claimed, &z, 1))
					break;
			}
			if (now_ns() > end)
				_exit(42);
			r = r * 1103515245u + 12345u;
			weft_sleep_ns(50000 + (r >> 16) % 250000);
		}
	}
	recurse_forever(0);
	return NULL;
}

struct overflow_setup {
	const char *workers, *env_stack;
	size_t attr_stack;
	int other_worker;
};

/* In the child: create the thread named "deep-diver" that overflows. */
static void overflow_child(void *arg)
{
	const struct overflow_setup *o = arg;
	setenv("WEFT_WORKERS", o->workers, 1);
	if (o->env_stack)
		setenv("WEFT_STACK_SIZE", o->env_stack, 1);
	else
		unsetenv("WEFT_STACK_SIZE");
	weft_attr_t a;
	if (weft_attr_init(&a) || weft_attr_setname(&a, "deep-diver"))
		_exit(40);
	if (o->attr_stack && weft_attr_setstacksize(&a, o->attr_stack))
		_exit(41);
	weft_t t[4];
	for (int i = 0; i < (o->other_worker ? 4 : 1); i++)
		if (weft_create(&t[i], &a, overflower, (void *)(intptr_t)o->other_worker))
			_exit(43);
	weft_join(t[0], NULL);
	_exit(44);  /* the overflow must have ended the process */
}

/* Fork a child that overflows a thread named "deep-diver"; return its
 * stderr and wait status. */
static void run_overflow(const char *workers, const char *env_stack, size_t attr_stack,
                         int other_worker, char *err, size_t errlen, int *status)
{
	struct overflow_setup o = { workers, env_stack, attr_stack, other_worker };
	*status = weft_test_run_captured(overflow_child, &o, err, errlen);
}

static void check_overflow_report(const char *err, int st, const char *kib)
{
	ck_assert_msg(!WIFEXITED(st), "child exited with status %d instead of dying; stderr: %s",
	              WEXITSTATUS(st), err);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
	              "child killed by signal %d, expected SIGABRT; stderr: %s",
	              WIFSIGNALED(st) ? WTERMSIG(st) : 0, err);
	char pat[128];
	snprintf(pat, sizeof pat, "^weft: thread [0-9]+ \"deep-diver\" overflowed its %s KiB stack$",
	         kib);
	regex_t re;
	ck_assert_int_eq(regcomp(&re, pat, REG_EXTENDED | REG_NOSUB), 0);
	/* Exactly one line matches. */
	int matches = 0;
	char copy[4096];
	snprintf(copy, sizeof copy, "%s", err);
	for (char *save, *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		matches += regexec(&re, line, 0, NULL, 0) == 0;
	regfree(&re);
	ck_assert_msg(matches == 1, "%d matching lines in stderr: \"%s\"", matches, err);
}

START_TEST(t_stack_overflow_reported)
{
	char err[4096];
	int st;
	run_overflow("1", NULL, 64 * 1024, 0, err, sizeof err, &st);
	check_overflow_report(err, st, "64");
}
END_TEST

START_TEST(t_stack_overflow_reported_default_size)
{
	char err[4096];
	int st;
	run_overflow("2", "128K", 0, 0, err, sizeof err, &st);
	check_overflow_report(err, st, "128");
}
END_TEST

START_TEST(t_stack_overflow_reported_on_other_worker)
{
	char err[4096];
	int st;
	run_overflow("2", NULL, 64 * 1024, 1, err, sizeof err, &st);
	ck_assert_msg(!(WIFEXITED(st) && WEXITSTATUS(st) == 42),
	              "the thread never ran on a worker other than 0");
	check_overflow_report(err, st, "64");
}
END_TEST

/* Overflow by a signal frame: a thread with a few hundred bytes of stack
 * left spins; the preemption tick's signal frame (several KiB with AVX
 * state) cannot be written there, and the kernel kills the delivery with a
 * SIGSEGV of its own (si_code SI_KERNEL, no address).  The report must name
 * the thread all the same. */

#define SF_STACK (64 * 1024)

static volatile int sf_stop;   /* never set: the spin ends with the process */

/* Recurse until fewer than `left` bytes remain above the guard of a stack
 * whose top is `hi`, then spin: the loop's frame is all that is used. */
static __attribute__((noinline)) void sf_descend(uintptr_t lo, uintptr_t left)
{
	volatile char frame[64];
	frame[0] = 1;
	__asm__ __volatile__("" : : "r"(frame) : "memory");
	if ((uintptr_t)frame - lo > left) {
		sf_descend(lo, left);
		return;
	}
	while (!sf_stop)
		;
}

static void *sf_thread(void *a)
{
	(void)a;
	/* The stack is [hi - SF_STACK, hi), hi page-aligned, and this frame is
	 * near hi. */
	uintptr_t here = (uintptr_t)&a, page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t hi = (here + page - 1) & ~(page - 1);
	sf_descend(hi - SF_STACK, 400);
	return NULL;
}

static void *sf_competitor(void *a)
{
	(void)a;
	for (;;)
		weft_yield();   /* a ready competitor keeps the tick armed */
	return NULL;
}

static void sf_child(void *arg)
{
	(void)arg;
	setenv("WEFT_WORKERS", "1", 1);
	setenv("WEFT_QUANTUM_US", "1000", 1);
	weft_attr_t a;
	weft_t t, c;
	if (weft_attr_init(&a) || weft_attr_setname(&a, "deep-diver") ||
	    weft_attr_setstacksize(&a, SF_STACK))
		_exit(40);
	if (weft_create(&c, NULL, sf_competitor, NULL) || weft_create(&t, &a, sf_thread, NULL))
		_exit(43);
	weft_join(t, NULL);
	_exit(44);  /* the overflow must have ended the process */
}

START_TEST(t_stack_overflow_by_signal_frame)
{
	char err[4096];
	int st = weft_test_run_captured(sf_child, NULL, err, sizeof err);
	check_overflow_report(err, st, "64");
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *threads_suite(void)
{
	Suite *s = suite_create("threads");
	TCase *tc;

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_join_values);
	tcase_add_test(tc, t_join_blocks_until_finished);
	tcase_add_test(tc, t_join_from_other_thread);
	tcase_add_test(tc, t_self_equal);
	tcase_add_test(tc, t_create_from_foreign_kthread);
	tcase_add_test(tc, t_names);
	tcase_add_test(tc, t_name_from_attr);
	tcase_add_test(tc, t_detached_by_attr);
	tcase_add_test(tc, t_detach_running_and_finished);
	tcase_add_test(tc, t_stack_overflow_reported);
	tcase_add_test(tc, t_stack_overflow_reported_default_size);
	tcase_add_test(tc, t_stack_overflow_reported_on_other_worker);
	tcase_add_test(tc, t_stack_overflow_by_signal_frame);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(threads_suite());
}
