/*
 * mutex.c — weft_mutex_t: normal, error-checking and recursive mutexes.
 *
 * Design (after Go's sync.Mutex).  One 32-bit lock word carries four bits:
 *
 *   LOCKED   someone holds the mutex
 *   WAITERS  the mutex's wait queue is not empty
 *   WOKEN    an unlock has woken a waiter that has not yet run its next
 *            attempt, so further unlocks need not wake anybody
 *   HANDOFF  starvation mode: unlock hands the mutex to the oldest waiter
 *
 * Uncontended, lock is one compare-and-swap 0 -> LOCKED and unlock one
 * compare-and-swap LOCKED -> 0; neither calls into the scheduler nor takes
 * the queue lock.  Contended, a locker spins briefly (at most 120 pauses,
 * looking at the lock word every 30; only with more than one worker — with
 * one, the holder cannot run while we spin — and only while the holder is
 * on a CPU), then takes the queue lock, sets WAITERS and parks in FIFO
 * order.
 * An unlock that finds WAITERS (and no WOKEN) releases the mutex, sets
 * WOKEN and wakes the oldest waiter, which then competes with newcomers:
 * a thread that arrives while the lock is free may take it first
 * ("barging").  That keeps the lock busy under contention — a woken thread
 * needs microseconds to run, a newcomer is already running — but could
 * starve a waiter.  So a woken waiter that fails again goes back to the
 * HEAD of the queue, and HANDOFF is set once the oldest waiter has waited
 * more than 1 ms: by that waiter when it fails again, or by an unlock that
 * finds it at the head of the queue.  From then on unlock keeps LOCKED
 * set, makes the oldest waiter the owner, wakes it at the head of the run
 * queue and yields to it, and newcomers queue at the tail instead of
 * barging.  Handoff ends when the queue drains or a waiter is served
 * within 1 ms of starting to wait.
 *
 * Waking is not running: a woken waiter waits in a run queue, and a
 * CPU-bound thread that unlocks and relocks in a loop never leaves its
 * worker (until preempted, a quantum later).  Hence the yields (Go's
 * semrelease with handoff does the same): an unlock that hands off yields
 * to the new owner, and an unlock that finds the woken waiter still
 * pending 1 ms after an unlock first found it so (_woken_ns) yields so
 * that it can run.  Woken waiters go to the head of the waker's run queue
 * (Go's runnext).  So no waiter waits much longer than 1 ms plus the time
 * the queue ahead of it takes to be served.
 *
 * Clock.  A clock read costs more than the whole uncontended lock (about
 * 23 ns through the vDSO on the VM of docs/benchmarks.md), so the unlock
 * paths read it only where an age is really compared.  A waiter is stamped
 * when it first parks (since: its time in the queue must count, or every
 * head of a long queue would have to lose for 1 ms of its own before
 * handoff, and the queue's service time with it).  _woken_ns, the age of
 * the pending woken waiter, is 0 when an unlock sets WOKEN and is stamped
 * by the first later release that asks whether that waiter is overdue; a
 * release for a condition wait never asks (it parks next, it does not
 * yield), and one whose woken waiter ran first (the common case) never
 * reads the clock.
 *
 * Invariants (I1, I2 hold whenever the queue lock is free):
 *   I1  WAITERS <=> the queue is not empty.  WAITERS is set and cleared only
 *       under the queue lock, in the same critical section as the enqueue or
 *       dequeue that makes it true.
 *   I2  HANDOFF => LOCKED and WAITERS.  HANDOFF is set under the queue lock,
 *       by a waiter or by the holder's unlock, in a compare-and-swap that
 *       saw LOCKED and WAITERS; in handoff mode LOCKED passes from holder
 *       to holder and is cleared only together with HANDOFF and WAITERS,
 *       when the queue has drained.
 *   I3  While WAITERS is set, someone is bound to wake the head: the holder
 *       (its unlock sees state != LOCKED and takes the slow path), or the
 *       thread owning WOKEN (it either takes the lock, or gives WOKEN back
 *       in the same atomic step that leaves LOCKED set by someone else).
 *       The one place the mutex may be free with waiters and no WOKEN is
 *       cond's broadcast, which then wakes a waiter that is bound to lock.
 *   I4  _owner is the holder's weft_t, written by the thread that makes it
 *       the holder (itself, or the unlocker handing off, before the wake)
 *       and cleared by the holder before it releases; so only the holder
 *       ever reads its own handle there.
 *
 * No lost wake-up: a waiter sets WAITERS and enqueues under the queue lock
 * and parks holding it.  An unlock that releases with a plain CAS saw no
 * WAITERS (then the waiter's CAS, made after, sees the lock free and takes
 * it instead of parking) or saw WOKEN (a woken thread will retry).  An
 * unlock that must wake takes the queue lock, which the waiter holds until
 * its context is saved.
 *
 * Timeouts: a timed-out waiter takes the queue lock and unlinks itself
 * (clearing WAITERS and HANDOFF if it was the last).  A waker that dequeued
 * it just before and lost the claim (wf_unpark false) passes the wake-up,
 * or the handed-off ownership, to the next waiter, and only then lets the
 * timed-out waiter return (waitq.h: wakers unpark after unlocking the
 * queue, with a handshake for exactly this race).
 *
 * Rejected: strict FIFO handoff on every unlock (a lock convoy: every
 * critical section then costs a context switch, 10-100x slower under
 * contention); the 0/1/2 futex word of Drepper's "Futexes Are Tricky" with
 * no queue order (unbounded starvation); keeping the wait count in the lock
 * word as Go does (our queue lock already serializes waiters, and a bit is
 * enough for the unlock fast path to know); spinning without bound.
 */
