/*
 * pt_cxa.c — C++ exception state per green thread.
 *
 * The C++ runtime keeps, per thread, the stack of exceptions being handled
 * (for rethrow and std::current_exception) and the count of uncaught ones,
 * in a __thread variable behind __cxa_get_globals (the Itanium C++ ABI).
 * Under weft a __thread variable is per worker, so a green thread
 * preempted inside a catch block, or parked there, would share that stack
 * with the next thread its worker runs: that thread's __cxa_end_catch could
 * then destroy the first thread's exception (seen as a use-after-free of
 * the exception's message under ASan).  libstdc++ reaches the state only
 * through __cxa_get_globals and __cxa_get_globals_fast, called through its
 * PLT, so the layer answers both with a record kept in a weft key — per
 * green thread, freed when the thread finishes.  A foreign thread gets the
 * C++ runtime's own.
 */
#include <stdlib.h>
#include "pt_internal.h"

struct pt_eh_globals {           /* __cxa_eh_globals */
	void *caught_exceptions;
	unsigned int uncaught_exceptions;
};

static weft_key_t pt_eh_key;
static int pt_eh_key_state;      /* 0 none, 1 made, -1 failed */

void pt_cxa_init(void) PT_HIDDEN;
void pt_cxa_init(void)
{
	pt_eh_key_state = weft_key_create(&pt_eh_key, free) ? -1 : 1;
}

void *__cxa_get_globals(void);
void *__cxa_get_globals_fast(void);

PT_API void *__cxa_get_globals(void)
{
	if (pt_unlikely(__atomic_load_n(&pt_eh_key_state, __ATOMIC_ACQUIRE) != 1) || !pt_green())
		return pt_real(__cxa_get_globals)();
	void *g = weft_getspecific(pt_eh_key);
	if (pt_likely(g))
		return g;
	if (!(g = calloc(1, sizeof(struct pt_eh_globals))) || weft_setspecific(pt_eh_key, g)) {
		/* Out of memory: nothing to answer with that a caller could
		 * use; the C++ runtime would terminate too. */
		abort();
	}
	return g;
}

PT_API void *__cxa_get_globals_fast(void)
{
	return __cxa_get_globals();
}
