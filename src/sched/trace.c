/*
 * trace.c — WEFT_TRACE=file.json: a timeline of what every worker ran,
 * written at exit as Chrome trace-event JSON (Perfetto, chrome://tracing).
 *
 * Recording.  Each worker appends fixed-size binary records (timestamp,
 * type, thread id, one argument) to a buffer of its own, so the hot path
 * takes no lock and no atomic read-modify-write: write the record, then
 * publish the new length with a release store.  A buffer is a table of
 * mmap'd chunks of WF_TR_CHUNK records, mapped by the owner when it first
 * needs one, up to a cap per worker (WEFT_TRACE_MAX_EVENTS, default 4 Mi
 * records, 96 MiB); past the cap, or if a chunk cannot be mapped, the
 * worker's trace stops: it keeps the time it stopped and counts what it
 * drops, and both are reported at exit.
 *
 * Slices.  A switch writes one record, "next runs from now" (next = 0 for
 * the scheduler context), which ends the previous slice and begins the next
 * at the same timestamp.  All records of a worker come from one kernel
 * thread reading CLOCK_MONOTONIC, so they are in time order, and the slices
 * rebuilt from them at exit cannot overlap on a worker by construction.
 * Gaps are the worker's scheduler context (idle, stealing, sleeping).
 *
 * Names.  Copying 32 bytes of name at every switch would double the cost of
 * a traced switch, so a switch records only (slot, generation).  A thread's
 * name is recorded once, when it finishes (three records), and the names of
 * threads still alive are read from their TCBs at exit; a thread renamed
 * during its life has its last name on all its slices.
 *
 * Exit.  An atexit handler registered at init snapshots each buffer up to
 * its published length and formats the JSON, one event per line, while the
 * other workers may still be running and appending (see wf_tr_snapshot for
 * why that is safe).  A slice still open is closed at the exit timestamp.
 * A forked child that exits does not write its parent's trace.
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
 * a ring that overwrites the oldest events (the beginning of a run is
 * usually what is asked for, and a prefix plus a count of what was dropped
 * is easier to read than a window); the TSC (needs calibration and
 * cross-CPU synchronization that CLOCK_MONOTONIC already provides).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "sched_internal.h"
#include "trace.h"

#define WF_TR_CHUNK_SHIFT 14
#define WF_TR_CHUNK       (1u << WF_TR_CHUNK_SHIFT)   /* records: 384 KiB */
#define WF_TR_CAP_DEFAULT (4ull << 20)                 /* records per worker */
#define WF_TR_CAP_MIN     64ull
#define WF_TR_CAP_MAX     (1ull << 30)
#define WF_TR_OUT_BUF     (1u << 20)
#define WF_TR_NAME_LEN    sizeof(((struct wf_thread *)0)->name)

enum wf_tr_type {
	WF_TR_SWITCH = 1, /* id/arg: next thread and its generation; id 0: idle */
	WF_TR_NAME,       /* id/arg: a finished thread; name in the next records */
	WF_TR_PREEMPT,    /* id */
	WF_TR_BLOCK,      /* id; aux: enum wf_block; arg: the object */
	WF_TR_WAKE,       /* id: the woken; arg: the waker's id, 0 = none */
	WF_TR_STEAL,      /* id; arg: the victim worker */
};

struct wf_tr_rec {
	uint64_t ts;      /* CLOCK_MONOTONIC ns */
	uint64_t arg;
	uint32_t id;      /* thread slot + 1 (the low half of its handle) */
	uint8_t type;     /* enum wf_tr_type */
	uint8_t aux;
	uint16_t pad;
};
_Static_assert(sizeof(struct wf_tr_rec) == 24, "trace records are 24 bytes");

/* A name record and the records that carry the name's bytes. */
#define WF_TR_NAME_RECS (1 + (WF_TR_NAME_LEN + sizeof(struct wf_tr_rec) - 1) / \
                             sizeof(struct wf_tr_rec))

/*
 * One worker's buffer.  Invariants: only the worker's own kernel thread
 * writes to it (the exit-time writer only reads); records [0, len) are
 * complete and never change again, and every chunk holding one of them is
 * in `chunks` before len says so (release store of len).  The fast path
 * appends to `cur` while the new records stay below `room`, which never
 * passes the end of cur's chunk or the cap, and is 0 once stopped.
 */
