/*
 * test_cxx.cc — C++ programs on green threads (docs/guide.md, "C and C++
 * programs"; docs/design.md, "C++ and the C library's per-thread state").
 *
 * Covered: exceptions being handled survive yields and preemption, on one
 * and on two workers (the exception globals follow the green thread);
 * std::call_once under preemption with threads moving between workers
 * (libstdc++'s call_once words follow the thread); function-local statics
 * whose initializer sleeps, is preempted, or throws (waiters park instead
 * of blocking their worker; a plain pthread waiting beside them is woken
 * too); thread_local is per worker, and a cached thread_local address is
 * the current worker's after a move; a library with initial-exec TLS
 * dlopen'ed after weft started reads its initialized TLS on every worker,
 * including in its constructor; libstdc++ sees a multi-threaded process.
 *
 * Each test runs in its own forked process and sets its environment before
 * the first weft call.  Green threads count what went wrong; main asserts
 * (a Check assertion in a green thread is safe only when it fails:
 * weft_check.h).  Loops that keep addresses in registers are compiled at
 * -O2 whatever the build type.
 */
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <dlfcn.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include "../weft_check.h"

#define O2 __attribute__((optimize("O2"), noinline))

#ifdef WF_ASAN
static const int scale = 10;    /* ASan: ten times fewer rounds */
#else
static const int scale = 1;
#endif

static void setenv_weft(const char *workers, const char *quantum)
{
	ck_assert_int_eq(setenv("WEFT_WORKERS", workers, 1), 0);
	ck_assert_int_eq(setenv("WEFT_QUANTUM_US", quantum, 1), 0);
}

static weft_stats_t stats()
{
	weft_stats_t s;
	ck_assert_int_eq(weft_stats_get(-1, &s), 0);
	return s;
}

static uint64_t now_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void run_threads(int n, void *(*fn)(void *))
{
	weft_t t[16];
	ck_assert_int_le(n, 16);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, fn, (void *)(intptr_t)(i + 1)), 0);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
}

/* Spin in this file's code, where ticks may switch threads (a clock read
 * would be a call into the vdso, where they may not). */
static void spin(unsigned n)
{
	for (volatile unsigned k = 0; k < n; k++)
		;
}

/* ---- exceptions ------------------------------------------------------- */

struct Boom {
	long id;
};

static std::atomic<long> bad, rounds;
static bool yield_inside;      /* yield in the handler and in the unwinding */
static unsigned spin_inside;   /* spin rounds in the handler and in the unwinding */

/* Inside a handler: the exception being handled is this thread's, however
 * it is looked at, and none is in flight. */
static void check_handled(long id)
{
	try {
		throw;
	} catch (Boom &b) {
		if (b.id != id)
			bad++;
	} catch (...) {
		bad++;
	}
	try {
		std::rethrow_exception(std::current_exception());
	} catch (Boom &b) {
		if (b.id != id)
			bad++;
	}
	if (std::uncaught_exceptions() != 0)
		bad++;
}

/* Destroyed while Boom unwinds past it: one exception is in flight. */
struct Unwound {
	~Unwound()
	{
		if (yield_inside)
			weft_yield();
		spin(spin_inside);
		if (std::uncaught_exceptions() != 1)
			bad++;
	}
};

static void *thrower(void *arg)
{
	long id = (long)(intptr_t)arg;
	uint64_t until = now_ns() + 200000000ull / scale;
	while (now_ns() < until) {
		try {
			Unwound u;
			throw Boom{id};
		} catch (Boom &b) {
			if (yield_inside)
				weft_yield();
			spin(spin_inside);
			if (b.id != id)
				bad++;
			check_handled(id);
		}
		rounds++;
	}
	return NULL;
}

/* Rounds of 8 threads until `enough` says the threads were preempted or
 * moved often enough to tell (how often depends on how the kernel runs
 * the workers, and most ticks land in libc, where they wait) and more than
 * 100 rounds ran, or for 90 s at most (the case's timeout is 120 s).  Each
 * round lasts a wall-clock time, so a loaded machine that runs the workers
 * little gets more rounds, not a weaker test (one round of 8 threads saw 8
 * rounds in all at a load of 6). */
static void rounds_until(void *(*fn)(void *), bool (*enough)(const weft_stats_t &))
{
	uint64_t until = now_ns() + 90000000000ull;
	do
		run_threads(8, fn);
	while ((!enough(stats()) || rounds.load() <= 100) && now_ns() < until);
	ck_assert_int_gt(rounds.load(), 100);
}

static void check_no_bad(void)
{
	ck_assert_msg(bad.load() == 0, "%ld wrong views of the exception being handled in %ld rounds",
	              bad.load(), rounds.load());
}

