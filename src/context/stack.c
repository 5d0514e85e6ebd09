/*
 * stack.c — green-thread stacks.
 *
 * Design
 *
 * A green thread needs a stack whose untouched part costs nothing, whose
 * overflow is caught rather than silently corrupting a neighbour, and which
 * can be had and given back in a few hundred nanoseconds, a hundred
 * thousand times over.  Stacks are therefore carved from large slabs: one
 * mmap(MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE) region per size class holds
 * many stacks laid out as
 *
 *	[guard][stack 0][guard][stack 1] ... [guard][stack n-1]
 *
 * Stacks grow down, so running off the bottom of stack i lands in the guard
 * page just below it.  The guard is installed with
 * madvise(MADV_GUARD_INSTALL): a marker in the page table, not a mapping of
 * its own, so a slab stays one VMA however many guards it carries (Linux
 * 6.13 and later).  Slabs grow geometrically per class (the first holds at
 * least WF_SLAB_MIN_STACKS stacks or WF_SLAB_MIN_BYTES, each later one twice
 * as many stacks, up to WF_SLAB_MAX_BYTES), so 100,000 stacks cost about a
 * dozen mmap calls and mappings.  Guards are installed when a stack is first
 * carved, not when its slab is mapped, so unused tails of slabs cost nothing.
 *
 * Memory flow (after tcmalloc's per-CPU caches and transfer cache, and Go's
 * stackcache and stackpool).  A stack is freed on whichever worker its
 * thread finished on, which in a program running on several workers is
 * often not the worker that will create the next thread: measured with
 * per-worker caches alone (16 stacks each, the overflow released one stack
 * at a time), skynet on 2 workers ran dry on the creating worker, which
 * faulted in fresh stacks, while the finishing worker released its
 * overflow with one madvise per stack, each a TLB shootdown across CPUs:
 * 1.3-1.5 s of system time for 0.3 s of work.  So stacks move in three
 * tiers:
 *
 *  - a worker's cache (wf_stack_cache): stacks of one size class, a
 *    partial batch `cur` (LIFO, the warmest on top) and at most one whole
 *    batch `full` of WF_STACK_BATCH.  Allocation and free touch only it.
 *  - the shared tier of each class: whole batches, LIFO, under the class
 *    lock.  A worker whose cache overflows moves a batch there, and one
 *    whose cache runs dry takes a batch back: one lock per
 *    WF_STACK_BATCH stacks, whichever worker they flow between.  The
 *    shared tiers of all classes hold at most wf_stack_warm_max bytes
 *    (WEFT_STACK_CACHE); a batch that would exceed it is queued for
 *    release instead.
 *  - the release queue: batches waiting to be given back to the kernel.
 *    Nobody on the create or exit path releases memory: the scavenger
 *    (wf_stack_scavenge, called by the runtime's monitor thread) sorts
 *    the queue by address and gives back each run of neighbouring stacks
 *    with one madvise(MADV_DONTNEED) over the run, guard pages included
 *    (a guard survives it, whether a MADV_GUARD_INSTALL marker or an
 *    mprotect; measured on Linux 6.18), so a burst of exits costs a few
 *    system calls and TLB shootdowns, not one per stack.  Released stacks
 *    join their class's cold list: a cold stack costs no resident memory,
 *    only its slot in the bookkeeping.
 *
 * Stacks that sit unused in a shared tier are trimmed too (wf_stack_trim,
 * called periodically by the same scavenger): each class remembers the
 * fewest stacks its tier held since the last trim, which no worker needed
 * during the whole period, and the trim releases that many from the
 * bottom of the tier (the batches left longest).  An idle process thus
 * gives its stacks back within two periods, and a busy one keeps what it
 * cycles through.  Stacks larger than WF_STACK_CACHE_MAX_SIZE are never
 * kept warm: they go to the release queue at once.
 *
 * Allocation tries the worker's cache, then a batch of the shared tier,
 * then the cold list, then carving the class's current slab, then a new
 * slab.
 *
 * Bookkeeping (struct wf_stack_slot, 24 bytes) lives in an array next to
 * each slab's header, outside the stack memory, so the allocator never
 * touches a stack page and a cold stack has nothing resident.  Slabs are
 * never unmapped: a stale pointer into a freed stack reads zeroes or another
 * thread's data, it never faults outside a guard.  Slabs are also marked
 * MAP_STACK and MADV_NOHUGEPAGE, so one touched page of a big stack is not
 * backed by a 2 MiB huge page where THP is "always".
 *
 * Alternatives rejected:
 *  - One mmap per stack (the pthread way).  Each stack is at least one VMA,
 *    two with an mprotect guard, and vm.max_map_count (65530 by default)
 *    caps a process at ~32,000 threads; every create and exit also pays an
 *    mmap/munmap with its TLB shootdown and mmap_lock contention.
 *  - mprotect(PROT_NONE) guards inside a slab.  Each guard splits the slab
 *    VMA, costing two mappings per stack: the same cap as above.  It remains
 *    the fallback where the kernel refuses MADV_GUARD_INSTALL (EINVAL), or
 *    accepts it without installing anything (checked on the first guards:
 *    qemu-user 7.2 does that), with a one-time warning on stderr as the
 *    mapping count nears the limit.
 *  - No guard.  An overflow would silently scribble over the next stack in
 *    the slab and surface far from its cause; with a guard it is a SIGSEGV
 *    at the faulting instruction that the runtime can name.
 *
 * Size classes are exact page-rounded sizes (a program uses few distinct
 * stack sizes); they are created on first use and never freed.
 *
 * Locking: each class has `lock` (shared tier, cold list, current slab,
 * carve index) and `grow` (serialises mapping a new slab; taken before
 * `lock`, never while holding it); the release queue has `wf_rel_lock`,
 * never held with a class lock.  Syscalls are made outside every lock:
 * guards are installed and pages released after a slot has been taken off
 * or before it is put on a shared list.  A cache is used by one worker at
 * a time and has no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "stack.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

#define WF_SLAB_MIN_STACKS 64
#define WF_SLAB_MIN_BYTES  ((size_t)4 << 20)
#define WF_SLAB_MAX_BYTES  ((size_t)256 << 20)

/* slot->state bits */
#define WF_SLOT_GUARDED 1u   /* the guard below this stack is installed */
#define WF_SLOT_INUSE   2u   /* handed out by wf_stack_alloc */

