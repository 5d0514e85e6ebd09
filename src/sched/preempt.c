/*
 * preempt.c — timer preemption at safe points.
 *
 * Each worker has a timer on its own kernel thread's CPU-time clock, aimed
 * at that thread (src/kthreads/worker_timer.c says why CPU time: a tick
 * never ends a system call with EINTR).  The tick's handler runs on the
 * stack of the interrupted green thread, where the kernel has already saved
 * every register.  If the interrupted PC is a safe point, the handler queues
 * the thread (with more than one worker, on the global queue: runqueue.c)
 * and switches to the next one with an ordinary wf_switch; when the thread
 * is resumed, here or on another worker (which rebases its TLS pointers
 * first, migrate.c), the switch returns, the handler returns, and
 * rt_sigreturn restores the thread exactly as it was interrupted.
 *
 * Safe points (docs/design.md, "Preemption").  Only code of the program
 * itself: the PC must lie in an executable segment of the main program and
 * outside weft's own code (which a static link puts there; the build
 * renames weft's .text to weft_text so the linker brackets it with
 * __start/__stop symbols, and
 * compiles weft with -fno-plt: a libc call from weft through a PLT stub in
 * the program's text was once taken for program code and preempted a thread
 * half-way through parking, losing it).  libc, ld.so, the vdso (called by
 * libc with locks held) and every other shared object hold locks and per-thread
 * state that a switch, and worse a migration, would corrupt (measured: 74–98 %
 * of unrestricted switches landed in malloc, heap corruption within
 * seconds).  Nor is a thread while a program signal handler runs on its
 * worker (in_handler, program_signals.c): the handler may have interrupted
 * anything.  A thread with preemption disabled, or the idle context, is not
 * preempted either.  An unsafe tick is deferred: a flag, and a one-shot retry
 * WF_RETRY_NS later, so a thread that returns to its own code now and then
 * is preempted soon after its quantum; weft_preempt_enable honours a pending
 * tick.  Known limit: a thread that almost never leaves libc is preempted
 * only when a retry happens to land in its own code (measured at a 1 ms
 * quantum: back-to-back 4 KiB memsets held a worker up to 53 ms, 64 KiB
 * memsets up to 680 ms).
 *
 * The signal mask.  In the handler the kernel blocks the tick signal for
 * this kernel thread; a thread resumed here that is not itself returning
 * into a handler (it yielded, blocked or is new) would otherwise run with
 * ticks blocked.  The worker remembers that its mask blocks the signal
 * (WF_RESUME_UNBLOCK in w->resume) and the resumed side unblocks it; a
 * thread returning into a handler leaves it to rt_sigreturn, which
 * restores its saved mask.
 *
 * Paying only for needed ticks.  A worker's timer is armed only while it
 * has a competitor: a thread in its run queue (wf_preempt_note_ready) or a
 * deadline in its timer heap, which is then also the time of the next tick
 * (wake-ups on time, not a quantum late).  A tick that finds neither
 * disarms it.
 *
 * Rejected: switching wherever the PC is (heap corruption, see above); a
 * CLOCK_MONOTONIC tick (ends system calls with EINTR; worker_timer.c);
 * one process-wide timer (ticks land on arbitrary workers); a cooperative
 * check in weft calls only (a spinning thread never calls weft).
 */
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "sched_internal.h"
#include "trace.h"
#include "../context/sigctx.h"

#define WF_RETRY_NS   50000ull   /* retry of a deferred tick */
#define WF_MAX_RANGES 8

extern char __start_weft_text[] __attribute__((weak));
extern char __stop_weft_text[] __attribute__((weak));

static struct { uintptr_t lo, hi; } wf_app[WF_MAX_RANGES];
static int wf_napp;
static uint64_t wf_quantum_ns;
static int wf_sig;

/* Add [lo,hi) minus weft's own code. */
static void wf_app_add(uintptr_t lo, uintptr_t hi)
{
	uintptr_t wlo = (uintptr_t)__start_weft_text, whi = (uintptr_t)__stop_weft_text;
	if (wlo && whi > wlo && wlo < hi && whi > lo) {
		wf_app_add(lo, wlo > lo ? wlo : lo);
		wf_app_add(whi < hi ? whi : hi, hi);
		return;
	}
	if (lo < hi && wf_napp < WF_MAX_RANGES) {
		wf_app[wf_napp].lo = lo;
		wf_app[wf_napp].hi = hi;
		wf_napp++;
	}
}

/* The main program is the first object listed.  Not the vdso, although its
 * code is pure: a switch there is as safe as its caller, and libc calls it
 * internally (time, gettimeofday) with its own locks held. */
