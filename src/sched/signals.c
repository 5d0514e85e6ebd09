/*
 * signals.c — signals for one green thread: weft_kill, a mask per green
 * thread (weft_sigmask), and process-directed signals given to a green
 * thread that does not block them.
 *
 * The problem.  The kernel knows only workers.  It delivers a signal to a
 * worker's kernel thread, and the handler runs on whatever green thread that
 * worker runs; a mask set with pthread_sigmask stays with the worker when
 * the green thread moves on.  A program written for threads wants to
 * signal one thread (pthread_kill) and to block signals in some threads.
 *
 * The approach.  Everything is built on the one place where weft already
 * sees every program handler run: wf_sig_enter, which wraps each handler
 * the program installs (program_signals.c).  A signal for a green thread is
 * recorded in its TCB (sig_pending) and carried by the kernel: the thread,
 * while it runs, sends the signal to its own kernel thread, or a sender
 * sends it to the kernel thread of the worker running the target.  The
 * kernel then delivers it exactly as it delivers any signal (the program's
 * flags and sa_mask, SA_RESETHAND, an interrupted system call, a real
 * siginfo and ucontext), and wf_sig_enter runs the handler if the thread
 * it names is the one running there, or leaves it pending for that thread
 * otherwise.  Such a "carrier" is told from any other delivery by its
 * siginfo: si_code SI_QUEUE from this process, a weft mark in si_errno
 * (and in si_uid, for qemu-user, which hands the handler si_errno 0), and
 * the target's handle as si_value (the program's handler is shown
 * SI_TKILL, si_errno 0, the real uid and no value, as from pthread_kill;
 * the kernel accepts SI_TKILL from the thread group leader only).  The
 * target's pending bit is cleared only where its handler runs, so a signal
 * runs once however many carriers were sent for it: the kernel keeps one
 * pending instance of a signal below SIGRTMIN per thread and drops the
 * others, whichever sender they came from.  A queued target gets its
 * signals when it is next switched to; a target parked in a wait that
 * signals interrupt is woken (park.c, wf_interrupt) and gets them as it
 * resumes.
 *
 * Masks.  A thread's mask is kept as its difference from the default mask
 * (wf_sig_base, the mask of the thread that initialized weft, which every
 * worker starts with), so a new TCB, zeroed, has the default.  A worker's
 * kernel mask is the mask of the thread it runs: at a switch to a thread
 * whose mask differs from the one in the kernel (w->kmask_x), the switch
 * sets it (one rt_sigprocmask).  When no thread ever had a mask of its
 * own, and no signal was ever sent to a thread, a switch pays nothing: the
 * hook's flag (WF_RESUME_SIGNALS) shares the word the switch already tests
 * for the tick's mask (wf_preempt_resumed), and no system call is made.  A
 * thread returning into the tick handler gets its mask back from
 * rt_sigreturn.
 * Idle contexts use the default mask, so that a process-directed signal
 * finds a kernel thread even when every green thread is parked; weft's own
 * signals (the tick's, SIGSEGV, the dump signal) are never blocked in the
 * kernel by a thread's mask, only for the program's handlers.
 *
 * Process-directed signals.  The kernel gives one to a kernel thread that
 * does not block it.  If that worker runs a green thread that does not
 * block it either (its kernel mask is the thread's), the handler runs
 * there.  If the worker is idle, or the signal is one of weft's own that
 * the running thread blocks, wf_sig_enter records it in wf_sig_proc, and
 * an idle worker's loop (or the next switch anywhere) gives it to a green
 * thread that does not block it: the thread being switched to, or one
 * found in the TCB table (running first, then queued, then parked).  One
 * that every thread blocks waits in wf_sig_held until a thread unblocks it.
 *
 * Rejected: delivering by calling the handler directly (a second mechanism
 * beside the kernel's, with a made-up siginfo and ucontext, no sa_mask, no
 * interrupted system call); a kick signal of weft's own (steals a signal
 * number from the program); saving and restoring the mask at every switch
 * (swapcontext's system call per switch, ~1 us against ~10 ns).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "sched_internal.h"

_Atomic uint32_t wf_sig_active;
uint64_t wf_sig_base;
static uint64_t wf_sig_weft;        /* never blocked in the kernel by a mask */
static uint64_t wf_sig_unblockable; /* never blocked at all */
pid_t wf_sig_pid;
_Atomic uint64_t wf_sig_proc;         /* process signals to give to a thread */
_Atomic uint64_t wf_sig_held;         /* ... that every thread blocked */