#include <limits.h>
#include "mutex.h"

#define WF_M_LOCKED   1u
#define WF_M_WAITERS  2u
#define WF_M_WOKEN    4u
#define WF_M_HANDOFF  8u
/* A destroyed mutex: LOCKED makes every fast path fail; the slow paths see
 * the DEAD bit and return EINVAL. */
#define WF_M_DEAD_BIT 0x80000000u
#define WF_M_DEAD     (WF_M_DEAD_BIT | WF_M_LOCKED)

#define WF_M_STARVE_NS   1000000ull   /* 1 ms: wait before handoff mode */
/* At most this many pauses per spin (about 3 µs at 25 ns a pause). */
#define WF_M_SPIN_PAUSES 120
/* Pauses between two looks at the lock word.  Looking after every pause
 * pulls the word's cache line away from the holder's CPU 30 times as often
 * and made the 64-thread contended benchmark twice as slow (140 against
 * 51 ns per operation, docs/benchmarks.md); the condition-variable
 * hand-off did not gain from it either. */
#define WF_M_SPIN_EVERY  30

#define WF_MUTEXATTR_MAGIC 0x776d7478u

static inline uint32_t wf_m_load(const weft_mutex_t *m)
{
	return __atomic_load_n(&m->_state, __ATOMIC_RELAXED);
}

static inline bool wf_m_cas(weft_mutex_t *m, uint32_t *expect, uint32_t desired, int order)
{
	return __atomic_compare_exchange_n(&m->_state, expect, desired, false, order,
	                                   __ATOMIC_RELAXED);
}

/* Relaxed is enough for _owner (I4): a thread compares it only with its own
 * handle, which is there only if it stored it itself or was handed the
 * mutex (the wake-up orders that store before it runs). */
static inline void wf_m_set_owner(weft_mutex_t *m, uintptr_t h)
{
	__atomic_store_n(&m->_owner, h, __ATOMIC_RELAXED);
}

uintptr_t wf_mutex_owner(const weft_mutex_t *m)
{
	return __atomic_load_n(&m->_owner, __ATOMIC_RELAXED);
}

/* ---- attributes ---------------------------------------------------------- */