struct wf_tr_buf {
	_Atomic uint64_t len;          /* published records */
	_Atomic uint64_t dropped;      /* events not recorded (owner writes) */
	_Atomic uint64_t stop_ts;      /* when recording stopped; 0 = running */
	struct wf_tr_rec **chunks;     /* cap / WF_TR_CHUNK entries */
	struct wf_tr_rec *cur;         /* the chunk being filled, or NULL */
	uint64_t room;                 /* records below this index fit in cur */
	uint32_t waker;                /* id credited with wakes, 0 = current */
	bool stopped;
} __attribute__((aligned(WF_CACHELINE)));

_Atomic bool wf_trace_on;

static struct {
	struct wf_tr_buf *_Atomic bufs;  /* published before wf_trace_on */
	int nworkers;
	uint64_t cap;                    /* records per worker */
	uint64_t t0;                     /* ns: the start of the trace */
	int fd;
	pid_t pid;
	const char *path;
	_Atomic uint64_t foreign_wakes;  /* wakes by kernel threads that are not workers */
	_Atomic bool written;
} wf_tr;

/* ------------------------------------------------------------------------ */
/* Recording (hot path: each worker into its own buffer)                    */
/* ------------------------------------------------------------------------ */

static inline uint32_t wf_tr_id(const struct wf_thread *t) { return t->index + 1; }

static inline uint32_t wf_tr_gen(const struct wf_thread *t)
{
	return atomic_load_explicit(&((struct wf_thread *)t)->gen, memory_order_relaxed);
}

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

/* Owner only: where record i goes, mapping its chunk on first use; NULL if
 * the chunk cannot be mapped. */
static struct wf_tr_rec *wf_tr_slot(struct wf_tr_buf *b, uint64_t i)
{
	struct wf_tr_rec **c = &b->chunks[i >> WF_TR_CHUNK_SHIFT];
	if (wf_unlikely(!*c) && !(*c = wf_tr_chunk_map(i >> WF_TR_CHUNK_SHIFT)))
		return NULL;
	/* A new chunk pointer is published with the records it holds
	 * (wf_tr_put). */
	return &(*c)[i & (WF_TR_CHUNK - 1)];
}

/* Owner only: stop recording at ts (full or out of memory) and count one
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
 * (none yet: room = next, so the next append takes the slow path). */
static void wf_tr_aim(struct wf_tr_buf *b, uint64_t next)
{
	b->cur = next < wf_tr.cap ? b->chunks[next >> WF_TR_CHUNK_SHIFT] : NULL;
	uint64_t end = (next | (WF_TR_CHUNK - 1)) + 1;
	b->room = !b->cur ? next : end < wf_tr.cap ? end : wf_tr.cap;
}

/* Owner only: the slow path of wf_tr_put: map chunks, cross into the next
 * one, or stop at the cap. */
static __attribute__((noinline)) void wf_tr_put_slow(struct wf_tr_buf *b,
                                                     const struct wf_tr_rec *r, unsigned n)
{
	uint64_t len = atomic_load_explicit(&b->len, memory_order_relaxed);
	if (b->stopped || len + n > wf_tr.cap) {
		wf_tr_drop(b, r[0].ts);
		return;
	}
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
	for (unsigned i = 0; i < n; i++)
		b->cur[(len + i) & (WF_TR_CHUNK - 1)] = r[i];
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
	memset(r, 0, sizeof r);
	r[0].ts = now;
	r[0].type = WF_TR_NAME;
	r[0].id = wf_tr_id(t);
	r[0].arg = wf_tr_gen(t);
	struct wf_thread *mt = (struct wf_thread *)t;
	wf_spin_lock(&mt->lk);
	memcpy(&r[1], t->name, WF_TR_NAME_LEN);
	wf_spin_unlock(&mt->lk);
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
/* Output (at exit)                                                         */
/* ------------------------------------------------------------------------ */

struct wf_out {
	char *buf;
	size_t len;
	int fd;
	int err;         /* first write error */
	bool first;      /* no event written yet */
};

static void wf_out_flush(struct wf_out *o)
{
	size_t off = 0;
	while (off < o->len && !o->err) {
		ssize_t n = write(o->fd, o->buf + off, o->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			o->err = n < 0 ? errno : EIO;
		else
			off += (size_t)n;
	}
	o->len = 0;
}

static void wf_out_mem(struct wf_out *o, const void *p, size_t n)
{
	if (o->len + n > WF_TR_OUT_BUF)
		wf_out_flush(o);
	memcpy(o->buf + o->len, p, n);  /* n is never near the buffer's size */
	o->len += n;
}

static void wf_out_str(struct wf_out *o, const char *s) { wf_out_mem(o, s, strlen(s)); }

static void wf_out_u64(struct wf_out *o, uint64_t v)
{
	char d[20];
	int i = (int)sizeof d;
	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10));
	wf_out_mem(o, d + i, sizeof d - (size_t)i);
}

