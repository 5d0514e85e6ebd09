/*
 * kthread_clone.c — kernel workers made with clone(), on glibc.
 *
 * Why clone, and why it is not simple
 * -----------------------------------
 * weft's workers are kernel threads that live as long as the process and
 * run a scheduler loop, made with clone() (docs/design.md, "Kernel workers").
 * But a kernel thread is not a libc thread.  glibc keeps everything a thread
 * owns in one block, struct pthread, found through the thread pointer (%fs
 * on x86-64): errno and every other __thread variable sit just below it,
 * malloc's per-thread cache and arena pointer, the stdio lock owner
 * (THREAD_SELF), pthread_self(), the stack-protector canary and the
 * pointer-mangling key, the robust-futex list, the rseq area, the resolver
 * state.  A bare clone(CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM) without
 * CLONE_SETTLS shares the creator's block, and with it everything above.
 * Measured (docs/design.md, "glibc and clone workers: what was measured"):
 * malloc aborts within
 * milliseconds ("double free detected in tcache 2"; with no pthread ever
 * created it even takes its unlocked single-threaded path), errno and
 * pthread_self() are one address/value on every worker, and stdio either
 * hangs in vfprintf (lost unlocks: every worker is "the owner") or
 * interleaves lines.
 *
 * The recipe
 * ----------
 * Build, for each worker, the block pthread_create would have built, from
 * the same allocator, and hand it to the kernel with CLONE_SETTLS:
 *
 *  - once at start, create and join one throwaway pthread.  It is the only
 *    public way to make glibc leave single-threaded mode (its hidden flag,
 *    the creator's multiple_threads, stdio locking).  Here it is also the
 *    probe the gate inspects (below).
 *  - pd = _dl_allocate_tls(NULL): ld.so's own allocator for a thread's
 *    static TLS + struct pthread, with the TLS images copied in and a dtv.
 *    Looked up with dlvsym(..., "GLIBC_PRIVATE").
 *  - fill what pthread_create fills: tcb and self point at pd,
 *    multiple_threads = 1; stack_guard, pointer_guard and feature_1 copied
 *    from the main thread (they must be the same on every worker: a green
 *    thread that migrates carries canaries on its stack and mangled
 *    pointers in its jmp_bufs from one worker to another); `list` as a
 *    self-loop; the robust-list head pointing at itself; specific[0] at
 *    specific_1stblock; the stack fields; libc's resolver slot (__resp) at
 *    pd->res.
 *  - put the block on glibc's list of threads with their own stacks, under
 *    glibc's lock, marked not started (setxid_futex = -1): glibc's
 *    per-thread broadcasts walk that list;
 *  - clone(CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|
 *    CHILD_CLEARTID, tls = pd, both tid pointers at &pd->tid) with every
 *    signal blocked; the worker first registers rseq at pd + __rseq_offset
 *    with glibc's signature, set_robust_list, uselocale(LC_GLOBAL_LOCALE)
 *    for the ctype tables, declares itself started, and only then restores
 *    the signal mask and runs.
 *  - the stack fields record WF_KT_RECORDED_STACK (16 KiB), not the real
 *    stack: libc allocas up to a quarter of it, and a worker's libc calls
 *    run on whatever green stack is current (docs/design.md, "Stacks and
 *    overflow").
 *
 * The gate
 * --------
 * All of this writes into a private glibc structure, so it runs only where
 * it was validated, and fails closed (wf_kt_select then uses pthreads, or
 * refuses under WEFT_KTHREADS=clone), naming the check that failed:
 *  1. gnu_get_libc_version() is exactly 2.36 and the CPU is x86-64;
 *  2. the symbols: _dl_allocate_tls, _dl_deallocate_tls,
 *     _dl_get_tls_static_info (GLIBC_PRIVATE), __rseq_offset/__rseq_size;
 *  3. layout, every offset from at least one source other than our table:
 *     libthread_db's descriptors exported by libc (sizeof struct pthread,
 *     tid, list, dtv, specific, key data); on the main thread and on the
 *     probe pthread: tcb/self == thread pointer == pthread_self(); tid ==
 *     gettid() and, on the probe, the only place in its block holding its
 *     tid; both list neighbours point back; get_robust_list() == thread
 *     pointer + 736 with glibc's futex_offset; rseq() on our address, length
 *     and signature answers EBUSY (already registered exactly so); the stack
 *     fields agree with pthread_getattr_np (and, on main, equal
 *     __libc_stack_end); a setjmp'd stack pointer demangles with the pointer
 *     guard we read; __res_state() == probe + 1720 and the exported __resp
 *     slot is the single word in the probe's static TLS pointing there (the
 *     gate thread's holds &_res if it is the initial thread, its own res
 *     if a pthread); _rtld_global's thread lists, their lock and the stack
 *     cache, and each thread on the list its user_stack flag says;
 *     pthread_setspecific lands in specific_1stblock; errno sits at the same
 *     TLS offset on both; the probe's guards equal main's; multiple_threads
 *     goes 0 -> 1 when the probe is created;
 *  4. a self-test worker built by the recipe does malloc/free, snprintf
 *     ("%f"), ctype, stdio to a memstream, errno, setjmp/longjmp, checks
 *     its own pthread_self, tid, errno address, resolver state, rseq,
 *     recorded stack and place on glibc's list, then leaves the list, exits
 *     and is joined through CHILD_CLEARTID.
 *
 * Rejected alternatives
 * ---------------------
 *  - A bare clone: see above; nothing in libc is per-thread any more.
 *  - Writing __libc_single_threaded = false instead of the throwaway
 *    pthread: the exported variable is a copy for applications; glibc's
 *    own checks read a hidden flag and the header's multiple_threads.
 *    Measured: it changes nothing.
 *  - Linking _dl_allocate_tls & co. directly: pins the binary to one glibc
 *    version (it fails to load elsewhere) and removes the fallback; dlvsym
 *    lets the gate fail closed instead.
 *  - pthread_create alone: works (it is the fallback backend) but is not the
 *    design (docs/design.md, "Kernel workers"), and cannot record a stack
 *    size different from the stack it allocates.
 *
 * What stays unsafe (documented, not fixed)
 * -----------------------------------------
 *  - Workers must never exit.  TSD destructors and __libc_thread_freeres
 *    are unreachable; each exited worker leaks about 104 KB (its malloc
 *    arena attachment and tcache).  Only the gate's self-test worker exits.
 *    pthread_exit() or pthread_cancel() on a worker crashes.
 *  - fork() from a worker: the child's glibc drops every listed thread but
 *    the forking one, which it lists again (docs/design.md, "glibc's
 *    thread lists"); weft then rebuilds itself around the forking thread
 *    (src/sched/fork.c).  The blocks of the parent's other workers stay
 *    allocated in the child (wf_ktw_gone): nothing may free them.
 *  - pthread_getattr_np on a worker reports the recorded 16 KiB at the top
 *    of its stack, not the whole stack (it is what glibc believes).
 *  - Sanitizers do not know the workers.  ASan still checks every access
 *    on them, but its reports carry no allocation stacks for blocks
 *    allocated there (and ASan trips an internal CHECK after printing the
 *    primary report); worker stacks are registered as LSan root regions so
 *    that leak checking scans them.
 *  - Any layout change in glibc: that is what the gate is for.  A new
 *    glibc version fails it until someone re-validates the table in
 *    glibc_thread_block.h and adds the version.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <resolv.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "glibc_thread_block.h"
#include "kt_internal.h"
#include "kt_syscall.h"
#include "libc_real.h"

#if defined(__SANITIZE_ADDRESS__)
#define WF_KT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WF_KT_ASAN 1
#endif
#endif
#ifdef WF_KT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

#define WF_KT_CLONE_FLAGS                                                 \
	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |   \
	 CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |                 \
	 CLONE_CHILD_CLEARTID)

/* One worker: its block, its stack (guard page at map), what it runs. */
struct wf_ktw {
	void (*fn)(void *);
	void *arg;
	char *pd;
	char *map;        /* guard page, then the stack */
	size_t map_len;
	char *lo, *hi;    /* usable stack */
	sigset_t mask;    /* the creator's mask, restored by the worker */
	struct wf_ktw *next;
};

