/*
 * cxx_state.h — the C++ runtime's per-kernel-thread words, carried by the
 * green thread across every switch (cxx_state.c has the design).
 *
 * A worker knows where its kernel thread keeps each word (cxx_loc, found
 * on that kernel thread when it starts); a thread keeps its own values in
 * its TCB (cxx) while it is not running.  wf_switch saves the words of the
 * thread it leaves and restores them once that thread runs again, on
 * whichever worker resumes it, exactly as it does errno.  Without a C++
 * runtime in the process (wf_cxx_on false) both are one predictable
 * branch.
 */
#ifndef WF_SCHED_CXX_STATE_H
#define WF_SCHED_CXX_STATE_H

#include <stdbool.h>
#include "sched_internal.h"

/* Set once, before any worker starts; read-only afterwards. */
extern bool wf_cxx_on WF_HIDDEN;

/* Find the C++ runtime, if the process has one (before workers start). */
void wf_cxx_init(void) WF_HIDDEN;

/* On w's own kernel thread, before it runs a green thread: where that
 * kernel thread keeps each word. */
void wf_cxx_worker(struct wf_worker *w) WF_HIDDEN;

/* t is being left on w: keep its words.  (Written out word by word: the
 * stores to t could alias the worker's pointers, which a loop would then
 * reload; this is a dozen instructions on the switch path.) */
static inline void wf_cxx_save(const struct wf_worker *w, struct wf_thread *t)
{
	_Static_assert(WF_CXX_WORDS == 4, "wf_cxx_save copies four words");
	if (wf_cxx_on) {
		uintptr_t a = *w->cxx_loc[0], b = *w->cxx_loc[1];
		uintptr_t c = *w->cxx_loc[2], d = *w->cxx_loc[3];
		t->cxx[0] = a;
		t->cxx[1] = b;
		t->cxx[2] = c;
		t->cxx[3] = d;
	}
}

/* t runs again, now on w: give it its words back. */
static inline void wf_cxx_restore(const struct wf_worker *w, const struct wf_thread *t)
{
	if (wf_cxx_on) {
		uintptr_t *pa = w->cxx_loc[0], *pb = w->cxx_loc[1];
		uintptr_t *pc = w->cxx_loc[2], *pd = w->cxx_loc[3];
		uintptr_t a = t->cxx[0], b = t->cxx[1], c = t->cxx[2], d = t->cxx[3];
		*pa = a;
		*pb = b;
		*pc = c;
		*pd = d;
	}
}

/* A new thread starts on w: no exception caught, none in flight. */
static inline void wf_cxx_fresh(const struct wf_worker *w)
{
	if (wf_cxx_on)
		for (int i = 0; i < WF_CXX_WORDS; i++)
			*w->cxx_loc[i] = 0;
}

#endif
