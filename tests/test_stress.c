/*
 * test_stress.c — the scheduler under load, on 2 workers.
 *
 * Covered: 1,000,000 threads created and joined with resident memory bounded
 * (growth after the first 10,000 below 64 MiB); 100,000 threads alive at
 * once, blocked in join chains and in sleeps until released, then all
 * joined; threads created concurrently from many threads on both workers;
 * 200,000 detached threads all running and reclaimed with bounded memory; a
 * recursive fork-join fan-out; join racing the target's exit across
 * workers; detach racing the target's exit; a yield storm keeping stack
 * contents and errno intact; a sleep storm where every sleep lasts at least
 * its time.
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

/* The memory-bound tests measure RSS: ASan's quarantine of freed memory
 * grows by ~120 bytes per thread finished on a clone worker (it stops with
 * a small quarantine; none without ASan), so keep it small here. */
#define WEFT_CHECK_ASAN_OPTIONS "detect_leaks=0:quarantine_size_mb=8"
#include "weft_check.h"
#include "proc_memory.h"
#include "helpers.h"
#include "context/stack.h"


static void set_workers(const char *n)
{
	ck_assert_int_eq(setenv("WEFT_WORKERS", n, 1), 0);
	unsetenv("WEFT_STACK_SIZE");
	unsetenv("WEFT_QUANTUM_US");
}

static __attribute__((noinline, noipa)) int get_errno(void) { return errno; }
static __attribute__((noinline, noipa)) void set_errno(int v) { errno = v; }

/* Resident memory of the process in bytes, counted exactly. */
static size_t rss_bytes(void)
{
	return (size_t)proc_smaps_kb("Rss") * 1024;
}

/* ------------------------------------------------------------------------ */
/* A million threads, bounded memory                                        */
/* ------------------------------------------------------------------------ */

static __attribute__((noinline)) uintptr_t touch_some_stack(uintptr_t x)
{
	volatile char buf[1024];
	for (int i = 0; i < 1024; i += 128)
		buf[i] = (char)(x + (uintptr_t)i);
	return x + (uintptr_t)buf[128];
}

static void *small_job(void *a)
{
	uintptr_t x = (uintptr_t)a;
	touch_some_stack(x);
	return (void *)(x * 2 + 1);
}

START_TEST(t_million_threads)
{
	set_workers("2");
	enum { TOTAL = 1000000, BATCH = 1000 };
	static weft_t t[BATCH];
	size_t rss_early = 0;
	long bad = 0;
	for (int done = 0; done < TOTAL; done += BATCH) {
		for (int i = 0; i < BATCH; i++)
			ck_assert_int_eq(weft_create(&t[i], NULL, small_job,
			                             (void *)(uintptr_t)(done + i)), 0);
		for (int i = 0; i < BATCH; i++) {
			void *r;
			ck_assert_int_eq(weft_join(t[i], &r), 0);
			bad += r != (void *)((uintptr_t)(done + i) * 2 + 1);
		}
		if (done + BATCH == 10000)
			rss_early = rss_bytes();
	}
	ck_assert_int_eq(bad, 0);
	size_t rss_end = rss_bytes();
	ck_assert_msg(rss_end < rss_early + 64 * 1024 * 1024,
	              "RSS grew from %zu KiB after 10,000 threads to %zu KiB after 1,000,000",
	              rss_early / 1024, rss_end / 1024);
	/* The handles are all stale. */
	for (int i = 0; i < BATCH; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), ESRCH);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* 100,000 threads alive at once                                            */
/* ------------------------------------------------------------------------ */

#define ALIVE 100000
#define ALIVE_MPROTECT 20000
static weft_t chain[ALIVE];
static atomic_long started, finished;
static atomic_int released;

/* How many to keep alive, asked once the first thread (and its stack
 * guard) exists: ALIVE, unless the guards are mprotect ones (no working
 * MADV_GUARD_INSTALL: Linux before 6.13, or qemu-user, which accepts it
 * and does nothing).  Two mappings per stack then cap a process near
 * 32,000 stacks under the default vm.max_map_count (docs/design.md §8), so
 * ALIVE_MPROTECT are kept alive instead, and the test says so. */
