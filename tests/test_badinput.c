/*
 * test_badinput.c — every documented error of the Runtime, Threads,
 * Attributes and Thread-specific data sections (weft.h), and bad handles
 * that must never crash (docs/design.md, "Threads and their control blocks").
 *
 * Covered: NULL pointers (EINVAL); WEFT_NULL, made-up, random 64-bit and
 * stale handles (after join, after a detached thread finished, with the
 * slot reused by a new thread) giving ESRCH from every call; join of self
 * (EDEADLK), of a detached thread and of a thread another thread is joining
 * (EINVAL), a second join (ESRCH); detach twice and detach of a thread being
 * joined (EINVAL); attributes never initialized or destroyed (EINVAL), stack
 * sizes below WEFT_STACK_MIN or above 1 GiB, bad detach states, ERANGE from
 * getname; key errors (NULL, WEFT_KEYS_MAX exhausted, unknown, deleted,
 * made-up keys); calls from a kernel thread that is not a green thread
 * (EPERM, WEFT_NULL, -1, weft_exit aborting with one "weft: " line); bad
 * environment values making weft_init fail with EINVAL and exactly one
 * stderr line naming the variable, remembered by later calls; good values
 * accepted silently.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "weft_check.h"
#include "child_capture.h"
#include "helpers.h"


static void set_workers(const char *n)
{
	ck_assert_int_eq(setenv("WEFT_WORKERS", n, 1), 0);
	unsetenv("WEFT_STACK_SIZE");
	unsetenv("WEFT_QUANTUM_US");
	unsetenv("WEFT_PREEMPT_SIGNAL");
}

static __attribute__((noinline, noipa)) int get_errno(void) { return errno; }
static __attribute__((noinline, noipa)) void set_errno(int v) { errno = v; }

/* A thread that stays alive until the gate opens (polling slowly, so that
 * a thousand of them leave the worker mostly idle). */
static atomic_int gate;
static void *gated(void *a)
{
	while (!atomic_load(&gate))
		weft_sleep_ns(10 * MS);
	return a;
}

/* Every call taking a handle says ESRCH; none crashes. */
static void expect_stale(weft_t h)
{
	char buf[32];
	void *r = (void *)0x77;
	ck_assert_msg(weft_join(h, &r) == ESRCH, "join(%#lx)", (unsigned long)h);
	ck_assert_ptr_eq(r, (void *)0x77);  /* untouched */
	ck_assert_msg(weft_join(h, NULL) == ESRCH, "join(%#lx, NULL)", (unsigned long)h);
	ck_assert_msg(weft_detach(h) == ESRCH, "detach(%#lx)", (unsigned long)h);
	ck_assert_msg(weft_setname(h, "x") == ESRCH, "setname(%#lx)", (unsigned long)h);
	ck_assert_msg(weft_getname(h, buf, sizeof buf) == ESRCH, "getname(%#lx)",
	              (unsigned long)h);
}

/* ------------------------------------------------------------------------ */
/* NULL pointers                                                            */
/* ------------------------------------------------------------------------ */

START_TEST(t_create_null_args)
{
	set_workers("2");
	weft_t t = 0x1234;
	ck_assert_int_eq(weft_create(NULL, NULL, ret_arg, NULL), EINVAL);
	ck_assert_int_eq(weft_create(&t, NULL, NULL, NULL), EINVAL);
	ck_assert_uint_eq(t, 0x1234);  /* untouched on failure */
	ck_assert_int_eq(weft_create(NULL, NULL, NULL, NULL), EINVAL);
	/* Nothing was started. */
	ck_assert_int_eq(weft_create(&t, NULL, ret_arg, (void *)5), 0);
	void *r;
	ck_assert_int_eq(weft_join(t, &r), 0);
	ck_assert_ptr_eq(r, (void *)5);
}
END_TEST

