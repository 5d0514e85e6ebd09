/*
 * pt_sync.c — condition variables (both clocks), rwlocks (timed, clock
 * variants), barriers, spinlocks and unnamed semaphores through the
 * pthread layer, with their POSIX errors (EBUSY, EDEADLK, EPERM, ETIMEDOUT,
 * EINVAL, EAGAIN, EOVERFLOW, ENOTSUP), and a producer/consumer run by
 * hundreds of green threads.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdint.h>
#include <unistd.h>
#include "pt_test.h"

/* ---- condition variables ---- */
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static pthread_cond_t cmono;
static int ready;

static void *signaller(void *a)
{
	(void)a;
	usleep(2000);
	pthread_mutex_lock(&m);
	ready = 1;
	pthread_cond_signal(&c);
	pthread_mutex_unlock(&m);
	return NULL;
}

#define PC_ITEMS 20000
#define PC_SLOTS 16
static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notfull = PTHREAD_COND_INITIALIZER, notempty = PTHREAD_COND_INITIALIZER;
static long buf[PC_SLOTS], head, tail, produced, consumed, sum;

static pthread_barrier_t pc_start;

static void *producer(void *a)
{
	long n = (long)(intptr_t)a;
	pthread_barrier_wait(&pc_start);
	for (long i = 0; i < n; i++) {
		pthread_mutex_lock(&pm);
		while (tail - head == PC_SLOTS)
			CHECK_EQ(pthread_cond_wait(&notfull, &pm), 0);
		buf[tail++ % PC_SLOTS] = i + 1;
		produced++;
		pthread_cond_signal(&notempty);
		pthread_mutex_unlock(&pm);
	}
	return NULL;
}

static void *consumer(void *a)
{
	long n = (long)(intptr_t)a;
	pthread_barrier_wait(&pc_start);
	for (long i = 0; i < n; i++) {
		pthread_mutex_lock(&pm);
		while (tail == head)
			CHECK_EQ(pthread_cond_wait(&notempty, &pm), 0);
		sum += buf[head++ % PC_SLOTS];
		consumed++;
		pthread_cond_broadcast(&notfull);
		pthread_mutex_unlock(&pm);
	}
	return NULL;
}

/* ---- rwlocks ---- */
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t rwnp = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