static long alive_target(void)
{
	struct wf_stack_stats st;
	wf_stack_stats_get(&st);
	if (!st.guards_mprotect)
		return ALIVE;
	printf("%d threads alive, not %d: stack guards are mprotect ones here "
	       "(no MADV_GUARD_INSTALL)\n", ALIVE_MPROTECT, ALIVE);
	return ALIVE_MPROTECT;
}

/* Thread i joins thread i-1, so each is blocked (parked in join) until its
 * predecessor finishes; thread 0 waits for the release. */
static void *chain_link(void *a)
{
	uintptr_t i = (uintptr_t)a;
	atomic_fetch_add(&started, 1);
	uintptr_t v = 0;
	if (i == 0) {
		while (!atomic_load(&released))
			weft_sleep_ns(1 * MS);
	} else {
		void *r;
		if (weft_join(chain[i - 1], &r) != 0)
			return (void *)UINTPTR_MAX;
		v = (uintptr_t)r;
		if (v != i - 1)
			return (void *)UINTPTR_MAX;
	}
	atomic_fetch_add(&finished, 1);
	return (void *)i;
}

START_TEST(t_100k_alive_join_chain)
{
	set_workers("2");
	ck_assert_int_eq(weft_create(&chain[0], NULL, chain_link, (void *)0), 0);
	long alive = alive_target();
	for (uintptr_t i = 1; i < (uintptr_t)alive; i++)
		ck_assert_int_eq(weft_create(&chain[i], NULL, chain_link, (void *)i), 0);
	ck_assert(wait_atomic(&started, alive, 30000));
	/* All alive at once: none has finished. */
	ck_assert_int_eq(atomic_load(&finished), 0);
	atomic_store(&released, 1);
	void *r;
	ck_assert_int_eq(weft_join(chain[alive - 1], &r), 0);
	ck_assert_ptr_eq(r, (void *)(uintptr_t)(alive - 1));
	ck_assert_int_eq(atomic_load(&finished), alive);
	/* Every link was joined by its successor: all stale. */
	for (int i = 0; i < alive; i += 997)
		ck_assert_int_eq(weft_join(chain[i], NULL), ESRCH);
}
END_TEST

static weft_t sleepers[ALIVE];
static void *gated_sleeper(void *a)
{
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&released))
		weft_sleep_ns(250 * MS);
	atomic_fetch_add(&finished, 1);
	return a;
}

START_TEST(t_100k_alive_sleeping)
{
	set_workers("2");
	weft_attr_t a;
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_setstacksize(&a, WEFT_STACK_MIN), 0);
	ck_assert_int_eq(weft_create(&sleepers[0], &a, gated_sleeper, (void *)0), 0);
	long alive = alive_target();
	for (uintptr_t i = 1; i < (uintptr_t)alive; i++)
		ck_assert_int_eq(weft_create(&sleepers[i], &a, gated_sleeper, (void *)i), 0);
	ck_assert(wait_atomic(&started, alive, 30000));
	ck_assert_int_eq(atomic_load(&finished), 0);
	atomic_store(&released, 1);
	long bad = 0;
	for (uintptr_t i = 0; i < (uintptr_t)alive; i++) {
		void *r;
		ck_assert_int_eq(weft_join(sleepers[i], &r), 0);
		bad += r != (void *)i;
	}
	ck_assert_int_eq(bad, 0);
	ck_assert_int_eq(atomic_load(&finished), alive);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Creation from many threads at once                                       */
/* ------------------------------------------------------------------------ */

#define CREATORS 64
#define PER_CREATOR 2000
static atomic_long child_runs;
static atomic_int creator_errors;
static atomic_int creator_workers[2];

static void *counted_child(void *a)
{
	atomic_fetch_add(&child_runs, 1);
	if ((uintptr_t)a % 3 == 0)
		weft_yield();
	return (void *)((uintptr_t)a ^ 0x5a5a);
}

