/*
 * weft_check.h — Check, made safe to use from green threads.
 *
 * Check's assertions take a pthread mutex and write to a pipe even when they
 * pass (_mark_point).  Check is linked into each test program, so its code
 * counts as the application's and weft may preempt a green thread inside it
 * while it holds that mutex; the next green thread on the same worker that
 * asserts then blocks the whole worker on the mutex, and the holder, queued
 * behind it, never runs again.  So a passing assertion does nothing here, and
 * a failing one disables preemption of its caller before reporting.  (The
 * same holds for any statically linked library that takes pthread locks:
 * weft's README says to use weft's locks in green threads.)
 */
#ifndef WEFT_TESTS_CHECK_H
#define WEFT_TESTS_CHECK_H

#include <check.h>
#include <weft.h>
#include "check_main.h"

#undef ck_assert_msg
#define ck_assert_msg(expr, ...) \
	((expr) ? (void)0 : (weft_preempt_disable(), \
	 _ck_assert_failed(__FILE__, __LINE__, "Assertion '" #expr "' failed", ## __VA_ARGS__)))
#undef ck_abort_msg
#define ck_abort_msg(...) \
	(weft_preempt_disable(), _ck_assert_failed(__FILE__, __LINE__, "Failed", ## __VA_ARGS__))

#ifdef __SANITIZE_ADDRESS__
/*
 * Under AddressSanitizer, LeakSanitizer cannot see all of weft's roots: the
 * TCB table is mmap'd (a thread's key values hang from it), parked green
 * stacks are not any kernel thread's registered stack, and clone workers are
 * not ASan threads at all — it then reports what these reference as leaked.
 * Leak checking stays off until weft registers those regions
 * (__lsan_register_root_region); ASAN_OPTIONS in the environment overrides
 * this.
 */
#ifndef WEFT_CHECK_ASAN_OPTIONS
#define WEFT_CHECK_ASAN_OPTIONS "detect_leaks=0"
#endif
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return WEFT_CHECK_ASAN_OPTIONS; }
#endif

#endif