/*
 * A stack's bookkeeping.  Invariant: a slot is in exactly one of
 *  - handed out: INUSE and GUARDED, on no list;
 *  - a worker's cache, a shared tier or the release queue: GUARDED, not
 *    INUSE, pages may be resident;
 *  - its class's cold list: not INUSE, no page resident (released, or never
 *    touched; GUARDED unless installing its guard failed);
 *  - not yet carved: index >= cls->carved in the current slab, all zero
 *    (even `slab`, which carving fills in).
 * Lists are singly linked through `next`; a batch is such a list whose first
 * slot gives its length (`bcount`) and links it to the next batch
 * (`bnext`) in a shared tier or the release queue.  Whoever holds a slot off every
 * list owns its `next` and `state`; the class lock hands them over.
 * `state` is also read, without the owner's lock, by wf_stack_stats_get
 * (a count for tests): hence relaxed atomic accesses (plain moves on x86).
 */
struct wf_stack_slot {
	struct wf_stack_slot *next;
	struct wf_stack_slab *slab;
	struct wf_stack_slot *bnext;    /* first slot of a batch: the next batch */
	uint32_t state;
	uint32_t bcount;                /* first slot of a batch: slots in it */
};

struct wf_stack_slab {
	struct wf_stack_slab *prev;     /* older slab of the class */
	struct wf_stack_class *cls;
	char *base;                     /* n strides: guard then stack */
	size_t n;
	struct wf_stack_slot slots[];
};

struct wf_stack_class {
	wf_spin_t lock;                 /* warm, nwarm, warm_low, cold, cur, carved */
	wf_spin_t grow;                 /* next_n; held while mapping a slab */
	size_t size;                    /* usable bytes per stack */
	size_t stride;                  /* guard + size */
	struct wf_stack_slot *warm;     /* shared tier: batches, newest first */
	size_t nwarm;                   /* stacks in it */
	size_t warm_low;                /* fewest stacks in it since the last trim */
	struct wf_stack_slot *cold;
	struct wf_stack_slab *cur;      /* slab being carved, or NULL */
	size_t carved;                  /* slots of cur handed out, <= cur->n */
	size_t next_n;                  /* stacks in the next slab */
	struct wf_stack_class *next;    /* immutable once published */
};

enum { WF_GUARD_MADVISE, WF_GUARD_MPROTECT };

static _Atomic(struct wf_stack_class *) wf_classes;
static wf_spin_t wf_classes_lock = WF_SPIN_INIT;
static _Atomic size_t wf_page;
static _Atomic int wf_guard_mode = WF_GUARD_MADVISE;
static _Atomic bool wf_guard_verified;  /* a MADV_GUARD_INSTALL guard faulted */
static _Atomic size_t wf_map_limit;   /* vm.max_map_count, 0 unknown */
static _Atomic size_t wf_map_base;    /* mappings when mprotect began */
static _Atomic bool wf_map_warned;

/* No counter of stacks in use: a global one cost a locked instruction on a
 * shared cache line at every allocation and free; wf_stack_stats_get
 * counts INUSE slots instead. */
static _Atomic size_t wf_st_slabs, wf_st_slab_bytes,
	wf_st_cold, wf_st_guards_mprotect, wf_st_released, wf_st_madvises, wf_st_fresh;

/* Bytes in the shared tiers of all classes, and their bound (set once at
 * start, before any stack is freed: wf_stack_set_warm_max). */
