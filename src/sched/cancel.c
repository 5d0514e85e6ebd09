/*
 * cancel.c — cancellation, cleanup handlers, and the way out of a thread
 * (weft_exit and a cancellation both leave through wf_exit_begin).
 *
 * Deferred cancellation.  weft_cancel sets the target's cancel_req and, if
 * the target is parked in a wait that is a cancellation point, ends that
 * wait (park.c, wf_interrupt): the target resumes with EINTR from wf_park,
 * leaves the object's queue as a timed-out waiter would (so it consumes
 * nothing: a token, a grant, a signal stays for the next waiter), takes
 * back what the call holds on return (a cond wait relocks its mutex), and
 * then acts (wf_interrupted).  A request that arrives while the target
 * runs is seen by its next interruptible park, which re-checks the requests
 * after publishing its wait (park.c: Dekker, so a request never slips
 * between the look and the sleep).  Acting: the EXITING flag (no further
 * cancellation acts), the cleanup handlers, the key destructors, and the
 * thread finishes with WEFT_CANCELED.
 *
 * Cleanup handlers are records on the thread's own stack, linked from the
 * TCB by weft_cleanup_push and unlinked by weft_cleanup_pop, innermost
 * first, as musl does; pushing costs a call and two stores.  When the
 * thread finishes early (weft_exit, cancellation) they run innermost first.
 * If the process has the unwinder (libgcc_s: every C++ program, and C built
 * with -fexceptions, which need it for their own cleanups), the exit is a
 * forced unwind of the thread's frames, as glibc's pthread_exit and
 * pthread_cancel are: C++ destructors and __attribute__((cleanup))
 * handlers run, and the stop function runs each cleanup record as the
 * unwinding leaves the frame that holds it.  The stop function is called
 * for a frame before that frame's landing pads, but with its callee's CFA
 * (the frame's own lowest address): a record lies above it until the
 * unwinding reaches the frame's caller.  So within one function the
 * records run after its destructors; across functions the order is
 * innermost first (glibc runs the buffers of pthread_cleanup_push in C
 * without -fexceptions at the same moment).  At the end of the stack (the
 * thread's first frame, whose return address is undefined) it finishes the
 * thread.  Without the unwinder nothing else could run on the way, and the
 * records are run in a loop.  The exception object lives in the TCB: the
 * frames below the landing pad being run are dead and may be overwritten.
 * Under ASan the stop function also clears the redzones of the frames the
 * unwinding dropped: they never returned, and the cleanups that run next
 * reuse that part of the stack.
 *
 * Asynchronous cancellation acts at safe points only: the tick handler
 * acts when it finds the thread where it could preempt it (the program's
 * own code, preemption enabled, no program handler running: preempt.c),
 * and a thread resumed into such a tick acts on resuming (signals.c).
 * weft_cancel asks the target's worker for a tick as soon as it runs
 * (wf_preempt_soon: a CPU-time timer, which never interrupts a system
 * call).  Rejected: acting anywhere, as POSIX allows (libc and weft keep
 * locks and half-updated state that the cleanup handlers would then meet;
 * POSIX itself allows only three functions to be called with asynchronous
 * cancellation enabled); acting at every switch (a thread parked in a
 * mutex wait still holds the mutex's protocol state: its WOKEN bit, a
 * handoff); a signal of weft's own to interrupt the target (it would end
 * the target's system calls with EINTR); refusing the type (programs that
 * cancel a computing thread asynchronously would hang in their join).
 *
 * Rejected for deferred cancellation: a list of pending requests outside
 * the TCB (a lock on every cancellation point); acting at a wake-up that
 * granted something (a token or a signal would be lost with the thread).
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <unwind.h>
#include "sched_internal.h"
#ifdef WF_ASAN
#include <sanitizer/asan_interface.h>
#endif

const char weft_canceled_ = 0;

static inline uint8_t wf_cflags(const struct wf_thread *t)
{
	return atomic_load_explicit(&((struct wf_thread *)t)->cflags, memory_order_relaxed);
}

static inline void wf_cflags_set(struct wf_thread *t, uint8_t f)
{
	atomic_store_explicit(&t->cflags, f, memory_order_relaxed);
}

/* Is a cancellation of t due, whatever its type? */
static inline bool wf_cancel_due(const struct wf_thread *t)
{
	return atomic_load(&((struct wf_thread *)t)->cancel_req) &&
	       !(wf_cflags(t) & (WF_CF_DISABLED | WF_CF_EXITING));
}

static _Noreturn void wf_cancel_act(void)
{
	wf_exit_begin(WEFT_CANCELED);
}

/* --- cleanup records ------------------------------------------------------ */

void weft_cleanup_push_(weft_cleanup_ *c, void (*fn)(void *), void *arg)
{
	struct wf_thread *t = wf_current();
	c->_fn = fn;
	c->_arg = arg;
	if (wf_unlikely(!t || t->kind == WF_KIND_IDLE)) {
		c->_prev = c;   /* not linked (a kernel thread that is not green) */
		return;
	}
	c->_prev = t->cleanup;
	t->cleanup = c;
}

