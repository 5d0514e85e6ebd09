/*
 * weft.h — the whole public interface of weft, an M:N green-thread library.
 *
 * Many green threads, each with its own stack and thread control block, are
 * switched in user space and multiplexed over a small bank of kernel
 * workers.  A per-worker timer preempts a thread that runs past its quantum.
 * Blocking calls park the calling green thread; its worker runs other threads.
 *
 * Conventions (they hold for every function below unless it says otherwise):
 *  - Functions that can fail return 0 or a positive errno value, pthread
 *    style, and never modify errno.
 *  - Pointer arguments that must not be NULL are checked: EINVAL.
 *  - "The caller" is a green thread.  The first weft call of a process
 *    initializes the runtime from the environment and turns its caller into
 *    the green thread "main" (see weft_init).  Calls that would block, made
 *    from a kernel thread that is not a weft worker, return EPERM.
 *  - Thread handles of finished-and-reclaimed threads are stale: every call
 *    taking one returns ESRCH; a made-up handle never crashes.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#define WEFT_NORETURN __attribute__((noreturn))
#else
#define WEFT_API
#define WEFT_NORETURN
#endif

/* ------------------------------------------------------------------------ */
/* Runtime                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * Initialize weft from the environment: WEFT_WORKERS, WEFT_QUANTUM_US,
 * WEFT_STACK_SIZE, WEFT_KTHREADS, WEFT_PREEMPT_SIGNAL.
 *
 * Who may call: any code; normally main() before anything else.  Optional —
 * the first call of any weft function initializes.  Idempotent: later calls
 * return 0 (or the error of the first attempt).  The caller becomes the green
 * thread "main" running on worker 0.  A process forked from an initialized
 * parent must not call weft (the child has only one kernel thread).
 *
 * @return 0 on success;
 *         EINVAL  a variable is malformed or out of range (one line on stderr
 *                 naming the variable and the accepted values);
 *         EAGAIN  the kernel workers or their resources could not be created
 *                 (also WEFT_KTHREADS=clone when the clone gate fails).
 */
WEFT_API int weft_init(void);

/** Number of kernel workers.  Any caller; initializes on first use (0 if
 *  initialization failed). */
WEFT_API int weft_workers(void);

/** Index 0..workers-1 of the worker running the caller; -1 when the caller
 *  is not running on a weft worker. */
WEFT_API int weft_worker_self(void);

/** Disable preemption of the calling green thread; nests.  The caller can
 *  still block or yield.  Who may call: a green thread. */
WEFT_API void weft_preempt_disable(void);
/** Undo one weft_preempt_disable(). */
WEFT_API void weft_preempt_enable(void);

/* ------------------------------------------------------------------------ */
/* Threads                                                                  */
/* ------------------------------------------------------------------------ */

/** Opaque thread handle: an unsigned integer of pointer size. */
typedef uintptr_t weft_t;
/** Names no thread. */
#define WEFT_NULL ((weft_t)0)

/** Smallest stack a thread may be given, in bytes.  Enough for printf and
 *  the signal frame of a preemption with the full AVX-512 state. */
#define WEFT_STACK_MIN ((size_t)16384)

enum { WEFT_CREATE_JOINABLE = 0, WEFT_CREATE_DETACHED = 1 };

/** Thread attributes.  Initialize with weft_attr_init. */
typedef struct weft_attr {
	uint32_t _magic;
	int _detachstate;
	size_t _stacksize;   /* 0: the WEFT_STACK_SIZE default */
	void *_stackaddr;    /* caller-owned stack, or NULL */
	char _name[32];
} weft_attr_t;

/**
 * Create a ready green thread running start(arg).
 *
 * Who may call: any code (initializes on first use).  The new thread may run
 * at once on the caller's worker, the caller continuing shortly after.
 *
 * @return 0, and *t holds the handle;
 *         EINVAL  t or start is NULL, or attr was not initialized;
 *         EAGAIN  no memory for the thread or its stack.
 */
WEFT_API int weft_create(weft_t *t, const weft_attr_t *attr,
                         void *(*start)(void *), void *arg);

