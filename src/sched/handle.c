/*
 * handle.c — thread control blocks and the handles that name them.
 *
 * TCBs live in chunks of a table that only grows; their memory is never
 * returned, so any handle, however stale or made up, can be checked without
 * a fault.  A handle is (generation << 32) | (slot + 1): the slot locates
 * the TCB, the generation must match the TCB's, which is bumped each time a
 * thread is reclaimed.
 *
 * Free TCBs flow like stacks (src/context/stack.c): each worker keeps a
 * partial batch and at most one whole batch of WF_TCB_BATCH, and whole
 * batches move through one shared list under wf_tcb_lock, so a program
 * whose threads are created on one worker and joined on another takes the
 * lock once per batch, not once per thread.  The table never shrinks, but
 * the memory of a chunk whose 1024 TCBs all stayed free for a whole trim
 * period is given back to the kernel (wf_tcb_trim, called by the monitor
 * thread with the stacks' trim): 100,000 threads once alive would
 * otherwise keep 24 MB resident for ever.  How a released chunk stays safe
 * for stale handles is told at wf_tcb_chunk_release.
 *
 * Rejected: handles that are TCB pointers (a made-up one would fault), and
 * a hash map from id to TCB (a lock or a probe on every lookup).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "sched_internal.h"

#ifdef WF_ASAN
#include <sanitizer/lsan_interface.h>
#endif


struct wf_thread *_Atomic wf_chunks[WF_MAX_CHUNKS];
static wf_spin_t wf_tcb_lock = WF_SPIN_INIT;   /* guards everything below */
/* High-water mark: written under wf_tcb_lock, read without it by observers
 * (weft_dump), for whom a slightly old value is fine. */
static _Atomic uint32_t wf_slots_used;
/* The shared list: batches of free TCBs, each linked through next (the
 * last one's is NULL), the batches through their first TCB's prev, with
 * their length in its heap_idx: fields a free TCB does not use (heap_idx
 * is set again by wf_tcb_reset, prev by whoever next puts the thread on a
 * continuation stack). */
static struct wf_thread *wf_free_batches;
static size_t wf_nfree;          /* TCBs in it */
static size_t wf_free_low;       /* fewest since the last trim */
/* TCBs ever put on it: written under the lock, read by the monitor
 * without it (a hint that something changed). */
static _Atomic uint64_t wf_free_puts;
/* wf_free_puts when the last scan for chunks to give back found none:
 * no new scan until a chunk's worth more came in. */
static uint64_t wf_scan_puts;
static bool wf_scan_futile;
/* Chunks whose memory was given back (wf_tcb_trim), reused before the
 * table grows: their indexes, the one being handed out again slot by
 * slot, and the generation each must start from. */
static uint32_t wf_released[WF_MAX_CHUNKS];
static uint32_t wf_nreleased;
static uint32_t wf_recarve_chunk, wf_recarve_next = WF_CHUNK_SLOTS;
static uint32_t wf_chunk_gen[WF_MAX_CHUNKS];
static _Atomic uint64_t wf_chunks_released;   /* ever, for tests */
static _Atomic uint64_t wf_chunks_cleared;    /* the same, kept in place */

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
 * reclaimed (fork.c).  A slot of generation 0 was never handed out since
 * its chunk was given back (wf_tcb_chunk_release; no trim was under way at
 * the fork, wf_tcb_fork_lock): it is not a thread's, and wf_slot_recarve
 * hands it out in its turn, after every dead slot (wf_tcb_alloc). */
