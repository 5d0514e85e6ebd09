/*
 * waitq.h — the one wait queue every blocking object of src/sync is built
 * on: a spinlock and a FIFO of waiter nodes.
 *
 * Design.  A waiter node lives on the stack of the thread it describes and
 * is linked into the object's queue (weft_waitq_, embedded in every public
 * object) while the thread is parked.  The list is doubly linked so that a
 * waiter whose deadline passes unlinks itself in O(1), wherever it is in
 * the queue.  Nothing is allocated: a wait can never fail for want of
 * memory, and a node's lifetime is exactly the wait's.
 *
 * Blocking follows park.h (docs/design.md, "Parking and the sync objects"):
 *   lock(q); wf_waitq_enqueue(q, n)   -- wf_park_prepare, then link n
 *   ...object-specific work under q's lock...
 *   wf_waitq_park(q, deadline)        -- wf_park releases q's lock only once
 *                                        the caller's registers are saved
 * so a waker that finds n in q can never resume a thread still running.
 *
 * Waking: decide under the lock, wake outside it.  A waker pops n, writes
 * what it grants into n->wake, notes n->thread, UNLOCKS q, and only then
 * calls wf_unpark.  wf_unpark may make system calls (waking an idle worker,
 * arming its timer); holding a spinlock across them stalls every other
 * user of the object whenever the kernel deschedules the waker, and under
 * CPU oversubscription that was measured to dominate everything.  park.h's
 * version keeps the lock across wf_unpark for one reason: a claim must only
 * ever meet the wait it dequeued, never a later wait of the same thread.
 * Here that is kept by a handshake on the rare path instead:
 *
 *   A thread can start a new wait only after its current one ended.  If
 *   the waker's claim wins, the wait ended by that claim (the waker does
 *   not touch t->wait again).  If the timer's claim wins, the waiter takes
 *   q's lock and finds n unlinked (a waker popped it): it then waits for
 *   n->done, which that waker sets only after its claim attempt failed and
 *   it has passed the grant on (next waiter, the count, ...) and released
 *   q for the last time.  So the waiter can neither start a new wait before
 *   the waker's claim, nor return while the waker still uses the object.
 *
 * What a wake-up means is decided by exactly one party: park.c claims each
 * wait once, by the waker (wf_unpark true, wf_park returns 0) or by the
 * timer (wf_unpark false, wf_park returns ETIMEDOUT).  The waiter trusts
 * wf_park's result, never n->wake alone.
 *
 * This relies on one property of park.c: after a successful claim,
 * wf_unpark touches t only to cancel its timer and queue it, and nothing of
 * t once it is queued (from then on t may run and wait again).
 *
 * Lifetime: either side may destroy or free the object as soon as its own
 * call returns (a completion semaphore on the waiter's stack; a barrier
 * destroyed by its serial thread).  A waker touches neither the object nor
 * a node after a successful wf_unpark (it reads n->next and n->thread
 * first), and a woken waiter touches the object after wf_park only if it
 * is still inside a call on it (a mutex waiter told to retry).  Every
 * destroy function takes the lock, to wait out a waker still inside.
 *
 * Rejected: a lock-free (MCS-style) queue — the lock is held for a few
 * pointer updates and wf_park needs a lock to release after the switch
 * anyway; one queue per object shared through a hash table (Linux futex
 * style) — an extra indirection and a shared lock between unrelated
 * objects; nodes allocated on the heap — a wait could then fail; waking
 * under the queue lock (park.h's letter) — see above; a handshake on every
 * wake-up (the woken thread waiting for its waker to leave) — the same
 * stall, on the common path.
 */
#ifndef WF_SYNC_WAITQ_H
#define WF_SYNC_WAITQ_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "weft.h"
#include "../context/cpu.h"
#include "../sched/park.h"

/* The queue lock is the uint32_t weft_waitq_._lock, used as a wf_spin_t so
 * that wf_park can release it; every access goes through the wf_spin_t. */
_Static_assert(sizeof(wf_spin_t) == sizeof(uint32_t) &&
               _Alignof(wf_spin_t) == _Alignof(uint32_t),
               "weft_waitq_._lock must be usable as a wf_spin_t");

