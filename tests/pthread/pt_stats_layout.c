/*
 * pt_stats_layout.c — the tests' copy of weft_stats_t (pt_stats.h) has
 * weft_stats_t's size and each field at weft_stats_t's offset.  Compiled,
 * never run: a mismatch fails the build, where a test reading the wrong
 * field could still pass by chance (it once read `migrations` as `alive`).
 */
#include <stddef.h>
#include "weft.h"
#include "pt_stats.h"

#define SAME(f) _Static_assert(offsetof(struct pt_stats, f) == offsetof(weft_stats_t, f), \
                               "pt_stats." #f " is not at weft_stats_t's offset")
SAME(switches); SAME(yields); SAME(preemptions); SAME(deferred_ticks);
SAME(ticks); SAME(steals); SAME(parks); SAME(wakeups); SAME(created);
SAME(finished); SAME(idle_sleeps); SAME(idle_ns); SAME(migrations);
SAME(alive); SAME(queued); SAME(handoffs);
_Static_assert(sizeof(struct pt_stats) == sizeof(weft_stats_t),
               "weft_stats_t has fields that pt_stats.h lacks");