/**
 * Block until thread t finishes; store its return value in *ret when ret is
 * not NULL.  Reclaims t: its handle becomes stale.
 *
 * Who may call: a green thread.
 * @return 0;
 *         EDEADLK t is the caller;
 *         EINVAL  t is detached, or another thread is already joining it;
 *         ESRCH   t is unknown, stale or already joined;
 *         EPERM   the caller is not a green thread.
 */
WEFT_API int weft_join(weft_t t, void **ret);

/**
 * Mark t detached: its resources are reclaimed when it finishes, and its
 * handle is stale from then on.
 * @return 0; EINVAL already detached or being joined; ESRCH unknown/stale.
 */
WEFT_API int weft_detach(weft_t t);

/**
 * Finish the calling green thread with return value ret; the same as
 * returning ret from its start routine.  Thread-specific data destructors
 * run first.  Called from "main": waits until every other thread has
 * finished, then ends the process with exit status 0 (atexit handlers run).
 * Called from a kernel thread that is not a green thread: no effect is
 * possible, so the process aborts with a diagnostic.
 */
WEFT_API WEFT_NORETURN void weft_exit(void *ret);

/** Handle of the calling green thread; WEFT_NULL when the caller is not a
 *  green thread. */
WEFT_API weft_t weft_self(void);

/** Nonzero when a and b name the same thread. */
WEFT_API int weft_equal(weft_t a, weft_t b);

/** Move the caller to the tail of its worker's run queue and run others.
 *  @return 0; EPERM when the caller is not a green thread. */
WEFT_API int weft_yield(void);

/** Block for at least ns nanoseconds; 0 yields.
 *  @return 0; EPERM when the caller is not a green thread. */
WEFT_API int weft_sleep_ns(uint64_t ns);

/** Name thread t (at most 31 bytes are kept; longer names are truncated).
 *  @return 0; EINVAL name is NULL; ESRCH t unknown/stale. */
WEFT_API int weft_setname(weft_t t, const char *name);

/** Copy the name of t, NUL-terminated, into buf.
 *  @return 0; EINVAL buf is NULL; ERANGE len is too small for the name and
 *  its terminator; ESRCH t unknown/stale. */
