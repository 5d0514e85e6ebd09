/*
 * pt_threads.c — threads, attributes, keys and once through the pthread
 * layer: create/join/detach/exit/self/equal, names, stacks, scheduling
 * calls accepted and reported, thread-specific data up to
 * PTHREAD_KEYS_MAX with destructors, pthread_once under contention, and
 * each call's POSIX errors (EINVAL, ESRCH, EDEADLK, ERANGE, EAGAIN).
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>
#include "pt_test.h"

#define MANY 2000

static pthread_barrier_t hold;
static void *held(void *a)
{
	pthread_barrier_wait(&hold);
	return a;
}

static void *ret_arg(void *a) { return a; }
static void *exits(void *a) { pthread_exit((char *)a + 1); }

static atomic_int detached_done;
static void *detached_body(void *a) { (void)a; atomic_fetch_add(&detached_done, 1); return NULL; }

static void *self_join(void *a)
{
	(void)a;
	CHECK_EQ(pthread_join(pthread_self(), NULL), EDEADLK);
	return NULL;
}

static int recurse(int n)
{
	volatile char buf[1024];
	buf[0] = (char)n;
	return n ? recurse(n - 1) + buf[0] : 0;
}
/* a KiB-frames deep: with the layer's default stack 4 MiB of frames are
 * fine, as on glibc. */
static void *deep(void *a)
{
	return (void *)(intptr_t)recurse((int)(intptr_t)a);
}

static void *stack_info(void *a)
{
	(void)a;
	pthread_attr_t at;
	void *addr;
	size_t size;
	CHECK_EQ(pthread_getattr_np(pthread_self(), &at), 0);
	CHECK_EQ(pthread_attr_getstack(&at, &addr, &size), 0);
	char here;
	CHECK((char *)&here > (char *)addr && (char *)&here < (char *)addr + size);
	pthread_attr_destroy(&at);
	return NULL;
}

/* ---- cancellation ---- */
static atomic_int cancel_go;
static void *cancellable(void *a)
{
	(void)a;
	for (;;) {
		pthread_testcancel();
		sched_yield();
	}
	return NULL;
}
static void *uncancellable(void *a)
{
	(void)a;
	int old;
	CHECK_EQ(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old), 0);
	CHECK_EQ(old, PTHREAD_CANCEL_ENABLE);
	while (!atomic_load(&cancel_go))
		sched_yield();
	pthread_testcancel();   /* disabled: no effect */
	return (void *)3;
}

/* ---- keys ---- */
static pthread_key_t key, key2;
static atomic_int dtor_calls;
static void dtor(void *v) { CHECK(v != NULL); atomic_fetch_add(&dtor_calls, 1); }

static void *key_user(void *a)
{
	CHECK(pthread_getspecific(key) == NULL);
	CHECK_EQ(pthread_setspecific(key, a), 0);
	sched_yield();   /* may migrate: values belong to the thread */
	CHECK(pthread_getspecific(key) == a);
	return NULL;
}

/* ---- once ---- */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int once_runs;
static void once_fn(void)
{
	atomic_fetch_add(&once_runs, 1);
	usleep(20000);   /* the others arrive meanwhile and wait */
}
static void *once_user(void *a)
{
	(void)a;
	CHECK_EQ(pthread_once(&once, once_fn), 0);
	CHECK_EQ(atomic_load(&once_runs), 1);
	return NULL;
}

