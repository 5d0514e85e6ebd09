/*
 * kt_internal.h — shared by the files of src/kthreads (and its test) only.
 * The rest of weft uses kthread.h.
 */
#ifndef WF_KT_INTERNAL_H
#define WF_KT_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "kthread.h"
#include "../context/stack.h"   /* wf_pagesize */

/* The clone backend (kthread_clone.c). */

/* Run the startup gate once (later calls return the cached result).
 * 0, or EAGAIN with *failed naming the check that failed. */
int wf_kt_clone_gate(const char **failed) WF_HIDDEN;
int wf_kt_clone_spawn(void (*fn)(void *), void *arg, size_t stack_size,
                      pid_t *tid) WF_HIDDEN;
/* Worker 0 on the clone backend: record the small stack size in the calling
 * thread's block when that is safe (see the function). */
void wf_kt_clone_worker0(void) WF_HIDDEN;

/* The pthread backend (kthread_pthread.c). */
int wf_kt_pthread_spawn(void (*fn)(void *), void *arg, size_t stack_size,
                        pid_t *tid) WF_HIDDEN;
#ifdef WF_ASAN
/* In a child of fork(): clear ASan's shadow of the stacks of the parent's
 * kernel threads of the pthread backend (kthread_pthread.c says why). */
void wf_ktp_fork_child(void) WF_HIDDEN;
#endif

/* Tests only: make the next gate run fail at the named check, as if that
 * check had failed (NULL: no injection).  Must precede the first gate run. */
void wf_kt_gate_inject_failure(const char *check) WF_HIDDEN;

/* Futex on a shared (not process-private) word: the kernel's
 * CHILD_CLEARTID wake-up is a shared wake.  Same returns as wf_futex_wait. */
int wf_futex_wait_shared(volatile int *word, int expected,
                         const struct timespec *abs_monotonic) WF_HIDDEN;

/* The CPU-time clock of kernel thread `tid` (thread_state.c). */
clockid_t wf_kt_cpu_clock(pid_t tid) WF_HIDDEN;

#endif
