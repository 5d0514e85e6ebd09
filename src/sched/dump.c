/*
 * dump.c — weft_dump: what every worker and every green thread is doing, in
 * words, while the program keeps running.
 *
 * The dump never stops the world.  Stopping every worker would need a
 * handshake with each of them, and a worker stuck in a system call (the very
 * thing a dump is often taken to find) would never answer.  Instead the
 * dump reads each TCB on its own, racily: TCBs are never freed (handle.c),
 * so a read can be stale but never faults, and fields that other threads
 * write are read with relaxed atomic loads.  A thread is shown only if its
 * generation is the same before and after its fields were read, so a line
 * never mixes two lives of one TCB slot.
 *
 * Backtraces are frame-pointer walks from the context a parked or queued
 * thread saved in wf_ctx_switch (context.h).  Its stack may be switched to
 * and reused while we read it, so every word of the walk is read with
 * process_vm_readv on our own process, which returns EFAULT instead of
 * faulting on an unmapped or guard page; the walk stops at the first word
 * that cannot be read, at a frame pointer that does not grow, or after
 * WF_DUMP_FRAMES frames.  Where that system call is refused (seccomp), words
 * are read through a pipe instead, which fails the same way.  If the thread
 * ran while being walked (its wait sequence or saved stack pointer changed),
 * the walk is reported as unreliable rather than printed.
 *
 * A thread that runs on a worker may really sit in a system call: the
 * worker's kernel thread is asleep in the kernel (read from /proc,
 * thread_state.c), and the monitor may have retaken the worker and given
 * its place to a spare (monitor.c).  The dump says so, for the thread and
 * for the worker, and lists spare workers too.  Finished threads that
 * nobody joined yet are counted on one line, with the first few ids: a
 * program that never joins would otherwise fill the dump with them.
 *
 * Rejected: libunwind (a new dependency, and DWARF unwinding of a stack that
 * may change under the reader can loop); stopping workers with a signal
 * (cannot reach a worker blocked in the kernel, and the handler would run on
 * top of the very green thread being inspected).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <stdlib.h>
#include "sched_internal.h"
#include "dump_symbols.h"
#include "../context/sigctx.h"
#include "../kthreads/kthread.h"

#define WF_DUMP_FRAMES 32

#define WF_LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

extern char __start_weft_text[] __attribute__((weak));
extern char __stop_weft_text[] __attribute__((weak));

/* --- reading memory that may vanish ------------------------------------- */

#define WF_DUMP_SNAP 16384   /* bytes of a stack copied in one read */

struct wf_peeker {
	int pipe[2];         /* fallback when process_vm_readv is refused */
	bool use_pipe;
	uintptr_t snap_at;   /* snap holds [snap_at, snap_at + snap_len) */
	size_t snap_len;
	unsigned raw_reads;  /* reads outside snap since last reset */
	char snap[WF_DUMP_SNAP];
};

static bool wf_peek_pipe(struct wf_peeker *p, uintptr_t addr, void *buf, size_t n)
{
	if (p->pipe[0] < 0 && pipe2(p->pipe, O_CLOEXEC | O_NONBLOCK))
		return false;
	/* write() copies from our memory in the kernel: EFAULT, not SIGSEGV. */
	if (write(p->pipe[1], (const void *)addr, n) != (ssize_t)n)
		return false;
	return read(p->pipe[0], buf, n) == (ssize_t)n;
}

static bool wf_peek_raw(struct wf_peeker *p, uintptr_t addr, void *buf, size_t n)
{
	if (!p->use_pipe) {
		struct iovec local = { buf, n }, remote = { (void *)addr, n };
		ssize_t r = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
		if (r == (ssize_t)n)
			return true;
		if (r >= 0 || (errno != ENOSYS && errno != EPERM))
			return false;
		p->use_pipe = true;
	}
	return wf_peek_pipe(p, addr, buf, n);
}

