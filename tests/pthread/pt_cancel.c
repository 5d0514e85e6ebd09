/*
 * pt_cancel.c — pthread cancellation through the layer: pthread_cancel at
 * cancellation points (sem_wait, pthread_cond_wait, pthread_join, sleep),
 * pthread_cleanup_push/pop as glibc's <pthread.h> compiles them for C
 * without exceptions (__pthread_register_cancel, __pthread_unwind_next),
 * their order, a cond wait's mutex held by the handlers, the disabled
 * state, pthread_exit running the handlers, the _defer_np variants, and
 * asynchronous cancellation of a computing thread.
 */
#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>
#include "pt_test.h"

/* What the handlers did, in order. */
static char trail[64];
static atomic_int ntrail;
static void note(void *a)
{
	int i = atomic_fetch_add(&ntrail, 1);
	if (i < (int)sizeof trail - 1)
		trail[i] = (char)(intptr_t)a;
}
static void trail_reset(void)
{
	memset(trail, 0, sizeof trail);
	atomic_store(&ntrail, 0);
}

static sem_t parked, never;

/* Two handlers in two functions, then a wait that is a cancellation point. */
static void inner(void)
{
	pthread_cleanup_push(note, (void *)'b');
	pthread_cleanup_push(note, (void *)'c');
	sem_post(&parked);
	sem_wait(&never);   /* cancelled here */
	CHECK(0);
	pthread_cleanup_pop(0);
	pthread_cleanup_pop(0);
}
static void *nested(void *a)
{
	(void)a;
	pthread_cleanup_push(note, (void *)'a');
	inner();
	pthread_cleanup_pop(0);
	return NULL;
}

/* Many parked threads, each with a handler that counts. */
static atomic_int handled;
static void count(void *a) { (void)a; atomic_fetch_add(&handled, 1); }
static void *parker(void *a)
{
	(void)a;
	pthread_cleanup_push(count, NULL);
	sem_post(&parked);
	sem_wait(&never);
	pthread_cleanup_pop(0);
	return NULL;
}
#define PARKERS 16

/* A cond wait cancelled: the handler runs with the mutex held again. */
static pthread_mutex_t cm;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static atomic_int unlock_rc = -1;
static void unlock_cm(void *a)
{
	(void)a;
	atomic_store(&unlock_rc, pthread_mutex_unlock(&cm));   /* EPERM if not ours */
}
static void *cond_waiter(void *a)
{
	(void)a;
	pthread_mutex_lock(&cm);
	pthread_cleanup_push(unlock_cm, NULL);
	sem_post(&parked);
	for (;;)
		pthread_cond_wait(&cv, &cm);
	pthread_cleanup_pop(1);
	return NULL;
}

/* Disabled: a request stays pending through cancellation points. */
static atomic_int reached;
static void *disabled(void *a)
{
	(void)a;
	int old = -1;
	CHECK_EQ(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old), 0);
	CHECK_EQ(old, PTHREAD_CANCEL_ENABLE);
	pthread_cleanup_push(note, (void *)'d');
	sem_post(&parked);
	sem_wait(&never);   /* posted once after the request */
	usleep(1000);
	pthread_testcancel();
	atomic_store(&reached, 1);
	CHECK_EQ(pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old), 0);
	CHECK_EQ(old, PTHREAD_CANCEL_DISABLE);
	pthread_testcancel();   /* acts */
	atomic_store(&reached, 2);
	pthread_cleanup_pop(0);
	return NULL;
}

/* pthread_exit runs the handlers too, and keeps its own result. */
static void *exiter(void *a)
{
	(void)a;
	pthread_cleanup_push(note, (void *)'x');
	pthread_cleanup_push(note, (void *)'y');
	pthread_cleanup_pop(1);   /* runs 'y' now */
	pthread_exit((void *)7);
	pthread_cleanup_pop(0);
	return NULL;
}

/* Asynchronous: a thread that only computes is cancelled. */
static atomic_int spinning;
static void *async_spin(void *a)
{
	(void)a;
	int old;
	CHECK_EQ(pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old), 0);
	CHECK_EQ(old, PTHREAD_CANCEL_DEFERRED);
	pthread_cleanup_push(note, (void *)'s');
	atomic_store(&spinning, 1);
	for (volatile unsigned long i = 0;; i++)
		;
	pthread_cleanup_pop(0);
	return NULL;
}

/* The _defer_np pair: deferred inside, the old type back after. */
static void *defer_np(void *a)
{
	(void)a;
	int old, t;
	CHECK_EQ(pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old), 0);
	pthread_cleanup_push_defer_np(note, (void *)'p');
	CHECK_EQ(pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &t), 0);
	CHECK_EQ(t, PTHREAD_CANCEL_DEFERRED);   /* push_defer made it deferred */
	CHECK_EQ(pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL), 0);
	pthread_cleanup_pop_restore_np(1);
	CHECK_EQ(pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &t), 0);
	CHECK_EQ(t, PTHREAD_CANCEL_ASYNCHRONOUS);   /* restored */
	return (void *)1;
}