static _Atomic size_t wf_warm_bytes;
static size_t wf_warm_max = WF_STACK_WARM_DEFAULT;

/* The release queue: batches linked through bnext, stacks counted in
 * wf_rel_n (changed under the lock, read without it as a hint). */
static wf_spin_t wf_rel_lock = WF_SPIN_INIT;
static struct wf_stack_slot *wf_rel;
static _Atomic size_t wf_rel_n;

/* The kernel's page size, as it told the process (AT_PAGESZ): 4 KiB on
 * x86-64; 4, 16 or 64 KiB on AArch64, depending on the kernel's build.
 * Guards, stack sizes and slab strides are all multiples of it. */
size_t wf_pagesize(void)
{
	size_t p = atomic_load_explicit(&wf_page, memory_order_relaxed);
	if (wf_unlikely(!p)) {
		p = (size_t)getpagesize();
		atomic_store_explicit(&wf_page, p, memory_order_relaxed);
	}
	return p;
}

static void wf_stat_add(_Atomic size_t *c, size_t d)
{
	atomic_fetch_add_explicit(c, d, memory_order_relaxed);
}

static void wf_stat_sub(_Atomic size_t *c, size_t d)
{
	atomic_fetch_sub_explicit(c, d, memory_order_relaxed);
}

size_t wf_stack_round(size_t size)
{
	size_t p = wf_pagesize();
	if (!size || size > WF_STACK_SIZE_MAX)
		return 0;
	return (size + p - 1) & ~(p - 1);
}

/* ---- size classes ------------------------------------------------------ */

static struct wf_stack_class *wf_class_find(size_t size)
{
	struct wf_stack_class *c;
	c = atomic_load_explicit(&wf_classes, memory_order_acquire);
	for (; c; c = c->next)
		if (c->size == size)
			return c;
	return NULL;
}

static size_t wf_slab_clamp(size_t n, size_t stride)
{
	size_t max = WF_SLAB_MAX_BYTES / stride;
	if (n > max)
		n = max;
	return n ? n : 1;
}

static struct wf_stack_class *wf_class_new(size_t size)
{
	struct wf_stack_class *c = calloc(1, sizeof *c);
	size_t n;
	if (!c)
		return NULL;
	c->size = size;
	c->stride = size + wf_pagesize();
	n = WF_SLAB_MIN_BYTES / c->stride;
	if (n < WF_SLAB_MIN_STACKS)
		n = WF_SLAB_MIN_STACKS;
	c->next_n = wf_slab_clamp(n, c->stride);
	return c;
}

/* The class for a rounded size, created on first use.  NULL: no memory. */
static struct wf_stack_class *wf_class_get(size_t size)
{
	struct wf_stack_class *c = wf_class_find(size);
	if (wf_likely(c != NULL))
		return c;
	wf_spin_lock(&wf_classes_lock);
	c = wf_class_find(size);
	if (!c && (c = wf_class_new(size))) {
		c->next = atomic_load_explicit(&wf_classes,
		                               memory_order_relaxed);
		atomic_store_explicit(&wf_classes, c, memory_order_release);
	}
	wf_spin_unlock(&wf_classes_lock);
	return c;
}

/* ---- slots ------------------------------------------------------------- */

static size_t wf_slot_index(const struct wf_stack_slot *s)
{
	return (size_t)(s - s->slab->slots);
}

static char *wf_slot_lo(const struct wf_stack_slot *s)
{
	const struct wf_stack_class *c = s->slab->cls;
	return s->slab->base + wf_slot_index(s) * c->stride + wf_pagesize();
}

static void wf_stack_fill(wf_stack *out, struct wf_stack_slot *s)
{
	char *lo = wf_slot_lo(s);
	out->lo = lo;
	out->hi = lo + s->slab->cls->size;
	out->guard = wf_pagesize();
	out->user = 0;
	out->slot = s;
}

static uint32_t wf_slot_state(const struct wf_stack_slot *s)
{
	return __atomic_load_n(&s->state, __ATOMIC_RELAXED);
}

static void wf_slot_set_state(struct wf_stack_slot *s, uint32_t v)
{
	__atomic_store_n(&s->state, v, __ATOMIC_RELAXED);
}

/* ---- guards ------------------------------------------------------------ */

static size_t wf_count_maps(void)
{
	char buf[4096];
	size_t n = 0;
	ssize_t r;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while ((r = read(fd, buf, sizeof buf)) > 0 ||
	       (r < 0 && errno == EINTR))
		for (ssize_t i = 0; i < r; i++)
			n += buf[i] == '\n';
	close(fd);
	return n;
}

static size_t wf_read_map_limit(void)
{
	char buf[32] = {0};
	long v = 0;
	int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, buf, sizeof buf - 1) > 0)
			v = strtol(buf, NULL, 10);
		close(fd);
	}
	return v > 0 ? (size_t)v : 65530;
}

