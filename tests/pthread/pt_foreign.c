/*
 * pt_foreign.c — what is not a plain green thread: sleeping and yielding
 * green threads (they park: a thousand sleepers on two workers), threads
 * created by a library constructor before main, and foreign threads — a
 * thread glibc starts itself (a SIGEV_THREAD timer's notification) and one
 * made with glibc's own pthread_create — sharing a mutex, a condition
 * variable and a semaphore with green threads.  Ends with exit() from a
 * green thread while others run: atexit handlers run and the status is
 * the one given, as under glibc (the handler fails the run if any check
 * failed; returning from main instead would give 99).
 */
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>
#include "pt_test.h"

/* ---- a constructor that starts threads before main ---- */
static pthread_t ctor_thread;
static atomic_int ctor_ran;
static void *ctor_body(void *a) { atomic_store(&ctor_ran, 1); return a; }
__attribute__((constructor)) static void early(void)
{
	if (pthread_create(&ctor_thread, NULL, ctor_body, (void *)7))
		abort();
}

/* ---- sleepers ---- */
#define SLEEPERS 1000
static pthread_barrier_t sl_bar;
static void *sleeper(void *a)
{
	int kind = (int)(intptr_t)a % 4;
	pthread_barrier_wait(&sl_bar);
	struct timespec ts = { 0, 30000000 };
	switch (kind) {
	case 0: CHECK_EQ(usleep(30000), 0); break;
	case 1: CHECK_EQ(nanosleep(&ts, NULL), 0); break;
	case 2: CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL), 0); break;
	default: {
		struct timespec abs = in_ns(CLOCK_REALTIME, 30000000);
		CHECK_EQ(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &abs, NULL), 0);
	}
	}
	return NULL;
}

static atomic_long yields;
static void *yielder(void *a)
{
	(void)a;
	for (int i = 0; i < 1000; i++) {
		CHECK_EQ(sched_yield(), 0);
		atomic_fetch_add(&yields, 1);
	}
	return NULL;
}

/* ---- foreign threads ---- */
static pthread_mutex_t fm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fc = PTHREAD_COND_INITIALIZER;
static sem_t fsem;
static int fstate;
static pthread_key_t fkey;
static atomic_int fkey_dtor;
static void fdtor(void *v) { CHECK(v == &fstate); atomic_fetch_add(&fkey_dtor, 1); }

/* Runs on a kernel thread glibc started for the timer. */
static void timer_fired(union sigval sv)
{
	(void)sv;
	CHECK_EQ(pthread_mutex_lock(&fm), 0);
	fstate++;
	CHECK_EQ(pthread_cond_broadcast(&fc), 0);
	CHECK_EQ(pthread_mutex_unlock(&fm), 0);
	CHECK_EQ(sem_post(&fsem), 0);
}

/* Runs on a kernel thread made by glibc's own pthread_create: it waits on
 * the condition variable for green threads, and they wait for it. */
static void *foreign_body(void *a)
{
	(void)a;
	CHECK(pthread_self() != 0);
	CHECK(pthread_equal(pthread_self(), pthread_self()));
	CHECK_EQ(pthread_setspecific(fkey, &fstate), 0);
	CHECK(pthread_getspecific(fkey) == &fstate);
	for (int round = 0; round < 200; round++) {
		CHECK_EQ(pthread_mutex_lock(&fm), 0);
		while (fstate % 2 == 0)        /* green threads make it odd */
			CHECK_EQ(pthread_cond_wait(&fc, &fm), 0);
		fstate++;
		CHECK_EQ(pthread_cond_broadcast(&fc), 0);
		CHECK_EQ(pthread_mutex_unlock(&fm), 0);
	}
	struct timespec ts = { 0, 1000000 };
	CHECK_EQ(nanosleep(&ts, NULL), 0);   /* glibc's own here */
	CHECK_EQ(sched_yield(), 0);
	return NULL;
}

