/*
 * trace.c — WEFT_TRACE=file.json: a timeline of what every worker ran,
 * written at exit (or on SIGTERM/SIGINT) as Chrome trace-event JSON
 * (Perfetto, chrome://tracing).
 * This file records (the hot path) and sets the trace up;
 * trace_export.c writes the JSON.
 *
 * Recording.  Each worker appends fixed-size binary records (timestamp,
 * type, thread id, one argument) to a buffer of its own, so the hot path
 * takes no lock and no atomic read-modify-write: write the record, then
 * publish the new length with a release store.  A buffer is a ring of the
 * last WEFT_TRACE_MAX_EVENTS records (default WF_TR_CAP_DEFAULT, 256 Ki
 * records: 6 MiB of memory, about 25 MB of JSON, per busy worker), in
 * mmap'd chunks of WF_TR_CHUNK records that the owner maps when it first
 * needs one; once full, each append overwrites the oldest record.  If a
 * chunk cannot be mapped, the worker's trace stops: it keeps the time it
 * stopped and counts what it drops, and both are reported.
 *
 * Why the last events.  Unbounded, a busy program wrote 45 MB of JSON a
 * second; a file has to be bounded.  The first design kept the first
 * events and dropped the rest, but a program that runs until it is
 * stopped (a server ended by SIGTERM or Ctrl-C, which now also write the
 * file: trace_export.c) is usually traced for what it did last.  So the
 * file holds a window ending at the exit or the signal, the same for every
 * worker (trace_export.c), and says where it starts.
 *
 * Slices.  A switch writes one record, "next runs from now" (next = 0 for
 * the scheduler context), which ends the previous slice and begins the next
 * at the same timestamp.  All records of a worker come from one kernel
 * thread reading CLOCK_MONOTONIC, so they are in time order, and the slices
 * rebuilt from them cannot overlap on a worker by construction.
 * Gaps are the worker's scheduler context (idle, stealing, sleeping).
 *
 * Names.  Copying 32 bytes of name at every switch would double the cost of
 * a traced switch, so a switch records only (slot, generation).  A thread's
 * name is recorded once, when it finishes (three records), and the names of
 * threads still alive are read from their TCBs when the file is written; a
 * thread renamed during its life has its last name on all its slices.
 *
 * Writing.  The timeline is written at exit, or when SIGTERM or SIGINT
 * arrives, from these buffers, by trace_export.c.
 *
 * Signal safety.  The tick handler records (preempt, switch, timer wakes)
 * only when it interrupted the program's own code (preempt.c): a hook is
 * weft code, so a tick never lands in the middle of an append on the same
 * worker, and the hooks themselves only read the clock (vDSO) and mmap, both
 * async-signal-safe.
 *
 * Rejected: formatting JSON as events happen (a printf per switch, and a
 * shared FILE lock between workers); one shared buffer claimed with
 * fetch-and-add (a contended cache line at every switch, on every worker);
 * keeping the first events up to a cap (see above: the end of a run that
 * was stopped is what is asked for); the TSC (needs calibration and
 * cross-CPU synchronization that CLOCK_MONOTONIC already provides).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "trace_internal.h"

#define WF_TR_CAP_DEFAULT (256ull << 10)               /* records per worker */
#define WF_TR_CAP_MIN     64ull
#define WF_TR_CAP_MAX     (1ull << 30)

_Atomic bool wf_trace_on;
struct wf_tr_state wf_tr;

/* w's buffer; NULL before init (acquire: pairs with the publication of the
 * buffers, so their initialization is visible). */
static struct wf_tr_buf *wf_tr_buf_of(const struct wf_worker *w)
{
	struct wf_tr_buf *b = atomic_load_explicit(&wf_tr.bufs, memory_order_acquire);
	return b && w ? &b[w->index] : NULL;
}

/* A chunk for a buffer that has `filled` chunks already.  The first one is
 * faulted in page by page (a worker that records a few events commits a few
 * pages); later ones are populated at once, which costs a busy worker less
 * than a page fault every 170 records (measured: about 7 ns of CPU per
 * traced switch) at the price of one stall of some tens of µs per chunk. */
static struct wf_tr_rec *wf_tr_chunk_map(uint64_t filled)
{
	int populate = filled ? MAP_POPULATE : 0;
	void *m = mmap(NULL, WF_TR_CHUNK * sizeof(struct wf_tr_rec), PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | populate, -1, 0);
	return m == MAP_FAILED ? NULL : m;
}