/* Copy the top of a stack in one system call: a walk over the copy is
 * consistent if the thread did not run meanwhile, and the window in which it
 * may run shrinks from one call per frame to one per thread.  A short copy
 * (the stack ends within the window) is fine. */
static void wf_snapshot(struct wf_peeker *p, uintptr_t at)
{
	p->snap_at = at;
	p->snap_len = 0;
	for (size_t len = WF_DUMP_SNAP; len >= 4096 && !p->snap_len; len /= 2)
		if (wf_peek_raw(p, at, p->snap, len))
			p->snap_len = len;
}

static bool wf_peek(struct wf_peeker *p, uintptr_t addr, void *buf, size_t n)
{
	if (addr >= p->snap_at && addr - p->snap_at + n <= p->snap_len) {
		memcpy(buf, p->snap + (addr - p->snap_at), n);
		return true;
	}
	p->raw_reads++;
	return wf_peek_raw(p, addr, buf, n);
}

/* --- one thread, as read -------------------------------------------------- */

struct wf_view {
	struct wf_thread *t;
	uint32_t gen;
	uint8_t state, kind, in_signal, block_kind;
	uint32_t on_cpu, runs;
	int worker;
	const void *block_obj;
	uint64_t block_since, deadline, wait;
	uintptr_t sp;
	void *sig_ctx;
	char name[sizeof ((struct wf_thread *)0)->name];
};

static int wf_worker_index(const struct wf_worker *w)
{
	return w ? (int)(w - wf_rt.workers) : -1;
}

/* Read t; false if its slot is free, an idle context, or was reused while
 * being read. */
static bool wf_view_read(struct wf_thread *t, struct wf_view *v)
{
	v->t = t;
	v->gen = atomic_load_explicit(&t->gen, memory_order_acquire);
	v->state = WF_LOAD(t->state);
	v->kind = WF_LOAD(t->kind);
	if (v->state == WF_FREE || v->kind == WF_KIND_IDLE || v->kind == WF_KIND_FOREIGN)
		return false;
	v->wait = atomic_load_explicit(&t->wait, memory_order_acquire);
	v->runs = atomic_load_explicit(&t->runs, memory_order_acquire);
	v->on_cpu = atomic_load_explicit(&t->on_cpu, memory_order_acquire);
	v->in_signal = WF_LOAD(t->in_signal);
	v->worker = wf_worker_index(WF_LOAD(t->worker));
	v->block_kind = atomic_load_explicit(&t->block_kind, memory_order_relaxed);
	v->block_obj = atomic_load_explicit(&t->block_obj, memory_order_relaxed);
	v->block_since = atomic_load_explicit(&t->block_since, memory_order_relaxed);
	v->deadline = WF_LOAD(t->deadline);
	v->sp = (uintptr_t)WF_LOAD(t->sp);
	v->sig_ctx = WF_LOAD(t->sig_ctx);
	for (size_t i = 0; i < sizeof v->name; i++)
		v->name[i] = WF_LOAD(t->name[i]);
	v->name[sizeof v->name - 1] = '\0';
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&t->gen, memory_order_relaxed) == v->gen &&
	       WF_LOAD(t->state) != WF_FREE;
}

/* The thread id users see: the slot part of its weft_t (slot + 1). */
static unsigned wf_view_id(const struct wf_thread *t) { return t->index + 1; }

static void wf_print_secs(FILE *out, uint64_t ns)
{
	fprintf(out, "%llu.%03llu s", (unsigned long long)(ns / 1000000000ull),
	        (unsigned long long)(ns / 1000000ull % 1000));
}

/* The owner of the object v is blocked on, for a kind that has one (a
 * mutex, an rwlock's writer), read through the peeker: the object may be
 * gone by now.  0 if none or unreadable. */
static uintptr_t wf_holder(struct wf_peeker *p, const struct wf_view *v,
                           const struct wf_block_kind *k)
{
	uintptr_t owner = 0;
	if (!k->held || !v->block_obj)
		return 0;
	uintptr_t at = (uintptr_t)v->block_obj + wf_block_owner_at[v->block_kind];
	return wf_peek(p, at, &owner, sizeof owner) ? owner : 0;
}