/* A thread id, 0 = none written as -1. */
static void wf_out_id(struct wf_out *o, uint64_t id)
{
	if (id)
		wf_out_u64(o, id);
	else
		wf_out_str(o, "-1");
}

/* ns as µs with three decimals: exact, no floating point. */
static void wf_out_us(struct wf_out *o, uint64_t ns)
{
	char f[4] = { '.', (char)('0' + ns / 100 % 10), (char)('0' + ns / 10 % 10),
	              (char)('0' + ns % 10) };
	wf_out_u64(o, ns / 1000);
	wf_out_mem(o, f, sizeof f);
}

static void wf_out_hex(struct wf_out *o, uint64_t v)
{
	char d[18];
	int i = (int)sizeof d;
	do
		d[--i] = "0123456789abcdef"[v & 15];
	while ((v >>= 4));
	d[--i] = 'x';
	d[--i] = '0';
	wf_out_mem(o, d + i, sizeof d - (size_t)i);
}

/* Length of the well-formed UTF-8 character at p (< e), 0 if it is not. */
static size_t wf_utf8_len(const unsigned char *p, const unsigned char *e)
{
	unsigned c = p[0];
	size_t n;
	uint32_t min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		n = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, min = 0x10000;
	else
		return 0;
	if ((size_t)(e - p) < n)
		return 0;
	uint32_t cp = c & (0x7fu >> n);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : n;
}

/* A JSON string of at most max bytes of s: quotes, backslashes and control
 * characters escaped, and bytes that are not well-formed UTF-8 (a name cut
 * at 31 bytes can end inside a character) replaced by U+FFFD. */
static void wf_out_jstr(struct wf_out *o, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + strnlen(s, max);
	wf_out_mem(o, "\"", 1);
	while (p < e) {
		size_t n = wf_utf8_len(p, e);
		if (!n) {
			wf_out_str(o, "\\ufffd");
			n = 1;
		} else if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };
			wf_out_mem(o, esc, 2);
		} else if (*p < 0x20) {
			char esc[7] = "\\u0000";
			esc[4] = "0123456789abcdef"[*p >> 4];
			esc[5] = "0123456789abcdef"[*p & 15];
			wf_out_mem(o, esc, 6);
		} else {
			wf_out_mem(o, p, n);
		}
		p += n;
	}
	wf_out_mem(o, "\"", 1);
}

/* The start of one event line: ph, pid, tid, ts. */
static void wf_out_event(struct wf_out *o, const char *ph, int tid, uint64_t ts)
{
	wf_out_str(o, o->first ? "\n{\"ph\":\"" : ",\n{\"ph\":\"");
	o->first = false;
	wf_out_str(o, ph);
	wf_out_str(o, "\",\"pid\":");
	wf_out_u64(o, (uint64_t)wf_tr.pid);
	if (tid >= 0) {
		wf_out_str(o, ",\"tid\":");
		wf_out_u64(o, (uint64_t)tid);
	}
	if (ts != UINT64_MAX) {
		wf_out_str(o, ",\"ts\":");
		wf_out_us(o, ts > wf_tr.t0 ? ts - wf_tr.t0 : 0);
	}
}

/* --- thread names: (generation, id) -> name ------------------------------ */

struct wf_tr_named {
	uint64_t key;    /* gen << 32 | id; 0 = empty (ids start at 1) */
	char name[WF_TR_NAME_LEN];
};

struct wf_tr_names {
	struct wf_tr_named *e;
	uint64_t mask;
	size_t bytes;
};

static uint64_t wf_tr_key(uint32_t id, uint64_t gen) { return gen << 32 | id; }