static bool ran_once(const weft_stats_t &) { return rounds.load() > 0; }

static void exceptions_across_yields(const char *workers)
{
	setenv_weft(workers, "0");
	yield_inside = true;
	rounds_until(thrower, ran_once);
	check_no_bad();
}

START_TEST(t_exceptions_across_yields_1) { exceptions_across_yields("1"); }
END_TEST

START_TEST(t_exceptions_across_yields_2) { exceptions_across_yields("2"); }
END_TEST

static bool preempted_enough(const weft_stats_t &s) { return s.preemptions >= 50; }

/* Ticks land inside handlers and unwinding, where most of the time is
 * spent. */
static void exceptions_preempted(const char *workers)
{
	setenv_weft(workers, "1000");
	spin_inside = 20000;
	rounds_until(thrower, preempted_enough);
	ck_assert_msg(preempted_enough(stats()), "only %llu preemptions",
	              (unsigned long long)stats().preemptions);
	check_no_bad();
}

START_TEST(t_exceptions_preempted_1) { exceptions_preempted("1"); }
END_TEST

START_TEST(t_exceptions_preempted_2) { exceptions_preempted("2"); }
END_TEST

/* ---- std::call_once ----------------------------------------------------- */

/* call_once stores its callable in libstdc++'s TLS, then calls
 * pthread_once, whose callback reads it back: a tick between the two, and a
 * move to another worker, used to run another thread's callable. */
O2 static void *once_caller(void *arg)
{
	long id = (long)(intptr_t)arg;
	uint64_t until = now_ns() + 200000000ull / scale;
	while (now_ns() < until) {
		for (int k = 0; k < 200; k++) {
			std::once_flag f;
			long seen = -1;
			int calls = 0;
			std::call_once(f, [&] { seen = id; calls++; });
			if (seen != id || calls != 1)
				bad++;
			rounds++;
		}
	}
	return NULL;
}

static bool moved_enough(const weft_stats_t &s)
{
	return s.preemptions >= 300 && s.migrations >= 300;
}

START_TEST(t_call_once_preempted)
{
	setenv_weft("2", "100");
	rounds_until(once_caller, moved_enough);
	ck_assert_int_eq(bad.load(), 0);
	ck_assert_msg(moved_enough(stats()), "threads hardly preempted (%llu) or moved (%llu)",
	              (unsigned long long)stats().preemptions,
	              (unsigned long long)stats().migrations);
}
END_TEST

/* ---- function-local statics ---------------------------------------------- */

static std::atomic<int> inits, init_started;

static int sleepy_value()
{
	static int v = [] {
		inits++;
		init_started = 1;
		weft_sleep_ns(30 * 1000000ull);   /* parked inside the initializer */
		return 42;
	}();
	return v;
}

static void *sleepy_user(void *)
{
	if (sleepy_value() != 42)
		bad++;
	return NULL;
}

/* The other threads wait for the initializer parked in weft_sleep_ns: they
 * park too, so no worker ever blocks in the kernel and the monitor never
 * has to hand one over. */
START_TEST(t_static_init_sleeps_1)
{
	setenv_weft("1", "10000");
	run_threads(8, sleepy_user);
	ck_assert_int_eq(bad.load(), 0);
	ck_assert_int_eq(inits.load(), 1);
	ck_assert_msg(stats().handoffs == 0, "%llu workers blocked in a guard wait were handed over",
	              (unsigned long long)stats().handoffs);
}
END_TEST

static std::atomic<int> arrived;

/* Spins in its initializer until every other thread has reached the
 * static: on one worker they can only get there by preempting it. */
static int spinning_value()
{
	static int v = [] {
		inits++;
		uint64_t until = now_ns() + 10000000000ull;
		while (arrived.load() < 8 && now_ns() < until)
			spin(100000);
		return 43;
	}();
	return v;
}

static void *spinning_user(void *)
{
	arrived++;
	if (spinning_value() != 43)
		bad++;
	return NULL;
}

/* The initializer is preempted: the threads that reach the static meanwhile
 * park and the worker goes back to the initializer. */
START_TEST(t_static_init_preempted_1)
{
	setenv_weft("1", "1000");
	run_threads(8, spinning_user);
	ck_assert_int_eq(arrived.load(), 8);
	ck_assert_int_eq(bad.load(), 0);
	ck_assert_int_eq(inits.load(), 1);
	ck_assert_int_gt(stats().preemptions, 0);
	ck_assert_msg(stats().handoffs == 0, "%llu workers blocked in a guard wait were handed over",
	              (unsigned long long)stats().handoffs);
}
END_TEST