static void wf_print_blocked(FILE *out, struct wf_peeker *p, const struct wf_view *v,
                             uint64_t coarse_now, uint64_t now)
{
	const struct wf_block_kind *k =
		&wf_block_kinds[v->block_kind < WF_BLOCK_COUNT ? v->block_kind : WF_BLOCK_NONE];
	fprintf(out, "blocked, %s", k->words);
	if (k->show == WF_SHOW_THREAD && v->block_obj)
		fprintf(out, " thread %u", ((const struct wf_thread *)v->block_obj)->index + 1);
	else if (k->show == WF_SHOW_ADDRESS && v->block_obj)
		fprintf(out, " %p", v->block_obj);
	else if (k->show == WF_SHOW_NUMBER)
		fprintf(out, " %lu", (unsigned long)(uintptr_t)v->block_obj);
	uintptr_t holder = wf_holder(p, v, k);
	if (holder)
		fprintf(out, " (%s by thread %u)", k->held, (unsigned)(uint32_t)holder);
	if (v->deadline) {
		fputs(v->deadline > now ? ", wakes in " : ", deadline passed ", out);
		wf_print_secs(out, v->deadline > now ? v->deadline - now : now - v->deadline);
		if (v->deadline <= now)
			fputs(" ago", out);
	}
	if (v->block_since && coarse_now >= v->block_since) {
		fputs(", for ", out);
		wf_print_secs(out, coarse_now - v->block_since);
	}
}

/* --- backtraces ------------------------------------------------------------ */

/* Is pc in weft's own code?  The static library renames its code section
 * to weft_text (CMakeLists.txt), bracketed by the linker; the shared
 * library is the whole object that weft_dump lives in. */
static bool wf_pc_in_weft(uintptr_t pc, const Dl_info *di)
{
	if (__start_weft_text)
		return pc >= (uintptr_t)__start_weft_text && pc < (uintptr_t)__stop_weft_text;
	Dl_info self;
	return dladdr((void *)(uintptr_t)weft_dump, &self) && di->dli_fbase == self.dli_fbase;
}

/* One frame, named.  `exact`: pc is where the thread stopped (a preempted
 * thread's PC), not a return address. */
struct wf_frame {
	uintptr_t pc;
	uintptr_t off;
	const char *name;
	Dl_info di;
	bool internal;          /* weft's own code, not a public weft_ function */
};

static void wf_frame_name(struct wf_symcache *sc, struct wf_frame *f, bool exact)
{
	f->name = wf_sym_name(sc, f->pc + exact, &f->off, &f->di);
	f->off -= exact;
	f->internal = f->di.dli_fname && wf_pc_in_weft(f->pc, &f->di) &&
	              !(f->name && !strncmp(f->name, "weft_", 5));
}

static void wf_print_frame(FILE *out, int i, const struct wf_frame *f)
{
	fprintf(out, "    #%-2d 0x%016lx ", i, (unsigned long)f->pc);
	if (f->name)
		fprintf(out, "%s+0x%lx", f->name, (unsigned long)f->off);
	else if (f->di.dli_fname)
		fprintf(out, "%s+0x%lx", *f->di.dli_fname ? f->di.dli_fname : "(program)",
		        (unsigned long)(f->pc - (uintptr_t)f->di.dli_fbase));
	else
		fputs("?", out);
	fputc('\n', out);
}

/* Collect the frames of a saved context: pcs[0] is where it stopped, then
 * the return addresses of the frame-pointer chain from fp.  Returns how
 * many. */