int weft_mutexattr_init(weft_mutexattr_t *a)
{
	if (!a)
		return EINVAL;
	a->_magic = WF_MUTEXATTR_MAGIC;
	a->_type = WEFT_MUTEX_DEFAULT;
	return 0;
}

int weft_mutexattr_destroy(weft_mutexattr_t *a)
{
	if (!a || a->_magic != WF_MUTEXATTR_MAGIC)
		return EINVAL;
	a->_magic = 0;
	return 0;
}

int weft_mutexattr_settype(weft_mutexattr_t *a, int type)
{
	if (!a || a->_magic != WF_MUTEXATTR_MAGIC ||
	    type < WEFT_MUTEX_NORMAL || type > WEFT_MUTEX_RECURSIVE)
		return EINVAL;
	a->_type = type;
	return 0;
}

int weft_mutexattr_gettype(const weft_mutexattr_t *a, int *type)
{
	if (!a || !type || a->_magic != WF_MUTEXATTR_MAGIC)
		return EINVAL;
	*type = a->_type;
	return 0;
}

/* ---- init / destroy ------------------------------------------------------ */

int weft_mutex_init(weft_mutex_t *m, const weft_mutexattr_t *a)
{
	if (!m || (a && a->_magic != WF_MUTEXATTR_MAGIC))
		return EINVAL;
	m->_type = a ? a->_type : WEFT_MUTEX_DEFAULT;
	m->_owner = 0;
	m->_depth = 0;
	m->_woken_ns = 0;
	wf_waitq_init(&m->_wq);
	__atomic_store_n(&m->_state, 0, __ATOMIC_RELEASE);
	return 0;
}

int weft_mutex_destroy(weft_mutex_t *m)
{
	if (!m)
		return EINVAL;
	/* Under the queue lock: an unlocker still waking a waiter holds it, so
	 * once we have it nobody is inside m any more.  State 0 means free,
	 * no waiter (I1) and no woken waiter on its way. */
	wf_waitq_lock(&m->_wq);
	uint32_t s = 0;
	int e = 0;
	if (!wf_m_cas(m, &s, WF_M_DEAD, __ATOMIC_ACQUIRE))
		e = (s & WF_M_DEAD_BIT) ? EINVAL : EBUSY;
	wf_waitq_unlock(&m->_wq);
	return e;
}

/* ---- acquiring ----------------------------------------------------------- */

/* Spin a little for a holder running on another worker.  True if we took
 * the mutex.  Never takes it in handoff mode (it is reserved there).
 *
 * The lock word is looked at every WF_M_SPIN_EVERY pauses (less often
 * would notice a release late, more often slows the holder down by taking
 * the word's cache line from it); and the spin stops as soon as the holder
 * is not on a CPU (preempted, parked, or queued, possibly behind us on our
 * own worker):
 * it cannot release m until it runs again, and parking lets it.  _owner
 * and the holder's on_cpu are read without synchronization: a wrong answer
 * costs one needless park or at most the spin bound.  _owner is 0 in the
 * few instructions between a lock's CAS and its owner store, and between
 * an unlock's owner clear and its release: the holder is running then. */
static bool wf_mutex_spin(weft_mutex_t *m)
{
	if (wf_parallel() < 2)
		return false;
	for (int i = 0; i < WF_M_SPIN_PAUSES; i += WF_M_SPIN_EVERY) {
		uint32_t s = wf_m_load(m);
		if (s & WF_M_HANDOFF)
			return false;
		/* HANDOFF implies LOCKED (I2), so this never barges past it. */
		while (!(s & WF_M_LOCKED))
			if (wf_m_cas(m, &s, s | WF_M_LOCKED, __ATOMIC_ACQUIRE))
				return true;
		if (s & WF_M_DEAD_BIT)
			return false;
		uintptr_t h = wf_mutex_owner(m);
		if (h && !wf_handle_on_cpu(h))
			return false;
		for (int k = 0; k < WF_M_SPIN_EVERY; k++)
			wf_cpu_relax();
	}
	return false;
}

