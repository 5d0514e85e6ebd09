/*
 * test_attr.c — the Attributes section of the API (weft.h).
 *
 * Covered: defaults and round trips, WEFT_STACK_SIZE as the default, a
 * stack size honoured, a caller-owned stack really used.
 *
 * Each test runs in its own forked process (Check's default), so each
 * initializes weft itself: environment variables are set at the top of a
 * test, before any weft call.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>
#include "child_capture.h"
#include "sched_helpers.h"

/* ------------------------------------------------------------------------ */
/* Attributes                                                               */
/* ------------------------------------------------------------------------ */

START_TEST(t_attr_defaults_roundtrip)
{
	set_workers("2");
	weft_attr_t a;
	int st = -1;
	size_t sz = 0;
	void *addr = (void *)1;
	char name[32];
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_getdetachstate(&a, &st), 0);
	ck_assert_int_eq(st, WEFT_CREATE_JOINABLE);
	ck_assert_int_eq(weft_attr_getstacksize(&a, &sz), 0);
	ck_assert_uint_eq(sz, 64 * 1024);  /* WEFT_STACK_SIZE default */
	ck_assert_int_eq(weft_attr_getstack(&a, &addr, &sz), 0);
	ck_assert_ptr_null(addr);
	ck_assert_int_eq(weft_attr_getname(&a, name, sizeof name), 0);
	ck_assert_str_eq(name, "");

	ck_assert_int_eq(weft_attr_setdetachstate(&a, WEFT_CREATE_DETACHED), 0);
	ck_assert_int_eq(weft_attr_getdetachstate(&a, &st), 0);
	ck_assert_int_eq(st, WEFT_CREATE_DETACHED);
	ck_assert_int_eq(weft_attr_setdetachstate(&a, WEFT_CREATE_JOINABLE), 0);
	ck_assert_int_eq(weft_attr_getdetachstate(&a, &st), 0);
	ck_assert_int_eq(st, WEFT_CREATE_JOINABLE);

	ck_assert_int_eq(weft_attr_setstacksize(&a, WEFT_STACK_MIN), 0);
	ck_assert_int_eq(weft_attr_getstacksize(&a, &sz), 0);
	ck_assert_uint_eq(sz, WEFT_STACK_MIN);
	ck_assert_int_eq(weft_attr_setstacksize(&a, 1 << 20), 0);
	ck_assert_int_eq(weft_attr_getstacksize(&a, &sz), 0);
	ck_assert_uint_eq(sz, 1 << 20);
	ck_assert_int_eq(weft_attr_setstacksize(&a, 100000), 0);
	ck_assert_int_eq(weft_attr_getstacksize(&a, &sz), 0);
	ck_assert_uint_eq(sz, 100000);

	static char mem[32768];
	ck_assert_int_eq(weft_attr_setstack(&a, mem, sizeof mem), 0);
	addr = NULL;
	sz = 0;
	ck_assert_int_eq(weft_attr_getstack(&a, &addr, &sz), 0);
	ck_assert_ptr_eq(addr, mem);
	ck_assert_uint_eq(sz, sizeof mem);

	ck_assert_int_eq(weft_attr_setname(&a, "n1"), 0);
	ck_assert_int_eq(weft_attr_getname(&a, name, sizeof name), 0);
	ck_assert_str_eq(name, "n1");
	ck_assert_int_eq(weft_attr_setname(&a, long_name), 0);
	ck_assert_int_eq(weft_attr_getname(&a, name, sizeof name), 0);
	ck_assert_uint_eq(strlen(name), 31);
	ck_assert_int_eq(memcmp(name, long_name, 31), 0);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);

	/* Re-initialized after destroy: defaults again. */
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_getname(&a, name, sizeof name), 0);
	ck_assert_str_eq(name, "");
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
}
END_TEST

START_TEST(t_attr_default_stack_from_env)
{
	set_workers("2");
	ck_assert_int_eq(setenv("WEFT_STACK_SIZE", "256K", 1), 0);
	weft_attr_t a;
	size_t sz = 0;
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_getstacksize(&a, &sz), 0);
	ck_assert_uint_eq(sz, 256 * 1024);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
}
END_TEST

/* Touch `bytes` of stack below the caller, a page at a time. */
static __attribute__((noinline)) uintptr_t use_stack(size_t bytes)
{
	if (bytes < 2048) {
		volatile char pad[16];
		pad[0] = 1;
		return (uintptr_t)&pad[0];
	}
	volatile char chunk[2048];
	for (size_t i = 0; i < sizeof chunk; i += 512)
		chunk[i] = (char)i;
	uintptr_t deepest = use_stack(bytes - sizeof chunk);
	chunk[1] = chunk[0];
	return deepest;
}