static int wf_walk(struct wf_peeker *p, uintptr_t pc, uintptr_t fp, uintptr_t floor,
                   uintptr_t *pcs)
{
	int n = 0;
	while (n < WF_DUMP_FRAMES && pc) {
		pcs[n++] = pc;
		uintptr_t link[2];   /* a frame record (context.h) */
		if (!fp || (fp & 7) || fp < floor || !wf_peek(p, fp, link, sizeof link))
			break;
		uintptr_t up = link[WF_FRAME_RECORD_FP];
		if (up && up <= fp)
			break;   /* frame pointers grow towards the stack's base */
		pc = link[WF_FRAME_RECORD_PC];
		fp = up;
	}
	return n;
}

/* Where to start: a thread preempted by the tick stopped at the PC saved in
 * its signal frame; any other stopped in wf_ctx_switch.  *exact says which. */
static bool wf_start(struct wf_peeker *p, const struct wf_view *v, uintptr_t *pc,
                     uintptr_t *fp, bool *exact)
{
	if (v->in_signal && v->sig_ctx) {
		uintptr_t at = (uintptr_t)v->sig_ctx;
		if (wf_peek(p, at + WF_SIGCTX_PC, pc, sizeof *pc) &&
		    wf_peek(p, at + WF_SIGCTX_FP, fp, sizeof *fp)) {
			*exact = true;
			return true;
		}
	}
	uintptr_t frame[WF_CTX_SAVED_WORDS];
	if (!v->sp || !wf_peek(p, v->sp, frame, sizeof frame))
		return false;
	wf_ctx_saved_frame(frame, pc, fp);
	*exact = false;
	return true;
}

/* The thread ran (or was reused) since v was read. */
static bool wf_view_changed(const struct wf_view *v)
{
	struct wf_thread *t = v->t;
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&t->runs, memory_order_relaxed) != v->runs ||
	       atomic_load_explicit(&t->on_cpu, memory_order_relaxed) != 0 ||
	       atomic_load_explicit(&t->gen, memory_order_relaxed) != v->gen;
}

/* Walk the saved context of a thread that is not running.  Frames are
 * collected, then the thread is checked not to have run meanwhile; if it
 * did, its stack was changing under us and the walk is retried on a fresh
 * read, a few times, before giving up (a busy thread may never hold still). */
static void wf_print_backtrace(FILE *out, struct wf_peeker *p, struct wf_symcache *sc,
                               struct wf_view *v)
{
	uintptr_t pcs[WF_DUMP_FRAMES], pc, fp;
	bool exact;
	int n = -1;
	for (int attempt = 0; attempt < 8 && n < 0; attempt++) {
		if (attempt && (!wf_view_read(v->t, v) ||
		                (v->state != WF_READY && v->state != WF_BLOCKED) || v->on_cpu))
			break;
		/* Only the copy must be consistent: check right after it. */
		wf_snapshot(p, v->sp);
		if (wf_view_changed(v))
			continue;
		p->raw_reads = 0;
		if (!wf_start(p, v, &pc, &fp, &exact)) {
			fputs("    (no saved context readable)\n", out);
			return;
		}
		n = wf_walk(p, pc, fp, v->sp, pcs);
		if (p->raw_reads && wf_view_changed(v))
			n = -1;   /* read past the copy while it ran */
	}
	if (n < 0) {
		fputs("    (kept running while being read: no backtrace)\n", out);
		return;
	}
	struct wf_frame f[WF_DUMP_FRAMES];
	for (int i = 0; i < n; i++) {
		f[i].pc = pcs[i];
		wf_frame_name(sc, &f[i], i == 0 && exact);
	}
	if (exact)
		fputs("    preempted at:\n", out);
	for (int i = 0; i < n; i++) {
		/* A run of weft's own frames is one line: users want their code. */
		int j = i;
		while (j + 1 < n && f[j].internal && f[j + 1].internal)
			j++;
		if (j > i) {
			fprintf(out, "    #%-2d [weft internal, %d frames]\n", i, j - i + 1);
			i = j;
		} else {
			wf_print_frame(out, i, &f[i]);
		}
	}
}

/* --- the dump --------------------------------------------------------------- */