#define WF_SIGBIT(sig) (1ull << ((sig) - 1))

/* --- masks ------------------------------------------------------------- */

/* Signals t blocks (bit sig-1), for the program's handlers. */
static inline uint64_t wf_sig_blocked_by(const struct wf_thread *t)
{
	return wf_sig_base ^ t->sigmask_x;
}

bool wf_sig_deliverable(struct wf_thread *t)
{
	return atomic_load(&t->sig_pending) & ~wf_sig_blocked_by(t);
}

/* The kernel mask of a worker whose thread has mask difference x: the
 * default, with the thread's differences except on weft's own signals. */
static inline uint64_t wf_sig_kernel_mask(uint64_t x)
{
	return wf_sig_base ^ (x & ~wf_sig_weft);
}

static void wf_sig_setmask_raw(uint64_t m)
{
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &m, NULL, sizeof m);
}

void wf_sig_init(int preempt_sig, int dump_sig)
{
	uint64_t cur = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &cur, sizeof cur);
	wf_sig_base = cur;
	wf_sig_unblockable = WF_SIGBIT(SIGKILL) | WF_SIGBIT(SIGSTOP) |
	                     WF_SIGBIT(32) | WF_SIGBIT(33);   /* glibc's own */
	wf_sig_weft = wf_sig_unblockable | WF_SIGBIT(SIGSEGV) | WF_SIGBIT(preempt_sig);
	if (dump_sig)
		wf_sig_weft |= WF_SIGBIT(dump_sig);
	wf_sig_pid = getpid();
}

void wf_sig_worker_start(struct wf_worker *w)
{
	/* Its kernel thread has just taken the default mask (runtime.c,
	 * worker_mask: the mask wf_sig_base was read from). */
	w->kmask_x = 0;
}

void wf_sig_worker_added(struct wf_worker *w)
{
	if (atomic_load(&wf_sig_active))
		atomic_fetch_or(&w->resume, WF_RESUME_SIGNALS);
}

/* --- sending --------------------------------------------------------------- */

/* Raise a flag for good (wf_intr_used, wf_sig_active): 0 -> 1 -> 2, the
 * raiser making the process-wide barrier that lets readers skip a fence
 * until then (park.c); later raisers wait until it is made. */
void wf_flag_raise(_Atomic uint32_t *f)
{
	if (wf_likely(atomic_load_explicit(f, memory_order_acquire) == 2))
		return;
	uint32_t z = 0;
	if (atomic_compare_exchange_strong(f, &z, 1)) {
		if (f == &wf_sig_active) {
			/* Every worker's switches run the hook from now on; a
			 * worker added meanwhile sets its own (Dekker, both
			 * seq_cst: wf_sig_worker_added). */
			for (int i = 0, n = wf_nkthreads(); i < n; i++)
				atomic_fetch_or(&wf_rt.workers[i].resume, WF_RESUME_SIGNALS);
		}
		wf_barrier_all();
		atomic_store(f, 2);
		return;
	}
	unsigned spins = 0;
	while (atomic_load_explicit(f, memory_order_acquire) != 2)
		wf_spin_backoff(&spins);
}

/* A carrier's marks: si_errno, and si_uid for the kernels that do not
 * carry si_errno to the handler (qemu-user hands it 0: docs/design.md,
 * "Signals to one thread"). */
#define WF_CARRIER 0x77660001
#define WF_CARRIER_UID 0x77660001u

static bool wf_sig_is_carrier(const siginfo_t *si)
{
	return si->si_code == SI_QUEUE && si->si_pid == wf_sig_pid &&
	       (si->si_errno == WF_CARRIER ||
	        (si->si_errno == 0 && si->si_uid == WF_CARRIER_UID));
}

/* Send sig to kernel thread tid as a carrier for green thread h. */
static void wf_sig_carry(pid_t tid, int sig, weft_t h)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = sig;
	si.si_errno = WF_CARRIER;
	/* SI_QUEUE: the kernel takes SI_TKILL from the thread group leader
	 * only; the program's handler is shown SI_TKILL (wf_sig_route). */
	si.si_code = SI_QUEUE;
	si.si_pid = wf_sig_pid;
	si.si_uid = WF_CARRIER_UID;
	si.si_value.sival_ptr = (void *)h;
	int e = errno;
	syscall(SYS_rt_tgsigqueueinfo, wf_sig_pid, tid, sig, &si);
	errno = e;
}