/* Live workers: they are never freed (and this keeps their blocks and
 * stacks reachable for leak checkers).  In a child of fork() the workers of
 * the parent do not exist: they move to wf_ktw_gone (still reachable). */
static struct wf_ktw *wf_ktw_live, *wf_ktw_gone;
static wf_spin_t wf_ktw_lock = WF_SPIN_INIT;

/* ---- stacks ----------------------------------------------------------- */

static int wf_ktw_map_stack(struct wf_ktw *w, size_t stack_size)
{
	size_t page = wf_pagesize();
	size_t size = stack_size < WF_KT_RECORDED_STACK ? WF_KT_RECORDED_STACK
	                                                : stack_size;
	char *m;

	if (size > ((size_t)1 << 40))
		return EAGAIN;
	size = (size + page - 1) & ~(page - 1);
	m = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (m == MAP_FAILED)
		return EAGAIN;
	if (mprotect(m, page, PROT_NONE) != 0) {
		munmap(m, size + page);
		return EAGAIN;
	}
	w->map = m;
	w->map_len = size + page;
	w->lo = m + page;
	w->hi = m + page + size;
#ifdef WF_KT_ASAN
	/* Leak checking scans registered threads only: scan this stack too. */
	__lsan_register_root_region(w->lo, size);
#endif
	return 0;
}

