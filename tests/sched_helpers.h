/*
 * sched_helpers.h — what the suites of the Runtime, Threads, Attributes
 * and Thread-specific data sections (test_runtime.c, test_threads.c,
 * test_attr.c, test_keys.c, test_errno.c, test_yield_sleep.c) share.
 *
 * Each test runs in its own forked process (Check's default), so each
 * initializes weft itself: environment variables are set at the top of a
 * test, before any weft call (set_workers).
 */
#ifndef WEFT_TESTS_SCHED_HELPERS_H
#define WEFT_TESTS_SCHED_HELPERS_H

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <weft.h>
#include "weft_check.h"
#include "helpers.h"

static inline void set_workers(const char *n)
{
	ck_assert_int_eq(setenv("WEFT_WORKERS", n, 1), 0);
	unsetenv("WEFT_STACK_SIZE");
}

/* A name longer than the 31 bytes a thread name keeps. */
static const char long_name[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEF"; /* 42 */

#endif
