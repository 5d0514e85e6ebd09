/*
 * pt_mutex.c — mutexes through the pthread layer: the static initializers
 * (zero bytes, and glibc's _NP ones that set the type), every type, trylock
 * and timed/clock locks, destroy and reuse, attributes, and the POSIX
 * errors (EBUSY, EDEADLK, EPERM, ETIMEDOUT, EINVAL, ENOTSUP for
 * process-shared and robust), then contention by many green threads.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>
#include "pt_test.h"

static pthread_mutex_t zero = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t rec = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t echk = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static pthread_mutex_t adapt = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;

static void *try_other(void *m)
{
	CHECK_EQ(pthread_mutex_trylock(m), EBUSY);
	struct timespec dl = in_ns(CLOCK_REALTIME, 2000000);
	CHECK_EQ(pthread_mutex_timedlock(m, &dl), ETIMEDOUT);
	dl = in_ns(CLOCK_MONOTONIC, 2000000);
	CHECK_EQ(pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
	return NULL;
}

static void *unlock_other(void *m)
{
	CHECK_EQ(pthread_mutex_unlock(m), EPERM);   /* not the owner */
	return NULL;
}

#define THREADS 200
#define ROUNDS 2000
static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static pthread_barrier_t start;

static void *contend(void *a)
{
	(void)a;
	pthread_barrier_wait(&start);
	for (int i = 0; i < ROUNDS; i++) {
		CHECK_EQ(pthread_mutex_lock(&cm), 0);
		long c = counter;
		if (i % 64 == 0)
			sched_yield();   /* holder parks with the lock held */
		counter = c + 1;
		CHECK_EQ(pthread_mutex_unlock(&cm), 0);
	}
	return NULL;
}

int main(void)
{
	pthread_t t;
	/* Zero bytes: a normal mutex. */
	CHECK_EQ(pthread_mutex_lock(&zero), 0);
	CHECK_EQ(pthread_mutex_trylock(&zero), EBUSY);
	CHECK_EQ(pthread_create(&t, NULL, try_other, &zero), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(pthread_mutex_destroy(&zero), EBUSY);
	CHECK_EQ(pthread_mutex_unlock(&zero), 0);
	CHECK_EQ(pthread_mutex_destroy(&zero), 0);
	CHECK_EQ(pthread_mutex_lock(&zero), 0);   /* reused after destroy, as with glibc */
	CHECK_EQ(pthread_mutex_unlock(&zero), 0);

	/* glibc's recursive initializer sets the type. */
	CHECK_EQ(pthread_mutex_lock(&rec), 0);
	CHECK_EQ(pthread_mutex_lock(&rec), 0);
	CHECK_EQ(pthread_mutex_trylock(&rec), 0);
	CHECK_EQ(pthread_create(&t, NULL, unlock_other, &rec), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(pthread_mutex_unlock(&rec), 0);
	CHECK_EQ(pthread_mutex_unlock(&rec), 0);
	CHECK_EQ(pthread_mutex_unlock(&rec), 0);
	CHECK_EQ(pthread_mutex_unlock(&rec), EPERM);

	/* Error-checking. */
	CHECK_EQ(pthread_mutex_lock(&echk), 0);
	CHECK_EQ(pthread_mutex_lock(&echk), EDEADLK);
	CHECK_EQ(pthread_mutex_trylock(&echk), EBUSY);
	CHECK_EQ(pthread_create(&t, NULL, unlock_other, &echk), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(pthread_mutex_unlock(&echk), 0);
	CHECK_EQ(pthread_mutex_unlock(&echk), EPERM);
	CHECK_EQ(pthread_mutex_lock(&adapt), 0);
	CHECK_EQ(pthread_mutex_unlock(&adapt), 0);

	/* Attributes. */
	pthread_mutexattr_t a;
	pthread_mutex_t m;
	int v;
	CHECK_EQ(pthread_mutexattr_init(&a), 0);
	CHECK_EQ(pthread_mutexattr_gettype(&a, &v), 0);
	CHECK_EQ(v, PTHREAD_MUTEX_DEFAULT);
	CHECK_EQ(pthread_mutexattr_settype(&a, 99), EINVAL);
	CHECK_EQ(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK), 0);
	CHECK_EQ(pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED), ENOTSUP);
	CHECK_EQ(pthread_mutexattr_setpshared(&a, 5), EINVAL);
	CHECK_EQ(pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_PRIVATE), 0);
	CHECK_EQ(pthread_mutexattr_getpshared(&a, &v), 0);
	CHECK_EQ(v, PTHREAD_PROCESS_PRIVATE);
	CHECK_EQ(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), ENOTSUP);
	CHECK_EQ(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_STALLED), 0);
	CHECK_EQ(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_PROTECT), 0);
	CHECK_EQ(pthread_mutexattr_setprotocol(&a, 42), EINVAL);
	CHECK_EQ(pthread_mutexattr_setprioceiling(&a, 10), 0);
	CHECK_EQ(pthread_mutexattr_getprioceiling(&a, &v), 0);
	CHECK_EQ(v, 10);
	CHECK_EQ(pthread_mutex_init(&m, &a), 0);
	CHECK_EQ(pthread_mutex_lock(&m), 0);
	CHECK_EQ(pthread_mutex_lock(&m), EDEADLK);    /* the type came from attr */
	CHECK_EQ(pthread_mutex_getprioceiling(&m, &v), 0);
	CHECK_EQ(v, 10);
	int old;
	CHECK_EQ(pthread_mutex_setprioceiling(&m, 20, &old), 0);
	CHECK_EQ(old, 10);
	CHECK_EQ(pthread_mutex_consistent(&m), EINVAL);  /* not robust */
	CHECK_EQ(pthread_mutex_unlock(&m), 0);
	CHECK_EQ(pthread_mutex_destroy(&m), 0);
	CHECK_EQ(pthread_mutexattr_destroy(&a), 0);
	struct timespec bad = { 0, 2000000000L };
	CHECK_EQ(pthread_mutex_timedlock(&zero, &bad), EINVAL);
	CHECK_EQ(pthread_mutex_clocklock(&zero, CLOCK_PROCESS_CPUTIME_ID, &bad), EINVAL);
	struct timespec past = { 0, 0 };
	CHECK_EQ(pthread_mutex_timedlock(&zero, &past), 0);   /* free: succeeds */
	CHECK_EQ(pthread_mutex_unlock(&zero), 0);

	/* Contention: every increment counted, with holders that park. */
	pthread_t ts[THREADS];
	CHECK_EQ(pthread_barrier_init(&start, NULL, THREADS + 1), 0);
	for (int i = 0; i < THREADS; i++)
		CHECK_EQ(pthread_create(&ts[i], NULL, contend, NULL), 0);
	green_check(THREADS);
	pthread_barrier_wait(&start);
	for (int i = 0; i < THREADS; i++)
		CHECK_EQ(pthread_join(ts[i], NULL), 0);
	CHECK_EQ(counter, (long)THREADS * ROUNDS);
	return finish("pt_mutex");
}
