/*
 * gdb_target.c — the program check_gdb.sh runs under gdb to test
 * tools/gdb/weft-gdb.py.
 *
 * Four green threads park in functions of their own, so that their
 * backtraces are recognizable:
 *   "gdb-holder"        locks `held`, then waits on `cond` in gdb_waits_on_cond
 *   "gdb-mutex-waiter"  blocks on `held` in gdb_waits_for_mutex
 *   "gdb-sleeper"       sleeps in weft_sleep_ns in gdb_sleeps
 *   "gdb-joiner"        joins the holder in gdb_joins
 * When all four are seen blocked (weft_dump says so), main calls
 * gdb_all_parked(), where the test stops the program; then main releases
 * everything, joins everyone and exits 0.  Without a debugger it simply
 * runs to the end.  With GDB_TARGET_ABORT set in the environment it aborts
 * in place of the breakpoint instead, leaving a core file (where core dumps
 * are enabled) with every thread parked.  The handles are global so that
 * gdb can name them (`weft bt gdb_mutex_waiter`).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <weft.h>
#include "../helpers.h"

#define NOINLINE __attribute__((noinline))

/* A sleep long enough never to end between the check that the sleeper is
 * asleep and the breakpoint, short enough to end soon after `continue`. */
#define SLEEP_NS 2000000000ull
/* The sleeper must have begun its sleep at most this long before main
 * reaches the breakpoint. */
#define FRESH_NS 500000000ull

weft_t gdb_main, gdb_holder, gdb_mutex_waiter, gdb_sleeper, gdb_joiner;

static weft_mutex_t held = WEFT_MUTEX_INITIALIZER;
static weft_mutex_t cond_lock = WEFT_MUTEX_INITIALIZER;
static weft_cond_t cond = WEFT_COND_INITIALIZER;
static int go;                        /* under cond_lock */
static atomic_int holder_has_it;
static atomic_int released;
static _Atomic uint64_t sleep_began;  /* CLOCK_MONOTONIC ns */

static void check(int err, const char *what)
{
	if (err) {
		fprintf(stderr, "gdb_target: %s: %s\n", what, strerror(err));
		exit(2);
	}
}

NOINLINE void gdb_waits_on_cond(void)
{
	check(weft_mutex_lock(&cond_lock), "lock cond_lock");
	while (!go)
		check(weft_cond_wait(&cond, &cond_lock), "cond wait");
	check(weft_mutex_unlock(&cond_lock), "unlock cond_lock");
}

NOINLINE void *gdb_holds_mutex(void *arg)
{
	(void)arg;
	check(weft_mutex_lock(&held), "lock held");
	atomic_store(&holder_has_it, 1);
	gdb_waits_on_cond();
	check(weft_mutex_unlock(&held), "unlock held");
	return NULL;
}

NOINLINE void gdb_waits_for_mutex(void)
{
	check(weft_mutex_lock(&held), "lock held (waiter)");
	check(weft_mutex_unlock(&held), "unlock held (waiter)");
}

NOINLINE void *gdb_mutex_waiter_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&holder_has_it))
		weft_sleep_ns(1000000);
	gdb_waits_for_mutex();
	return NULL;
}

NOINLINE void *gdb_sleeps(void *arg)
{
	(void)arg;
	while (!atomic_load(&released)) {
		atomic_store(&sleep_began, now_ns());
		weft_sleep_ns(SLEEP_NS);
	}
	return NULL;
}

NOINLINE void *gdb_joins(void *arg)
{
	(void)arg;
	check(weft_join(gdb_holder, NULL), "join holder");
	return NULL;
}

/* The test's breakpoint.  Every other green thread is parked here. */
NOINLINE void gdb_all_parked(void)
{
	__asm__ volatile("" ::: "memory");
}

/* Does a dump of the runtime show thread `name` blocked (on `what`, when
 * not NULL: the words after "blocked, ")? */
static int shown_blocked(const char *dump, const char *name, const char *what)
{
	char want[96];
	snprintf(want, sizeof want, "\"%s\": blocked%s%s", name, what ? ", " : "",
	         what ? what : "");
	return strstr(dump, want) != NULL;
}

static int all_parked(void)
{
	char *dump = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&dump, &len);
	if (!f)
		return 0;
	int ok = weft_dump(f) == 0;
	fclose(f);
	/* The waiter sleeps 1 ms at a time until the holder has the mutex:
	 * blocked, but not yet where the test looks for it. */
	ok = ok && shown_blocked(dump, "gdb-holder", NULL) &&
	     shown_blocked(dump, "gdb-mutex-waiter", "waiting for mutex") &&
	     shown_blocked(dump, "gdb-sleeper", NULL) && shown_blocked(dump, "gdb-joiner", NULL);
	free(dump);
	return ok;
}

static weft_t spawn(const char *name, void *(*fn)(void *))
{
	weft_attr_t a;
	weft_t t;
	check(weft_attr_init(&a), "attr init");
	check(weft_attr_setname(&a, name), "attr setname");
	check(weft_create(&t, &a, fn, NULL), "create");
	weft_attr_destroy(&a);
	return t;
}

int main(void)
{
	check(weft_init(), "weft_init");
	gdb_main = weft_self();
	gdb_holder = spawn("gdb-holder", gdb_holds_mutex);
	gdb_mutex_waiter = spawn("gdb-mutex-waiter", gdb_mutex_waiter_main);
	gdb_sleeper = spawn("gdb-sleeper", gdb_sleeps);
	gdb_joiner = spawn("gdb-joiner", gdb_joins);

	uint64_t give_up = now_ns() + 30000000000ull;
	for (;;) {
		if (all_parked() && now_ns() - atomic_load(&sleep_began) < FRESH_NS)
			break;
		if (now_ns() > give_up) {
			fprintf(stderr, "gdb_target: the threads did not all park "
			        "within 30 s\n");
			weft_dump(stderr);
			return 2;
		}
		weft_sleep_ns(5000000);
	}
	if (getenv("GDB_TARGET_ABORT"))
		abort();
	gdb_all_parked();

	check(weft_mutex_lock(&cond_lock), "lock cond_lock (main)");
	go = 1;
	check(weft_cond_broadcast(&cond), "cond broadcast");
	check(weft_mutex_unlock(&cond_lock), "unlock cond_lock (main)");
	atomic_store(&released, 1);
	check(weft_join(gdb_joiner, NULL), "join joiner");
	check(weft_join(gdb_mutex_waiter, NULL), "join mutex waiter");
	check(weft_join(gdb_sleeper, NULL), "join sleeper");
	puts("gdb_target: all threads finished");
	return 0;
}
