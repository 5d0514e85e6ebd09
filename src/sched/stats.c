/*
 * stats.c — reading the per-worker counters.  Each counter has a single
 * writer (its worker); readers sum relaxed loads, so a total is a snapshot
 * up to increments happening meanwhile.  `alive` is itself such a sum
 * (created minus finished, wf_live_count in thread.c): exact when no
 * thread is being created or finishing, never below the true count.
 */
#include <errno.h>
#include <string.h>
#include "sched_internal.h"

int weft_stats_get(int worker, weft_stats_t *out)
{
	if (!out)
		return EINVAL;
	if (wf_runtime_ensure())
		return EINVAL;
	if (worker < -1 || worker >= wf_nkthreads())
		return EINVAL;
	uint64_t sum[WF_STAT_COUNTERS] = { 0 };
	uint64_t queued = 0;
	for (int i = 0, n = wf_nkthreads(); i < n; i++) {
		struct wf_worker *w = &wf_rt.workers[i];
		if (worker != -1 && worker != i)
			continue;
		for (size_t k = 0; k < WF_STAT_COUNTERS; k++)
			sum[k] += atomic_load_explicit(&w->stats.v[k], memory_order_relaxed);
		queued += atomic_load_explicit(&w->rq_len, memory_order_relaxed);
	}
	memset(out, 0, sizeof *out);
	memcpy(out, sum, sizeof sum);
	out->alive = wf_live_count();
	out->queued = queued + (worker == -1 ? atomic_load_explicit(&wf_rt.gq_len, memory_order_relaxed) : 0);
	out->handoffs = atomic_load_explicit(&wf_rt.retakes, memory_order_relaxed);
	return 0;
}
