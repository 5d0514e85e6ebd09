/*
 * stats.c — reading the per-worker counters.  Each counter has a single
 * writer (its worker); readers sum relaxed loads, so a total is a snapshot
 * up to increments happening meanwhile.
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
	if (worker < -1 || worker >= wf_rt.nworkers)
		return EINVAL;
	uint64_t sum[sizeof(weft_stats_t) / sizeof(uint64_t)] = { 0 };
	for (int i = 0; i < wf_rt.nworkers; i++) {
		if (worker != -1 && worker != i)
			continue;
		for (size_t k = 0; k < sizeof sum / sizeof sum[0]; k++)
			sum[k] += atomic_load_explicit(&wf_rt.workers[i].stats.v[k],
			                               memory_order_relaxed);
	}
	memcpy(out, sum, sizeof *out);
	return 0;
}
