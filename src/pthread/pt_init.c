/*
 * pt_init.c — bringing weft up under a pthread program, and finding glibc's
 * own functions past the layer.
 *
 * The layer's default stack size.  glibc gives each thread 8 MiB (its
 * RLIMIT_STACK default), and programs written for it recurse as deep as that
 * allows.  weft's own default, 64 KiB, suits programs written for weft.  The
 * layer uses PT_DEFAULT_STACK (docs/design.md, "The pthread layer", says
 * why), unless the user set WEFT_STACK_SIZE.  weft reads its configuration
 * from the environment once, at initialization, so the layer sets
 * WEFT_STACK_SIZE around that one call and removes it again: the program
 * never sees it, nor do its children.  The layer's constructor does this
 * (pt_init), or the first call after it that needs weft; calls made before
 * the constructor go to glibc (pt_early, pt_internal.h).
 *
 * WEFT_VERBOSE=1 prints one line on stderr once weft is up, to show that
 * the layer is active.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pt_internal.h"

/* 8 MiB: glibc's default.  Cheap here: stacks come from MAP_NORESERVE slabs
 * and only touched pages cost memory. */
#define PT_DEFAULT_STACK "8M"

/* weft's own code asks this for glibc's functions, not the layer's, for its
 * own kernel threads (src/kthreads/libc_real.c): the definition that
 * follows the layer in the loader's search order. */
PT_API void *weft_pthread_layer_next(const char *name)
{
	/* Not a tail call: dlsym(RTLD_NEXT) searches past the object its
	 * return address lies in, which must be the layer, not the caller. */
	void *p = dlsym(RTLD_NEXT, name);
	__asm__ __volatile__("" : "+r"(p));
	return p;
}

int pt_ready;
int pt_live;

static int pt_state;   /* 0 not started, 1 starting, 2 done */

/* The semaphore table's weft mutex first: taking it may block, and the
 * pool's lock must not be held meanwhile (its waiters spin). */
static void pt_fork_prepare(void)
{
	pt_sem_fork_lock();
	pt_pool_fork_lock();
}

static void pt_fork_parent(void)
{
	pt_pool_fork_unlock();
	pt_sem_fork_unlock();
}

static void pt_fork_child(void)
{
	pt_pool_fork_unlock();
	pt_sem_fork_child();
}

void pt_runtime_init(void)
{
	int s = 0;
	if (!__atomic_compare_exchange_n(&pt_state, &s, 1, false, __ATOMIC_ACQ_REL,
	                                 __ATOMIC_ACQUIRE)) {
		/* Another kernel thread is bringing weft up: weft_init waits. */
		weft_init();
		return;
	}
	int e;
	if (getenv("WEFT_STACK_SIZE")) {
		e = weft_init();
	} else {
		setenv("WEFT_STACK_SIZE", PT_DEFAULT_STACK, 1);
		e = weft_init();
		unsetenv("WEFT_STACK_SIZE");
	}
	/* The layer's locks across fork(), taken before weft's own (a
	 * later registration's prepare handler runs earlier). */
	if (!e)
		e = weft_atfork(pt_fork_prepare, pt_fork_parent, pt_fork_child);
	__atomic_store_n(&pt_state, 2, __ATOMIC_RELEASE);
	__atomic_store_n(&pt_ready, 1, __ATOMIC_RELEASE);
	const char *v = getenv("WEFT_VERBOSE");
	if (e) {
		char line[160];
		int n = snprintf(line, sizeof line,
		                 "weft: pthread layer: weft could not start (%s)\n", strerror(e));
		if (write(2, line, (size_t)n) < 0)
			return;
	} else if (v && *v && strcmp(v, "0") != 0) {
		char line[160];
		int n = snprintf(line, sizeof line,
		                 "weft: pthread layer active: %d workers, pid %d\n",
		                 weft_workers(), (int)getpid());
		if (write(2, line, (size_t)n) < 0)
			return;
	}
}

/* Run before main: the initial thread becomes the green thread "main" on
 * worker 0, as the program's first pthread call would make it anyway. */
__attribute__((constructor)) static void pt_constructor(void)
{
	__atomic_store_n(&pt_live, 1, __ATOMIC_RELEASE);
	pt_init();
}

void *pt_real_sym(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (!p) {
		void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
		p = libc ? dlsym(libc, name) : NULL;
	}
	if (!p) {
		char line[128];
		int n = snprintf(line, sizeof line, "weft: pthread layer: no libc %s\n", name);
		if (write(2, line, (size_t)n) < 0)
			abort();
		abort();
	}
	return p;
}

int pt_abs_to_monotonic(clockid_t clock, const struct timespec *abs, struct timespec *mono)
{
	if (!abs || abs->tv_nsec < 0 || abs->tv_nsec >= 1000000000L)
		return EINVAL;
	if (clock == CLOCK_MONOTONIC) {
		*mono = *abs;
		return 0;
	}
	if (clock != CLOCK_REALTIME)
		return EINVAL;
	/* A deadline on the wall clock: the same distance from now on the
	 * monotonic clock (a later step of the wall clock is not followed). */
	struct timespec now_rt, now_mono;
	clock_gettime(CLOCK_REALTIME, &now_rt);
	clock_gettime(CLOCK_MONOTONIC, &now_mono);
	int64_t d = ((int64_t)abs->tv_sec - now_rt.tv_sec) * 1000000000LL +
	            (abs->tv_nsec - now_rt.tv_nsec);
	if (d < 0)
		d = 0;
	int64_t t = (int64_t)now_mono.tv_sec * 1000000000LL + now_mono.tv_nsec;
	t = d > INT64_MAX - t ? INT64_MAX : t + d;
	mono->tv_sec = (time_t)(t / 1000000000LL);
	mono->tv_nsec = (long)(t % 1000000000LL);
	return 0;
}