/*
 * The contended path: loop of (try to take it; park in the queue) until the
 * mutex is ours or the deadline passes.  n describes the caller; woken says
 * the caller owns WOKEN (it was just woken in normal mode and must clear the
 * bit in its next step, whatever that step is).
 */
static int wf_mutex_wait(weft_mutex_t *m, struct wf_wnode *n, uint64_t deadline, bool woken)
{
	weft_waitq_ *q = &m->_wq;
	for (;;) {
		uint32_t s = wf_m_load(m);
		if (!(s & (WF_M_LOCKED | WF_M_HANDOFF))) {
			uint32_t ns = (s | WF_M_LOCKED) & ~(woken ? WF_M_WOKEN : 0u);
			if (wf_m_cas(m, &s, ns, __ATOMIC_ACQUIRE)) {
				wf_m_set_owner(m, n->handle);
				return 0;
			}
			continue;
		}
		if (deadline && wf_clock_ns() >= deadline) {
			/* Give up.  A woken waiter gives WOKEN back in a step
			 * that sees the mutex held, so its holder's unlock wakes
			 * the next waiter (I3); if the mutex was released in
			 * between, the CAS fails and we try to take it again. */
			if (woken && !wf_m_cas(m, &s, s & ~WF_M_WOKEN, __ATOMIC_RELAXED))
				continue;
			return ETIMEDOUT;
		}

		wf_waitq_lock(q);
		uint64_t now = wf_clock_ns();
		s = wf_m_load(m);
		bool queued = false;
		/* Set WAITERS (and drop WOKEN, and maybe set HANDOFF) in one
		 * step that also confirms the mutex is still held: if it was
		 * released meanwhile, go back and take it instead. */
		while (s & (WF_M_LOCKED | WF_M_HANDOFF)) {
			uint32_t ns = s | WF_M_WAITERS;
			if (woken)
				ns &= ~WF_M_WOKEN;
			if (n->since && now - n->since >= WF_M_STARVE_NS)
				ns |= WF_M_HANDOFF;   /* s has LOCKED: I2 holds */
			if (wf_m_cas(m, &s, ns, __ATOMIC_RELAXED)) {
				queued = true;
				break;
			}
		}
		if (!queued) {
			wf_waitq_unlock(q);
			continue;
		}
		woken = false;
		/* First wait: tail.  After a wake-up that lost the race to a
		 * newcomer: head, keeping the queue in order of age. */
		bool again = n->since != 0;
		if (!again)
			n->since = now;
		wf_park_reason(n->thread, WF_BLOCK_MUTEX, m);
		if (wf_waitq_wait(q, n, deadline, again)) {
			/* Timed out; n is unlinked and q locked.  Restore I1/I2. */
			if (wf_waitq_empty(q))
				__atomic_fetch_and(&m->_state, ~(WF_M_WAITERS | WF_M_HANDOFF),
				                   __ATOMIC_RELAXED);
			wf_waitq_timeout_unlock(q, n);
			return ETIMEDOUT;
		}
		if (n->wake == WF_WAKE_GRANTED)
			return 0;   /* handed off: LOCKED kept, _owner set for us */
		woken = true;       /* WF_WAKE_WOKEN */
	}
}

/* Not inlined into weft_mutex_lock: its frame would be set up on the
 * uncontended path too. */
static __attribute__((noinline))
int wf_mutex_lock_common(weft_mutex_t *m, struct wf_thread *self, uintptr_t h,
                         uint64_t deadline)
{
	int type = m->_type;
	if (type != WEFT_MUTEX_NORMAL) {
		if ((unsigned)type > WEFT_MUTEX_RECURSIVE)
			return EINVAL;
		if (wf_mutex_owner(m) == h) {
			if (type == WEFT_MUTEX_ERRORCHECK)
				return EDEADLK;
			if (m->_depth == UINT_MAX)
				return EAGAIN;
			m->_depth++;   /* only the holder touches _depth */
			return 0;
		}
	}
	uint32_t s = 0;
	if (!wf_m_cas(m, &s, WF_M_LOCKED, __ATOMIC_ACQUIRE)) {
		if (wf_unlikely(s & WF_M_DEAD_BIT))
			return EINVAL;
		if (!wf_mutex_spin(m)) {
			struct wf_wnode n = { .thread = self, .handle = h };
			return wf_mutex_wait(m, &n, deadline, false);
		}
	}
	wf_m_set_owner(m, h);
	return 0;
}

