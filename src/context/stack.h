/*
 * stack.h — green-thread stacks: carved from large mmap slabs, one guard page
 * below each (MADV_GUARD_INSTALL, or mprotect where the kernel refuses it),
 * kept warm in per-worker caches and a bounded shared tier that moves them
 * between workers in batches, and given back to the kernel lazily, in
 * batches, by a scavenger (stack.c explains the flow).
 *
 * Knows nothing of threads: the per-worker cache is a wf_stack_cache the
 * caller owns and passes in (NULL means "no cache": the shared tiers only),
 * and the scavenger is whatever thread calls wf_stack_scavenge and
 * wf_stack_trim.
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

/* Stacks a batch holds: the unit moved between a worker's cache and the
 * shared tier. */
#define WF_STACK_BATCH 16

/* Warm stacks of one worker, all of one size class: a partial batch (cur,
 * newest first, ncur < WF_STACK_BATCH) and at most one whole batch, so at
 * most 2 * WF_STACK_BATCH - 1 stacks.  Owned and used by one worker at a
 * time.  Zero-initialized: empty. */
typedef struct wf_stack_cache {
	struct wf_stack_class *cls;     /* class of its stacks (set when empty) */
	struct wf_stack_slot *cur;
	unsigned ncur;
	struct wf_stack_slot *full;
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
 * call by walking the slabs: not for hot paths), cold stacks, bytes in the
 * shared tiers, stacks queued for release, stacks released and the
 * madvise calls that released them, and stacks handed out cold or newly
 * carved (not warm from a cache or a shared tier). */
struct wf_stack_stats {
	size_t slabs, slab_bytes, in_use, cold, guards_mprotect;
	size_t warm_bytes, releasing, released, madvises, fresh;
};
void wf_stack_stats_get(struct wf_stack_stats *st) WF_HIDDEN;

/* Stacks in a cache. */
unsigned wf_stack_cache_count(const wf_stack_cache *cache) WF_HIDDEN;

/* Move every stack of a cache to the shared tier (its worker goes to sleep,
 * or away): the cache is empty after. */
void wf_stack_cache_flush(wf_stack_cache *cache) WF_HIDDEN;

/* The bound on the bytes of the shared tiers (all size classes together);
 * a batch beyond it is queued for release.  Set once, before the first
 * free (WEFT_STACK_CACHE). */
#define WF_STACK_WARM_DEFAULT ((size_t)16 << 20)
void wf_stack_set_warm_max(size_t bytes) WF_HIDDEN;
size_t wf_stack_warm_max(void) WF_HIDDEN;
size_t wf_stack_warm_bytes(void) WF_HIDDEN;     /* in the shared tiers now */

/* The scavenger.  wf_stack_scavenge gives the release queue back to the
 * kernel (one madvise per run of neighbouring stacks) and returns the
 * stacks released; wf_stack_trim first queues, in each class, the stacks
 * of the shared tier that nobody took since the previous trim, then
 * scavenges, and returns the bytes still in the shared tiers.  Any thread
 * may call them, one at a time (errno is preserved). */
size_t wf_stack_scavenge(void) WF_HIDDEN;
size_t wf_stack_trim(void) WF_HIDDEN;

/* Bigger stacks are never kept warm: freed, they go to the release queue. */
#define WF_STACK_CACHE_MAX_SIZE ((size_t)256 << 10)
/* Largest stack wf_stack_alloc hands out (wf_stack_round gives 0 beyond,
 * and for 0; wf_stack_alloc then fails with EINVAL). */
#define WF_STACK_SIZE_MAX ((size_t)1 << 30)

/* The page size (sysconf, read once and cached): guard pages here, and the
 * kernel workers' own stacks and guards (src/kthreads). */
size_t wf_pagesize(void) WF_HIDDEN;

/* fork(): take every lock of the allocator before, release it after (in
 * the parent and in the child alike). */
void wf_stack_fork_lock(void) WF_HIDDEN;
void wf_stack_fork_unlock(void) WF_HIDDEN;

/* Tests: use mprotect guards from now on, as on a kernel without
 * MADV_GUARD_INSTALL; max_map_count, if not 0, replaces the sysctl value
 * for the warning threshold. */
void wf_stack_test_force_mprotect(size_t max_map_count) WF_HIDDEN;

#endif
