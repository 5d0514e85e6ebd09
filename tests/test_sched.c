/*
 * test_sched.c — the Runtime, Threads, Attributes and Thread-specific data
 * sections of the API (API.md, weft.h), as a program sees them.
 *
 * Covered: init (idempotent, lazy, caller becomes "main" on worker 0),
 * weft_workers honouring WEFT_WORKERS and its default, weft_worker_self in
 * range; create/join with return values from `return` and weft_exit, join
 * blocking, join from another thread, join order; weft_self/weft_equal and
 * WEFT_NULL; create from a kernel thread that is not a worker; names (set,
 * get, from attributes, truncation at 31 bytes, readable until joined);
 * attributes (defaults, round trips, WEFT_STACK_SIZE as default, stack size
 * honoured, a caller-owned stack really used); detached threads (by
 * attribute, by weft_detach while running and after finishing) becoming
 * stale; keys (per-thread values, destructors with the right value at
 * return and weft_exit, delete, recreate); errno per thread, kept across
 * switches and across a migration between workers (with keys), and never
 * changed by weft calls; yield round-robin on one worker; sleep (at least
 * the time, in deadline order also when several expired together, without
 * blocking the worker); an idle process using no CPU; weft_exit from main
 * waiting for every thread and exiting 0; a stack overflow reported as one
 * line before SIGABRT (on worker 0 and on another worker); preemption
 * control nesting.
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

#include "weft_check.h"
#include "child_capture.h"


/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

#define MS 1000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void set_workers(const char *n)
{
	ck_assert_int_eq(setenv("WEFT_WORKERS", n, 1), 0);
	unsetenv("WEFT_STACK_SIZE");
}

/* errno through calls the compiler cannot see into: __errno_location is
 * declared const, so gcc may keep &errno of the worker a thread started on
 * across a switch (notes/glibc-clone-workers.md §4). */
static __attribute__((noinline, noipa)) int get_errno(void) { return errno; }
static __attribute__((noinline, noipa)) void set_errno(int v) { errno = v; }

/* Wait, as a green thread, until *v >= target or `ms` milliseconds pass. */
static int wait_atomic(atomic_int *v, int target, unsigned ms)
{
	uint64_t end = now_ns() + ms * MS;
	while (atomic_load(v) < target) {
		if (now_ns() > end)
			return 0;
		weft_sleep_ns(100000);
	}
	return 1;
}

/* Wait until every call on the handle says it is stale. */
static int wait_stale(weft_t t, unsigned ms)
{
	char buf[32];
	uint64_t end = now_ns() + ms * MS;
	while (weft_getname(t, buf, sizeof buf) != ESRCH) {
		if (now_ns() > end)
			return 0;
		weft_sleep_ns(100000);
	}
	return 1;
}

static void *ret_arg(void *a) { return a; }

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
static atomic_int ws_bad;

