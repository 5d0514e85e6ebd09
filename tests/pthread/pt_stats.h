/*
 * pt_stats.h — weft_stats_t as the pthread-layer tests see it.
 *
 * The tests are ordinary pthread programs that include no weft header, so
 * they declare weft_stats_t's layout themselves and find weft_stats_get
 * with dlsym.  This struct must match include/weft.h field for field:
 * pt_stats_layout.c, compiled with the tests, asserts that it does.
 * C and C++ (pt_cxx.cpp) both include it.
 */
#ifndef PT_STATS_H
#define PT_STATS_H

#include <stdint.h>

struct pt_stats {
	uint64_t switches, yields, preemptions, deferred_ticks, ticks, steals, parks,
	         wakeups, created, finished, idle_sleeps, idle_ns, migrations, alive,
	         queued, handoffs;
};

#endif
