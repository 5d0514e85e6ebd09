/*
 * trace.h — the scheduler's hooks into the trace timeline (WEFT_TRACE,
 * trace.c).
 *
 * Every hook site reads one global flag, predicted false, and calls the
 * out-of-line wf_trace_* function only when tracing is on:
 *
 *     if (wf_tracing())
 *             wf_trace_switch(w, prev, next, action);
 *
 * so a program that does not trace pays one load and one not-taken branch
 * per hook.  A hook records into the buffer of the worker it is given,
 * which must be the worker of the calling kernel thread (each buffer has a
 * single writer); hooks that take no worker use wf_worker_self().
 */
#ifndef WF_TRACE_H
#define WF_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include "../context/cpu.h"

struct wf_worker;
struct wf_thread;

/* Set once, at init, when WEFT_TRACE names a file; cleared only in a child
 * of fork() (wf_trace_forked_child). */
extern _Atomic bool wf_trace_on WF_HIDDEN;

static inline bool wf_tracing(void)
{
	return wf_unlikely(atomic_load_explicit(&wf_trace_on, memory_order_relaxed));
}

/* At the end of runtime init, on worker 0 running "main": open the file,
 * map the buffers, register the exit-time writer.  0, EINVAL (bad
 * WEFT_TRACE or WEFT_TRACE_MAX_EVENTS, one line on stderr) or EAGAIN. */
int wf_trace_init(void) WF_HIDDEN;

/* In a child of fork(): tracing stops. */
void wf_trace_forked_child(void) WF_HIDDEN;

/* w switches from prev to next (wf_switch, before the context switch):
 * prev's slice ends and next's begins, at one timestamp.  `action` is
 * prev's wf_prev_action; a finished prev has its name recorded. */
void wf_trace_switch(struct wf_worker *w, const struct wf_thread *prev,
                     const struct wf_thread *next, int action) WF_HIDDEN;
/* The tick handler of w is about to preempt t. */
void wf_trace_preempt(struct wf_worker *w, const struct wf_thread *t) WF_HIDDEN;
/* t, running on w, parks (its block_kind/block_obj say on what). */
void wf_trace_block(struct wf_worker *w, const struct wf_thread *t) WF_HIDDEN;
/* t is being made ready (wf_make_ready).  Recorded as a wake-up only if t
 * was parked (its wait was claimed by a waker or by its timer). */
void wf_trace_wake(const struct wf_thread *t) WF_HIDDEN;
/* Idle worker thief took t from victim's queue. */
void wf_trace_steal(struct wf_worker *thief, const struct wf_thread *t,
                    const struct wf_worker *victim) WF_HIDDEN;
/* Wake-ups made by w from now on are credited to t (NULL: to w's current
 * thread again): a finished thread's joiner is woken by the next context on
 * its worker, on the finished thread's behalf (wf_after_switch). */
void wf_trace_waker(struct wf_worker *w, const struct wf_thread *t) WF_HIDDEN;

#endif