static void *ws_child(void *a)
{
	int n = (int)(intptr_t)a;
	for (int i = 0; i < 20; i++) {
		int w = weft_worker_self();
		if (w < 0 || w >= n)
			atomic_fetch_add(&ws_bad, 1);
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
	int w = weft_worker_self();
	ck_assert(w >= 0 && w < n);
}
END_TEST

START_TEST(t_workers_default)
{
	unsetenv("WEFT_WORKERS");
	cpu_set_t set;
	ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
	/* DESIGN §7: default is the number of CPUs in the affinity mask. */
	ck_assert_int_eq(weft_workers(), CPU_COUNT(&set));
}
END_TEST

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

static const char long_name[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEF"; /* 42 */

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
/* Attributes                                                               */
/* ------------------------------------------------------------------------ */

START_TEST(t_attr_defaults_roundtrip)
{
	set_workers("2");
	weft_attr_t a;
	int st = -1;
	size_t sz = 0;
	void *addr = (void *)1;
	char name[32];
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_getdetachstate(&a, &st), 0);
	ck_assert_int_eq(st, WEFT_CREATE_JOINABLE);
	ck_assert_int_eq(weft_attr_getstacksize(&a, &sz), 0);
	ck_assert_uint_eq(sz, 64 * 1024);  /* WEFT_STACK_SIZE default */
	ck_assert_int_eq(weft_attr_getstack(&a, &addr, &sz), 0);
	ck_assert_ptr_null(addr);
	ck_assert_int_eq(weft_attr_getname(&a, name, sizeof name), 0);
	ck_assert_str_eq(name, "");

	ck_assert_int_eq(weft_attr_setdetachstate(&a, WEFT_CREATE_DETACHED), 0);
	ck_assert_int_eq(weft_attr_getdetachstate(&a, &st), 0);
	ck_assert_int_eq(st, WEFT_CREATE_DETACHED);
	ck_assert_int_eq(weft_attr_setdetachstate(&a, WEFT_CREATE_JOINABLE), 0);
	ck_assert_int_eq(weft_attr_getdetachstate(&a, &st), 0);
	ck_assert_int_eq(st, WEFT_CREATE_JOINABLE);

	ck_assert_int_eq(weft_attr_setstacksize(&a, WEFT_STACK_MIN), 0);
	ck_assert_int_eq(weft_attr_getstacksize(&a, &sz), 0);
	ck_assert_uint_eq(sz, WEFT_STACK_MIN);
	ck_assert_int_eq(weft_attr_setstacksize(&a, 1 << 20), 0);
	ck_assert_int_eq(weft_attr_getstacksize(&a, &sz), 0);
	ck_assert_uint_eq(sz, 1 << 20);
	ck_assert_int_eq(weft_attr_setstacksize(&a, 100000), 0);
	ck_assert_int_eq(weft_attr_getstacksize(&a, &sz), 0);
	ck_assert_uint_eq(sz, 100000);

	static char mem[32768];
	ck_assert_int_eq(weft_attr_setstack(&a, mem, sizeof mem), 0);
	addr = NULL;
	sz = 0;
	ck_assert_int_eq(weft_attr_getstack(&a, &addr, &sz), 0);
	ck_assert_ptr_eq(addr, mem);
	ck_assert_uint_eq(sz, sizeof mem);

	ck_assert_int_eq(weft_attr_setname(&a, "n1"), 0);
	ck_assert_int_eq(weft_attr_getname(&a, name, sizeof name), 0);
	ck_assert_str_eq(name, "n1");
	ck_assert_int_eq(weft_attr_setname(&a, long_name), 0);
	ck_assert_int_eq(weft_attr_getname(&a, name, sizeof name), 0);
	ck_assert_uint_eq(strlen(name), 31);
	ck_assert_int_eq(memcmp(name, long_name, 31), 0);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);

	/* Re-initialized after destroy: defaults again. */
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_getname(&a, name, sizeof name), 0);
	ck_assert_str_eq(name, "");
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
}
END_TEST

START_TEST(t_attr_default_stack_from_env)
{
	set_workers("2");
	ck_assert_int_eq(setenv("WEFT_STACK_SIZE", "256K", 1), 0);
	weft_attr_t a;
	size_t sz = 0;
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_getstacksize(&a, &sz), 0);
	ck_assert_uint_eq(sz, 256 * 1024);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
}
END_TEST

/* Touch `bytes` of stack below the caller, a page at a time. */
static __attribute__((noinline)) uintptr_t use_stack(size_t bytes)
{
	if (bytes < 2048) {
		volatile char pad[16];
		pad[0] = 1;
		return (uintptr_t)&pad[0];
	}
	volatile char chunk[2048];
	for (size_t i = 0; i < sizeof chunk; i += 512)
		chunk[i] = (char)i;
	uintptr_t deepest = use_stack(bytes - sizeof chunk);
	chunk[1] = chunk[0];
	return deepest;
}

static void *stack_user(void *a)
{
	size_t bytes = (size_t)a;
	uintptr_t top = (uintptr_t)__builtin_frame_address(0);
	uintptr_t deepest = use_stack(bytes);
	return (void *)(top - deepest);
}

START_TEST(t_attr_stacksize_honoured)
{
	set_workers("2");
	weft_attr_t a;
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_setstacksize(&a, 1 << 20), 0);
	weft_t t;
	void *r;
	/* 900 KiB of a 1 MiB stack. */
	ck_assert_int_eq(weft_create(&t, &a, stack_user, (void *)(size_t)(900 * 1024)), 0);
	ck_assert_int_eq(weft_join(t, &r), 0);
	ck_assert_uint_ge((uintptr_t)r, 890 * 1024);
	/* The minimum stack holds a few KiB of frames plus printf. */
	ck_assert_int_eq(weft_attr_setstacksize(&a, WEFT_STACK_MIN), 0);
	ck_assert_int_eq(weft_create(&t, &a, stack_user, (void *)(size_t)(6 * 1024)), 0);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
}
END_TEST