static void *stack_user(void *a)
{
	size_t bytes = (size_t)a;
	uintptr_t top = (uintptr_t)__builtin_frame_address(0);
	uintptr_t deepest = use_stack(bytes);
	return (void *)(top - deepest);
}

START_TEST(t_attr_stacksize_honoured)
{
	set_workers("2");
	weft_attr_t a;
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_setstacksize(&a, 1 << 20), 0);
	weft_t t;
	void *r;
	/* 900 KiB of a 1 MiB stack. */
	ck_assert_int_eq(weft_create(&t, &a, stack_user, (void *)(size_t)(900 * 1024)), 0);
	ck_assert_int_eq(weft_join(t, &r), 0);
	ck_assert_uint_ge((uintptr_t)r, 890 * 1024);
	/* The minimum stack holds a few KiB of frames plus printf. */
	ck_assert_int_eq(weft_attr_setstacksize(&a, WEFT_STACK_MIN), 0);
	ck_assert_int_eq(weft_create(&t, &a, stack_user, (void *)(size_t)(6 * 1024)), 0);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
}
END_TEST

START_TEST(t_env_stack_size_honoured)
{
	set_workers("2");
	ck_assert_int_eq(setenv("WEFT_STACK_SIZE", "2M", 1), 0);
	weft_t t;
	void *r;
	ck_assert_int_eq(weft_create(&t, NULL, stack_user, (void *)(size_t)(1800 * 1024)), 0);
	ck_assert_int_eq(weft_join(t, &r), 0);
	ck_assert_uint_ge((uintptr_t)r, 1790 * 1024);
}
END_TEST

struct us_probe { char *lo, *hi; uintptr_t local; uintptr_t deepest; };
static void *user_stack_child(void *a)
{
	struct us_probe *p = a;
	volatile int here = 1;
	p->local = (uintptr_t)&here;
	p->deepest = use_stack(40 * 1024);
	weft_yield();
	weft_sleep_ns(1000000);
	char buf[64];
	snprintf(buf, sizeof buf, "%d %f", here, 1.5);
	ck_assert_str_eq(buf, "1 1.500000");
	return NULL;
}

START_TEST(t_attr_user_stack)
{
	set_workers("2");
	size_t size = 128 * 1024;
	char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(mem, MAP_FAILED);
	weft_attr_t a;
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_setstack(&a, mem, size), 0);
	for (int round = 0; round < 3; round++) {
		/* The same memory serves one thread after another. */
		struct us_probe p = { mem, mem + size, 0, 0 };
		weft_t t;
		ck_assert_int_eq(weft_create(&t, &a, user_stack_child, &p), 0);
		ck_assert_int_eq(weft_join(t, NULL), 0);
		ck_assert_msg(p.local >= (uintptr_t)mem && p.local < (uintptr_t)mem + size,
		              "local at %#lx is not inside the user stack [%p, %p)",
		              (unsigned long)p.local, (void *)mem, (void *)(mem + size));
		ck_assert(p.deepest >= (uintptr_t)mem && p.deepest < p.local);
	}
	/* Still ours: weft never freed or protected it. */
	memset(mem, 0x5a, size);
	ck_assert_int_eq(munmap(mem, size), 0);

	/* Memory that is not page- nor 16-byte aligned works too. */
	char *raw = malloc(96 * 1024 + 64);
	ck_assert_ptr_nonnull(raw);
	char *odd = raw + 8;
	ck_assert_int_eq(weft_attr_setstack(&a, odd, 96 * 1024 + 3), 0);
	struct us_probe p = { odd, odd + 96 * 1024 + 3, 0, 0 };
	weft_t t;
	ck_assert_int_eq(weft_create(&t, &a, user_stack_child, &p), 0);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	ck_assert(p.local >= (uintptr_t)odd && p.local < (uintptr_t)odd + 96 * 1024 + 3);
	free(raw);
	ck_assert_int_eq(weft_attr_destroy(&a), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *attr_suite(void)
{
	Suite *s = suite_create("attr");
	TCase *tc;

	tc = tcase_create("attributes");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_attr_defaults_roundtrip);
	tcase_add_test(tc, t_attr_default_stack_from_env);
	tcase_add_test(tc, t_attr_stacksize_honoured);
	tcase_add_test(tc, t_env_stack_size_honoured);
	tcase_add_test(tc, t_attr_user_stack);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(attr_suite());
}
