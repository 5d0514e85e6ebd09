/*
 * overflow.c — naming the thread whose stack overflowed.
 *
 * A green thread that runs off the bottom of its stack faults in the guard
 * page below it.  The SIGSEGV handler runs on the worker's alternate signal
 * stack (set up by src/kthreads), finds that the fault address lies in the
 * guard of the thread running on this worker, prints one line
 *   weft: thread 42 "name" overflowed its 64 KiB stack
 * and aborts.  Any other SIGSEGV goes to the handler installed before weft,
 * or gets the default action.
 *
 * Overflow by a signal frame.  A thread with a little stack left (less than
 * a signal frame: about 3.4 KiB with AVX-512 state) may never touch the
 * guard itself, but a signal delivered on its stack — the preemption tick,
 * or a program handler without SA_ONSTACK — makes the kernel write the
 * frame there.  That write faults in the guard, the kernel gives up the
 * delivery and sends SIGSEGV of its own instead: si_code SI_KERNEL, no
 * address, and the interrupted context unchanged.  So a SIGSEGV from the
 * kernel whose interrupted stack pointer leaves less than a signal frame
 * (getauxval(AT_MINSIGSTKSZ), the kernel's own bound, plus the red zone)
 * above the running thread's guard, or lies in that guard, is reported as
 * an overflow too (docs/design.md, "Stacks and overflow").  A general
 * protection fault (also SI_KERNEL: a non-canonical address) taken that
 * close to the bottom of a stack would be named an overflow as well; a
 * thread that deep has no room to take a signal anyway.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/auxv.h>
#include <ucontext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sched_internal.h"
#include "../context/sigctx.h"


static void wf_write_str(char *buf, size_t cap, size_t *n, const char *s)
{
	while (*s && *n + 1 < cap)
		buf[(*n)++] = *s++;
}

static void wf_write_u64(char *buf, size_t cap, size_t *n, uint64_t v)
{
	char d[24];
	int k = 0;
	do d[k++] = (char)('0' + v % 10); while ((v /= 10) && k < 24);
	while (k && *n + 1 < cap)
		buf[(*n)++] = d[--k];
}

/* Async-signal-safe: formats by hand and uses write(2). */
static void wf_report_overflow(struct wf_thread *t)
{
	char buf[160];
	size_t n = 0;
	size_t kib = (size_t)((char *)t->stack.hi - (char *)t->stack.lo) / 1024;
	wf_write_str(buf, sizeof buf, &n, "weft: thread ");
	wf_write_u64(buf, sizeof buf, &n, (uint64_t)t->index + 1);  /* the id weft_dump shows */
	wf_write_str(buf, sizeof buf, &n, " \"");
	wf_write_str(buf, sizeof buf, &n, t->name);
	wf_write_str(buf, sizeof buf, &n, "\" overflowed its ");
	wf_write_u64(buf, sizeof buf, &n, kib);
	wf_write_str(buf, sizeof buf, &n, " KiB stack\n");
	ssize_t r = write(STDERR_FILENO, buf, n);
	(void)r;
}

/* Room the kernel needs below a stack pointer to deliver a signal: the
 * ISA's red zone (src/context/sigctx.h) and the largest signal frame it
 * builds on this CPU.  Read once at install time. */
static uintptr_t wf_sigframe_room;

/* The kernel could not write a signal frame on t's stack (see the header):
 * its own SIGSEGV, and the interrupted stack pointer in t's guard or less
 * than a frame above it. */
static bool wf_frame_overflow(const struct wf_thread *t, const siginfo_t *si, void *ucv)
{
	if (si->si_code != SI_KERNEL || t->stack.user || !t->stack.guard || !ucv)
		return false;
	uintptr_t sp = wf_sigctx_sp(ucv);
	uintptr_t lo = (uintptr_t)t->stack.lo;
	return sp >= lo - t->stack.guard && sp < lo + wf_sigframe_room;
}

static void wf_segv(int sig, siginfo_t *si, void *uc)
{
	struct wf_worker *w = wf_worker_self();
	struct wf_thread *t = w ? w->current : NULL;
	if (t && (wf_stack_in_guard(&t->stack, si->si_addr) || wf_frame_overflow(t, si, uc))) {
		wf_report_overflow(t);
		wf_signal_default(SIGABRT);
		abort();
	}
	if (wf_signal_forward(sig, si, uc))
		return;
	/* Default action: returning re-executes the access, which faults again
	 * with the default disposition. */
	wf_signal_default(SIGSEGV);
}

int wf_overflow_install(void)
{
	int e = errno;   /* getauxval says ENOENT when the kernel (before Linux
	                    5.14) or valgrind gives no such entry */
	unsigned long frame = getauxval(AT_MINSIGSTKSZ);
	wf_sigframe_room = WF_SIGCTX_RED_ZONE + (frame ? frame : SIGSTKSZ);
	errno = e;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = wf_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	return wf_signal_own(SIGSEGV, &sa);
}
