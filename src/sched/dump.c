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
#include "sched_internal.h"

#define WF_DUMP_FRAMES 32

#define WF_LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

extern char __start_weft_text[] __attribute__((weak));
extern char __stop_weft_text[] __attribute__((weak));

/* --- reading memory that may vanish ------------------------------------- */

struct wf_peeker {
	int pipe[2];         /* fallback when process_vm_readv is refused */
	bool use_pipe;
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

static bool wf_peek(struct wf_peeker *p, uintptr_t addr, void *buf, size_t n)
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

/* --- one thread, as read -------------------------------------------------- */

struct wf_view {
	struct wf_thread *t;
	uint32_t gen;
	uint8_t state, kind, in_signal, block_kind;
	uint32_t on_cpu;
	int worker;
	const void *block_obj;
	uint64_t block_since, deadline, wait;
	uintptr_t sp;
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
	if (v->state == WF_FREE || v->kind == WF_KIND_IDLE)
		return false;
	v->wait = atomic_load_explicit(&t->wait, memory_order_acquire);
	v->on_cpu = atomic_load_explicit(&t->on_cpu, memory_order_acquire);
	v->in_signal = WF_LOAD(t->in_signal);
	v->worker = wf_worker_index(WF_LOAD(t->worker));
	v->block_kind = atomic_load_explicit(&t->block_kind, memory_order_relaxed);
	v->block_obj = atomic_load_explicit(&t->block_obj, memory_order_relaxed);
	v->block_since = atomic_load_explicit(&t->block_since, memory_order_relaxed);
	v->deadline = WF_LOAD(t->deadline);
	v->sp = (uintptr_t)WF_LOAD(t->sp);
	for (size_t i = 0; i < sizeof v->name; i++)
		v->name[i] = WF_LOAD(t->name[i]);
	v->name[sizeof v->name - 1] = '\0';
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&t->gen, memory_order_relaxed) == v->gen &&
	       WF_LOAD(t->state) != WF_FREE;
}

/* The thread id users see: the slot part of its weft_t (slot + 1). */
static unsigned wf_view_id(const struct wf_thread *t) { return t->index + 1; }

static const char *const wf_block_names[] = {
	[WF_BLOCK_NONE] = "parked",           [WF_BLOCK_JOIN] = "joining",
	[WF_BLOCK_SLEEP] = "sleeping",        [WF_BLOCK_MUTEX] = "waiting for mutex",
	[WF_BLOCK_COND] = "waiting on cond",  [WF_BLOCK_SEM] = "waiting on semaphore",
	[WF_BLOCK_RWLOCK_READ] = "waiting to read-lock rwlock",
	[WF_BLOCK_RWLOCK_WRITE] = "waiting to write-lock rwlock",
	[WF_BLOCK_BARRIER] = "waiting at barrier", [WF_BLOCK_ONCE] = "waiting for once",
	[WF_BLOCK_EXIT] = "in weft_exit, waiting for all threads to finish",
};

static void wf_print_secs(FILE *out, uint64_t ns)
{
	fprintf(out, "%llu.%03llu s", (unsigned long long)(ns / 1000000000ull),
	        (unsigned long long)(ns / 1000000ull % 1000));
}

/* The holder of a mutex or write-locked rwlock, read through the peeker:
 * the object may be gone by now.  0 if none or unreadable. */
static uintptr_t wf_holder(struct wf_peeker *p, const struct wf_view *v)
{
	uintptr_t owner = 0, at = (uintptr_t)v->block_obj;
	if (v->block_kind == WF_BLOCK_MUTEX)
		at += offsetof(weft_mutex_t, _owner);
	else if (v->block_kind == WF_BLOCK_RWLOCK_WRITE || v->block_kind == WF_BLOCK_RWLOCK_READ)
		at += offsetof(weft_rwlock_t, _owner);
	else
		return 0;
	return wf_peek(p, at, &owner, sizeof owner) ? owner : 0;
}