START_TEST(t_env_stack_size_honoured)
{
	set_workers("2");
	ck_assert_int_eq(setenv("WEFT_STACK_SIZE", "2M", 1), 0);
	weft_t t;
	void *r;
	ck_assert_int_eq(weft_create(&t, NULL, stack_user, (void *)(size_t)(1800 * 1024)), 0);
	ck_assert_int_eq(weft_join(t, &r), 0);
	ck_assert_uint_ge((uintptr_t)r, 1790 * 1024);
}
END_TEST

struct us_probe { char *lo, *hi; uintptr_t local; uintptr_t deepest; };
static void *user_stack_child(void *a)
{
	struct us_probe *p = a;
	volatile int here = 1;
	p->local = (uintptr_t)&here;
	p->deepest = use_stack(40 * 1024);
	weft_yield();
	weft_sleep_ns(1000000);
	char buf[64];
	snprintf(buf, sizeof buf, "%d %f", here, 1.5);
	ck_assert_str_eq(buf, "1 1.500000");
	return NULL;
}

START_TEST(t_attr_user_stack)
{
	set_workers("2");
	size_t size = 128 * 1024;
	char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(mem, MAP_FAILED);
	weft_attr_t a;
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_setstack(&a, mem, size), 0);
	for (int round = 0; round < 3; round++) {
		/* The same memory serves one thread after another. */
		struct us_probe p = { mem, mem + size, 0, 0 };
		weft_t t;
		ck_assert_int_eq(weft_create(&t, &a, user_stack_child, &p), 0);
		ck_assert_int_eq(weft_join(t, NULL), 0);
		ck_assert_msg(p.local >= (uintptr_t)mem && p.local < (uintptr_t)mem + size,
		              "local at %#lx is not inside the user stack [%p, %p)",
		              (unsigned long)p.local, (void *)mem, (void *)(mem + size));
		ck_assert(p.deepest >= (uintptr_t)mem && p.deepest < p.local);
	}
	/* Still ours: weft never freed or protected it. */
	memset(mem, 0x5a, size);
	ck_assert_int_eq(munmap(mem, size), 0);

	/* Memory that is not page- nor 16-byte aligned works too. */
	char *raw = malloc(96 * 1024 + 64);
	ck_assert_ptr_nonnull(raw);
	char *odd = raw + 8;
	ck_assert_int_eq(weft_attr_setstack(&a, odd, 96 * 1024 + 3), 0);
	struct us_probe p = { odd, odd + 96 * 1024 + 3, 0, 0 };
	weft_t t;
	ck_assert_int_eq(weft_create(&t, &a, user_stack_child, &p), 0);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	ck_assert(p.local >= (uintptr_t)odd && p.local < (uintptr_t)odd + 96 * 1024 + 3);
	free(raw);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
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
		ck_assert(w2 >= 0 && w2 < 2);
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

static Suite *sched_suite(void)
{
	Suite *s = suite_create("sched");
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
	tcase_add_test(tc, t_join_values);
	tcase_add_test(tc, t_join_blocks_until_finished);
	tcase_add_test(tc, t_join_from_other_thread);
	tcase_add_test(tc, t_self_equal);
	tcase_add_test(tc, t_create_from_foreign_kthread);
	tcase_add_test(tc, t_names);
	tcase_add_test(tc, t_name_from_attr);
	tcase_add_test(tc, t_detached_by_attr);
	tcase_add_test(tc, t_detach_running_and_finished);
	tcase_add_test(tc, t_exit_from_main_waits);
	tcase_add_test(tc, t_exit_from_main_status_zero);
	tcase_add_test(tc, t_stack_overflow_reported);
	tcase_add_test(tc, t_stack_overflow_reported_default_size);
	tcase_add_test(tc, t_stack_overflow_reported_on_other_worker);
	suite_add_tcase(s, tc);

	tc = tcase_create("attributes");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_attr_defaults_roundtrip);
	tcase_add_test(tc, t_attr_default_stack_from_env);
	tcase_add_test(tc, t_attr_stacksize_honoured);
	tcase_add_test(tc, t_env_stack_size_honoured);
	tcase_add_test(tc, t_attr_user_stack);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_keys_per_thread);
	tcase_add_test(tc, t_key_destructors);
	tcase_add_test(tc, t_key_delete);
	tcase_add_test(tc, t_keys_all_slots);
	suite_add_tcase(s, tc);

	tc = tcase_create("errno");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_errno_per_thread);
	tcase_add_test(tc, t_errno_per_thread_2w);
	tcase_add_test(tc, t_errno_untouched_by_weft);
	tcase_add_test(tc, t_migration_keeps_errno_and_keys);
	suite_add_tcase(s, tc);

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
	return weft_check_run(sched_suite());
}