static void *green_partner(void *a)
{
	(void)a;
	for (int round = 0; round < 200; round++) {
		CHECK_EQ(pthread_mutex_lock(&fm), 0);
		while (fstate % 2 == 1)
			CHECK_EQ(pthread_cond_wait(&fc, &fm), 0);
		fstate++;
		CHECK_EQ(pthread_cond_broadcast(&fc), 0);
		CHECK_EQ(pthread_mutex_unlock(&fm), 0);
	}
	return NULL;
}

static atomic_int at_exit_ran;
static void on_exit_handler(void)
{
	atomic_store(&at_exit_ran, 1);
	printf("pt_foreign: atexit handler ran, %d failed\n", atomic_load(&pt_fails));
	fflush(stdout);
	if (atomic_load(&pt_fails))
		_exit(1);
}

static void *spinner(void *a)
{
	(void)a;
	for (;;)
		sched_yield();
	return NULL;
}

static void *exiter(void *a)
{
	(void)a;
	usleep(10000);
	exit(finish("pt_foreign"));   /* 0 if every check passed */
}

int main(void)
{
	/* The constructor's thread was created before main and is joinable. */
	void *r;
	CHECK_EQ(pthread_join(ctor_thread, &r), 0);
	CHECK(r == (void *)7);
	CHECK_EQ(atomic_load(&ctor_ran), 1);

	/* A thousand sleepers at once on two workers: they park. */
	pthread_t t[SLEEPERS];
	CHECK_EQ(pthread_barrier_init(&sl_bar, NULL, SLEEPERS + 1), 0);
	for (int i = 0; i < SLEEPERS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, sleeper, (void *)(intptr_t)i), 0);
	pthread_barrier_wait(&sl_bar);
	usleep(5000);
	green_check(SLEEPERS);   /* all asleep together */
	for (int i = 0; i < SLEEPERS; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	CHECK_EQ(sleep(0), 0);
	struct timespec bad = { 0, 1000000000L };
	CHECK_EQ(nanosleep(&bad, NULL), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL), EINVAL);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, yielder, NULL), 0);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	CHECK_EQ(atomic_load(&yields), 8000);

	/* A glibc helper thread (timer notification) posts and signals. */
	CHECK_EQ(sem_init(&fsem, 0, 0), 0);
	timer_t tm;
	struct sigevent sev = { 0 };
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = timer_fired;
	CHECK_EQ(timer_create(CLOCK_MONOTONIC, &sev, &tm), 0);
	struct itimerspec its = { { 0, 0 }, { 0, 5000000 } };
	CHECK_EQ(timer_settime(tm, 0, &its, NULL), 0);
	CHECK_EQ(sem_wait(&fsem), 0);          /* a green thread parks, glibc's thread posts */
	CHECK_EQ(pthread_mutex_lock(&fm), 0);
	CHECK_EQ(fstate, 1);
	fstate = 0;
	CHECK_EQ(pthread_mutex_unlock(&fm), 0);
	timer_delete(tm);

	/* A kernel thread made with glibc's own pthread_create. */
	int (*real_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
		(int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))
		dlsym(RTLD_NEXT, "pthread_create");
	int (*real_join)(pthread_t, void **) =
		(int (*)(pthread_t, void **))dlsym(RTLD_NEXT, "pthread_join");
	CHECK(real_create && real_join);
	CHECK_EQ(pthread_key_create(&fkey, fdtor), 0);
	pthread_t ft;
	CHECK_EQ(real_create(&ft, NULL, foreign_body, NULL), 0);
	CHECK_EQ(pthread_create(&t[0], NULL, green_partner, NULL), 0);
	CHECK_EQ(pthread_join(t[0], NULL), 0);
	CHECK_EQ(real_join(ft, NULL), 0);
	CHECK_EQ(fstate, 400);
	CHECK_EQ(atomic_load(&fkey_dtor), 1);    /* the foreign thread's value */

	/* exit() from a green thread while others run. */
	atexit(on_exit_handler);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, spinner, NULL), 0);
	CHECK_EQ(pthread_create(&t[4], NULL, exiter, NULL), 0);
	pthread_join(t[4], NULL);   /* parks; the exiter ends the process */
	return 99;
}