static struct wf_tr_named *wf_names_find(const struct wf_tr_names *m, uint64_t key)
{
	if (!m->e)
		return NULL;
	for (uint64_t i = (key * 0x9e3779b97f4a7c15ull) >> 20 & m->mask;; i = (i + 1) & m->mask)
		if (m->e[i].key == key || !m->e[i].key)
			return &m->e[i];
}

static void wf_names_put(struct wf_tr_names *m, uint64_t key, const char *name)
{
	struct wf_tr_named *n = wf_names_find(m, key);
	if (n) {
		n->key = key;
		memcpy(n->name, name, WF_TR_NAME_LEN);
		n->name[WF_TR_NAME_LEN - 1] = '\0';
	}
}

static const struct wf_tr_rec *wf_tr_at(const struct wf_tr_buf *b, uint64_t i)
{
	return &b->chunks[i >> WF_TR_CHUNK_SHIFT][i & (WF_TR_CHUNK - 1)];
}

/* The index of the event after the one at i (a name spans several records,
 * whose bytes are not records: never read them as such). */
static uint64_t wf_tr_next(const struct wf_tr_buf *b, uint64_t i)
{
	return i + (wf_tr_at(b, i)->type == WF_TR_NAME ? WF_TR_NAME_RECS : 1);
}

/* The name carried by the records after the name record at i; they may lie
 * in the next chunk. */
static void wf_tr_name_at(const struct wf_tr_buf *b, uint64_t i, char *name)
{
	for (size_t off = 0; off < WF_TR_NAME_LEN; off += sizeof(struct wf_tr_rec)) {
		size_t n = WF_TR_NAME_LEN - off;
		i++;
		memcpy(name + off, wf_tr_at(b, i), n < sizeof(struct wf_tr_rec) ? n
		                                     : sizeof(struct wf_tr_rec));
	}
}

/* The names of threads that finished (their NAME records) and of those
 * still alive (their TCBs), in a table at least twice their number. */
