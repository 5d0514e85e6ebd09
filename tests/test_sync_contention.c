/*
 * test_sync_contention.c — the invariants of the Synchronization section
 * (src/sync) under contention, with hundreds of threads on 2 workers.
 *
 * Covered: bank transfers conserve money (lock, trylock and timedlock
 * mixed, all three mutex types), a bounded buffer on condition variables
 * (signal and broadcast) loses and duplicates nothing, rwlock readers never
 * see half a write and writers get in while readers never stop, barrier
 * phases line up with exactly one serial thread each, once runs once while
 * concurrent callers block, spin and ticket locks exclude.  Objects
 * destroyed right after a wake-up.
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
#include "sched/sched_internal.h"   /* white-box: preempt_off of the caller */
#include "sync_helpers.h"

/* ---- bank transfers: mutexes under contention ----------------------------- */

#define BANK_ACCOUNTS 16
#define BANK_THREADS  200
#define BANK_START    1000
#define BANK_ROUNDS   600
static weft_mutex_t bank_m[BANK_ACCOUNTS];
static long bank_bal[BANK_ACCOUNTS];
static atomic_int bank_running;
static atomic_long bank_timeouts;

/* Lock account i: plain lock, trylock-then-lock, or timedlock with a short
 * deadline retried, so every path of the mutex is exercised. */
static void bank_lock(int i, uint32_t *seed)
{
	switch (rnd(seed) % 4) {
	case 0:
		if (weft_mutex_trylock(&bank_m[i]) == 0)
			return;
		/* fallthrough */
	case 1:
		T_CHECK(weft_mutex_lock(&bank_m[i]) == 0);
		return;
	default:
		/* Deadlines long enough to reach the head of a queue of ~200
		 * now and then; a timed-out waiter rejoins at the tail. */
		for (;;) {
			struct timespec dl = ts_in(200000 + rnd(seed) % 2000000);
			int r = weft_mutex_timedlock(&bank_m[i], &dl);
			if (r == 0)
				return;
			T_CHECK(r == ETIMEDOUT);
			atomic_fetch_add(&bank_timeouts, 1);
		}
	}
}

static void *bank_worker(void *arg)
{
	uint32_t seed = 2654435761u * (uint32_t)((intptr_t)arg + 1);
	for (int k = 0; k < BANK_ROUNDS; k++) {
		int a = (int)(rnd(&seed) % BANK_ACCOUNTS), b = (int)(rnd(&seed) % BANK_ACCOUNTS);
		if (a == b)
			continue;
		int lo = a < b ? a : b, hi = a < b ? b : a;
		bank_lock(lo, &seed);
		bank_lock(hi, &seed);
		long amt = (long)(rnd(&seed) % 100);
		if (bank_bal[a] >= amt) {
			bank_bal[a] -= amt;
			if (rnd(&seed) % 8 == 0)
				weft_yield();   /* hold both across a switch */
			bank_bal[b] += amt;
		}
		T_CHECK(weft_mutex_unlock(&bank_m[hi]) == 0);
		T_CHECK(weft_mutex_unlock(&bank_m[lo]) == 0);
	}
	return NULL;
}

static void *bank_auditor(void *arg)
{
	(void)arg;
	while (atomic_load(&bank_running)) {
		long sum = 0;
		for (int i = 0; i < BANK_ACCOUNTS; i++)
			T_CHECK(weft_mutex_lock(&bank_m[i]) == 0);
		for (int i = 0; i < BANK_ACCOUNTS; i++)
			sum += bank_bal[i];
		for (int i = BANK_ACCOUNTS - 1; i >= 0; i--)
			T_CHECK(weft_mutex_unlock(&bank_m[i]) == 0);
		T_CHECK(sum == (long)BANK_ACCOUNTS * BANK_START);
		nap_ms(1);
	}
	return NULL;
}

