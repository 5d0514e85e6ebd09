/*
 * program_signals.c — the program's own signal handlers, run where weft's
 * tick cannot switch threads under them.
 *
 * The problem.  The tick switches a green thread only when it interrupted
 * the program's own code (preempt.c).  A program's signal handler is the
 * program's code too, but it may have interrupted anything: malloc, stdio,
 * weft's own switch.  A tick landing in the handler saw a safe point and
 * switched, and the next thread then found malloc's state half-updated
 * ("double free detected in tcache 2") or weft's switch half-done (a
 * worker spinning on the on_cpu flag of a thread marked preempted).
 * Measured: 8 green threads doing free(malloc(100)) while a pthread sent
 * SIGUSR1 to an empty handler crashed in 3 runs of 3 at a 100 us quantum.
 *
 * The approach.  weft owns every handler the program installs.  It
 * exports sigaction(), signal() and their old aliases, which take the
 * place of libc's for the program and the libraries it loads (a symbol of
 * a library linked before libc, or of the executable, is found first).
 * For a handler, they install wf_sig_enter in its place with the
 * program's flags and mask, and keep the program's action in a table;
 * asked, they report the program's action, never weft's.  wf_sig_enter
 * counts itself in its worker's handler depth around the program's
 * handler, and the tick does not switch while that depth is nonzero: not
 * in a handler, and so not in anything a handler interrupted.  Handlers
 * installed before weft's library was loaded, or through the raw system
 * call, are wrapped when weft starts (wf_signals_adopt).  The signals weft
 * itself handles (the tick's, SIGSEGV for the overflow report, the dump
 * signal, SIGTERM and SIGINT while tracing) keep weft's handler, which
 * passes on every delivery that is not weft's to the program's action from
 * the table (wf_signal_forward, wf_signal_pass), so a program may also
 * install its own SIGALRM handler beside weft's tick.
 *
 * Rules for handlers (docs/guide.md): a handler must not call weft
 * functions that can block or switch (yield, sleep, lock, wait, join):
 * a handler runs on whichever thread was interrupted, and switching away
 * from inside it would carry the handler's state to another worker.
 *
 * Rejected: telling a handler from its interrupted context (a signal
 * frame shows no sign that it belongs to a handler; the blocked mask is
 * the only hint, and SA_NODEFER with an empty mask leaves none); blocking
 * the tick signal in every handler's mask (still needs weft to install the
 * handler, and a handler that unblocks signals would defeat it).
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include "sched_internal.h"
#include "../kthreads/libc_real.h"

#define WF_NSIG 65

typedef int (*wf_sigaction_fn)(int, const struct sigaction *, struct sigaction *);

/*
 * The program's action for each signal, as it last set it.  Writers hold
 * wf_sig_lock with every signal blocked; the handler reads an entry under
 * its sequence number (even: stable), so it never calls a handler with
 * another handler's flags.
 */
static struct {
	_Atomic uint32_t seq;
	bool known;             /* recorded (else: what the kernel has) */
	struct sigaction act;
} wf_sig_prog[WF_NSIG];
static wf_spin_t wf_sig_lock = WF_SPIN_INIT;
static uint64_t wf_sig_owned;   /* bit per signal weft handles itself */
static wf_sigaction_fn wf_sig_real;

/* libc's sigaction: the next definition after this object's. */
static wf_sigaction_fn wf_real_sigaction(void)
{
	if (!wf_sig_real) {
		wf_sig_real = (wf_sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
		if (!wf_sig_real)
			wf_sig_real = (wf_sigaction_fn)dlsym(RTLD_DEFAULT, "__sigaction");
	}
	return wf_sig_real;
}

/* libc's pthread_sigmask (libc_real.h: not the pthread layer's).  One
 * call site, so that the constructor below resolves it: a program may call
 * sigaction from a signal handler, where the first lookup must not happen. */
static int wf_sig_mask(int how, const sigset_t *set, sigset_t *old)
{
	return WF_LIBC(pthread_sigmask)(how, set, old);
}

__attribute__((constructor)) static void wf_sig_resolve(void)
{
	wf_real_sigaction();
	wf_sig_mask(SIG_BLOCK, NULL, NULL);   /* resolves it; changes nothing */
}

int wf_sigaction_raw(int sig, const struct sigaction *act, struct sigaction *old)
{
	return wf_real_sigaction()(sig, act, old);
}

static bool wf_sig_is_handler(const struct sigaction *a)
{
	return (a->sa_flags & SA_SIGINFO) ? a->sa_sigaction != NULL
	                                  : a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN;
}

/* A copy of the program's action for sig, consistent. */
static struct sigaction wf_sig_read(int sig)
{
	struct sigaction a;
	for (;;) {
		uint32_t s = atomic_load_explicit(&wf_sig_prog[sig].seq, memory_order_acquire);
		if (s & 1)
			continue;
		memcpy(&a, &wf_sig_prog[sig].act, sizeof a);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&wf_sig_prog[sig].seq, memory_order_relaxed) == s)
			return a;
	}
}