/* Everything but an uncontended lock of a normal mutex by a green thread. */
static __attribute__((noinline)) int wf_mutex_lock_slow(weft_mutex_t *m)
{
	if (!m)
		return EINVAL;
	int err;
	struct wf_thread *self = wf_sync_self(&err);
	if (!self)
		return err;
	return wf_mutex_lock_common(m, self, wf_thread_handle(self), 0);
}

int weft_mutex_lock(weft_mutex_t *m)
{
	/* The fast path keeps nothing on the stack: no frame beyond the
	 * frame pointer's. */
	struct wf_thread *self = wf_current();
	if (wf_likely(self && m && m->_type == WEFT_MUTEX_NORMAL)) {
		uint32_t s = 0;
		if (wf_likely(wf_m_cas(m, &s, WF_M_LOCKED, __ATOMIC_ACQUIRE))) {
			wf_m_set_owner(m, wf_thread_handle(self));
			return 0;
		}
	}
	return wf_mutex_lock_slow(m);
}

int weft_mutex_timedlock(weft_mutex_t *m, const struct timespec *abs_monotonic)
{
	uint64_t dl;
	int e = wf_timespec_to_ns(abs_monotonic, &dl);
	if (e)
		return e;
	if (!m)
		return EINVAL;
	struct wf_thread *self = wf_sync_self(&e);
	if (!self)
		return e;
	return wf_mutex_lock_common(m, self, wf_thread_handle(self), dl);
}

int weft_mutex_trylock(weft_mutex_t *m)
{
	if (!m)
		return EINVAL;
	int e;
	struct wf_thread *self = wf_sync_self(&e);
	if (!self)
		return e;
	uintptr_t h = wf_thread_handle(self);
	int type = m->_type;
	if ((unsigned)type > WEFT_MUTEX_RECURSIVE)
		return EINVAL;
	if (type == WEFT_MUTEX_RECURSIVE && wf_mutex_owner(m) == h) {
		if (m->_depth == UINT_MAX)
			return EAGAIN;
		m->_depth++;
		return 0;
	}
	uint32_t s = wf_m_load(m);
	while (!(s & (WF_M_LOCKED | WF_M_HANDOFF)))
		if (wf_m_cas(m, &s, s | WF_M_LOCKED, __ATOMIC_ACQUIRE)) {
			wf_m_set_owner(m, h);
			return 0;
		}
	return (s & WF_M_DEAD_BIT) ? EINVAL : EBUSY;
}

/* ---- releasing ----------------------------------------------------------- */

/* Has the pending woken waiter (WOKEN) been kept from running for 1 ms?
 * Called only by the holder, before it releases m.  _woken_ns is 0 when
 * an unlock sets WOKEN (stored before that CAS); the first release that
 * asks stamps it with the clock, later ones compare.  So the 1 ms counts
 * from the first release that found the waiter still pending, and a
 * hand-off whose woken waiter runs before anyone asks (the common case)
 * reads no clock.  Only holders write _woken_ns, so the writes are ordered
 * by m itself; the reads are relaxed and a stale one (a stamp meant for an
 * earlier woken waiter) only costs one needless yield or delays one.
 *
 * Once stamped, the clock is compared only at every WF_M_STALE_EVERY-th
 * such release on this kernel thread: under heavy contention the woken
 * waiter may stay pending for a whole quantum while every unlock asks, and
 * a clock read at each one was a quarter of the CPU time of the 64-thread
 * benchmark.  16 releases of a few tens of ns are nothing beside the 1 ms
 * they bound.  The counter is per kernel thread (shared by the green
 * threads of a worker, which is fine for a sampling rate) and read and
 * written in this function only, with no switch in between. */
