/*
 * yield.c — a green thread giving its worker away: weft_yield, and
 * weft_sleep_ns, which parks on nothing but its own deadline.
 *
 * A yield swaps the caller for the head of its worker's run queue in one
 * step (wf_yield_internal, park.c; docs/design.md, "Scheduling"), so
 * a queue that holds a thread never reads empty while its worker changes
 * threads.  A sleep is a timed park that nothing else wakes: it parks again
 * until its timer claims the wait, which makes it immune to stray wake-ups.
 * A zero sleep is a yield.
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
	do {
		wf_park_reason(self, WF_BLOCK_SLEEP, NULL);
		wf_park_prepare(self);
	} while (wf_park(NULL, dl) != ETIMEDOUT);  /* nothing else wakes a sleeper */
	return 0;
}
