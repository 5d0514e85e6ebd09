/*
 * stack.h — green-thread stacks: carved from large mmap slabs, one guard page
 * below each (MADV_GUARD_INSTALL, or mprotect where the kernel refuses it),
 * cached warm per worker up to a bound, beyond which their pages are given
 * back with MADV_DONTNEED and the stack goes to a global cold pool.
 *
 * Knows nothing of threads: the per-worker cache is a wf_stack_cache the
 * caller owns and passes in (NULL means "no cache": global pool only).
 */
#ifndef WF_STACK_H
#define WF_STACK_H

#include <stddef.h>
#include <stdint.h>
#include "cpu.h"

typedef struct wf_stack {
	void *lo;            /* lowest usable byte (just above the guard page) */
	void *hi;            /* one past the highest usable byte */
	size_t guard;        /* bytes of guard below lo; 0 for user stacks */
	uint8_t user;        /* memory belongs to the caller: never freed */
	struct wf_stack_slot *slot; /* allocator bookkeeping, NULL for user stacks */
} wf_stack;

/* Warm stacks of one worker.  Owned and used by one worker at a time. */
typedef struct wf_stack_cache {
	struct wf_stack_slot *head;
	unsigned count;
} wf_stack_cache;

/* Bytes of usable stack for a request of `size` (rounded up to pages). */
size_t wf_stack_round(size_t size) WF_HIDDEN;

/* Allocate a stack of at least `size` usable bytes.  0 or ENOMEM/EAGAIN. */
int wf_stack_alloc(wf_stack_cache *cache, size_t size, wf_stack *out) WF_HIDDEN;

/* Return a stack from wf_stack_alloc.  User stacks are ignored. */
void wf_stack_free(wf_stack_cache *cache, wf_stack *s) WF_HIDDEN;

/* True when addr lies in the guard page(s) just below stack s. */
int wf_stack_in_guard(const wf_stack *s, const void *addr) WF_HIDDEN;

/* Counters for tests: slabs mapped, stacks handed out (counted on each
 * call by walking the slabs: not for hot paths), cold stacks. */
struct wf_stack_stats { size_t slabs, slab_bytes, in_use, cold, guards_mprotect; };
void wf_stack_stats_get(struct wf_stack_stats *st) WF_HIDDEN;

/* Warm stacks a cache keeps; stacks freed beyond it go cold. */
#define WF_STACK_CACHE_MAX 16
/* Bigger stacks are never kept warm: their pages are released at once. */
#define WF_STACK_CACHE_MAX_SIZE ((size_t)256 << 10)
/* Largest stack wf_stack_alloc hands out (wf_stack_round gives 0 beyond,
 * and for 0; wf_stack_alloc then fails with EINVAL). */
#define WF_STACK_SIZE_MAX ((size_t)1 << 30)

/* The page size (sysconf, read once and cached): guard pages here, and the
 * kernel workers' own stacks and guards (src/kthreads). */
size_t wf_pagesize(void) WF_HIDDEN;

/* Release every stack of a cache (its worker is going away). */
void wf_stack_cache_drain(wf_stack_cache *cache) WF_HIDDEN;

/* fork(): take every lock of the allocator before, release it after (in
 * the parent and in the child alike). */
void wf_stack_fork_lock(void) WF_HIDDEN;
void wf_stack_fork_unlock(void) WF_HIDDEN;

/* Tests: use mprotect guards from now on, as on a kernel without
 * MADV_GUARD_INSTALL; max_map_count, if not 0, replaces the sysctl value
 * for the warning threshold. */
void wf_stack_test_force_mprotect(size_t max_map_count) WF_HIDDEN;

#endif