START_TEST(bank_transfers_conserve_total)
{
	setup();
	weft_mutexattr_t a;
	ck_assert_int_eq(weft_mutexattr_init(&a), 0);
	for (int i = 0; i < BANK_ACCOUNTS; i++) {
		/* Mix the types: the checked ones take the slower paths. */
		ck_assert_int_eq(weft_mutexattr_settype(&a, i % 3), 0);
		ck_assert_int_eq(weft_mutex_init(&bank_m[i], &a), 0);
		bank_bal[i] = BANK_START;
	}
	atomic_store(&bank_running, 1);
	weft_t aud[2] = { spawn(bank_auditor, NULL), spawn(bank_auditor, NULL) };
	spawn_join(BANK_THREADS, bank_worker);
	atomic_store(&bank_running, 0);
	join(aud[0]);
	join(aud[1]);
	long sum = 0;
	for (int i = 0; i < BANK_ACCOUNTS; i++) {
		sum += bank_bal[i];
		ck_assert_int_eq(weft_mutex_destroy(&bank_m[i]), 0);   /* nothing left inside */
	}
	ck_assert_int_eq(sum, (long)BANK_ACCOUNTS * BANK_START);
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- bounded buffer: condition variables under contention ------------------ */

#define BB_CAP       8
#define BB_PRODUCERS 100
#define BB_CONSUMERS 100
#define BB_PER_PROD  1000
#define BB_TOTAL     (BB_PRODUCERS * BB_PER_PROD)
static weft_mutex_t bb_m = WEFT_MUTEX_INITIALIZER;
static weft_cond_t bb_not_full = WEFT_COND_INITIALIZER, bb_not_empty = WEFT_COND_INITIALIZER;
static int bb_buf[BB_CAP], bb_head, bb_len, bb_consumed;
static unsigned char bb_seen[BB_TOTAL];
static int bb_use_broadcast;

static void bb_wake(weft_cond_t *c)
{
	T_CHECK((bb_use_broadcast ? weft_cond_broadcast(c) : weft_cond_signal(c)) == 0);
}

static void *bb_producer(void *arg)
{
	int p = (int)(intptr_t)arg;
	for (int k = 0; k < BB_PER_PROD; k++) {
		T_CHECK(weft_mutex_lock(&bb_m) == 0);
		while (bb_len == BB_CAP)
			T_CHECK(weft_cond_wait(&bb_not_full, &bb_m) == 0);
		bb_buf[(bb_head + bb_len) % BB_CAP] = p * BB_PER_PROD + k;
		bb_len++;
		bb_wake(&bb_not_empty);
		T_CHECK(weft_mutex_unlock(&bb_m) == 0);
	}
	return NULL;
}

static void *bb_consumer(void *arg)
{
	(void)arg;
	T_CHECK(weft_mutex_lock(&bb_m) == 0);
	for (;;) {
		while (bb_len == 0 && bb_consumed < BB_TOTAL)
			T_CHECK(weft_cond_wait(&bb_not_empty, &bb_m) == 0);
		if (bb_len == 0)
			break;   /* everything consumed */
		int id = bb_buf[bb_head];
		bb_head = (bb_head + 1) % BB_CAP;
		bb_len--;
		T_CHECK(id >= 0 && id < BB_TOTAL);
		if (id >= 0 && id < BB_TOTAL)
			bb_seen[id]++;
		if (++bb_consumed == BB_TOTAL)
			T_CHECK(weft_cond_broadcast(&bb_not_empty) == 0);   /* release the rest */
		bb_wake(&bb_not_full);
		T_CHECK(weft_mutex_unlock(&bb_m) == 0);
		T_CHECK(weft_mutex_lock(&bb_m) == 0);
	}
	T_CHECK(weft_mutex_unlock(&bb_m) == 0);
	return NULL;
}

static void *bb_spawner(void *arg)
{
	intptr_t i = (intptr_t)arg;
	return i < BB_CONSUMERS ? bb_consumer(NULL) : bb_producer((void *)(i - BB_CONSUMERS));
}

static void bounded_buffer(int broadcast)
{
	setup();
	bb_use_broadcast = broadcast;
	bb_head = bb_len = bb_consumed = 0;
	memset(bb_seen, 0, sizeof bb_seen);
	spawn_join(BB_CONSUMERS + BB_PRODUCERS, bb_spawner);
	ck_assert_int_eq(bb_consumed, BB_TOTAL);
	ck_assert_int_eq(bb_len, 0);
	for (int i = 0; i < BB_TOTAL; i++)
		ck_assert_msg(bb_seen[i] == 1, "item %d seen %d times", i, bb_seen[i]);
	ck_assert_int_eq(weft_cond_destroy(&bb_not_empty), 0);
	ck_assert_int_eq(weft_cond_destroy(&bb_not_full), 0);
	ck_assert_int_eq(weft_mutex_destroy(&bb_m), 0);
	ASSERT_NO_FAILS();
}

START_TEST(bounded_buffer_signal) { bounded_buffer(0); }
END_TEST
START_TEST(bounded_buffer_broadcast) { bounded_buffer(1); }
END_TEST

/* ---- rwlock consistency and writer progress ------------------------------- */

#define RW_SLOTS 16
static weft_rwlock_t rw_l = WEFT_RWLOCK_INITIALIZER;
static long rw_data[RW_SLOTS];
static atomic_int rw_readers_in, rw_max_readers, rw_writers_in;
static atomic_int rw_stop;
static atomic_long rw_reads, rw_writes;

static void *rw_reader(void *arg)
{
	uint32_t seed = 977u * (uint32_t)((intptr_t)arg + 3);
	while (!atomic_load(&rw_stop)) {
		int r = (rnd(&seed) & 7) ? weft_rwlock_rdlock(&rw_l) : weft_rwlock_tryrdlock(&rw_l);
		if (r == EBUSY)
			continue;
		T_CHECK(r == 0);
		int in = atomic_fetch_add(&rw_readers_in, 1) + 1;
		int mx = atomic_load(&rw_max_readers);
		while (in > mx && !atomic_compare_exchange_weak(&rw_max_readers, &mx, in))
			;
		T_CHECK(atomic_load(&rw_writers_in) == 0);
		long v = rw_data[0];
		if (rnd(&seed) % 4 == 0)
			weft_yield();
		for (int i = 1; i < RW_SLOTS; i++)
			T_CHECK(rw_data[i] == v);   /* never half a write */
		atomic_fetch_sub(&rw_readers_in, 1);
		T_CHECK(weft_rwlock_unlock(&rw_l) == 0);
		atomic_fetch_add(&rw_reads, 1);
	}
	return NULL;
}

static void *rw_writer(void *arg)
{
	uint32_t seed = 131u * (uint32_t)((intptr_t)arg + 7);
	for (int k = 0; k < 300; k++) {
		int r = (rnd(&seed) & 3) ? weft_rwlock_wrlock(&rw_l) : weft_rwlock_trywrlock(&rw_l);
		if (r == EBUSY) {
			k--;
			weft_yield();
			continue;
		}
		T_CHECK(r == 0);
		T_CHECK(atomic_fetch_add(&rw_writers_in, 1) == 0);
		T_CHECK(atomic_load(&rw_readers_in) == 0);
		long v = rw_data[0] + 1;
		for (int i = 0; i < RW_SLOTS; i++) {
			rw_data[i] = v;
			if (i == RW_SLOTS / 2 && rnd(&seed) % 2)
				weft_yield();   /* a reader would now see half a write */
		}
		atomic_fetch_sub(&rw_writers_in, 1);
		T_CHECK(weft_rwlock_unlock(&rw_l) == 0);
		atomic_fetch_add(&rw_writes, 1);
	}
	return NULL;
}

START_TEST(rwlock_readers_never_see_half_writes)
{
	setup();
	enum { READERS = 200, WRITERS = 8 };
	weft_t r[READERS], w[WRITERS];
	for (int i = 0; i < READERS; i++)
		r[i] = spawn(rw_reader, (void *)(intptr_t)i);
	/* Writers must get in although readers never stop: writers do not
	 * starve.  They finish while all readers keep going. */
	for (int i = 0; i < WRITERS; i++)
		w[i] = spawn(rw_writer, (void *)(intptr_t)i);
	for (int i = 0; i < WRITERS; i++)
		join(w[i]);
	atomic_store(&rw_stop, 1);
	for (int i = 0; i < READERS; i++)
		join(r[i]);
	ck_assert_int_eq(atomic_load(&rw_writes), WRITERS * 300);
	ck_assert_int_eq(rw_data[0], WRITERS * 300);
	ck_assert_int_gt(atomic_load(&rw_reads), 0);
	ck_assert_int_gt(atomic_load(&rw_max_readers), 1);   /* readers do share */
	ck_assert_int_eq(weft_rwlock_destroy(&rw_l), 0);
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- barrier phases ------------------------------------------------------- */

#define BAR_THREADS 100
#define BAR_PHASES  300
static weft_barrier_t bar_b;
static atomic_int bar_phase_of[BAR_THREADS];
static atomic_int bar_serial[BAR_PHASES];

static void *bar_worker(void *arg)
{
	int me = (int)(intptr_t)arg;
	uint32_t seed = 7u * (uint32_t)(me + 1);
	for (int p = 0; p < BAR_PHASES; p++) {
		atomic_store(&bar_phase_of[me], p);
		if (rnd(&seed) % 16 == 0)
			weft_yield();
		int r = weft_barrier_wait(&bar_b);
		T_CHECK(r == 0 || r == WEFT_BARRIER_SERIAL_THREAD);
		if (r == WEFT_BARRIER_SERIAL_THREAD)
			atomic_fetch_add(&bar_serial[p], 1);
		/* Everyone has reached phase p; nobody is past p + 1. */
		for (int j = 0; j < BAR_THREADS; j++) {
			int q = atomic_load(&bar_phase_of[j]);
			T_CHECK(q == p || q == p + 1);
		}
	}
	return NULL;
}

START_TEST(barrier_phases_line_up)
{
	setup();
	ck_assert_int_eq(weft_barrier_init(&bar_b, BAR_THREADS), 0);
	spawn_join(BAR_THREADS, bar_worker);
	for (int p = 0; p < BAR_PHASES; p++)
		ck_assert_msg(atomic_load(&bar_serial[p]) == 1, "phase %d: %d serial threads", p,
		              atomic_load(&bar_serial[p]));
	ck_assert_int_eq(weft_barrier_destroy(&bar_b), 0);
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- once with concurrent callers ----------------------------------------- */

static weft_once_t on_once = WEFT_ONCE_INIT;
static atomic_int on_calls, on_in_fn;
static int on_value;

static void on_init(void)
{
	atomic_fetch_add(&on_calls, 1);
	atomic_store(&on_in_fn, 1);
	nap_ms(30);   /* parks: the others must wait, not run it again */
	on_value = 42;
}

static void *on_caller(void *arg)
{
	(void)arg;
	T_CHECK(weft_once(&on_once, on_init) == 0);
	T_CHECK(on_value == 42);   /* returned only after fn finished */
	return NULL;
}

START_TEST(once_runs_once_others_block)
{
	setup();
	weft_t t[200];
	for (int i = 0; i < 200; i++)
		t[i] = spawn(on_caller, NULL);
	for (int i = 0; i < 200; i++)
		join(t[i]);
	ck_assert_int_eq(atomic_load(&on_calls), 1);
	ck_assert_int_eq(on_value, 42);
	ck_assert_int_eq(weft_once(&on_once, on_init), 0);
	ck_assert_int_eq(atomic_load(&on_calls), 1);
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- spin and ticket locks under contention -------------------------------- */

static weft_spinlock_t sc_s = WEFT_SPINLOCK_INITIALIZER;
static weft_ticketlock_t sc_t = WEFT_TICKETLOCK_INITIALIZER;
static long sc_counter_s, sc_counter_t;
static atomic_int sc_inside;

static void *sc_worker(void *arg)
{
	int me = (int)(intptr_t)arg;
	for (int k = 0; k < 2000; k++) {
		if (me % 2) {
			T_CHECK(weft_spin_lock(&sc_s) == 0);
			T_CHECK(atomic_fetch_add(&sc_inside, 1) == 0);
			T_CHECK(wf_current()->preempt_off > 0);
			sc_counter_s++;
			atomic_fetch_sub(&sc_inside, 1);
			T_CHECK(weft_spin_unlock(&sc_s) == 0);
		} else {
			T_CHECK(weft_ticket_acquire(&sc_t) == 0);
			T_CHECK(wf_current()->preempt_off > 0);
			sc_counter_t++;
			if (k % 64 == 0)
				weft_yield();   /* a holder that yields: waiters must yield too */
			T_CHECK(weft_ticket_release(&sc_t) == 0);
		}
	}
	T_CHECK(wf_current()->preempt_off == 0);
	return NULL;
}

/* 16 threads: a FIFO spin lock with many more waiters than workers pays a
 * trip round the run queue per handoff (the next ticket's owner must get a
 * worker), which is what the yielding is for, but slow to test in bulk. */
START_TEST(spin_and_ticket_mutual_exclusion)
{
	setup();
	spawn_join(16, sc_worker);
	ck_assert_int_eq(sc_counter_s, 8 * 2000);
	ck_assert_int_eq(sc_counter_t, 8 * 2000);
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- lifetime: destroy right after the wake-up ---------------------------- */

/* The object lives on the waiter's stack; the waiter destroys it as soon as
 * its wait returns, while the waker may still be finishing its call. */
struct lt_pair { weft_sem_t s; weft_mutex_t m; weft_barrier_t b; };
static void *lt_poster(void *arg)
{
	struct lt_pair *p = arg;
	T_CHECK(weft_sem_post(&p->s) == 0);
	T_CHECK(weft_mutex_lock(&p->m) == 0);
	T_CHECK(weft_mutex_unlock(&p->m) == 0);
	int r = weft_barrier_wait(&p->b);
	T_CHECK(r == 0 || r == WEFT_BARRIER_SERIAL_THREAD);
	return NULL;
}

START_TEST(destroy_right_after_wakeup)
{
	setup();
	for (int k = 0; k < 5000; k++) {
		struct lt_pair p;
		ck_assert_int_eq(weft_sem_init(&p.s, 0), 0);
		ck_assert_int_eq(weft_mutex_init(&p.m, NULL), 0);
		ck_assert_int_eq(weft_barrier_init(&p.b, 2), 0);
		ck_assert_int_eq(weft_mutex_lock(&p.m), 0);
		weft_t t = spawn(lt_poster, &p);
		ck_assert_int_eq(weft_sem_wait(&p.s), 0);
		ck_assert_int_eq(weft_sem_destroy(&p.s), 0);
		ck_assert_int_eq(weft_mutex_unlock(&p.m), 0);
		int r = weft_barrier_wait(&p.b);
		ck_assert(r == 0 || r == WEFT_BARRIER_SERIAL_THREAD);
		ck_assert_int_eq(weft_barrier_destroy(&p.b), 0);
		join(t);
		ck_assert_int_eq(weft_mutex_destroy(&p.m), 0);
	}
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *sync_contention_suite(void)
{
	Suite *s = suite_create("sync-contention");
	TCase *tc;

	tc = tcase_create("contention");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, bank_transfers_conserve_total);
	tcase_add_test(tc, bounded_buffer_signal);
	tcase_add_test(tc, bounded_buffer_broadcast);
	tcase_add_test(tc, rwlock_readers_never_see_half_writes);
	tcase_add_test(tc, barrier_phases_line_up);
	tcase_add_test(tc, once_runs_once_others_block);
	tcase_add_test(tc, spin_and_ticket_mutual_exclusion);
	tcase_add_test(tc, destroy_right_after_wakeup);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(sync_contention_suite());
}