static int wf_app_phdr(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size; (void)data;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X))
			wf_app_add(info->dlpi_addr + ph->p_vaddr,
			           info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
	}
	return 1;  /* the main program only */
}

static bool wf_pc_is_app(uintptr_t pc)
{
	for (int i = 0; i < wf_napp; i++)
		if (pc >= wf_app[i].lo && pc < wf_app[i].hi)
			return true;
	return false;
}

static void wf_sig_unblock(void)
{
	uint64_t set = 1ull << (wf_sig - 1);
	syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, sizeof set);
}

/* The context that resumes on w: fix the mask if a handler left it blocked
 * and this context will not return through rt_sigreturn; then the masks
 * and signals of one thread (signals.c), once they are in use.  Both in
 * one load, on every switch: the test is inline (sched_internal.h), this
 * is its rare half. */
void wf_preempt_resumed_slow(struct wf_worker *w, struct wf_thread *self, uint16_t r)
{
	if (r & WF_RESUME_UNBLOCK) {
		atomic_fetch_and_explicit(&w->resume, (uint16_t)~WF_RESUME_UNBLOCK,
		                          memory_order_relaxed);
		if (!self->in_signal)
			wf_sig_unblock();
	}
	if (r & WF_RESUME_SIGNALS)
		wf_sig_resumed(w, self);
}

static inline void wf_tick_leaves_blocked(struct wf_worker *w)
{
	atomic_fetch_or_explicit(&w->resume, WF_RESUME_UNBLOCK, memory_order_relaxed);
}

/* The timer of w is needed: arm it if it is not.  Any worker may call. */
void wf_preempt_note_ready(struct wf_worker *w)
{
	if (!wf_quantum_ns || wf_worker_main_only(w))   /* no timer there */
		return;
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&w->timer_armed, memory_order_relaxed))
		return;
	uint32_t z = 0;
	if (!atomic_compare_exchange_strong(&w->timer_armed, &z, 1))
		return;
	/* A deadline of w due within the quantum (an idle worker leaves its
	 * timer aimed at it, flag clear) keeps its tick. */
	uint64_t first = wf_quantum_ns, dl = atomic_load(&w->next_deadline);
	if (dl != UINT64_MAX) {
		uint64_t now = wf_clock_ns();
		if (dl < now + wf_quantum_ns)
			first = dl > now + WF_RETRY_NS ? dl - now : WF_RETRY_NS;
	}
	wf_worker_timer_arm(&w->timer, first, wf_quantum_ns);
}

/* w (the caller's worker) got a new deadline: tick no later than it.
 * `now` is the caller's clock reading (the parker has just taken one). */
void wf_preempt_note_deadline(struct wf_worker *w, uint64_t deadline, uint64_t now)
{
	if (!wf_quantum_ns || wf_worker_main_only(w))   /* its idle loop keeps it */
		return;
	uint64_t in = deadline > now ? deadline - now : 1000;
	if (atomic_load_explicit(&w->timer_armed, memory_order_relaxed) &&
	    w->timer_due > now && w->timer_due <= deadline)
		return;  /* a tick is already due in time */
	atomic_store(&w->timer_armed, 1);
	w->timer_due = in < wf_quantum_ns ? deadline : now + wf_quantum_ns;
	wf_worker_timer_arm(&w->timer, in < wf_quantum_ns ? in : wf_quantum_ns, wf_quantum_ns);
}

/* w's handler has just disarmed its timer.  If another thread asked for a
 * tick meanwhile (wf_preempt_soon, to make an asynchronous cancellation
 * act), its arm may have come before the disarm and been undone: tick at
 * once.  Dekker: wf_preempt_soon stores tick_soon and then arms; the
 * handler disarms and then takes tick_soon (both seq_cst, and the arm and
 * disarm are system calls), so either the arm comes after the disarm or
 * the flag is seen here.  A flag left over from a tick that came anyway
 * costs one early tick.  Without it, under qemu-user, about 1 run in 50
 * of an asynchronous cancellation of a spinner on 2 workers hung in the
 * join, its spinner never ticked again. */
static bool wf_preempt_soon_lost(struct wf_worker *w)
{
	if (!atomic_exchange(&w->tick_soon, 0))
		return false;
	atomic_store(&w->timer_armed, 1);
	wf_worker_timer_arm(&w->timer, 1, wf_quantum_ns);
	return true;
}

/* Nothing competes for w: stop ticking, unless something arrived meanwhile
 * (Dekker with wf_preempt_note_ready: disarm, publish, re-check). */