static void *rw_other(void *a)
{
	(void)a;
	CHECK_EQ(pthread_rwlock_trywrlock(&rw), EBUSY);
	struct timespec dl = in_ns(CLOCK_REALTIME, 2000000);
	CHECK_EQ(pthread_rwlock_timedwrlock(&rw, &dl), ETIMEDOUT);
	dl = in_ns(CLOCK_MONOTONIC, 2000000);
	CHECK_EQ(pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
	CHECK_EQ(pthread_rwlock_rdlock(&rw), 0);   /* readers share */
	CHECK_EQ(pthread_rwlock_unlock(&rw), 0);
	return NULL;
}

static void *rw_reader_blocked(void *a)
{
	(void)a;
	CHECK_EQ(pthread_rwlock_tryrdlock(&rw), EBUSY);
	struct timespec dl = in_ns(CLOCK_REALTIME, 2000000);
	CHECK_EQ(pthread_rwlock_timedrdlock(&rw, &dl), ETIMEDOUT);
	dl = in_ns(CLOCK_MONOTONIC, 2000000);
	CHECK_EQ(pthread_rwlock_clockrdlock(&rw, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
	return NULL;
}

/* ---- barriers and spinlocks ---- */
#define BAR_N 64
static pthread_barrier_t bar;
static atomic_int serials, phase_counts[10];
static pthread_spinlock_t spin;
static long spin_counter;

static void *bar_user(void *a)
{
	(void)a;
	for (int p = 0; p < 10; p++) {
		atomic_fetch_add(&phase_counts[p], 1);
		int r = pthread_barrier_wait(&bar);
		CHECK(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD);
		if (r == PTHREAD_BARRIER_SERIAL_THREAD)
			atomic_fetch_add(&serials, 1);
		CHECK_EQ(atomic_load(&phase_counts[p]), BAR_N);
		for (int i = 0; i < 100; i++) {
			CHECK_EQ(pthread_spin_lock(&spin), 0);
			spin_counter++;
			CHECK_EQ(pthread_spin_unlock(&spin), 0);
		}
	}
	return NULL;
}

/* ---- semaphores ---- */
static sem_t sem;
static void *sem_poster(void *a)
{
	(void)a;
	usleep(1000);
	CHECK_EQ(sem_post(&sem), 0);
	return NULL;
}

int main(void)
{
	pthread_t t;
	int v;
	/* Condition variables: wait/signal, timeouts on both clocks. */
	pthread_condattr_t ca;
	clockid_t clk;
	CHECK_EQ(pthread_condattr_init(&ca), 0);
	CHECK_EQ(pthread_condattr_getclock(&ca, &clk), 0);
	CHECK_EQ(clk, CLOCK_REALTIME);
	CHECK_EQ(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), 0);
	CHECK_EQ(pthread_condattr_setclock(&ca, CLOCK_PROCESS_CPUTIME_ID), EINVAL);
	CHECK_EQ(pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED), ENOTSUP);
	CHECK_EQ(pthread_cond_init(&cmono, &ca), 0);
	CHECK_EQ(pthread_condattr_destroy(&ca), 0);
	CHECK_EQ(pthread_mutex_lock(&m), 0);
	struct timespec dl = in_ns(CLOCK_REALTIME, 2000000);
	CHECK_EQ(pthread_cond_timedwait(&c, &m, &dl), ETIMEDOUT);
	dl = in_ns(CLOCK_MONOTONIC, 2000000);
	CHECK_EQ(pthread_cond_timedwait(&cmono, &m, &dl), ETIMEDOUT);
	dl = in_ns(CLOCK_MONOTONIC, 2000000);
	CHECK_EQ(pthread_cond_clockwait(&c, &m, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
	struct timespec bad = { 0, -1 };
	CHECK_EQ(pthread_cond_timedwait(&c, &m, &bad), EINVAL);
	CHECK_EQ(pthread_create(&t, NULL, signaller, NULL), 0);
	while (!ready)
		CHECK_EQ(pthread_cond_wait(&c, &m), 0);
	CHECK_EQ(pthread_mutex_unlock(&m), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(pthread_cond_wait(&c, &m), EPERM);   /* mutex not held */
	CHECK_EQ(pthread_cond_signal(&c), 0);
	CHECK_EQ(pthread_cond_broadcast(&c), 0);
	CHECK_EQ(pthread_cond_destroy(&cmono), 0);

	/* Producer/consumer: 100 producers, 100 consumers. */
	pthread_t pc[200];
	CHECK_EQ(pthread_barrier_init(&pc_start, NULL, 201), 0);
	for (int i = 0; i < 100; i++) {
		CHECK_EQ(pthread_create(&pc[i], NULL, consumer, (void *)(intptr_t)(PC_ITEMS / 100)), 0);
		CHECK_EQ(pthread_create(&pc[100 + i], NULL, producer, (void *)(intptr_t)(PC_ITEMS / 100)), 0);
	}
	green_check(200);
	pthread_barrier_wait(&pc_start);
	for (int i = 0; i < 200; i++)
		CHECK_EQ(pthread_join(pc[i], NULL), 0);
	CHECK_EQ(produced, PC_ITEMS);
	CHECK_EQ(consumed, PC_ITEMS);
	CHECK_EQ(sum, 100L * ((PC_ITEMS / 100) * (PC_ITEMS / 100 + 1) / 2));

	/* Rwlocks. */
	CHECK_EQ(pthread_rwlock_rdlock(&rw), 0);
	CHECK_EQ(pthread_create(&t, NULL, rw_other, NULL), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(pthread_rwlock_unlock(&rw), 0);
	CHECK_EQ(pthread_rwlock_wrlock(&rw), 0);
	CHECK_EQ(pthread_rwlock_wrlock(&rw), EDEADLK);
	CHECK_EQ(pthread_rwlock_rdlock(&rw), EDEADLK);
	CHECK_EQ(pthread_create(&t, NULL, rw_reader_blocked, NULL), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(pthread_rwlock_destroy(&rw), EBUSY);
	CHECK_EQ(pthread_rwlock_unlock(&rw), 0);
	CHECK_EQ(pthread_rwlock_unlock(&rw), EPERM);
	CHECK_EQ(pthread_rwlock_destroy(&rw), 0);
	CHECK_EQ(pthread_rwlock_init(&rw, NULL), 0);
	CHECK_EQ(pthread_rwlock_wrlock(&rwnp), 0);
	CHECK_EQ(pthread_rwlock_unlock(&rwnp), 0);
	pthread_rwlockattr_t ra;
	CHECK_EQ(pthread_rwlockattr_init(&ra), 0);
	CHECK_EQ(pthread_rwlockattr_setpshared(&ra, PTHREAD_PROCESS_SHARED), ENOTSUP);
	CHECK_EQ(pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP), 0);
	CHECK_EQ(pthread_rwlockattr_getkind_np(&ra, &v), 0);
	CHECK_EQ(v, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	CHECK_EQ(pthread_rwlockattr_setkind_np(&ra, 99), EINVAL);
	CHECK_EQ(pthread_rwlockattr_destroy(&ra), 0);

	/* Barriers and spinlocks. */
	pthread_barrierattr_t ba;
	CHECK_EQ(pthread_barrierattr_init(&ba), 0);
	CHECK_EQ(pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED), ENOTSUP);
	CHECK_EQ(pthread_barrier_init(&bar, &ba, 0), EINVAL);
	CHECK_EQ(pthread_barrier_init(&bar, &ba, BAR_N), 0);
	CHECK_EQ(pthread_barrierattr_destroy(&ba), 0);
	CHECK_EQ(pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE), 0);
	CHECK_EQ(pthread_spin_init(&spin, 42), EINVAL);
	CHECK_EQ(pthread_spin_trylock(&spin), 0);
	CHECK_EQ(pthread_spin_trylock(&spin), EBUSY);
	CHECK_EQ(pthread_spin_destroy(&spin), EBUSY);
	CHECK_EQ(pthread_spin_unlock(&spin), 0);
	pthread_t bt[BAR_N];
	for (int i = 0; i < BAR_N; i++)
		CHECK_EQ(pthread_create(&bt[i], NULL, bar_user, NULL), 0);
	for (int i = 0; i < BAR_N; i++)
		CHECK_EQ(pthread_join(bt[i], NULL), 0);
	CHECK_EQ(atomic_load(&serials), 10);
	CHECK_EQ(spin_counter, (long)BAR_N * 10 * 100);
	CHECK_EQ(pthread_barrier_destroy(&bar), 0);
	CHECK_EQ(pthread_spin_destroy(&spin), 0);

	/* Semaphores (errno convention). */
	CHECK_EQ(sem_init(&sem, 0, (unsigned)SEM_VALUE_MAX + 1u), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(sem_init(&sem, 0, 0), 0);
	CHECK_EQ(sem_trywait(&sem), -1);
	CHECK_EQ(errno, EAGAIN);
	dl = in_ns(CLOCK_REALTIME, 2000000);
	CHECK_EQ(sem_timedwait(&sem, &dl), -1);
	CHECK_EQ(errno, ETIMEDOUT);
	dl = in_ns(CLOCK_MONOTONIC, 2000000);
	CHECK_EQ(sem_clockwait(&sem, CLOCK_MONOTONIC, &dl), -1);
	CHECK_EQ(errno, ETIMEDOUT);
	CHECK_EQ(sem_timedwait(&sem, &bad), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(pthread_create(&t, NULL, sem_poster, NULL), 0);
	CHECK_EQ(sem_wait(&sem), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(sem_post(&sem), 0);
	CHECK_EQ(sem_getvalue(&sem, &v), 0);
	CHECK_EQ(v, 1);
	CHECK_EQ(sem_destroy(&sem), 0);
	CHECK_EQ(sem_init(&sem, 0, SEM_VALUE_MAX), 0);
	CHECK_EQ(sem_post(&sem), -1);
	CHECK_EQ(errno, EOVERFLOW);
	CHECK_EQ(sem_destroy(&sem), 0);
	/* A process-shared semaphore is glibc's own. */
	sem_t ps;
	CHECK_EQ(sem_init(&ps, 1, 1), 0);
	CHECK_EQ(sem_wait(&ps), 0);
	CHECK_EQ(sem_trywait(&ps), -1);
	CHECK_EQ(errno, EAGAIN);
	CHECK_EQ(sem_post(&ps), 0);
	CHECK_EQ(sem_getvalue(&ps, &v), 0);
	CHECK_EQ(v, 1);
	CHECK_EQ(sem_destroy(&ps), 0);
	return finish("pt_sync");
}
