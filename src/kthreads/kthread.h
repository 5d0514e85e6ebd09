/*
 * kthread.h — the kernel level: the bank of kernel workers and how they
 * sleep.  Two backends sit behind this interface: clone (default; glibc
 * thread blocks built by hand, see kthread_clone.c) and pthread (fallback).
 * Knows nothing of green threads: a worker is a kernel thread running
 * fn(arg) forever.
 */
#ifndef WF_KTHREAD_H
#define WF_KTHREAD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "../context/cpu.h"

enum wf_kt_backend { WF_KT_NONE = 0, WF_KT_CLONE, WF_KT_PTHREAD };
enum wf_kt_mode { WF_KT_MODE_AUTO = 0, WF_KT_MODE_CLONE, WF_KT_MODE_PTHREAD };

/* Stack size glibc records for every worker: libc's own alloca is bounded by
 * a quarter of it, so every green stack must have that much room. */
#define WF_KT_RECORDED_STACK  (16 * 1024)

/*
 * Choose the backend once, before any worker starts.  For auto and clone the
 * clone gate runs (glibc version, symbols, layout cross-checks, a self-test
 * worker); auto falls back to pthread printing one line "weft: clone
 * workers unavailable (<check>): using pthread workers"; clone with a failed
 * gate prints "weft: WEFT_KTHREADS=clone: <check> failed" and returns EAGAIN.
 */
int wf_kt_select(enum wf_kt_mode mode, enum wf_kt_backend *chosen) WF_HIDDEN;

/* The chosen backend (WF_KT_NONE before wf_kt_select). */
enum wf_kt_backend wf_kt_backend(void) WF_HIDDEN;
const char *wf_kt_backend_name(enum wf_kt_backend b) WF_HIDDEN;

/*
 * Start one worker kernel thread running fn(arg) on a stack of its own of
 * `stack_size` bytes (the worker's scheduler runs there).  fn never returns;
 * workers live as long as the process.  *tid receives the kernel thread id
 * before the call returns.  0, or EAGAIN.
 */
int wf_kt_spawn(void (*fn)(void *), void *arg, size_t stack_size, pid_t *tid) WF_HIDDEN;

/*
 * Called once by each kernel thread that becomes a worker, on itself, before
 * it runs green threads (worker 0 included): records the glibc stack size
 * for the alloca bound where the backend can, and installs an alternate
 * signal stack for the stack-overflow report.  0 or errno.
 */
int wf_kt_worker_setup(void) WF_HIDDEN;

/* Futex on a 32-bit word, process-private. */
/* Sleep while *word == expected, until woken or until abs_monotonic (NULL:
 * no deadline).  0, EAGAIN (value differed), ETIMEDOUT or EINTR. */
int wf_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                  const struct timespec *abs_monotonic) WF_HIDDEN;
/* Wake up to n sleepers on word. */
void wf_futex_wake(_Atomic uint32_t *word, int n) WF_HIDDEN;

/* Sleep the calling kernel thread for about ns (a signal may end it
 * early); errno is left alone. */
void wf_kt_nap(uint64_t ns) WF_HIDDEN;

/* An epoll set to sleep in (epoll_sleep.c): the scheduler's poller.  Raw
 * system calls: each returns the kernel's result (a descriptor, a count or
 * 0) or a negative errno value, and none touches errno. */
struct epoll_event;
int wf_kt_epoll_create(void) WF_HIDDEN;                  /* close-on-exec */
int wf_kt_eventfd(void) WF_HIDDEN;                       /* close-on-exec, nonblocking */
int wf_kt_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev) WF_HIDDEN;
/* Wait up to timeout_ns (UINT64_MAX: no limit) for events of ep. */
int wf_kt_epoll_wait(int ep, struct epoll_event *ev, int n, uint64_t timeout_ns) WF_HIDDEN;
void wf_kt_eventfd_signal(int efd) WF_HIDDEN;            /* add 1 */
void wf_kt_eventfd_drain(int efd) WF_HIDDEN;             /* reset to 0 */

/* fork(): hold the backend's own lock across it (before and after; in the
 * child, the kernel threads it made in the parent are forgotten). */
void wf_kt_fork_lock(void) WF_HIDDEN;
void wf_kt_fork_unlock(bool child) WF_HIDDEN;

/* Kernel thread id of the caller, without a libc call. */
pid_t wf_kt_gettid(void) WF_HIDDEN;

/* CPU time kernel thread `tid` of this process has used, in ns (0 if it
 * cannot be read).  Any thread may ask. */
uint64_t wf_kt_cpu_ns(pid_t tid) WF_HIDDEN;

/* Is kernel thread `tid` running or waiting for a CPU (as opposed to
 * sleeping in a system call)?  From /proc/self/task/<tid>/stat; *fd caches
 * the open file between calls (start it at -1).  True when unknown. */
bool wf_kt_runnable(pid_t tid, int *fd) WF_HIDDEN;

/* The kernel's state letter for kernel thread `tid` of this process, as
 * /proc shows it ('R' running or waiting for a CPU, 'S' asleep in the
 * kernel, 'D' asleep and not interruptible, 'T'/'t' stopped), or 0 if it
 * cannot be read.  Opens and closes the file: for observers, not for a
 * periodic look.  Leaves errno alone. */
char wf_kt_state(pid_t tid) WF_HIDDEN;

/*
 * The calling kernel thread's static TLS block and thread descriptor: every
 * address initial-exec or local-exec TLS code (errno included) or
 * pthread_self() yields on this thread lies in [*lo, *hi) (tls_span.c).
 */
void wf_kt_tls_span(uintptr_t *lo, uintptr_t *hi) WF_HIDDEN;

/* The calling kernel thread's stack as glibc records it (libc's
 * pthread_getattr_np, past the pthread layer: libc_real.c): 0, or an
 * errno value (for the initial thread glibc reads /proc/self/maps, which
 * can fail). */
int wf_kt_own_stack(void **lo, size_t *size) WF_HIDDEN;

#endif