/* A joiner cancelled while it waits in pthread_join. */
static void *joiner(void *a)
{
	pthread_cleanup_push(note, (void *)'j');
	sem_post(&parked);
	pthread_join(*(pthread_t *)a, NULL);
	pthread_cleanup_pop(0);
	return NULL;
}

int main(void)
{
	void *r;
	pthread_t t, u;
	CHECK_EQ(sem_init(&parked, 0, 0), 0);
	CHECK_EQ(sem_init(&never, 0, 0), 0);

	/* Innermost first, across functions. */
	trail_reset();
	CHECK_EQ(pthread_create(&t, NULL, nested, NULL), 0);
	sem_wait(&parked);
	CHECK_EQ(pthread_cancel(t), 0);
	CHECK_EQ(pthread_join(t, &r), 0);
	CHECK(r == PTHREAD_CANCELED);
	CHECK(strcmp(trail, "cba") == 0);
	CHECK_EQ(pthread_cancel(t), ESRCH);

	/* Threads on weft, all parked, all cancelled. */
	pthread_t p[PARKERS];
	for (int i = 0; i < PARKERS; i++)
		CHECK_EQ(pthread_create(&p[i], NULL, parker, NULL), 0);
	for (int i = 0; i < PARKERS; i++)
		sem_wait(&parked);
	green_check(PARKERS);
	for (int i = 0; i < PARKERS; i++)
		CHECK_EQ(pthread_cancel(p[i]), 0);
	for (int i = 0; i < PARKERS; i++) {
		CHECK_EQ(pthread_join(p[i], &r), 0);
		CHECK(r == PTHREAD_CANCELED);
	}
	CHECK_EQ(atomic_load(&handled), PARKERS);

	/* Cond wait: the mutex is held in the handler (error-checking mutex:
	 * unlocking it there succeeds only for its owner). */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
	CHECK_EQ(pthread_mutex_init(&cm, &ma), 0);
	CHECK_EQ(pthread_create(&t, NULL, cond_waiter, NULL), 0);
	sem_wait(&parked);
	pthread_mutex_lock(&cm);      /* the waiter is in the wait */
	pthread_mutex_unlock(&cm);
	CHECK_EQ(pthread_cancel(t), 0);
	CHECK_EQ(pthread_join(t, &r), 0);
	CHECK(r == PTHREAD_CANCELED);
	CHECK_EQ(atomic_load(&unlock_rc), 0);
	CHECK_EQ(pthread_mutex_trylock(&cm), 0);   /* nothing was left held */
	pthread_mutex_unlock(&cm);

	/* Disabled, then enabled. */
	trail_reset();
	CHECK_EQ(pthread_create(&t, NULL, disabled, NULL), 0);
	sem_wait(&parked);
	CHECK_EQ(pthread_cancel(t), 0);
	sem_post(&never);
	CHECK_EQ(pthread_join(t, &r), 0);
	CHECK(r == PTHREAD_CANCELED);
	CHECK_EQ(atomic_load(&reached), 1);
	CHECK(strcmp(trail, "d") == 0);

	/* pthread_exit. */
	trail_reset();
	CHECK_EQ(pthread_create(&t, NULL, exiter, NULL), 0);
	CHECK_EQ(pthread_join(t, &r), 0);
	CHECK(r == (void *)7);
	CHECK(strcmp(trail, "yx") == 0);

	/* Asynchronous. */
	trail_reset();
	CHECK_EQ(pthread_create(&t, NULL, async_spin, NULL), 0);
	while (!atomic_load(&spinning))
		sched_yield();
	CHECK_EQ(pthread_cancel(t), 0);
	CHECK_EQ(pthread_join(t, &r), 0);
	CHECK(r == PTHREAD_CANCELED);
	CHECK(strcmp(trail, "s") == 0);

	/* push_defer_np / pop_restore_np. */
	trail_reset();
	CHECK_EQ(pthread_create(&t, NULL, defer_np, NULL), 0);
	CHECK_EQ(pthread_join(t, &r), 0);
	CHECK(r == (void *)1);
	CHECK(strcmp(trail, "p") == 0);

	/* A join is a cancellation point; the joined thread stays joinable. */
	trail_reset();
	CHECK_EQ(pthread_create(&t, NULL, nested, NULL), 0);
	sem_wait(&parked);
	CHECK_EQ(pthread_create(&u, NULL, joiner, &t), 0);
	sem_wait(&parked);
	CHECK_EQ(pthread_cancel(u), 0);
	CHECK_EQ(pthread_join(u, &r), 0);
	CHECK(r == PTHREAD_CANCELED);
	CHECK(strcmp(trail, "j") == 0);
	CHECK_EQ(pthread_cancel(t), 0);
	CHECK_EQ(pthread_join(t, &r), 0);
	CHECK(r == PTHREAD_CANCELED);

	CHECK_EQ(pthread_setcancelstate(42, NULL), EINVAL);
	CHECK_EQ(pthread_setcanceltype(42, NULL), EINVAL);
	return finish("pt_cancel");
}