int main(void)
{
	/* Many threads alive at once, all blocked: green threads. */
	pthread_t t[MANY];
	CHECK_EQ(pthread_barrier_init(&hold, NULL, MANY + 1), 0);
	for (int i = 0; i < MANY; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, held, (void *)(intptr_t)i), 0);
	green_check(MANY);
	pthread_barrier_wait(&hold);
	for (int i = 0; i < MANY; i++) {
		void *r;
		CHECK_EQ(pthread_join(t[i], &r), 0);
		CHECK_EQ((intptr_t)r, i);
	}
	CHECK_EQ(pthread_barrier_destroy(&hold), 0);

	/* join, detach, exit, self, equal and their errors. */
	pthread_t a, b;
	void *r;
	CHECK_EQ(pthread_create(&a, NULL, exits, (void *)100), 0);
	CHECK_EQ(pthread_join(a, &r), 0);
	CHECK(r == (void *)101);
	CHECK_EQ(pthread_join(a, NULL), ESRCH);       /* already joined */
	CHECK_EQ(pthread_detach(a), ESRCH);
	CHECK_EQ(pthread_join((pthread_t)0x12345678, NULL), ESRCH);
	CHECK_EQ(pthread_join(pthread_self(), NULL), EDEADLK);
	CHECK_EQ(pthread_create(&a, NULL, self_join, NULL), 0);
	CHECK_EQ(pthread_join(a, NULL), 0);
	CHECK_EQ(pthread_create(&a, NULL, ret_arg, NULL), 0);
	CHECK_EQ(pthread_detach(a), 0);
	int e = pthread_detach(a);
	CHECK(e == EINVAL || e == ESRCH);   /* detached: running, or gone */
	CHECK(pthread_equal(pthread_self(), pthread_self()));
	CHECK_EQ(pthread_create(&b, NULL, ret_arg, (void *)5), 0);
	CHECK(!pthread_equal(b, pthread_self()));
	CHECK_EQ(pthread_join(b, NULL), 0);
	/* tryjoin/timedjoin: busy while it runs, then joined. */
	CHECK_EQ(pthread_barrier_init(&hold, NULL, 2), 0);
	CHECK_EQ(pthread_create(&a, NULL, held, (void *)9), 0);
	CHECK_EQ(pthread_tryjoin_np(a, &r), EBUSY);
	struct timespec soon = in_ns(CLOCK_REALTIME, 3000000);
	CHECK_EQ(pthread_timedjoin_np(a, &r, &soon), ETIMEDOUT);
	pthread_barrier_wait(&hold);
	soon = in_ns(CLOCK_REALTIME, 5000000000LL);
	CHECK_EQ(pthread_timedjoin_np(a, &r, &soon), 0);
	CHECK(r == (void *)9);
	CHECK_EQ(pthread_tryjoin_np(a, &r), ESRCH);
	CHECK_EQ(pthread_tryjoin_np(pthread_self(), &r), EDEADLK);
	CHECK_EQ(pthread_barrier_destroy(&hold), 0);

	/* Attributes. */
	pthread_attr_t at;
	int v;
	size_t sz;
	CHECK_EQ(pthread_attr_init(&at), 0);
	CHECK_EQ(pthread_attr_getdetachstate(&at, &v), 0);
	CHECK_EQ(v, PTHREAD_CREATE_JOINABLE);
	CHECK_EQ(pthread_attr_setdetachstate(&at, 42), EINVAL);
	CHECK_EQ(pthread_attr_getstacksize(&at, &sz), 0);
	CHECK_EQ(sz, 8u << 20);                         /* the layer's default */
	CHECK_EQ(pthread_attr_setstacksize(&at, 1024), EINVAL);
	CHECK_EQ(pthread_attr_setstacksize(&at, 1u << 20), 0);
	CHECK_EQ(pthread_attr_getstacksize(&at, &sz), 0);
	CHECK_EQ(sz, 1u << 20);
	CHECK_EQ(pthread_attr_getscope(&at, &v), 0);
	CHECK_EQ(v, PTHREAD_SCOPE_SYSTEM);
	CHECK_EQ(pthread_attr_setscope(&at, PTHREAD_SCOPE_PROCESS), 0);
	CHECK_EQ(pthread_attr_setscope(&at, 7), EINVAL);
	CHECK_EQ(pthread_attr_setschedpolicy(&at, SCHED_RR), 0);
	CHECK_EQ(pthread_attr_getschedpolicy(&at, &v), 0);
	CHECK_EQ(v, SCHED_RR);
	CHECK_EQ(pthread_attr_setschedpolicy(&at, 99), EINVAL);
	struct sched_param sp = { .sched_priority = 5 };
	CHECK_EQ(pthread_attr_setschedparam(&at, &sp), 0);
	sp.sched_priority = 1000;
	CHECK_EQ(pthread_attr_setschedparam(&at, &sp), EINVAL);
	CHECK_EQ(pthread_attr_setinheritsched(&at, PTHREAD_EXPLICIT_SCHED), 0);
	CHECK_EQ(pthread_attr_setinheritsched(&at, 9), EINVAL);
	CHECK_EQ(pthread_attr_setguardsize(&at, 8192), 0);
	CHECK_EQ(pthread_attr_getguardsize(&at, &sz), 0);
	CHECK_EQ(sz, 8192);
	CHECK_EQ(pthread_create(&a, &at, deep, (void *)500), 0);   /* 1 MiB stack */
	CHECK_EQ(pthread_join(a, NULL), 0);
	CHECK_EQ(pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED), 0);
	atomic_store(&detached_done, 0);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(pthread_create(&a, &at, detached_body, NULL), 0);
	e = pthread_join(a, NULL);
	CHECK(e == EINVAL || e == ESRCH);
	while (atomic_load(&detached_done) < 100)
		sched_yield();
	CHECK_EQ(pthread_attr_destroy(&at), 0);
	/* A caller-supplied stack. */
	static char mystack[256 * 1024] __attribute__((aligned(64)));
	CHECK_EQ(pthread_attr_init(&at), 0);
	CHECK_EQ(pthread_attr_setstack(&at, mystack, sizeof mystack), 0);
	CHECK_EQ(pthread_create(&a, &at, stack_info, NULL), 0);
	CHECK_EQ(pthread_join(a, NULL), 0);
	pthread_attr_destroy(&at);
	/* Old and extension attribute calls on the layer's attributes. */
	void *top, *got;
	CHECK_EQ(pthread_attr_init(&at), 0);
	top = mystack + sizeof mystack;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	CHECK_EQ(pthread_attr_setstackaddr(&at, top), 0);
	CHECK_EQ(pthread_attr_getstackaddr(&at, &got), 0);