static void wf_print_blocked(FILE *out, struct wf_peeker *p, const struct wf_view *v,
                             uint64_t coarse_now, uint64_t now)
{
	unsigned k = v->block_kind < sizeof wf_block_names / sizeof wf_block_names[0]
	             ? v->block_kind : WF_BLOCK_NONE;
	fprintf(out, "blocked, %s", wf_block_names[k]);
	if (k == WF_BLOCK_JOIN && v->block_obj)
		fprintf(out, " thread %u", ((const struct wf_thread *)v->block_obj)->index + 1);
	else if (k != WF_BLOCK_SLEEP && k != WF_BLOCK_EXIT && v->block_obj)
		fprintf(out, " %p", v->block_obj);
	uintptr_t holder = wf_holder(p, v);
	if (holder)
		fprintf(out, " (%s by thread %u)",
		        v->block_kind == WF_BLOCK_MUTEX ? "held" : "write-locked",
		        (unsigned)(uint32_t)holder);
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

static void wf_print_frame(FILE *out, int i, uintptr_t pc)
{
	Dl_info di = { 0 };
	/* A return address points after the call: look up the call itself. */
	int ok = dladdr((void *)(pc - 1), &di);
	fprintf(out, "    #%-2d 0x%016lx ", i, (unsigned long)pc);
	if (ok && di.dli_sname)
		fprintf(out, "%s+0x%lx", di.dli_sname, (unsigned long)(pc - (uintptr_t)di.dli_saddr));
	else if (ok && wf_pc_in_weft(pc, &di))
		fputs("[weft internal]", out);
	else if (ok && di.dli_fname)
		fprintf(out, "%s+0x%lx", *di.dli_fname ? di.dli_fname : "(program)",
		        (unsigned long)(pc - (uintptr_t)di.dli_fbase));
	else
		fputs("?", out);
	fputc('\n', out);
}

/* A frame dladdr cannot name that lies in weft's own code. */
static bool wf_frame_is_internal(uintptr_t pc)
{
	Dl_info di = { 0 };
	return dladdr((void *)(pc - 1), &di) && !di.dli_sname && wf_pc_in_weft(pc, &di);
}

/* Walk the saved context of a thread that is not running.  Frames are
 * collected first and printed after the thread is checked not to have run
 * meanwhile. */
static void wf_print_backtrace(FILE *out, struct wf_peeker *p, const struct wf_view *v)
{
	uintptr_t pcs[WF_DUMP_FRAMES], frame[WF_CTX_SAVED_WORDS], fp, pc;
	int n = 0;
	if (!v->sp || !wf_peek(p, v->sp, frame, sizeof frame)) {
		fputs("    (no saved context readable)\n", out);
		return;
	}
	wf_ctx_saved_frame(frame, &pc, &fp);
	while (n < WF_DUMP_FRAMES && pc) {
		pcs[n++] = pc;
		uintptr_t link[2];   /* saved frame pointer, return address */
		if (!fp || (fp & 7) || fp < v->sp || !wf_peek(p, fp, link, sizeof link))
			break;
		if (link[0] && link[0] <= fp)
			break;   /* frame pointers grow towards the stack's base */
		pc = link[1];
		fp = link[0];
	}
	struct wf_thread *t = v->t;
	if (atomic_load_explicit(&t->wait, memory_order_acquire) != v->wait ||
	    (uintptr_t)WF_LOAD(t->sp) != v->sp ||
	    atomic_load_explicit(&t->gen, memory_order_relaxed) != v->gen) {
		fputs("    (ran while being read: backtrace omitted)\n", out);
		return;
	}
	for (int i = 0; i < n; i++) {
		/* A run of weft's own frames is one line: users want their code. */
		int j = i;
		while (j + 1 < n && wf_frame_is_internal(pcs[j]) && wf_frame_is_internal(pcs[j + 1]))
			j++;
		if (j > i) {
			fprintf(out, "    #%-2d [weft internal, %d frames]\n", i, j - i + 1);
			i = j;
		} else {
			wf_print_frame(out, i, pcs[i]);
		}
	}
}

/* --- the dump --------------------------------------------------------------- */

static void wf_print_thread(FILE *out, struct wf_peeker *p, const struct wf_view *v,
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
		fprintf(out, "running on worker %d\n", v->worker);
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
		wf_print_backtrace(out, p, v);
	else
		fputs("    (still switching away: no saved context yet)\n", out);
}

static void wf_print_worker(FILE *out, int i)
{
	struct wf_worker *w = &wf_rt.workers[i];
	struct wf_thread *cur = WF_LOAD(w->current);
	fprintf(out, "worker %d (kernel tid %d): ", i,
	        (int)atomic_load_explicit(&w->tid, memory_order_relaxed));
	if (!cur || cur == w->idle)
		fputs(atomic_load_explicit(&w->sleeping, memory_order_relaxed)
		      ? "idle, asleep" : "idle, looking for work", out);
	else
		fprintf(out, "running thread %u", cur->index + 1);
	weft_stats_t s;
	weft_stats_get(i, &s);
	fprintf(out, "; %llu queued; %llu switches, %llu preemptions, %llu steals\n",
	        (unsigned long long)s.queued, (unsigned long long)s.switches,
	        (unsigned long long)s.preemptions, (unsigned long long)s.steals);
}

int weft_dump(FILE *out)
{
	if (!out || wf_runtime_ensure())
		return EINVAL;
	struct wf_peeker p = { .pipe = { -1, -1 } };
	uint64_t now = wf_clock_ns(), coarse_now = wf_coarse_ns();
	uint32_t slots = wf_tcb_slots();
	unsigned shown = 0;
	int err = errno;

	flockfile(out);
	fprintf(out, "=== weft dump at %llu.%06llu s (CLOCK_MONOTONIC): %d workers, "
	        "%u threads alive besides main ===\n",
	        (unsigned long long)(now / 1000000000ull),
	        (unsigned long long)(now / 1000ull % 1000000), wf_rt.nworkers,
	        (unsigned)atomic_load_explicit(&wf_rt.live, memory_order_relaxed));
	for (int i = 0; i < wf_rt.nworkers; i++)
		wf_print_worker(out, i);
	for (uint32_t i = 0; i < slots; i++) {
		struct wf_thread *t = wf_tcb_at(i);
		struct wf_view v;
		if (t && wf_view_read(t, &v)) {
			wf_print_thread(out, &p, &v, coarse_now, now);
			shown++;
		}
	}
	fprintf(out, "=== end of weft dump: %u threads ===\n", shown);
	fflush(out);
	int bad = ferror(out);
	funlockfile(out);

	if (p.pipe[0] >= 0) {
		close(p.pipe[0]);
		close(p.pipe[1]);
	}
	errno = err;
	return bad ? EIO : 0;
}
