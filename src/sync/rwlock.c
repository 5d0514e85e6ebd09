/*
 * rwlock.c — weft_rwlock_t: reader-writer locks in which writers do not
 * starve (and neither do readers).
 *
 * Design.  One 32-bit word: WRITER (a writer holds it), WAITERS (the queue
 * is not empty) and a reader count above them; one FIFO queue holding both
 * readers and writers, each node tagged with its kind.
 *
 * Fast paths are single compare-and-swaps: a reader adds itself when
 * neither WRITER nor WAITERS is set; a writer takes 0 -> WRITER; a reader
 * that is not the last leaves by decrementing, a writer with nobody waiting
 * by WRITER -> 0.  Everything else takes the queue lock.
 *
 * Writer preference without reader starvation: as soon as anybody waits,
 * WAITERS makes new readers queue too (a stream of readers can never keep a
 * writer out), and the queue is served strictly in order: when the lock
 * becomes free, the releaser grants it to the head — a writer alone, or the
 * whole run of consecutive readers at the head.  Granting is direct: the
 * releaser sets the new state (and the writer's _owner) before waking, so a
 * granted waiter returns without retrying and no newcomer can slip in.
 *
 * Invariants:
 *   I1  WAITERS <=> the queue is not empty; changed only under the queue
 *       lock, together with the enqueue or dequeue.
 *   I2  Under the queue lock, WAITERS implies the lock is held (WRITER or
 *       readers > 0): the release that would leave it free with waiters
 *       happens under the queue lock and grants before unlocking.  Hence no
 *       fast path changes the word while a granter works (readers need
 *       !WAITERS, writers need 0, and nobody holds it to release).
 *   I3  _owner is the writer's weft_t while WRITER is set by it, else 0.
 *
 * A consequence every writer-preferring lock shares: a thread that holds a
 * read lock and asks for another while a writer waits deadlocks (the
 * second request queues behind the writer, which waits for the first).
 *
 * Rejected: reader preference (glibc's default; writers starve under a
 * steady read load); a phase-fair ticket rwlock (spins, cannot park); two
 * queues (readers, writers) with a policy to alternate (more state for the
 * same fairness FIFO gives).
 */
#include "waitq.h"

#define WF_RW_WRITER   1u
#define WF_RW_WAITERS  2u
#define WF_RW_READER   4u
#define WF_RW_DEAD_BIT 0x80000000u
#define WF_RW_DEAD     (WF_RW_DEAD_BIT | WF_RW_WRITER)   /* fast paths fail */
#define WF_RW_MAX_READERS ((1u << 29) - 1)
#define WF_RWLOCKATTR_MAGIC 0x7772776cu

enum { WF_RW_KIND_READ = 0, WF_RW_KIND_WRITE = 1 };

static inline uint32_t wf_rw_readers(uint32_t s) { return (s & ~WF_RW_DEAD_BIT) >> 2; }

static inline uint32_t wf_rw_load(const weft_rwlock_t *l)
{
	return __atomic_load_n(&l->_state, __ATOMIC_RELAXED);
}

static inline bool wf_rw_cas(weft_rwlock_t *l, uint32_t *s, uint32_t n, int order)
{
	return __atomic_compare_exchange_n(&l->_state, s, n, false, order, __ATOMIC_RELAXED);
}

static inline uintptr_t wf_rw_owner(const weft_rwlock_t *l)
{
	return __atomic_load_n(&l->_owner, __ATOMIC_RELAXED);
}

static inline void wf_rw_set_owner(weft_rwlock_t *l, uintptr_t h)
{
	__atomic_store_n(&l->_owner, h, __ATOMIC_RELAXED);
}

int weft_rwlockattr_init(weft_rwlockattr_t *a)
{
	if (!a)
		return EINVAL;
	a->_magic = WF_RWLOCKATTR_MAGIC;
	return 0;
}

int weft_rwlockattr_destroy(weft_rwlockattr_t *a)
{
	if (!a || a->_magic != WF_RWLOCKATTR_MAGIC)
		return EINVAL;
	a->_magic = 0;
	return 0;
}

