/*
 * pt_internal.h — what the files of the pthread layer share.
 *
 * The layer (libweft-pthread.so) exports the pthread interface with glibc's
 * x86-64 ABI and maps every call onto weft's public API (weft.h) only
 * (docs/design.md, "The pthread layer").  Its exported functions keep glibc's
 * names and prototypes, which <pthread.h> declares; PT_API marks them
 * exported (the layer is built with hidden visibility).
 *
 * Who is calling.  A green thread gets weft's behaviour (it parks); a
 * kernel thread that is not a weft worker (a "foreign" thread) uses weft
 * objects too and blocks in the kernel (weft.h, "Foreign threads"), but the
 * thread calls that only exist for green threads (join, yield, sleep) fall
 * back to glibc's own functions there, found with pt_real.
 */
#ifndef PT_INTERNAL_H
#define PT_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "weft.h"

#define PT_API    __attribute__((visibility("default")))
#define PT_HIDDEN __attribute__((visibility("hidden")))
#define pt_likely(x)   __builtin_expect(!!(x), 1)
#define pt_unlikely(x) __builtin_expect(!!(x), 0)

/*
 * Before the layer's constructor.  Code can call the layer before it is
 * initialized: a sanitizer runtime during its own start (it must not see
 * weft start under it: weft allocates), and constructors of libraries the
 * loader initializes ahead of a preloaded one.  Until the constructor has
 * begun (pt_live), the calls such code makes go to glibc, and the objects
 * they make are glibc's: the layer recognizes them later where it can
 * (attributes by a magic number, keys by value: glibc's are below
 * PTHREAD_KEYS_MAX, weft's never) and passes them on to glibc.
 */
extern int pt_live PT_HIDDEN;
static inline bool pt_early(void)
{
	return pt_unlikely(!__atomic_load_n(&pt_live, __ATOMIC_ACQUIRE));
}

/* Bring weft up the layer's way (its default stack size, the WEFT_VERBOSE
 * line) before the first weft call that could initialize it.  Cheap after
 * the first time: one load. */
extern int pt_ready PT_HIDDEN;
void pt_runtime_init(void) PT_HIDDEN;
static inline void pt_init(void)
{
	if (pt_unlikely(!__atomic_load_n(&pt_ready, __ATOMIC_ACQUIRE)))
		pt_runtime_init();
}

static inline void pt_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Is the caller a green thread (a weft worker runs it)? */
static inline bool pt_green(void) { return weft_worker_self() >= 0; }

/* glibc's definition of name (the next one after the layer); resolved once
 * per call site, aborting with one line if it cannot be found. */
void *pt_real_sym(const char *name) PT_HIDDEN;
#define pt_real(fn) (*({ \
	static __typeof__(&(fn)) pt_p_; \
	__typeof__(&(fn)) p_ = __atomic_load_n(&pt_p_, __ATOMIC_RELAXED); \
	if (pt_unlikely(!p_)) { \
		p_ = (__typeof__(&(fn)))pt_real_sym(#fn); \
		__atomic_store_n(&pt_p_, p_, __ATOMIC_RELAXED); \
	} \
	p_; }))

/* A setpshared call: PTHREAD_PROCESS_PRIVATE is what every object is;
 * PTHREAD_PROCESS_SHARED is refused (docs/design.md, "The pthread layer"). */
static inline int pt_private_only(int pshared)
{
	if (pshared == PTHREAD_PROCESS_PRIVATE)
		return 0;
	return pshared == PTHREAD_PROCESS_SHARED ? ENOTSUP : EINVAL;
}

/* Absolute time on `clock` to an absolute CLOCK_MONOTONIC time (what weft's
 * timed calls take).  EINVAL for a bad timespec or an unsupported clock. */
int pt_abs_to_monotonic(clockid_t clock, const struct timespec *abs,
                        struct timespec *mono) PT_HIDDEN;

/* Fixed-size objects for the lazily made weft objects (pt_pool.c): never
 * malloc, so that a program whose malloc takes pthread mutexes works. */
void *pt_pool_alloc(void) PT_HIDDEN;   /* PT_POOL_OBJ bytes, aligned 64; NULL */
void pt_pool_free(void *p) PT_HIDDEN;
#define PT_POOL_OBJ 64

/* The weft mutex behind a pthread_mutex_t (pt_mutex.c); NULL: ENOMEM. */
weft_mutex_t *pt_mutex_weft(pthread_mutex_t *m) PT_HIDDEN;

/* A join's result as glibc gives it: PTHREAD_CANCELED for a cancelled
 * thread (weft says WEFT_CANCELED). */
static inline void *pt_join_result(void *r)
{
	return r == WEFT_CANCELED ? PTHREAD_CANCELED : r;
}

/* Around fork() (pt_init.c registers them with weft_atfork): the layer's
 * own locks, held by the forking thread so that the child never inherits
 * one held by a thread it does not have. */
void pt_pool_fork_lock(void) PT_HIDDEN;
void pt_pool_fork_unlock(void) PT_HIDDEN;
void pt_sem_fork_lock(void) PT_HIDDEN;
void pt_sem_fork_unlock(void) PT_HIDDEN;
void pt_sem_fork_child(void) PT_HIDDEN;

#endif