#define WF_M_STALE_EVERY 16u
static __thread unsigned wf_m_stale_calls __attribute__((tls_model("initial-exec"), used));

static bool wf_mutex_woken_stale(weft_mutex_t *m)
{
	uint64_t t0 = __atomic_load_n(&m->_woken_ns, __ATOMIC_RELAXED);
	if (!t0) {
		__atomic_store_n(&m->_woken_ns, wf_clock_ns(), __ATOMIC_RELAXED);
		return false;
	}
	/* Through WF_TLS_ADDR: inlined into a caller that switched earlier,
	 * a plain access could count on the previous worker's copy. */
	if (++*WF_TLS_ADDR(wf_m_stale_calls) % WF_M_STALE_EVERY)
		return false;
	return wf_clock_ns() - t0 >= WF_M_STARVE_NS;
}

/*
 * Queue lock held, LOCKED held by the caller (_owner already cleared), and
 * the mode decided: handoff (HANDOFF set: pass ownership, LOCKED stays set
 * so nobody barges in) or wake (mutex already released with WOKEN set by
 * us: wake a waiter to retry and give it WOKEN).  Pops the oldest waiter,
 * grants, unlocks the queue and wakes it, at the head of the run queue (it
 * is the one thread that can make progress on m).  A waiter whose claim the
 * timer won will not take the grant: relock and pass it to the next one.
 * Returns with the queue unlocked; true if a handoff happened.
 */
static bool wf_mutex_pass_locked(weft_mutex_t *m, bool handoff)
{
	weft_waitq_ *q = &m->_wq;
	struct wf_wnode *refused = NULL;
	bool handed = false;
	for (;;) {
		struct wf_wnode *n = wf_waitq_pop(q);
		if (!n) {
			/* Nobody left to take it: really release / drop WOKEN.
			 * (In wake mode WAITERS went when the queue emptied.) */
			__atomic_fetch_and(&m->_state,
			                   handoff ? ~(WF_M_LOCKED | WF_M_WAITERS | WF_M_HANDOFF)
			                           : ~WF_M_WOKEN,
			                   __ATOMIC_RELEASE);
			wf_waitq_unlock(q);
			break;
		}
		uint32_t clear = 0;
		if (wf_waitq_empty(q))
			clear = WF_M_WAITERS | WF_M_HANDOFF;          /* I1, I2 */
		else if (handoff && wf_clock_ns() - n->since < WF_M_STARVE_NS)
			clear = WF_M_HANDOFF;   /* served quickly: back to normal */
		if (clear)
			__atomic_fetch_and(&m->_state, ~clear, __ATOMIC_RELAXED);
		if (handoff)
			wf_m_set_owner(m, n->handle);   /* I4: before the wake */
		struct wf_thread *t = wf_waitq_grant(n, handoff ? WF_WAKE_GRANTED : WF_WAKE_WOKEN);
		wf_waitq_unlock(q);
		if (wf_unpark_first(t)) {
			handed = handoff;   /* n is gone for us from here on */
			break;
		}
		/* n's thread is timing out: it returns ETIMEDOUT once we mark
		 * it done.  LOCKED (handoff) or WOKEN (wake) is still ours to
		 * pass on. */
		if (handoff)
			wf_m_set_owner(m, 0);
		wf_wnode_refused(&refused, n);
		wf_waitq_lock(q);
	}
	wf_wnode_release(refused);   /* after our last access to m */
	return handed;
}

/* The caller held the mutex and has cleared _owner; the CAS LOCKED -> 0
 * failed because other bits are set (or the mutex is not locked).  *yield
 * is set when the caller, if it may, should yield its worker: it handed m
 * off, or the woken waiter it leaves m to has not run for 1 ms.  yield is
 * NULL for a caller that will not yield (it parks next): then the pending
 * waiter's age is not looked at at all. */