START_TEST(t_names_null_and_erange)
{
	set_workers("2");
	weft_t me = weft_self();
	char buf[64];
	ck_assert_int_eq(weft_setname(me, NULL), EINVAL);
	ck_assert_int_eq(weft_getname(me, NULL, 10), EINVAL);
	ck_assert_int_eq(weft_setname(me, "twelve-bytes"), 0);  /* 12 chars */
	/* The name and its terminator need 13 bytes. */
	ck_assert_int_eq(weft_getname(me, buf, 0), ERANGE);
	ck_assert_int_eq(weft_getname(me, buf, 1), ERANGE);
	memset(buf, 'Q', sizeof buf);
	ck_assert_int_eq(weft_getname(me, buf, 12), ERANGE);
	ck_assert_int_eq(weft_getname(me, buf, 13), 0);
	ck_assert_str_eq(buf, "twelve-bytes");
	/* The empty name fits in one byte. */
	ck_assert_int_eq(weft_setname(me, ""), 0);
	ck_assert_int_eq(weft_getname(me, buf, 0), ERANGE);
	ck_assert_int_eq(weft_getname(me, buf, 1), 0);
	/* Invalid calls change nothing. */
	ck_assert_int_eq(weft_setname(me, "kept"), 0);
	ck_assert_int_eq(weft_setname(me, NULL), EINVAL);
	ck_assert_int_eq(weft_getname(me, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "kept");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Bad handles                                                              */
/* ------------------------------------------------------------------------ */

START_TEST(t_null_handle)
{
	set_workers("2");
	ck_assert_int_eq(weft_init(), 0);
	expect_stale(WEFT_NULL);
}
END_TEST

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	/* splitmix64: fixed seed, the same values every run */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

START_TEST(t_made_up_handles)
{
	set_workers("2");
	weft_t me = weft_self();
	ck_assert(me != WEFT_NULL);
	/* Some threads have lived and been joined, so slots and generations
	 * beyond the first are in use. */
	for (int i = 0; i < 100; i++) {
		weft_t t;
		ck_assert_int_eq(weft_create(&t, NULL, ret_arg, NULL), 0);
		ck_assert_int_eq(weft_join(t, NULL), 0);
	}
	/* No thread but main exists: every other value names nothing. */
	int tried = 0;
	for (int i = 0; i < 200000; i++) {
		weft_t h = (weft_t)rng();
		if (i % 4 == 1)
			h &= 0xffffffffull;              /* small generation */
		else if (i % 4 == 2)
			h &= 0x0000000f000fffffull;      /* small both */
		else if (i % 4 == 3)
			h = (weft_t)(i / 4);             /* small integers */
		if (weft_equal(h, me))
			continue;
		char buf[32];
		ck_assert_msg(weft_join(h, NULL) == ESRCH, "join(%#lx)", (unsigned long)h);
		ck_assert_msg(weft_detach(h) == ESRCH, "detach(%#lx)", (unsigned long)h);
		if (i % 8 == 0) {
			ck_assert_msg(weft_setname(h, "x") == ESRCH, "setname(%#lx)",
			              (unsigned long)h);
			ck_assert_msg(weft_getname(h, buf, sizeof buf) == ESRCH, "getname(%#lx)",
			              (unsigned long)h);
		}
		tried++;
	}
	ck_assert_int_gt(tried, 199000);
	/* Neighbours of real handles: main's with every bit flipped. */
	for (int b = 0; b < 64; b++)
		expect_stale(me ^ ((weft_t)1 << b));
	static const weft_t edge[] = { 1, 2, 0xffffffffull, 0x100000000ull, 0x100000001ull,
	                               UINTPTR_MAX, UINTPTR_MAX - 1, (weft_t)1 << 63,
	                               ((weft_t)1 << 63) | 1, 0x7fffffffffffffffull };
	for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++)
		if (!weft_equal(edge[i], me))
			expect_stale(edge[i]);
	/* main is unharmed. */
	char buf[32];
	ck_assert_int_eq(weft_getname(me, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "main");
}
END_TEST

START_TEST(t_stale_after_join)
{
	set_workers("2");
	weft_t t;
	ck_assert_int_eq(weft_create(&t, NULL, ret_arg, (void *)1), 0);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	expect_stale(t);
	/* A second join, or more. */
	ck_assert_int_eq(weft_join(t, NULL), ESRCH);
	ck_assert_int_eq(weft_join(t, NULL), ESRCH);
}
END_TEST

START_TEST(t_stale_after_detached_finish)
{
	set_workers("2");
	weft_attr_t a;
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_setdetachstate(&a, WEFT_CREATE_DETACHED), 0);
	weft_t t[8];
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(weft_create(&t[i], &a, ret_arg, NULL), 0);
	weft_t u;
	ck_assert_int_eq(weft_create(&u, NULL, ret_arg, NULL), 0);
	ck_assert_int_eq(weft_detach(u), 0);
	for (int i = 0; i < 8; i++) {
		ck_assert(wait_stale(t[i], 5000));
		expect_stale(t[i]);
	}
	ck_assert(wait_stale(u, 5000));
	expect_stale(u);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
}
END_TEST

/* A stale handle stays stale when its slot serves a new thread. */
START_TEST(t_stale_handle_not_reused)
{
	set_workers("1");
	enum { N = 1000 };
	static weft_t old[N];
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(weft_create(&old[i], NULL, ret_arg, NULL), 0);
		ck_assert_int_eq(weft_join(old[i], NULL), 0);
	}
	/* New threads, alive, most of them in recycled slots. */
	atomic_store(&gate, 0);
	static weft_t live[N];
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_create(&live[i], NULL, gated, (void *)(intptr_t)i), 0);
	for (int i = 0; i < N; i++) {
		for (int j = i % 7; j < N; j += 97)
			ck_assert(!weft_equal(old[i], live[j]));
		char buf[32];
		ck_assert_int_eq(weft_join(old[i], NULL), ESRCH);
		ck_assert_int_eq(weft_detach(old[i]), ESRCH);
		ck_assert_int_eq(weft_getname(old[i], buf, sizeof buf), ESRCH);
		ck_assert_int_eq(weft_setname(old[i], "imposter"), ESRCH);
	}
	/* The live threads were not renamed, detached or joined by any of
	 * that. */
	atomic_store(&gate, 1);
	for (int i = 0; i < N; i++) {
		char buf[32];
		ck_assert_int_eq(weft_getname(live[i], buf, sizeof buf), 0);
		ck_assert_str_ne(buf, "imposter");
		void *r;
		ck_assert_int_eq(weft_join(live[i], &r), 0);
		ck_assert_ptr_eq(r, (void *)(intptr_t)i);
	}
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Join and detach errors                                                   */
/* ------------------------------------------------------------------------ */

