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
 * Under AddressSanitizer: weft registers its mmap'd roots with
 * LeakSanitizer (the TCB table, from which key tables and names hang, and
 * the clone workers' kernel stacks), but LeakSanitizer still cannot scan
 * the registers of clone workers (threads it did not create) or the stack
 * of a parked green thread, so it may report blocks that are still in use.
 * Its reports are trustworthy with WEFT_KTHREADS=pthread, where CI turns
 * leak checking on (ASAN_OPTIONS=detect_leaks=1 in .ci/run, which overrides
 * this default); a suite run without ASAN_OPTIONS has it off.
 */
#ifndef WEFT_CHECK_ASAN_OPTIONS
#define WEFT_CHECK_ASAN_OPTIONS "detect_leaks=0"
#endif
#ifdef __cplusplus
extern "C" {   /* ASan looks the hook up by its C name */
#endif
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return WEFT_CHECK_ASAN_OPTIONS; }
#ifdef __cplusplus
}
#endif
#endif

#endif
