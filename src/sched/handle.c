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
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "sched_internal.h"

#define WF_CHUNK_SHIFT 10
#define WF_CHUNK_SLOTS (1u << WF_CHUNK_SHIFT)
#define WF_MAX_CHUNKS  (1u << 14)   /* 16 Mi threads alive at once */
#define WF_TCB_CACHE   256          /* free TCBs kept per worker */

static struct wf_thread *_Atomic wf_chunks[WF_MAX_CHUNKS];
static wf_spin_t wf_tcb_lock = WF_SPIN_INIT;   /* guards the two below */
/* High-water mark: written under wf_tcb_lock, read without it by observers
 * (weft_dump), for whom a slightly old value is fine. */
static _Atomic uint32_t wf_slots_used;
static struct wf_thread *wf_free_list;

static struct wf_thread *wf_slot(uint32_t i)
{
	struct wf_thread *c = atomic_load_explicit(&wf_chunks[i >> WF_CHUNK_SHIFT],
	                                           memory_order_acquire);
	return c ? &c[i & (WF_CHUNK_SLOTS - 1)] : NULL;
}

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
		atomic_store_explicit(&wf_chunks[ci], c, memory_order_release);
	}
	struct wf_thread *t = &c[i & (WF_CHUNK_SLOTS - 1)];
	t->index = i;
	atomic_store_explicit(&t->gen, 1, memory_order_relaxed);
	atomic_store_explicit(&wf_slots_used, i + 1, memory_order_release);
	return t;
}

static void wf_tcb_reset(struct wf_thread *t)
{
	uint32_t index = t->index;
	uint32_t gen = atomic_load_explicit(&t->gen, memory_order_relaxed);
	uint64_t wait = atomic_load_explicit(&t->wait, memory_order_relaxed);
	memset(t, 0, sizeof *t);
	t->index = index;
	atomic_store_explicit(&t->gen, gen, memory_order_relaxed);
	/* Keep the wait sequence growing across lives: a stale timer can then
	 * never match a new wait. */
	atomic_store_explicit(&t->wait, wait & ~3ull, memory_order_relaxed);
	t->heap_idx = -1;
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
		else
			t = wf_slot_new();
		wf_spin_unlock(&wf_tcb_lock);
		if (!t)
			return NULL;
	}
	wf_tcb_reset(t);
	return t;
}

/* Called with t->lk held or when no one else can hold t's handle: bumping
 * the generation makes every outstanding handle of t stale at once. */
void wf_tcb_release(struct wf_worker *w, struct wf_thread *t)
{
	t->state = WF_FREE;
	atomic_fetch_add_explicit(&t->gen, 1, memory_order_release);
	if (w && w->tcb_cached < WF_TCB_CACHE) {
		t->next = w->tcb_cache;
		w->tcb_cache = t;
		w->tcb_cached++;
		return;
	}
	wf_spin_lock(&wf_tcb_lock);
	t->next = wf_free_list;
	wf_free_list = t;
	wf_spin_unlock(&wf_tcb_lock);
}

weft_t wf_tcb_handle(const struct wf_thread *t)
{
	uint64_t gen = atomic_load_explicit(&((struct wf_thread *)t)->gen, memory_order_relaxed);
	return (weft_t)((gen << 32) | ((uint64_t)t->index + 1));
}

uintptr_t wf_thread_handle(const struct wf_thread *t) { return wf_tcb_handle(t); }

struct wf_thread *wf_tcb_lookup(weft_t h)
{
	uint64_t v = (uint64_t)h;
	uint32_t slot = (uint32_t)v;
	uint32_t gen = (uint32_t)(v >> 32);
	if (slot == 0 || slot - 1 >= WF_MAX_CHUNKS * WF_CHUNK_SLOTS)
		return NULL;
	struct wf_thread *t = wf_slot(slot - 1);
	if (!t || atomic_load_explicit(&t->gen, memory_order_acquire) != gen ||
	    t->state == WF_FREE || t->kind == WF_KIND_IDLE)
		return NULL;
	return t;
}

uint32_t wf_tcb_slots(void)
{
	return atomic_load_explicit(&wf_slots_used, memory_order_acquire);
}

/* Any slot below wf_tcb_slots(): its chunk is published before the mark. */
struct wf_thread *wf_tcb_at(uint32_t slot)
{
	return slot < wf_tcb_slots() ? wf_slot(slot) : NULL;
}