/* What the dump knows of each worker's kernel thread, read once. */
struct wf_dump_workers {
	int n;                          /* workers in use, spares included */
	char kstate[WF_MAX_KTHREADS];   /* wf_kt_state: 'R', 'S', 'D', ... 0 unknown */
};

/* The kernel thread of a worker with a green thread on it is not running
 * user code: in a system call, or stopped. */
static const char *wf_kstate_words(char st)
{
	switch (st) {
	case 'S': return "in a system call";
	case 'D': return "in a system call (uninterruptible)";
	case 'T': case 't': return "stopped";
	default: return NULL;
	}
}

/* A running thread: on a CPU, or its worker sits in the kernel. */
static void wf_print_running(FILE *out, const struct wf_view *v,
                             const struct wf_dump_workers *dw)
{
	const char *ks = v->worker >= 0 && v->worker < dw->n
	                 ? wf_kstate_words(dw->kstate[v->worker]) : NULL;
	struct wf_worker *w = v->worker >= 0 ? &wf_rt.workers[v->worker] : NULL;
	fprintf(out, "%s on worker %d", ks ? ks : "running", v->worker);
	if (w && atomic_load_explicit(&w->in_blocking, memory_order_relaxed))
		fputs(", in a blocking section", out);
	if (w && atomic_load_explicit(&w->mstate, memory_order_relaxed) == WF_WS_BLOCKED)
		fputs(" (worker retaken: another stands in)", out);
	fputc('\n', out);
}

static void wf_print_thread(FILE *out, struct wf_peeker *p, struct wf_symcache *sc,
                            struct wf_view *v, const struct wf_dump_workers *dw,
                            uint64_t coarse_now, uint64_t now)
{
	fprintf(out, "thread %u", wf_view_id(v->t));
	if (v->name[0])
		fprintf(out, " \"%s\"", v->name);
	if (v->kind == WF_KIND_MAIN)
		fputs(" [main]", out);
	fputs(": ", out);
	bool saved = false;
	switch (v->state) {
	case WF_RUNNING:
		wf_print_running(out, v, dw);
		return;
	case WF_READY:
		fprintf(out, "ready, queued on worker %d%s\n", v->worker,
		        v->in_signal ? " (preempted)" : "");
		saved = v->on_cpu == 0;
		break;
	case WF_BLOCKED:
		wf_print_blocked(out, p, v, coarse_now, now);
		fprintf(out, ", last on worker %d\n", v->worker);
		saved = v->on_cpu == 0;
		break;
	case WF_DONE:
		fputs("finished, not yet joined\n", out);
		return;
	default:
		fprintf(out, "state %u\n", v->state);
		return;
	}
	if (saved)
		wf_print_backtrace(out, p, sc, v);
	else
		fputs("    (still switching away: no saved context yet)\n", out);
}

static void wf_print_worker(FILE *out, int i, const struct wf_dump_workers *dw)
{
	struct wf_worker *w = &wf_rt.workers[i];
	struct wf_thread *cur = WF_LOAD(w->current);
	uint8_t ms = atomic_load_explicit(&w->mstate, memory_order_relaxed);
	fprintf(out, "worker %d (kernel tid %d%s): ", i,
	        (int)atomic_load_explicit(&w->tid, memory_order_relaxed),
	        i >= wf_rt.nworkers ? ", added by the monitor" : "");
	const char *ks = wf_kstate_words(dw->kstate[i]);
	if (ms == WF_WS_SPARE)
		fputs("spare, waiting to stand in for a blocked worker", out);
	else if (!cur || cur == w->idle)
		fputs(atomic_load_explicit(&w->sleeping, memory_order_relaxed)
		      ? "idle, asleep" : "idle, looking for work", out);
	else if (ks)
		fprintf(out, "%s under thread %u", ks, cur->index + 1);
	else
		fprintf(out, "running thread %u", cur->index + 1);
	if (ms == WF_WS_BLOCKED)
		fputs(", retaken by the monitor (another worker stands in)", out);
	else if (atomic_load_explicit(&w->in_blocking, memory_order_relaxed))
		fputs(", in a blocking section", out);
	weft_stats_t s;
	weft_stats_get(i, &s);
	fprintf(out, "; %llu queued; %llu switches, %llu preemptions, %llu steals\n",
	        (unsigned long long)s.queued, (unsigned long long)s.switches,
	        (unsigned long long)s.preemptions, (unsigned long long)s.steals);
}

