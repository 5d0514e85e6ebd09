/*
 * test_sync_wakeups.c — wake-ups of the Synchronization section (src/sync):
 * none lost, none doubled, none starved.
 *
 * Covered: a million ping-pongs through a condition variable and through a
 * semaphore (one lost wake-up hangs the pair; Check's timeout catches it).
 * Timed waits racing with wake-ups: every wait returns 0 or ETIMEDOUT,
 * semaphore tokens are conserved, a condition signal is never swallowed by
 * a waiter that times out, timed mutex waiters in handoff mode, timed and
 * untimed rwlock waits lose no grant.  Foreign kernel threads and green
 * threads blocking on and waking each other through one mutex and two
 * condition variables.  The starvation bound of the mutex's 1 ms handoff.
 *
 * Each test runs in its own forked child (Check's default) and starts with
 * setenv("WEFT_WORKERS", "2") before its first weft call (sync_helpers.h).
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "weft.h"
#include "sync_helpers.h"

/* ---- lost-wake-up torture: a million ping-pongs ---------------------------- */

#define PINGPONGS 1000000
static weft_mutex_t pp_m = WEFT_MUTEX_INITIALIZER;
static weft_cond_t pp_c = WEFT_COND_INITIALIZER;
static int pp_turn;
static weft_sem_t pp_s[2];

/* Two threads take turns: each wait is woken by the other's signal or post
 * only, so a single lost wake-up hangs the pair. */
static void *pp_cond(void *arg)
{
	int me = (int)(intptr_t)arg;
	T_CHECK(weft_mutex_lock(&pp_m) == 0);
	for (int i = 0; i < PINGPONGS; i++) {
		while (pp_turn != me)
			T_CHECK(weft_cond_wait(&pp_c, &pp_m) == 0);
		pp_turn = !me;
		T_CHECK(weft_cond_signal(&pp_c) == 0);
	}
	T_CHECK(weft_mutex_unlock(&pp_m) == 0);
	return NULL;
}

static void *pp_sem(void *arg)
{
	int me = (int)(intptr_t)arg;
	for (int i = 0; i < PINGPONGS; i++) {
		T_CHECK(weft_sem_wait(&pp_s[me]) == 0);
		T_CHECK(weft_sem_post(&pp_s[!me]) == 0);
	}
	return NULL;
}

START_TEST(pingpong_cond_million)
{
	setup();
	pp_turn = 0;
	spawn_join(2, pp_cond);
	ck_assert_int_eq(pp_turn, 0);
	ASSERT_NO_FAILS();
}
END_TEST