/* Write sig's entry; false if another writer holds it (only a handler
 * resetting a one-shot action tries without the lock, and gives up). */
static bool wf_sig_try_write(int sig, const struct sigaction *a)
{
	uint32_t s = atomic_load_explicit(&wf_sig_prog[sig].seq, memory_order_relaxed);
	if ((s & 1) || !atomic_compare_exchange_strong_explicit(&wf_sig_prog[sig].seq, &s, s + 1,
	                                                        memory_order_acquire,
	                                                        memory_order_relaxed))
		return false;
	atomic_thread_fence(memory_order_release);
	memcpy(&wf_sig_prog[sig].act, a, sizeof *a);
	wf_sig_prog[sig].known = true;
	atomic_store_explicit(&wf_sig_prog[sig].seq, s + 2, memory_order_release);
	return true;
}

/* Under wf_sig_lock: the only other writer gives up at once. */
static void wf_sig_write(int sig, const struct sigaction *a)
{
	while (!wf_sig_try_write(sig, a))
		wf_cpu_relax();
}

static const struct sigaction wf_sig_dfl = { .sa_handler = SIG_DFL };

/* Run the program's handler, counted in the worker's handler depth. */
static void wf_sig_run(int sig, siginfo_t *si, void *uc, const struct sigaction *a)
{
	struct wf_worker *w = wf_worker_self();
	if (w) {
		w->in_handler++;
		atomic_signal_fence(memory_order_seq_cst);
	}
	if (a->sa_flags & SA_SIGINFO)
		a->sa_sigaction(sig, si, uc);
	else
		a->sa_handler(sig);
	if (w) {
		atomic_signal_fence(memory_order_seq_cst);
		w->in_handler--;   /* on the same kernel thread: no switch inside */
	}
}

/* The program's action for sig, taken for one delivery: a one-shot
 * action (SA_RESETHAND) becomes SIG_DFL, as the kernel does with the
 * disposition it delivers.  No lock: a handler cannot take one safely; if
 * a sigaction call is writing the entry meanwhile, its action wins. */
static struct sigaction wf_sig_take(int sig)
{
	struct sigaction a = wf_sig_read(sig);
	if (a.sa_flags & SA_RESETHAND)
		wf_sig_try_write(sig, &wf_sig_dfl);
	return a;
}

/* Every delivery of a signal the program handles comes here first: to the
 * green thread it is for (signals.c decides: it may be a carrier for a
 * thread that is not running here, or a process signal that must go to a
 * thread that does not block it).  False when weft took it over. */
static bool wf_sig_for_here(int sig, siginfo_t *si)
{
	struct sigaction a = wf_sig_read(sig);
	return wf_sig_route(sig, si, wf_sig_is_handler(&a));
}

static void wf_sig_enter(int sig, siginfo_t *si, void *uc)
{
	if (!wf_sig_for_here(sig, si))
		return;
	struct sigaction a = wf_sig_take(sig);
	if (wf_sig_is_handler(&a))
		wf_sig_run(sig, si, uc, &a);
}

bool wf_signal_forward(int sig, siginfo_t *si, void *uc)
{
	if (!wf_sig_for_here(sig, si))
		return true;
	struct sigaction a = wf_sig_take(sig);
	if (wf_sig_is_handler(&a)) {
		wf_sig_run(sig, si, uc, &a);
		return true;
	}
	return a.sa_handler == SIG_IGN;
}

/* The program's action for sig, when it is a handler: from the table, or
 * from the kernel for a signal the program never set through weft. */
static bool wf_sig_prog_handler(int sig, struct sigaction *a)
{
	if (sig <= 0 || sig >= WF_NSIG)
		return false;
	if (wf_sig_prog[sig].known)
		*a = wf_sig_read(sig);
	else if (wf_sigaction_raw(sig, NULL, a))
		return false;
	return wf_sig_is_handler(a);
}

bool wf_signal_has_handler(int sig)
{
	struct sigaction a;
	return wf_sig_prog_handler(sig, &a);
}

bool wf_signal_restarts(int sig)
{
	struct sigaction a;
	return wf_sig_prog_handler(sig, &a) && (a.sa_flags & SA_RESTART);
}

void wf_signal_default(int sig)
{
	wf_sigaction_raw(sig, &wf_sig_dfl, NULL);
}

void wf_signal_pass(int sig, siginfo_t *si, void *uc)
{
	if (!wf_signal_forward(sig, si, uc)) {
		/* The default action, as without weft: restored in the kernel and
		 * raised again; the signal is blocked while this handler runs, so
		 * it is delivered when the handler returns. */
		wf_signal_default(sig);
		raise(sig);
	}
}

bool wf_signal_ignored(int sig)
{
	struct sigaction a = wf_sig_read(sig);
	return !(a.sa_flags & SA_SIGINFO) && a.sa_handler == SIG_IGN;
}