static struct wf_thread *wf_tcb_take_dead(void)
{
	uint32_t lo = atomic_load_explicit(&wf_tcb_dead_lo, memory_order_relaxed);
	for (; lo < wf_tcb_dead_hi; lo++) {
		struct wf_thread *t = wf_tcb_slot(lo);
		if (t == wf_tcb_dead_keep ||
		    atomic_load_explicit(&t->gen, memory_order_relaxed) == 0)
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

static void wf_batch_set(struct wf_thread *head, struct wf_thread *nextb, unsigned n)
{
	head->prev = nextb;
	head->heap_idx = (int32_t)n;
}

/* Under wf_tcb_lock. */
static void wf_put_batch_locked(struct wf_thread *head, unsigned n)
{
	wf_batch_set(head, wf_free_batches, n);
	wf_free_batches = head;
	wf_nfree += n;
	atomic_store_explicit(&wf_free_puts, atomic_load_explicit(&wf_free_puts,
	                      memory_order_relaxed) + n, memory_order_relaxed);
}

uint64_t wf_tcb_puts(void)
{
	return atomic_load_explicit(&wf_free_puts, memory_order_relaxed);
}

void wf_tcb_put_batch(struct wf_thread *head, unsigned n)
{
	wf_spin_lock(&wf_tcb_lock);
	wf_put_batch_locked(head, n);
	wf_spin_unlock(&wf_tcb_lock);
}

void wf_tcb_cache_flush(struct wf_worker *w)
{
	if (!w->tcb_full && !w->tcb_cur)
		return;
	wf_spin_lock(&wf_tcb_lock);
	if (w->tcb_full)
		wf_put_batch_locked(w->tcb_full, WF_TCB_BATCH);
	if (w->tcb_cur)
		wf_put_batch_locked(w->tcb_cur, w->tcb_ncur);
	wf_spin_unlock(&wf_tcb_lock);
	w->tcb_full = w->tcb_cur = NULL;
	w->tcb_ncur = 0;
}

/* A slot of a released chunk, handed out again, or NULL.  Under
 * wf_tcb_lock.  The chunk's memory reads as zeroes: the slot gets its
 * index and a generation above every handle ever made for it. */
static struct wf_thread *wf_slot_recarve(void)
{
	if (wf_recarve_next == WF_CHUNK_SLOTS) {
		if (!wf_nreleased)
			return NULL;
		wf_recarve_chunk = wf_released[--wf_nreleased];
		wf_recarve_next = 0;
	}
	uint32_t ci = wf_recarve_chunk, k = wf_recarve_next++;
	struct wf_thread *t = &atomic_load_explicit(&wf_chunks[ci], memory_order_relaxed)[k];
	t->index = ci << WF_CHUNK_SHIFT | k;
	atomic_store_explicit(&t->gen, wf_chunk_gen[ci], memory_order_relaxed);
	return t;
}

struct wf_thread *wf_tcb_alloc(struct wf_worker *w)
{
	struct wf_thread *t = NULL;
	if (w && (t = w->tcb_cur)) {
		w->tcb_cur = t->next;
		w->tcb_ncur--;
	} else if (w && (t = w->tcb_full)) {
		w->tcb_cur = t->next;
		w->tcb_ncur = WF_TCB_BATCH - 1;
		w->tcb_full = NULL;
	} else {
		wf_spin_lock(&wf_tcb_lock);
		if ((t = wf_free_batches)) {
			/* A worker takes the whole batch; a kernel thread that is
			 * not a worker takes one TCB of it. */
			unsigned n = (unsigned)t->heap_idx;
			struct wf_thread *nextb = t->prev, *rest = t->next;
			if (w) {
				wf_free_batches = nextb;
				w->tcb_cur = rest;
				w->tcb_ncur = n - 1;
				wf_nfree -= n;
			} else {
				if (rest)
					wf_batch_set(rest, nextb, n - 1);
				wf_free_batches = rest ? rest : nextb;
				wf_nfree--;
			}
			if (wf_nfree < wf_free_low)
				wf_free_low = wf_nfree;
		} else if (!(t = wf_tcb_take_dead()) && !(t = wf_slot_recarve())) {
			t = wf_slot_new();
		}
		wf_spin_unlock(&wf_tcb_lock);
		if (!t)
			return NULL;
	}
	wf_tcb_reset(t);
	return t;
}

/* ---- giving chunks back ------------------------------------------------- */

/* Free TCBs per chunk, counted by wf_tcb_trim (under wf_tcb_lock), then
 * reused as "given back" marks. */
static uint16_t wf_chunk_free[WF_MAX_CHUNKS];

/*
 * Give back the memory of chunk ci, whose TCBs are all free and on no
 * list.  Readers may still hold stale handles of its slots:
 *  - lookups (wf_tcb_lookup, the dump, wf_handle_on_cpu) only read; the
 *    released memory reads as zeroes, so gen 0, which no handle carries
 *    (generations start at 1), and state WF_FREE: the handle is stale;
 *  - a checker that found a live thread, then lost the race to its
 *    reclaim, locks lk and re-checks the generation (wf_tcb_lock_handle,
 *    weft_join, weft_detach).  So every lk of the chunk is taken first:
 *    no checker holds one while the memory goes, and one that waits for
 *    it gets a zeroed, free lock after, reads gen 0 and lets it go.  The
 *    locks are not released here: the zeroed memory has done it, and a
 *    store now could release a checker's.
 * The slots' next generation is recorded outside the chunk: one above
 * the highest, so no handle ever made for a slot matches it again.
 *
 * The kernel may keep the memory: madvise fails on locked pages (EINVAL,
 * a program that called mlockall), and qemu-user, where the program's
 * pages are larger than the host's, ignored it on these chunks (whose
 * length is not a whole number of 64 KiB pages) and answered 0.  The chunk
 * then still holds what it held, every lk taken above included, and a
 * checker would wait on one for ever.  So whether the memory reads as
 * zeroes is checked: every slot of the chunk had a generation of at least
 * 1, and madvise on the chunk's one mapping zeroes all of it or nothing.
 * If nothing, the scavenger clears the slots itself, every field but lk,
 * and only then releases each lk: no checker can hold one meanwhile, and
 * one that waits gets it after and reads generation 0, as above.  The
 * memory stays, the rest is the same.
 */
/* Clear t, whose lk the caller holds, and release it.  A lookup without
 * the lock reading gen meanwhile sees the old generation or 0: both are
 * stale (every thread of the chunk was retired, which bumped it). */
static void wf_tcb_clear_locked(struct wf_thread *t)
{
	char *p = (char *)t, *l = (char *)&t->lk;
	memset(p, 0, (size_t)(l - p));
	memset(l + sizeof t->lk, 0, sizeof *t - (size_t)(l - p) - sizeof t->lk);
	wf_spin_unlock(&t->lk);   /* release: the zeroes are seen first */
}

static void wf_tcb_chunk_release(uint32_t ci)
{
	struct wf_thread *c = atomic_load_explicit(&wf_chunks[ci], memory_order_relaxed);
	uint32_t gen = 0;
	for (uint32_t k = 0; k < WF_CHUNK_SLOTS; k++) {
		wf_spin_lock(&c[k].lk);
		uint32_t g = atomic_load_explicit(&c[k].gen, memory_order_relaxed);
		if (g > gen)
			gen = g;
	}
	int e = errno;
	bool gone = madvise(c, WF_CHUNK_SLOTS * sizeof *c, MADV_DONTNEED) == 0 &&
	            atomic_load_explicit(&c[0].gen, memory_order_relaxed) == 0;
	errno = e;
	if (!gone)
		for (uint32_t k = 0; k < WF_CHUNK_SLOTS; k++)
			wf_tcb_clear_locked(&c[k]);
	wf_spin_lock(&wf_tcb_lock);
	wf_chunk_gen[ci] = gen + 1;
	wf_released[wf_nreleased++] = ci;
	wf_spin_unlock(&wf_tcb_lock);
	atomic_fetch_add_explicit(gone ? &wf_chunks_released : &wf_chunks_cleared, 1,
	                          memory_order_relaxed);
}

uint64_t wf_tcb_chunks_released(void)
{
	return atomic_load_explicit(&wf_chunks_released, memory_order_relaxed);
}

uint64_t wf_tcb_chunks_cleared(void)
{
	return atomic_load_explicit(&wf_chunks_cleared, memory_order_relaxed);
}

/* Under wf_tcb_lock: rebuild the shared list without the TCBs of the
 * chunks marked in wf_chunk_free. */
static void wf_free_list_drop_marked(void)
{
	struct wf_thread *b = wf_free_batches, *head = NULL;
	unsigned n = 0;
	wf_free_batches = NULL;
	wf_nfree = 0;
	for (struct wf_thread *nb; b; b = nb) {
		nb = b->prev;
		for (struct wf_thread *t = b, *nt; t; t = nt) {
			nt = t->next;
			if (wf_chunk_free[t->index >> WF_CHUNK_SHIFT])
				continue;
			t->next = head;
			head = t;
			if (++n == WF_TCB_BATCH) {
				wf_put_batch_locked(head, n);
				head = NULL;
				n = 0;
			}
		}
	}
	if (head)
		wf_put_batch_locked(head, n);
}

/* One trim at a time (the monitor's, or a test's): it owns `gone` and,
 * with wf_tcb_lock, wf_chunk_free.  Taken before wf_tcb_lock. */
static wf_spin_t wf_trimming = WF_SPIN_INIT;

size_t wf_tcb_trim(void)
{
	static uint32_t gone[WF_MAX_CHUNKS];
	uint32_t ngone = 0, nkept = 0;
	if (!wf_spin_trylock(&wf_trimming))
		return 0;
	wf_spin_lock(&wf_tcb_lock);
	uint64_t puts = atomic_load_explicit(&wf_free_puts, memory_order_relaxed);
	/* A scan walks the whole list under the lock: only when a chunk's
	 * worth stayed free all period, and not again after a futile one
	 * (free TCBs spread over chunks still in use) until a chunk's worth
	 * more was freed. */
	if (wf_free_low >= WF_CHUNK_SLOTS &&
	    !(wf_scan_futile && puts - wf_scan_puts < WF_CHUNK_SLOTS)) {
		/* Count the free TCBs of each chunk.  A chunk goes only if all
		 * its TCBs are free (the one being handed out again never is:
		 * its remaining slots are on no list), and no more TCBs go than
		 * stayed free all period. */
		uint32_t nchunks = (atomic_load_explicit(&wf_slots_used, memory_order_relaxed) +
		                    WF_CHUNK_SLOTS - 1) >> WF_CHUNK_SHIFT;
		memset(wf_chunk_free, 0, nchunks * sizeof wf_chunk_free[0]);
		for (struct wf_thread *b = wf_free_batches; b; b = b->prev)
			for (struct wf_thread *t = b; t; t = t->next)
				wf_chunk_free[t->index >> WF_CHUNK_SHIFT]++;
		for (uint32_t ci = 0; ci < nchunks; ci++) {
			bool whole = wf_chunk_free[ci] == WF_CHUNK_SLOTS;
			bool go = whole && (size_t)(ngone + 1) * WF_CHUNK_SLOTS <= wf_free_low;
			if (go)
				gone[ngone++] = ci;
			nkept += whole && !go;
			wf_chunk_free[ci] = go;   /* from here on: "given back" */
		}
		if (ngone)
			wf_free_list_drop_marked();
		wf_scan_futile = !ngone && !nkept;
		wf_scan_puts = puts;
	}
	wf_free_low = wf_nfree;
	wf_spin_unlock(&wf_tcb_lock);
	for (uint32_t i = 0; i < ngone; i++)
		wf_tcb_chunk_release(gone[i]);
	wf_spin_unlock(&wf_trimming);
	return nkept;
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

/* Across fork(): no trim under way (a chunk half given back, every lock of
 * it held, and on no list), then the table and the shared list between two
 * operations.  A trim is the monitor's: the forker waits for its madvise
 * at most.  In the order a trim takes them. */
void wf_tcb_fork_lock(void)
{
	wf_spin_lock(&wf_trimming);
	wf_spin_lock(&wf_tcb_lock);
}

void wf_tcb_fork_unlock(void)
{
	wf_spin_unlock(&wf_tcb_lock);
	wf_spin_unlock(&wf_trimming);
}

/*
 * In a child of fork(), on its only thread: every TCB but `keep` (the
 * forking green thread, or NULL) belongs to a thread that does not exist
 * here.  They are declared dead all at once, and reclaimed one at a time
 * as the child needs TCBs (wf_tcb_take_dead, lowest slot first); until then
 * lookups and observers skip them (wf_tcb_dead).  Touching each at the fork
 * cost a copy-on-write fault per page of TCBs: 2.4 ms of a 5.6 ms fork of a
 * process with 10,000 parked threads (bench_cancel fork-parked).  The
 * shared list of free batches and the per-worker caches are dropped (the
 * latter with the workers); their TCBs are among the dead ones.  Chunks
 * given back stay listed for wf_slot_recarve: their slots that were never
 * handed out again read generation 0 and are not dead ones.
 */
void wf_tcb_forked_child(struct wf_thread *keep)
{
	wf_free_batches = NULL;
	wf_nfree = 0;
	wf_free_low = 0;
	wf_tcb_dead_keep = keep;
	wf_tcb_dead_hi = wf_tcb_slots();
	atomic_store_explicit(&wf_tcb_dead_lo, 0, memory_order_relaxed);
}