static void *join_self(void *a)
{
	(void)a;
	return (void *)(intptr_t)weft_join(weft_self(), NULL);
}

START_TEST(t_join_self)
{
	set_workers("2");
	ck_assert_int_eq(weft_join(weft_self(), NULL), EDEADLK);
	void *r = (void *)0x5;
	ck_assert_int_eq(weft_join(weft_self(), &r), EDEADLK);
	ck_assert_ptr_eq(r, (void *)0x5);
	weft_t t;
	ck_assert_int_eq(weft_create(&t, NULL, join_self, NULL), 0);
	ck_assert_int_eq(weft_join(t, &r), 0);
	ck_assert_int_eq((int)(intptr_t)r, EDEADLK);
}
END_TEST

START_TEST(t_join_detached)
{
	set_workers("2");
	atomic_store(&gate, 0);
	weft_attr_t a;
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_setdetachstate(&a, WEFT_CREATE_DETACHED), 0);
	weft_t t, u;
	ck_assert_int_eq(weft_create(&t, &a, gated, NULL), 0);
	ck_assert_int_eq(weft_join(t, NULL), EINVAL);
	ck_assert_int_eq(weft_create(&u, NULL, gated, NULL), 0);
	ck_assert_int_eq(weft_detach(u), 0);
	ck_assert_int_eq(weft_join(u, NULL), EINVAL);
	/* Detach twice: EINVAL while it lives. */
	ck_assert_int_eq(weft_detach(t), EINVAL);
	ck_assert_int_eq(weft_detach(u), EINVAL);
	atomic_store(&gate, 1);
	ck_assert(wait_stale(t, 5000));
	ck_assert(wait_stale(u, 5000));
	ck_assert_int_eq(weft_detach(t), ESRCH);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
}
END_TEST

static atomic_int joiner_in;
static void *joiner(void *a)
{
	weft_t target = (weft_t)a;
	void *r = NULL;
	atomic_store(&joiner_in, 1);
	int e = weft_join(target, &r);
	return e ? (void *)(intptr_t)-e : r;
}