int weft_rwlock_init(weft_rwlock_t *l, const weft_rwlockattr_t *a)
{
	if (!l || (a && a->_magic != WF_RWLOCKATTR_MAGIC))
		return EINVAL;
	l->_reserved = 0;
	l->_owner = 0;
	wf_waitq_init(&l->_wq);
	__atomic_store_n(&l->_state, 0, __ATOMIC_RELEASE);
	return 0;
}

int weft_rwlock_destroy(weft_rwlock_t *l)
{
	if (!l)
		return EINVAL;
	wf_waitq_lock(&l->_wq);   /* waits out a releaser still granting */
	uint32_t s = 0;
	int e = 0;
	if (!wf_rw_cas(l, &s, WF_RW_DEAD, __ATOMIC_ACQUIRE))
		e = (s & WF_RW_DEAD_BIT) ? EINVAL : EBUSY;
	wf_waitq_unlock(&l->_wq);
	return e;
}

/* Lock free with WAITERS set, queue lock held (I2's "release that would
 * leave it free"): grant to the head of the queue — a writer, or the run of
 * readers at the head — by setting the new state (and the writer's _owner)
 * and moving the granted nodes to b, to be woken once the lock is
 * released.  Plain stores to the word suffice: by I2 nobody else changes
 * it now (readers need !WAITERS, writers need 0, nobody holds it). */
static void wf_rw_grant_locked(weft_rwlock_t *l, struct wf_wbatch *b)
{
	weft_waitq_ *q = &l->_wq;
	struct wf_wnode *n = wf_waitq_head(q);
	if (!n) {
		__atomic_store_n(&l->_state, 0, __ATOMIC_RELEASE);
		return;
	}
	if (n->kind == WF_RW_KIND_WRITE) {
		wf_waitq_pop(q);
		wf_rw_set_owner(l, n->handle);   /* I3: before the wake */
		__atomic_store_n(&l->_state,
		                 WF_RW_WRITER | (wf_waitq_empty(q) ? 0 : WF_RW_WAITERS),
		                 __ATOMIC_RELEASE);
		wf_wbatch_add(b, n, WF_WAKE_GRANTED);
		return;
	}
	/* Admit the whole run of readers at once: a woken reader may run and
	 * unlock before the rest are woken, but the count covers all of them
	 * and a last-reader unlock needs this queue lock, so nothing is
	 * granted twice. */
	uint32_t k = 0;
	while (n && n->kind == WF_RW_KIND_READ && k < WF_RW_MAX_READERS) {
		struct wf_wnode *next = n->next;
		wf_waitq_pop(q);
		wf_wbatch_add(b, n, WF_WAKE_GRANTED);
		k++;
		n = next;
	}
	__atomic_store_n(&l->_state,
	                 k * WF_RW_READER | (wf_waitq_empty(q) ? 0 : WF_RW_WAITERS),
	                 __ATOMIC_RELEASE);
}

/* Queue lock not held.  The caller holds the lock (what = WF_RW_WRITER or
 * WF_RW_READER; a writer has cleared _owner) and has seen WAITERS with
 * itself the last holder. */
static int wf_rw_release_slow(weft_rwlock_t *l, uint32_t what)
{
	struct wf_wbatch b = WF_WBATCH_INIT;
	wf_waitq_lock(&l->_wq);
	uint32_t s = __atomic_sub_fetch(&l->_state, what, __ATOMIC_RELEASE);
	if (!(s & WF_RW_WRITER) && wf_rw_readers(s) == 0 && (s & WF_RW_WAITERS))
		wf_rw_grant_locked(l, &b);
	wf_waitq_unlock(&l->_wq);   /* last access to l, normally */
	struct wf_wnode *refused = wf_wbatch_wake(&b);
	if (refused) {
		/* A waiter whose cancellation or deadline won the claim after
		 * we granted it the lock: release its grant as if it had
		 * unlocked at once (it waits for done meanwhile). */
		for (struct wf_wnode *r = refused; r; r = r->next) {
			if (r->kind == WF_RW_KIND_WRITE)
				wf_rw_set_owner(l, 0);
			wf_rw_release_slow(l, r->kind == WF_RW_KIND_WRITE ? WF_RW_WRITER
			                                                  : WF_RW_READER);
		}
		wf_wnode_release(refused);
	}
	return 0;
}

