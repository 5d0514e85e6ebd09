/*
 * migrate.c — resuming a green thread on a kernel thread other than the one
 * it last ran on.
 *
 * The problem.  Compiled code keeps addresses of thread-local storage in
 * registers and stack slots across calls.  It does so even where the source
 * shows no address at all: gcc computes &errno once per function and keeps
 * it in a callee-saved register, because __errno_location is declared
 * const.  Such an address belongs to the kernel thread that computed it.
 * A green thread that resumes on another worker with it would write the
 * first worker's errno (or __thread variable), which by then belongs to
 * whatever that worker runs.  Measured before this file existed: 8 threads
 * looping `errno = id; weft_yield(); errno == id?` on 2 workers read a
 * wrong errno 1.6 million times in 16 million, after 7 moves.
 *
 * The approach: rebase.  When a thread is not running, its whole machine
 * state is in its own stack, between its saved stack pointer and the top:
 * a voluntary switch pushes the callee-saved registers there (the others
 * are dead across the call), and a preemption's signal frame holds every
 * register, vector registers included.  So before a worker resumes a
 * thread that last ran on another worker, it rewrites every word of that
 * range that points into the old worker's TLS span (its static TLS block
 * and thread descriptor, src/kthreads/tls_span.c) to the same offset in
 * its own span.  The thread then finds, through every address it cached,
 * exactly what it would have found had it always run here: the worker's
 * errno (which the switch restores to the thread's value), the worker's
 * __thread variables (per worker, as documented), the worker's
 * pthread_self().  The same holds for a thread preempted anywhere in its
 * own code, so preempted threads may move too: that is what lets CPU time
 * be shared fairly across workers (runqueue.c).
 *
 * A preempted thread also carries, in its signal frame, the alternate
 * signal stack of the worker it was interrupted on, which rt_sigreturn
 * installs on whatever kernel thread returns through the frame: it is
 * replaced with the new worker's, or two workers would share one.
 *
 * What is not rebased (docs/design.md, "Moving threads between workers"):
 * TLS addresses stored outside the thread's own stack and registers (in
 * the heap or in globals), and TLS of modules given a dynamic block (not
 * in the static block: dlopen'd without initial-exec TLS).  A word that
 * merely equals an address in the span is rewritten too; the span is a few
 * KiB at an address that only pointer arithmetic on the block produces.
 * A thread that has never run has no frames to rebase: its argument is
 * passed as given.
 *
 * Rejected: a thread pointer per green thread (a glibc thread block for
 * every green thread: _dl_allocate_tls under ld.so's lock at each create,
 * ~3 KiB plus a malloc'd dtv per thread, and glibc's per-thread caches —
 * malloc's tcache, the resolver — created per green thread and never
 * released, since glibc frees them only when a kernel thread exits);
 * moving only at weft calls (the measurement above: a weft call is no
 * barrier to a cached address); never moving (no fair share of CPUs, no
 * hand-off of a blocked worker's threads).
 */
#include <signal.h>
#include <ucontext.h>
#include "sched_internal.h"

#if defined(WF_ASAN)
#define WF_NO_ASAN __attribute__((no_sanitize_address))
#else
#define WF_NO_ASAN
#endif

/* Rewrite the words of [lo, hi) that point into from's span.  The span's
 * first address is left alone: it is where the object below the block ends,
 * and a pointer one past the end of an object is common (`buf + len`),
 * while the block's lowest bytes are the surplus kept for modules loaded
 * later, which no TLS address of a module loaded at start reaches.  The
 * stack holds ASan's redzones between frames: reading them is the point. */
WF_NO_ASAN static void wf_rebase_words(uintptr_t *lo, uintptr_t *hi,
                                       const struct wf_worker *from,
                                       const struct wf_worker *to)
{
	uintptr_t base = from->tls_lo + 1, span = from->tls_hi - base;
	uintptr_t delta = to->tls_lo - from->tls_lo;
	for (uintptr_t *p = lo; p < hi; p++) {
		uintptr_t v = *p;
		if (wf_unlikely(v - base < span))
			*p = v + delta;
	}
}

/* The same under valgrind: memcheck reports a comparison of a word it
 * holds undefined (padding, a local never written), and the scan compares
 * every word.  A TLS address the thread kept is a value it computed, so
 * fully defined: the words memcheck says are not are skipped, and nothing
 * is marked defined that the program did not write (docs/design.md,
 * "Valgrind"). */
static void wf_rebase_words_vg(uintptr_t *lo, uintptr_t *hi, const struct wf_worker *from,
                               const struct wf_worker *to)
{
	uintptr_t base = from->tls_lo + 1, span = from->tls_hi - base;
	uintptr_t delta = to->tls_lo - from->tls_lo;
	uintptr_t vbits[32];
	for (uintptr_t *p = lo; p < hi;) {
		size_t n = (size_t)(hi - p) < 32 ? (size_t)(hi - p) : 32;
		if (wf_vg_vbits(p, vbits, n * sizeof *p))
			for (size_t i = 0; i < n; i++)
				if (!vbits[i] && p[i] - base < span)
					p[i] += delta;
		p += n;
	}
}

void wf_migrate(struct wf_thread *t, const struct wf_worker *from, const struct wf_worker *to)
{
	uintptr_t *lo = t->sp;
	uintptr_t *hi = (uintptr_t *)((uintptr_t)t->stack.hi & ~(uintptr_t)(sizeof *hi - 1));
	if (lo && hi && lo < hi) {
		if (wf_unlikely(wf_vg_running()))
			wf_rebase_words_vg(lo, hi, from, to);
		else
			wf_rebase_words(lo, hi, from, to);
	}
	if (t->in_signal && t->sig_ctx) {
		ucontext_t *uc = t->sig_ctx;
		uc->uc_stack.ss_sp = to->altstack.ss_sp;
		uc->uc_stack.ss_size = to->altstack.ss_size;
	}
}