/* What a waker grants a waiter it dequeues (n->wake; read by the waiter only
 * when wf_park returned 0). */
enum {
	WF_WAKE_NONE = 0,
	WF_WAKE_GRANTED,   /* the object is yours: a mutex handed off, a sem
	                      token, an rwlock grant, a barrier phase, once done */
	WF_WAKE_WOKEN,     /* mutex, normal mode: try again; the mutex's WOKEN
	                      bit was set for you and is yours to clear */
	WF_WAKE_SIGNAL,    /* condition variable: signalled; relock the mutex */
};

/* A waiter, on its own stack. */
struct wf_wnode {
	struct wf_wnode *next, *prev;
	weft_waitq_ *q;            /* queue it is linked on; NULL when not linked */
	struct wf_thread *thread;  /* the parked thread */
	uintptr_t handle;          /* its weft_t (mutex and rwlock owner) */
	uint64_t since;            /* mutex: when it began to wait (ns), 0 = not yet */
	void *obj;                 /* cond: the mutex it waits with */
	uint32_t wake;             /* WF_WAKE_*, written by the waker */
	uint32_t done;             /* set by a waker whose claim the timer beat */
	uint8_t kind;              /* rwlock: reader or writer */
	uint8_t requeued;          /* cond: moved onto the mutex's queue */
	uint8_t raced;             /* timed out after a waker dequeued it */
	uint8_t arming;            /* cond: linked, wait not yet published */
	uint8_t intr;              /* WF_INTR_*: what else may end the wait
	                              (park.h); 0 for most waits */
};

static inline wf_spin_t *wf_waitq_spin(weft_waitq_ *q)
{
	return (wf_spin_t *)(void *)&q->_lock;
}

static inline void wf_waitq_lock(weft_waitq_ *q) { wf_spin_lock(wf_waitq_spin(q)); }
static inline void wf_waitq_unlock(weft_waitq_ *q) { wf_spin_unlock(wf_waitq_spin(q)); }

static inline void wf_waitq_init(weft_waitq_ *q)
{
	q->_lock = 0;
	q->_count = 0;
	q->_head = q->_tail = NULL;
}

/* Number of linked waiters.  Exact under the lock; without it, a hint that
 * is exact for anyone ordered after the last enqueue or dequeue (it is
 * written with release under the lock, read with acquire). */
static inline uint32_t wf_waitq_count(const weft_waitq_ *q)
{
	return __atomic_load_n(&q->_count, __ATOMIC_ACQUIRE);
}

static inline bool wf_waitq_empty(const weft_waitq_ *q) { return q->_head == NULL; }

static inline struct wf_wnode *wf_waitq_head(const weft_waitq_ *q)
{
	return (struct wf_wnode *)q->_head;
}

static inline void wf_waitq_count_add(weft_waitq_ *q, int d)
{
	__atomic_store_n(&q->_count, q->_count + (uint32_t)d, __ATOMIC_RELEASE);
}

/* The list operations below require q's lock. */
static inline void wf_waitq_push_tail(weft_waitq_ *q, struct wf_wnode *n)
{
	struct wf_wnode *t = (struct wf_wnode *)q->_tail;
	n->next = NULL;
	n->prev = t;
	if (t)
		t->next = n;
	else
		q->_head = n;
	q->_tail = n;
	n->q = q;
	wf_waitq_count_add(q, 1);
}

static inline void wf_waitq_push_head(weft_waitq_ *q, struct wf_wnode *n)
{
	struct wf_wnode *h = (struct wf_wnode *)q->_head;
	n->prev = NULL;
	n->next = h;
	if (h)
		h->prev = n;
	else
		q->_tail = n;
	q->_head = n;
	n->q = q;
	wf_waitq_count_add(q, 1);
}

static inline void wf_waitq_remove(weft_waitq_ *q, struct wf_wnode *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		q->_head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		q->_tail = n->prev;
	n->next = n->prev = NULL;
	n->q = NULL;
	wf_waitq_count_add(q, -1);
}

static inline struct wf_wnode *wf_waitq_pop(weft_waitq_ *q)
{
	struct wf_wnode *n = (struct wf_wnode *)q->_head;
	if (n)
		wf_waitq_remove(q, n);
	return n;
}