/* Give sig to t (t->lk held, or t found live and checked by the caller's
 * lookup), not the caller: record it, and make sure t gets it while it
 * runs (the header essay). */
static void wf_sig_send(struct wf_thread *t, int sig)
{
	uint64_t bit = WF_SIGBIT(sig);
	wf_flag_raise(&wf_intr_used);
	wf_flag_raise(&wf_sig_active);
	atomic_fetch_or(&t->sig_pending, bit);   /* seq_cst: before the looks below */
	if (wf_sig_blocked_by(t) & bit)
		return;   /* weft_sigmask delivers it when t unblocks it */
	if (wf_interrupt(t, WF_INTR_SIGNAL, sig))
		return;   /* it gets it as it resumes */
	struct wf_worker *tw = __atomic_load_n(&t->worker, __ATOMIC_RELAXED);
	if (t->state == WF_RUNNING && tw && tw != wf_worker_self())
		wf_sig_carry(atomic_load(&tw->tid), sig, wf_tcb_handle(t));
	/* Queued, or parked in a wait signals do not end: at its next switch
	 * to it (wf_sig_resumed), which reads sig_pending after it has
	 * published RUNNING (Dekker with the fetch_or above). */
}

/* The caller, a green thread, gets every signal pending for it that it
 * does not block, and the waiting process signals it does not block: each
 * is sent to its own kernel thread and delivered before this returns (or,
 * if the kernel mask blocks it just now, when the mask is restored).  The
 * pending bit stays set until wf_sig_route clears it as it runs the
 * handler: a carrier sent by another thread for the same signal may be in
 * flight, and the kernel merges the two into one delivery, whichever
 * siginfo it keeps.  A signal whose action is no handler any more is
 * cleared here and left to the kernel (default action, or ignored). */
void wf_sig_deliver(struct wf_thread *self)
{
	uint64_t mask = wf_sig_blocked_by(self);
	uint64_t p = (atomic_load(&wf_sig_proc) | atomic_load(&wf_sig_held)) & ~mask;
	while (p) {
		uint64_t bit = p & -p;
		p &= ~bit;
		if ((atomic_fetch_and(&wf_sig_proc, ~bit) & bit) ||
		    (atomic_fetch_and(&wf_sig_held, ~bit) & bit))
			atomic_fetch_or(&self->sig_pending, bit);
	}
	uint64_t d = atomic_load(&self->sig_pending) & ~mask;
	pid_t tid = atomic_load(&wf_worker_self()->tid);
	while (d) {
		uint64_t bit = d & -d;
		d &= ~bit;
		int sig = __builtin_ctzll(bit) + 1;
		if (!wf_signal_has_handler(sig) &&
		    !(atomic_fetch_and(&self->sig_pending, ~bit) & bit))
			continue;
		wf_sig_carry(tid, sig, wf_tcb_handle(self));
	}
}

int wf_sig_interrupted(struct wf_thread *self)
{
	uint64_t d = atomic_load(&self->sig_pending) & ~wf_sig_blocked_by(self);
	int sig = self->intr_sig;
	self->intr_sig = 0;
	/* The handlers that end the wait: the interrupter's signal (whose
	 * handler may have run already, at the switch back to self), and
	 * those about to run.  A restart needs them all to ask for it. */
	bool any = sig != 0, restart = !sig || wf_signal_restarts(sig);
	for (uint64_t b = d; b; b &= b - 1) {
		any = true;
		restart = restart && wf_signal_restarts(__builtin_ctzll(b) + 1);
	}
	if (d)
		wf_sig_deliver(self);
	return any && restart ? 0 : EINTR;
}

/* A process signal no green thread took yet: to one that does not block
 * it, preferring a running one, then a queued one, then a parked one.
 * False when every green thread blocks it. */