/*
 * Enqueue the caller and wait for a grant (queue lock held; released by the
 * park).  0: granted, the lock is held.  ETIMEDOUT: the deadline passed
 * first and the caller holds nothing.  A cancellation point, timed or not:
 * when cancelled the caller holds nothing and acts (wf_interrupted).  On a
 * departure that left the queue empty, WAITERS is cleared (I1); the lock is
 * held meanwhile (I2: we hold the queue lock), so only non-last readers can
 * change the word, and the last holder's release will see no waiters.
 * Waiters that queued behind the one that left keep their order and are
 * granted by the next release (not at once: readers queued behind a
 * departed writer wait for the current holders to finish, as they would
 * have anyway).  A waiter that was granted and dequeued but whose timeout
 * or cancellation won the claim (n->raced) holds nothing either: its
 * granter releases that grant for it (wf_rw_release_slow), and
 * wf_waitq_timeout_unlock waits until it has.
 */
static int wf_rw_wait(weft_rwlock_t *l, struct wf_wnode *n, uint64_t deadline)
{
	wf_park_reason(n->thread, n->kind == WF_RW_KIND_WRITE ? WF_BLOCK_RWLOCK_WRITE
	                                                      : WF_BLOCK_RWLOCK_READ, l);
	weft_waitq_ *q = &l->_wq;
	n->intr = WF_INTR_CANCEL;
	int r = wf_waitq_wait(q, n, deadline, false);
	if (r == 0)
		return 0;
	if (!n->raced && wf_waitq_empty(q)) {
		uint32_t s = wf_rw_load(l);
		while (!wf_rw_cas(l, &s, s & ~WF_RW_WAITERS, __ATOMIC_RELAXED))
			;
	}
	wf_waitq_timeout_unlock(q, n);
	return r == EINTR ? wf_interrupted() : ETIMEDOUT;
}

static int wf_rw_rdlock(weft_rwlock_t *l, bool try, uint64_t deadline)
{
	if (!l)
		return EINVAL;
	int e;
	struct wf_thread *self = wf_sync_self(&e);
	if (!self)
		return e;
	if (wf_rw_owner(l) == wf_thread_handle(self))
		return try ? EBUSY : EDEADLK;   /* we hold the write lock */
	uint32_t s = wf_rw_load(l);
	while (!(s & (WF_RW_WRITER | WF_RW_WAITERS))) {
		if (wf_rw_readers(s) >= WF_RW_MAX_READERS)
			return EAGAIN;
		if (wf_rw_cas(l, &s, s + WF_RW_READER, __ATOMIC_ACQUIRE))
			return 0;
	}
	if (s & WF_RW_DEAD_BIT)
		return EINVAL;
	if (try)
		return EBUSY;

	weft_waitq_ *q = &l->_wq;
	wf_waitq_lock(q);
	s = wf_rw_load(l);
	for (;;) {
		if (s & WF_RW_DEAD_BIT) {
			wf_waitq_unlock(q);
			return EINVAL;
		}
		if (!(s & (WF_RW_WRITER | WF_RW_WAITERS))) {
			if (wf_rw_readers(s) >= WF_RW_MAX_READERS) {
				wf_waitq_unlock(q);
				return EAGAIN;
			}
			if (wf_rw_cas(l, &s, s + WF_RW_READER, __ATOMIC_ACQUIRE)) {
				wf_waitq_unlock(q);
				return 0;
			}
			continue;
		}
		/* Held (I2): set WAITERS in a step that confirms it. */
		if (wf_rw_cas(l, &s, s | WF_RW_WAITERS, __ATOMIC_RELAXED))
			break;
	}
	struct wf_wnode n = { .thread = self, .kind = WF_RW_KIND_READ };
	return wf_rw_wait(l, &n, deadline);
}