/* Switch to mprotect guards for good; a limit of 0 reads the sysctl. */
static void wf_guard_fallback(size_t limit)
{
	int m = WF_GUARD_MADVISE;
	if (!atomic_compare_exchange_strong(&wf_guard_mode, &m,
	                                    WF_GUARD_MPROTECT) && !limit)
		return;
	atomic_store(&wf_map_base, wf_count_maps());
	atomic_store(&wf_map_limit, limit ? limit : wf_read_map_limit());
}

/* Warn once when mprotect guards bring mappings within 1/8 of the limit. */
static void wf_guard_warn_check(void)
{
	size_t lim = atomic_load_explicit(&wf_map_limit, memory_order_relaxed);
	size_t g = atomic_load_explicit(&wf_st_guards_mprotect,
	                                memory_order_relaxed);
	size_t used = atomic_load_explicit(&wf_map_base, memory_order_relaxed)
	            + 2 * g;
	if (!lim || used < lim - lim / 8)
		return;
	if (atomic_exchange(&wf_map_warned, true))
		return;
	fprintf(stderr, "weft: the kernel refuses MADV_GUARD_INSTALL, so each "
	        "stack guard page costs two memory mappings: %zu guards bring "
	        "the process near vm.max_map_count (%zu); raise it with sysctl "
	        "or use fewer threads\n", g, lim);
}

static int wf_guard_mprotect(char *g, size_t len)
{
	if (mprotect(g, len, PROT_NONE))
		return EAGAIN;   /* ENOMEM here: out of mappings */
	wf_stat_add(&wf_st_guards_mprotect, 1);
	wf_guard_warn_check();
	return 0;
}

/*
 * Does the guard at g really fault?  The kernel copying from it for write(2)
 * must fail with EFAULT, as for any access.  An emulator may accept
 * MADV_GUARD_INSTALL and do nothing (qemu-user 7.2 answers 0 to every
 * madvise it does not know), which would leave stacks unguarded.  1: it
 * faults; 0: it does not; -1: cannot tell (no pipe).
 */
static int wf_guard_faults(const char *g)
{
	int p[2], r;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return -1;
	r = write(p[1], g, 1) < 0 && errno == EFAULT;
	close(p[0]);
	close(p[1]);
	return r;
}

/* Install the guard below slot s.  0, EAGAIN or ENOMEM. */
static int wf_guard_install(struct wf_stack_slot *s)
{
	size_t len = wf_pagesize();
	char *g = wf_slot_lo(s) - len;
	int tries = 0;

	while (atomic_load_explicit(&wf_guard_mode, memory_order_relaxed) ==
	       WF_GUARD_MADVISE) {
		if (!madvise(g, len, MADV_GUARD_INSTALL)) {
			/* Until one guard was seen to fault, every installer
			 * checks its own, so no stack is handed out unguarded
			 * while another thread is still finding out. */
			if (atomic_load_explicit(&wf_guard_verified, memory_order_acquire))
				goto done;
			int f = wf_guard_faults(g);
			if (f == 1)
				atomic_store_explicit(&wf_guard_verified, true,
				                      memory_order_release);
			if (f != 0)
				goto done;
			wf_guard_fallback(0);
			break;
		}
		if (errno == EINVAL)
			wf_guard_fallback(0);
		else if ((errno != EINTR && errno != EAGAIN) || ++tries > 8)
			return errno == ENOMEM ? ENOMEM : EAGAIN;
	}
	if (wf_guard_mprotect(g, len))
		return EAGAIN;
done:
	wf_slot_set_state(s, wf_slot_state(s) | WF_SLOT_GUARDED);
	return 0;
}

/* ---- slabs ------------------------------------------------------------- */

/* Map a slab for class c.  Called with c->grow held. */
static struct wf_stack_slab *wf_slab_new(struct wf_stack_class *c)
{
	size_t n = c->next_n, bytes = n * c->stride;
	struct wf_stack_slab *sl;
	void *p;

	sl = calloc(1, sizeof *sl + n * sizeof sl->slots[0]);
	if (!sl)
		return NULL;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
	         -1, 0);
	if (p == MAP_FAILED) {
		free(sl);
		return NULL;
	}
	madvise(p, bytes, MADV_NOHUGEPAGE);
	sl->cls = c;
	sl->base = p;
	sl->n = n;
	c->next_n = wf_slab_clamp(2 * n, c->stride);
	wf_stat_add(&wf_st_slabs, 1);
	wf_stat_add(&wf_st_slab_bytes, bytes);
	return sl;
}

/* A cold or fresh slot of class c, or NULL when c needs a new slab.
 * Called with c->lock held. */
static struct wf_stack_slot *wf_class_take_locked(struct wf_stack_class *c)
{
	struct wf_stack_slot *s = c->cold;
	if (s) {
		c->cold = s->next;
		s->next = NULL;
		wf_stat_sub(&wf_st_cold, 1);
		return s;
	}
	if (c->cur && c->carved < c->cur->n) {
		/* Slots are filled in as carved: the untouched tail of a big
		 * slot array stays unbacked, like the slab it describes. */
		s = &c->cur->slots[c->carved++];
		s->slab = c->cur;
		return s;
	}
	return NULL;
}