void weft_cleanup_pop_(weft_cleanup_ *c, int execute)
{
	struct wf_thread *t = wf_current();
	if (wf_likely(c->_prev != c) && t && t->cleanup == c)
		t->cleanup = c->_prev;
	if (execute)
		c->_fn(c->_arg);
}

/* Run, innermost first, t's records that lie below `below` (all of them
 * for UINTPTR_MAX).  Each is unlinked before it runs, so a handler that
 * finishes the thread again does not run twice. */
static void wf_cleanup_run(struct wf_thread *t, uintptr_t below)
{
	weft_cleanup_ *c;
	while ((c = t->cleanup) && (uintptr_t)c < below) {
		t->cleanup = c->_prev;
		c->_fn(c->_arg);
	}
}

/* --- the way out ------------------------------------------------------------ */

static _Noreturn void wf_exit_finish(struct wf_thread *t)
{
	wf_cleanup_run(t, UINTPTR_MAX);
	wf_thread_exit(t->ret);
}

typedef _Unwind_Reason_Code (*wf_forced_unwind_fn)(struct _Unwind_Exception *,
                                                   _Unwind_Stop_Fn, void *);
typedef _Unwind_Word (*wf_get_cfa_fn)(struct _Unwind_Context *);

/* The unwinder's entry points, if libgcc_s is in the process.  Looked up
 * (not linked: a C program must not need libgcc_s) once found for good,
 * and again after a load when not found. */
static struct {
	_Atomic(wf_forced_unwind_fn) unwind;
	_Atomic(wf_get_cfa_fn) cfa;
	_Atomic unsigned long long adds;   /* loads counted at the last miss */
} wf_unw;

static int wf_adds_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	*(unsigned long long *)data = info->dlpi_adds;
	return 1;
}

static bool wf_unwinder(void)
{
	if (atomic_load_explicit(&wf_unw.unwind, memory_order_acquire))
		return true;
	unsigned long long adds = 0;
	dl_iterate_phdr(wf_adds_cb, &adds);
	if (adds == atomic_load(&wf_unw.adds))
		return false;   /* nothing loaded since the last look */
	int e = errno;
	wf_get_cfa_fn cfa = (wf_get_cfa_fn)dlsym(RTLD_DEFAULT, "_Unwind_GetCFA");
	wf_forced_unwind_fn fu = (wf_forced_unwind_fn)dlsym(RTLD_DEFAULT, "_Unwind_ForcedUnwind");
	errno = e;
	if (!cfa || !fu) {
		atomic_store(&wf_unw.adds, adds);
		return false;
	}
	atomic_store(&wf_unw.cfa, cfa);
	atomic_store_explicit(&wf_unw.unwind, fu, memory_order_release);
	return true;
}

/* Called by the unwinder at each frame, before the frame's landing pads,
 * with the CFA of the frame below it: the records of the frames already
 * left are the ones below that CFA. */
static _Unwind_Reason_Code wf_unwind_stop(int version, _Unwind_Action actions,
                                          _Unwind_Exception_Class cls,
                                          struct _Unwind_Exception *exc,
                                          struct _Unwind_Context *ctx, void *param)
{
	(void)version; (void)cls; (void)exc;
	struct wf_thread *t = param;
	uintptr_t cfa = (uintptr_t)atomic_load(&wf_unw.cfa)(ctx);
#ifdef WF_ASAN
	/* The frames below cfa are dropped without returning: clear their
	 * redzones before code runs there again (ASan clears a frame's own
	 * only when it returns). */
	if (t->stack.lo && cfa > (uintptr_t)t->stack.lo)
		__asan_unpoison_memory_region(t->stack.lo, cfa - (uintptr_t)t->stack.lo);
#endif
	if (actions & _UA_END_OF_STACK)
		wf_exit_finish(t);
	wf_cleanup_run(t, cfa);
	return _URC_NO_REASON;
}

/* A catch (...) that did not rethrow the unwinding ended it: the thread
 * cannot carry on as if it had not been finishing (glibc aborts too). */
static void wf_unwind_dropped(_Unwind_Reason_Code code, struct _Unwind_Exception *exc)
{
	(void)code; (void)exc;
	static const char msg[] = "weft: a thread's exit unwinding was caught and not rethrown\n";
	ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)r;
	abort();
}

