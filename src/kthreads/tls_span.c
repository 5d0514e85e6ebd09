/*
 * tls_span.c — where the calling kernel thread's thread-local storage lies.
 *
 * Every address that initial-exec or local-exec TLS code can form on a
 * thread (errno's, any __thread variable of a module loaded at start, the
 * C++ runtime's exception globals), and pthread_self(), lie in one block:
 * the thread's static TLS and its thread descriptor, allocated together
 * (by pthread_create in a pthread's stack, by _dl_allocate_tls for a clone
 * worker, by ld.so for the initial thread).  src/sched rebases a green
 * thread's pointers into that block when the thread moves to another
 * kernel thread (docs/design.md, "Moving threads between workers").
 *
 * glibc's layout around the thread pointer differs by ISA (x86-64 is TLS
 * variant II, AArch64 variant I): src/context/tls.h knows it, given the
 * static TLS size that _dl_get_tls_static_info reports and the descriptor's
 * size (sizeof (struct pthread), exported for libthread_db as
 * _thread_db_sizeof_pthread).
 * Both symbols are GLIBC_PRIVATE; where either is missing the span is
 * built from what dl_iterate_phdr reports of this thread's module blocks,
 * widened to the descriptor (which misses only the surplus reserved for
 * modules loaded later).
 */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>

#include "kt_internal.h"
#include "../context/tls.h"

/* When _thread_db_sizeof_pthread is missing: glibc 2.36's x86-64 size,
 * rounded up (a span a little too wide only costs a scan a few words). */
#define WF_KT_TCB_FALLBACK 4096u

static uintptr_t wf_kt_thread_pointer(void)
{
	return (uintptr_t)__builtin_thread_pointer();
}

static size_t wf_kt_tcb_size(void)
{
	const uint32_t *d = dlvsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread", "GLIBC_PRIVATE");
	return d && *d ? *d : WF_KT_TCB_FALLBACK;
}

struct wf_kt_span { uintptr_t lo, hi; };

static int wf_kt_module_tls(struct dl_phdr_info *info, size_t size, void *data)
{
	struct wf_kt_span *s = data;
	(void)size;
	if (!info->dlpi_tls_data)
		return 0;   /* no TLS, or a dynamic block not allocated on this thread */
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_TLS)
			continue;
		uintptr_t lo = (uintptr_t)info->dlpi_tls_data;
		if (lo < s->lo)
			s->lo = lo;
		if (lo + ph->p_memsz > s->hi)
			s->hi = lo + ph->p_memsz;
	}
	return 0;
}

void wf_kt_tls_span(uintptr_t *lo, uintptr_t *hi)
{
	uintptr_t tp = wf_kt_thread_pointer();
	size_t tcb = wf_kt_tcb_size();
	void (*info)(size_t *, size_t *) =
		(void (*)(size_t *, size_t *))dlvsym(RTLD_DEFAULT, "_dl_get_tls_static_info",
		                                     "GLIBC_PRIVATE");
	size_t size = 0, align = 0;
	if (info)
		info(&size, &align);
	struct wf_kt_span s;
	if (wf_tls_static_span(tp, tcb, info ? size : 0, &s.lo, &s.hi)) {
		*lo = s.lo;
		*hi = s.hi;
		return;
	}
	dl_iterate_phdr(wf_kt_module_tls, &s);
	*lo = s.lo;
	*hi = s.hi;
}
