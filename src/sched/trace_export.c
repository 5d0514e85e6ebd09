/*
 * trace_export.c — writing the WEFT_TRACE timeline as Chrome trace-event
 * JSON (Perfetto, chrome://tracing), from the rings trace.c records into:
 * at exit, and when SIGTERM or SIGINT arrives.
 *
 * A write copies each worker's ring (wf_tr_snapshot says why that is safe
 * while the other workers go on appending), then formats the JSON, one
 * event per line, into one buffer of WF_TR_OUT_BUF bytes written out with
 * write(2) whenever it fills.  A slice still open is closed at the time of
 * the write.
 *
 * The window.  A worker whose ring wrapped has lost its oldest records, and
 * what it ran before its oldest switch record is unknown.  The file
 * therefore starts, for every worker alike, at the latest of those first
 * switches (window_start_ns in otherData, and a global instant event "trace
 * window starts" that viewers show): from there on every worker's timeline
 * is complete.  Events before it are counted as dropped.
 *
 * Signals.  A program ended by SIGTERM or SIGINT never reaches exit(), so
 * weft handles both while tracing (wf_signal_own): the handler writes the
 * file, then applies the program's action for the signal — its handler, or
 * the default, which ends the process (wf_signal_pass).  If the program
 * carries on, the file is written again, whole, at exit.  SIG_IGN writes
 * nothing.  So everything here is async-signal-safe: memory from mmap,
 * output by write(2), no stdio; a thread's name is read under its lock if
 * the lock can be had at once, else racily (the interrupted code may hold
 * it), which can only garble a name.  One write at a time (wf_tr.writer):
 * a signal arriving while another thread writes waits for it and writes
 * nothing more; the exit-time write blocks both signals on its thread and
 * closes the file.  A forked child never writes its parent's trace.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "trace_internal.h"
#include "../kthreads/kthread.h"
#include "../kthreads/libc_real.h"

#define WF_TR_OUT_BUF     (1u << 20)

struct wf_out {
	char *buf;
	size_t len, cap;
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
	if (o->len + n > o->cap)
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

/* --- scratch memory (mmap: async-signal-safe) ------------------------------ */

static void *wf_tr_map(size_t bytes)
{
	void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void wf_tr_unmap(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes ? bytes : 1);
}

/* --- snapshots of the rings -------------------------------------------------- */

/* One worker's records, copied. */
struct wf_tr_snap {
	struct wf_tr_rec *rec;   /* the copy (rec[0] may be a later record than
	                            the mapping's first: see wf_tr_snapshot) */
	struct wf_tr_rec *map;
	size_t bytes;
	uint64_t n;              /* records in rec */
	uint64_t lost;           /* older records, overwritten */
	uint64_t stop;           /* when the worker stopped recording; 0 running */
	uint64_t dropped;        /* events it could not record (out of memory) */
};

static const struct wf_tr_rec *wf_tr_ring_at(const struct wf_tr_buf *b, uint64_t i)
{
	uint64_t slot = i % wf_tr.cap;
	return &b->chunks[slot >> WF_TR_CHUNK_SHIFT][slot & (WF_TR_CHUNK - 1)];
}

/*
 * Copy a ring that its owner may be appending to.  The owner publishes each
 * record with a release store of len, and never rewrites a record but to
 * overwrite the oldest one when the ring is full; it writes at most
 * WF_TR_NAME_RECS records beyond the published length before publishing
 * them.  So: read len (acquire: records below it and their chunks are
 * visible), copy the last cap records below it, then read len again after
 * an acquire fence.  A copied record the owner overwrote meanwhile lies
 * below len2 + WF_TR_NAME_RECS - cap (the owner's release fence before it
 * writes, trace.c's wf_tr_put, makes any overwrite seen by the copy show in
 * len2): those are dropped, the rest are exactly what was published.  A
 * record being overwritten may be read half-written; it is one of the
 * dropped ones (the seqlock pattern).  stop_ts is read first: once it is
 * set the owner publishes nothing more.  Rings are never unmapped.  Run on
 * the owner itself (a signal handler that interrupted an append), the same
 * bound covers the records it had begun.
 */