#pragma GCC diagnostic pop
	CHECK(got == top);
	sigset_t ss;
	CHECK_EQ(pthread_attr_getsigmask_np(&at, &ss), PTHREAD_ATTR_NO_SIGMASK_NP);
	pthread_attr_destroy(&at);
	CHECK_EQ(pthread_getattr_default_np(&at), 0);
	CHECK_EQ(pthread_attr_getdetachstate(&at, &v), 0);
	CHECK_EQ(v, PTHREAD_CREATE_JOINABLE);
	pthread_attr_destroy(&at);

	/* The default stack takes glibc-sized recursion. */
	CHECK_EQ(pthread_create(&a, NULL, deep, (void *)4000), 0);
	CHECK_EQ(pthread_join(a, NULL), 0);
	CHECK_EQ(pthread_create(&a, NULL, stack_info, NULL), 0);
	CHECK_EQ(pthread_join(a, NULL), 0);
	stack_info(NULL);   /* main, on the process stack */

	/* Names. */
	char name[32];
	CHECK_EQ(pthread_setname_np(pthread_self(), "main-thread"), 0);
	CHECK_EQ(pthread_getname_np(pthread_self(), name, sizeof name), 0);
	CHECK(strcmp(name, "main-thread") == 0);
	CHECK_EQ(pthread_getname_np(pthread_self(), name, 4), ERANGE);
	CHECK_EQ(pthread_setname_np(pthread_self(), "a-name-longer-than-15"), ERANGE);
	CHECK_EQ(pthread_setname_np(b, "x"), ESRCH);   /* joined */

	/* Scheduling: accepted, validated, reported as the one class. */
	int pol;
	sp.sched_priority = 0;
	CHECK_EQ(pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp), 0);
	sp.sched_priority = 1;
	CHECK_EQ(pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp), 0);
	CHECK_EQ(pthread_setschedparam(pthread_self(), 77, &sp), EINVAL);
	CHECK_EQ(pthread_getschedparam(pthread_self(), &pol, &sp), 0);
	CHECK_EQ(pol, SCHED_OTHER);
	CHECK_EQ(pthread_getschedparam(b, &pol, &sp), ESRCH);
	CHECK_EQ(pthread_setschedprio(pthread_self(), 0), 0);
	CHECK_EQ(pthread_setconcurrency(-1), EINVAL);
	CHECK_EQ(pthread_setconcurrency(4), 0);
	CHECK_EQ(pthread_getconcurrency(), 4);
	cpu_set_t cs;
	CHECK_EQ(pthread_getaffinity_np(pthread_self(), sizeof cs, &cs), 0);
	CHECK(CPU_COUNT(&cs) >= 1);
	CHECK_EQ(pthread_setaffinity_np(pthread_self(), sizeof cs, &cs), 0);
	CHECK_EQ(pthread_setaffinity_np(b, sizeof cs, &cs), ESRCH);

	/* Signals to threads (minimal: docs/guide.md) and cancellation at
	 * pthread_testcancel. */
	CHECK_EQ(pthread_kill(pthread_self(), 0), 0);
	CHECK_EQ(pthread_kill(b, 0), ESRCH);
	CHECK_EQ(pthread_kill(pthread_self(), -1), EINVAL);
	union sigval sv = { .sival_int = 1 };
	CHECK_EQ(pthread_sigqueue(b, 0, sv), ESRCH);
	CHECK_EQ(pthread_cancel(b), ESRCH);
	CHECK_EQ(pthread_create(&a, NULL, cancellable, NULL), 0);
	CHECK_EQ(pthread_cancel(a), 0);
	CHECK_EQ(pthread_join(a, &r), 0);
	CHECK(r == PTHREAD_CANCELED);
	CHECK_EQ(pthread_create(&a, NULL, uncancellable, NULL), 0);
	CHECK_EQ(pthread_cancel(a), 0);
	atomic_store(&cancel_go, 1);
	CHECK_EQ(pthread_join(a, &r), 0);
	CHECK(r == (void *)3);
	CHECK_EQ(pthread_setcancelstate(42, NULL), EINVAL);
	CHECK_EQ(pthread_setcanceltype(42, NULL), EINVAL);

	/* Keys: PTHREAD_KEYS_MAX of them, values per thread, destructors. */
	static pthread_key_t keys[PTHREAD_KEYS_MAX];
	int made = 0;
	while (made < PTHREAD_KEYS_MAX && pthread_key_create(&keys[made], NULL) == 0)
		made++;
	CHECK(made >= PTHREAD_KEYS_MAX - 8);   /* a few may be in use by libraries */
	pthread_key_t extra;
	CHECK_EQ(pthread_key_create(&extra, NULL), EAGAIN);
	CHECK_EQ(pthread_setspecific(keys[made - 1], &made), 0);
	CHECK(pthread_getspecific(keys[made - 1]) == &made);
	for (int i = 0; i < made; i++)
		CHECK_EQ(pthread_key_delete(keys[i]), 0);
	CHECK_EQ(pthread_key_delete(keys[0]), EINVAL);
	CHECK_EQ(pthread_setspecific(keys[0], &made), EINVAL);
	CHECK_EQ(pthread_key_create(&key, dtor), 0);
	CHECK_EQ(pthread_key_create(&key2, NULL), 0);
	atomic_store(&dtor_calls, 0);
	for (int i = 0; i < 50; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, key_user, (void *)(intptr_t)(i + 1)), 0);
	for (int i = 0; i < 50; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	CHECK_EQ(atomic_load(&dtor_calls), 50);

	/* Once: one run while 20 threads call it together. */
	for (int i = 0; i < 20; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, once_user, NULL), 0);
	for (int i = 0; i < 20; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	CHECK_EQ(atomic_load(&once_runs), 1);
	return finish("pt_threads");
}