static void wf_preempt_quiet(struct wf_worker *w)
{
	uint64_t dl = atomic_load(&w->next_deadline);
	if (dl != UINT64_MAX) {
		uint64_t now = wf_clock_ns();
		/* A deadline already due is the idle loop's to run (it checks
		 * before sleeping); re-arming at 1 µs here livelocked the worker
		 * in back-to-back ticks. */
		uint64_t in = dl > now ? dl - now : wf_quantum_ns;
		w->timer_due = dl;
		wf_worker_timer_arm(&w->timer, in < wf_quantum_ns ? in : wf_quantum_ns, wf_quantum_ns);
		return;
	}
	wf_worker_timer_arm(&w->timer, 0, 0);
	w->timer_due = 0;
	atomic_store(&w->timer_armed, 0);
	if (wf_preempt_soon_lost(w))
		return;
	if (atomic_load(&w->rq_len) || !wf_gq_empty())
		wf_preempt_note_ready(w);
}

/* A tick found w idle.  Its scheduler sleeps until the earliest deadline by
 * itself, so an idle worker needs no periodic ticks (with them, a sleeping
 * "main" kept every idle worker ticking once per quantum).  Leave one tick,
 * at that deadline, in case the scheduler meanwhile starts a thread (a
 * stolen one, say) that would run past it, and clear timer_armed all the
 * same so that a competitor queued later re-arms at the quantum.  Order:
 * timer first, then the flag, then the re-check (Dekker with
 * wf_preempt_note_ready, as in wf_preempt_quiet). */
static void wf_preempt_idle(struct wf_worker *w)
{
	uint64_t dl = atomic_load(&w->next_deadline);
	if (dl == UINT64_MAX) {
		wf_worker_timer_arm(&w->timer, 0, 0);
	} else {
		uint64_t now = wf_clock_ns();
		wf_worker_timer_arm(&w->timer, dl > now + WF_RETRY_NS ? dl - now : WF_RETRY_NS,
		                    wf_quantum_ns);
	}
	w->timer_due = 0;
	atomic_store(&w->timer_armed, 0);
	if (wf_preempt_soon_lost(w))
		return;
	if (atomic_load(&w->rq_len) || !wf_gq_empty())
		wf_preempt_note_ready(w);
}

/* At a tick that may switch: wake w's due sleepers, and if the next
 * deadline comes before the next periodic tick, tick at it instead.  The
 * periodic tick alone would wake a sleeper whose sleep is longer than a
 * quantum up to a quantum late. */
static int wf_preempt_deadlines(struct wf_worker *w)
{
	uint64_t now = wf_clock_ns();
	int woken = wf_timer_run(w, now);
	uint64_t dl = atomic_load_explicit(&w->next_deadline, memory_order_relaxed);
	if (dl != UINT64_MAX && dl < now + wf_quantum_ns) {
		w->timer_due = dl;
		wf_worker_timer_arm(&w->timer, dl > now + WF_RETRY_NS ? dl - now : WF_RETRY_NS,
		                    wf_quantum_ns);
	}
	return woken;
}

/* Under valgrind, a signal frame is valgrind's own: besides the kernel's
 * ucontext it holds the whole guest state, and its rt_sigreturn restores
 * that state, thread pointer (fs base) included, on whatever kernel thread
 * returns through it.  Memcheck holds that part undefined, so the rebase of
 * a thread that moves (migrate.c) would skip it and the thread would come
 * back with its old worker's thread pointer.  Mark the frame, from the
 * ucontext up to the interrupted stack pointer's red zone, defined: it is
 * valgrind's bookkeeping, not the program's data (docs/design.md,
 * "Valgrind"). */
static void wf_vg_frame_defined(void *ucv)
{
	if (wf_likely(!wf_vg_running()))
		return;
	uintptr_t sp = wf_sigctx_sp(ucv) - WF_SIGCTX_RED_ZONE;
	if (sp > (uintptr_t)ucv)
		wf_vg_defined(ucv, sp - (uintptr_t)ucv);
}