START_TEST(t_join_while_joined)
{
	/* One worker, no preemption: once main runs again, j has certainly
	 * gone from setting joiner_in to parking in its join. */
	set_workers("1");
	ck_assert_int_eq(setenv("WEFT_QUANTUM_US", "0", 1), 0);
	atomic_store(&gate, 0);
	weft_t t, j;
	ck_assert_int_eq(weft_create(&t, NULL, gated, (void *)77), 0);
	ck_assert_int_eq(weft_create(&j, NULL, joiner, (void *)t), 0);
	while (!atomic_load(&joiner_in))
		weft_sleep_ns(100000);
	weft_yield();
	/* Another thread is joining t. */
	ck_assert_int_eq(weft_join(t, NULL), EINVAL);
	/* Being joined: no detaching either. */
	ck_assert_int_eq(weft_detach(t), EINVAL);
	atomic_store(&gate, 1);
	void *r;
	ck_assert_int_eq(weft_join(j, &r), 0);
	ck_assert_ptr_eq(r, (void *)77);  /* the first joiner got the value */
	expect_stale(t);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Attributes                                                               */
/* ------------------------------------------------------------------------ */

START_TEST(t_attr_null)
{
	set_workers("2");
	weft_attr_t a;
	size_t sz;
	void *addr;
	int st;
	char buf[32];
	static char mem[65536];
	ck_assert_int_eq(weft_attr_init(NULL), EINVAL);
	ck_assert_int_eq(weft_attr_destroy(NULL), EINVAL);
	ck_assert_int_eq(weft_attr_setstacksize(NULL, 65536), EINVAL);
	ck_assert_int_eq(weft_attr_getstacksize(NULL, &sz), EINVAL);
	ck_assert_int_eq(weft_attr_setstack(NULL, mem, sizeof mem), EINVAL);
	ck_assert_int_eq(weft_attr_getstack(NULL, &addr, &sz), EINVAL);
	ck_assert_int_eq(weft_attr_setdetachstate(NULL, WEFT_CREATE_DETACHED), EINVAL);
	ck_assert_int_eq(weft_attr_getdetachstate(NULL, &st), EINVAL);
	ck_assert_int_eq(weft_attr_setname(NULL, "x"), EINVAL);
	ck_assert_int_eq(weft_attr_getname(NULL, buf, sizeof buf), EINVAL);

	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_getstacksize(&a, NULL), EINVAL);
	ck_assert_int_eq(weft_attr_setstack(&a, NULL, sizeof mem), EINVAL);
	ck_assert_int_eq(weft_attr_getstack(&a, NULL, &sz), EINVAL);
	ck_assert_int_eq(weft_attr_getstack(&a, &addr, NULL), EINVAL);
	ck_assert_int_eq(weft_attr_getdetachstate(&a, NULL), EINVAL);
	ck_assert_int_eq(weft_attr_setname(&a, NULL), EINVAL);
	ck_assert_int_eq(weft_attr_getname(&a, NULL, 32), EINVAL);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
}
END_TEST

static void attr_all_einval(weft_attr_t *a)
{
	size_t sz;
	void *addr;
	int st;
	char buf[32];
	static char mem[65536];
	weft_t t = 0x4321;
	ck_assert_int_eq(weft_attr_destroy(a), EINVAL);
	ck_assert_int_eq(weft_attr_setstacksize(a, 65536), EINVAL);
	ck_assert_int_eq(weft_attr_getstacksize(a, &sz), EINVAL);
	ck_assert_int_eq(weft_attr_setstack(a, mem, sizeof mem), EINVAL);
	ck_assert_int_eq(weft_attr_getstack(a, &addr, &sz), EINVAL);
	ck_assert_int_eq(weft_attr_setdetachstate(a, WEFT_CREATE_DETACHED), EINVAL);
	ck_assert_int_eq(weft_attr_getdetachstate(a, &st), EINVAL);
	ck_assert_int_eq(weft_attr_setname(a, "x"), EINVAL);
	ck_assert_int_eq(weft_attr_getname(a, buf, sizeof buf), EINVAL);
	ck_assert_int_eq(weft_create(&t, a, ret_arg, NULL), EINVAL);
	ck_assert_uint_eq(t, 0x4321);
}

START_TEST(t_attr_uninitialized)
{
	set_workers("2");
	weft_attr_t a;
	memset(&a, 0, sizeof a);
	attr_all_einval(&a);
	memset(&a, 0xa5, sizeof a);
	attr_all_einval(&a);
	memset(&a, 0xff, sizeof a);
	attr_all_einval(&a);
}
END_TEST

START_TEST(t_attr_destroyed)
{
	set_workers("2");
	weft_attr_t a;
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_setname(&a, "x"), 0);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
	attr_all_einval(&a);
}
END_TEST