static void wf_names_build(struct wf_tr_names *m, const struct wf_tr_buf *bufs,
                           const uint64_t *lens)
{
	uint32_t slots = wf_tcb_slots();  /* once: the table must not overfill */
	uint64_t count = slots;
	for (int w = 0; w < wf_tr.nworkers; w++)
		for (uint64_t i = 0; i < lens[w]; i = wf_tr_next(&bufs[w], i))
			count += wf_tr_at(&bufs[w], i)->type == WF_TR_NAME;
	uint64_t size = 64;
	while (size < 2 * count)
		size *= 2;
	m->bytes = size * sizeof *m->e;
	void *p = mmap(NULL, m->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	m->e = p == MAP_FAILED ? NULL : p;
	m->mask = size - 1;
	for (uint32_t s = 0; s < slots; s++) {
		struct wf_thread *t = wf_tcb_at(s);
		if (!t || t->kind == WF_KIND_IDLE)
			continue;
		wf_spin_lock(&t->lk);
		if (t->state != WF_FREE)
			wf_names_put(m, wf_tr_key(wf_tr_id(t), wf_tr_gen(t)), t->name);
		wf_spin_unlock(&t->lk);
	}
	for (int w = 0; w < wf_tr.nworkers; w++)
		for (uint64_t i = 0; i < lens[w]; i = wf_tr_next(&bufs[w], i)) {
			const struct wf_tr_rec *r = wf_tr_at(&bufs[w], i);
			if (r->type == WF_TR_NAME) {
				char name[WF_TR_NAME_LEN];
				wf_tr_name_at(&bufs[w], i, name);
				wf_names_put(m, wf_tr_key(r->id, r->arg), name);
			}
		}
}

static void wf_names_free(struct wf_tr_names *m)
{
	if (m->e)
		munmap(m->e, m->bytes);
}

/* --- events ---------------------------------------------------------------- */

/* A slice still to be written: thread id, generation and start. */
struct wf_tr_open {
	uint32_t id;
	uint32_t gen;
	uint64_t ts;
};

static void wf_out_slice(struct wf_out *o, const struct wf_tr_names *m, int w,
                         const struct wf_tr_open *s, uint64_t end)
{
	wf_out_event(o, "X", w, s->ts);
	wf_out_str(o, ",\"dur\":");
	wf_out_us(o, end > s->ts ? end - s->ts : 0);
	wf_out_str(o, ",\"name\":");
	const struct wf_tr_named *n = wf_names_find(m, wf_tr_key(s->id, s->gen));
	if (n && n->key && n->name[0]) {
		wf_out_jstr(o, n->name, WF_TR_NAME_LEN);
	} else {
		wf_out_str(o, "\"thread ");
		wf_out_u64(o, s->id);
		wf_out_str(o, "\"");
	}
	wf_out_str(o, ",\"args\":{\"id\":");
	wf_out_u64(o, s->id);
	wf_out_str(o, "}}");
}

static const char *wf_tr_reason(unsigned kind)
{
	return wf_block_kinds[kind < WF_BLOCK_COUNT ? kind : WF_BLOCK_NONE].tag;
}

static void wf_out_instant(struct wf_out *o, int w, const struct wf_tr_rec *r)
{
	static const char *const names[] = {
		[WF_TR_PREEMPT] = "preempt", [WF_TR_BLOCK] = "block",
		[WF_TR_WAKE] = "wake",       [WF_TR_STEAL] = "steal",
	};
	if (r->type >= sizeof names / sizeof names[0] || !names[r->type])
		return;
	wf_out_event(o, "i", w, r->ts);
	wf_out_str(o, ",\"s\":\"t\",\"name\":\"");
	wf_out_str(o, names[r->type]);
	wf_out_str(o, "\",\"args\":{\"id\":");
	wf_out_u64(o, r->id);
	switch (r->type) {
	case WF_TR_BLOCK:
		wf_out_str(o, ",\"reason\":\"");
		wf_out_str(o, wf_tr_reason(r->aux));
		wf_out_str(o, "\",\"obj\":\"");
		wf_out_hex(o, r->arg);
		wf_out_str(o, "\"");
		break;
	case WF_TR_WAKE:
		wf_out_str(o, ",\"by\":");
		wf_out_id(o, r->arg);
		break;
	case WF_TR_STEAL:
		wf_out_str(o, ",\"from\":");
		wf_out_u64(o, r->arg);
		break;
	}
	wf_out_str(o, "}}");
}

/* One worker's events: its slices, rebuilt from its switch records, and
 * its instants.  `end` closes a slice still open (exit, or the time the
 * worker stopped recording). */
static void wf_out_worker(struct wf_out *o, const struct wf_tr_names *m, int w,
                          const struct wf_tr_buf *b, uint64_t len, uint64_t end)
{
	struct wf_tr_open cur = { 0, 0, 0 };
	for (uint64_t i = 0; i < len; i = wf_tr_next(b, i)) {
		const struct wf_tr_rec *r = wf_tr_at(b, i);
		if (r->type == WF_TR_SWITCH) {
			if (cur.id)
				wf_out_slice(o, m, w, &cur, r->ts);
			cur = (struct wf_tr_open){ r->id, (uint32_t)r->arg, r->ts };
		} else if (r->type != WF_TR_NAME) {
			wf_out_instant(o, w, r);
		}
	}
	if (cur.id)
		wf_out_slice(o, m, w, &cur, end);
}

static void wf_out_meta(struct wf_out *o)
{
	wf_out_event(o, "M", -1, UINT64_MAX);
	wf_out_str(o, ",\"name\":\"process_name\",\"args\":{\"name\":\"weft\"}}");
	for (int w = 0; w < wf_tr.nworkers; w++) {
		wf_out_event(o, "M", w, UINT64_MAX);
		wf_out_str(o, ",\"name\":\"thread_name\",\"args\":{\"name\":\"worker ");
		wf_out_u64(o, (uint64_t)w);
		wf_out_str(o, "\"}}");
		wf_out_event(o, "M", w, UINT64_MAX);
		wf_out_str(o, ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":");
		wf_out_u64(o, (uint64_t)w);
		wf_out_str(o, "}}");
	}
}

static void wf_out_field(struct wf_out *o, const char *name, uint64_t v)
{
	wf_out_str(o, ",\"");
	wf_out_str(o, name);
	wf_out_str(o, "\":");
	wf_out_u64(o, v);
}

static void wf_out_tail(struct wf_out *o, uint64_t end, uint64_t dropped)
{
	wf_out_str(o, "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{\"producer\":\"weft\","
	              "\"clock\":\"CLOCK_MONOTONIC\"");
	wf_out_field(o, "start_ns", wf_tr.t0);
	wf_out_field(o, "end_ns", end);
	wf_out_field(o, "workers", (uint64_t)wf_tr.nworkers);
	wf_out_field(o, "max_events_per_worker", wf_tr.cap);
	wf_out_field(o, "dropped_events", dropped);
	wf_out_field(o, "wakes_by_non_workers",
	             atomic_load_explicit(&wf_tr.foreign_wakes, memory_order_relaxed));
	wf_out_str(o, "}}\n");
}

/*
 * Why reading buffers that other workers are still appending to is safe:
 * an owner writes only past its published length (records, and the pointer
 * of a chunk that holds no published record yet) and never rewrites what
 * it has published.  The acquire load of len pairs with the owner's release
 * store, so records [0, len) and the chunk pointers they live in are
 * complete and visible here; whatever is appended afterwards lies beyond
 * the snapshot and is neither read nor waited for.  Buffers are never
 * unmapped.  stop_ts is read first: once it is set the owner publishes
 * nothing more, so the length read after it is final.
 */
static uint64_t wf_tr_snapshot(struct wf_tr_buf *b, uint64_t *stop)
{
	*stop = atomic_load_explicit(&b->stop_ts, memory_order_acquire);
	return atomic_load_explicit(&b->len, memory_order_acquire);
}

static void wf_tr_report(uint64_t dropped, int err)
{
	if (err)
		fprintf(stderr, "weft: WEFT_TRACE=\"%s\": writing the trace failed: %s\n",
		        wf_tr.path, strerror(err));
	if (dropped)
		fprintf(stderr, "weft: trace: %llu events dropped (at most %llu records per worker,"
		        " WEFT_TRACE_MAX_EVENTS)\n", (unsigned long long)dropped,
		        (unsigned long long)wf_tr.cap);
}

/* Runs on whichever thread calls exit(), with little stack (it may be a
 * green thread's): every large buffer is on the heap or mmap'd. */
static void wf_tr_atexit(void)
{
	if (getpid() != wf_tr.pid || atomic_exchange(&wf_tr.written, true))
		return;
	struct wf_tr_buf *bufs = atomic_load_explicit(&wf_tr.bufs, memory_order_acquire);
	if (!bufs)
		return;
	int n = wf_tr.nworkers;
	uint64_t *lens = calloc(2 * (size_t)n, sizeof *lens), *stops = lens + n;
	struct wf_out o = { .buf = malloc(WF_TR_OUT_BUF), .fd = wf_tr.fd, .first = true };
	if (!lens || !o.buf) {
		fputs("weft: WEFT_TRACE: out of memory at exit: no trace written\n", stderr);
		goto out;
	}
	for (int w = 0; w < n; w++)
		lens[w] = wf_tr_snapshot(&bufs[w], &stops[w]);
	/* After the snapshots: every record in them is older. */
	uint64_t end = wf_clock_ns(), dropped = 0;
	struct wf_tr_names names = { NULL, 0, 0 };
	wf_names_build(&names, bufs, lens);
	wf_out_str(&o, "{\"traceEvents\":[");
	wf_out_meta(&o);
	for (int w = 0; w < n; w++) {
		wf_out_worker(&o, &names, w, &bufs[w], lens[w], stops[w] ? stops[w] : end);
		dropped += atomic_load_explicit(&bufs[w].dropped, memory_order_relaxed);
	}
	wf_out_tail(&o, end, dropped);
	wf_out_flush(&o);
	wf_names_free(&names);
	wf_tr_report(dropped, o.err);
out:
	free(o.buf);
	free(lens);
	close(wf_tr.fd);
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
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
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
	struct wf_tr_buf *bufs = wf_tr_map(wf_rt.nworkers, cap);
	if (!bufs || !(wf_tr.path = strdup(path))) {
		close(fd);
		return EAGAIN;
	}
	wf_tr.fd = fd;
	wf_tr.pid = getpid();
	wf_tr.cap = cap;
	wf_tr.nworkers = wf_rt.nworkers;
	wf_tr.t0 = wf_clock_ns();
	/* Before the buffers are published: the handler finds them set or
	 * writes nothing. */
	if (atexit(wf_tr_atexit)) {
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
	return 0;
}
