/*
 * fdtable.c — the records of descriptor numbers (io_internal.h says what a
 * record holds).
 *
 * A table indexed by the number: an array of pointers to chunks of 4096
 * records, each chunk allocated the first time a number in it is waited
 * on and never freed.  Lookups take no lock: a chunk pointer is published
 * once (compare-and-swap, release) and read with acquire, and a record
 * never moves, so the poller can find the record of any event it gets.
 * The memory is what descriptors in use cost: 32 bytes per number up to
 * the highest number waited on, rounded to a chunk (128 KiB, of which only
 * the pages touched are resident).
 *
 * Rejected: a hash map (a lock or a probe on every lookup, and entries
 * that can go away under the poller); records allocated per wait (the
 * poller could find a freed one).
 */
#include <stdlib.h>
#include "io_internal.h"

#define WF_IO_NCHUNKS (WF_IO_MAX_FD >> WF_IO_CHUNK_SHIFT)

static struct wf_io_fd *_Atomic wf_io_chunks[WF_IO_NCHUNKS];
static _Atomic int wf_io_top;

struct wf_io_fd *wf_io_fd_find(int fd)
{
	if (fd < 0 || fd >= WF_IO_MAX_FD)
		return NULL;
	struct wf_io_fd *c = atomic_load_explicit(&wf_io_chunks[fd >> WF_IO_CHUNK_SHIFT],
	                                          memory_order_acquire);
	return c ? &c[fd & (WF_IO_CHUNK - 1)] : NULL;
}

struct wf_io_fd *wf_io_fd_get(int fd)
{
	struct wf_io_fd *r = wf_io_fd_find(fd);
	if (wf_likely(r) || fd < 0 || fd >= WF_IO_MAX_FD)
		return r;
	int saved = WF_ERRNO;
	struct wf_io_fd *c = calloc(WF_IO_CHUNK, sizeof *c), *none = NULL;
	WF_ERRNO = saved;
	if (!c)
		return NULL;
	if (!atomic_compare_exchange_strong_explicit(&wf_io_chunks[fd >> WF_IO_CHUNK_SHIFT],
	                                             &none, c, memory_order_acq_rel,
	                                             memory_order_acquire)) {
		free(c);   /* another thread published the chunk first */
		c = none;
	}
	int top = atomic_load_explicit(&wf_io_top, memory_order_relaxed);
	int want = ((fd >> WF_IO_CHUNK_SHIFT) + 1) << WF_IO_CHUNK_SHIFT;
	while (top < want && !atomic_compare_exchange_weak_explicit(&wf_io_top, &top, want,
	                                                            memory_order_release,
	                                                            memory_order_relaxed))
		;
	return &c[fd & (WF_IO_CHUNK - 1)];
}

int wf_io_fd_top(void)
{
	return atomic_load_explicit(&wf_io_top, memory_order_acquire);
}
