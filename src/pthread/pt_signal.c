/*
 * pt_signal.c — cancellation, signals for one thread, and fork handlers:
 * the pthread names of weft's own (docs/design.md, "The pthread layer",
 * "Cancellation", "Signals to one thread" and "fork()").
 *
 *  - pthread_cancel, pthread_setcancelstate/type, pthread_testcancel:
 *    weft_cancel and its kin for a green thread.  Every weft call that
 *    blocks is a cancellation point, so the layer's calls that map onto
 *    them are too (join, cond and semaphore waits, the sleeps, rwlock and
 *    barrier waits, the I/O calls).  A cancelled thread's joiner receives
 *    PTHREAD_CANCELED (pt_thread.c translates WEFT_CANCELED).
 *  - Cleanup handlers.  What pthread_cleanup_push compiles to depends on
 *    the language: C++ builds a local object whose destructor runs the
 *    handler, C with -fexceptions an __attribute__((cleanup)) variable;
 *    both run during the forced unwind with which weft finishes a thread.
 *    C without exceptions calls __pthread_register_cancel with a buffer
 *    that holds a sigsetjmp context; on the way out glibc longjmps into it,
 *    the handler runs in the function that pushed it, and the code then
 *    calls __pthread_unwind_next to go on.  The layer does the same on
 *    weft's records: the buffer's spare words hold a weft cleanup record
 *    whose function longjmps into the buffer's context (weft unlinks a
 *    record before it runs it), and __pthread_unwind_next finishes the
 *    thread again with weft_exit, which keeps the first result and runs the
 *    records that are left (weft_exit from a finishing thread).
 *  - pthread_kill and pthread_sigqueue: weft_kill for a green thread (its
 *    handler runs on that thread), glibc's for a foreign thread.
 *    pthread_sigqueue's value does not reach a green thread: weft_kill
 *    carries none, so the signal goes to the process with it instead.
 *  - pthread_sigmask and sigprocmask: weft_sigmask in a green thread (a
 *    mask per green thread), glibc's on any other kernel thread.
 *  - pthread_atfork: weft_atfork, whose handlers run in the POSIX order
 *    with weft's own taken last.  A program linked against glibc 2.34 or
 *    later does not call it by name (glibc's static stub in
 *    libc_nonshared calls __register_atfork directly); those handlers run
 *    in the same order, since weft registered its own before main.
 */
#include <setjmp.h>
#include <signal.h>
#include <unistd.h>
#include "pt_internal.h"

#define PT_FOREIGN_BIT ((uintptr_t)1 << 63)

PT_API int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	if (!pt_green())
		return pt_real(pthread_sigmask)(how, set, old);
	return weft_sigmask(how, set, old);
}

PT_API int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	if (!pt_green())
		return pt_real(sigprocmask)(how, set, old);
	int e = weft_sigmask(how, set, old);
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

PT_API int pthread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
	return weft_atfork(prepare, parent, child);
}

PT_API int pthread_kill(pthread_t t, int sig)
{
	if (t & PT_FOREIGN_BIT)
		return pt_real(pthread_kill)(t & ~PT_FOREIGN_BIT, sig);
	return weft_kill((weft_t)t, sig);
}

PT_API int pthread_sigqueue(pthread_t t, int sig, const union sigval value)
{
	if (t & PT_FOREIGN_BIT)
		return pt_real(pthread_sigqueue)(t & ~PT_FOREIGN_BIT, sig, value);
	if (sig < 0 || sig >= NSIG)
		return EINVAL;
	char c;
	if (weft_getname((weft_t)t, &c, 1) == ESRCH)
		return ESRCH;
	if (sig == 0)
		return 0;
	return sigqueue(getpid(), sig, value) ? errno : 0;   /* to the process */
}

/* --- cancellation ---------------------------------------------------------- */

_Static_assert((int)PTHREAD_CANCEL_ENABLE == (int)WEFT_CANCEL_ENABLE &&
               (int)PTHREAD_CANCEL_DISABLE == (int)WEFT_CANCEL_DISABLE &&
               (int)PTHREAD_CANCEL_DEFERRED == (int)WEFT_CANCEL_DEFERRED &&
               (int)PTHREAD_CANCEL_ASYNCHRONOUS == (int)WEFT_CANCEL_ASYNCHRONOUS,
               "pthread and weft cancelability values");

PT_API int pthread_cancel(pthread_t t)
{
	if (t & PT_FOREIGN_BIT)
		return pt_real(pthread_cancel)(t & ~PT_FOREIGN_BIT);
	return weft_cancel((weft_t)t);
}