static bool wf_sig_to_some_thread(int sig)
{
	static const uint8_t order[] = { WF_RUNNING, WF_READY, WF_BLOCKED };
	uint64_t bit = WF_SIGBIT(sig);
	for (unsigned pass = 0; pass < sizeof order; pass++) {
		for (uint32_t i = 0, n = wf_tcb_slots(); i < n; i++) {
			struct wf_thread *t = wf_tcb_at(i);
			/* A racy look first (TCBs are never freed), the lock after. */
			if (!t || t->state != order[pass] || t->kind == WF_KIND_IDLE ||
			    (wf_sig_blocked_by(t) & bit))
				continue;
			weft_t h = wf_tcb_handle(t);
			if (!(t = wf_tcb_lock_handle(h)))
				continue;
			bool ok = t->state != WF_DONE && !(wf_sig_blocked_by(t) & bit);
			if (ok) {
				if (t == wf_current())
					atomic_fetch_or(&t->sig_pending, bit);
				else
					wf_sig_send(t, sig);
			}
			wf_spin_unlock(&t->lk);
			if (ok)
				return true;
		}
	}
	return false;
}

/* Give out the process signals that landed where they could not run.
 * Normal context only (an idle worker's loop, a switch). */
void wf_sig_distribute(void)
{
	uint64_t p;
	while ((p = atomic_load(&wf_sig_proc))) {
		uint64_t bit = p & -p;
		if (!(atomic_fetch_and(&wf_sig_proc, ~bit) & bit))
			continue;
		if (!wf_sig_to_some_thread(__builtin_ctzll(bit) + 1)) {
			/* Every thread blocks it, or the one that does not was
			 * between two states while we looked: the next switch to
			 * a thread that does not block it takes it. */
			atomic_fetch_or(&wf_sig_held, bit);
			wf_flag_raise(&wf_sig_active);
		}
	}
}

/* --- from the handler wrapper (program_signals.c) ------------------------ */

/* Fault signals go to the thread that faulted, whatever its mask. */
static bool wf_sig_synchronous(int sig, const siginfo_t *si)
{
	return si->si_code > 0 && (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE ||
	                           sig == SIGILL || sig == SIGTRAP || sig == SIGSYS);
}

/* A carrier that arrived where its target is not running.  The signal is
 * still pending for the target (its bit is cleared only where the handler
 * runs): re-send it if the target runs elsewhere now, else the target gets
 * it at its next switch.  Async-signal-safe: no lock, the TCB is read
 * racily (never freed) and checked by its generation. */
static void wf_sig_missed(struct wf_worker *w, int sig, weft_t h)
{
	struct wf_thread *t = wf_tcb_lookup(h);
	if (!t || !(atomic_load(&t->sig_pending) & WF_SIGBIT(sig)))
		return;
	struct wf_worker *tw = __atomic_load_n(&t->worker, __ATOMIC_RELAXED);
	if (t->state == WF_RUNNING && tw && tw != w)
		wf_sig_carry(atomic_load(&tw->tid), sig, h);
}

bool wf_sig_route(int sig, siginfo_t *si, bool handler)
{
	struct wf_worker *w = wf_worker_self();
	if (!w)
		return true;   /* a kernel thread that is not a worker */
	struct wf_thread *cur = w->current;
	bool green = cur->kind != WF_KIND_IDLE;
	if (wf_sig_is_carrier(si)) {
		weft_t h = (weft_t)si->si_value.sival_ptr;
		/* What pthread_kill would have shown. */
		si->si_errno = 0;
		si->si_code = SI_TKILL;
		si->si_uid = getuid();
		si->si_value.sival_ptr = NULL;
		/* Run it here if it is still pending: each pending signal runs
		 * once, whichever of its carriers (merged or not) gets here. */
		if (green && wf_tcb_handle(cur) == h)
			return atomic_fetch_and(&cur->sig_pending, ~WF_SIGBIT(sig)) & WF_SIGBIT(sig);
		wf_sig_missed(w, sig, h);
		if (green && wf_sig_deliverable(cur))
			wf_sig_deliver(cur);   /* a carrier of its own may have merged with this one */
		return false;
	}
	if (!handler || wf_sig_synchronous(sig, si))
		return true;
	if (green && !(wf_sig_blocked_by(cur) & WF_SIGBIT(sig)))
		return true;
	/* An idle worker, or one of weft's signals that cur blocks: a thread
	 * that does not block it gets it (wf_sig_distribute). */
	atomic_fetch_or(&wf_sig_proc, WF_SIGBIT(sig));
	wf_kick_idle();   /* idle loops poll wf_sig_proc; lock-free */
	return false;
}

/* --- at a switch (dispatch.c, when wf_sig_active) ------------------------- */