static int wf_rw_wrlock(weft_rwlock_t *l, bool try, uint64_t deadline)
{
	if (!l)
		return EINVAL;
	int e;
	struct wf_thread *self = wf_sync_self(&e);
	if (!self)
		return e;
	uintptr_t h = wf_thread_handle(self);
	if (wf_rw_owner(l) == h)
		return try ? EBUSY : EDEADLK;
	uint32_t s = 0;
	if (wf_rw_cas(l, &s, WF_RW_WRITER, __ATOMIC_ACQUIRE)) {
		wf_rw_set_owner(l, h);
		return 0;
	}
	if (s & WF_RW_DEAD_BIT)
		return EINVAL;
	if (try)
		return EBUSY;

	weft_waitq_ *q = &l->_wq;
	wf_waitq_lock(q);
	s = wf_rw_load(l);
	for (;;) {
		if (s & WF_RW_DEAD_BIT) {
			wf_waitq_unlock(q);
			return EINVAL;
		}
		if (s == 0) {
			if (wf_rw_cas(l, &s, WF_RW_WRITER, __ATOMIC_ACQUIRE)) {
				wf_rw_set_owner(l, h);
				wf_waitq_unlock(q);
				return 0;
			}
			continue;
		}
		if (wf_rw_cas(l, &s, s | WF_RW_WAITERS, __ATOMIC_RELAXED))
			break;
	}
	struct wf_wnode n = { .thread = self, .handle = h, .kind = WF_RW_KIND_WRITE };
	return wf_rw_wait(l, &n, deadline);   /* granted: _owner was set for us */
}

int weft_rwlock_rdlock(weft_rwlock_t *l) { return wf_rw_rdlock(l, false, 0); }
int weft_rwlock_tryrdlock(weft_rwlock_t *l) { return wf_rw_rdlock(l, true, 0); }
int weft_rwlock_wrlock(weft_rwlock_t *l) { return wf_rw_wrlock(l, false, 0); }
int weft_rwlock_trywrlock(weft_rwlock_t *l) { return wf_rw_wrlock(l, true, 0); }

int weft_rwlock_timedrdlock(weft_rwlock_t *l, const struct timespec *abs_monotonic)
{
	uint64_t dl;
	int e = wf_timespec_to_ns(abs_monotonic, &dl);
	return e ? e : wf_rw_rdlock(l, false, dl);
}

int weft_rwlock_timedwrlock(weft_rwlock_t *l, const struct timespec *abs_monotonic)
{
	uint64_t dl;
	int e = wf_timespec_to_ns(abs_monotonic, &dl);
	return e ? e : wf_rw_wrlock(l, false, dl);
}

int weft_rwlock_unlock(weft_rwlock_t *l)
{
	if (!l)
		return EINVAL;
	uint32_t s = wf_rw_load(l);
	if (s & WF_RW_DEAD_BIT)
		return EINVAL;
	if (s & WF_RW_WRITER) {
		struct wf_thread *self = wf_caller();
		if (!self || wf_rw_owner(l) != wf_thread_handle(self))
			return EPERM;
		wf_rw_set_owner(l, 0);
		s = WF_RW_WRITER;
		if (wf_rw_cas(l, &s, 0, __ATOMIC_RELEASE))
			return 0;
		return wf_rw_release_slow(l, WF_RW_WRITER);
	}
	while (wf_rw_readers(s) > 0) {
		/* Not the last reader, or nobody waits: just leave.  The last
		 * reader with waiters must grant, under the queue lock.  No
		 * reader can join while WAITERS is set, so "last" is stable. */
		if (!(s & WF_RW_WAITERS) || wf_rw_readers(s) > 1) {
			if (wf_rw_cas(l, &s, s - WF_RW_READER, __ATOMIC_RELEASE))
				return 0;
			continue;
		}
		return wf_rw_release_slow(l, WF_RW_READER);
	}
	return EPERM;
}