/* What the kernel should hold for the program's action a on sig. */
static struct sigaction wf_sig_installed(const struct sigaction *a)
{
	struct sigaction k = *a;
	if (wf_sig_is_handler(a)) {
		k.sa_sigaction = wf_sig_enter;
		k.sa_flags |= SA_SIGINFO;
	}
	return k;
}

static int wf_sig_set(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sig <= 0 || sig >= WF_NSIG || sig == SIGKILL || sig == SIGSTOP)
		return wf_sigaction_raw(sig, act, old);
	sigset_t all, saved;
	sigfillset(&all);
	wf_sig_mask(SIG_SETMASK, &all, &saved);
	wf_spin_lock(&wf_sig_lock);
	int r = 0;
	struct sigaction prev;
	if (wf_sig_prog[sig].known)
		prev = wf_sig_read(sig);
	else
		r = wf_sigaction_raw(sig, NULL, &prev);
	if (!r && act) {
		if (!(wf_sig_owned & (1ull << sig))) {
			struct sigaction k = wf_sig_installed(act);
			r = wf_sigaction_raw(sig, &k, NULL);
		}
		if (!r)
			wf_sig_write(sig, act);
	}
	int e = errno;
	wf_spin_unlock(&wf_sig_lock);
	wf_sig_mask(SIG_SETMASK, &saved, NULL);
	errno = e;
	if (!r && old)
		*old = prev;
	return r ? -1 : 0;
}

/* weft installs its own handler for sig (preempt.c, overflow.c,
 * dump_signal.c): the program's action so far moves to the table, where
 * wf_signal_forward finds it; later program actions go there too. */
int wf_signal_own(int sig, const struct sigaction *weft_act)
{
	sigset_t all, saved;
	sigfillset(&all);
	wf_sig_mask(SIG_SETMASK, &all, &saved);
	wf_spin_lock(&wf_sig_lock);
	struct sigaction prev;
	int r = 0;
	if (!wf_sig_prog[sig].known && !(r = wf_sigaction_raw(sig, NULL, &prev)))
		wf_sig_write(sig, &prev);
	if (!r)
		r = wf_sigaction_raw(sig, weft_act, NULL);
	if (!r)
		wf_sig_owned |= 1ull << sig;
	int e = errno;
	wf_spin_unlock(&wf_sig_lock);
	wf_sig_mask(SIG_SETMASK, &saved, NULL);
	return r ? e : 0;
}

/* Handlers in place before weft's sigaction was ever called (installed
 * before its library was loaded, or by the raw system call): wrapped at
 * start. */
void wf_signals_adopt(void)
{
	int e = errno;   /* the reserved signals answer EINVAL */
	for (int sig = 1; sig < WF_NSIG; sig++) {
		struct sigaction cur;
		if (sig == SIGKILL || sig == SIGSTOP || wf_sig_prog[sig].known ||
		    wf_sigaction_raw(sig, NULL, &cur) || !wf_sig_is_handler(&cur) ||
		    cur.sa_sigaction == wf_sig_enter)
			continue;
		wf_sig_set(sig, &cur, NULL);
	}
	errno = e;
}

/* fork(): the table's lock is held across it (fork.c; signals are blocked
 * there meanwhile, as for every holder). */
void wf_signals_fork_lock(void) { wf_spin_lock(&wf_sig_lock); }
void wf_signals_fork_unlock(void) { wf_spin_unlock(&wf_sig_lock); }

/* ---- the interface the program sees ------------------------------------ */

WEFT_API int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	return wf_sig_set(sig, act, old);
}

static sighandler_t wf_signal_with(int sig, sighandler_t h, int flags)
{
	struct sigaction a, old;
	memset(&a, 0, sizeof a);
	a.sa_handler = h;
	a.sa_flags = flags;
	sigemptyset(&a.sa_mask);
	if (flags & SA_RESTART)   /* BSD semantics also block the signal */
		sigaddset(&a.sa_mask, sig);
	if (wf_sig_set(sig, &a, &old))
		return SIG_ERR;
	return old.sa_handler;   /* the union's other member, as glibc does */
}

/* glibc's signal(): BSD semantics. */
WEFT_API sighandler_t signal(int sig, sighandler_t h)
{
	return wf_signal_with(sig, h, SA_RESTART);
}

WEFT_API sighandler_t bsd_signal(int sig, sighandler_t h)
{
	return wf_signal_with(sig, h, SA_RESTART);
}

/* System V semantics: one-shot, not blocked while it runs. */
WEFT_API sighandler_t sysv_signal(int sig, sighandler_t h)
{
	return wf_signal_with(sig, h, SA_RESETHAND | SA_NODEFER);
}

WEFT_API sighandler_t __sysv_signal(int sig, sighandler_t h)
{
	return wf_signal_with(sig, h, SA_RESETHAND | SA_NODEFER);
}
