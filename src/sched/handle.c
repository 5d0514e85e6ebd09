/*
 * handle.c — thread control blocks and the handles that name them.
 *
 * TCBs live in chunks of a table that only grows; their memory is never
 * returned, so any handle, however stale or made up, can be checked without
 * a fault.  A handle is (generation << 32) | (slot + 1): the slot locates
 * the TCB, the generation must match the TCB's, which is bumped each time a
 * thread is reclaimed.  Free TCBs are cached per worker (bounded) and in a
 * global list.
 *
 * Rejected: handles that are TCB pointers (a made-up one would fault), and
 * a hash map from id to TCB (a lock or a probe on every lookup).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "sched_internal.h"

#ifdef WF_ASAN
#include <sanitizer/lsan_interface.h>
#endif


struct wf_thread *_Atomic wf_chunks[WF_MAX_CHUNKS];
static wf_spin_t wf_tcb_lock = WF_SPIN_INIT;   /* guards the two below */
/* High-water mark: written under wf_tcb_lock, read without it by observers
 * (weft_dump), for whom a slightly old value is fine. */
static _Atomic uint32_t wf_slots_used;
static struct wf_thread *wf_free_list;

/* Under wf_tcb_lock. */
static struct wf_thread *wf_slot_new(void)
{
	uint32_t i = atomic_load_explicit(&wf_slots_used, memory_order_relaxed);
	uint32_t ci = i >> WF_CHUNK_SHIFT;
	if (ci >= WF_MAX_CHUNKS)
		return NULL;
	struct wf_thread *c = atomic_load_explicit(&wf_chunks[ci], memory_order_relaxed);
	if (!c) {
		void *m = mmap(NULL, WF_CHUNK_SLOTS * sizeof(struct wf_thread),
		               PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		c = m;
#ifdef WF_ASAN
		/* TCBs hold the only pointers to what threads own (key tables,
		 * names): LeakSanitizer scans the heap, globals and kernel
		 * threads' stacks, not anonymous mappings, so tell it. */
		__lsan_register_root_region(m, WF_CHUNK_SLOTS * sizeof(struct wf_thread));
#endif
		atomic_store_explicit(&wf_chunks[ci], c, memory_order_release);
	}
	struct wf_thread *t = &c[i & (WF_CHUNK_SLOTS - 1)];
	t->index = i;
	atomic_store_explicit(&t->gen, 1, memory_order_relaxed);
	atomic_store_explicit(&wf_slots_used, i + 1, memory_order_release);
	return t;
}

/*
 * Make a free TCB ready for a new thread without clearing all of it (a
 * memset of the whole block was the largest single cost of a create).
 * The fields from `state` up to `deadline` are zeroed in one go (so state is
 * WF_FREE, kind WF_KIND_USER, every pointer NULL, until the creator fills
 * them in); of the others, each is either set here, or set by the creator
 * before the TCB is published, or deliberately carried over:
 *  - index, gen: the slot's identity; gen was bumped when it was retired.
 *  - wait: its sequence keeps growing across lives, so a stale timer can
 *    never match a new wait; only the kind and interrupters are cleared.
 *  - sig_pending: cleared here (signals sent to the last life are dropped).
 *  - intr: always consumed by the wait it was set for (wf_park).
 *  - unwind_exc: written at each use (cancel.c).
 *  - heap_idx: set to -1 (not in a timer heap).
 *  - runs: observers only need it to change, so it keeps counting.
 *  - lk: left alone.  A checker holding a stale handle may still hold it
 *    (it locks, sees the new generation and unlocks); it is never held
 *    otherwise, since wf_tcb_free runs only after the last unlock.
 *  - on_cpu: 0 already: a finished thread's worker cleared it before the
 *    TCB could be retired, and a TCB that never ran never set it.
 *  - sp, start, arg, stack, asan_bottom/size: written by the creator
 *    (wf_thread_setup) before the TCB is published; stack.guard and
 *    stack.slot are cleared here for user stacks, which set only lo/hi.
 *  - ret: written by the thread when it exits, read only after.
 *  - saved_errno: written at the thread's first switch away, read only
 *    when it is resumed; a new thread starts with errno 0.
 *  - name: only the first byte (readers stop at the terminator; weft_dump
 *    copies all 32 bytes and terminates them itself).
 */
static void wf_tcb_reset(struct wf_thread *t)
{
	uint64_t wait = atomic_load_explicit(&t->wait, memory_order_relaxed);
	atomic_store_explicit(&t->wait, wait & ~((1ull << WF_WAIT_SEQ_SHIFT) - 1),
	                      memory_order_relaxed);
	t->heap_idx = -1;
	/* Six 16-byte stores (a memset call, or the `rep stos` the compiler
	 * turns it into, costs several times as much here). */
	typedef uint64_t wf_v16 __attribute__((vector_size(16), may_alias));
	_Static_assert(offsetof(struct wf_thread, state) % 16 == 0 &&
	               offsetof(struct wf_thread, deadline) -
	               offsetof(struct wf_thread, state) == 6 * sizeof(wf_v16),
	               "wf_tcb_reset clears 96 bytes from `state`: update it");
	wf_v16 *z = (wf_v16 *)(void *)&t->state;
	z[0] = z[1] = z[2] = z[3] = z[4] = z[5] = (wf_v16){ 0, 0 };
	t->deadline = 0;
	atomic_store_explicit(&t->sig_pending, 0, memory_order_relaxed);
	t->stack.guard = 0;
	t->stack.user = 0;
	t->stack.slot = NULL;
	t->name[0] = '\0';
#ifdef WF_ASAN
	t->asan_fake = NULL;
	t->asan_bottom = NULL;
	t->asan_size = 0;
#endif
}

uint32_t wf_tcb_dead_hi;
_Atomic uint32_t wf_tcb_dead_lo;
struct wf_thread *wf_tcb_dead_keep;

/* Under wf_tcb_lock, in a child of fork(): the lowest slot of a thread left
 * behind, made a free TCB, or NULL when none is left.  Its lock and on_cpu
 * may be as the fork found them (held, 1, by a thread not copied): reset;
 * its key values are freed, its handle goes stale, and only then does
 * dead_lo pass it (release: see wf_tcb_lookup).  Its stack is not
 * reclaimed (fork.c). */
static struct wf_thread *wf_tcb_take_dead(void)
{
	uint32_t lo = atomic_load_explicit(&wf_tcb_dead_lo, memory_order_relaxed);
	for (; lo < wf_tcb_dead_hi; lo++) {
		struct wf_thread *t = wf_tcb_slot(lo);
		if (t == wf_tcb_dead_keep)
			continue;
		atomic_store_explicit(&t->lk.v, 0, memory_order_relaxed);
		atomic_store_explicit(&t->on_cpu, 0, memory_order_relaxed);
		if (t->state != WF_FREE) {
			free(t->tsd);
			t->tsd = NULL;
			wf_tcb_retire(t);
		}
		atomic_store_explicit(&wf_tcb_dead_lo, lo + 1, memory_order_release);
		return t;
	}
	atomic_store_explicit(&wf_tcb_dead_lo, lo, memory_order_release);
	return NULL;
}

struct wf_thread *wf_tcb_alloc(struct wf_worker *w)
{
	struct wf_thread *t = NULL;
	if (w && w->tcb_cache) {
		t = w->tcb_cache;
		w->tcb_cache = t->next;
		w->tcb_cached--;
	} else {
		wf_spin_lock(&wf_tcb_lock);
		if ((t = wf_free_list))
			wf_free_list = t->next;
		else if (!(t = wf_tcb_take_dead()))
			t = wf_slot_new();
		wf_spin_unlock(&wf_tcb_lock);
		if (!t)
			return NULL;
	}
	wf_tcb_reset(t);
	return t;
}

/* The global free list, for wf_tcb_free when the worker's cache is full
 * or there is no worker. */
void wf_tcb_free_global(struct wf_thread *t)
{
	wf_spin_lock(&wf_tcb_lock);
	t->next = wf_free_list;
	wf_free_list = t;
	wf_spin_unlock(&wf_tcb_lock);
}

uint32_t wf_tcb_slots(void)
{
	return atomic_load_explicit(&wf_slots_used, memory_order_acquire);
}

/* Any slot below wf_tcb_slots(): its chunk is published before the mark. */
struct wf_thread *wf_tcb_at(uint32_t slot)
{
	struct wf_thread *t = slot < wf_tcb_slots() ? wf_tcb_slot(slot) : NULL;
	return t && !wf_tcb_dead(t) ? t : NULL;
}

/* --- fork ------------------------------------------------------------------- */

void wf_tcb_fork_lock(void) { wf_spin_lock(&wf_tcb_lock); }
void wf_tcb_fork_unlock(void) { wf_spin_unlock(&wf_tcb_lock); }

/*
 * In a child of fork(), on its only thread: every TCB but `keep` (the
 * forking green thread, or NULL) belongs to a thread that does not exist
 * here.  They are declared dead all at once, and reclaimed one at a time
 * as the child needs TCBs (wf_tcb_take_dead, lowest slot first); until then
 * lookups and observers skip them (wf_tcb_dead).  Touching each at the fork
 * cost a copy-on-write fault per page of TCBs: 2.4 ms of a 5.6 ms fork of a
 * process with 10,000 parked threads (bench_cancel fork-parked).  The
 * per-worker caches of free TCBs are dropped with the workers; their TCBs
 * are among the dead ones.
 */
void wf_tcb_forked_child(struct wf_thread *keep)
{
	wf_free_list = NULL;
	wf_tcb_dead_keep = keep;
	wf_tcb_dead_hi = wf_tcb_slots();
	atomic_store_explicit(&wf_tcb_dead_lo, 0, memory_order_relaxed);
}
