/*
 * libc_real.h — weft's own calls of libc's pthread functions.
 *
 * weft creates kernel threads with pthread_create, takes a pthread mutex
 * while it picks a backend, reads glibc's thread-specific data and thread
 * attributes to validate the clone backend, and waits on a POSIX semaphore
 * in its dump thread.  The pthread layer (src/pthread, libweft-pthread)
 * exports the same names to programs, and a dynamic symbol reference binds
 * to the first definition in the process — the layer's, when the layer is
 * preloaded or linked ahead of libc.  weft's calls must reach glibc (or
 * whatever wraps it below the layer, such as a sanitizer's interceptor)
 * instead, or weft would try to create its workers as green threads.
 *
 * WF_LIBC(fn)(args...) calls the definition of fn that the process would
 * use if the layer were not loaded.  Without the layer it is exactly the
 * ordinary binding (&fn).  Each call site caches the address it resolved
 * (the lookup itself takes the loader's lock: keep it off hot paths).
 */
#ifndef WF_KT_LIBC_REAL_H
#define WF_KT_LIBC_REAL_H

#include "../context/cpu.h"

/* The definition of `name` that follows the pthread layer in the loader's
 * search order; `dflt` when the layer is not loaded or the lookup finds
 * nothing. */
void *wf_libc_sym(const char *name, void *dflt) WF_HIDDEN;

/* Racy cache: every thread that resolves it stores the same address. */
#define WF_LIBC(fn) (*({ \
	static __typeof__(&(fn)) wf_libc_p_; \
	__typeof__(&(fn)) p_ = __atomic_load_n(&wf_libc_p_, __ATOMIC_RELAXED); \
	if (wf_unlikely(!p_)) { \
		p_ = (__typeof__(&(fn)))wf_libc_sym(#fn, (void *)&(fn)); \
		__atomic_store_n(&wf_libc_p_, p_, __ATOMIC_RELAXED); \
	} \
	p_; }))

#endif
