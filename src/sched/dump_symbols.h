/*
 * dump_symbols.h — code addresses to function names, for weft_dump.
 */
#ifndef WF_DUMP_SYMBOLS_H
#define WF_DUMP_SYMBOLS_H

#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include "../context/cpu.h"

#define WF_SYMCACHE_MODULES 16

/* One module (program or shared object) with its symbol table mapped. */
struct wf_symmod {
	uintptr_t fbase;        /* where dladdr says it is loaded */
	uintptr_t bias;         /* added to a symbol's value to get its address */
	void *map;              /* the file, mapped read-only; NULL if unreadable */
	size_t len;
	const ElfW(Sym) *syms;  /* NULL: no symbol table found */
	size_t nsyms;
	const char *strs;
	size_t strs_len;
};

/* Modules seen during one dump; starts zeroed, released at the end. */
struct wf_symcache {
	struct wf_symmod mod[WF_SYMCACHE_MODULES];
	int n;
};

/* The function containing the call that returns to pc, and pc's offset in
 * it; NULL if unknown.  *di is dladdr's answer for pc - 1 (zeroed when it
 * has none), so the caller can still print module+offset. */
const char *wf_sym_name(struct wf_symcache *c, uintptr_t pc, uintptr_t *off,
                        Dl_info *di) WF_HIDDEN;

/* Unmap everything the cache mapped. */
void wf_symcache_release(struct wf_symcache *c) WF_HIDDEN;

#endif