void wf_sig_resumed(struct wf_worker *w, struct wf_thread *self)
{
	int e = errno;
	bool green = self->kind != WF_KIND_IDLE;
	uint64_t x = green ? self->sigmask_x : 0;
	if (wf_sig_kernel_mask(x) != wf_sig_kernel_mask(w->kmask_x)) {
		/* A thread returning into the tick handler gets its mask from
		 * rt_sigreturn: its signal frame saved it on its last worker. */
		if (!self->in_signal)
			wf_sig_setmask_raw(wf_sig_kernel_mask(x));
	}
	w->kmask_x = x;
	if (!green) {
		if (atomic_load_explicit(&wf_sig_proc, memory_order_relaxed))
			wf_sig_distribute();
		errno = e;
		return;
	}
	/* Dekker with wf_sig_send: RUNNING (written by the switch) before the
	 * look at sig_pending. */
	atomic_thread_fence(memory_order_seq_cst);
	if (self->in_signal)
		wf_cancel_async_check(w, self);   /* resumed at a safe point */
	uint64_t mask = wf_sig_blocked_by(self);
	if ((atomic_load_explicit(&self->sig_pending, memory_order_relaxed) |
	     atomic_load_explicit(&wf_sig_proc, memory_order_relaxed) |
	     atomic_load_explicit(&wf_sig_held, memory_order_relaxed)) & ~mask)
		wf_sig_deliver(self);
	errno = e;
}

/* --- the public calls --------------------------------------------------- */

int weft_kill(weft_t h, int sig)
{
	if (sig < 0 || sig >= 65 || sig == 32 || sig == 33)
		return EINVAL;
	struct wf_thread *t = wf_tcb_lock_handle(h);
	if (!t)
		return ESRCH;
	if (sig == 0 || t->state == WF_DONE) {
		wf_spin_unlock(&t->lk);
		return 0;
	}
	if (!wf_signal_has_handler(sig)) {
		/* Default action or ignored: it concerns the whole process. */
		wf_spin_unlock(&t->lk);
		int e = errno;
		kill(wf_sig_pid, sig);
		errno = e;
		return 0;
	}
	struct wf_thread *self = wf_current();
	if (t == self) {
		wf_flag_raise(&wf_sig_active);
		atomic_fetch_or(&t->sig_pending, WF_SIGBIT(sig));
	} else {
		wf_sig_send(t, sig);
	}
	wf_spin_unlock(&t->lk);
	if (t == self)
		wf_sig_deliver(self);
	return 0;
}

static uint64_t wf_sigset_bits(const sigset_t *s)
{
	uint64_t b = 0;
	for (int sig = 1; sig < 65; sig++)
		if (sigismember(s, sig) == 1)
			b |= WF_SIGBIT(sig);
	return b;
}

int weft_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	if (set && how != SIG_BLOCK && how != SIG_UNBLOCK && how != SIG_SETMASK)
		return EINVAL;
	struct wf_thread *self = wf_self_init();
	if (!self)
		return EPERM;
	uint64_t cur = wf_sig_blocked_by(self);
	if (old) {
		sigemptyset(old);
		for (int sig = 1; sig < 65; sig++)
			if (cur & WF_SIGBIT(sig))
				sigaddset(old, sig);
	}
	if (!set)
		return 0;
	uint64_t s = wf_sigset_bits(set) & ~wf_sig_unblockable;
	uint64_t m = how == SIG_BLOCK ? cur | s : how == SIG_UNBLOCK ? cur & ~s : s;
	uint64_t x = m ^ wf_sig_base;
	if (x)
		wf_flag_raise(&wf_sig_active);
	struct wf_worker *w = wf_worker_self();
	self->sigmask_x = x;
	if (wf_sig_kernel_mask(x) != wf_sig_kernel_mask(w->kmask_x))
		wf_sig_setmask_raw(wf_sig_kernel_mask(x));
	w->kmask_x = x;
	if (atomic_load_explicit(&wf_sig_active, memory_order_relaxed))
		wf_sig_deliver(self);
	return 0;
}

/* --- fork (fork.c) ----------------------------------------------------- */

void wf_sig_forked_child(struct wf_thread *self)
{
	wf_sig_pid = getpid();
	atomic_store(&wf_sig_proc, 0);
	atomic_store(&wf_sig_held, 0);
	if (self)
		atomic_store(&self->sig_pending, 0);   /* POSIX: none pending in a child */
}