/* Owner only: where record i goes (slot i % cap), mapping its chunk on
 * first use; NULL if the chunk cannot be mapped. */
static struct wf_tr_rec *wf_tr_slot(struct wf_tr_buf *b, uint64_t i)
{
	uint64_t slot = i % wf_tr.cap;
	struct wf_tr_rec **c = &b->chunks[slot >> WF_TR_CHUNK_SHIFT];
	if (wf_unlikely(!*c) && !(*c = wf_tr_chunk_map(slot >> WF_TR_CHUNK_SHIFT)))
		return NULL;
	/* A new chunk pointer is published with the records it holds
	 * (wf_tr_put). */
	return &(*c)[slot & (WF_TR_CHUNK - 1)];
}

/* Owner only: stop recording at ts (out of memory) and count one
 * more dropped event. */
static void wf_tr_drop(struct wf_tr_buf *b, uint64_t ts)
{
	if (!b->stopped) {
		b->stopped = true;
		b->room = 0;
		/* After the last publication of len: a reader that sees stop_ts
		 * (acquire) also sees the final length. */
		atomic_store_explicit(&b->stop_ts, ts ? ts : 1, memory_order_release);
	}
	atomic_store_explicit(&b->dropped, atomic_load_explicit(&b->dropped,
	                      memory_order_relaxed) + 1, memory_order_relaxed);
}

/* Owner only: aim the fast path at the chunk that will hold record `next`
 * (none yet: room = next, so the next append takes the slow path).  The
 * last chunk of a ring whose size is not a multiple of WF_TR_CHUNK is
 * shorter. */
static void wf_tr_aim(struct wf_tr_buf *b, uint64_t next)
{
	uint64_t slot = next % wf_tr.cap, off = slot & (WF_TR_CHUNK - 1);
	uint64_t first = slot - off, clen = wf_tr.cap - first;
	b->cur = b->chunks[slot >> WF_TR_CHUNK_SHIFT];
	b->cur_base = next - off;
	b->room = !b->cur ? next : b->cur_base + (clen < WF_TR_CHUNK ? clen : WF_TR_CHUNK);
}

/* Owner only: the slow path of wf_tr_put: map chunks, cross into the next
 * one or wrap around, or count a drop once stopped. */
static __attribute__((noinline)) void wf_tr_put_slow(struct wf_tr_buf *b,
                                                     const struct wf_tr_rec *r, unsigned n)
{
	uint64_t len = atomic_load_explicit(&b->len, memory_order_relaxed);
	if (b->stopped) {
		wf_tr_drop(b, r[0].ts);
		return;
	}
	/* See wf_tr_put. */
	atomic_thread_fence(memory_order_release);
	for (unsigned i = 0; i < n; i++) {
		struct wf_tr_rec *s = wf_tr_slot(b, len + i);
		if (!s) {
			wf_tr_drop(b, r[0].ts);
			return;
		}
		*s = r[i];
	}
	atomic_store_explicit(&b->len, len + n, memory_order_release);  /* as below */
	wf_tr_aim(b, len + n);
}

/* Owner only: append n records as one event, all or none. */
static inline void wf_tr_put(struct wf_tr_buf *b, const struct wf_tr_rec *r, unsigned n)
{
	uint64_t len = atomic_load_explicit(&b->len, memory_order_relaxed);
	if (wf_unlikely(len + n > b->room)) {
		wf_tr_put_slow(b, r, n);
		return;
	}
	/* The slots written next may hold the oldest published records.  A
	 * reader that copies one of them after it is overwritten must then
	 * see a length at least `len` (the one published before), to know
	 * the copy is stale: this fence, paired with the reader's acquire
	 * fence (wf_tr_snapshot), orders that publication before these
	 * stores.  No instruction on x86. */
	atomic_thread_fence(memory_order_release);
	for (unsigned i = 0; i < n; i++)
		b->cur[len + i - b->cur_base] = r[i];
	/* Release: whoever reads this length (acquire) sees these records and
	 * the chunk pointers they live in. */
	atomic_store_explicit(&b->len, len + n, memory_order_release);
}

static void wf_tr_event(struct wf_tr_buf *b, uint8_t type, uint32_t id, uint8_t aux,
                        uint64_t arg)
{
	struct wf_tr_rec r = { .ts = wf_clock_ns(), .arg = arg, .id = id, .type = type,
	                       .aux = aux };
	wf_tr_put(b, &r, 1);
}