START_TEST(t_attr_bad_values)
{
	set_workers("2");
	weft_attr_t a;
	size_t sz;
	int st;
	char buf[64];
	static char mem[65536];
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_setstacksize(&a, 200000), 0);
	/* Stack sizes below WEFT_STACK_MIN or above 1 GiB. */
	ck_assert_int_eq(weft_attr_setstacksize(&a, 0), EINVAL);
	ck_assert_int_eq(weft_attr_setstacksize(&a, 1), EINVAL);
	ck_assert_int_eq(weft_attr_setstacksize(&a, WEFT_STACK_MIN - 1), EINVAL);
	ck_assert_int_eq(weft_attr_setstacksize(&a, ((size_t)1 << 30) + 1), EINVAL);
	ck_assert_int_eq(weft_attr_setstacksize(&a, SIZE_MAX), EINVAL);
	ck_assert_int_eq(weft_attr_setstacksize(&a, WEFT_STACK_MIN), 0);
	ck_assert_int_eq(weft_attr_setstacksize(&a, (size_t)1 << 30), 0);
	ck_assert_int_eq(weft_attr_setstacksize(&a, 200000), 0);
	ck_assert_int_eq(weft_attr_setstack(&a, mem, 0), EINVAL);
	ck_assert_int_eq(weft_attr_setstack(&a, mem, WEFT_STACK_MIN - 1), EINVAL);
	/* Failed setters leave the attribute as it was. */
	ck_assert_int_eq(weft_attr_getstacksize(&a, &sz), 0);
	ck_assert_uint_eq(sz, 200000);
	ck_assert_int_eq(weft_attr_setdetachstate(&a, 2), EINVAL);
	ck_assert_int_eq(weft_attr_setdetachstate(&a, -1), EINVAL);
	ck_assert_int_eq(weft_attr_setdetachstate(&a, INT_MAX), EINVAL);
	ck_assert_int_eq(weft_attr_getdetachstate(&a, &st), 0);
	ck_assert_int_eq(st, WEFT_CREATE_JOINABLE);
	/* getname: ERANGE when the name and terminator do not fit. */
	ck_assert_int_eq(weft_attr_setname(&a, "seven77"), 0);
	ck_assert_int_eq(weft_attr_getname(&a, buf, 0), ERANGE);
	ck_assert_int_eq(weft_attr_getname(&a, buf, 7), ERANGE);
	ck_assert_int_eq(weft_attr_getname(&a, buf, 8), 0);
	ck_assert_str_eq(buf, "seven77");
	/* The attribute still creates a working thread. */
	weft_t t;
	ck_assert_int_eq(weft_create(&t, &a, ret_arg, (void *)9), 0);
	void *r;
	ck_assert_int_eq(weft_join(t, &r), 0);
	ck_assert_ptr_eq(r, (void *)9);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
	ck_assert_int_eq(weft_attr_destroy(&a), EINVAL);  /* twice */
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Keys                                                                     */
/* ------------------------------------------------------------------------ */

START_TEST(t_key_errors)
{
	set_workers("2");
	ck_assert_int_eq(weft_key_create(NULL, NULL), EINVAL);
	weft_key_t k[WEFT_KEYS_MAX];
	for (int i = 0; i < WEFT_KEYS_MAX; i++)
		ck_assert_int_eq(weft_key_create(&k[i], NULL), 0);
	weft_key_t extra = 0xdead;
	ck_assert_int_eq(weft_key_create(&extra, NULL), EAGAIN);
	ck_assert_int_eq(weft_key_create(&extra, NULL), EAGAIN);
	/* Deleting one frees a slot. */
	ck_assert_int_eq(weft_key_delete(k[5]), 0);
	ck_assert_int_eq(weft_key_delete(k[5]), EINVAL);  /* twice */
	ck_assert_int_eq(weft_setspecific(k[5], &extra), EINVAL);
	ck_assert_ptr_null(weft_getspecific(k[5]));
	weft_key_t again;
	ck_assert_int_eq(weft_key_create(&again, NULL), 0);
	ck_assert_int_eq(weft_key_create(&extra, NULL), EAGAIN);
	/* The old key is not the new one, even in a recycled slot. */
	ck_assert_int_eq(weft_setspecific(again, &again), 0);
	ck_assert_ptr_null(weft_getspecific(k[5]));
	ck_assert_int_eq(weft_setspecific(k[5], &extra), EINVAL);
	ck_assert_ptr_eq(weft_getspecific(again), &again);
	ck_assert_int_eq(weft_key_delete(k[5]), EINVAL);
	ck_assert_ptr_eq(weft_getspecific(again), &again);
	for (int i = 0; i < WEFT_KEYS_MAX; i++)
		if (i != 5)
			ck_assert_int_eq(weft_key_delete(k[i]), 0);
	ck_assert_int_eq(weft_key_delete(again), 0);
	/* All free again. */
	for (int i = 0; i < WEFT_KEYS_MAX; i++)
		ck_assert_int_eq(weft_key_create(&k[i], NULL), 0);
	ck_assert_int_eq(weft_key_create(&extra, NULL), EAGAIN);
}
END_TEST

