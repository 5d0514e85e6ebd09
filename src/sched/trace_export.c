/*
 * trace_export.c — writing the WEFT_TRACE timeline at exit, as Chrome
 * trace-event JSON (Perfetto, chrome://tracing), from the buffers trace.c
 * records into.
 *
 * An atexit handler registered at init (wf_tr_write) snapshots each buffer
 * up to its published length and formats the JSON, one event per line,
 * while the other workers may still be running and appending (see
 * wf_tr_snapshot for why that is safe).  A slice still open is closed at
 * the exit timestamp.  A forked child that exits does not write its
 * parent's trace.  The JSON is formatted by hand into one heap buffer of
 * WF_TR_OUT_BUF bytes, written out with write(2) whenever it fills.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "trace_internal.h"

#define WF_TR_OUT_BUF     (1u << 20)

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
	for (int w = 0; w < wf_nkthreads(); w++)
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
	for (int w = 0; w < wf_nkthreads(); w++)
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
	for (int w = 0; w < wf_nkthreads(); w++) {
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
	wf_out_field(o, "workers", (uint64_t)wf_nkthreads());
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
void wf_tr_write(void)
{
	if (getpid() != wf_tr.pid || atomic_exchange(&wf_tr.written, true))
		return;
	struct wf_tr_buf *bufs = atomic_load_explicit(&wf_tr.bufs, memory_order_acquire);
	if (!bufs)
		return;
	int n = wf_nkthreads();
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
