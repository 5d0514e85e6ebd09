/*
 * test_sync_errors.c — the error contract of the Synchronization section of
 * the API (src/sync), and its semantics one call at a time.
 *
 * Covered: every error code of every call (EINVAL, EPERM, EDEADLK, EBUSY,
 * EAGAIN, ETIMEDOUT, EOVERFLOW); calls from a kernel thread that is not a
 * green thread (it blocks in the kernel on every object, green threads and
 * it wake each other, owner checks see it as a thread of its own); timed
 * rwlock waits (a writer that times out leaves the readers behind it
 * queued, in order); static initializers without init calls; mutex
 * ownership by green thread (main locks before any thread exists, as the
 * process's first weft call); destroy while held or waited on; a waiter
 * signalled before its deadline returns 0 even if the mutex comes later;
 * broadcast without the mutex held; the holder of spin and ticket locks
 * not preemptible.
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

/* ---- mutex errors --------------------------------------------------------- */

START_TEST(mutex_errors)
{
	setup();
	weft_mutex_t m;
	weft_mutexattr_t a;
	struct timespec ts = ts_in(0);

	ck_assert_int_eq(weft_mutex_init(NULL, NULL), EINVAL);
	ck_assert_int_eq(weft_mutex_lock(NULL), EINVAL);
	ck_assert_int_eq(weft_mutex_trylock(NULL), EINVAL);
	ck_assert_int_eq(weft_mutex_timedlock(NULL, &ts), EINVAL);
	ck_assert_int_eq(weft_mutex_unlock(NULL), EINVAL);
	ck_assert_int_eq(weft_mutex_destroy(NULL), EINVAL);

	/* attributes */
	ck_assert_int_eq(weft_mutexattr_init(NULL), EINVAL);
	memset(&a, 0xa5, sizeof a);
	ck_assert_int_eq(weft_mutexattr_settype(&a, WEFT_MUTEX_RECURSIVE), EINVAL);
	ck_assert_int_eq(weft_mutex_init(&m, &a), EINVAL);          /* uninitialized attr */
	ck_assert_int_eq(weft_mutexattr_init(&a), 0);
	int type = -1;
	ck_assert_int_eq(weft_mutexattr_gettype(&a, &type), 0);
	ck_assert_int_eq(type, WEFT_MUTEX_DEFAULT);
	ck_assert_int_eq(weft_mutexattr_gettype(&a, NULL), EINVAL);
	ck_assert_int_eq(weft_mutexattr_settype(&a, 3), EINVAL);
	ck_assert_int_eq(weft_mutexattr_settype(&a, -1), EINVAL);
	ck_assert_int_eq(weft_mutexattr_settype(&a, WEFT_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(weft_mutexattr_gettype(&a, &type), 0);
	ck_assert_int_eq(type, WEFT_MUTEX_ERRORCHECK);

	/* normal */
	ck_assert_int_eq(weft_mutex_init(&m, NULL), 0);
	ck_assert_int_eq(weft_mutex_unlock(&m), EPERM);             /* not locked */
	ck_assert_int_eq(weft_mutex_lock(&m), 0);
	ck_assert_int_eq(weft_mutex_trylock(&m), EBUSY);
	ck_assert_int_eq(weft_mutex_destroy(&m), EBUSY);
	ck_assert_int_eq(weft_mutex_unlock(&m), 0);
	ck_assert_int_eq(weft_mutex_trylock(&m), 0);
	ck_assert_int_eq(weft_mutex_unlock(&m), 0);
	ck_assert_int_eq(weft_mutex_destroy(&m), 0);
	ck_assert_int_eq(weft_mutex_destroy(&m), EINVAL);           /* twice */
	ck_assert_int_eq(weft_mutex_lock(&m), EINVAL);              /* destroyed */
	ck_assert_int_eq(weft_mutex_trylock(&m), EINVAL);
	ck_assert_int_eq(weft_mutex_unlock(&m), EINVAL);
	ck_assert_int_eq(weft_mutex_timedlock(&m, &ts), EINVAL);
	ck_assert_int_eq(weft_mutex_init(&m, NULL), 0);             /* reusable */
	ck_assert_int_eq(weft_mutex_lock(&m), 0);
	ck_assert_int_eq(weft_mutex_unlock(&m), 0);

	/* bad timespecs, checked first */
	struct timespec bad1 = { 1, -1 }, bad2 = { 1, 1000000000L };
	ck_assert_int_eq(weft_mutex_timedlock(&m, NULL), EINVAL);
	ck_assert_int_eq(weft_mutex_timedlock(&m, &bad1), EINVAL);
	ck_assert_int_eq(weft_mutex_timedlock(&m, &bad2), EINVAL);
	/* a past deadline still locks a free mutex, and times out a held one */
	struct timespec past = { 0, 5 };
	ck_assert_int_eq(weft_mutex_timedlock(&m, &past), 0);
	ck_assert_int_eq(weft_mutex_timedlock(&m, &past), ETIMEDOUT);  /* normal: no EDEADLK */
	ck_assert_int_eq(weft_mutex_unlock(&m), 0);
	ck_assert_int_eq(weft_mutex_destroy(&m), 0);

	/* error-checking */
	ck_assert_int_eq(weft_mutex_init(&m, &a), 0);
	ck_assert_int_eq(weft_mutex_unlock(&m), EPERM);
	ck_assert_int_eq(weft_mutex_lock(&m), 0);
	ck_assert_int_eq(weft_mutex_lock(&m), EDEADLK);
	ck_assert_int_eq(weft_mutex_timedlock(&m, &past), EDEADLK);
	ck_assert_int_eq(weft_mutex_trylock(&m), EBUSY);
	ck_assert_int_eq(weft_mutex_unlock(&m), 0);
	ck_assert_int_eq(weft_mutex_unlock(&m), EPERM);
	ck_assert_int_eq(weft_mutex_destroy(&m), 0);

	/* recursive */
	ck_assert_int_eq(weft_mutexattr_settype(&a, WEFT_MUTEX_RECURSIVE), 0);
	ck_assert_int_eq(weft_mutex_init(&m, &a), 0);
	ck_assert_int_eq(weft_mutex_lock(&m), 0);
	ck_assert_int_eq(weft_mutex_lock(&m), 0);
	ck_assert_int_eq(weft_mutex_trylock(&m), 0);
	ck_assert_int_eq(weft_mutex_timedlock(&m, &past), 0);
	ck_assert_int_eq(weft_mutex_destroy(&m), EBUSY);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(weft_mutex_unlock(&m), 0);
	ck_assert_int_eq(weft_mutex_unlock(&m), EPERM);
	/* EAGAIN when the lock count would overflow (white-box: set the
	 * private depth to its maximum rather than locking 2^32 times). */
	ck_assert_int_eq(weft_mutex_lock(&m), 0);
	m._depth = UINT_MAX;
	ck_assert_int_eq(weft_mutex_lock(&m), EAGAIN);
	ck_assert_int_eq(weft_mutex_trylock(&m), EAGAIN);
	m._depth = 0;
	ck_assert_int_eq(weft_mutex_unlock(&m), 0);
	ck_assert_int_eq(weft_mutex_destroy(&m), 0);
	ck_assert_int_eq(weft_mutexattr_destroy(&a), 0);
	ck_assert_int_eq(weft_mutexattr_destroy(&a), EINVAL);

	/* unknown type */
	ck_assert_int_eq(weft_mutex_init(&m, NULL), 0);
	m._type = 42;
	ck_assert_int_eq(weft_mutex_lock(&m), EINVAL);
	ck_assert_int_eq(weft_mutex_trylock(&m), EINVAL);
	ck_assert_int_eq(weft_mutex_unlock(&m), EINVAL);
}
END_TEST

/* Static initializers, and ownership by green thread: main locks before any
 * other thread exists (the lock is the process's first weft call and
 * initializes the runtime); other threads then see it held by main. */
static weft_mutex_t s_norm = WEFT_MUTEX_INITIALIZER;
static weft_mutex_t s_echk = WEFT_MUTEX_ERRORCHECK_INITIALIZER;
static weft_mutex_t s_rec = WEFT_MUTEX_RECURSIVE_INITIALIZER;

static void *owner_probe(void *arg)
{
	(void)arg;
	T_CHECK(weft_mutex_trylock(&s_echk) == EBUSY);
	T_CHECK(weft_mutex_unlock(&s_echk) == EPERM);
	T_CHECK(weft_mutex_trylock(&s_rec) == EBUSY);
	T_CHECK(weft_mutex_unlock(&s_rec) == EPERM);
	T_CHECK(weft_mutex_trylock(&s_norm) == EBUSY);
	uint64_t t0 = now_ns();
	struct timespec dl = ts_at(t0 + 20000000);
	T_CHECK(weft_mutex_timedlock(&s_echk, &dl) == ETIMEDOUT);
	T_CHECK(now_ns() >= t0 + 20000000);
	return NULL;
}

START_TEST(mutex_owner_is_green_thread)
{
	setup_env();
	ck_assert_int_eq(weft_mutex_lock(&s_echk), 0);   /* first weft call */
	ck_assert_int_eq(weft_workers(), 2);
	ck_assert_int_eq(weft_mutex_lock(&s_rec), 0);
	ck_assert_int_eq(weft_mutex_lock(&s_rec), 0);
	ck_assert_int_eq(weft_mutex_lock(&s_norm), 0);
	join(spawn(owner_probe, NULL));
	ASSERT_NO_FAILS();
	ck_assert_int_eq(weft_mutex_lock(&s_echk), EDEADLK);
	ck_assert_int_eq(weft_mutex_unlock(&s_echk), 0);
	ck_assert_int_eq(weft_mutex_unlock(&s_rec), 0);
	ck_assert_int_eq(weft_mutex_unlock(&s_rec), 0);
	ck_assert_int_eq(weft_mutex_unlock(&s_norm), 0);
	ck_assert_int_eq(weft_mutex_destroy(&s_echk), 0);
}
END_TEST

/* destroy while a thread waits: EBUSY; the waiter gets it after unlock. */
static weft_mutex_t dw_m = WEFT_MUTEX_INITIALIZER;
static atomic_int dw_started;
static void *dw_waiter(void *arg)
{
	(void)arg;
	atomic_store(&dw_started, 1);
	T_CHECK(weft_mutex_lock(&dw_m) == 0);
	T_CHECK(weft_mutex_unlock(&dw_m) == 0);
	return NULL;
}

START_TEST(mutex_destroy_busy)
{
	setup();
	ck_assert_int_eq(weft_mutex_lock(&dw_m), 0);
	weft_t t = spawn(dw_waiter, NULL);
	wait_flag(&dw_started);
	while (!wait_count(&dw_m._wq))
		weft_yield();   /* until it is parked (white-box) */
	ck_assert_int_eq(weft_mutex_destroy(&dw_m), EBUSY);
	ck_assert_int_eq(weft_mutex_unlock(&dw_m), 0);
	join(t);
	ck_assert_int_eq(weft_mutex_destroy(&dw_m), 0);
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- calls from a kernel thread that is not a green thread --------------- */

/*
 * A foreign kernel thread (here a plain pthread) uses every object like a
 * green thread: it blocks in the kernel where a green thread would park,
 * and the two sides wake each other.  The steps are sequenced by `fk_step`
 * so that each blocking call really blocks: the other side waits until
 * the blocked one is counted in the object's queue (white-box) before it
 * releases it.
 */
static weft_mutex_t fk_m = WEFT_MUTEX_INITIALIZER;
static weft_mutex_t fk_em = WEFT_MUTEX_ERRORCHECK_INITIALIZER;
static weft_mutex_t fk_rm = WEFT_MUTEX_RECURSIVE_INITIALIZER;
static weft_cond_t fk_c = WEFT_COND_INITIALIZER;
static weft_rwlock_t fk_l = WEFT_RWLOCK_INITIALIZER;
static weft_spinlock_t fk_s = WEFT_SPINLOCK_INITIALIZER;
static weft_ticketlock_t fk_t = WEFT_TICKETLOCK_INITIALIZER;
static weft_sem_t fk_sem;
static weft_barrier_t fk_b;
static weft_once_t fk_once = WEFT_ONCE_INIT;
static atomic_int fk_step, fk_in_fn, fk_ran, fk_flag;

static void fk_wait_step(int n)
{
	while (atomic_load(&fk_step) < n) {
		if (weft_worker_self() >= 0)
			weft_yield();
		else
			sched_yield();
	}
}

static void fk_wait_queued(const weft_waitq_ *q)
{
	while (!wait_count(q)) {
		if (weft_worker_self() >= 0)
			weft_yield();
		else
			sched_yield();
	}
}

static void fk_fn(void)
{
	atomic_store(&fk_in_fn, 1);
	atomic_fetch_add(&fk_ran, 1);
	fk_wait_queued(&fk_once._wq);   /* the foreign caller blocks meanwhile */
}

static void *foreign_main(void *arg)
{
	(void)arg;
	T_CHECK(weft_self() == WEFT_NULL);
	T_CHECK(weft_worker_self() == -1);
	/* Uncontended: lock, trylock, timedlock, owner checks. */
	T_CHECK(weft_mutex_lock(&fk_m) == 0);
	T_CHECK(weft_mutex_trylock(&fk_m) == EBUSY);
	T_CHECK(weft_mutex_unlock(&fk_m) == 0);
	struct timespec dl = ts_in(1000000);
	T_CHECK(weft_mutex_timedlock(&fk_m, &dl) == 0);
	T_CHECK(weft_mutex_unlock(&fk_m) == 0);
	T_CHECK(weft_mutex_lock(&fk_em) == 0);
	T_CHECK(weft_mutex_lock(&fk_em) == EDEADLK);
	T_CHECK(weft_mutex_lock(&fk_rm) == 0);
	T_CHECK(weft_mutex_lock(&fk_rm) == 0);
	atomic_store(&fk_step, 1);          /* green: unlock fk_em/fk_rm -> EPERM */
	fk_wait_step(2);
	T_CHECK(weft_mutex_unlock(&fk_em) == 0);
	T_CHECK(weft_mutex_unlock(&fk_rm) == 0);
	T_CHECK(weft_mutex_unlock(&fk_rm) == 0);
	T_CHECK(weft_mutex_unlock(&fk_rm) == EPERM);

	/* Step 3: green holds fk_m; we block on it until it unlocks. */
	fk_wait_step(3);
	T_CHECK(weft_mutex_lock(&fk_m) == 0);
	T_CHECK(atomic_load(&fk_flag) == 1);   /* written by the holder */
	/* Step 4: now we hold it and the green thread blocks on it. */
	atomic_store(&fk_step, 4);
	fk_wait_queued(&fk_m._wq);
	atomic_store(&fk_flag, 2);
	T_CHECK(weft_mutex_unlock(&fk_m) == 0);

	/* Step 5: wait on a condition; the green thread signals. */
	T_CHECK(weft_mutex_lock(&fk_m) == 0);
	atomic_store(&fk_step, 5);
	while (atomic_load(&fk_flag) != 3)
		T_CHECK(weft_cond_wait(&fk_c, &fk_m) == 0);
	dl = ts_in(2000000);
	T_CHECK(weft_cond_timedwait(&fk_c, &fk_m, &dl) == ETIMEDOUT);
	T_CHECK(weft_mutex_unlock(&fk_m) == 0);

	/* Step 6: semaphore, both directions, and a timeout. */
	dl = ts_in(2000000);
	T_CHECK(weft_sem_timedwait(&fk_sem, &dl) == ETIMEDOUT);
	atomic_store(&fk_step, 6);
	T_CHECK(weft_sem_wait(&fk_sem) == 0);      /* posted by the green thread */
	fk_wait_step(7);                           /* it waits on fk_sem now */
	fk_wait_queued(&fk_sem._wq);
	T_CHECK(weft_sem_post(&fk_sem) == 0);

	/* Step 8: the green thread holds a read lock; our write lock waits. */
	fk_wait_step(8);
	T_CHECK(weft_rwlock_wrlock(&fk_l) == 0);
	T_CHECK(atomic_load(&fk_flag) == 4);
	T_CHECK(weft_rwlock_unlock(&fk_l) == 0);
	T_CHECK(weft_rwlock_rdlock(&fk_l) == 0);
	T_CHECK(weft_rwlock_unlock(&fk_l) == 0);

	/* Spin and ticket locks, and their owner checks. */
	T_CHECK(weft_spin_lock(&fk_s) == 0);
	T_CHECK(weft_spin_lock(&fk_s) == EDEADLK);
	T_CHECK(weft_spin_unlock(&fk_s) == 0);
	T_CHECK(weft_spin_unlock(&fk_s) == EPERM);
	T_CHECK(weft_ticket_acquire(&fk_t) == 0);
	T_CHECK(weft_ticket_release(&fk_t) == 0);
	T_CHECK(weft_ticket_release(&fk_t) == EPERM);

	/* Step 9: a barrier of two, one green and one foreign. */
	atomic_store(&fk_step, 9);
	int r = weft_barrier_wait(&fk_b);
	T_CHECK(r == 0 || r == WEFT_BARRIER_SERIAL_THREAD);
	if (r == WEFT_BARRIER_SERIAL_THREAD)
		atomic_fetch_add(&fk_flag, 10);

	/* Step 10: once, while the green thread runs fn: we block. */
	fk_wait_step(10);
	while (!atomic_load(&fk_in_fn))
		sched_yield();
	T_CHECK(weft_once(&fk_once, fk_fn) == 0);
	T_CHECK(atomic_load(&fk_ran) == 1);

	/* Thread calls that need a green thread still say so. */
	T_CHECK(weft_yield() == EPERM);
	T_CHECK(weft_sleep_ns(1000) == EPERM);
	return NULL;
}

static void *fk_once_runner(void *arg)
{
	(void)arg;
	T_CHECK(weft_once(&fk_once, fk_fn) == 0);
	return NULL;
}

START_TEST(foreign_kernel_thread_blocks_in_kernel)
{
	setup();
	ck_assert_int_eq(weft_sem_init(&fk_sem, 0), 0);
	ck_assert_int_eq(weft_barrier_init(&fk_b, 2), 0);
	pthread_t pt;
	ck_assert_int_eq(pthread_create(&pt, NULL, foreign_main, NULL), 0);
	fk_wait_step(1);
	ck_assert_int_eq(weft_mutex_unlock(&fk_em), EPERM);   /* the foreign thread holds it */
	ck_assert_int_eq(weft_mutex_unlock(&fk_rm), EPERM);
	ck_assert_int_eq(weft_mutex_trylock(&fk_em), EBUSY);
	ck_assert_int_eq(weft_mutex_lock(&fk_m), 0);
	atomic_store(&fk_step, 2);
	/* Step 3: the foreign thread blocks on fk_m, which we hold. */
	atomic_store(&fk_step, 3);
	fk_wait_queued(&fk_m._wq);
	atomic_store(&fk_flag, 1);
	ck_assert_int_eq(weft_mutex_unlock(&fk_m), 0);
	/* Step 4: we block (park) on fk_m held by the foreign thread. */
	fk_wait_step(4);
	ck_assert_int_eq(weft_mutex_lock(&fk_m), 0);
	ck_assert_int_eq(atomic_load(&fk_flag), 2);
	ck_assert_int_eq(weft_mutex_unlock(&fk_m), 0);
	/* Step 5: signal the foreign waiter. */
	fk_wait_step(5);
	fk_wait_queued(&fk_c._wq);
	ck_assert_int_eq(weft_mutex_lock(&fk_m), 0);
	atomic_store(&fk_flag, 3);
	ck_assert_int_eq(weft_cond_signal(&fk_c), 0);
	ck_assert_int_eq(weft_mutex_unlock(&fk_m), 0);
	/* Step 6/7: semaphore. */
	fk_wait_step(6);
	fk_wait_queued(&fk_sem._wq);
	ck_assert_int_eq(weft_sem_post(&fk_sem), 0);
	atomic_store(&fk_step, 7);
	ck_assert_int_eq(weft_sem_wait(&fk_sem), 0);   /* posted by the foreign thread */
	/* Step 8: hold a read lock while the foreign writer waits. */
	ck_assert_int_eq(weft_rwlock_rdlock(&fk_l), 0);
	atomic_store(&fk_step, 8);
	fk_wait_queued(&fk_l._wq);
	atomic_store(&fk_flag, 4);
	ck_assert_int_eq(weft_rwlock_unlock(&fk_l), 0);
	/* Step 9: barrier. */
	fk_wait_step(9);
	int r = weft_barrier_wait(&fk_b);
	ck_assert(r == 0 || r == WEFT_BARRIER_SERIAL_THREAD);
	if (r == WEFT_BARRIER_SERIAL_THREAD)
		atomic_fetch_add(&fk_flag, 10);
	/* Step 10: once. */
	weft_t runner = spawn(fk_once_runner, NULL);
	atomic_store(&fk_step, 10);
	join(runner);
	ck_assert_int_eq(pthread_join(pt, NULL), 0);
	ASSERT_NO_FAILS();
	ck_assert_int_eq(atomic_load(&fk_flag), 14);   /* exactly one serial thread */
	ck_assert_int_eq(weft_barrier_destroy(&fk_b), 0);
	ck_assert_int_eq(weft_sem_destroy(&fk_sem), 0);
	ck_assert_int_eq(weft_mutex_destroy(&fk_m), 0);
}
END_TEST

/* ---- condition variable errors and semantics ----------------------------- */

static weft_cond_t ce_c = WEFT_COND_INITIALIZER;
static weft_mutex_t ce_m = WEFT_MUTEX_INITIALIZER;
static weft_mutex_t ce_m2 = WEFT_MUTEX_INITIALIZER;
static atomic_int ce_waiting;

static void *ce_waiter(void *arg)
{
	(void)arg;
	T_CHECK(weft_mutex_lock(&ce_m) == 0);
	atomic_store(&ce_waiting, 1);
	T_CHECK(weft_cond_wait(&ce_c, &ce_m) == 0);
	T_CHECK(weft_mutex_unlock(&ce_m) == 0);
	return NULL;
}

START_TEST(cond_errors)
{
	setup();
	weft_cond_t c;
	weft_condattr_t ca;
	weft_mutex_t m;
	weft_mutexattr_t a;
	struct timespec ts = ts_in(1000000), bad = { 0, 1000000000L };

	ck_assert_int_eq(weft_condattr_init(NULL), EINVAL);
	memset(&ca, 0x5a, sizeof ca);
	ck_assert_int_eq(weft_cond_init(&c, &ca), EINVAL);
	ck_assert_int_eq(weft_condattr_init(&ca), 0);
	ck_assert_int_eq(weft_cond_init(&c, &ca), 0);
	ck_assert_int_eq(weft_condattr_destroy(&ca), 0);
	ck_assert_int_eq(weft_condattr_destroy(&ca), EINVAL);
	ck_assert_int_eq(weft_cond_init(NULL, NULL), EINVAL);
	ck_assert_int_eq(weft_cond_wait(NULL, &ce_m), EINVAL);
	ck_assert_int_eq(weft_cond_wait(&c, NULL), EINVAL);
	ck_assert_int_eq(weft_cond_timedwait(&c, &ce_m, NULL), EINVAL);
	ck_assert_int_eq(weft_cond_timedwait(&c, &ce_m, &bad), EINVAL);
	ck_assert_int_eq(weft_cond_signal(NULL), EINVAL);
	ck_assert_int_eq(weft_cond_broadcast(NULL), EINVAL);
	ck_assert_int_eq(weft_cond_destroy(NULL), EINVAL);

	/* waiting without holding the mutex: EPERM, for every type */
	ck_assert_int_eq(weft_mutexattr_init(&a), 0);
	ck_assert_int_eq(weft_mutexattr_settype(&a, WEFT_MUTEX_ERRORCHECK), 0);
	ck_assert_int_eq(weft_mutex_init(&m, &a), 0);
	ck_assert_int_eq(weft_cond_wait(&c, &m), EPERM);
	ck_assert_int_eq(weft_cond_wait(&c, &ce_m), EPERM);
	ck_assert_int_eq(weft_cond_timedwait(&c, &m, &ts), EPERM);

	/* timeouts: ETIMEDOUT, mutex held again afterwards */
	ck_assert_int_eq(weft_mutex_lock(&m), 0);
	struct timespec past = { 0, 1 };
	ck_assert_int_eq(weft_cond_timedwait(&c, &m, &past), ETIMEDOUT);
	ck_assert_int_eq(weft_mutex_lock(&m), EDEADLK);        /* still ours */
	uint64_t t0 = now_ns();
	struct timespec dl = ts_at(t0 + 20000000);
	ck_assert_int_eq(weft_cond_timedwait(&c, &m, &dl), ETIMEDOUT);
	ck_assert_uint_ge(now_ns(), t0 + 20000000);
	ck_assert_int_eq(weft_mutex_unlock(&m), 0);
	ck_assert_int_eq(weft_mutex_unlock(&m), EPERM);

	/* a recursive mutex gets its depth back */
	weft_mutex_t r;
	ck_assert_int_eq(weft_mutexattr_settype(&a, WEFT_MUTEX_RECURSIVE), 0);
	ck_assert_int_eq(weft_mutex_init(&r, &a), 0);
	ck_assert_int_eq(weft_mutex_lock(&r), 0);
	ck_assert_int_eq(weft_mutex_lock(&r), 0);
	ck_assert_int_eq(weft_mutex_lock(&r), 0);
	ck_assert_int_eq(weft_cond_timedwait(&c, &r, &past), ETIMEDOUT);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_mutex_unlock(&r), 0);
	ck_assert_int_eq(weft_mutex_unlock(&r), EPERM);

	/* destroy with a waiter: EBUSY; waiters with two mutexes: EINVAL */
	weft_t t = spawn(ce_waiter, NULL);
	wait_flag(&ce_waiting);
	ck_assert_int_eq(weft_mutex_lock(&ce_m), 0);          /* it is parked now */
	ck_assert_int_eq(weft_cond_destroy(&ce_c), EBUSY);
	ck_assert_int_eq(weft_mutex_lock(&ce_m2), 0);
	ck_assert_int_eq(weft_cond_wait(&ce_c, &ce_m2), EINVAL);
	ck_assert_int_eq(weft_mutex_unlock(&ce_m2), 0);
	ck_assert_int_eq(weft_cond_signal(&ce_c), 0);
	ck_assert_int_eq(weft_mutex_unlock(&ce_m), 0);
	join(t);
	ck_assert_int_eq(weft_cond_destroy(&ce_c), 0);
	ck_assert_int_eq(weft_cond_destroy(&ce_c), EINVAL);
	ck_assert_int_eq(weft_cond_signal(&ce_c), EINVAL);
	ck_assert_int_eq(weft_cond_broadcast(&ce_c), EINVAL);
	ck_assert_int_eq(weft_mutex_lock(&ce_m), 0);
	ck_assert_int_eq(weft_cond_wait(&ce_c, &ce_m), EINVAL);
	ck_assert_int_eq(weft_mutex_unlock(&ce_m), 0);
	ck_assert_int_eq(weft_cond_init(&ce_c, NULL), 0);
	ck_assert_int_eq(weft_cond_signal(&ce_c), 0);          /* nobody waits */
	ck_assert_int_eq(weft_cond_destroy(&c), 0);
	ASSERT_NO_FAILS();
}
END_TEST

/* A waiter signalled (moved onto the mutex's queue) before its deadline,
 * while the signaller keeps the mutex past that deadline, took the signal:
 * it returns 0, not ETIMEDOUT.  Same for a broadcast to many. */
static weft_cond_t rq_c = WEFT_COND_INITIALIZER;
static weft_mutex_t rq_m = WEFT_MUTEX_ERRORCHECK_INITIALIZER;
static atomic_int rq_waiting, rq_zero, rq_timedout;
static int rq_flag;

static void *rq_waiter(void *arg)
{
	uint64_t dl = (uint64_t)(uintptr_t)arg;
	struct timespec ts = ts_at(dl);
	T_CHECK(weft_mutex_lock(&rq_m) == 0);
	atomic_fetch_add(&rq_waiting, 1);
	int r = 0;
	while (!rq_flag && r == 0)
		r = weft_cond_timedwait(&rq_c, &rq_m, &ts);
	T_CHECK(r == 0 || r == ETIMEDOUT);
	atomic_fetch_add(r == 0 ? &rq_zero : &rq_timedout, 1);
	T_CHECK(weft_mutex_unlock(&rq_m) == 0);   /* held again, by us */
	return NULL;
}

START_TEST(cond_signal_then_timeout_returns_zero)
{
	setup();
	for (int broadcast = 0; broadcast < 2; broadcast++) {
		int n = broadcast ? 20 : 1;
		/* A round counts only if the signal went out before the deadline
		 * (no timer can fire before it); under heavy load it may not,
		 * then the round is repeated with more slack. */
		for (uint64_t slack = 30000000;; slack *= 2) {
			atomic_store(&rq_waiting, 0);
			atomic_store(&rq_zero, 0);
			atomic_store(&rq_timedout, 0);
			rq_flag = 0;
			uint64_t dl = now_ns() + slack;
			weft_t t[20];
			for (int i = 0; i < n; i++)
				t[i] = spawn(rq_waiter, (void *)(uintptr_t)dl);
			while (atomic_load(&rq_waiting) < n)
				weft_yield();
			ck_assert_int_eq(weft_mutex_lock(&rq_m), 0);   /* all are parked */
			rq_flag = 1;
			if (broadcast)
				ck_assert_int_eq(weft_cond_broadcast(&rq_c), 0);
			else
				ck_assert_int_eq(weft_cond_signal(&rq_c), 0);
			bool in_time = now_ns() < dl;
			/* Keep the mutex until well past their deadline. */
			while (now_ns() < dl + 20000000)
				nap_ms(5);
			ck_assert_int_eq(weft_mutex_unlock(&rq_m), 0);
			for (int i = 0; i < n; i++)
				join(t[i]);
			ck_assert_int_eq(atomic_load(&rq_zero) + atomic_load(&rq_timedout), n);
			if (!in_time)
				continue;
			ck_assert_int_eq(atomic_load(&rq_zero), n);
			ck_assert_int_eq(atomic_load(&rq_timedout), 0);
			break;
		}
	}
	/* Unsignalled: ETIMEDOUT. */
	atomic_store(&rq_timedout, 0);
	rq_flag = 0;
	join(spawn(rq_waiter, (void *)(uintptr_t)(now_ns() + 10000000)));
	ck_assert_int_eq(atomic_load(&rq_timedout), 1);
	ASSERT_NO_FAILS();
}
END_TEST

/* Broadcast while the mutex is free: every waiter still wakes (the oldest
 * is woken, the rest moved to the mutex and woken one by one). */
static weft_cond_t bf_c = WEFT_COND_INITIALIZER;
static weft_mutex_t bf_m = WEFT_MUTEX_INITIALIZER;
static int bf_go, bf_waiting, bf_done;

static void *bf_waiter(void *arg)
{
	(void)arg;
	T_CHECK(weft_mutex_lock(&bf_m) == 0);
	bf_waiting++;
	while (!bf_go)
		T_CHECK(weft_cond_wait(&bf_c, &bf_m) == 0);
	bf_done++;
	T_CHECK(weft_mutex_unlock(&bf_m) == 0);
	return NULL;
}

START_TEST(cond_broadcast_unlocked)
{
	setup();
	for (int round = 0; round < 50; round++) {
		bf_go = bf_waiting = bf_done = 0;
		weft_t t[64];
		for (int i = 0; i < 64; i++)
			t[i] = spawn(bf_waiter, NULL);
		for (;;) {
			weft_mutex_lock(&bf_m);
			int w = bf_waiting;
			if (w == 64)
				bf_go = 1;
			weft_mutex_unlock(&bf_m);
			if (w == 64)
				break;
			weft_yield();
		}
		ck_assert_int_eq(weft_cond_broadcast(&bf_c), 0);   /* mutex free */
		for (int i = 0; i < 64; i++)
			join(t[i]);
		ck_assert_int_eq(bf_done, 64);
	}
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- semaphore errors ----------------------------------------------------- */

static weft_sem_t se_s;
static atomic_int se_waiting;
static void *se_waiter(void *arg)
{
	(void)arg;
	atomic_store(&se_waiting, 1);
	T_CHECK(weft_sem_wait(&se_s) == 0);
	return NULL;
}

START_TEST(sem_errors)
{
	setup();
	weft_sem_t s;
	int v = -1;
	struct timespec bad = { 0, -5 }, past = { 0, 1 };
	memset(&s, 0, sizeof s);
	ck_assert_int_eq(weft_sem_wait(&s), EINVAL);                 /* never initialized */
	ck_assert_int_eq(weft_sem_post(&s), EINVAL);
	ck_assert_int_eq(weft_sem_trywait(&s), EINVAL);
	ck_assert_int_eq(weft_sem_getvalue(&s, &v), EINVAL);
	ck_assert_int_eq(weft_sem_destroy(&s), EINVAL);
	ck_assert_int_eq(weft_sem_init(NULL, 0), EINVAL);
	ck_assert_int_eq(weft_sem_init(&s, WEFT_SEM_VALUE_MAX + 1u), EINVAL);
	ck_assert_int_eq(weft_sem_wait(NULL), EINVAL);
	ck_assert_int_eq(weft_sem_post(NULL), EINVAL);

	ck_assert_int_eq(weft_sem_init(&s, 2), 0);
	ck_assert_int_eq(weft_sem_getvalue(&s, NULL), EINVAL);
	ck_assert_int_eq(weft_sem_getvalue(&s, &v), 0);
	ck_assert_int_eq(v, 2);
	ck_assert_int_eq(weft_sem_timedwait(&s, NULL), EINVAL);
	ck_assert_int_eq(weft_sem_timedwait(&s, &bad), EINVAL);
	ck_assert_int_eq(weft_sem_timedwait(&s, &past), 0);         /* available: no timeout */
	ck_assert_int_eq(weft_sem_wait(&s), 0);
	ck_assert_int_eq(weft_sem_trywait(&s), EAGAIN);
	ck_assert_int_eq(weft_sem_timedwait(&s, &past), ETIMEDOUT);
	uint64_t t0 = now_ns();
	struct timespec dl = ts_at(t0 + 15000000);
	ck_assert_int_eq(weft_sem_timedwait(&s, &dl), ETIMEDOUT);
	ck_assert_uint_ge(now_ns(), t0 + 15000000);
	ck_assert_int_eq(weft_sem_post(&s), 0);
	ck_assert_int_eq(weft_sem_trywait(&s), 0);
	ck_assert_int_eq(weft_sem_destroy(&s), 0);
	ck_assert_int_eq(weft_sem_post(&s), EINVAL);                 /* destroyed */
	ck_assert_int_eq(weft_sem_destroy(&s), EINVAL);

	ck_assert_int_eq(weft_sem_init(&s, WEFT_SEM_VALUE_MAX), 0);
	ck_assert_int_eq(weft_sem_post(&s), EOVERFLOW);
	ck_assert_int_eq(weft_sem_getvalue(&s, &v), 0);
	ck_assert_int_eq(v, (int)WEFT_SEM_VALUE_MAX);
	ck_assert_int_eq(weft_sem_trywait(&s), 0);
	ck_assert_int_eq(weft_sem_post(&s), 0);
	ck_assert_int_eq(weft_sem_destroy(&s), 0);

	/* destroy with a waiter */
	ck_assert_int_eq(weft_sem_init(&se_s, 0), 0);
	weft_t t = spawn(se_waiter, NULL);
	wait_flag(&se_waiting);
	while (!wait_count(&se_s._wq))
		weft_yield();   /* until it is parked (white-box) */
	ck_assert_int_eq(weft_sem_destroy(&se_s), EBUSY);
	ck_assert_int_eq(weft_sem_post(&se_s), 0);
	join(t);
	ck_assert_int_eq(weft_sem_getvalue(&se_s, &v), 0);
	ck_assert_int_eq(v, 0);                                       /* handed, not counted */
	ck_assert_int_eq(weft_sem_destroy(&se_s), 0);
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- rwlock errors -------------------------------------------------------- */

static weft_rwlock_t re_l = WEFT_RWLOCK_INITIALIZER;
static void *re_other(void *arg)
{
	(void)arg;
	T_CHECK(weft_rwlock_unlock(&re_l) == EPERM);     /* main holds the write lock */
	T_CHECK(weft_rwlock_tryrdlock(&re_l) == EBUSY);
	T_CHECK(weft_rwlock_trywrlock(&re_l) == EBUSY);
	return NULL;
}

START_TEST(rwlock_errors)
{
	setup();
	weft_rwlock_t l;
	weft_rwlockattr_t a;
	ck_assert_int_eq(weft_rwlockattr_init(NULL), EINVAL);
	memset(&a, 0x11, sizeof a);
	ck_assert_int_eq(weft_rwlock_init(&l, &a), EINVAL);
	ck_assert_int_eq(weft_rwlockattr_init(&a), 0);
	ck_assert_int_eq(weft_rwlock_init(&l, &a), 0);
	ck_assert_int_eq(weft_rwlockattr_destroy(&a), 0);
	ck_assert_int_eq(weft_rwlockattr_destroy(&a), EINVAL);
	ck_assert_int_eq(weft_rwlock_init(NULL, NULL), EINVAL);
	ck_assert_int_eq(weft_rwlock_rdlock(NULL), EINVAL);
	ck_assert_int_eq(weft_rwlock_wrlock(NULL), EINVAL);
	ck_assert_int_eq(weft_rwlock_tryrdlock(NULL), EINVAL);
	ck_assert_int_eq(weft_rwlock_trywrlock(NULL), EINVAL);
	ck_assert_int_eq(weft_rwlock_unlock(NULL), EINVAL);
	ck_assert_int_eq(weft_rwlock_destroy(NULL), EINVAL);

	ck_assert_int_eq(weft_rwlock_unlock(&l), EPERM);              /* not held */
	ck_assert_int_eq(weft_rwlock_wrlock(&l), 0);
	ck_assert_int_eq(weft_rwlock_wrlock(&l), EDEADLK);
	ck_assert_int_eq(weft_rwlock_rdlock(&l), EDEADLK);
	ck_assert_int_eq(weft_rwlock_trywrlock(&l), EBUSY);
	ck_assert_int_eq(weft_rwlock_tryrdlock(&l), EBUSY);
	ck_assert_int_eq(weft_rwlock_destroy(&l), EBUSY);
	ck_assert_int_eq(weft_rwlock_unlock(&l), 0);
	ck_assert_int_eq(weft_rwlock_unlock(&l), EPERM);

	ck_assert_int_eq(weft_rwlock_rdlock(&l), 0);
	ck_assert_int_eq(weft_rwlock_tryrdlock(&l), 0);
	ck_assert_int_eq(weft_rwlock_trywrlock(&l), EBUSY);
	ck_assert_int_eq(weft_rwlock_destroy(&l), EBUSY);
	ck_assert_int_eq(weft_rwlock_unlock(&l), 0);
	ck_assert_int_eq(weft_rwlock_unlock(&l), 0);
	ck_assert_int_eq(weft_rwlock_unlock(&l), EPERM);
	/* EAGAIN at the reader limit (white-box: set the private count). */
	l._state = ((1u << 29) - 1) << 2;
	ck_assert_int_eq(weft_rwlock_rdlock(&l), EAGAIN);
	ck_assert_int_eq(weft_rwlock_tryrdlock(&l), EAGAIN);
	l._state = 0;
	ck_assert_int_eq(weft_rwlock_destroy(&l), 0);
	ck_assert_int_eq(weft_rwlock_destroy(&l), EINVAL);
	ck_assert_int_eq(weft_rwlock_rdlock(&l), EINVAL);
	ck_assert_int_eq(weft_rwlock_wrlock(&l), EINVAL);
	ck_assert_int_eq(weft_rwlock_unlock(&l), EINVAL);

	/* static initializer; the write lock belongs to main */
	ck_assert_int_eq(weft_rwlock_wrlock(&re_l), 0);
	join(spawn(re_other, NULL));
	ck_assert_int_eq(weft_rwlock_unlock(&re_l), 0);
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- timed rwlocks --------------------------------------------------------- */

static weft_rwlock_t tr_l = WEFT_RWLOCK_INITIALIZER;
static atomic_int tr_got;

static void *tr_timed_writer(void *arg)
{
	(void)arg;
	struct timespec dl = ts_in(20000000);   /* 20 ms: the reader holds longer */
	T_CHECK(weft_rwlock_timedwrlock(&tr_l, &dl) == ETIMEDOUT);
	return NULL;
}

static void *tr_reader(void *arg)
{
	(void)arg;
	T_CHECK(weft_rwlock_rdlock(&tr_l) == 0);   /* queued behind the writer */
	atomic_store(&tr_got, 1);
	T_CHECK(weft_rwlock_unlock(&tr_l) == 0);
	return NULL;
}

START_TEST(rwlock_timed_waits)
{
	setup();
	struct timespec bad = { 0, 1000000000L }, past = { 0, 0 };
	ck_assert_int_eq(weft_rwlock_timedrdlock(&tr_l, NULL), EINVAL);
	ck_assert_int_eq(weft_rwlock_timedwrlock(&tr_l, &bad), EINVAL);
	/* Free: a past deadline still succeeds. */
	ck_assert_int_eq(weft_rwlock_timedwrlock(&tr_l, &past), 0);
	ck_assert_int_eq(weft_rwlock_timedrdlock(&tr_l, &past), EDEADLK);
	ck_assert_int_eq(weft_rwlock_unlock(&tr_l), 0);
	ck_assert_int_eq(weft_rwlock_timedrdlock(&tr_l, &past), 0);
	struct timespec dl = ts_in(1000000);
	ck_assert_int_eq(weft_rwlock_timedwrlock(&tr_l, &dl), ETIMEDOUT);   /* we read */
	/* A writer times out while a reader queued behind it: the reader is
	 * served by our release, and the lock ends free. */
	weft_t w = spawn(tr_timed_writer, NULL);
	while (!wait_count(&tr_l._wq))
		weft_yield();
	weft_t r = spawn(tr_reader, NULL);
	while (wait_count(&tr_l._wq) < 2)
		weft_yield();
	join(w);                               /* it timed out and left */
	ck_assert_int_eq(wait_count(&tr_l._wq), 1);
	ck_assert_int_eq(atomic_load(&tr_got), 0);
	ck_assert_int_eq(weft_rwlock_unlock(&tr_l), 0);
	join(r);
	ck_assert_int_eq(atomic_load(&tr_got), 1);
	ck_assert_int_eq(weft_rwlock_trywrlock(&tr_l), 0);   /* nothing left behind */
	ck_assert_int_eq(weft_rwlock_unlock(&tr_l), 0);
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- barrier, once, spin and ticket errors -------------------------------- */

static weft_barrier_t be_b;
static atomic_int be_arrived;
static void *be_waiter(void *arg)
{
	(void)arg;
	atomic_store(&be_arrived, 1);
	int r = weft_barrier_wait(&be_b);
	T_CHECK(r == 0 || r == WEFT_BARRIER_SERIAL_THREAD);
	return (void *)(intptr_t)r;
}

static weft_once_t oe_once = WEFT_ONCE_INIT;
static int oe_inner = -1, oe_calls;
static void oe_fn(void)
{
	oe_calls++;
	oe_inner = weft_once(&oe_once, oe_fn);   /* from inside fn: EDEADLK */
}

START_TEST(barrier_once_errors)
{
	setup();
	weft_barrier_t b;
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(weft_barrier_wait(&b), EINVAL);               /* not initialized */
	ck_assert_int_eq(weft_barrier_destroy(&b), EINVAL);
	ck_assert_int_eq(weft_barrier_init(NULL, 1), EINVAL);
	ck_assert_int_eq(weft_barrier_init(&b, 0), EINVAL);
	ck_assert_int_eq(weft_barrier_wait(NULL), EINVAL);
	ck_assert_int_eq(weft_barrier_init(&b, 1), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_barrier_wait(&b), WEFT_BARRIER_SERIAL_THREAD);
	ck_assert_int_eq(weft_barrier_destroy(&b), 0);
	ck_assert_int_eq(weft_barrier_wait(&b), EINVAL);

	ck_assert_int_eq(weft_barrier_init(&be_b, 2), 0);
	weft_t t = spawn(be_waiter, NULL);
	wait_flag(&be_arrived);
	while (!wait_count(&be_b._wq))
		weft_yield();   /* until it is parked (white-box) */
	ck_assert_int_eq(weft_barrier_destroy(&be_b), EBUSY);
	int r = weft_barrier_wait(&be_b);
	int r2 = (int)(intptr_t)join(t);
	ck_assert_int_eq(r + r2, WEFT_BARRIER_SERIAL_THREAD);          /* one serial, one 0 */
	ck_assert_int_eq(weft_barrier_destroy(&be_b), 0);

	ck_assert_int_eq(weft_once(NULL, oe_fn), EINVAL);
	ck_assert_int_eq(weft_once(&oe_once, NULL), EINVAL);
	ck_assert_int_eq(weft_once(&oe_once, oe_fn), 0);
	ck_assert_int_eq(oe_inner, EDEADLK);
	ck_assert_int_eq(weft_once(&oe_once, oe_fn), 0);
	ck_assert_int_eq(oe_calls, 1);
	ASSERT_NO_FAILS();
}
END_TEST

static weft_spinlock_t sp_l = WEFT_SPINLOCK_INITIALIZER;
static weft_ticketlock_t tk_l = WEFT_TICKETLOCK_INITIALIZER;
static void *sp_other(void *arg)
{
	(void)arg;
	T_CHECK(weft_spin_trylock(&sp_l) == EBUSY);
	T_CHECK(weft_spin_unlock(&sp_l) == EPERM);
	T_CHECK(weft_ticket_release(&tk_l) == EPERM);
	T_CHECK(wf_current()->preempt_off == 0);   /* a failed trylock undid it */
	return NULL;
}

START_TEST(spin_ticket_errors)
{
	setup();
	struct wf_thread *self = wf_current();
	ck_assert_ptr_nonnull(self);
	ck_assert_int_eq(weft_spin_init(NULL), EINVAL);
	ck_assert_int_eq(weft_spin_lock(NULL), EINVAL);
	ck_assert_int_eq(weft_spin_trylock(NULL), EINVAL);
	ck_assert_int_eq(weft_spin_unlock(NULL), EINVAL);
	ck_assert_int_eq(weft_spin_destroy(NULL), EINVAL);
	ck_assert_int_eq(weft_ticket_init(NULL), EINVAL);
	ck_assert_int_eq(weft_ticket_acquire(NULL), EINVAL);
	ck_assert_int_eq(weft_ticket_release(NULL), EINVAL);

	uint32_t p0 = self->preempt_off;
	ck_assert_int_eq(weft_spin_unlock(&sp_l), EPERM);
	ck_assert_int_eq(weft_spin_lock(&sp_l), 0);
	ck_assert_uint_eq(self->preempt_off, p0 + 1);                 /* holder not preemptible */
	ck_assert_int_eq(weft_spin_lock(&sp_l), EDEADLK);
	ck_assert_int_eq(weft_spin_trylock(&sp_l), EBUSY);
	ck_assert_uint_eq(self->preempt_off, p0 + 1);
	ck_assert_int_eq(weft_spin_destroy(&sp_l), EBUSY);
	ck_assert_int_eq(weft_ticket_release(&tk_l), EPERM);
	ck_assert_int_eq(weft_ticket_acquire(&tk_l), 0);
	ck_assert_uint_eq(self->preempt_off, p0 + 2);
	ck_assert_int_eq(weft_ticket_acquire(&tk_l), EDEADLK);
	join(spawn(sp_other, NULL));
	ck_assert_int_eq(weft_ticket_release(&tk_l), 0);
	ck_assert_int_eq(weft_ticket_release(&tk_l), EPERM);
	ck_assert_int_eq(weft_spin_unlock(&sp_l), 0);
	ck_assert_uint_eq(self->preempt_off, p0);
	ck_assert_int_eq(weft_spin_unlock(&sp_l), EPERM);
	ck_assert_int_eq(weft_spin_trylock(&sp_l), 0);
	ck_assert_int_eq(weft_spin_unlock(&sp_l), 0);
	ck_assert_int_eq(weft_spin_destroy(&sp_l), 0);
	ck_assert_int_eq(weft_spin_init(&sp_l), 0);
	ck_assert_int_eq(weft_ticket_init(&tk_l), 0);
	ck_assert_uint_eq(self->preempt_off, p0);
	ASSERT_NO_FAILS();
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *sync_errors_suite(void)
{
	Suite *s = suite_create("sync-errors");
	TCase *tc;

	tc = tcase_create("errors");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, mutex_errors);
	tcase_add_test(tc, mutex_owner_is_green_thread);
	tcase_add_test(tc, mutex_destroy_busy);
	tcase_add_test(tc, foreign_kernel_thread_blocks_in_kernel);
	tcase_add_test(tc, cond_errors);
	tcase_add_test(tc, cond_signal_then_timeout_returns_zero);
	tcase_add_test(tc, cond_broadcast_unlocked);
	tcase_add_test(tc, sem_errors);
	tcase_add_test(tc, rwlock_errors);
	tcase_add_test(tc, rwlock_timed_waits);
	tcase_add_test(tc, barrier_once_errors);
	tcase_add_test(tc, spin_ticket_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(sync_errors_suite());
}