WEFT_API int weft_getname(weft_t t, char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Attributes                                                               */
/* ------------------------------------------------------------------------ */

/** Initialize a to the defaults: joinable, default stack size, no name.
 *  @return 0; EINVAL a is NULL. */
WEFT_API int weft_attr_init(weft_attr_t *a);
/** @return 0; EINVAL a is NULL or not initialized. */
WEFT_API int weft_attr_destroy(weft_attr_t *a);
/** @return 0; EINVAL a bad, or size below WEFT_STACK_MIN or above 1 GiB. */
WEFT_API int weft_attr_setstacksize(weft_attr_t *a, size_t size);
/** @return 0; EINVAL a or size NULL, or a not initialized. */
WEFT_API int weft_attr_getstacksize(const weft_attr_t *a, size_t *size);
/** Use the caller-owned memory [addr, addr+size) as the stack, as given: no
 *  guard page, never freed by weft.
 *  @return 0; EINVAL a or addr bad, or size below WEFT_STACK_MIN. */
WEFT_API int weft_attr_setstack(weft_attr_t *a, void *addr, size_t size);
/** @return 0; EINVAL a bad or an output pointer NULL. */
WEFT_API int weft_attr_getstack(const weft_attr_t *a, void **addr, size_t *size);
/** @return 0; EINVAL a bad or state not WEFT_CREATE_JOINABLE/DETACHED. */
WEFT_API int weft_attr_setdetachstate(weft_attr_t *a, int state);
/** @return 0; EINVAL a or state NULL, or a not initialized. */
WEFT_API int weft_attr_getdetachstate(const weft_attr_t *a, int *state);
/** @return 0; EINVAL a or name NULL, or a not initialized. */
WEFT_API int weft_attr_setname(weft_attr_t *a, const char *name);
/** @return 0; EINVAL a or buf NULL; ERANGE len too small. */
WEFT_API int weft_attr_getname(const weft_attr_t *a, char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Thread-specific data                                                     */
/* ------------------------------------------------------------------------ */

/** Key for thread-specific data: values belong to the green thread. */
typedef uint32_t weft_key_t;
/** Number of keys a process may have at once. */
#define WEFT_KEYS_MAX 128

/** Create a key; destructor (may be NULL) runs at thread exit for non-NULL
 *  values.  @return 0; EINVAL k NULL; EAGAIN WEFT_KEYS_MAX keys exist. */
WEFT_API int weft_key_create(weft_key_t *k, void (*destructor)(void *));
/** Delete a key (destructors are not called).  @return 0; EINVAL unknown key. */
WEFT_API int weft_key_delete(weft_key_t k);
/** Value of k for the caller; NULL when unset or k is unknown. */
WEFT_API void *weft_getspecific(weft_key_t k);
/** @return 0; EINVAL unknown key; ENOMEM no memory; EPERM caller is not a
 *  green thread. */
WEFT_API int weft_setspecific(weft_key_t k, const void *v);

/* ------------------------------------------------------------------------ */
/* Synchronization                                                          */
/* ------------------------------------------------------------------------ */

/* Every blocking object embeds one wait queue: a small lock and a FIFO of
 * parked waiters.  Its fields are private to weft. */
typedef struct weft_waitq_ {
	uint32_t _lock;
	uint32_t _count;
	void *_head;
	void *_tail;
} weft_waitq_;
#define WEFT_WAITQ_INIT_ { 0, 0, NULL, NULL }

enum { WEFT_MUTEX_NORMAL = 0, WEFT_MUTEX_ERRORCHECK = 1, WEFT_MUTEX_RECURSIVE = 2,
       WEFT_MUTEX_DEFAULT = WEFT_MUTEX_NORMAL };

typedef struct weft_mutexattr { uint32_t _magic; int _type; } weft_mutexattr_t;

typedef struct weft_mutex {
	uint32_t _state;     /* lock word */
	int _type;
	uintptr_t _owner;    /* weft_t of the holder (checked types) */
	unsigned _depth;     /* recursion depth */
	uint32_t _magic;
	weft_waitq_ _wq;
} weft_mutex_t;
#define WEFT_MUTEX_INITIALIZER { 0, WEFT_MUTEX_NORMAL, 0, 0, 0, WEFT_WAITQ_INIT_ }

typedef struct weft_condattr { uint32_t _magic; } weft_condattr_t;
typedef struct weft_cond {
	uint32_t _magic;
	uint32_t _seq;
	void *_mutex;
	weft_waitq_ _wq;
} weft_cond_t;
#define WEFT_COND_INITIALIZER { 0, 0, NULL, WEFT_WAITQ_INIT_ }

typedef struct weft_sem {
	uint32_t _magic;
	uint32_t _value;
	weft_waitq_ _wq;
} weft_sem_t;

typedef struct weft_rwlockattr { uint32_t _magic; } weft_rwlockattr_t;
typedef struct weft_rwlock {
	uint32_t _magic;
	uint32_t _readers;   /* active readers */
	uint32_t _writer;    /* 1 when a writer holds it */
	uint32_t _wwait;     /* writers waiting */
	uintptr_t _owner;
	weft_waitq_ _wq;
} weft_rwlock_t;
#define WEFT_RWLOCK_INITIALIZER { 0, 0, 0, 0, 0, WEFT_WAITQ_INIT_ }

typedef struct weft_barrier {
	uint32_t _magic;
	uint32_t _count;
	uint32_t _arrived;
	uint32_t _phase;
	weft_waitq_ _wq;
} weft_barrier_t;
#define WEFT_BARRIER_SERIAL_THREAD (-1)

typedef struct weft_once { uint32_t _state; weft_waitq_ _wq; } weft_once_t;
#define WEFT_ONCE_INIT { 0, WEFT_WAITQ_INIT_ }

typedef struct weft_spinlock { uint32_t _lock; } weft_spinlock_t;
#define WEFT_SPINLOCK_INITIALIZER { 0 }

typedef struct weft_ticketlock { uint32_t _next; uint32_t _serving; } weft_ticketlock_t;
#define WEFT_TICKETLOCK_INITIALIZER { 0, 0 }

WEFT_API int weft_mutexattr_init(weft_mutexattr_t *a);
WEFT_API int weft_mutexattr_destroy(weft_mutexattr_t *a);
WEFT_API int weft_mutexattr_settype(weft_mutexattr_t *a, int type);
WEFT_API int weft_mutexattr_gettype(const weft_mutexattr_t *a, int *type);

WEFT_API int weft_mutex_init(weft_mutex_t *m, const weft_mutexattr_t *a);
WEFT_API int weft_mutex_destroy(weft_mutex_t *m);
WEFT_API int weft_mutex_lock(weft_mutex_t *m);
WEFT_API int weft_mutex_trylock(weft_mutex_t *m);
WEFT_API int weft_mutex_timedlock(weft_mutex_t *m, const struct timespec *abs_monotonic);
WEFT_API int weft_mutex_unlock(weft_mutex_t *m);

WEFT_API int weft_cond_init(weft_cond_t *c, const weft_condattr_t *a);
WEFT_API int weft_cond_destroy(weft_cond_t *c);
WEFT_API int weft_cond_wait(weft_cond_t *c, weft_mutex_t *m);
WEFT_API int weft_cond_timedwait(weft_cond_t *c, weft_mutex_t *m,
                                 const struct timespec *abs_monotonic);
WEFT_API int weft_cond_signal(weft_cond_t *c);
WEFT_API int weft_cond_broadcast(weft_cond_t *c);

WEFT_API int weft_sem_init(weft_sem_t *s, unsigned value);
WEFT_API int weft_sem_destroy(weft_sem_t *s);
WEFT_API int weft_sem_wait(weft_sem_t *s);
WEFT_API int weft_sem_trywait(weft_sem_t *s);
WEFT_API int weft_sem_timedwait(weft_sem_t *s, const struct timespec *abs_monotonic);
WEFT_API int weft_sem_post(weft_sem_t *s);
WEFT_API int weft_sem_getvalue(weft_sem_t *s, int *value);

WEFT_API int weft_rwlock_init(weft_rwlock_t *l, const weft_rwlockattr_t *a);
WEFT_API int weft_rwlock_destroy(weft_rwlock_t *l);
WEFT_API int weft_rwlock_rdlock(weft_rwlock_t *l);
WEFT_API int weft_rwlock_wrlock(weft_rwlock_t *l);
WEFT_API int weft_rwlock_tryrdlock(weft_rwlock_t *l);
WEFT_API int weft_rwlock_trywrlock(weft_rwlock_t *l);
WEFT_API int weft_rwlock_unlock(weft_rwlock_t *l);

WEFT_API int weft_barrier_init(weft_barrier_t *b, unsigned count);
WEFT_API int weft_barrier_destroy(weft_barrier_t *b);
WEFT_API int weft_barrier_wait(weft_barrier_t *b);

WEFT_API int weft_once(weft_once_t *o, void (*fn)(void));

WEFT_API int weft_spin_init(weft_spinlock_t *l);
WEFT_API int weft_spin_lock(weft_spinlock_t *l);
WEFT_API int weft_spin_trylock(weft_spinlock_t *l);
WEFT_API int weft_spin_unlock(weft_spinlock_t *l);

WEFT_API int weft_ticket_init(weft_ticketlock_t *l);
WEFT_API int weft_ticket_acquire(weft_ticketlock_t *l);
WEFT_API int weft_ticket_release(weft_ticketlock_t *l);

/* ------------------------------------------------------------------------ */
/* Statistics                                                               */
/* ------------------------------------------------------------------------ */

/** Counters of one worker, or of all workers summed. */
typedef struct weft_stats {
	uint64_t switches;        /* context switches into green threads */
	uint64_t yields;          /* weft_yield calls that switched */
	uint64_t preemptions;     /* timer ticks that switched threads */
	uint64_t deferred_ticks;  /* timer ticks that landed outside a safe point */
	uint64_t ticks;           /* timer ticks received */
	uint64_t steals;          /* threads taken from another worker's queue */
	uint64_t parks;           /* threads blocked */
	uint64_t wakeups;         /* threads made ready by another thread */
	uint64_t created;         /* threads created */
	uint64_t finished;        /* threads finished */
	uint64_t idle_sleeps;     /* times the worker slept on its futex */
} weft_stats_t;

/**
 * Read the statistics of worker `worker`, or of all workers summed when
 * worker is -1.  Counters are per worker and read without stopping anyone,
 * so a sum is a snapshot only up to concurrent increments.
 * @return 0; EINVAL out NULL or worker out of range.
 */
WEFT_API int weft_stats_get(int worker, weft_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_H */