static int throwing_value()
{
	static int v = [] {
		if (++inits == 1) {
			weft_sleep_ns(20 * 1000000ull);   /* let the others queue up */
			throw std::runtime_error("first initialization fails");
		}
		return 44;
	}();
	return v;
}

static void *throwing_user(void *)
{
	for (;;) {
		try {
			if (throwing_value() != 44)
				bad++;
			return NULL;
		} catch (std::runtime_error &) {
			rounds++;   /* the one whose initialization threw: try again */
		}
	}
}

/* An initializer that throws aborts the guard: a waiter takes over. */
START_TEST(t_static_init_throws_2)
{
	setenv_weft("2", "10000");
	run_threads(8, throwing_user);
	ck_assert_int_eq(bad.load(), 0);
	ck_assert_int_eq(inits.load(), 2);
	ck_assert_int_eq(rounds.load(), 1);
	ck_assert_int_eq(stats().handoffs, 0);
}
END_TEST

static int foreign_got;

static void *foreign_waiter(void *)
{
	while (!init_started.load())
		usleep(100);
	foreign_got = sleepy_value();   /* sleeps in the kernel until released */
	return NULL;
}

/* A kernel thread that is not a green thread waits for a green
 * initializer beside green waiters, and is woken by the release. */
START_TEST(t_static_init_foreign_waiter)
{
	setenv_weft("2", "10000");
	ck_assert_int_eq(weft_init(), 0);
	pthread_t p;
	ck_assert_int_eq(pthread_create(&p, NULL, foreign_waiter, NULL), 0);
	run_threads(4, sleepy_user);
	ck_assert_int_eq(pthread_join(p, NULL), 0);
	ck_assert_int_eq(foreign_got, 42);
	ck_assert_int_eq(bad.load(), 0);
	ck_assert_int_eq(inits.load(), 1);
}
END_TEST

/* ---- thread_local -------------------------------------------------------- */

static thread_local long tl_value;

static void *tl_writer(void *)
{
	tl_value = 1234;
	weft_yield();   /* the reader runs on this worker */
	return NULL;
}

static void *tl_reader(void *)
{
	if (tl_value != 1234)
		bad++;
	return NULL;
}

/* thread_local is per worker: a thread sees what another one left in the
 * same worker's copy. */
START_TEST(t_thread_local_per_worker)
{
	setenv_weft("1", "0");
	weft_t w, r;
	ck_assert_int_eq(weft_create(&w, NULL, tl_writer, NULL), 0);
	ck_assert_int_eq(weft_create(&r, NULL, tl_reader, NULL), 0);
	ck_assert_int_eq(weft_join(w, NULL), 0);
	ck_assert_int_eq(weft_join(r, NULL), 0);
	ck_assert_int_eq(bad.load(), 0);
}
END_TEST

/* This worker's &tl_value, computed afresh. */
O2 static long *tl_here()
{
	long *p = &tl_value;
	__asm__ volatile("" : "+r"(p));
	return p;
}

/* An address of a thread_local the compiler keeps across a yield that
 * moves the thread names the new worker's copy. */
static weft_barrier_t movers_ready;

O2 static void *tl_mover(void *)
{
	weft_barrier_wait(&movers_ready);   /* all queued at once: idle workers steal */
	for (int i = 0; i < 20000 / scale; i++) {
		long *cached = &tl_value;
		__asm__ volatile("" : "+r"(cached));
		weft_yield();
		__asm__ volatile("" : "+r"(cached) : : "memory");
		if (cached != tl_here())
			bad++;
	}
	return NULL;
}

START_TEST(t_thread_local_address_moves)
{
	setenv_weft("2", "10000");
	ck_assert_int_eq(weft_barrier_init(&movers_ready, 8), 0);
	for (int round = 0; round < 100 && stats().migrations < 50; round++)
		run_threads(8, tl_mover);
	ck_assert_uint_ge(stats().migrations, 50);
	ck_assert_int_eq(bad.load(), 0);
}
END_TEST

static std::atomic<int> tl_constructed;
struct Counted {
	long v = 7;
	Counted() { tl_constructed++; }
};
static thread_local Counted tl_counted;

static void *tl_counted_user(void *)
{
	for (int i = 0; i < 100; i++) {
		if (tl_counted.v != 7)
			bad++;
		weft_yield();
	}
	return NULL;
}

/* A thread_local object is built once per kernel thread that uses it, not
 * once per green thread. */
START_TEST(t_thread_local_built_per_worker)
{
	setenv_weft("2", "0");
	run_threads(16, tl_counted_user);
	ck_assert_int_eq(bad.load(), 0);
	ck_assert_int_ge(tl_constructed.load(), 1);
	ck_assert_int_le(tl_constructed.load(), weft_workers() + (int)stats().handoffs);
}
END_TEST