static int wf_mutex_unlock_slow(weft_mutex_t *m, bool *yield)
{
	bool dummy;
	bool ask = yield != NULL;
	if (!ask)
		yield = &dummy;
	uint32_t s = wf_m_load(m);
	for (;;) {
		if (wf_unlikely(s & WF_M_DEAD_BIT))
			return EINVAL;
		if (wf_unlikely(!(s & WF_M_LOCKED)))
			return EPERM;
		if ((s & WF_M_HANDOFF) || ((s & WF_M_WAITERS) && !(s & WF_M_WOKEN)))
			break;
		/* Nobody waits, or a woken waiter is on its way and will
		 * retry: release without touching the queue.  (Everything we
		 * read from m is read before the release: after it, m may be
		 * locked, unlocked and destroyed by others.) */
		bool stale = ask && (s & WF_M_WOKEN) && wf_mutex_woken_stale(m);
		if (wf_m_cas(m, &s, s & ~WF_M_LOCKED, __ATOMIC_RELEASE)) {
			*yield = stale;
			return 0;
		}
	}
	weft_waitq_ *q = &m->_wq;
	wf_waitq_lock(q);
	/* Under the queue lock WAITERS and HANDOFF are stable; only LOCKED
	 * (not ours to lose: we hold it) and WOKEN may change under us. */
	s = wf_m_load(m);
	bool stale = false, asked = false;
	for (;;) {
		if (s & WF_M_HANDOFF) {
			*yield = wf_mutex_pass_locked(m, true);
			return 0;
		}
		if (!(s & WF_M_WAITERS) || (s & WF_M_WOKEN)) {
			if (ask && (s & WF_M_WOKEN) && !asked) {
				stale = wf_mutex_woken_stale(m);   /* once: it stamps */
				asked = true;
			}
			if (wf_m_cas(m, &s, s & ~WF_M_LOCKED, __ATOMIC_RELEASE)) {
				wf_waitq_unlock(q);   /* our last access to m */
				*yield = stale;
				return 0;
			}
			continue;
		}
		if (wf_clock_ns() - wf_waitq_head(q)->since >= WF_M_STARVE_NS) {
			/* The oldest waiter has waited 1 ms: starvation mode
			 * (s has LOCKED, ours, and WAITERS: I2 holds). */
			if (wf_m_cas(m, &s, s | WF_M_HANDOFF, __ATOMIC_RELAXED))
				s |= WF_M_HANDOFF;   /* next round: the handoff branch */
			continue;
		}
		__atomic_store_n(&m->_woken_ns, 0, __ATOMIC_RELAXED);   /* unstamped */
		if (wf_m_cas(m, &s, (s & ~WF_M_LOCKED) | WF_M_WOKEN, __ATOMIC_RELEASE)) {
			(void)wf_mutex_pass_locked(m, false);
			return 0;
		}
	}
}

/* After a public unlock: give the worker to the thread m now depends on.
 * Only a green thread can yield; a kernel thread that unlocked a normal
 * mutex simply returns. */
static void wf_mutex_unlock_yield(void)
{
	if (wf_current())
		wf_yield_internal();
}

static int wf_mutex_unlock_checked(weft_mutex_t *m)
{
	if ((unsigned)m->_type > WEFT_MUTEX_RECURSIVE)
		return EINVAL;
	struct wf_thread *self = wf_caller();
	if (!self || wf_mutex_owner(m) != wf_thread_handle(self))
		return (wf_m_load(m) & WF_M_DEAD_BIT) ? EINVAL : EPERM;
	if (m->_depth) {
		m->_depth--;
		return 0;
	}
	wf_m_set_owner(m, 0);
	uint32_t s = WF_M_LOCKED;
	if (wf_m_cas(m, &s, 0, __ATOMIC_RELEASE))
		return 0;
	bool yield = false;
	int e = wf_mutex_unlock_slow(m, &yield);
	if (yield)
		wf_mutex_unlock_yield();
	return e;
}

