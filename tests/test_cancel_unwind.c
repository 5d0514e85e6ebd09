/*
 * test_cancel_unwind.c — the way out of a thread as a forced unwind
 * (docs/design.md, "Cancellation").  This file is built with -fexceptions
 * (tests/CMakeLists.txt), so its __attribute__((cleanup)) variables have
 * landing pads and the program loads the unwinder (libgcc_s): weft must
 * then unwind the thread's frames, running those cleanups and its cleanup
 * handlers in frame order, innermost first, then the key destructors.
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include "sync_helpers.h"

static char log_buf[64];
static atomic_int log_len;
static void log_add(char c)
{
	int i = atomic_fetch_add(&log_len, 1);
	if (i < (int)sizeof log_buf - 1)
		log_buf[i] = c;
}
static void handler(void *arg) { log_add((char)(intptr_t)arg); }
static void scoped(char *c) { log_add(*c); }
static weft_key_t key;
static void dtor(void *v) { log_add((char)(intptr_t)v); }
static atomic_int reached, never;

/* Frames: outer (handler 'O', scoped 'o') -> middle (scoped 'm') ->
 * inner (handler 'I', scoped 'i') -> the point.  Unwound innermost frame
 * first.  Within one frame the scoped variables go first, then the cleanup
 * handlers the frame pushed: the unwinder tells the stop function where a
 * frame begins (its callee's CFA) only as it leaves it, which is also
 * when glibc runs the cleanup buffers of pthread_cleanup_push in C built
 * without -fexceptions.  Hence "iI m oO", then the key destructor. */
static __attribute__((noinline)) void inner(int exit_instead)
{
	char c __attribute__((cleanup(scoped))) = 'i';
	weft_cleanup_push(handler, (void *)'I');
	atomic_store(&reached, 1);
	if (exit_instead)
		weft_exit((void *)5);
	weft_sleep_ns(60ull * 1000 * MS);
	weft_cleanup_pop(0);
	(void)c;
}

static __attribute__((noinline)) void middle(int exit_instead)
{
	char c __attribute__((cleanup(scoped))) = 'm';
	inner(exit_instead);
	(void)c;
}

static void *outer(void *arg)
{
	weft_setspecific(key, (void *)'K');
	char c __attribute__((cleanup(scoped))) = 'o';
	weft_cleanup_push(handler, (void *)'O');
	middle((int)(intptr_t)arg);
	weft_cleanup_pop(0);
	(void)c;
	return NULL;
}

START_TEST(t_unwinder_is_loaded)
{
	/* The premise of this suite. */
	ck_assert_ptr_nonnull(dlsym(RTLD_DEFAULT, "_Unwind_ForcedUnwind"));
}
END_TEST

START_TEST(t_cancel_unwinds_frames)
{
	setup();
	ck_assert_int_eq(weft_key_create(&key, dtor), 0);
	weft_t t = spawn(outer, NULL);
	ck_assert(wait_atomic(&reached, 1, 5000));
	nap_ms(2);
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_ptr_eq(join(t), WEFT_CANCELED);
	ck_assert_str_eq(log_buf, "iImoOK");
}
END_TEST

START_TEST(t_exit_unwinds_frames)
{
	setup();
	ck_assert_int_eq(weft_key_create(&key, dtor), 0);
	weft_t t = spawn(outer, (void *)1);
	ck_assert_ptr_eq(join(t), (void *)5);
	ck_assert_str_eq(log_buf, "iImoOK");
}
END_TEST

/* A cleanup that blocks and moves to the other worker in the middle of
 * the unwinding, many threads at once. */
static void blocking_scoped(int *c)
{
	weft_sleep_ns((uint64_t)(*c % 3) * 100000);
	log_add('b');
}

static void *deep(void *arg)
{
	int depth = (int)(intptr_t)arg;
	int c __attribute__((cleanup(blocking_scoped))) = depth;
	if (depth == 0) {
		atomic_fetch_add(&reached, 1);
		while (!atomic_load(&never))   /* until cancelled */
			weft_sleep_ns(1000 * MS);
		return NULL;
	}
	deep((void *)(intptr_t)(depth - 1));
	(void)c;
	return NULL;
}

START_TEST(t_unwind_through_blocking_cleanups)
{
	setup();
	atomic_store(&reached, 0);
	enum { N = 20, DEPTH = 8 };
	weft_t t[N];
	for (int i = 0; i < N; i++)
		t[i] = spawn(deep, (void *)(intptr_t)DEPTH);
	ck_assert(wait_atomic(&reached, N, 5000));
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_cancel(t[i]), 0);
	for (int i = 0; i < N; i++)
		ck_assert_ptr_eq(join(t[i]), WEFT_CANCELED);
	ck_assert_int_eq(atomic_load(&log_len), N * (DEPTH + 1));
}
END_TEST

static Suite *unwind_suite(void)
{
	Suite *s = suite_create("cancel-unwind");
	TCase *tc = tcase_create("unwind");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_unwinder_is_loaded);
	tcase_add_test(tc, t_cancel_unwinds_frames);
	tcase_add_test(tc, t_exit_unwinds_frames);
	tcase_add_test(tc, t_unwind_through_blocking_cleanups);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(unwind_suite());
}
