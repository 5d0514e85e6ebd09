/*
 * kthread_worker.c — what every kernel thread does once when it becomes a
 * worker (worker 0, the caller of weft_init, included).
 */
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kt_internal.h"

/* Room for the overflow report: a handler frame with full AVX-512 state,
 * snprintf and write, with a wide margin. */
#define WF_KT_ALTSTACK_MIN (64 * 1024)

static size_t wf_kt_altstack_size(void)
{
	long sys = sysconf(_SC_SIGSTKSZ);
	size_t page = wf_pagesize();
	size_t n = WF_KT_ALTSTACK_MIN;

	if (sys > 0 && (size_t)sys * 4 > n)
		n = (size_t)sys * 4;
	return (n + page - 1) & ~(page - 1);
}

/*
 * An alternate signal stack, so that a SIGSEGV raised by a green stack's
 * guard page has somewhere to run its report.  One per kernel thread, never
 * freed (workers live as long as the process).  An alternate stack already
 * installed and big enough (a second call, or the application's own) is
 * kept; a smaller one is replaced (its memory is not ours to free).
 */
static int wf_kt_altstack(void)
{
	size_t page = wf_pagesize(), size = wf_kt_altstack_size();
	stack_t cur, ss;
	char *m;

	if (sigaltstack(NULL, &cur) != 0)
		return errno;
	if (!(cur.ss_flags & SS_DISABLE) && cur.ss_size >= size)
		return 0;
	if (cur.ss_flags & SS_ONSTACK)
		return EBUSY;
	m = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (m == MAP_FAILED)
		return ENOMEM;
	/* A guard below it: a handler that overflows faults instead of
	 * writing over whatever is mapped there. */
	if (mprotect(m, page, PROT_NONE) != 0) {
		munmap(m, size + page);
		return ENOMEM;
	}
	ss.ss_sp = m + page;
	ss.ss_size = size;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) != 0) {
		int e = errno;
		munmap(m, size + page);
		return e;
	}
	return 0;
}

/*
 * The recorded stack size (docs/design.md, "Stacks and overflow").  Clone
 * workers got
 * WF_KT_RECORDED_STACK in their block when they were built; what is left is
 * worker 0.  On the clone backend, when worker 0 is the process's initial
 * thread, its block's layout was validated by the gate and its recorded
 * size is set too (wf_tb_record_main_stack explains what glibc does with it
 * and why that is safe).  On the pthread backend the main thread is left
 * alone: nothing vouches for the offset there, so green threads running on
 * worker 0 may see libc alloca up to 64 KiB (glibc's cap), and green stacks
 * must be sized for that or kept off worker 0's libc-heavy paths.  The same
 * holds on either backend when weft_init is called from a glibc pthread
 * rather than the initial thread: glibc owns that thread's stack fields.
 */
int wf_kt_worker_setup(void)
{
	int saved = errno;
	int e = wf_kt_altstack();

	if (!e && wf_kt_backend() == WF_KT_CLONE)
		wf_kt_clone_worker0();
	errno = saved;
	return e;
}