/* weft_mutex_unlock past its fast path: a normal mutex whose _owner is
 * already cleared and whose word was not plain LOCKED, or another type. */
static __attribute__((noinline)) int wf_mutex_unlock_rest(weft_mutex_t *m)
{
	if (!m)
		return EINVAL;
	if (m->_type != WEFT_MUTEX_NORMAL)
		return wf_mutex_unlock_checked(m);
	bool yield = false;
	int e = wf_mutex_unlock_slow(m, &yield);
	if (yield)
		wf_mutex_unlock_yield();
	return e;
}

int weft_mutex_unlock(weft_mutex_t *m)
{
	if (wf_likely(m && m->_type == WEFT_MUTEX_NORMAL)) {
		/* No owner check for normal mutexes; clearing _owner first is
		 * harmless if m turns out not to be locked. */
		wf_m_set_owner(m, 0);
		uint32_t s = WF_M_LOCKED;
		if (wf_likely(wf_m_cas(m, &s, 0, __ATOMIC_RELEASE)))
			return 0;
	}
	return wf_mutex_unlock_rest(m);
}

/* ---- for condition variables --------------------------------------------- */

bool wf_mutex_held_by_caller_alone(const weft_mutex_t *m)
{
	struct wf_thread *self = wf_caller();
	/* Exact for the holder (I4), and the holder's LOCKED cannot go away
	 * under it; WAITERS may appear right after (see mutex.h). */
	return self && wf_mutex_owner(m) == wf_thread_handle(self) &&
	       (wf_m_load(m) & (WF_M_LOCKED | WF_M_WAITERS | WF_M_HANDOFF | WF_M_DEAD_BIT)) ==
	       WF_M_LOCKED;
}

unsigned wf_mutex_release_all(weft_mutex_t *m)
{
	unsigned depth = m->_depth;
	m->_depth = 0;
	wf_m_set_owner(m, 0);
	uint32_t s = WF_M_LOCKED;
	/* No yield: the caller parks right after. */
	if (!wf_m_cas(m, &s, 0, __ATOMIC_RELEASE))
		(void)wf_mutex_unlock_slow(m, NULL);   /* cannot fail: the caller holds m */
	return depth;
}

void wf_mutex_relock(weft_mutex_t *m, struct wf_wnode *n, uint32_t how, unsigned depth)
{
	if (how == WF_WAKE_WOKEN) {
		(void)wf_mutex_wait(m, n, 0, true);          /* untimed: always 0 */
	} else if (how != WF_WAKE_GRANTED) {
		uint32_t s = 0;
		if (wf_m_cas(m, &s, WF_M_LOCKED, __ATOMIC_ACQUIRE) || wf_mutex_spin(m)) {
			wf_m_set_owner(m, n->handle);
		} else {
			n->since = 0;
			(void)wf_mutex_wait(m, n, 0, false);
		}
	}
	m->_depth = depth;
}

bool wf_mutex_requeue_locked(weft_mutex_t *m, struct wf_wnode *n, bool only_if_held,
                             uint64_t now)
{
	uint32_t s = wf_m_load(m);
	for (;;) {
		if (only_if_held && !(s & WF_M_LOCKED))
			return false;
		/* If WAITERS is already set it stays set while we hold the queue
		 * lock, and the head is bound to be woken (I3).  Otherwise set it
		 * in a step that saw LOCKED, so the holder's unlock is slow. */
		if ((s & WF_M_WAITERS) || wf_m_cas(m, &s, s | WF_M_WAITERS, __ATOMIC_RELAXED))
			break;
	}
	n->since = now;
	n->requeued = 1;
	wf_park_reason(n->thread, WF_BLOCK_MUTEX, m);  /* parked: now on m */
	wf_waitq_push_tail(&m->_wq, n);
	return true;
}