static void wf_ktw_unmap_stack(struct wf_ktw *w)
{
#ifdef WF_KT_ASAN
	__lsan_unregister_root_region(w->lo, (size_t)(w->hi - w->lo));
	/* Frames left poisoned must not outlive the mapping. */
	ASAN_UNPOISON_MEMORY_REGION(w->lo, (size_t)(w->hi - w->lo));
#endif
	munmap(w->map, w->map_len);
}

/* ---- start ------------------------------------------------------------ */

/* The worker's first frame (glibc's clone() calls it on the new stack). */
static int wf_ktw_entry(void *p)
{
	struct wf_ktw *w = p;

	wf_tb_enter(w->pd);
	wf_tb_started(w->pd);
	wf_syscall4(SYS_rt_sigprocmask, SIG_SETMASK, &w->mask, NULL, _NSIG / 8);
	w->fn(w->arg);
	/* Only the self-test worker returns: off glibc's list, then the
	 * thread exits, the kernel clears pd->tid and wakes the joiner. */
	wf_tb_list_leave(w->pd);
	return 0;
}

/* Map a stack, build a block, clone.  On failure nothing is left, and
 * *why names the step that failed. */
static int wf_ktw_start(struct wf_ktw *w, size_t stack_size, pid_t *tid,
                        const char **why)
{
	sigset_t all;
	int e, rc;

	*why = "stack mapping";
	e = wf_ktw_map_stack(w, stack_size);
	if (e)
		return e;
	e = wf_tb_create(w->hi, &w->pd, why);
	if (e) {
		wf_ktw_unmap_stack(w);
		return e;
	}
	/* On glibc's list before it exists, as pthread_create does: a dlopen
	 * initializes its static TLS, a set*id broadcast waits for it to
	 * start (docs/design.md, "glibc's thread lists"). */
	wf_tb_list_join(w->pd);
	/* Every signal blocked until the worker has set itself up (glibc
	 * keeps its own two, SIGCANCEL and SIGSETXID, unblocked). */
	sigfillset(&all);
	WF_LIBC(pthread_sigmask)(SIG_SETMASK, &all, &w->mask);
	rc = clone(wf_ktw_entry, w->hi, WF_KT_CLONE_FLAGS, w,
	           (pid_t *)(w->pd + WF_TB_TID), w->pd,
	           (pid_t *)(w->pd + WF_TB_TID));
	WF_LIBC(pthread_sigmask)(SIG_SETMASK, &w->mask, NULL);
	if (rc == -1) {
		*why = "clone";
		wf_tb_started(w->pd);   /* release a broadcast waiting for it */
		wf_tb_list_leave(w->pd);
		wf_tb_destroy(w->pd);
		wf_ktw_unmap_stack(w);
		return EAGAIN;
	}
	if (tid)
		*tid = rc;
	return 0;
}

