/*
 * sync_helpers.h — what the suites of the Synchronization section
 * (test_sync_*.c) share: failure counting from green threads, the common
 * set-up (2 workers), and starting and joining threads.
 *
 * Thread bodies count failures with T_CHECK instead of asserting (an
 * assertion exits the process from a green thread); a test asserts the
 * count at the end with ASSERT_NO_FAILS.
 */
#ifndef WEFT_TESTS_SYNC_HELPERS_H
#define WEFT_TESTS_SYNC_HELPERS_H

#include <check.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <weft.h>
#include "weft_check.h"
#include "helpers.h"

static atomic_int fails;
static char first_fail[256];

#define T_CHECK(c) do { if (!(c)) t_fail(__LINE__, #c); } while (0)
static inline void t_fail(int line, const char *what)
{
	if (atomic_fetch_add(&fails, 1) == 0)
		snprintf(first_fail, sizeof first_fail, "line %d: %s", line, what);
}
#define ASSERT_NO_FAILS() ck_assert_msg(atomic_load(&fails) == 0, "%d failures, first: %s", \
                                        atomic_load(&fails), first_fail)

static inline void setup_env(void)
{
	setenv("WEFT_WORKERS", "2", 1);
	atomic_store(&fails, 0);
	first_fail[0] = 0;
}

static inline void setup(void)
{
	setup_env();
	ck_assert_int_eq(weft_init(), 0);
	ck_assert_int_eq(weft_workers(), 2);
}

static inline uint32_t rnd(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static inline void spin_ns(uint64_t ns)
{
	uint64_t end = now_ns() + ns;
	while (now_ns() < end)
		;
}

static inline void spawn_join(int n, void *(*fn)(void *))
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
static inline void spawn_queued(int n, weft_t *t, void *(*fn)(void *))
{
	weft_preempt_disable();
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, fn, (void *)(intptr_t)i), 0);
	weft_preempt_enable();
}

static inline weft_t spawn(void *(*fn)(void *), void *arg)
{
	weft_t t;
	ck_assert_int_eq(weft_create(&t, NULL, fn, arg), 0);
	return t;
}

static inline void *join(weft_t t)
{
	void *r = NULL;
	ck_assert_int_eq(weft_join(t, &r), 0);
	return r;
}

/* Yield until *flag becomes nonzero (bounded: a hang fails the test). */
static inline void wait_flag(atomic_int *flag)
{
	while (!atomic_load(flag))
		weft_yield();
}

static inline void nap_ms(unsigned ms) { weft_sleep_ns((uint64_t)ms * 1000000ull); }

/* Threads linked on an object's wait queue (white-box: its private count). */
static inline uint32_t wait_count(const weft_waitq_ *q) { return __atomic_load_n(&q->_count, __ATOMIC_ACQUIRE); }

#endif