static bool wf_tr_snapshot(const struct wf_tr_buf *b, struct wf_tr_snap *s)
{
	s->stop = atomic_load_explicit(&((struct wf_tr_buf *)b)->stop_ts, memory_order_acquire);
	s->dropped = atomic_load_explicit(&((struct wf_tr_buf *)b)->dropped, memory_order_relaxed);
	uint64_t len = atomic_load_explicit(&((struct wf_tr_buf *)b)->len, memory_order_acquire);
	uint64_t lo = len > wf_tr.cap ? len - wf_tr.cap : 0;
	s->n = len - lo;
	s->bytes = s->n * sizeof *s->map;
	if (s->n && !(s->map = wf_tr_map(s->bytes)))
		return false;
	s->rec = s->map;
	for (uint64_t i = 0; i < s->n; i++)
		s->map[i] = *wf_tr_ring_at(b, lo + i);
	atomic_thread_fence(memory_order_acquire);
	uint64_t len2 = atomic_load_explicit(&((struct wf_tr_buf *)b)->len, memory_order_relaxed);
	uint64_t safe = len2 + WF_TR_NAME_RECS > wf_tr.cap ? len2 + WF_TR_NAME_RECS - wf_tr.cap : 0;
	if (safe > lo) {
		uint64_t skip = safe - lo < s->n ? safe - lo : s->n;
		s->rec += skip;
		s->n -= skip;
		lo += skip;
	}
	s->lost = lo;
	return true;
}

/* The time from which every worker's timeline is known: the latest first
 * switch among the workers that lost records (a worker that lost all its
 * switches knows nothing before its last record). */
