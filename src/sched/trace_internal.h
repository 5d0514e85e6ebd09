/*
 * trace_internal.h — what trace.c (recording) and trace_export.c (writing
 * the JSON at exit) share: the record format, the per-worker buffers and
 * the trace's state.  Private to those two files; the scheduler's hooks
 * are in trace.h.
 */
#ifndef WF_TRACE_INTERNAL_H
#define WF_TRACE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include "sched_internal.h"
#include "trace.h"

#define WF_TR_CHUNK_SHIFT 14
#define WF_TR_CHUNK       (1u << WF_TR_CHUNK_SHIFT)   /* records: 384 KiB */
#define WF_TR_NAME_LEN    sizeof(((struct wf_thread *)0)->name)

enum wf_tr_type {
	WF_TR_SWITCH = 1, /* id/arg: next thread and its generation; id 0: idle */
	WF_TR_NAME,       /* id/arg: a finished thread; name in the next records */
	WF_TR_PREEMPT,    /* id */
	WF_TR_BLOCK,      /* id; aux: enum wf_block; arg: the object */
	WF_TR_WAKE,       /* id: the woken; arg: the waker's id, 0 = none */
	WF_TR_STEAL,      /* id; arg: the victim worker */
	WF_TR_NAME_PART,  /* after WF_TR_NAME: aux = part; ts, arg: 16 bytes of
	                     the name.  Typed, so that a reader starting inside
	                     a name (the ring's oldest record) can skip it. */
};

struct wf_tr_rec {
	uint64_t ts;      /* CLOCK_MONOTONIC ns */
	uint64_t arg;
	uint32_t id;      /* thread slot + 1 (the low half of its handle) */
	uint8_t type;     /* enum wf_tr_type */
	uint8_t aux;
	uint16_t pad;
};
_Static_assert(sizeof(struct wf_tr_rec) == 24, "trace records are 24 bytes");

/* Name bytes in one WF_TR_NAME_PART record, and the records of a name:
 * also the most records one event takes. */
#define WF_TR_PART_BYTES (2 * sizeof(uint64_t))
#define WF_TR_NAME_RECS  (1 + (WF_TR_NAME_LEN + WF_TR_PART_BYTES - 1) / WF_TR_PART_BYTES)

/*
 * One worker's buffer: a ring of the last `cap` records (wf_tr.cap).
 * Record i (counting every record ever appended) lives in slot i % cap,
 * slot k in chunks[k / WF_TR_CHUNK].  Invariants: only the worker's own
 * kernel thread writes to it (the writers of the file only read); records
 * [len - cap, len) are complete (fewer while len < cap), and every chunk
 * holding one of them is in `chunks` before len says so (release store of
 * len).  Appending records [len, len + n) overwrites records
 * [len + n - cap ...), before len is published: a reader checks len again
 * after copying (trace_export.c).  The fast path appends to `cur`, whose
 * slot 0 holds record cur_base, while the new records stay below `room`,
 * which never passes the end of cur's chunk, and is 0 once stopped.
 */
struct wf_tr_buf {
	_Atomic uint64_t len;          /* records appended, all published */
	_Atomic uint64_t dropped;      /* events not recorded: out of memory
	                                  (owner writes) */
	_Atomic uint64_t stop_ts;      /* when recording stopped; 0 = running */
	struct wf_tr_rec **chunks;     /* ceil(cap / WF_TR_CHUNK) entries */
	struct wf_tr_rec *cur;         /* the chunk being filled, or NULL */
	uint64_t cur_base;             /* the record in cur's slot 0 */
	uint64_t room;                 /* records below this index fit in cur */
	uint32_t waker;                /* id credited with wakes, 0 = current */
	bool stopped;
} __attribute__((aligned(WF_CACHELINE)));


/* The trace: set up by wf_trace_init, fixed afterwards but for the atomics. */
struct wf_tr_state {
	struct wf_tr_buf *_Atomic bufs;  /* published before wf_trace_on; one
	                                    per worker slot (WF_MAX_KTHREADS) */
	uint64_t cap;                    /* records per worker: the ring */
	uint64_t t0;                     /* ns: the start of the trace */
	int fd;
	pid_t pid;
	const char *path;
	_Atomic uint64_t foreign_wakes;  /* wakes by kernel threads that are not workers */
	/* Who writes the file now: 0 nobody, else the writer's kernel tid;
	 * WF_TR_CLOSED once the exit-time write has closed it. */
	_Atomic int32_t writer;
};
extern struct wf_tr_state wf_tr WF_HIDDEN;
#define WF_TR_CLOSED (-1)

static inline uint32_t wf_tr_id(const struct wf_thread *t) { return t->index + 1; }

static inline uint32_t wf_tr_gen(const struct wf_thread *t)
{
	return atomic_load_explicit(&((struct wf_thread *)t)->gen, memory_order_relaxed);
}


/* The atexit handler (trace_export.c): write the JSON file from a snapshot
 * of every buffer, and close it.  Registered by wf_trace_init. */
void wf_tr_write(void) WF_HIDDEN;

/* The handler of SIGTERM and SIGINT while tracing (trace_export.c): write
 * the file as it stands, then apply the program's action for the signal.
 * Installed by wf_trace_init. */
void wf_tr_on_signal(int sig, siginfo_t *si, void *uc) WF_HIDDEN;

#endif