/* Finished threads not yet joined: counted, and the first few ids kept,
 * for one line at the end. */
#define WF_DUMP_DONE_IDS 8
struct wf_dump_done {
	unsigned n;
	unsigned ids[WF_DUMP_DONE_IDS];
};

static void wf_print_done(FILE *out, const struct wf_dump_done *d)
{
	if (!d->n)
		return;
	fprintf(out, "%u finished thread%s not yet joined:", d->n, d->n == 1 ? "" : "s");
	for (unsigned i = 0; i < d->n && i < WF_DUMP_DONE_IDS; i++)
		fprintf(out, " %u", d->ids[i]);
	fputs(d->n > WF_DUMP_DONE_IDS ? " ...\n" : "\n", out);
}

int weft_dump(FILE *out)
{
	if (!out || wf_runtime_ensure())
		return EINVAL;
	/* Big (a stack copy, a module table): on the heap, not on the caller's
	 * stack, which may be a small green one. */
	struct wf_dumper {
		struct wf_peeker p;
		struct wf_symcache sc;
		struct wf_dump_workers dw;
	} *d = calloc(1, sizeof *d);
	if (!d)
		return ENOMEM;
	struct wf_peeker *p = &d->p;
	struct wf_symcache *sc = &d->sc;
	struct wf_dump_workers *dw = &d->dw;
	p->pipe[0] = p->pipe[1] = -1;
	uint64_t now = wf_clock_ns(), coarse_now = wf_coarse_ns();
	uint32_t slots = wf_tcb_slots();
	unsigned shown = 0;
	struct wf_dump_done done = { 0, { 0 } };
	int err = errno;
	dw->n = wf_nkthreads();
	for (int i = 0; i < dw->n; i++)
		dw->kstate[i] = wf_kt_state(atomic_load_explicit(&wf_rt.workers[i].tid,
		                                                 memory_order_relaxed));

	flockfile(out);
	fprintf(out, "=== weft dump at %llu.%06llu s (CLOCK_MONOTONIC): %d workers",
	        (unsigned long long)(now / 1000000000ull),
	        (unsigned long long)(now / 1000ull % 1000000), wf_rt.nworkers);
	if (dw->n > wf_rt.nworkers)
		fprintf(out, " (+%d added by the monitor)", dw->n - wf_rt.nworkers);
	fprintf(out, ", %u threads alive besides main ===\n", (unsigned)wf_live_count());
	for (int i = 0; i < dw->n; i++)
		wf_print_worker(out, i, dw);
	for (uint32_t i = 0; i < slots; i++) {
		struct wf_thread *t = wf_tcb_at(i);
		struct wf_view v;
		if (!t || !wf_view_read(t, &v))
			continue;
		shown++;
		if (v.state == WF_DONE) {
			if (done.n < WF_DUMP_DONE_IDS)
				done.ids[done.n] = wf_view_id(t);
			done.n++;
			continue;
		}
		wf_print_thread(out, p, sc, &v, dw, coarse_now, now);
	}
	wf_print_done(out, &done);
	fprintf(out, "=== end of weft dump: %u threads ===\n", shown);
	fflush(out);
	int bad = ferror(out);
	funlockfile(out);

	wf_symcache_release(sc);
	if (p->pipe[0] >= 0) {
		close(p->pipe[0]);
		close(p->pipe[1]);
	}
	free(d);
	errno = err;
	return bad ? EIO : 0;
}