/* ---- dlopen'ed initial-exec TLS ----------------------------------------- */

static long (*ie_read)(void);
static int (*ie_ctor_ok)(void);
static std::atomic<int> seen_on[64];

static weft_barrier_t readers_ready;

static void *ie_reader(void *)
{
	weft_barrier_wait(&readers_ready);
	for (int i = 0; i < 4000 / scale; i++) {
		if (ie_read() != 0)
			bad++;
		int w = weft_worker_self();
		if (w >= 0 && w < 64)
			seen_on[w] = 1;
		if (i % 10 == 0)
			weft_yield();
	}
	return NULL;
}

static std::atomic<int> opened;
static int opened_on;

/* dlopen from a clone worker that glibc did not create (not worker 0, the
 * process's initial thread): the module's constructor runs there.  The
 * first thread that finds itself on another worker opens it; the others
 * yield until then. */
static weft_barrier_t all_ready;

static void *ie_opener(void *)
{
	weft_barrier_wait(&all_ready);   /* all queued at once: idle workers steal */
	weft_preempt_disable();   /* stay on this worker until dlopen returns */
	uint64_t until = now_ns() + 5000000000ull;
	while ((weft_worker_self() == 0 || opened.load()) && now_ns() < until) {
		if (opened.load()) {
			weft_preempt_enable();
			return NULL;
		}
		weft_yield();
	}
	if (opened.exchange(1)) {
		weft_preempt_enable();
		return NULL;
	}
	opened_on = weft_worker_self();
	void *h = dlopen(WEFT_TEST_IE_MODULE, RTLD_NOW);
	weft_preempt_enable();
	if (!h) {
		bad++;
		return NULL;
	}
	ie_read = (long (*)(void))dlsym(h, "ie_read");
	ie_ctor_ok = (int (*)(void))dlsym(h, "ie_ctor_ok");
	return NULL;
}

static void ie_tls_on(const char *workers)
{
	setenv_weft(workers, "10000");
	ck_assert_int_eq(weft_barrier_init(&all_ready, 8), 0);
	run_threads(8, ie_opener);
	ck_assert_msg(opened.load() && opened_on != 0, "no thread ran on a worker other than 0");
	ck_assert_int_eq(bad.load(), 0);
	ck_assert_ptr_nonnull((void *)ie_read);
	ck_assert_msg(ie_ctor_ok(), "the module's constructor read uninitialized TLS");
	ck_assert_int_eq(weft_barrier_init(&readers_ready, 16), 0);
	int workers_seen = 0;
	for (int round = 0; round < 20 && workers_seen < 2; round++) {
		run_threads(16, ie_reader);
		workers_seen = 0;
		for (auto &s : seen_on)
			workers_seen += s.load();
	}
	ck_assert_int_eq(bad.load(), 0);
	ck_assert_int_ge(workers_seen, 2);
}

START_TEST(t_dlopen_ie_tls_2) { ie_tls_on("2"); }
END_TEST

START_TEST(t_dlopen_ie_tls_8) { ie_tls_on("8"); }
END_TEST

/* ---- libstdc++'s view of the process ------------------------------------- */

extern "C" char __libc_single_threaded;

/* libstdc++ skips atomics (shared_ptr counts, the guards of statics) while
 * __libc_single_threaded says so; weft interleaves threads even on one
 * worker, so it must not. */
START_TEST(t_not_single_threaded_1)
{
	setenv_weft("1", "10000");
	ck_assert_int_eq(weft_init(), 0);
	ck_assert_int_eq(__libc_single_threaded, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cxx");
	TCase *tc = tcase_create("cxx");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_exceptions_across_yields_1);
	tcase_add_test(tc, t_exceptions_across_yields_2);
	tcase_add_test(tc, t_exceptions_preempted_1);
	tcase_add_test(tc, t_exceptions_preempted_2);
	tcase_add_test(tc, t_call_once_preempted);
	tcase_add_test(tc, t_static_init_sleeps_1);
	tcase_add_test(tc, t_static_init_preempted_1);
	tcase_add_test(tc, t_static_init_throws_2);
	tcase_add_test(tc, t_static_init_foreign_waiter);
	tcase_add_test(tc, t_thread_local_per_worker);
	tcase_add_test(tc, t_thread_local_address_moves);
	tcase_add_test(tc, t_thread_local_built_per_worker);
	tcase_add_test(tc, t_dlopen_ie_tls_2);
	tcase_add_test(tc, t_dlopen_ie_tls_8);
	tcase_add_test(tc, t_not_single_threaded_1);
	suite_add_tcase(s, tc);
	return weft_check_run(s);
}