static struct wf_stack_slot *wf_class_take(struct wf_stack_class *c)
{
	struct wf_stack_slot *s;
	wf_spin_lock(&c->lock);
	s = wf_class_take_locked(c);
	wf_spin_unlock(&c->lock);
	return s;
}

/* Take a slot, mapping a new slab if need be.  0 or ENOMEM. */
static int wf_class_grow(struct wf_stack_class *c, struct wf_stack_slot **out)
{
	struct wf_stack_slab *sl = NULL;
	struct wf_stack_slot *s;

	wf_spin_lock(&c->grow);
	/* Another thread may have grown the class while we waited. */
	s = wf_class_take(c);
	if (!s && (sl = wf_slab_new(c))) {
		wf_spin_lock(&c->lock);
		sl->prev = c->cur;
		c->cur = sl;
		c->carved = 0;
		s = wf_class_take_locked(c);
		wf_spin_unlock(&c->lock);
	}
	wf_spin_unlock(&c->grow);
	*out = s;
	return s ? 0 : ENOMEM;
}

/* Put an unused slot on its class's cold list (pages already released). */
static void wf_class_put(struct wf_stack_slot *s)
{
	struct wf_stack_class *c = s->slab->cls;
	wf_spin_lock(&c->lock);
	s->next = c->cold;
	c->cold = s;
	wf_stat_add(&wf_st_cold, 1);
	wf_spin_unlock(&c->lock);
}


/* ---- the release queue and the scavenger ------------------------------- */

/* Queue a batch (head..., n slots) for release. */
static void wf_rel_put(struct wf_stack_slot *head, uint32_t n)
{
	head->bcount = n;
	wf_spin_lock(&wf_rel_lock);
	head->bnext = wf_rel;
	wf_rel = head;
	atomic_store_explicit(&wf_rel_n, atomic_load_explicit(&wf_rel_n, memory_order_relaxed) + n,
	                      memory_order_relaxed);
	wf_spin_unlock(&wf_rel_lock);
}

static uintptr_t wf_slot_addr(const struct wf_stack_slot *s)
{
	return (uintptr_t)wf_slot_lo(s);
}

/* Sort a list of slots by stack address (merge sort: no memory needed, and
 * the queue may hold any number of stacks). */
static struct wf_stack_slot *wf_sort_slots(struct wf_stack_slot *l, size_t n)
{
	if (n < 2)
		return l;
	struct wf_stack_slot *b = l, **pp;
	size_t half = n / 2;
	for (size_t i = 1; i < half; i++)
		b = b->next;
	struct wf_stack_slot *r = b->next;
	b->next = NULL;
	l = wf_sort_slots(l, half);
	r = wf_sort_slots(r, n - half);
	struct wf_stack_slot *out = NULL;
	pp = &out;
	while (l && r) {
		struct wf_stack_slot **min = wf_slot_addr(l) < wf_slot_addr(r) ? &l : &r;
		*pp = *min;
		pp = &(*min)->next;
		*min = (*min)->next;
	}
	*pp = l ? l : r;
	return out;
}

/* Put released slots (sorted, linked through next) on their classes' cold
 * lists: one lock per run of one class. */
static void wf_cold_put_sorted(struct wf_stack_slot *l)
{
	while (l) {
		struct wf_stack_class *c = l->slab->cls;
		struct wf_stack_slot *last = l;
		size_t n = 1;
		while (last->next && last->next->slab->cls == c) {
			last = last->next;
			n++;
		}
		struct wf_stack_slot *rest = last->next;
		wf_spin_lock(&c->lock);
		last->next = c->cold;
		c->cold = l;
		wf_spin_unlock(&c->lock);
		wf_stat_add(&wf_st_cold, n);
		l = rest;
	}
}