PT_API int pthread_setcancelstate(int state, int *old)
{
	if (!pt_green())
		return pt_real(pthread_setcancelstate)(state, old);
	return weft_setcancelstate(state, old);
}

PT_API int pthread_setcanceltype(int type, int *old)
{
	if (!pt_green())
		return pt_real(pthread_setcanceltype)(type, old);
	return weft_setcanceltype(type, old);
}

PT_API void pthread_testcancel(void)
{
	if (!pt_green()) {
		pt_real(pthread_testcancel)();
		return;
	}
	weft_testcancel();
}

/* --- cleanup buffers of C without exceptions (glibc's ABI) ----------------- */

/* The layer is built with -fexceptions, where <pthread.h> declares none of
 * these: glibc's prototypes. */
PT_API void __pthread_register_cancel(__pthread_unwind_buf_t *buf);
PT_API void __pthread_unregister_cancel(__pthread_unwind_buf_t *buf);
PT_API void __pthread_register_cancel_defer(__pthread_unwind_buf_t *buf);
PT_API void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t *buf);
PT_API _Noreturn void __pthread_unwind_next(__pthread_unwind_buf_t *buf);

/* The buffer's spare words: weft's record, then the type that
 * pthread_cleanup_push_defer_np saved. */
struct pt_unwind_spare {
	weft_cleanup_ rec;
	intptr_t saved_type;
};
_Static_assert(sizeof(struct pt_unwind_spare) <= sizeof(((__pthread_unwind_buf_t *)0)->__pad),
               "weft's cleanup record fits in the unwind buffer's spare words");

static struct pt_unwind_spare *pt_spare(__pthread_unwind_buf_t *buf)
{
	return (struct pt_unwind_spare *)(void *)buf->__pad;
}

/* The thread finishes: back into the function that pushed the buffer, at
 * its sigsetjmp, which runs the handler and calls __pthread_unwind_next.
 * That frame is still intact: it is above every frame the way out has
 * dropped (weft runs a record once the unwinding has left the frame that
 * holds it, and the records in a loop without the unwinder). */
static void pt_unwind_jump(void *arg)
{
	__pthread_unwind_buf_t *buf = arg;
	/* The buffer's first part is the start of a jmp_buf: the registers
	 * and __mask_was_saved, 0 (sigsetjmp(.., 0)), so longjmp reads no
	 * further, as glibc's own unwinding relies on.  The compiler is not
	 * told the buffer's size: it would warn of the jmp_buf's. */
	struct __jmp_buf_tag *j = (struct __jmp_buf_tag *)(void *)buf->__cancel_jmp_buf;
	__asm__("" : "+r"(j));
	longjmp(j, 1);
}

/* A foreign thread (never a green one, for the whole of its life) is
 * cancelled and exits through glibc: its buffers are glibc's. */
PT_API void __pthread_register_cancel(__pthread_unwind_buf_t *buf)
{
	if (!pt_green()) {
		pt_real(__pthread_register_cancel)(buf);
		return;
	}
	weft_cleanup_push_(&pt_spare(buf)->rec, pt_unwind_jump, buf);
}

PT_API void __pthread_unregister_cancel(__pthread_unwind_buf_t *buf)
{
	if (!pt_green()) {
		pt_real(__pthread_unregister_cancel)(buf);
		return;
	}
	weft_cleanup_pop_(&pt_spare(buf)->rec, 0);
}

PT_API void __pthread_register_cancel_defer(__pthread_unwind_buf_t *buf)
{
	if (!pt_green()) {
		pt_real(__pthread_register_cancel_defer)(buf);
		return;
	}
	int old = PTHREAD_CANCEL_DEFERRED;
	weft_setcanceltype(WEFT_CANCEL_DEFERRED, &old);
	pt_spare(buf)->saved_type = old;
	weft_cleanup_push_(&pt_spare(buf)->rec, pt_unwind_jump, buf);
}

PT_API void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t *buf)
{
	if (!pt_green()) {
		pt_real(__pthread_unregister_cancel_restore)(buf);
		return;
	}
	weft_cleanup_pop_(&pt_spare(buf)->rec, 0);
	weft_setcanceltype((int)pt_spare(buf)->saved_type, NULL);   /* may act */
}

PT_API void __pthread_unwind_next(__pthread_unwind_buf_t *buf)
{
	if (!pt_green())
		pt_real(__pthread_unwind_next)(buf);
	/* Only reached on a thread that is finishing: weft keeps its first
	 * result (PTHREAD_CANCELED or pthread_exit's) and goes on with the
	 * records still linked. */
	weft_exit(PTHREAD_CANCELED);
}