/* ---- the self-test worker --------------------------------------------- */

struct wf_selftest {
	struct wf_ktw *w;     /* its pd and stack are set before clone() */
	int *main_errno;
	const char *failed;
};

static bool wf_selftest_malloc(void)
{
	for (unsigned i = 0; i < 512; i++) {
		size_t n = ((size_t)i * 7919u) % (128 * 1024) + 1;
		unsigned char *p = malloc(n);

		if (!p)
			return false;
		memset(p, (int)(i & 0xff), n);
		if (p[0] != (i & 0xff) || p[n - 1] != (i & 0xff)) {
			free(p);
			return false;
		}
		free(p);
	}
	return true;
}

static bool wf_selftest_stdio(void)
{
	char buf[64], *mem = NULL;
	size_t len = 0;
	FILE *f;
	bool ok;

	snprintf(buf, sizeof buf, "%f %.3e %d %s", 3.25, 12345.678, -42, "ok");
	if (strcmp(buf, "3.250000 1.235e+04 -42 ok") != 0)
		return false;
	if (!isdigit((unsigned char)'7') || isdigit((unsigned char)'x') ||
	    toupper('q') != 'Q' || strtod("2.5", NULL) != 2.5)
		return false;
	f = open_memstream(&mem, &len);
	if (!f)
		return false;
	fprintf(f, "%.2f|%s", 0.5, buf);
	ok = fclose(f) == 0 && mem && strcmp(mem, "0.50|3.250000 1.235e+04 -42 ok") == 0;
	free(mem);
	return ok;
}

static bool wf_selftest_stack(struct wf_selftest *st)
{
	pthread_attr_t a;
	void *addr = NULL;
	size_t size = 0;

	if (WF_LIBC(pthread_getattr_np)(WF_LIBC(pthread_self)(), &a) != 0)
		return false;
	WF_LIBC(pthread_attr_getstack)(&a, &addr, &size);
	WF_LIBC(pthread_attr_destroy)(&a);
	return size == WF_KT_RECORDED_STACK &&
	       (char *)addr + size == st->w->hi;
}

static const char *wf_selftest_checks(struct wf_selftest *st)
{
	char *tp = wf_tb_self();
	volatile int jumped = 0;
	jmp_buf jb;

	if (tp != st->w->pd || (char *)WF_LIBC(pthread_self)() != st->w->pd)
		return "self-test worker: thread pointer check";
	if (gettid() != *wf_tb_tid(tp) || gettid() == getpid())
		return "self-test worker: tid check";
	if (&errno == st->main_errno || (char *)&errno - tp != wf_tb_errno_offset())
		return "self-test worker: errno address check";
	errno = EDOM;
	if (errno != EDOM || *st->main_errno == EDOM)
		return "self-test worker: errno check";
	if ((char *)__res_state() != tp + WF_TB_RES)
		return "self-test worker: resolver state check";
	if (!wf_selftest_malloc())
		return "self-test worker: malloc check";
	if (!wf_selftest_stdio())
		return "self-test worker: stdio check";
	if (setjmp(jb) == 0)
		longjmp(jb, 1);
	else
		jumped = 1;
	if (!jumped)
		return "self-test worker: longjmp check";
	if (sched_getcpu() < 0)
		return "self-test worker: rseq check";
	if (!wf_selftest_stack(st))
		return "self-test worker: recorded stack check";
	if (!wf_tb_listed(tp))
		return "self-test worker: glibc thread list check";
	return NULL;
}

static void wf_selftest_main(void *p)
{
	struct wf_selftest *st = p;

	st->failed = wf_selftest_checks(st);
}

/* Wait until the kernel clears the tid (the thread has exited). */
static bool wf_ktw_join(char *pd, int seconds)
{
	volatile int *tid = wf_tb_tid(pd);
	struct timespec dl;
	int v;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += seconds;
	while ((v = __atomic_load_n(tid, __ATOMIC_ACQUIRE)) != 0)
		if (wf_futex_wait_shared(tid, v, &dl) == ETIMEDOUT)
			return __atomic_load_n(tid, __ATOMIC_ACQUIRE) == 0;
	return true;
}