/* Start a wait of the calling thread n->thread and link n (q locked).  The
 * wait is published (wf_park_prepare) before n becomes visible to wakers. */
static inline void wf_waitq_enqueue(weft_waitq_ *q, struct wf_wnode *n, bool at_head)
{
	if (n->intr)
		wf_park_prepare_intr(n->thread, n->intr);
	else
		wf_park_prepare(n->thread);
	n->wake = WF_WAKE_NONE;
	n->done = 0;
	n->raced = 0;
	if (at_head)
		wf_waitq_push_head(q, n);
	else
		wf_waitq_push_tail(q, n);
}

/* Park after wf_waitq_enqueue (q locked; released by the switch). */
static inline int wf_waitq_park(weft_waitq_ *q, uint64_t deadline)
{
	return wf_park(wf_waitq_spin(q), deadline);
}

/*
 * The whole wait for the simple objects: q locked, n->thread set.  Links n,
 * parks, and returns
 *   0          woken by a waker that dequeued n (n->wake says what it
 *              gave); q is unlocked;
 *   ETIMEDOUT  the deadline won; n is unlinked and q is LOCKED, so the
 *              caller can repair its state; it must then unlock with
 *              wf_waitq_timeout_unlock.
 *   EINTR      an interrupter named in n->intr won (park.h): as for
 *              ETIMEDOUT, then the caller returns wf_interrupted().
 */
int wf_waitq_wait(weft_waitq_ *q, struct wf_wnode *n, uint64_t deadline,
                  bool at_head) WF_HIDDEN;

/* Unlock q after a timeout or an interruption, then, if a waker had
 * dequeued n (n->raced), wait until that waker is done (see the handshake
 * above). */
void wf_waitq_timeout_unlock(weft_waitq_ *q, struct wf_wnode *n) WF_HIDDEN;

/* Waker side.  Under q's lock, n dequeued: record the grant and return the
 * thread to wake once q is unlocked. */
static inline struct wf_thread *wf_waitq_grant(struct wf_wnode *n, uint32_t how)
{
	n->wake = how;
	return n->thread;
}

/* A waker's list of nodes whose claim it lost (linked through next; each
 * node's thread waits for done).  Released after the waker's last access
 * to the object. */
static inline void wf_wnode_refused(struct wf_wnode **list, struct wf_wnode *n)
{
	n->next = *list;
	*list = n;
}

static inline void wf_wnode_release(struct wf_wnode *list)
{
	while (list) {
		struct wf_wnode *next = list->next;   /* before the release */
		__atomic_store_n(&list->done, 1, __ATOMIC_RELEASE);
		list = next;
	}
}

/* Nodes dequeued under one lock hold, woken after the unlock (barrier,
 * once, a run of rwlock readers).  FIFO through next. */
struct wf_wbatch { struct wf_wnode *head, *tail; };
#define WF_WBATCH_INIT { NULL, NULL }

static inline void wf_wbatch_add(struct wf_wbatch *b, struct wf_wnode *n, uint32_t how)
{
	n->wake = how;
	n->next = NULL;
	if (b->tail)
		b->tail->next = n;
	else
		b->head = n;
	b->tail = n;
}

/* q unlocked: wake every node of b, in order.  Returns the nodes whose
 * claim was refused (timing out), for the caller to deal with and then
 * release; a woken node is never touched again. */
static inline struct wf_wnode *wf_wbatch_wake(struct wf_wbatch *b)
{
	struct wf_wnode *n = b->head, *refused = NULL;
	b->head = b->tail = NULL;
	while (n) {
		struct wf_wnode *next = n->next;
		if (!wf_unpark(n->thread))
			wf_wnode_refused(&refused, n);
		n = next;
	}
	return refused;
}

/* The calling green thread for a sync call: initializes weft on first use.
 * NULL with *err = EPERM on a kernel thread that is not a green thread, or
 * *err = the initialization error. */
struct wf_thread *wf_sync_self_slow(int *err) WF_HIDDEN;

static inline struct wf_thread *wf_sync_self(int *err)
{
	struct wf_thread *t = wf_current();
	return wf_likely(t) ? t : wf_sync_self_slow(err);
}

#endif