_Noreturn void wf_exit_begin(void *ret)
{
	struct wf_thread *t = wf_current();
	if (!t || t->kind == WF_KIND_IDLE)
		wf_thread_exit(ret);   /* says so and aborts */
	uint8_t f = wf_cflags(t);
	if (!(f & WF_CF_EXITING)) {
		t->ret = ret;
		wf_cflags_set(t, f | WF_CF_EXITING);
	}
	if (wf_unwinder()) {
		_Static_assert(sizeof t->unwind_exc >= sizeof(struct _Unwind_Exception),
		               "unwind_exc holds the exception object");
		struct _Unwind_Exception *exc = (struct _Unwind_Exception *)(void *)t->unwind_exc;
		exc->exception_class = 0x7765667400455854ull;   /* "weft\0EXT" */
		exc->exception_cleanup = wf_unwind_dropped;
		atomic_load(&wf_unw.unwind)(exc, wf_unwind_stop, t);
		/* It returned: no unwind information somewhere on the way. */
	}
	wf_exit_finish(t);
}

/* --- the public calls --------------------------------------------------- */

int weft_cancel(weft_t h)
{
	struct wf_thread *t = wf_tcb_lock_handle(h);
	if (!t)
		return ESRCH;
	if (t->state == WF_DONE) {
		wf_spin_unlock(&t->lk);
		return 0;
	}
	wf_flag_raise(&wf_intr_used);
	struct wf_thread *self = wf_current();
	uint8_t f = wf_cflags(t);
	bool async = (f & (WF_CF_ASYNC | WF_CF_DISABLED)) == WF_CF_ASYNC;
	if (async)
		wf_flag_raise(&wf_sig_active);   /* for a target resumed into a tick */
	/* Before the look at its wait (park.c's Dekker).  An exchange, not a
	 * store: a read-modify-write is a full barrier on every ISA and under
	 * qemu-user too, which turns AArch64's store-release and load-acquire
	 * into accesses an x86 host may reorder (a parked target once slept
	 * through its cancellation there). */
	atomic_exchange(&t->cancel_req, 1);
	/* Under t->lk: t cannot be reclaimed and reused meanwhile. */
	if (t != self && !wf_interrupt(t, WF_INTR_CANCEL, 0) && async) {
		struct wf_worker *tw = __atomic_load_n(&t->worker, __ATOMIC_RELAXED);
		if (t->state == WF_RUNNING && tw)
			wf_preempt_soon(tw);
	}
	wf_spin_unlock(&t->lk);
	if (t == self && async && !(f & WF_CF_EXITING))
		wf_cancel_act();
	return 0;
}

/* Set or clear one of the caller's cancellation flags (WF_CF_DISABLED or
 * WF_CF_ASYNC), first storing in *old (when not NULL) `was_set` or
 * `was_clear`.  A cancellation already due acts at once if the thread is
 * now asynchronous and enabled. */
static int wf_cflag_change(uint8_t bit, bool on, int *old, int was_set, int was_clear)
{
	struct wf_thread *t = wf_self_init();
	if (!t)
		return EPERM;
	uint8_t f = wf_cflags(t);
	if (old)
		*old = (f & bit) ? was_set : was_clear;
	f = on ? f | bit : f & ~bit;
	if (bit == WF_CF_ASYNC && on)
		wf_flag_raise(&wf_sig_active);   /* a resumed tick may have to act */
	wf_cflags_set(t, f);
	if ((f & WF_CF_ASYNC) && wf_cancel_due(t))
		wf_cancel_act();
	return 0;
}

int weft_setcancelstate(int state, int *old)
{
	if (state != WEFT_CANCEL_ENABLE && state != WEFT_CANCEL_DISABLE)
		return EINVAL;
	return wf_cflag_change(WF_CF_DISABLED, state == WEFT_CANCEL_DISABLE, old,
	                       WEFT_CANCEL_DISABLE, WEFT_CANCEL_ENABLE);
}

int weft_setcanceltype(int type, int *old)
{
	if (type != WEFT_CANCEL_DEFERRED && type != WEFT_CANCEL_ASYNCHRONOUS)
		return EINVAL;
	return wf_cflag_change(WF_CF_ASYNC, type == WEFT_CANCEL_ASYNCHRONOUS, old,
	                       WEFT_CANCEL_ASYNCHRONOUS, WEFT_CANCEL_DEFERRED);
}

void weft_testcancel(void)
{
	struct wf_thread *t = wf_current();
	if (t && t->kind != WF_KIND_IDLE && wf_cancel_due(t))
		wf_cancel_act();
}

/* --- the hooks of the other files ---------------------------------------------- */

int wf_intr_finish(void)
{
	struct wf_thread *t = wf_current();
	if (wf_cancel_due(t))
		wf_cancel_act();
	return wf_sig_interrupted(t);   /* its handlers, if the resume did not run them */
}

void wf_cancel_async_check(struct wf_worker *w, struct wf_thread *self)
{
	if (wf_likely(!atomic_load_explicit(&self->cancel_req, memory_order_relaxed)) ||
	    (wf_cflags(self) & (WF_CF_ASYNC | WF_CF_DISABLED | WF_CF_EXITING)) != WF_CF_ASYNC ||
	    self->preempt_off || w->in_handler)
		return;
	wf_cancel_act();
}