START_TEST(t_made_up_keys)
{
	set_workers("2");
	weft_key_t real;
	ck_assert_int_eq(weft_key_create(&real, NULL), 0);
	ck_assert_int_eq(weft_setspecific(real, &real), 0);
	for (int i = 0; i < 100000; i++) {
		weft_key_t k = (weft_key_t)rng();
		if (i % 3 == 1)
			k &= 0xffff;
		else if (i % 3 == 2)
			k = (weft_key_t)i;
		if (k == real)
			continue;
		ck_assert_msg(weft_getspecific(k) == NULL, "getspecific(%#x)", k);
		ck_assert_msg(weft_setspecific(k, &i) == EINVAL, "setspecific(%#x)", k);
		ck_assert_msg(weft_key_delete(k) == EINVAL, "delete(%#x)", k);
	}
	ck_assert_ptr_eq(weft_getspecific(real), &real);
	ck_assert_int_eq(weft_key_delete(real), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Callers that are not green threads                                       */
/* ------------------------------------------------------------------------ */

struct foreign_res {
	int join, yield, sleep, setspecific, worker_self;
	weft_t self;
	void *getspecific;
};
static weft_key_t fk;
static weft_t ftarget;

static void *foreign(void *a)
{
	struct foreign_res *r = a;
	r->worker_self = weft_worker_self();
	r->self = weft_self();
	r->join = weft_join(ftarget, NULL);
	r->yield = weft_yield();
	r->sleep = weft_sleep_ns(1000);
	r->setspecific = weft_setspecific(fk, &fk);
	r->getspecific = weft_getspecific(fk);
	return NULL;
}

START_TEST(t_not_a_green_thread)
{
	set_workers("2");
	atomic_store(&gate, 0);
	ck_assert_int_eq(weft_key_create(&fk, NULL), 0);
	ck_assert_int_eq(weft_create(&ftarget, NULL, gated, (void *)3), 0);
	pthread_t p;
	struct foreign_res r;
	memset(&r, 0x55, sizeof r);
	ck_assert_int_eq(pthread_create(&p, NULL, foreign, &r), 0);
	ck_assert_int_eq(pthread_join(p, NULL), 0);
	ck_assert_int_eq(r.worker_self, -1);
	ck_assert(r.self == WEFT_NULL);
	ck_assert_int_eq(r.join, EPERM);
	ck_assert_int_eq(r.yield, EPERM);
	ck_assert_int_eq(r.sleep, EPERM);
	ck_assert_int_eq(r.setspecific, EPERM);
	ck_assert_ptr_null(r.getspecific);
	/* The target was not joined by the failed call. */
	atomic_store(&gate, 1);
	void *v;
	ck_assert_int_eq(weft_join(ftarget, &v), 0);
	ck_assert_ptr_eq(v, (void *)3);
}
END_TEST

static void *foreign_exit(void *a)
{
	(void)a;
	weft_exit(NULL);
}

/* Run fn in a forked child with stderr captured; return its status. */
struct plain_fn { void (*fn)(void); };

static void run_plain(void *arg)
{
	((struct plain_fn *)arg)->fn();
}

static int run_captured(void (*fn)(void), char *err, size_t errlen)
{
	struct plain_fn p = { fn };
	return weft_test_run_captured(run_plain, &p, err, errlen);
}

static void foreign_exit_child(void)
{
	setenv("WEFT_WORKERS", "2", 1);
	if (weft_init())
		_exit(3);
	pthread_t p;
	if (pthread_create(&p, NULL, foreign_exit, NULL))
		_exit(4);
	pthread_join(p, NULL);
	_exit(5);  /* weft_exit returned or the thread just ended */
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(t_exit_outside_green_thread_aborts)
{
	char err[4096];
	int st = run_captured(foreign_exit_child, err, sizeof err);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
	              "status %#x, expected death by SIGABRT; stderr: %s", st, err);
	ck_assert_msg(count_lines(err) == 1 && strncmp(err, "weft: ", 6) == 0,
	              "expected one \"weft: \" line, got: \"%s\"", err);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The environment                                                          */
/* ------------------------------------------------------------------------ */

struct bad_env { const char *var, *val; };
static const struct bad_env bad_envs[] = {
	{ "WEFT_WORKERS", "0" },
	{ "WEFT_WORKERS", "abc" },
	{ "WEFT_WORKERS", "99999" },
	{ "WEFT_WORKERS", "-1" },
	{ "WEFT_WORKERS", "2x" },
	{ "WEFT_WORKERS", "" },
	{ "WEFT_WORKERS", "18446744073709551617" },
	{ "WEFT_STACK_SIZE", "1K" },
	{ "WEFT_STACK_SIZE", "12X" },
	{ "WEFT_STACK_SIZE", "0" },
	{ "WEFT_STACK_SIZE", "" },
	{ "WEFT_STACK_SIZE", "K" },
	{ "WEFT_STACK_SIZE", "-64K" },
	{ "WEFT_STACK_SIZE", "64KK" },
	{ "WEFT_STACK_CACHE", "" },
	{ "WEFT_STACK_CACHE", "-1" },
	{ "WEFT_STACK_CACHE", "16X" },
	{ "WEFT_STACK_CACHE", "M" },
	{ "WEFT_STACK_CACHE", "2048G" },
	{ "WEFT_STACK_CACHE", "18446744073709551615K" },
	{ "WEFT_KTHREADS", "foo" },
	{ "WEFT_KTHREADS", "" },
	{ "WEFT_KTHREADS", "clone2" },
	{ "WEFT_QUANTUM_US", "-1" },
	{ "WEFT_QUANTUM_US", "50" },
	{ "WEFT_QUANTUM_US", "abc" },
	{ "WEFT_QUANTUM_US", "" },
	{ "WEFT_QUANTUM_US", "10ms" },
	{ "WEFT_PREEMPT_SIGNAL", "SIGKILL" },
	{ "WEFT_PREEMPT_SIGNAL", "nonsense" },
	{ "WEFT_PREEMPT_SIGNAL", "SIGSTOP" },
	{ "WEFT_PREEMPT_SIGNAL", "SIGSEGV" },
	{ "WEFT_PREEMPT_SIGNAL", "9" },
	{ "WEFT_PREEMPT_SIGNAL", "0" },
	{ "WEFT_PREEMPT_SIGNAL", "999" },
	{ "WEFT_PREEMPT_SIGNAL", "" },
	{ "WEFT_DUMP_SIGNAL", "SIGKILL" },
	{ "WEFT_DUMP_SIGNAL", "nonsense" },
	{ "WEFT_DUMP_SIGNAL", "SIGALRM" },    /* the preemption signal */
	{ "WEFT_DUMP_SIGNAL", "" },
};

static const struct bad_env *cur_env;

static void bad_env_child(void)
{
	setenv("WEFT_WORKERS", "2", 1);
	unsetenv("WEFT_STACK_SIZE");
	unsetenv("WEFT_STACK_CACHE");
	unsetenv("WEFT_QUANTUM_US");
	unsetenv("WEFT_PREEMPT_SIGNAL");
	unsetenv("WEFT_DUMP_SIGNAL");
	unsetenv("WEFT_TRACE");
	setenv(cur_env->var, cur_env->val, 1);
	int e = weft_init();
	if (e != EINVAL)
		_exit(10 + (e > 80 ? 80 : e));
	/* Remembered: later calls give the same error, print nothing. */
	if (weft_init() != EINVAL)
		_exit(100);
	if (weft_workers() != 0)
		_exit(101);
	_exit(0);
}

START_TEST(t_bad_env)
{
	cur_env = &bad_envs[_i];
	char err[4096];
	int st = run_captured(bad_env_child, err, sizeof err);
	ck_assert_msg(WIFEXITED(st), "%s=\"%s\": child died (status %#x); stderr: %s",
	              cur_env->var, cur_env->val, st, err);
	int code = WEXITSTATUS(st);
	ck_assert_msg(code != 100, "%s=\"%s\": a second weft_init did not return EINVAL",
	              cur_env->var, cur_env->val);
	ck_assert_msg(code != 101, "%s=\"%s\": weft_workers() not 0 after a failed init",
	              cur_env->var, cur_env->val);
	ck_assert_msg(code == 0, "%s=\"%s\": weft_init returned %d, expected EINVAL",
	              cur_env->var, cur_env->val, code - 10);
	ck_assert_msg(count_lines(err) == 1, "%s=\"%s\": %d lines on stderr: \"%s\"",
	              cur_env->var, cur_env->val, count_lines(err), err);
	ck_assert_msg(strncmp(err, "weft: ", 6) == 0, "%s=\"%s\": line does not start "
	              "with \"weft: \": \"%s\"", cur_env->var, cur_env->val, err);
	ck_assert_msg(strstr(err, cur_env->var) != NULL, "%s=\"%s\": line does not name the "
	              "variable: \"%s\"", cur_env->var, cur_env->val, err);
}
END_TEST

/* Good values are accepted without a word. */
static const struct bad_env good_envs[] = {
	{ "WEFT_WORKERS", "1" },
	{ "WEFT_WORKERS", "3" },
	{ "WEFT_STACK_SIZE", "16K" },
	{ "WEFT_STACK_SIZE", "1M" },
	{ "WEFT_STACK_SIZE", "65536" },
	{ "WEFT_STACK_CACHE", "0" },         /* nothing shared kept warm */
	{ "WEFT_STACK_CACHE", "64M" },
	{ "WEFT_STACK_CACHE", "1024G" },
	{ "WEFT_QUANTUM_US", "0" },
	{ "WEFT_QUANTUM_US", "1000" },
	{ "WEFT_PREEMPT_SIGNAL", "SIGUSR1" },
	{ "WEFT_PREEMPT_SIGNAL", "SIGALRM" },
	{ "WEFT_PREEMPT_SIGNAL", "12" },
	{ "WEFT_DUMP_SIGNAL", "SIGQUIT" },
	{ "WEFT_DUMP_SIGNAL", "SIGRTMIN+3" },
	{ "WEFT_TRACE", "" },                 /* empty: tracing off */
};

static void good_env_child(void)
{
	setenv("WEFT_WORKERS", "2", 1);
	unsetenv("WEFT_STACK_SIZE");
	unsetenv("WEFT_STACK_CACHE");
	unsetenv("WEFT_QUANTUM_US");
	unsetenv("WEFT_PREEMPT_SIGNAL");
	unsetenv("WEFT_DUMP_SIGNAL");
	unsetenv("WEFT_TRACE");
	setenv(cur_env->var, cur_env->val, 1);
	int e = weft_init();
	if (e)
		_exit(10 + (e > 80 ? 80 : e));
	if (!strcmp(cur_env->var, "WEFT_WORKERS") && weft_workers() != atoi(cur_env->val))
		_exit(101);
	weft_t t;
	void *r;
	if (weft_create(&t, NULL, ret_arg, (void *)4) || weft_join(t, &r) || r != (void *)4)
		_exit(102);
	_exit(0);
}

START_TEST(t_good_env)
{
	cur_env = &good_envs[_i];
	char err[4096];
	int st = run_captured(good_env_child, err, sizeof err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	              "%s=\"%s\": status %#x; stderr: %s", cur_env->var, cur_env->val, st, err);
	/* Under an explicit backend nothing is printed (a failed clone gate
	 * under "auto" may legitimately print its one line). */
	const char *kt = getenv("WEFT_KTHREADS");
	if (kt && (!strcmp(kt, "clone") || !strcmp(kt, "pthread")))
		ck_assert_msg(err[0] == '\0', "%s=\"%s\": unexpected stderr: \"%s\"",
		              cur_env->var, cur_env->val, err);
}
END_TEST

START_TEST(t_errno_untouched_by_errors)
{
	set_workers("2");
	ck_assert_int_eq(weft_init(), 0);
	set_errno(9876);
	weft_attr_t a;
	memset(&a, 0, sizeof a);
	char buf[4];
	weft_t t;
	ck_assert_int_eq(weft_create(&t, &a, ret_arg, NULL), EINVAL);
	ck_assert_int_eq(weft_join(WEFT_NULL, NULL), ESRCH);
	ck_assert_int_eq(weft_join(weft_self(), NULL), EDEADLK);
	ck_assert_int_eq(weft_detach((weft_t)0xdeadbeefcafeull), ESRCH);
	ck_assert_int_eq(weft_setname(weft_self(), "abcdef"), 0);
	ck_assert_int_eq(weft_getname(weft_self(), buf, sizeof buf), ERANGE);
	ck_assert_int_eq(weft_attr_setstacksize(&a, 1), EINVAL);
	ck_assert_int_eq(weft_key_delete(0xffffffffu), EINVAL);
	ck_assert_int_eq(weft_setspecific(0xffffffffu, NULL), EINVAL);
	ck_assert_int_eq(get_errno(), 9876);
}
END_TEST

static Suite *badinput_suite(void)
{
	Suite *s = suite_create("badinput");
	TCase *tc;

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_create_null_args);
	tcase_add_test(tc, t_names_null_and_erange);
	tcase_add_test(tc, t_null_handle);
	tcase_add_test(tc, t_made_up_handles);
	tcase_add_test(tc, t_stale_after_join);
	tcase_add_test(tc, t_stale_after_detached_finish);
	tcase_add_test(tc, t_stale_handle_not_reused);
	tcase_add_test(tc, t_join_self);
	tcase_add_test(tc, t_join_detached);
	tcase_add_test(tc, t_join_while_joined);
	tcase_add_test(tc, t_not_a_green_thread);
	tcase_add_test(tc, t_exit_outside_green_thread_aborts);
	tcase_add_test(tc, t_errno_untouched_by_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("attributes");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_attr_null);
	tcase_add_test(tc, t_attr_uninitialized);
	tcase_add_test(tc, t_attr_destroyed);
	tcase_add_test(tc, t_attr_bad_values);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_key_errors);
	tcase_add_test(tc, t_made_up_keys);
	suite_add_tcase(s, tc);

	tc = tcase_create("environment");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, t_bad_env, 0, sizeof bad_envs / sizeof bad_envs[0]);
	tcase_add_loop_test(tc, t_good_env, 0, sizeof good_envs / sizeof good_envs[0]);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(badinput_suite());
}