/*
 * One worker made by the recipe, run once, joined.  It exits, which workers
 * otherwise never do: its TSD destructors and __libc_thread_freeres never
 * run, leaking about 104 KB (arena attachment, tcache) once per process.
 */
static const char *wf_kt_selftest(void)
{
	static char msg[96];
	struct wf_selftest *st = calloc(1, sizeof *st);
	struct wf_ktw *w = calloc(1, sizeof *w);
	const char *failed = "self-test worker: memory check", *why;
	int saved = errno;

	if (!st || !w)
		goto out;
	st->w = w;
	st->main_errno = &errno;
	w->fn = wf_selftest_main;
	w->arg = st;
	errno = 0;            /* the worker checks its errno is not ours */
	if (wf_ktw_start(w, 64 * 1024, NULL, &why) != 0) {
		snprintf(msg, sizeof msg, "self-test worker: %s check", why);
		failed = msg;
		goto out;
	}
	if (!wf_ktw_join(w->pd, 10)) {
		/* Still running: it may use st and w forever, leak them. */
		errno = saved;
		return "self-test worker: exit check";
	}
	failed = st->failed;
	wf_tb_destroy(w->pd);
	wf_ktw_unmap_stack(w);
out:
	free(st);
	free(w);
	errno = saved;
	return failed;
}

/* ---- gate, spawn, worker 0 -------------------------------------------- */

static const char *wf_kt_injected;
static _Atomic int wf_kt_gate_state;  /* 0 not run, 1 passed, -1 failed */
static const char *wf_kt_gate_failed;

void wf_kt_gate_inject_failure(const char *check)
{
	wf_kt_injected = check;
}

/* Callers serialize (wf_kt_select holds its lock). */
int wf_kt_clone_gate(const char **failed)
{
	const char *f = NULL;

	if (wf_kt_gate_state == 0) {
		if (wf_kt_injected)
			f = wf_kt_injected;
		else if (wf_tb_validate(&f) == 0)
			f = wf_kt_selftest();
		wf_kt_gate_state = f ? -1 : 1;
		wf_kt_gate_failed = f;
	}
	if (wf_kt_gate_state > 0)
		return 0;
	if (failed)
		*failed = wf_kt_gate_failed;
	return EAGAIN;
}

int wf_kt_clone_spawn(void (*fn)(void *), void *arg, size_t stack_size,
                      pid_t *tid)
{
	int saved = errno;
	struct wf_ktw *w;
	int e;

	if (wf_kt_gate_state <= 0)
		return EAGAIN;
	w = calloc(1, sizeof *w);
	if (!w) {
		errno = saved;
		return EAGAIN;
	}
	w->fn = fn;
	w->arg = arg;
	const char *why;
	e = wf_ktw_start(w, stack_size, tid, &why);
	if (e) {
		free(w);
	} else {
		wf_spin_lock(&wf_ktw_lock);
		w->next = wf_ktw_live;
		wf_ktw_live = w;
		wf_spin_unlock(&wf_ktw_lock);
	}
	errno = saved;
	return e;
}

void wf_kt_clone_worker0(void)
{
	if (wf_kt_gate_state > 0)
		wf_tb_record_main_stack();
}

/* ---- fork ------------------------------------------------------------- */

void wf_kt_fork_lock(void) { wf_spin_lock(&wf_ktw_lock); }

void wf_kt_fork_unlock(bool child)
{
#ifdef WF_ASAN
	if (child)
		wf_ktp_fork_child();
#endif
	if (child && wf_ktw_live) {
		/* The last of the parent's workers on the gone list. */
		struct wf_ktw *w = wf_ktw_live;
		while (w->next)
			w = w->next;
		w->next = wf_ktw_gone;
		wf_ktw_gone = wf_ktw_live;
		wf_ktw_live = NULL;
	}
	wf_spin_unlock(&wf_ktw_lock);
}