static void wf_tick(int sig, siginfo_t *si, void *ucv)
{
	struct wf_worker *w = wf_worker_self();
	if (!w || si->si_code != SI_TIMER || si->si_value.sival_ptr != w) {
		/* Not weft's tick (alarm(), kill): the program's action, as
		 * without weft; its default terminates. */
		wf_signal_pass(sig, si, ucv);
		return;
	}
	int saved_errno = *w->errno_loc;
	struct wf_thread *cur = w->current;
	WF_STAT_INC(w, ticks);
	if (cur->kind == WF_KIND_IDLE) {
		wf_preempt_idle(w);
		goto out;
	}
	uintptr_t pc = wf_sigctx_pc(ucv);
	if (cur->preempt_off || w->in_handler || !wf_pc_is_app(pc)) {
		WF_STAT_INC(w, deferred_ticks);
		w->tick_pending = 1;
		w->timer_due = 0;
		wf_worker_timer_arm(&w->timer, WF_RETRY_NS, wf_quantum_ns);
		goto out;
	}
	w->tick_pending = 0;
	w->timer_due = 0;
	if (wf_unlikely(atomic_load_explicit(&cur->cancel_req, memory_order_relaxed))) {
		/* A safe point: an asynchronous cancellation acts here (cancel.c),
		 * leaving this handler for good (the next thread on w unblocks
		 * the signal, as after a switch in it). */
		wf_tick_leaves_blocked(w);
		wf_cancel_async_check(w, cur);
		atomic_fetch_and_explicit(&w->resume, (uint16_t)~WF_RESUME_UNBLOCK,
		                          memory_order_relaxed);
	}
	if (wf_worker_retaken(w)) {
		/* Back from the kernel after the monitor gave this worker's
		 * place away (standby.c): the thread goes to the others. */
		cur->sig_ctx = ucv;
		cur->in_signal = 1;
		wf_vg_frame_defined(ucv);
		wf_tick_leaves_blocked(w);
		wf_gq_push(cur);
		w = wf_switch(w, cur, w->idle, WF_PREV_SAVED, NULL);
		cur->in_signal = 0;
		goto out;
	}
	int woken = 0;
	if (atomic_load_explicit(&w->next_deadline, memory_order_relaxed) != UINT64_MAX)
		woken = wf_preempt_deadlines(w);
	/* Marked before it is queued: whoever resumes it, here or on another
	 * worker (migrate.c), finds its signal frame. */
	cur->sig_ctx = ucv;   /* where it was interrupted */
	cur->in_signal = 1;
	wf_vg_frame_defined(ucv);
	struct wf_thread *next = wf_rt.nworkers > 1 || !wf_gq_empty()
	                         ? wf_rq_preempt_rotate(w, cur, woken > 0) : wf_rq_rotate(w, cur);
	if (!next) {
		cur->in_signal = 0;
		wf_preempt_quiet(w);
		goto out;
	}
	WF_STAT_INC(w, preemptions);
	/* Past the safe-point check: the interrupted code is the program's,
	 * so no trace append of this worker is half done (trace.c). */
	if (wf_tracing())
		wf_trace_preempt(w, cur);
	wf_tick_leaves_blocked(w);
	w = wf_switch(w, cur, next, WF_PREV_SAVED, NULL);
	cur->in_signal = 0;
out:
	*w->errno_loc = saved_errno;
}

void wf_preempt_pending(struct wf_thread *self)
{
	struct wf_worker *w = wf_worker_self();
	if (w && w->tick_pending && !self->preempt_off) {
		w->tick_pending = 0;
		wf_yield_internal();
	}
}

int wf_preempt_init(void)
{
	wf_quantum_ns = wf_rt.cfg.quantum_us * 1000ull;
	wf_sig = wf_rt.cfg.preempt_signal;
	if (!wf_quantum_ns)
		return 0;
	dl_iterate_phdr(wf_app_phdr, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = wf_tick;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	int e = wf_signal_own(wf_sig, &sa);
	if (e)
		return e;
	for (int i = 0; i < wf_rt.nworkers; i++) {
		int e = wf_preempt_timer_create(&wf_rt.workers[i]);
		if (e)
			return e;
	}
	return 0;
}

/* w's tick timer (w's kernel thread is up and published its tid). */
int wf_preempt_timer_create(struct wf_worker *w)
{
	if (!wf_quantum_ns)
		return 0;
	return wf_worker_timer_create(&w->timer, w->tid, wf_sig, w);
}

/* The monitor retook w while w sat in the kernel: tick w as soon as it
 * runs again (its CPU clock is still), so that it hands its thread over
 * within a kernel tick of coming back.  Any thread may call. */
void wf_preempt_soon(struct wf_worker *w)
{
	if (!wf_quantum_ns || wf_worker_main_only(w))
		return;
	atomic_store(&w->tick_soon, 1);   /* before the arm: wf_preempt_soon_lost */
	atomic_store(&w->timer_armed, 1);
	wf_worker_timer_arm(&w->timer, 1, wf_quantum_ns);
}