START_TEST(pingpong_sem_million)
{
	setup();
	ck_assert_int_eq(weft_sem_init(&pp_s[0], 1), 0);
	ck_assert_int_eq(weft_sem_init(&pp_s[1], 0), 0);
	spawn_join(2, pp_sem);
	int v0, v1;
	ck_assert_int_eq(weft_sem_getvalue(&pp_s[0], &v0), 0);
	ck_assert_int_eq(weft_sem_getvalue(&pp_s[1], &v1), 0);
	ck_assert_int_eq(v0, 1);   /* the one token went round and came back */
	ck_assert_int_eq(v1, 0);
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- timed waits racing with wake-ups -------------------------------------- */

/* Semaphore: waiters with deadlines close to the posts.  Every wait returns
 * exactly 0 or ETIMEDOUT, and tokens are conserved: posts == successful
 * waits + what is left in the count. */
#define TR_WAITERS 12
#define TR_POSTERS 4
#define TR_POSTS   3000
static weft_sem_t tr_s;
static atomic_long tr_ok, tr_timeout, tr_posted;
static atomic_int tr_posters_done;

static void *tr_sem_waiter(void *arg)
{
	uint32_t seed = 31u * (uint32_t)((intptr_t)arg + 11);
	while (atomic_load(&tr_posters_done) < TR_POSTERS) {
		struct timespec dl = ts_in(rnd(&seed) % 60000);   /* 0..60 us */
		int r = weft_sem_timedwait(&tr_s, &dl);
		T_CHECK(r == 0 || r == ETIMEDOUT);
		atomic_fetch_add(r == 0 ? &tr_ok : &tr_timeout, 1);
	}
	return NULL;
}

static void *tr_sem_poster(void *arg)
{
	uint32_t seed = 17u * (uint32_t)((intptr_t)arg + 5);
	for (int k = 0; k < TR_POSTS; k++) {
		uint32_t d = rnd(&seed) % 60000;
		if (d < 20000)
			spin_ns(d);
		else
			weft_sleep_ns(d);
		T_CHECK(weft_sem_post(&tr_s) == 0);
		atomic_fetch_add(&tr_posted, 1);
	}
	atomic_fetch_add(&tr_posters_done, 1);
	return NULL;
}

static void *tr_sem_spawner(void *arg)
{
	intptr_t i = (intptr_t)arg;
	return i < TR_WAITERS ? tr_sem_waiter(arg) : tr_sem_poster((void *)(i - TR_WAITERS));
}

START_TEST(timed_sem_races_conserve_tokens)
{
	setup();
	ck_assert_int_eq(weft_sem_init(&tr_s, 0), 0);
	spawn_join(TR_WAITERS + TR_POSTERS, tr_sem_spawner);
	long left = 0;
	while (weft_sem_trywait(&tr_s) == 0)
		left++;
	ck_assert_int_eq(atomic_load(&tr_posted), (long)TR_POSTERS * TR_POSTS);
	ck_assert_int_eq(atomic_load(&tr_ok) + left, atomic_load(&tr_posted));
	ck_assert_int_gt(atomic_load(&tr_timeout), 0);   /* both outcomes happened */
	ck_assert_int_gt(atomic_load(&tr_ok), 0);
	ck_assert_int_eq(weft_sem_destroy(&tr_s), 0);
	ASSERT_NO_FAILS();
}
END_TEST

/* Condition variable: tokens produced one at a time, each followed by ONE
 * signal.  Untimed consumers sleep until a signal; timed consumers race
 * short deadlines against the signals and do NOT re-check the predicate
 * after ETIMEDOUT.  If a signal were swallowed by a waiter that returns
 * ETIMEDOUT, an untimed consumer would sleep with a token left and the
 * test would hang.  Every token is consumed exactly once. */
#define TC_UNTIMED 6
#define TC_TIMED   6
#define TC_TOKENS  20000
static weft_mutex_t tc_m = WEFT_MUTEX_INITIALIZER;
static weft_cond_t tc_c = WEFT_COND_INITIALIZER;
static long tc_tokens, tc_consumed, tc_produced;
static atomic_long tc_ok, tc_timeout;

static void *tc_untimed(void *arg)
{
	(void)arg;
	T_CHECK(weft_mutex_lock(&tc_m) == 0);
	for (;;) {
		while (tc_tokens == 0 && tc_consumed < TC_TOKENS)
			T_CHECK(weft_cond_wait(&tc_c, &tc_m) == 0);
		if (tc_consumed == TC_TOKENS)
			break;
		tc_tokens--;
		if (++tc_consumed == TC_TOKENS)
			T_CHECK(weft_cond_broadcast(&tc_c) == 0);
	}
	T_CHECK(weft_mutex_unlock(&tc_m) == 0);
	return NULL;
}

static void *tc_timed(void *arg)
{
	uint32_t seed = 101u * (uint32_t)((intptr_t)arg + 1);
	T_CHECK(weft_mutex_lock(&tc_m) == 0);
	while (tc_consumed < TC_TOKENS) {
		struct timespec dl = ts_in(rnd(&seed) % 40000);
		int r = weft_cond_timedwait(&tc_c, &tc_m, &dl);
		T_CHECK(r == 0 || r == ETIMEDOUT);
		atomic_fetch_add(r == 0 ? &tc_ok : &tc_timeout, 1);
		if (r == 0 && tc_tokens > 0) {
			tc_tokens--;
			if (++tc_consumed == TC_TOKENS)
				T_CHECK(weft_cond_broadcast(&tc_c) == 0);
		}
		if (r == ETIMEDOUT) {
			/* Leave without looking at the tokens, then come back. */
			T_CHECK(weft_mutex_unlock(&tc_m) == 0);
			if (rnd(&seed) % 4 == 0)
				weft_yield();
			T_CHECK(weft_mutex_lock(&tc_m) == 0);
		}
	}
	T_CHECK(weft_mutex_unlock(&tc_m) == 0);
	return NULL;
}

static void *tc_producer(void *arg)
{
	uint32_t seed = 7919u * (uint32_t)((intptr_t)arg + 1);
	for (int k = 0; k < TC_TOKENS; k++) {
		uint32_t d = rnd(&seed) % 30000;
		if (d < 15000)
			spin_ns(d);
		else
			weft_sleep_ns(d);
		T_CHECK(weft_mutex_lock(&tc_m) == 0);
		tc_tokens++;
		tc_produced++;
		T_CHECK(weft_cond_signal(&tc_c) == 0);
		T_CHECK(weft_mutex_unlock(&tc_m) == 0);
	}
	return NULL;
}

static void *tc_spawner(void *arg)
{
	intptr_t i = (intptr_t)arg;
	if (i < TC_UNTIMED)
		return tc_untimed(arg);
	if (i < TC_UNTIMED + TC_TIMED)
		return tc_timed(arg);
	return tc_producer(arg);
}

START_TEST(timed_cond_races_lose_no_signal)
{
	setup();
	spawn_join(TC_UNTIMED + TC_TIMED + 1, tc_spawner);
	ck_assert_int_eq(tc_produced, TC_TOKENS);
	ck_assert_int_eq(tc_consumed, TC_TOKENS);
	ck_assert_int_eq(tc_tokens, 0);
	ck_assert_int_gt(atomic_load(&tc_timeout), 0);
	ASSERT_NO_FAILS();
}
END_TEST

/* Mutex: timed lockers racing with unlocks, including handoffs in
 * starvation mode (holders keep it > 1 ms now and then).  Every timedlock
 * returns 0 or ETIMEDOUT; the protected counter equals the acquisitions. */
static weft_mutex_t tm_m = WEFT_MUTEX_INITIALIZER;
static long tm_counter;
static atomic_long tm_acquired, tm_timeouts;

static void *tm_worker(void *arg)
{
	int me = (int)(intptr_t)arg;
	uint32_t seed = 4099u * (uint32_t)(me + 1);
	for (int k = 0; k < 400; k++) {
		int r;
		if (me % 4 == 0) {
			r = weft_mutex_lock(&tm_m);
		} else {
			struct timespec dl = ts_in(rnd(&seed) % 300000);
			r = weft_mutex_timedlock(&tm_m, &dl);
		}
		T_CHECK(r == 0 || r == ETIMEDOUT);
		if (r) {
			atomic_fetch_add(&tm_timeouts, 1);
			continue;
		}
		tm_counter++;
		atomic_fetch_add(&tm_acquired, 1);
		uint32_t d = rnd(&seed) % 64;
		if (d == 0)
			spin_ns(1500000);       /* long hold: waiters starve > 1 ms */
		else if (d < 8)
			weft_yield();
		T_CHECK(weft_mutex_unlock(&tm_m) == 0);
	}
	return NULL;
}

START_TEST(timed_mutex_races)
{
	setup();
	spawn_join(40, tm_worker);
	ck_assert_int_eq(tm_counter, atomic_load(&tm_acquired));
	ck_assert_int_eq(atomic_load(&tm_acquired) + atomic_load(&tm_timeouts), 40 * 400);
	ck_assert_int_gt(atomic_load(&tm_timeouts), 0);
	ck_assert_int_eq(weft_mutex_destroy(&tm_m), 0);   /* state fully clean */
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- starvation bound ------------------------------------------------------ */

/*
 * Heavy contention: many threads lock, work briefly inside, unlock and
 * immediately lock again.  With barging alone a waiter can lose the race
 * indefinitely; the 1 ms handoff bounds every thread's longest wait.
 *
 * The wait is measured in the CPU time the process got (both workers
 * together), not in wall time: on a shared machine the kernel may keep a
 * worker off the CPU for tens of milliseconds, which no user-level lock
 * can prevent (measured during development: at load 10 on 2 cores, the
 * workers spent 80-95 % of their time in the kernel's run queue).  CPU time
 * only advances while our workers run, so it bounds what the mutex and the
 * scheduler do: the bound is 50 ms per worker.  Preemption is off between
 * the two clock reads (the caller may still park), so the time a thread
 * spends preempted in its own loop is not counted as waiting.
 */
#define ST_THREADS 200
#define ST_RUN_NS  400000000ull   /* 0.4 s */
#define ST_BOUND_NS (50000000ull * 2)   /* 50 ms on each of the 2 workers */
static weft_mutex_t st_m = WEFT_MUTEX_INITIALIZER;
static uint64_t st_end;
static long st_inside_count;
static atomic_ullong st_max_wait;
static atomic_long st_rounds;

static void *st_worker(void *arg)
{
	(void)arg;
	uint64_t mx = 0;
	while (now_ns() < st_end) {
		weft_preempt_disable();
		uint64_t c0 = cpu_ns();
		T_CHECK(weft_mutex_lock(&st_m) == 0);
		uint64_t w = cpu_ns() - c0;
		if (w > mx)
			mx = w;
		st_inside_count++;
		spin_ns(500);
		T_CHECK(weft_mutex_unlock(&st_m) == 0);
		weft_preempt_enable();
		atomic_fetch_add(&st_rounds, 1);
	}
	unsigned long long cur = atomic_load(&st_max_wait);
	while (mx > cur && !atomic_compare_exchange_weak(&st_max_wait, &cur, mx))
		;
	return NULL;
}

/* The classic starvation pattern: hogs (one per worker) that re-lock right
 * after unlocking, never preempted, and a victim that is woken but would
 * always find the mutex taken again by a running hog. */
static atomic_int st_stop;
static void *st_hog(void *arg)
{
	(void)arg;
	while (!atomic_load(&st_stop)) {
		weft_preempt_disable();
		T_CHECK(weft_mutex_lock(&st_m) == 0);
		spin_ns(2000);
		T_CHECK(weft_mutex_unlock(&st_m) == 0);
		weft_preempt_enable();
	}
	return NULL;
}

START_TEST(mutex_starvation_bounded)
{
	setup();
	st_end = now_ns() + ST_RUN_NS;
	weft_t w[ST_THREADS];
	spawn_queued(ST_THREADS, w, st_worker);
	for (int i = 0; i < ST_THREADS; i++)
		join(w[i]);
	ck_assert_int_eq(st_inside_count, atomic_load(&st_rounds));
	ck_assert_msg(atomic_load(&st_max_wait) < ST_BOUND_NS, "longest wait %llu ns of CPU",
	              (unsigned long long)atomic_load(&st_max_wait));

	weft_t h[2];
	spawn_queued(2, h, st_hog);
	uint64_t worst = 0;
	for (int k = 0; k < 200; k++) {
		weft_preempt_disable();
		uint64_t c0 = cpu_ns();
		ck_assert_int_eq(weft_mutex_lock(&st_m), 0);
		uint64_t w = cpu_ns() - c0;
		weft_preempt_enable();
		if (w > worst)
			worst = w;
		ck_assert_int_eq(weft_mutex_unlock(&st_m), 0);
		/* Stay runnable between rounds (a sleep would need a timer,
		 * which without preemption only runs when a hog's worker idles
		 * or yields). */
		spin_ns(100000);
	}
	atomic_store(&st_stop, 1);
	join(h[0]);
	join(h[1]);
	ck_assert_msg(worst < ST_BOUND_NS, "victim's longest wait %llu ns of CPU",
	              (unsigned long long)worst);
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- foreign threads and green threads wake each other ------------------ */

/* Foreign threads and green threads exchange tokens through one mutex and
 * two condition variables, each side consuming only what the other side
 * produced, so both kinds block and wake each other thousands of times:
 * nothing is lost (a lost wake-up hangs the exchange). */
static weft_mutex_t fc_m = WEFT_MUTEX_INITIALIZER;
static weft_cond_t fc_cv[2] = { WEFT_COND_INITIALIZER, WEFT_COND_INITIALIZER };
static long fc_tokens[2], fc_taken[2];
#define FC_ROUNDS 2000
#define FC_EACH 4

static void fc_body(int side)
{
	int other = !side;
	for (int i = 0; i < FC_ROUNDS; i++) {
		T_CHECK(weft_mutex_lock(&fc_m) == 0);
		fc_tokens[other]++;
		T_CHECK(weft_cond_signal(&fc_cv[other]) == 0);
		while (fc_tokens[side] == 0)
			T_CHECK(weft_cond_wait(&fc_cv[side], &fc_m) == 0);
		fc_tokens[side]--;
		fc_taken[side]++;
		T_CHECK(weft_mutex_unlock(&fc_m) == 0);
	}
}

static void *fc_green(void *a) { (void)a; fc_body(0); return NULL; }
static void *fc_foreign(void *a) { (void)a; fc_body(1); return NULL; }

START_TEST(foreign_and_green_contend)
{
	setup();
	pthread_t pt[FC_EACH];
	for (int i = 0; i < FC_EACH; i++)
		ck_assert_int_eq(pthread_create(&pt[i], NULL, fc_foreign, NULL), 0);
	spawn_join(FC_EACH, fc_green);
	for (int i = 0; i < FC_EACH; i++)
		ck_assert_int_eq(pthread_join(pt[i], NULL), 0);
	ASSERT_NO_FAILS();
	ck_assert_int_eq(fc_taken[0], (long)FC_EACH * FC_ROUNDS);
	ck_assert_int_eq(fc_taken[1], (long)FC_EACH * FC_ROUNDS);
	ck_assert_int_eq(fc_tokens[0] + fc_tokens[1], 0);
}
END_TEST

/* ---- timed rwlock waits racing with grants ----------------------------------- */

/* Timed and untimed readers and writers race with short deadlines: every
 * wait returns 0 or ETIMEDOUT, a writer is always alone, and the lock ends
 * free with nobody queued (no grant lost to a timeout). */
static weft_rwlock_t trs_l = WEFT_RWLOCK_INITIALIZER;
static atomic_int trs_readers, trs_writers, trs_ok, trs_timeouts;

static void *trs_body(void *arg)
{
	uint32_t seed = 13u * (uint32_t)((intptr_t)arg + 1);
	for (int i = 0; i < 300; i++) {
		bool write = rnd(&seed) % 4 == 0, timed = rnd(&seed) % 2;
		struct timespec dl = ts_in(rnd(&seed) % 200000);
		int e = write ? (timed ? weft_rwlock_timedwrlock(&trs_l, &dl) : weft_rwlock_wrlock(&trs_l))
		              : (timed ? weft_rwlock_timedrdlock(&trs_l, &dl) : weft_rwlock_rdlock(&trs_l));
		if (e == ETIMEDOUT && timed) {
			atomic_fetch_add(&trs_timeouts, 1);
			continue;
		}
		T_CHECK(e == 0);
		if (e)
			continue;
		atomic_fetch_add(&trs_ok, 1);
		if (write) {
			T_CHECK(atomic_fetch_add(&trs_writers, 1) == 0);
			T_CHECK(atomic_load(&trs_readers) == 0);
			spin_ns(rnd(&seed) % 20000);
			atomic_fetch_sub(&trs_writers, 1);
		} else {
			atomic_fetch_add(&trs_readers, 1);
			T_CHECK(atomic_load(&trs_writers) == 0);
			spin_ns(rnd(&seed) % 20000);
			atomic_fetch_sub(&trs_readers, 1);
		}
		T_CHECK(weft_rwlock_unlock(&trs_l) == 0);
	}
	return NULL;
}

START_TEST(rwlock_timed_stress)
{
	setup();
	spawn_join(32, trs_body);
	ASSERT_NO_FAILS();
	ck_assert_int_eq(atomic_load(&trs_ok) + atomic_load(&trs_timeouts), 32 * 300);
	ck_assert_int_eq(wait_count(&trs_l._wq), 0);
	ck_assert_int_eq(weft_rwlock_trywrlock(&trs_l), 0);
	ck_assert_int_eq(weft_rwlock_unlock(&trs_l), 0);
	ck_assert_int_eq(weft_rwlock_destroy(&trs_l), 0);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *sync_wakeups_suite(void)
{
	Suite *s = suite_create("sync-wakeups");
	TCase *tc;

	tc = tcase_create("pingpong");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, pingpong_cond_million);
	tcase_add_test(tc, pingpong_sem_million);
	suite_add_tcase(s, tc);

	tc = tcase_create("timed");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, timed_sem_races_conserve_tokens);
	tcase_add_test(tc, timed_cond_races_lose_no_signal);
	tcase_add_test(tc, timed_mutex_races);
	tcase_add_test(tc, rwlock_timed_stress);
	suite_add_tcase(s, tc);

	tc = tcase_create("foreign");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, foreign_and_green_contend);
	suite_add_tcase(s, tc);

	tc = tcase_create("starvation");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, mutex_starvation_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(sync_wakeups_suite());
}