/* The final name of a finishing thread (under its lock: weft_setname may be
 * writing it from another worker).  Out of line: rare, and kept off the
 * switch path's registers. */
static __attribute__((noinline)) void wf_tr_name(struct wf_tr_buf *b, const struct wf_thread *t,
                                                 uint64_t now)
{
	struct wf_tr_rec r[WF_TR_NAME_RECS];
	char name[WF_TR_NAME_LEN];
	memset(r, 0, sizeof r);
	r[0].ts = now;
	r[0].type = WF_TR_NAME;
	r[0].id = wf_tr_id(t);
	r[0].arg = wf_tr_gen(t);
	struct wf_thread *mt = (struct wf_thread *)t;
	wf_spin_lock(&mt->lk);
	memcpy(name, t->name, WF_TR_NAME_LEN);
	wf_spin_unlock(&mt->lk);
	for (unsigned k = 1; k < WF_TR_NAME_RECS; k++) {
		uint64_t part[2];
		_Static_assert(sizeof part == WF_TR_PART_BYTES, "a part is ts and arg");
		memcpy(part, name + (k - 1) * WF_TR_PART_BYTES, WF_TR_PART_BYTES);
		r[k].ts = part[0];
		r[k].arg = part[1];
		r[k].type = WF_TR_NAME_PART;
		r[k].aux = (uint8_t)(k - 1);
		r[k].id = r[0].id;
	}
	wf_tr_put(b, r, WF_TR_NAME_RECS);
}

void wf_trace_switch(struct wf_worker *w, const struct wf_thread *prev,
                     const struct wf_thread *next, int action)
{
	struct wf_tr_buf *b = wf_tr_buf_of(w);
	if (!b)
		return;
	uint64_t now = wf_clock_ns();
	if (action == WF_PREV_DONE)
		wf_tr_name(b, prev, now);
	struct wf_tr_rec r = { .ts = now, .type = WF_TR_SWITCH };
	if (next->kind != WF_KIND_IDLE) {
		r.id = wf_tr_id(next);
		r.arg = wf_tr_gen(next);
	}
	wf_tr_put(b, &r, 1);
}

void wf_trace_preempt(struct wf_worker *w, const struct wf_thread *t)
{
	struct wf_tr_buf *b = wf_tr_buf_of(w);
	if (b)
		wf_tr_event(b, WF_TR_PREEMPT, wf_tr_id(t), 0, 0);
}

void wf_trace_block(struct wf_worker *w, const struct wf_thread *t)
{
	struct wf_tr_buf *b = wf_tr_buf_of(w);
	if (!b)
		return;
	struct wf_thread *mt = (struct wf_thread *)t;
	uint8_t kind = atomic_load_explicit(&mt->block_kind, memory_order_relaxed);
	const void *obj = atomic_load_explicit(&mt->block_obj, memory_order_relaxed);
	wf_tr_event(b, WF_TR_BLOCK, wf_tr_id(t), kind, (uint64_t)(uintptr_t)obj);
}

void wf_trace_wake(const struct wf_thread *t)
{
	/* Called before t is queued, so its wait word still says who claimed
	 * it; a new thread has no claim (WF_WAIT_NONE) and is no wake-up. */
	uint64_t st = atomic_load_explicit(&((struct wf_thread *)t)->wait,
	                                   memory_order_relaxed) & 3;
	if (st != WF_WAIT_WOKEN && st != WF_WAIT_TIMEDOUT)
		return;
	struct wf_worker *w = wf_worker_self();
	if (!w) {
		/* A kernel thread that is not a worker has no buffer to write. */
		atomic_fetch_add_explicit(&wf_tr.foreign_wakes, 1, memory_order_relaxed);
		return;
	}
	struct wf_tr_buf *b = wf_tr_buf_of(w);
	if (!b)
		return;
	uint32_t by = 0;  /* a timeout: nobody */
	if (st == WF_WAIT_WOKEN)
		by = b->waker ? b->waker
		     : w->current->kind != WF_KIND_IDLE ? wf_tr_id(w->current) : 0;
	wf_tr_event(b, WF_TR_WAKE, wf_tr_id(t), 0, by);
}

void wf_trace_steal(struct wf_worker *thief, const struct wf_thread *t,
                    const struct wf_worker *victim)
{
	struct wf_tr_buf *b = wf_tr_buf_of(thief);
	if (b)
		wf_tr_event(b, WF_TR_STEAL, wf_tr_id(t), 0, (uint64_t)victim->index);
}