static uint64_t wf_tr_window(const struct wf_tr_snap *s, int n, uint64_t end)
{
	uint64_t from = wf_tr.t0;
	for (int w = 0; w < n; w++) {
		if (!s[w].lost)
			continue;
		uint64_t first = s[w].n ? s[w].rec[s[w].n - 1].ts : end;
		for (uint64_t i = 0; i < s[w].n; i++)
			if (s[w].rec[i].type == WF_TR_SWITCH) {
				first = s[w].rec[i].ts;
				break;
			}
		if (first > from)
			from = first;
	}
	return from;
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

/* The name carried by the parts after the name record at i, if they are
 * all there; false otherwise. */
static bool wf_tr_name_at(const struct wf_tr_snap *s, uint64_t i, char *name)
{
	if (i + WF_TR_NAME_RECS > s->n)
		return false;
	for (unsigned k = 1; k < WF_TR_NAME_RECS; k++) {
		const struct wf_tr_rec *p = &s->rec[i + k];
		if (p->type != WF_TR_NAME_PART || p->aux != k - 1 || p->id != s->rec[i].id)
			return false;
		uint64_t part[2] = { p->ts, p->arg };
		memcpy(name + (k - 1) * WF_TR_PART_BYTES, part, WF_TR_PART_BYTES);
	}
	return true;
}

/* A live thread's name: under its lock if the lock is free within a few
 * tries, else read as it is (the code a signal interrupted on this kernel
 * thread may hold the lock).  False if the slot is free. */
static bool wf_tr_live_name(struct wf_thread *t, char *name)
{
	for (int i = 0; i < 64; i++) {
		if (wf_spin_trylock(&t->lk)) {
			bool live = t->state != WF_FREE;
			memcpy(name, t->name, WF_TR_NAME_LEN);
			wf_spin_unlock(&t->lk);
			return live;
		}
		wf_cpu_relax();
	}
	for (size_t k = 0; k < WF_TR_NAME_LEN; k++)
		name[k] = __atomic_load_n(&t->name[k], __ATOMIC_RELAXED);
	return __atomic_load_n(&t->state, __ATOMIC_RELAXED) != WF_FREE;
}

/* The names of threads that finished (their NAME records) and of those
 * still alive (their TCBs), in a table at least twice their number. */
static void wf_names_build(struct wf_tr_names *m, const struct wf_tr_snap *snaps, int n)
{
	uint32_t slots = wf_tcb_slots();  /* once: the table must not overfill */
	uint64_t count = slots;
	for (int w = 0; w < n; w++)
		for (uint64_t i = 0; i < snaps[w].n; i++)
			count += snaps[w].rec[i].type == WF_TR_NAME;
	uint64_t size = 64;
	while (size < 2 * count)
		size *= 2;
	m->bytes = size * sizeof *m->e;
	m->e = wf_tr_map(m->bytes);
	m->mask = size - 1;
	char name[WF_TR_NAME_LEN];
	for (uint32_t s = 0; s < slots; s++) {
		struct wf_thread *t = wf_tcb_at(s);
		if (t && t->kind != WF_KIND_IDLE && wf_tr_live_name(t, name))
			wf_names_put(m, wf_tr_key(wf_tr_id(t), wf_tr_gen(t)), name);
	}
	for (int w = 0; w < n; w++)
		for (uint64_t i = 0; i < snaps[w].n; i++) {
			const struct wf_tr_rec *r = &snaps[w].rec[i];
			if (r->type == WF_TR_NAME && wf_tr_name_at(&snaps[w], i, name))
				wf_names_put(m, wf_tr_key(r->id, r->arg), name);
		}
}

/* --- events ---------------------------------------------------------------- */

/* A slice still to be written: thread id, generation and start. */
struct wf_tr_open {
	uint32_t id;
	uint32_t gen;
	uint64_t ts;
};

/* The slice s, ending at end, as far as it lies in the window. */
static void wf_out_slice(struct wf_out *o, const struct wf_tr_names *m, int w,
                         const struct wf_tr_open *s, uint64_t end, uint64_t from)
{
	uint64_t start = s->ts > from ? s->ts : from;
	if (end <= from)
		return;
	wf_out_event(o, "X", w, start);
	wf_out_str(o, ",\"dur\":");
	wf_out_us(o, end > start ? end - start : 0);
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

/* One worker's events in the window [from, end]: its slices, rebuilt from
 * its switch records, and its instants.  A slice still open ends at `end`
 * (or when the worker stopped recording).  Returns the events that lay
 * before the window. */
static uint64_t wf_out_worker(struct wf_out *o, const struct wf_tr_names *m, int w,
                              const struct wf_tr_snap *s, uint64_t from, uint64_t end)
{
	struct wf_tr_open cur = { 0, 0, 0 };
	uint64_t before = 0;
	for (uint64_t i = 0; i < s->n; i++) {
		const struct wf_tr_rec *r = &s->rec[i];
		if (r->type == WF_TR_NAME || r->type == WF_TR_NAME_PART)
			continue;
		if (r->ts < from)
			before++;
		if (r->type == WF_TR_SWITCH) {
			if (cur.id)
				wf_out_slice(o, m, w, &cur, r->ts, from);
			cur = (struct wf_tr_open){ r->id, (uint32_t)r->arg, r->ts };
		} else if (r->ts >= from) {
			wf_out_instant(o, w, r);
		}
	}
	if (cur.id)
		wf_out_slice(o, m, w, &cur, s->stop ? s->stop : end, from);
	return before;
}

static void wf_out_meta(struct wf_out *o, int n)
{
	wf_out_event(o, "M", -1, UINT64_MAX);
	wf_out_str(o, ",\"name\":\"process_name\",\"args\":{\"name\":\"weft\"}}");
	for (int w = 0; w < n; w++) {
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

/* Where the window starts, for viewers: a global instant. */
static void wf_out_window(struct wf_out *o, uint64_t from)
{
	wf_out_event(o, "i", 0, from);
	wf_out_str(o, ",\"s\":\"g\",\"name\":\"trace window starts\",\"args\":{\"why\":"
	              "\"older events were dropped (WEFT_TRACE_MAX_EVENTS)\"}}");
}

static void wf_out_field(struct wf_out *o, const char *name, uint64_t v)
{
	wf_out_str(o, ",\"");
	wf_out_str(o, name);
	wf_out_str(o, "\":");
	wf_out_u64(o, v);
}

static const char *wf_tr_ended_by(int sig)
{
	return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "exit";
}

static void wf_out_tail(struct wf_out *o, int n, uint64_t from, uint64_t end,
                        uint64_t dropped, int sig)
{
	wf_out_str(o, "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{\"producer\":\"weft\","
	              "\"clock\":\"CLOCK_MONOTONIC\"");
	wf_out_field(o, "start_ns", wf_tr.t0);
	wf_out_field(o, "window_start_ns", from);
	wf_out_field(o, "end_ns", end);
	wf_out_str(o, ",\"ended_by\":\"");
	wf_out_str(o, wf_tr_ended_by(sig));
	wf_out_str(o, "\"");
	wf_out_field(o, "workers", (uint64_t)n);
	wf_out_field(o, "max_events_per_worker", wf_tr.cap);
	wf_out_field(o, "dropped_events", dropped);
	wf_out_field(o, "wakes_by_non_workers",
	             atomic_load_explicit(&wf_tr.foreign_wakes, memory_order_relaxed));
	wf_out_str(o, "}}\n");
}

/* One line on stderr when the file lacks events, or could not be written. */
static void wf_tr_report(uint64_t from, uint64_t end, uint64_t dropped, int err)
{
	if (!err && !dropped)
		return;
	char buf[512];
	struct wf_out o = { .buf = buf, .cap = sizeof buf, .fd = STDERR_FILENO };
	wf_out_str(&o, "weft: WEFT_TRACE=\"");
	wf_out_str(&o, wf_tr.path);
	if (err) {
		wf_out_str(&o, "\": writing the trace failed (errno ");
		wf_out_u64(&o, (uint64_t)err);
		wf_out_str(&o, ")\n");
	} else {
		wf_out_str(&o, "\": the file covers the last ");
		wf_out_us(&o, (end - from) / 1000);   /* ms, three decimals */
		wf_out_str(&o, " ms; ");
		wf_out_u64(&o, dropped);
		wf_out_str(&o, " events dropped (the last WEFT_TRACE_MAX_EVENTS=");
		wf_out_u64(&o, wf_tr.cap);
		wf_out_str(&o, " records per worker are kept)\n");
	}
	wf_out_flush(&o);
}

/* The whole file, from fresh copies of the rings; sig: 0 at exit, else the
 * signal that ends the trace. */
static void wf_tr_write_file(int sig)
{
	struct wf_tr_buf *bufs = atomic_load_explicit(&wf_tr.bufs, memory_order_acquire);
	if (!bufs)
		return;
	int n = wf_nkthreads();
	size_t snap_bytes = (size_t)n * sizeof(struct wf_tr_snap);
	struct wf_tr_snap *snaps = wf_tr_map(snap_bytes);
	struct wf_out o = { .buf = wf_tr_map(WF_TR_OUT_BUF), .cap = WF_TR_OUT_BUF,
	                    .fd = wf_tr.fd, .first = true };
	struct wf_tr_names names = { NULL, 0, 0 };
	bool ok = snaps && o.buf;
	for (int w = 0; ok && w < n; w++)
		ok = wf_tr_snapshot(&bufs[w], &snaps[w]);
	if (!ok) {
		static const char msg[] = "weft: WEFT_TRACE: out of memory: no trace written\n";
		ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
		(void)r;
		goto out;
	}
	/* After the copies: every record in them is older. */
	uint64_t end = wf_clock_ns(), dropped = 0;
	uint64_t from = wf_tr_window(snaps, n, end);
	wf_names_build(&names, snaps, n);
	/* Replace what an earlier write left (a signal the program survived). */
	if (lseek(wf_tr.fd, 0, SEEK_SET) == 0)
		(void)!ftruncate(wf_tr.fd, 0);
	wf_out_str(&o, "{\"traceEvents\":[");
	wf_out_meta(&o, n);
	if (from > wf_tr.t0)
		wf_out_window(&o, from);
	for (int w = 0; w < n; w++) {
		dropped += wf_out_worker(&o, &names, w, &snaps[w], from, end);
		dropped += snaps[w].lost + snaps[w].dropped;
	}
	wf_out_tail(&o, n, from, end, dropped, sig);
	wf_out_flush(&o);
	wf_tr_report(from, end, dropped, o.err);
out:
	wf_tr_unmap(names.e, names.bytes);
	for (int w = 0; snaps && w < n; w++)
		wf_tr_unmap(snaps[w].map, snaps[w].bytes);
	wf_tr_unmap(snaps, snap_bytes);
	wf_tr_unmap(o.buf, WF_TR_OUT_BUF);
}

/* --- who writes ------------------------------------------------------------ */

static _Atomic uint64_t wf_tr_writes;   /* files written so far */

/* Become the writer of the file.  False when it is closed (exit wrote it),
 * when this kernel thread is already writing it (a signal that landed in
 * its own write: that write goes on when the handler returns, if it does),
 * or, for a signal, when another thread wrote it while this one waited. */
static bool wf_tr_lock(pid_t me, bool at_exit)
{
	uint64_t seen = atomic_load(&wf_tr_writes);
	unsigned spins = 0;
	for (;;) {
		int32_t cur = atomic_load(&wf_tr.writer);
		if (cur == WF_TR_CLOSED || cur == me)
			return false;
		if (cur == 0) {
			if (!at_exit && atomic_load(&wf_tr_writes) != seen)
				return false;
			if (atomic_compare_exchange_strong(&wf_tr.writer, &cur, me))
				return true;
		}
		wf_spin_backoff(&spins);
	}
}

void wf_tr_write(void)
{
	if (getpid() != wf_tr.pid)
		return;
	/* No SIGTERM/SIGINT write on this thread in the middle of this one. */
	sigset_t block, saved;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	WF_LIBC(pthread_sigmask)(SIG_BLOCK, &block, &saved);
	pid_t me = wf_kt_gettid();
	if (wf_tr_lock(me, true)) {
		wf_tr_write_file(0);
		atomic_fetch_add(&wf_tr_writes, 1);
		close(wf_tr.fd);
		atomic_store(&wf_tr.writer, WF_TR_CLOSED);
	}
	WF_LIBC(pthread_sigmask)(SIG_SETMASK, &saved, NULL);
}

void wf_tr_on_signal(int sig, siginfo_t *si, void *uc)
{
	int e = errno;
	pid_t me = wf_kt_gettid();
	if (getpid() == wf_tr.pid && !wf_signal_ignored(sig) && wf_tr_lock(me, false)) {
		wf_tr_write_file(sig);
		atomic_fetch_add(&wf_tr_writes, 1);
		atomic_store(&wf_tr.writer, 0);
	}
	errno = e;
	wf_signal_pass(sig, si, uc);
}
