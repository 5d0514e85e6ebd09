/*
 * yield.c — a green thread giving its worker away: weft_yield, and
 * weft_sleep_ns, which parks on nothing but its own deadline.
 *
 * A yield swaps the caller for the head of its worker's run queue in one
 * step (wf_yield_internal, park.c; docs/design.md, "Scheduling"), so
 * a queue that holds a thread never reads empty while its worker changes
 * threads.  A sleep is a timed park that no waker ends: it parks again
 * until its timer claims the wait, which makes it immune to stray wake-ups.
 * A cancellation or a signal sent to the sleeper does end it (EINTR, like
 * nanosleep; cancel.c, signals.c).  A zero sleep is a yield.
 */
#include <errno.h>
#include "sched_internal.h"

int weft_yield(void)
{
	if (!wf_self_init())
		return EPERM;
	wf_yield_internal();
	return 0;
}

int weft_sleep_ns(uint64_t ns)
{
	struct wf_thread *self = wf_self_init();
	if (!self)
		return EPERM;
	if (ns == 0) {
		wf_yield_internal();
		return 0;
	}
	uint64_t now = wf_clock_ns();
	uint64_t dl = ns > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + ns;
	int r;
	do {
		/* A cancellation point, and a signal ends it (as nanosleep). */
		wf_park_reason(self, WF_BLOCK_SLEEP, NULL);
		wf_park_prepare_intr(self, WF_INTR_CANCEL | WF_INTR_SIGNAL);
	} while ((r = wf_park(NULL, dl)) == 0);  /* no waker ends a sleep */
	if (r != EINTR)
		return 0;
	(void)wf_interrupted();   /* never restarted, as nanosleep */
	return EINTR;
}