size_t wf_stack_scavenge(void)
{
	if (!atomic_load_explicit(&wf_rel_n, memory_order_relaxed))
		return 0;
	wf_spin_lock(&wf_rel_lock);
	struct wf_stack_slot *b = wf_rel;
	size_t n = atomic_load_explicit(&wf_rel_n, memory_order_relaxed);
	wf_rel = NULL;
	atomic_store_explicit(&wf_rel_n, 0, memory_order_relaxed);
	wf_spin_unlock(&wf_rel_lock);
	if (!b)
		return 0;
	/* Flatten the batches into one list, then sort it. */
	struct wf_stack_slot *all = NULL, *tail = NULL;
	for (struct wf_stack_slot *nb; b; b = nb) {
		nb = b->bnext;
		struct wf_stack_slot *last = b;
		for (uint32_t i = 1; i < b->bcount; i++)
			last = last->next;
		last->next = NULL;
		if (tail)
			tail->next = b;
		else
			all = b;
		tail = last;
	}
	all = wf_sort_slots(all, n);
	/* One madvise per run of neighbours: slot i+1 of a slab begins one
	 * guard page above the end of slot i, so the run [lo of the first,
	 * hi of the last) covers the guards between, which stay. */
	int e = errno;
	for (struct wf_stack_slot *s = all; s;) {
		struct wf_stack_slab *sl = s->slab;
		size_t size = sl->cls->size;
		char *lo = wf_slot_lo(s), *hi = lo + size;
		struct wf_stack_slot *t = s->next;
		while (t && t->slab == sl && t == s + 1) {
			hi = wf_slot_lo(t) + size;
			s = t;
			t = t->next;
		}
		madvise(lo, (size_t)(hi - lo), MADV_DONTNEED);
		wf_stat_add(&wf_st_madvises, 1);
		s = t;
	}
	errno = e;
	wf_stat_add(&wf_st_released, n);
	wf_cold_put_sorted(all);
	return n;
}

/* ---- the shared tier --------------------------------------------------- */

/* c->warm is written under c->lock; a worker peeks at it without the lock
 * to skip taking it when the tier is empty (a stale answer costs one
 * needless lock, or one stack taken cold that could have been warm). */
static struct wf_stack_slot *wf_warm_peek(const struct wf_stack_class *c)
{
	return __atomic_load_n(&c->warm, __ATOMIC_RELAXED);
}

static void wf_warm_set(struct wf_stack_class *c, struct wf_stack_slot *b)
{
	__atomic_store_n(&c->warm, b, __ATOMIC_RELAXED);
}

/* Give a batch (head..., n slots of class c) to c's shared tier, or to the
 * release queue if the tiers are full. */
static void wf_tier_put(struct wf_stack_class *c, struct wf_stack_slot *head, uint32_t n)
{
	size_t bytes = (size_t)n * c->size;
	/* Claim the bytes first, with a compare-and-swap that sees room for
	 * them: the count never exceeds the bound, not even for an instant
	 * when two classes put at once. */
	size_t cur = atomic_load_explicit(&wf_warm_bytes, memory_order_relaxed);
	do {
		if (cur + bytes > wf_warm_max) {
			wf_rel_put(head, n);
			return;
		}
	} while (!atomic_compare_exchange_weak_explicit(&wf_warm_bytes, &cur, cur + bytes,
	                                                memory_order_relaxed,
	                                                memory_order_relaxed));
	head->bcount = n;
	wf_spin_lock(&c->lock);
	head->bnext = c->warm;
	wf_warm_set(c, head);
	c->nwarm += n;
	wf_spin_unlock(&c->lock);
}

/* Take the newest batch of c's shared tier (its slots linked through next,
 * *n of them), or NULL.  Under c->lock. */
static struct wf_stack_slot *wf_tier_take_locked(struct wf_stack_class *c, uint32_t *n)
{
	struct wf_stack_slot *b = c->warm;
	if (!b)
		return NULL;
	wf_warm_set(c, b->bnext);
	c->nwarm -= b->bcount;
	if (c->nwarm < c->warm_low)
		c->warm_low = c->nwarm;
	*n = b->bcount;
	atomic_fetch_sub_explicit(&wf_warm_bytes, (size_t)b->bcount * c->size,
	                          memory_order_relaxed);
	return b;
}

size_t wf_stack_trim(void)
{
	size_t left = 0;
	for (struct wf_stack_class *c = atomic_load_explicit(&wf_classes, memory_order_acquire);
	     c; c = c->next) {
		/* The oldest batches, holding no more than the stacks nobody
		 * took all period (warm_low): keep the newest batches until they
		 * hold the rest (the tier holds at most warm_max bytes, a few
		 * dozen batches to walk). */
		wf_spin_lock(&c->lock);
		size_t keep = c->nwarm - c->warm_low, seen = 0;
		struct wf_stack_slot **pp = &c->warm;
		while (*pp && seen < keep) {
			seen += (*pp)->bcount;
			pp = &(*pp)->bnext;
		}
		struct wf_stack_slot *old = *pp;
		if (pp == &c->warm)
			wf_warm_set(c, NULL);
		else
			*pp = NULL;
		size_t gone = c->nwarm - seen;
		c->nwarm = seen;
		c->warm_low = seen;
		wf_spin_unlock(&c->lock);
		atomic_fetch_sub_explicit(&wf_warm_bytes, gone * c->size, memory_order_relaxed);
		left += seen * c->size;
		for (struct wf_stack_slot *nb; old; old = nb) {
			nb = old->bnext;
			wf_rel_put(old, old->bcount);
		}
	}
	wf_stack_scavenge();
	return left;
}

void wf_stack_set_warm_max(size_t bytes)
{
	wf_warm_max = bytes;
}

size_t wf_stack_warm_max(void)
{
	return wf_warm_max;
}