static void *creator(void *a)
{
	uintptr_t base = (uintptr_t)a * PER_CREATOR;
	weft_t t[100];
	for (int round = 0; round < PER_CREATOR / 100; round++) {
		int w = weft_worker_self();
		if (w >= 0 && w < 2)
			atomic_fetch_add(&creator_workers[w], 1);
		for (int i = 0; i < 100; i++)
			if (weft_create(&t[i], NULL, counted_child,
			                (void *)(base + (uintptr_t)(round * 100 + i))))
				atomic_fetch_add(&creator_errors, 1);
		for (int i = 0; i < 100; i++) {
			void *r;
			if (weft_join(t[i], &r) ||
			    r != (void *)((base + (uintptr_t)(round * 100 + i)) ^ 0x5a5a))
				atomic_fetch_add(&creator_errors, 1);
		}
		if (round % 4 == 3)
			weft_sleep_ns(50000);
	}
	return a;
}

START_TEST(t_create_from_many_threads)
{
	set_workers("2");
	weft_t c[CREATORS];
	for (uintptr_t i = 0; i < CREATORS; i++)
		ck_assert_int_eq(weft_create(&c[i], NULL, creator, (void *)i), 0);
	for (uintptr_t i = 0; i < CREATORS; i++) {
		void *r;
		ck_assert_int_eq(weft_join(c[i], &r), 0);
		ck_assert_ptr_eq(r, (void *)i);
	}
	ck_assert_int_eq(atomic_load(&creator_errors), 0);
	ck_assert_int_eq(atomic_load(&child_runs), (long)CREATORS * PER_CREATOR);
	/* Both workers created threads. */
	ck_assert_int_gt(atomic_load(&creator_workers[0]), 0);
	ck_assert_int_gt(atomic_load(&creator_workers[1]), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Detached threads: all run, all reclaimed                                 */
/* ------------------------------------------------------------------------ */

#define DETACHED_TOTAL 200000
static atomic_long det_runs;
static weft_t det_sample[1000];

static void *det_child(void *a)
{
	touch_some_stack((uintptr_t)a);
	atomic_fetch_add(&det_runs, 1);
	return NULL;
}

static void *det_creator(void *a)
{
	uintptr_t id = (uintptr_t)a;
	weft_attr_t at;
	if (weft_attr_init(&at) || weft_attr_setdetachstate(&at, WEFT_CREATE_DETACHED))
		return (void *)1;
	for (int i = 0; i < DETACHED_TOTAL / 4; i++) {
		weft_t t;
		if (weft_create(&t, &at, det_child, (void *)(uintptr_t)i))
			return (void *)2;
		if (id == 0 && i % 50 == 0 && i / 50 < 1000)
			det_sample[i / 50] = t;
		if (i % 1000 == 999)
			weft_sleep_ns(10000);
	}
	weft_attr_destroy(&at);
	return NULL;
}

START_TEST(t_detached_storm)
{
	set_workers("2");
	weft_t c[4];
	/* A first wave to reach a steady state, then the measured run. */
	for (uintptr_t i = 0; i < 4; i++)
		ck_assert_int_eq(weft_create(&c[i], NULL, det_creator, (void *)i), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		ck_assert_int_eq(weft_join(c[i], &r), 0);
		ck_assert_ptr_null(r);
	}
	ck_assert(wait_atomic(&det_runs, DETACHED_TOTAL, 30000));
	size_t rss_early = rss_bytes();
	for (uintptr_t i = 0; i < 4; i++)
		ck_assert_int_eq(weft_create(&c[i], NULL, det_creator, (void *)i), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(weft_join(c[i], NULL), 0);
	ck_assert(wait_atomic(&det_runs, 2 * DETACHED_TOTAL, 30000));
	ck_assert_int_eq(atomic_load(&det_runs), 2 * DETACHED_TOTAL);
	/* Finished detached threads are reclaimed: stale handles ... */
	for (int i = 0; i < 1000; i++) {
		uint64_t end = now_ns() + 5000 * MS;
		char buf[32];
		while (weft_getname(det_sample[i], buf, sizeof buf) != ESRCH && now_ns() < end)
			weft_sleep_ns(100000);
		ck_assert_int_eq(weft_join(det_sample[i], NULL), ESRCH);
		ck_assert_int_eq(weft_detach(det_sample[i]), ESRCH);
	}
	/* ... and memory does not grow with their number. */
	size_t rss_end = rss_bytes();
	ck_assert_msg(rss_end < rss_early + 32 * 1024 * 1024,
	              "RSS grew from %zu KiB to %zu KiB over 200,000 detached threads",
	              rss_early / 1024, rss_end / 1024);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Recursive fan-out                                                        */
/* ------------------------------------------------------------------------ */

static void *fib(void *a)
{
	uintptr_t n = (uintptr_t)a;
	if (n < 2)
		return a;
	weft_t x, y;
	void *rx = NULL, *ry = NULL;
	if (weft_create(&x, NULL, fib, (void *)(n - 1)) ||
	    weft_create(&y, NULL, fib, (void *)(n - 2)))
		return (void *)UINTPTR_MAX;
	if (weft_join(x, &rx) || weft_join(y, &ry))
		return (void *)UINTPTR_MAX;
	if (rx == (void *)UINTPTR_MAX || ry == (void *)UINTPTR_MAX)
		return (void *)UINTPTR_MAX;
	return (void *)((uintptr_t)rx + (uintptr_t)ry);
}

START_TEST(t_fanout_fib)
{
	set_workers("2");
	weft_t t;
	void *r;
	/* fib(23) = 28657, computed by 92,735 threads. */
	ck_assert_int_eq(weft_create(&t, NULL, fib, (void *)23), 0);
	ck_assert_int_eq(weft_join(t, &r), 0);
	ck_assert_uint_eq((uintptr_t)r, 28657);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Join and detach racing exit                                              */
/* ------------------------------------------------------------------------ */

static void *short_lived(void *a)
{
	uintptr_t v = (uintptr_t)a;
	for (uintptr_t i = 0; i < v % 3; i++)
		weft_yield();
	return (void *)(v + 1000);
}

static void *race_joiner(void *a)
{
	weft_t target = (weft_t)a;
	void *r = NULL;
	int e = weft_join(target, &r);
	return e ? (void *)(uintptr_t)-1 : r;
}

START_TEST(t_join_races_exit)
{
	set_workers("2");
	enum { ROUNDS = 20000, WIDTH = 8 };
	long bad = 0;
	for (int round = 0; round < ROUNDS / WIDTH; round++) {
		weft_t tg[WIDTH], jn[WIDTH];
		for (int i = 0; i < WIDTH; i++) {
			uintptr_t v = (uintptr_t)(round * WIDTH + i);
			ck_assert_int_eq(weft_create(&tg[i], NULL, short_lived, (void *)v), 0);
			/* Half joined by another thread, half by main. */
			if (i % 2)
				ck_assert_int_eq(weft_create(&jn[i], NULL, race_joiner,
				                             (void *)tg[i]), 0);
		}
		for (int i = 0; i < WIDTH; i++) {
			uintptr_t v = (uintptr_t)(round * WIDTH + i);
			void *r;
			if (i % 2)
				ck_assert_int_eq(weft_join(jn[i], &r), 0);
			else
				ck_assert_int_eq(weft_join(tg[i], &r), 0);
			bad += r != (void *)(v + 1000);
		}
	}
	ck_assert_int_eq(bad, 0);
}
END_TEST

static atomic_long dr_runs;
static void *dr_child(void *a)
{
	if ((uintptr_t)a % 2)
		weft_yield();
	atomic_fetch_add(&dr_runs, 1);
	return a;
}

START_TEST(t_detach_races_exit)
{
	set_workers("2");
	enum { N = 50000 };
	static weft_t t[N];
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(weft_create(&t[i], NULL, dr_child, (void *)(uintptr_t)i), 0);
		/* Joinable and not joined: detaching succeeds whether or not it
		 * has finished yet. */
		ck_assert_int_eq(weft_detach(t[i]), 0);
		if (i % 500 == 499)
			weft_sleep_ns(10000);
	}
	ck_assert(wait_atomic(&dr_runs, N, 30000));
	for (int i = 0; i < N; i += 7) {
		uint64_t end = now_ns() + 5000 * MS;
		char buf[32];
		while (weft_getname(t[i], buf, sizeof buf) != ESRCH && now_ns() < end)
			weft_sleep_ns(100000);
		ck_assert_int_eq(weft_join(t[i], NULL), ESRCH);
	}
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Yield and sleep storms                                                   */
/* ------------------------------------------------------------------------ */

#define YS_THREADS 200
#define YS_YIELDS 2000
static atomic_int ys_bad_stack, ys_bad_errno;

static void *yield_storm(void *a)
{
	uintptr_t id = (uintptr_t)a;
	uint64_t local[32];
	for (int i = 0; i < 32; i++)
		local[i] = id * 1000003u + (uint64_t)i;
	set_errno((int)id + 1);
	for (int n = 0; n < YS_YIELDS; n++) {
		if (n % 64 == 63)
			weft_sleep_ns(1000);
		else
			weft_yield();
		uint64_t sum = 0, want = 0;
		for (int i = 0; i < 32; i++) {
			sum += local[i];
			want += id * 1000003u + (uint64_t)i;
		}
		if (sum != want)
			atomic_fetch_add(&ys_bad_stack, 1);
		if (get_errno() != (int)id + 1)
			atomic_fetch_add(&ys_bad_errno, 1);
	}
	return a;
}

START_TEST(t_yield_storm)
{
	set_workers("2");
	weft_t t[YS_THREADS];
	for (uintptr_t i = 0; i < YS_THREADS; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, yield_storm, (void *)i), 0);
	for (uintptr_t i = 0; i < YS_THREADS; i++) {
		void *r;
		ck_assert_int_eq(weft_join(t[i], &r), 0);
		ck_assert_ptr_eq(r, (void *)i);
	}
	ck_assert_int_eq(atomic_load(&ys_bad_stack), 0);
	ck_assert_int_eq(atomic_load(&ys_bad_errno), 0);
}
END_TEST

#define SS_THREADS 10000
static atomic_int ss_short, ss_late;

static void *sleep_storm(void *a)
{
	uint64_t r = (uintptr_t)a * 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 3; i++) {
		r ^= r >> 29;
		r *= 0xbf58476d1ce4e5b9ull;
		uint64_t ns = (r >> 20) % (5 * MS);
		uint64_t t0 = now_ns();
		if (weft_sleep_ns(ns))
			atomic_fetch_add(&ss_short, 1);
		uint64_t dt = now_ns() - t0;
		if (dt < ns)
			atomic_fetch_add(&ss_short, 1);
		if (dt > ns + 5000 * MS)
			atomic_fetch_add(&ss_late, 1);
	}
	return NULL;
}

START_TEST(t_sleep_storm)
{
	set_workers("2");
	static weft_t t[SS_THREADS];
	for (uintptr_t i = 0; i < SS_THREADS; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, sleep_storm, (void *)i), 0);
	for (int i = 0; i < SS_THREADS; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&ss_short), 0);
	ck_assert_int_eq(atomic_load(&ss_late), 0);
}
END_TEST

static Suite *stress_suite(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tcase_create("load");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_million_threads);
	tcase_add_test(tc, t_100k_alive_join_chain);
	tcase_add_test(tc, t_100k_alive_sleeping);
	tcase_add_test(tc, t_create_from_many_threads);
	tcase_add_test(tc, t_detached_storm);
	tcase_add_test(tc, t_fanout_fib);
	tcase_add_test(tc, t_join_races_exit);
	tcase_add_test(tc, t_detach_races_exit);
	tcase_add_test(tc, t_yield_storm);
	tcase_add_test(tc, t_sleep_storm);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(stress_suite());
}
