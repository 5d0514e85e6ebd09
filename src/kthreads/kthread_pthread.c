/*
 * kthread_pthread.c — the fallback backend: workers are detached pthreads.
 *
 * Everything glibc needs per thread is built by pthread_create itself, so
 * this backend works on any libc; what it cannot do is record a stack size
 * different from the stack it allocates.  glibc bounds its internal alloca by
 * min(64 KiB, recorded size / 4) (docs/design.md, "Stacks and overflow"), and
 * the recorded size of a pthread is its stack attribute plus the guard: a
 * worker asked for a 64 KiB scheduler stack lets libc alloca about 17 KiB on
 * whatever green stack is running when it calls libc.  Callers that want the
 * clone backend's 4 KiB bound should therefore ask for a small worker stack
 * here (PTHREAD_STACK_MIN, 16 KiB on x86-64, gives 5 KiB; on AArch64 it is
 * 128 KiB, which gives about 32 KiB) and keep green stacks above the
 * resulting bound.  The main thread (worker 0) keeps glibc's 64 KiB bound
 * in this backend; see wf_kt_worker_setup.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "kt_internal.h"
#include "libc_real.h"

struct wf_ktp_start {
	void (*fn)(void *);
	void *arg;
	_Atomic uint32_t ready;
	pid_t tid;
};

#ifdef WF_ASAN
#include <sanitizer/asan_interface.h>
/*
 * AddressSanitizer and fork().  In a child of fork() the parent's other
 * kernel threads are gone, and glibc keeps their stacks in its cache for
 * new threads.  ASan's shadow of those stacks still holds the redzones of
 * the frames they had in the parent: ASan clears a thread's shadow when the
 * thread exits (the parent's threads never exit in the child) and when a
 * new thread has found its stack, but a new thread's own set-up runs the
 * pthread layer's attribute calls (instrumented) on that stack before
 * that, and ASan reports a stack-buffer-underflow there that is not one.
 * So each kernel thread of this backend notes its stack, and the child
 * clears the shadow of them all before it starts a thread.  A ring: past
 * WF_KTP_STACKS threads started, the oldest are forgotten (they are the
 * likeliest to have exited, which clears their shadow).  An entry written
 * while the fork happens may be half written in the child: clearing the
 * shadow of a wrong range only hides redzones, ASan-only, never faults.
 */
#define WF_KTP_STACKS 4096
static struct { void *lo; size_t len; } wf_ktp_stacks[WF_KTP_STACKS];
static _Atomic unsigned wf_ktp_nstacks;

static void wf_ktp_note_stack(void)
{
	void *lo;
	size_t len;
	if (wf_kt_own_stack(&lo, &len) == 0) {
		unsigned i = atomic_fetch_add_explicit(&wf_ktp_nstacks, 1, memory_order_relaxed);
		wf_ktp_stacks[i % WF_KTP_STACKS].lo = lo;
		wf_ktp_stacks[i % WF_KTP_STACKS].len = len;
	}
}

void wf_ktp_fork_child(void)
{
	unsigned n = atomic_load_explicit(&wf_ktp_nstacks, memory_order_relaxed);
	for (unsigned i = 0; i < n && i < WF_KTP_STACKS; i++)
		if (wf_ktp_stacks[i].lo)
			__asan_unpoison_memory_region(wf_ktp_stacks[i].lo, wf_ktp_stacks[i].len);
}
#endif

static void *wf_ktp_entry(void *p)
{
	struct wf_ktp_start *s = p;
	void (*fn)(void *) = s->fn;
	void *arg = s->arg;

#ifdef WF_ASAN
	wf_ktp_note_stack();
#endif
	s->tid = wf_kt_gettid();
	atomic_store_explicit(&s->ready, 1, memory_order_release);
	wf_futex_wake(&s->ready, 1);
	/* s lives on the creator's stack: not touched from here on. */
	fn(arg);
	return NULL;
}

static size_t wf_ktp_stack_size(size_t stack_size)
{
	long min = sysconf(_SC_THREAD_STACK_MIN);
	size_t lo = min > 0 ? (size_t)min : PTHREAD_STACK_MIN;
	size_t page = wf_pagesize();

	if (stack_size < lo)
		stack_size = lo;
	return (stack_size + page - 1) & ~(page - 1);
}

int wf_kt_pthread_spawn(void (*fn)(void *), void *arg, size_t stack_size,
                        pid_t *tid)
{
	struct wf_ktp_start s = { .fn = fn, .arg = arg };
	int saved = errno;
	pthread_attr_t a;
	pthread_t t;
	int e;

	if (stack_size > ((size_t)1 << 40))
		return EAGAIN;
	e = WF_LIBC(pthread_attr_init)(&a);
	if (e)
		return EAGAIN;
	e = WF_LIBC(pthread_attr_setstacksize)(&a, wf_ktp_stack_size(stack_size));
	if (!e)
		e = WF_LIBC(pthread_attr_setguardsize)(&a, wf_pagesize());
	if (!e)
		e = WF_LIBC(pthread_attr_setdetachstate)(&a, PTHREAD_CREATE_DETACHED);
	if (!e)
		e = WF_LIBC(pthread_create)(&t, &a, wf_ktp_entry, &s);
	WF_LIBC(pthread_attr_destroy)(&a);
	if (e) {
		errno = saved;
		return EAGAIN;
	}
	while (!atomic_load_explicit(&s.ready, memory_order_acquire))
		wf_futex_wait(&s.ready, 0, NULL);
	if (tid)
		*tid = s.tid;
	errno = saved;
	return 0;
}
