/*
 * trace_target.c — a small traced program for the trace tools' test
 * (check_trace_tools.sh): named threads that spin (preempted), take a
 * mutex, sleep and yield on the workers WEFT_WORKERS gives, for about
 * 100 ms ("run", then exit(0)) or until a signal ends the process
 * ("forever").  Every weft call is checked: a failure exits 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <weft.h>

static weft_mutex_t mu = WEFT_MUTEX_INITIALIZER;
static volatile int forever;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void check(int e, const char *what)
{
	if (e) {
		fprintf(stderr, "trace_target: %s: error %d\n", what, e);
		exit(1);
	}
}

static void *spin(void *arg)
{
	uint64_t end = now_ns() + (uint64_t)(uintptr_t)arg * 1000000ull;
	volatile uint64_t x = 1;
	while (forever || now_ns() < end)
		x = x * 6364136223846793005ull + 1;
	return NULL;
}

static void *lock_sleep_yield(void *arg)
{
	(void)arg;
	for (int i = 0; forever || i < 200; i++) {
		check(weft_mutex_lock(&mu), "weft_mutex_lock");
		check(weft_yield(), "weft_yield");
		check(weft_mutex_unlock(&mu), "weft_mutex_unlock");
		if (i % 20 == 0)
			check(weft_sleep_ns(200000), "weft_sleep_ns");
	}
	return NULL;
}

static weft_t spawn(const char *name, void *(*fn)(void *), void *arg)
{
	weft_attr_t a;
	weft_t t;
	check(weft_attr_init(&a), "weft_attr_init");
	check(weft_attr_setname(&a, name), "weft_attr_setname");
	check(weft_create(&t, &a, fn, arg), "weft_create");
	check(weft_attr_destroy(&a), "weft_attr_destroy");
	return t;
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "run") && strcmp(argv[1], "forever"))) {
		fprintf(stderr, "usage: trace_target run|forever\n");
		return 2;
	}
	forever = !strcmp(argv[1], "forever");
	check(weft_init(), "weft_init");
	weft_t t[4] = {
		spawn("spinner-a", spin, (void *)(uintptr_t)100),
		spawn("spinner-b", spin, (void *)(uintptr_t)100),
		spawn("locker-a", lock_sleep_yield, NULL),
		spawn("locker-b", lock_sleep_yield, NULL),
	};
	if (forever)
		puts("running");   /* the test waits for this line */
	fflush(stdout);
	for (int i = 0; i < 4; i++)
		check(weft_join(t[i], NULL), "weft_join");
	return 0;
}