void wf_trace_waker(struct wf_worker *w, const struct wf_thread *t)
{
	struct wf_tr_buf *b = wf_tr_buf_of(w);
	if (b)
		b->waker = t ? wf_tr_id(t) : 0;
}

/* ------------------------------------------------------------------------ */
/* Init                                                                     */
/* ------------------------------------------------------------------------ */

/* WEFT_TRACE_MAX_EVENTS: records per worker (config.c's conventions). */
static int wf_tr_read_cap(uint64_t *cap)
{
	const char *s = getenv("WEFT_TRACE_MAX_EVENTS");
	*cap = WF_TR_CAP_DEFAULT;
	if (!s)
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
	if (errno || !v || *end || v < WF_TR_CAP_MIN || v > WF_TR_CAP_MAX) {
		fprintf(stderr, "weft: WEFT_TRACE_MAX_EVENTS=\"%s\" is invalid: expected a whole "
		        "number from %llu to %llu\n", s, WF_TR_CAP_MIN, WF_TR_CAP_MAX);
		return EINVAL;
	}
	*cap = v;
	return 0;
}

/* The buffers of n workers and their chunk tables, in one zeroed mapping. */
static struct wf_tr_buf *wf_tr_map(int n, uint64_t cap)
{
	size_t nchunks = (size_t)((cap + WF_TR_CHUNK - 1) / WF_TR_CHUNK);
	size_t bytes = (size_t)n * (sizeof(struct wf_tr_buf) + nchunks * sizeof(void *));
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	struct wf_tr_buf *bufs = m;
	struct wf_tr_rec **tables = (struct wf_tr_rec **)(bufs + n);
	for (int i = 0; i < n; i++)
		bufs[i].chunks = tables + (size_t)i * nchunks;
	return bufs;
}

int wf_trace_init(void)
{
	const char *path = wf_rt.cfg.trace_path;
	if (!path)
		return 0;
	uint64_t cap;
	int e = wf_tr_read_cap(&cap);
	if (e)
		return e;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "weft: WEFT_TRACE=\"%s\" is invalid: expected a file that can be "
		        "created and written (%s)\n", path, strerror(errno));
		return EINVAL;
	}
	/* A buffer header for every worker there may be, spares included
	 * (monitor.c); a worker's records are mapped when it first writes. */
	struct wf_tr_buf *bufs = wf_tr_map(WF_MAX_KTHREADS, cap);
	if (!bufs || !(wf_tr.path = strdup(path))) {
		close(fd);
		return EAGAIN;
	}
	wf_tr.fd = fd;
	wf_tr.pid = getpid();
	wf_tr.cap = cap;
	wf_tr.t0 = wf_clock_ns();
	/* Before the buffers are published: the handler finds them set or
	 * writes nothing. */
	if (atexit(wf_tr_write)) {
		close(fd);
		return EAGAIN;
	}
	/* The caller is worker 0, running main: main's first slice starts
	 * the trace.  The other workers have had nothing to run yet. */
	struct wf_tr_rec r = { .ts = wf_tr.t0, .type = WF_TR_SWITCH,
	                       .id = wf_tr_id(wf_rt.main), .arg = wf_tr_gen(wf_rt.main) };
	wf_tr_put(&bufs[0], &r, 1);
	/* Release: a hook that finds the buffers (acquire) finds them set up. */
	atomic_store_explicit(&wf_tr.bufs, bufs, memory_order_release);
	atomic_store_explicit(&wf_trace_on, true, memory_order_release);
	/* A program ended by SIGTERM or SIGINT (Ctrl-C) never reaches exit():
	 * write the file on those too, then apply the program's own action
	 * (trace_export.c).  On the worker's alternate stack: the interrupted
	 * green thread's may be nearly full. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = wf_tr_on_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);   /* one write at a time per thread */
	sigaddset(&sa.sa_mask, SIGINT);
	if ((e = wf_signal_own(SIGTERM, &sa)) || (e = wf_signal_own(SIGINT, &sa)))
		return EAGAIN;
	return 0;
}

/* In a child of fork(): record nothing more.  The buffers are the
 * parent's, and the child never writes the file (wf_tr_write checks the
 * pid). */
void wf_trace_forked_child(void)
{
	atomic_store_explicit(&wf_trace_on, false, memory_order_release);
}