size_t wf_stack_warm_bytes(void)
{
	return atomic_load_explicit(&wf_warm_bytes, memory_order_relaxed);
}

/* ---- per-worker cache -------------------------------------------------- */

/* Refill an empty cache of class c from c's shared tier: the slot returned
 * is for the caller, the rest of the batch becomes `cur`.  NULL if the
 * tier is empty. */
static struct wf_stack_slot *wf_cache_refill(wf_stack_cache *k, struct wf_stack_class *c)
{
	uint32_t n = 0;
	if (!wf_warm_peek(c))   /* saves the lock when there is nothing */
		return NULL;
	wf_spin_lock(&c->lock);
	struct wf_stack_slot *b = wf_tier_take_locked(c, &n);
	wf_spin_unlock(&c->lock);
	if (!b)
		return NULL;
	k->cur = b->next;
	k->ncur = n - 1;
	b->next = NULL;
	return b;
}

/* A stack of the cache's class, or NULL when it holds none. */
static struct wf_stack_slot *wf_cache_take(wf_stack_cache *k)
{
	struct wf_stack_slot *s = k->cur;
	if (wf_likely(s != NULL)) {
		k->cur = s->next;
		k->ncur--;
	} else if ((s = k->full)) {
		k->cur = s->next;
		k->ncur = WF_STACK_BATCH - 1;
		k->full = NULL;
	} else {
		return wf_cache_refill(k, k->cls);
	}
	s->next = NULL;
	return s;
}

/* Keep s (of the cache's class) in the cache; a batch that no longer fits
 * goes to the shared tier. */
static void wf_cache_put(wf_stack_cache *k, struct wf_stack_slot *s)
{
	s->next = k->cur;
	k->cur = s;
	if (wf_likely(++k->ncur < WF_STACK_BATCH))
		return;
	if (k->full)
		wf_tier_put(k->cls, k->full, WF_STACK_BATCH);
	k->full = k->cur;
	k->cur = NULL;
	k->ncur = 0;
}

static bool wf_cache_empty(const wf_stack_cache *k)
{
	return !k->cur && !k->full;
}

unsigned wf_stack_cache_count(const wf_stack_cache *k)
{
	return k->ncur + (k->full ? WF_STACK_BATCH : 0);
}

void wf_stack_cache_flush(wf_stack_cache *k)
{
	if (k->full)
		wf_tier_put(k->cls, k->full, WF_STACK_BATCH);
	if (k->cur)
		wf_tier_put(k->cls, k->cur, k->ncur);
	k->full = k->cur = NULL;
	k->ncur = 0;
}

/* ---- interface --------------------------------------------------------- */

/* Any stack of class c, without a cache of that class: one of the shared
 * tier's (split off its newest batch), else a cold or new one. */
static int wf_class_get_slot(struct wf_stack_class *c, struct wf_stack_slot **out)
{
	struct wf_stack_slot *s = NULL;
	int r;
	if (wf_warm_peek(c)) {
		wf_spin_lock(&c->lock);
		if ((s = c->warm)) {
			/* The newest batch gives its first slot; the rest stays. */
			struct wf_stack_slot *rest = s->next;
			if (rest) {
				rest->bcount = s->bcount - 1;
				rest->bnext = s->bnext;
			}
			wf_warm_set(c, rest ? rest : s->bnext);
			if (--c->nwarm < c->warm_low)
				c->warm_low = c->nwarm;
			atomic_fetch_sub_explicit(&wf_warm_bytes, c->size, memory_order_relaxed);
		}
		wf_spin_unlock(&c->lock);
		if (s) {
			s->next = NULL;
			*out = s;
			return 0;
		}
	}
	if (!(s = wf_class_take(c)) && (r = wf_class_grow(c, &s)))
		return r;
	if (!(wf_slot_state(s) & WF_SLOT_GUARDED) && (r = wf_guard_install(s))) {
		wf_class_put(s);   /* untouched: nothing to release */
		return r;
	}
	wf_stat_add(&wf_st_fresh, 1);
	*out = s;
	return 0;
}

static int wf_stack_get(wf_stack_cache *k, size_t size, struct wf_stack_slot **out)
{
	struct wf_stack_class *c = wf_class_get(size);
	if (!c)
		return ENOMEM;
	if (k && size <= WF_STACK_CACHE_MAX_SIZE) {
		/* An empty cache takes the class it is asked for. */
		if (wf_cache_empty(k))
			k->cls = c;
		if (k->cls == c && (*out = wf_cache_take(k)))
			return 0;
	}
	return wf_class_get_slot(c, out);
}

