/*
 * test_sync.c — the Synchronization section of the API (src/sync).
 *
 * Covered: every error code of every call (EINVAL, EPERM, EDEADLK, EBUSY,
 * EAGAIN, ETIMEDOUT, EOVERFLOW); calls from a kernel thread that is not a
 * green thread (it blocks in the kernel on every object, green threads and
 * it wake each other, owner checks see it as a thread of its own); static
 * initializers without init calls; mutex
 * ownership by green thread (main locks before any thread exists, as the
 * process's first weft call); destroy while held or waited on; the holder
 * of spin and ticket locks not preemptible.  Invariants under contention
 * with hundreds of threads on 2 workers: bank transfers conserve money
 * (lock, trylock and timedlock mixed, all three mutex types), a bounded
 * buffer on condition variables (signal and broadcast) loses and
 * duplicates nothing, rwlock readers never see half a write and writers
 * get in while readers never stop, barrier phases line up with exactly one
 * serial thread each, once runs once while concurrent callers block, spin
 * and ticket locks exclude.  A million ping-pongs through a condition
 * variable and through a semaphore (one lost wake-up hangs the pair; Check's
 * timeout catches it).  Timed waits racing with wake-ups: every wait returns
 * 0 or ETIMEDOUT, semaphore tokens are conserved, a condition signal is
 * never swallowed by a waiter that times out, a waiter signalled before its
 * deadline returns 0 even if the mutex comes later, timed mutex waiters in
 * handoff mode.  The starvation bound of the mutex's 1 ms handoff.  Objects
 * destroyed right after a wake-up.
 *
 * Each test runs in its own forked child (Check's default) and starts with
 * setenv("WEFT_WORKERS", "2") before its first weft call.  Thread bodies
 * count failures in `fails` instead of asserting (an assertion exits the
 * process from a green thread); the test asserts the count at the end.
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

#include "weft_check.h"

/* ---- helpers ------------------------------------------------------------- */

static atomic_int fails;
static char first_fail[256];

#define T_CHECK(c) do { if (!(c)) t_fail(__LINE__, #c); } while (0)
static void t_fail(int line, const char *what)
{
	if (atomic_fetch_add(&fails, 1) == 0)
		snprintf(first_fail, sizeof first_fail, "line %d: %s", line, what);
}
#define ASSERT_NO_FAILS() ck_assert_msg(atomic_load(&fails) == 0, "%d failures, first: %s", \
                                        atomic_load(&fails), first_fail)

static void setup_env(void)
{
	setenv("WEFT_WORKERS", "2", 1);
	atomic_store(&fails, 0);
	first_fail[0] = 0;
}

static void setup(void)
{
	setup_env();
	ck_assert_int_eq(weft_init(), 0);
	ck_assert_int_eq(weft_workers(), 2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct timespec ts_at(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	return ts;
}

static struct timespec ts_in(uint64_t ns) { return ts_at(now_ns() + ns); }

static uint32_t rnd(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static void spin_ns(uint64_t ns)
{
	uint64_t end = now_ns() + ns;
	while (now_ns() < end)
		;
}

static void spawn_join(int n, void *(*fn)(void *))
{
	weft_t *t = calloc((size_t)n, sizeof *t);
	ck_assert_ptr_nonnull(t);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, fn, (void *)(intptr_t)i), 0);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	free(t);
}

/* Create without running the child first (weft_create queues it instead
 * while preemption is disabled), so that the contenders all start together
 * and none can keep the creator off its worker before the others exist. */
static void spawn_queued(int n, weft_t *t, void *(*fn)(void *))
{
	weft_preempt_disable();
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, fn, (void *)(intptr_t)i), 0);
	weft_preempt_enable();
}

static weft_t spawn(void *(*fn)(void *), void *arg)
{
	weft_t t;
	ck_assert_int_eq(weft_create(&t, NULL, fn, arg), 0);
	return t;
}

static void *join(weft_t t)
{
	void *r = NULL;
	ck_assert_int_eq(weft_join(t, &r), 0);
	return r;
}

/* Yield until *flag becomes nonzero (bounded: a hang fails the test). */
static void wait_flag(atomic_int *flag)
{
	while (!atomic_load(flag))
		weft_yield();
}

static void nap_ms(unsigned ms) { weft_sleep_ns((uint64_t)ms * 1000000ull); }

/* Threads linked on an object's wait queue (white-box: its private count). */
static uint32_t wait_count(const weft_waitq_ *q) { return __atomic_load_n(&q->_count, __ATOMIC_ACQUIRE); }

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

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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

static Suite *sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("errors");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, mutex_errors);
	tcase_add_test(tc, mutex_owner_is_green_thread);
	tcase_add_test(tc, mutex_destroy_busy);
	tcase_add_test(tc, foreign_kernel_thread_blocks_in_kernel);
	tcase_add_test(tc, foreign_and_green_contend);
	tcase_add_test(tc, cond_errors);
	tcase_add_test(tc, cond_signal_then_timeout_returns_zero);
	tcase_add_test(tc, cond_broadcast_unlocked);
	tcase_add_test(tc, sem_errors);
	tcase_add_test(tc, rwlock_errors);
	tcase_add_test(tc, barrier_once_errors);
	tcase_add_test(tc, spin_ticket_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("contention");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, bank_transfers_conserve_total);
	tcase_add_test(tc, bounded_buffer_signal);
	tcase_add_test(tc, bounded_buffer_broadcast);
	tcase_add_test(tc, rwlock_readers_never_see_half_writes);
	tcase_add_test(tc, rwlock_timed_waits);
	tcase_add_test(tc, rwlock_timed_stress);
	tcase_add_test(tc, barrier_phases_line_up);
	tcase_add_test(tc, once_runs_once_others_block);
	tcase_add_test(tc, spin_and_ticket_mutual_exclusion);
	tcase_add_test(tc, destroy_right_after_wakeup);
	suite_add_tcase(s, tc);

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
	suite_add_tcase(s, tc);

	tc = tcase_create("starvation");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, mutex_starvation_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(sync_suite());
}