int wf_stack_alloc(wf_stack_cache *cache, size_t size, wf_stack *out)
{
	struct wf_stack_slot *s;
	size_t r = wf_stack_round(size);
	int e, err;

	if (!r || !out)
		return EINVAL;
	/* Fast path: the cache holds the size wanted (a program mostly uses
	 * one size) and has a stack at hand.  No syscall, so errno needs no
	 * saving. */
	if (cache && cache->cur && cache->cls->size == r) {
		s = cache->cur;
		cache->cur = s->next;
		cache->ncur--;
		s->next = NULL;
	} else {
		e = errno;
		err = wf_stack_get(cache, r, &s);
		errno = e;
		if (err)
			return err;
	}
	wf_slot_set_state(s, wf_slot_state(s) | WF_SLOT_INUSE);
	wf_stack_fill(out, s);
	return 0;
}

void wf_stack_free(wf_stack_cache *cache, wf_stack *st)
{
	struct wf_stack_slot *s;

	if (!st || st->user || !(s = st->slot))
		return;
	uint32_t state = wf_slot_state(s);
	if (wf_unlikely(!(state & WF_SLOT_INUSE))) {
		fprintf(stderr, "weft: stack %p freed twice\n", st->lo);
		abort();
	}
	wf_slot_set_state(s, state & ~WF_SLOT_INUSE);
	struct wf_stack_class *c = s->slab->cls;
	s->next = NULL;
	if (c->size > WF_STACK_CACHE_MAX_SIZE) {
		wf_rel_put(s, 1);   /* never kept warm */
		return;
	}
	if (cache) {
		if (wf_cache_empty(cache))
			cache->cls = c;
		if (wf_likely(cache->cls == c)) {
			wf_cache_put(cache, s);
			return;
		}
	}
	wf_tier_put(c, s, 1);
}

int wf_stack_in_guard(const wf_stack *s, const void *addr)
{
	uintptr_t a = (uintptr_t)addr, lo = (uintptr_t)s->lo;
	/* Async-signal-safe: the SIGSEGV handler asks.  A user stack has no
	 * guard even if a recycled descriptor still carries one. */
	return !s->user && s->guard && a < lo && lo - a <= s->guard;
}

/* Stacks handed out: INUSE slots of every carved slab.  Slabs are never
 * freed and each class's slab chain only grows at its head under the class
 * lock, so walking it under that lock is safe; every slab but the current
 * one is carved in full.  O(stacks ever carved): for tests and diagnostics,
 * not for hot paths. */
static size_t wf_count_in_use(void)
{
	size_t n = 0;
	for (struct wf_stack_class *c = atomic_load_explicit(&wf_classes, memory_order_acquire);
	     c; c = c->next) {
		wf_spin_lock(&c->lock);
		size_t upto = c->carved;
		for (struct wf_stack_slab *sl = c->cur; sl; sl = sl->prev) {
			for (size_t i = 0; i < upto; i++)
				n += (wf_slot_state(&sl->slots[i]) & WF_SLOT_INUSE) != 0;
			if (sl->prev)
				upto = sl->prev->n;
		}
		wf_spin_unlock(&c->lock);
	}
	return n;
}

void wf_stack_stats_get(struct wf_stack_stats *st)
{
	st->slabs = atomic_load(&wf_st_slabs);
	st->slab_bytes = atomic_load(&wf_st_slab_bytes);
	st->in_use = wf_count_in_use();
	st->cold = atomic_load(&wf_st_cold);
	st->guards_mprotect = atomic_load(&wf_st_guards_mprotect);
	st->warm_bytes = atomic_load(&wf_warm_bytes);
	st->releasing = atomic_load(&wf_rel_n);
	st->released = atomic_load(&wf_st_released);
	st->madvises = atomic_load(&wf_st_madvises);
	st->fresh = atomic_load(&wf_st_fresh);
}

void wf_stack_test_force_mprotect(size_t max_map_count)
{
	wf_guard_fallback(max_map_count);
}

/* ---- fork ---------------------------------------------------------------- */

/*
 * Around fork(): every lock of the allocator is held by the forking thread
 * (in the order the allocator takes them: the class list, then each
 * class's grow, then its lock; the release queue's lock last, as it is
 * never held with a class lock), so the child never starts with one held
 * by a thread it does not have, and each shared tier, its byte count and
 * the release queue are seen between two whole operations.  Stacks in the
 * other threads' hands, in the caches of the workers that do not exist in
 * the child, and in batches a thread took off the release queue to unmap
 * stay allocated there (their memory is a copy-on-write view of the
 * parent's).
 */
void wf_stack_fork_lock(void)
{
	wf_spin_lock(&wf_classes_lock);
	for (struct wf_stack_class *c = atomic_load(&wf_classes); c; c = c->next) {
		wf_spin_lock(&c->grow);
		wf_spin_lock(&c->lock);
	}
	wf_spin_lock(&wf_rel_lock);
}

void wf_stack_fork_unlock(void)
{
	wf_spin_unlock(&wf_rel_lock);
	for (struct wf_stack_class *c = atomic_load(&wf_classes); c; c = c->next) {
		wf_spin_unlock(&c->lock);
		wf_spin_unlock(&c->grow);
	}
	wf_spin_unlock(&wf_classes_lock);
}
