/** @file
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
 *    the green thread "main" (see weft_init).  A kernel thread that is not
 *    a weft worker (a "foreign" thread) may use the synchronization objects
 *    (it blocks in the kernel where a green thread would park); the thread
 *    calls that would block (weft_join, weft_yield, weft_sleep_ns) return
 *    EPERM there.
 *  - If initialization fails it is not retried: calls that need the runtime
 *    fail with weft_init's error, or with the error they give a caller that
 *    is not a green thread (EPERM) or a thread that does not exist (ESRCH).
 *  - Thread handles of finished-and-reclaimed threads are stale: every call
 *    taking one returns ESRCH; a made-up handle never crashes.
 *  - A green thread may resume on another worker after any weft call that
 *    blocks, yields or creates (never after a timer preemption).  weft saves
 *    and restores errno per thread, but the compiler may keep the *address*
 *    of errno or of any __thread variable in a register across such a call
 *    (__errno_location is declared const): after the call that address may
 *    belong to another worker.  Re-read TLS after blocking calls.
 *  - Use weft's locks in green threads: a pthread lock blocks the whole
 *    worker, and a thread preempted while holding one can deadlock it.
 */
#ifndef WEFT_H
#define WEFT_H

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @def WEFT_API
 *  Marks the functions libweft exports (default visibility with GCC and
 *  Clang; empty elsewhere). */
/** @def WEFT_NORETURN
 *  Marks weft_exit, which never returns. */
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

/** @defgroup weft_runtime Runtime
 *  Starting weft, its workers, and preemption control.
 *  @{ */

/**
 * Initialize weft from the environment: WEFT_WORKERS, WEFT_QUANTUM_US,
 * WEFT_STACK_SIZE, WEFT_STACK_CACHE, WEFT_KTHREADS, WEFT_PREEMPT_SIGNAL,
 * WEFT_DUMP_SIGNAL and WEFT_TRACE.
 *
 * Who may call: any code; normally main() before anything else.  Optional —
 * the first call of any weft function initializes.  Idempotent: later calls
 * return 0 (or the error of the first attempt).  The caller becomes the green
 * thread "main" running on worker 0.  When the caller is not the process's
 * initial thread (a pthread of the program's), it keeps a kernel thread of
 * its own that runs main only, every worker is weft's, and that pthread may
 * end while the threads it created carry on.  A process forked from an
 * initialized parent must not call weft (the child has only one kernel
 * thread).
 *
 * @return 0 on success;
 *         EINVAL  a variable is malformed or out of range (one line on stderr
 *                 naming the variable and the accepted values);
 *         EAGAIN  the kernel workers or their resources could not be created
 *                 (also WEFT_KTHREADS=clone when the clone gate fails).
 */
WEFT_API int weft_init(void);

/** Number of kernel workers that run green threads (WEFT_WORKERS).  Any
 *  caller; initializes on first use.  While a worker is blocked in a system
 *  call weft was not told about, a standby kernel worker runs green threads
 *  in its place, so the number running green threads stays this one.
 *  @return the number of workers; 0 if initialization failed. */
WEFT_API int weft_workers(void);

/** Which worker runs the caller.  Any caller; does not initialize.
 *  @return the index 0..workers-1 of the worker running the caller; an
 *          index from workers up on a kernel thread that stands in for a
 *          blocked worker, or in main when weft was initialized by a thread
 *          other than the process's initial thread (weft_init); -1 when the
 *          caller is not running on a weft worker. */
WEFT_API int weft_worker_self(void);

/** Disable preemption of the calling green thread; nests.  The caller can
 *  still block or yield.  Who may call: a green thread (no effect
 *  elsewhere). */
WEFT_API void weft_preempt_disable(void);
/** Undo one weft_preempt_disable(); at the outermost one, a timer tick
 *  deferred meanwhile is taken at once.  Who may call: a green thread (no
 *  effect elsewhere, or when preemption is not disabled). */
WEFT_API void weft_preempt_enable(void);

/** @} */

/* ------------------------------------------------------------------------ */
/* Threads                                                                  */
/* ------------------------------------------------------------------------ */

/** @defgroup weft_threads Threads
 *  Creating, joining and naming green threads.
 *  @{ */

/** Opaque thread handle: an unsigned integer of pointer size. */
typedef uintptr_t weft_t;
/** Names no thread. */
#define WEFT_NULL ((weft_t)0)

/** Smallest stack a thread may be given, in bytes.  Enough for printf and
 *  the signal frame of a preemption with the full AVX-512 state. */
#define WEFT_STACK_MIN ((size_t)16384)

/** Detach states, for weft_attr_setdetachstate. */
enum {
	WEFT_CREATE_JOINABLE = 0, /**< reclaimed by weft_join (the default) */
	WEFT_CREATE_DETACHED = 1  /**< reclaimed when it finishes */
};

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
 * @param t      receives the handle of the new thread
 * @param attr   attributes, or NULL for the defaults
 * @param start  the thread's start routine; its return value is the thread's
 * @param arg    passed to start
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
 * @param t    the thread to wait for
 * @param ret  receives t's return value, or NULL
 * @return 0;
 *         EDEADLK t is the caller;
 *         EINVAL  t is detached, or another thread is already joining it;
 *         ESRCH   t is unknown, stale or already joined;
 *         EPERM   the caller is not a green thread.
 */
WEFT_API int weft_join(weft_t t, void **ret);

/**
 * Mark t detached: its resources are reclaimed when it finishes, and its
 * handle is stale from then on.  Who may call: any code.
 * @param t  the thread
 * @return 0; EINVAL t is already detached, being joined, or "main"; ESRCH
 *         t unknown/stale.
 */
WEFT_API int weft_detach(weft_t t);

/**
 * Finish the calling green thread with return value ret; the same as
 * returning ret from its start routine.  Thread-specific data destructors
 * run first.  Called from "main": waits until every other thread has
 * finished, then ends the process with exit status 0 (atexit handlers run).
 * Who may call: a green thread.  Called from a kernel thread that is not a
 * green thread: no effect is possible, so the process aborts with a
 * diagnostic.
 * @param ret  the thread's return value, for weft_join
 */
WEFT_API WEFT_NORETURN void weft_exit(void *ret);

/** Handle of the calling green thread.  Any caller (initializes on first
 *  use).
 *  @return the caller's handle; WEFT_NULL when the caller is not a green
 *          thread. */
WEFT_API weft_t weft_self(void);

/** Compare two handles.  Any caller.
 *  @param a  a handle
 *  @param b  another handle
 *  @return nonzero when a and b name the same thread, 0 otherwise. */
WEFT_API int weft_equal(weft_t a, weft_t b);

/** Move the caller to the tail of its worker's run queue and run others.
 *  Who may call: a green thread.
 *  @return 0; EPERM when the caller is not a green thread. */
WEFT_API int weft_yield(void);

/** Block for at least ns nanoseconds; 0 yields.  Who may call: a green
 *  thread.
 *  @param ns  how long to sleep, in nanoseconds
 *  @return 0; EPERM when the caller is not a green thread. */
WEFT_API int weft_sleep_ns(uint64_t ns);

/** Announce a call that may block the calling kernel thread (a read from
 *  a slow disk, stat, getaddrinfo, fsync, ...), up to weft_blocking_end.
 *  If the call is still blocked after a few milliseconds, the worker's
 *  other threads are handed to another kernel thread (without the
 *  announcement the same happens, a little later, once weft's monitor sees
 *  the worker asleep in the kernel).  Make no other weft call in between.
 *  Who may call: anyone; from a kernel thread that is not a green thread it
 *  does nothing.
 *  @return 0. */
WEFT_API int weft_blocking_begin(void);

/** End the section opened by weft_blocking_begin.  If the worker was handed
 *  over meanwhile, the caller continues on another worker.  Who may call:
 *  anyone; from a kernel thread that is not a green thread it does nothing.
 *  @return 0. */
WEFT_API int weft_blocking_end(void);

/** Name thread t (at most 31 bytes are kept; longer names are truncated).
 *  Any caller.
 *  @param t     the thread
 *  @param name  the new name, NUL-terminated
 *  @return 0; EINVAL name is NULL; ESRCH t unknown/stale. */
WEFT_API int weft_setname(weft_t t, const char *name);

/** Copy the name of t, NUL-terminated, into buf.  Any caller.
 *  @param t    the thread
 *  @param buf  receives the name
 *  @param len  size of buf in bytes
 *  @return 0; EINVAL buf is NULL; ERANGE len is too small for the name and
 *  its terminator; ESRCH t unknown/stale. */
WEFT_API int weft_getname(weft_t t, char *buf, size_t len);

/** Where thread t's stack is: its lowest usable address and its size (the
 *  guard page below it excluded).  Any caller.
 *  @param t     the thread
 *  @param addr  receives the lowest address of the stack
 *  @param size  receives its size in bytes
 *  @return 0; EINVAL addr or size NULL; ESRCH t unknown, stale or finished;
 *  ENOENT t is "main", which runs on its kernel thread's own stack. */
WEFT_API int weft_getstack(weft_t t, void **addr, size_t *size);

/** @} */

/* ------------------------------------------------------------------------ */
/* Cancellation                                                             */
/* ------------------------------------------------------------------------ */

/** @defgroup weft_cancel Cancellation
 *  Stopping a thread from outside, POSIX style: a request that the thread
 *  acts on at its next cancellation point, running its cleanup handlers and
 *  key destructors on the way out.
 *
 *  Cancellation points are the weft calls that can block: weft_join,
 *  weft_cond_wait and weft_cond_timedwait, weft_sem_wait and
 *  weft_sem_timedwait (when they would block: taking an available token
 *  stays as cheap as a trywait), weft_sleep_ns (when ns > 0), the
 *  rwlock read and write locks, timed or not, and weft_barrier_wait (when
 *  they would block), the I/O calls (weft_read and the rest, weft_poll,
 *  weft_fd_wait: when they wait for a descriptor, and on entry to a call
 *  that blocks in the kernel, such as one on a regular file or a
 *  terminal: a request that comes while it is there acts at the next
 *  point), and weft_testcancel.  Mutex locks, spin and ticket locks and
 *  weft_once are not.  A point acts on a request pending when it is called,
 *  and on one that arrives while it is parked: the thread then leaves the
 *  object's queue without consuming anything (a cond wait takes its mutex
 *  back first, as POSIX requires, so the cleanup handlers run with the
 *  mutex held).
 *
 *  Acting means: the thread runs its cleanup handlers (weft_cleanup_push),
 *  innermost first, then its key destructors, and finishes with the result
 *  WEFT_CANCELED.  When the C++ unwinder is in the process (libgcc_s, which
 *  every C++ program and every C program built with -fexceptions loads),
 *  the thread's frames are unwound as glibc does for pthread_cancel: C++
 *  destructors and __attribute__((cleanup)) handlers run too, interleaved
 *  with the cleanup handlers by frame.  weft_exit finishes a thread the
 *  same way, with its own result.
 *
 *  Asynchronous cancellation (WEFT_CANCEL_ASYNCHRONOUS) acts at a safe
 *  point: when weft's timer finds the thread in the program's own code (the
 *  places where it would preempt it), within a kernel tick of CPU time of
 *  the request, or when the thread next runs after a switch, or at any
 *  cancellation point.  A thread sitting in libc or in a system call is
 *  cancelled once it is back in its own code.  With WEFT_QUANTUM_US=0 there
 *  is no timer: a running thread acts only at its next switch or point.
 *  @{ */

/** For WEFT_CANCELED only: the object it points to. */
WEFT_API extern const char weft_canceled_;
/** The result weft_join reports for a cancelled thread: the address of an
 *  object of weft's, which no thread returns unless it names it. */
#define WEFT_CANCELED ((void *)&weft_canceled_)

/** Cancelability states (weft_setcancelstate) and types
 *  (weft_setcanceltype).  New threads, "main" included, start enabled and
 *  deferred. */
enum {
	WEFT_CANCEL_ENABLE = 0,       /**< requests are acted on */
	WEFT_CANCEL_DISABLE = 1,      /**< requests stay pending */
	WEFT_CANCEL_DEFERRED = 0,     /**< act at cancellation points */
	WEFT_CANCEL_ASYNCHRONOUS = 1  /**< act at the next safe point */
};

/**
 * Ask thread t to cancel.  The request stays pending until t acts on it
 * (see above); weft_cancel does not wait.  A request to a thread that is
 * already finishing has no effect.  Cancelling "main" finishes main as
 * weft_exit does: once every other thread has finished, the process exits
 * with status 0.
 *
 * Who may call: any code, any kernel thread; from a signal handler only
 * with t the calling thread.
 * @param t  the thread
 * @return 0; ESRCH t unknown/stale.
 */
WEFT_API int weft_cancel(weft_t t);

/**
 * Set the caller's cancelability state; with a request pending, enabling
 * it acts at once if the type is asynchronous.  Who may call: a green
 * thread.
 * @param state  WEFT_CANCEL_ENABLE or WEFT_CANCEL_DISABLE
 * @param old    receives the previous state, or NULL
 * @return 0; EINVAL bad state; EPERM the caller is not a green thread.
 */
WEFT_API int weft_setcancelstate(int state, int *old);

/**
 * Set the caller's cancelability type; with a request pending and
 * cancellation enabled, asynchronous acts at once.  Who may call: a green
 * thread.
 * @param type  WEFT_CANCEL_DEFERRED or WEFT_CANCEL_ASYNCHRONOUS
 * @param old   receives the previous type, or NULL
 * @return 0; EINVAL bad type; EPERM the caller is not a green thread.
 */
WEFT_API int weft_setcanceltype(int type, int *old);

/** A cancellation point that does nothing else: act on a pending request
 *  if cancellation is enabled.  Who may call: anyone (no effect outside a
 *  green thread). */
WEFT_API void weft_testcancel(void);

/* A cleanup record, on the stack of the thread that pushed it (private to
 * weft_cleanup_push/weft_cleanup_pop). */
typedef struct weft_cleanup_ {
	void (*_fn)(void *);
	void *_arg;
	struct weft_cleanup_ *_prev;
} weft_cleanup_;

/** For the macros below only: link c, which runs fn(arg) if the thread
 *  finishes before the matching pop.  Who may call: a green thread (from
 *  any other kernel thread the record is only popped). */
WEFT_API void weft_cleanup_push_(weft_cleanup_ *c, void (*fn)(void *), void *arg);
/** For the macros below only: unlink c, the innermost record, and run it
 *  when execute is nonzero. */
WEFT_API void weft_cleanup_pop_(weft_cleanup_ *c, int execute);

/**
 * Push a cleanup handler: fn(arg) runs if the thread is cancelled or calls
 * weft_exit before the matching weft_cleanup_pop.  The two macros open and
 * close a block and must be paired in one function at the same nesting
 * level, as pthread_cleanup_push/pop are; leaving the block otherwise
 * (return, goto, longjmp) is undefined.  Who may call: a green thread.
 */
#define weft_cleanup_push(fn, arg) \
	do { \
		weft_cleanup_ weft_cleanup_rec_; \
		weft_cleanup_push_(&weft_cleanup_rec_, (fn), (arg)); \
		do {
/** Pop the innermost cleanup handler and run it when execute is nonzero. */
#define weft_cleanup_pop(execute) \
		} while (0); \
		weft_cleanup_pop_(&weft_cleanup_rec_, (execute)); \
	} while (0)

/** @} */

/* ------------------------------------------------------------------------ */
/* Signals and fork                                                         */
/* ------------------------------------------------------------------------ */

/** @defgroup weft_signals Signals and fork
 *  Signals aimed at one green thread, a signal mask per green thread, and
 *  fork() from a green thread.
 *
 *  A green thread starts with the mask of the thread that created it (a
 *  thread created from a kernel thread that is not a weft worker, and
 *  "main", start with the mask the initializing thread had when weft
 *  started: the default mask).  A signal sent to the process goes to a
 *  green thread that does not block it: the running thread of a worker
 *  whose kernel thread takes it, or, when that worker is idle or its thread
 *  blocks the signal, another green thread chosen by weft (a running one
 *  first, then a queued one, then a parked one).  A signal that every green
 *  thread blocks stays pending until one unblocks it.  Handlers are the
 *  program's (sigaction, as usual); a handler runs on the stack of the
 *  thread the signal is delivered to, while that thread runs.
 *
 *  Only the program's handlers are per thread.  A signal whose action is
 *  the default (terminate, stop, core) or ignore acts on the whole process,
 *  as it does with pthreads; weft_kill with such a signal acts at once.
 *
 *  sigwait, sigwaitinfo, sigtimedwait and signalfd read the signals pending
 *  for a kernel thread or for the process, which weft cannot see per green
 *  thread.  Block the signals they consume before the first weft call, so
 *  that every worker and every green thread blocks them from the start
 *  (weft's idle workers keep the default mask), then wait for them in one
 *  green thread: sigwait blocks that thread's worker while it waits (weft
 *  hands the worker's other threads on), signalfd with weft's I/O calls does
 *  not.
 *
 *  Masks changed with pthread_sigmask or sigprocmask rather than
 *  weft_sigmask belong to the worker's kernel thread, not to the green
 *  thread, and weft sets the kernel mask again at a switch to a thread
 *  whose mask differs.
 *  @{ */

/**
 * Send sig to green thread t.  The handler runs on t's stack while t runs,
 * on whichever worker that is: at once if t is the caller or running (a
 * system call t is making is interrupted, as with pthread_kill), when t is
 * next resumed if it is queued, and now if t is parked in a wait that
 * signals interrupt: weft_sem_wait, weft_sem_timedwait and the I/O calls
 * then fail with EINTR, or wait again when the handler was installed with
 * SA_RESTART, as the kernel restarts them (not an I/O call with a timeout:
 * a socket's SO_RCVTIMEO or SO_SNDTIMEO, or a deadline variant);
 * weft_sleep_ns, weft_poll and weft_fd_wait always fail with EINTR;
 * weft_cond_wait and weft_cond_timedwait return 0 with the mutex held (a
 * spurious wake-up).  Other waits (join, locks, barriers) finish first.  A signal t blocks
 * stays pending until t unblocks it.  Signals of one number do not queue:
 * sent twice before delivery, the handler runs once.  sig 0 only checks
 * that t exists.
 *
 * Who may call: any code, any kernel thread; from a signal handler only
 * with t the calling thread.
 * @param t    the thread
 * @param sig  a signal number, or 0
 * @return 0 (also when t has finished and is not joined yet); EINVAL sig
 *         is not a valid signal; ESRCH t unknown/stale.
 */
WEFT_API int weft_kill(weft_t t, int sig);

/**
 * Examine and change the calling green thread's signal mask, as
 * pthread_sigmask does for a kernel thread.  SIGKILL and SIGSTOP cannot be
 * blocked, and the signals weft uses itself (the preemption signal, the
 * dump signal, SIGSEGV) are blocked for the program's handlers only: weft
 * keeps receiving them.  Unblocking a pending signal delivers it before
 * the call returns (a process signal that weft is handing over from an
 * idle worker at that very moment: at the caller's next switch).
 *
 * Who may call: a green thread.
 * @param how  SIG_BLOCK, SIG_UNBLOCK or SIG_SETMASK (ignored when set is
 *             NULL)
 * @param set  the signals, or NULL to only read the mask
 * @param old  receives the previous mask, or NULL
 * @return 0; EINVAL bad how; EPERM the caller is not a green thread.
 */
WEFT_API int weft_sigmask(int how, const sigset_t *set, sigset_t *old);

/**
 * Register fork handlers, run by fork() in the POSIX order: the prepare
 * handlers in the reverse order of registration, before the fork; the
 * parent and child handlers in the order of registration, after it, in the
 * parent and in the child.  Handlers registered here run while weft works
 * fully (a prepare handler may lock weft mutexes, a child handler may use
 * weft); weft's own preparation runs after every prepare handler registered
 * with weft_atfork (or with pthread_atfork after weft started).  A prepare
 * handler that locks a weft mutex which the parent and child handlers
 * unlock works when no other thread is queuing on that mutex at the
 * instant of the fork (its queue's own lock could then be held in the
 * child); threads already queued on it are passed over in the child.
 *
 * fork() from a green thread gives a child in which weft works: the caller
 * is the child's only thread and its "main" (weft_exit from it waits for
 * the threads the child creates), keeping its handle, name, mask, keys and
 * cancelability; the other threads do not exist there (their handles are
 * stale, and objects they held or waited on must not be used).  The
 * child's workers, timers and monitor start with the first weft call that
 * initializes (weft_create, weft_init, weft_self, ...); until then the
 * child runs on one worker without preemption.  A child forked from a
 * kernel thread that is not a green thread has no green thread: its first
 * weft call makes the caller "main", as at start.
 *
 * Who may call: any code.
 * @param prepare  run before the fork, or NULL
 * @param parent   run in the parent after the fork, or NULL
 * @param child    run in the child after the fork, or NULL
 * @return 0; ENOMEM no memory for the handlers; EAGAIN weft could not be
 *         initialized (its own handlers must be registered first).
 */
WEFT_API int weft_atfork(void (*prepare)(void), void (*parent)(void),
                         void (*child)(void));

/** @} */

/* ------------------------------------------------------------------------ */
/* Attributes                                                               */
/* ------------------------------------------------------------------------ */

/** @defgroup weft_attr Thread attributes
 *  Settings for weft_create.  "a bad" means a is NULL or was not
 *  initialized with weft_attr_init.
 *  @{ */

/** Initialize a to the defaults: joinable, default stack size, no name.
 *  Any caller.
 *  @param a  the attributes
 *  @return 0; EINVAL a is NULL. */
WEFT_API int weft_attr_init(weft_attr_t *a);
/** Invalidate a; it may be initialized again.  Any caller.
 *  @param a  the attributes
 *  @return 0; EINVAL a is NULL or not initialized. */
WEFT_API int weft_attr_destroy(weft_attr_t *a);
/** Have weft allocate stacks of size bytes (this replaces a stack set with
 *  weft_attr_setstack).  Any caller.
 *  @param a     the attributes
 *  @param size  stack size in bytes
 *  @return 0; EINVAL a bad, or size below WEFT_STACK_MIN or above 1 GiB. */
WEFT_API int weft_attr_setstacksize(weft_attr_t *a, size_t size);
/** Read the stack size: the one set, or the WEFT_STACK_SIZE default.  Any
 *  caller.
 *  @param a     the attributes
 *  @param size  receives the size in bytes
 *  @return 0; EINVAL a or size NULL, or a not initialized. */
WEFT_API int weft_attr_getstacksize(const weft_attr_t *a, size_t *size);
/** Use the caller-owned memory [addr, addr+size) as the stack, as given: no
 *  guard page, never freed by weft.  Any caller.
 *  @param a     the attributes
 *  @param addr  lowest address of the stack
 *  @param size  stack size in bytes
 *  @return 0; EINVAL a or addr bad, size below WEFT_STACK_MIN, or the range
 *  wraps around the address space. */
WEFT_API int weft_attr_setstack(weft_attr_t *a, void *addr, size_t size);
/** Read the stack set with weft_attr_setstack (*addr NULL when weft
 *  allocates it; *size 0 for the default size).  Any caller.
 *  @param a     the attributes
 *  @param addr  receives the stack address
 *  @param size  receives the stack size
 *  @return 0; EINVAL a bad or an output pointer NULL. */
WEFT_API int weft_attr_getstack(const weft_attr_t *a, void **addr, size_t *size);
/** Set the detach state of new threads.  Any caller.
 *  @param a      the attributes
 *  @param state  WEFT_CREATE_JOINABLE or WEFT_CREATE_DETACHED
 *  @return 0; EINVAL a bad or state not WEFT_CREATE_JOINABLE/DETACHED. */
WEFT_API int weft_attr_setdetachstate(weft_attr_t *a, int state);
/** Read the detach state.  Any caller.
 *  @param a      the attributes
 *  @param state  receives WEFT_CREATE_JOINABLE or WEFT_CREATE_DETACHED
 *  @return 0; EINVAL a or state NULL, or a not initialized. */
WEFT_API int weft_attr_getdetachstate(const weft_attr_t *a, int *state);
/** Set the name of new threads (at most 31 bytes are kept).  Any caller.
 *  @param a     the attributes
 *  @param name  the name, NUL-terminated
 *  @return 0; EINVAL a or name NULL, or a not initialized. */
WEFT_API int weft_attr_setname(weft_attr_t *a, const char *name);
/** Copy the name, NUL-terminated, into buf.  Any caller.
 *  @param a    the attributes
 *  @param buf  receives the name
 *  @param len  size of buf in bytes
 *  @return 0; EINVAL a or buf NULL, or a not initialized; ERANGE len too
 *  small for the name and its terminator. */
WEFT_API int weft_attr_getname(const weft_attr_t *a, char *buf, size_t len);

/** @} */

/* ------------------------------------------------------------------------ */
/* Thread-specific data                                                     */
/* ------------------------------------------------------------------------ */

/** @defgroup weft_tsd Thread-specific data
 *  Values per green thread; they travel with it across workers.
 *  @{ */

/** Key for thread-specific data: values belong to the green thread. */
typedef uint32_t weft_key_t;
/** Number of keys a process may have at once: glibc's PTHREAD_KEYS_MAX. */
#define WEFT_KEYS_MAX 1024

/** Create a key; destructor (may be NULL) runs at thread exit for non-NULL
 *  values.  Any caller.
 *  @param k           receives the key
 *  @param destructor  called with the value when a thread finishes, or NULL
 *  @return 0; EINVAL k NULL; EAGAIN no key is free (WEFT_KEYS_MAX exist). */
WEFT_API int weft_key_create(weft_key_t *k, void (*destructor)(void *));
/** Delete a key (destructors are not called).  Any caller.
 *  @param k  the key
 *  @return 0; EINVAL unknown key. */
WEFT_API int weft_key_delete(weft_key_t k);
/** Value of k for the caller.  Any caller.
 *  @param k  the key
 *  @return the value; NULL when unset, when k is unknown, or when the caller
 *          is not a green thread. */
WEFT_API void *weft_getspecific(weft_key_t k);
/** Set the caller's value of k.  Who may call: a green thread.
 *  @param k  the key
 *  @param v  the value
 *  @return 0; EINVAL unknown key; ENOMEM no memory; EPERM caller is not a
 *  green thread. */
WEFT_API int weft_setspecific(weft_key_t k, const void *v);

/** @} */

/* ------------------------------------------------------------------------ */
/* Synchronization                                                          */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup weft_sync Synchronization
 * Mutexes, condition variables, semaphores, reader-writer locks, barriers,
 * once, spin and ticket locks.
 *
 * Common rules of this section.
 *  - "Blocks" means the calling green thread parks on the object's own FIFO
 *    queue and its worker runs other threads.
 *  - Foreign threads.  A kernel thread that is not a weft worker (glibc's
 *    helper threads, a library's threads, threads started before weft)
 *    may use every object of this section like a green thread: where a
 *    green thread would park, it blocks in the kernel (futex), and green
 *    threads and it wake each other.  It is given an identity (a thread
 *    control block, never scheduled, released when the kernel thread
 *    exits) at its first such call; when none can be made (out of memory)
 *    the call returns EAGAIN.  weft_self() still returns WEFT_NULL there.
 *  - Timeouts are absolute CLOCK_MONOTONIC times; a timespec with tv_nsec
 *    outside [0, 1e9) is EINVAL (checked before anything else).  A deadline
 *    already past still succeeds when the object can be taken at once.
 *  - Objects with an initializer macro work without an init call.  An object
 *    must not be copied, nor destroyed while in use; destroying one that is
 *    held or waited on is EBUSY, and using a destroyed mutex, rwlock, cond,
 *    semaphore or barrier is EINVAL until it is initialized again.
 *  - Owner identity is the green thread (its weft_t), never the worker it
 *    happens to run on.
 *  - All fields below are private to weft.
 * @{
 */

/* A wait queue: a spinlock and a FIFO of parked waiters.  Every blocking
 * object embeds one. */
typedef struct weft_waitq_ {
	uint32_t _lock;      /* 0 free, 1 held */
	uint32_t _count;     /* waiters linked */
	void *_head;
	void *_tail;
} weft_waitq_;
#define WEFT_WAITQ_INIT_ { 0, 0, NULL, NULL }

/* --- Mutexes ------------------------------------------------------------- */

/** Mutex types, for weft_mutexattr_settype. */
enum {
	WEFT_MUTEX_NORMAL = 0,     /**< no checks: relocking deadlocks */
	WEFT_MUTEX_ERRORCHECK = 1, /**< relock EDEADLK, foreign unlock EPERM */
	WEFT_MUTEX_RECURSIVE = 2,  /**< the holder may lock again, and unlocks
	                                as many times */
	WEFT_MUTEX_DEFAULT = WEFT_MUTEX_NORMAL /**< WEFT_MUTEX_NORMAL */
};

/** Mutex attributes.  Initialize with weft_mutexattr_init. */
typedef struct weft_mutexattr { uint32_t _magic; int _type; } weft_mutexattr_t;

/** A mutex.  Initialize with WEFT_MUTEX_INITIALIZER (normal type),
 *  WEFT_MUTEX_ERRORCHECK_INITIALIZER, WEFT_MUTEX_RECURSIVE_INITIALIZER, or
 *  weft_mutex_init. */
typedef struct weft_mutex {
	uint32_t _state;     /* lock word: locked | waiters | woken | handoff */
	int _type;           /* WEFT_MUTEX_* */
	uintptr_t _owner;    /* weft_t of the holder; 0 when free */
	unsigned _depth;     /* recursive: locks beyond the first */
	uint64_t _woken_ns;  /* when a release first found the woken waiter pending; 0 = not yet */
	weft_waitq_ _wq;     /* parked waiters, FIFO */
} weft_mutex_t;
/** Static initializer of an unlocked normal mutex. */
#define WEFT_MUTEX_INITIALIZER            { 0, WEFT_MUTEX_NORMAL, 0, 0, 0, WEFT_WAITQ_INIT_ }
/** Static initializer of an unlocked error-checking mutex. */
#define WEFT_MUTEX_ERRORCHECK_INITIALIZER { 0, WEFT_MUTEX_ERRORCHECK, 0, 0, 0, WEFT_WAITQ_INIT_ }
/** Static initializer of an unlocked recursive mutex. */
#define WEFT_MUTEX_RECURSIVE_INITIALIZER  { 0, WEFT_MUTEX_RECURSIVE, 0, 0, 0, WEFT_WAITQ_INIT_ }

/** Initialize mutex attributes to the default type (WEFT_MUTEX_NORMAL).
 *  Any caller.
 *  @param a  the attributes
 *  @return 0; EINVAL a is NULL. */
WEFT_API int weft_mutexattr_init(weft_mutexattr_t *a);
/** Release mutex attributes.  Any caller.
 *  @param a  the attributes
 *  @return 0; EINVAL a is NULL or not initialized. */
WEFT_API int weft_mutexattr_destroy(weft_mutexattr_t *a);
/** Set the type: WEFT_MUTEX_NORMAL, WEFT_MUTEX_ERRORCHECK or
 *  WEFT_MUTEX_RECURSIVE.  Any caller.
 *  @param a     the attributes
 *  @param type  the mutex type
 *  @return 0; EINVAL a is NULL or not initialized, or type is unknown. */
WEFT_API int weft_mutexattr_settype(weft_mutexattr_t *a, int type);
/** Read the type.  Any caller.
 *  @param a     the attributes
 *  @param type  receives the mutex type
 *  @return 0 and *type; EINVAL a or type NULL, or a not initialized. */
WEFT_API int weft_mutexattr_gettype(const weft_mutexattr_t *a, int *type);

/**
 * Initialize m, unlocked, with the type of a (normal when a is NULL).
 * Any caller; m must not be in use.
 * @param m  the mutex
 * @param a  attributes, or NULL
 * @return 0; EINVAL m is NULL, or a is not NULL and not initialized.
 */
WEFT_API int weft_mutex_init(weft_mutex_t *m, const weft_mutexattr_t *a);

/**
 * Destroy m.  Any caller.  It may be initialized again afterwards.
 * @param m  the mutex
 * @return 0;
 *         EBUSY   m is locked, or threads are waiting for it;
 *         EINVAL  m is NULL or already destroyed.
 */
WEFT_API int weft_mutex_destroy(weft_mutex_t *m);

/**
 * Lock m, blocking while another thread holds it.
 *
 * Who may call: any thread.  Uncontended, this is one atomic
 * compare-and-swap.  Contended, the caller spins briefly (only with more
 * than one worker), then parks on m's FIFO queue.  A newcomer may take a
 * just-released mutex ahead of a woken waiter, but once the oldest waiter
 * has waited more than 1 ms, m switches to direct handoff: unlock passes m
 * to the oldest waiter and yields to it, and newcomers queue, until the
 * queue drains or a waiter is served within 1 ms.  A normal mutex relocked
 * by its holder deadlocks.
 *
 * @param m  the mutex
 * @return 0;
 *         EDEADLK an error-checking mutex is already held by the caller;
 *         EAGAIN  a recursive mutex's lock count would overflow;
 *         EINVAL  m is NULL, destroyed, or of an unknown type;
 *         EAGAIN  also: a foreign caller's control block cannot be made.
 */
WEFT_API int weft_mutex_lock(weft_mutex_t *m);

/**
 * Lock m if that is possible without blocking.  Who may call: any
 * thread.  A recursive mutex held by the caller is locked once more.
 * @param m  the mutex
 * @return 0;
 *         EBUSY   m is held (by the caller, for normal and error-checking
 *                 mutexes), or it is being handed to a waiter;
 *         EAGAIN  a recursive mutex's lock count would overflow;
 *         EINVAL  m is NULL, destroyed, or of an unknown type;
 *         EAGAIN  also: a foreign caller's control block cannot be made.
 */
WEFT_API int weft_mutex_trylock(weft_mutex_t *m);

/**
 * As weft_mutex_lock, but give up at abs_monotonic (CLOCK_MONOTONIC).
 * A waiter that times out leaves the queue; a wake-up or handoff that races
 * with the timeout passes to the next waiter, never lost.
 * @param m              the mutex
 * @param abs_monotonic  the deadline
 * @return 0;
 *         ETIMEDOUT the deadline passed before m could be locked;
 *         EINVAL  abs_monotonic is NULL or has tv_nsec out of range, or m is
 *                 NULL, destroyed, or of an unknown type;
 *         EDEADLK, EAGAIN as for weft_mutex_lock.
 */
WEFT_API int weft_mutex_timedlock(weft_mutex_t *m, const struct timespec *abs_monotonic);

/**
 * Unlock m; wake its oldest waiter, or hand m to it in handoff mode.
 * Who may call: the holder (any thread may unlock a held normal mutex; it is
 * discouraged).  A recursive mutex is released when unlocked as many times
 * as it was locked.  Never blocks, but after a handoff, or while a woken
 * waiter has been kept from running for over 1 ms, a green thread yields
 * its worker so that the waiter runs.
 * @param m  the mutex
 * @return 0;
 *         EPERM   m is not locked, or (error-checking and recursive
 *                 mutexes) the caller does not hold it;
 *         EINVAL  m is NULL, destroyed, or of an unknown type.
 */
WEFT_API int weft_mutex_unlock(weft_mutex_t *m);

/* --- Condition variables ----------------------------------------------- */

/** Condition variable attributes (no settable attribute yet). */
typedef struct weft_condattr { uint32_t _magic; } weft_condattr_t;
/** Initialize condition variable attributes.  Any caller.
 *  @param a  the attributes
 *  @return 0; EINVAL a is NULL. */
WEFT_API int weft_condattr_init(weft_condattr_t *a);
/** Release condition variable attributes.  Any caller.
 *  @param a  the attributes
 *  @return 0; EINVAL a is NULL or not initialized. */
WEFT_API int weft_condattr_destroy(weft_condattr_t *a);

/** A condition variable.  Initialize with WEFT_COND_INITIALIZER or
 *  weft_cond_init. */
typedef struct weft_cond {
	uint32_t _state;     /* 0 usable, otherwise destroyed */
	uint32_t _reserved;
	void *_mutex;        /* the mutex current waiters wait with */
	weft_waitq_ _wq;     /* parked waiters, FIFO */
} weft_cond_t;
/** Static initializer of a condition variable. */
#define WEFT_COND_INITIALIZER { 0, 0, NULL, WEFT_WAITQ_INIT_ }

/** Initialize c.  Any caller; c must not be in use.
 *  @param c  the condition variable
 *  @param a  attributes, or NULL
 *  @return 0; EINVAL c is NULL, or a is not NULL and not initialized. */
WEFT_API int weft_cond_init(weft_cond_t *c, const weft_condattr_t *a);

/** Destroy c.  Any caller.
 *  @param c  the condition variable
 *  @return 0; EBUSY threads are waiting on c; EINVAL c NULL or destroyed. */
WEFT_API int weft_cond_destroy(weft_cond_t *c);

/**
 * Atomically unlock m and block until c is signalled, then lock m again
 * before returning (a recursive mutex gets its lock count back).  Waiters
 * are woken in FIFO order.  A signalled waiter is usually moved straight
 * onto m's queue rather than woken, so it runs only once it can have m.
 * Never returns 0 without a signal or broadcast (no spurious wake-ups), but
 * callers should still re-check their predicate in a loop.
 *
 * Who may call: a thread holding m.  All threads waiting on c at the
 * same time must use the same mutex.
 * @param c  the condition variable
 * @param m  the mutex the caller holds
 * @return 0;
 *         EPERM   the caller does not hold m;
 *         EAGAIN  a foreign caller's control block cannot be made;
 *         EINVAL  c or m NULL, c destroyed, or other waiters on c use
 *                 another mutex.
 */
WEFT_API int weft_cond_wait(weft_cond_t *c, weft_mutex_t *m);

/**
 * As weft_cond_wait, but stop waiting at abs_monotonic (CLOCK_MONOTONIC).
 * m is locked again before the call returns, also on timeout.  A waiter
 * that is signalled as its deadline passes returns either 0 (it took the
 * signal) or ETIMEDOUT (the signal went to another waiter), never both.
 * @param c              the condition variable
 * @param m              the mutex the caller holds
 * @param abs_monotonic  the deadline
 * @return 0;
 *         ETIMEDOUT the deadline passed before a signal;
 *         EINVAL  abs_monotonic NULL or tv_nsec out of range, or as for
 *                 weft_cond_wait;
 *         EPERM, EAGAIN as for weft_cond_wait.
 */
WEFT_API int weft_cond_timedwait(weft_cond_t *c, weft_mutex_t *m,
                                 const struct timespec *abs_monotonic);

/**
 * Wake the oldest waiter of c, if any (or move it onto the mutex's queue
 * when the mutex is held).  Any caller, holding the mutex or not; never
 * blocks.
 * @param c  the condition variable
 * @return 0; EINVAL c NULL or destroyed.
 */
WEFT_API int weft_cond_signal(weft_cond_t *c);

/**
 * Wake every waiter of c.  Rather than waking a herd that would at once
 * block on the mutex again, the waiters are moved onto the mutex's queue
 * (when the mutex is free, the oldest is woken and the rest are moved).
 * Any caller; never blocks.
 * @param c  the condition variable
 * @return 0; EINVAL c NULL or destroyed.
 */
WEFT_API int weft_cond_broadcast(weft_cond_t *c);

/* --- Semaphores --------------------------------------------------------- */

/** Largest value of a semaphore. */
#define WEFT_SEM_VALUE_MAX 2147483647u

/** A counting semaphore.  Initialize with weft_sem_init (no initializer). */
typedef struct weft_sem {
	uint32_t _magic;
	uint32_t _value;     /* tokens available; 0 while threads wait */
	weft_waitq_ _wq;     /* parked waiters, FIFO */
} weft_sem_t;

/** Initialize s with value tokens.  Any caller; s must not be in use.
 *  @param s      the semaphore
 *  @param value  initial number of tokens
 *  @return 0; EINVAL s is NULL or value exceeds WEFT_SEM_VALUE_MAX. */
WEFT_API int weft_sem_init(weft_sem_t *s, unsigned value);

/** Destroy s.  Any caller.
 *  @param s  the semaphore
 *  @return 0; EBUSY threads are waiting on s; EINVAL s NULL or not
 *  initialized. */
WEFT_API int weft_sem_destroy(weft_sem_t *s);

/**
 * Take a token, blocking while there is none.  Waiters are served in FIFO
 * order: a post hands its token straight to the oldest waiter.
 * Who may call: any thread.
 * @param s  the semaphore
 * @return 0; EINVAL s NULL or not initialized; EAGAIN a foreign caller's
 *         control block cannot be made.
 */
WEFT_API int weft_sem_wait(weft_sem_t *s);

/** Take a token if one is available.  Any caller; never blocks.
 *  @param s  the semaphore
 *  @return 0; EAGAIN no token; EINVAL s NULL or not initialized. */
WEFT_API int weft_sem_trywait(weft_sem_t *s);

/**
 * As weft_sem_wait, but give up at abs_monotonic (CLOCK_MONOTONIC).  A post
 * that races with the timeout either gives its token to this waiter (0) or
 * to the next waiter or the count (ETIMEDOUT): tokens are never lost or
 * duplicated.
 * @param s              the semaphore
 * @param abs_monotonic  the deadline
 * @return 0; ETIMEDOUT; EINVAL s bad, or abs_monotonic NULL or tv_nsec out
 *         of range; EAGAIN a foreign caller's control block cannot be made.
 */
WEFT_API int weft_sem_timedwait(weft_sem_t *s, const struct timespec *abs_monotonic);

/**
 * Add a token: give it to the oldest waiter, or add it to the count.
 * Any caller, including kernel threads that are not green threads; never
 * blocks.
 * @param s  the semaphore
 * @return 0; EOVERFLOW the value is already WEFT_SEM_VALUE_MAX; EINVAL s
 *         NULL or not initialized.
 */
WEFT_API int weft_sem_post(weft_sem_t *s);

/** Store the number of available tokens in *value (0 while threads wait).
 *  Any caller.
 *  @param s      the semaphore
 *  @param value  receives the number of tokens
 *  @return 0; EINVAL s or value NULL, or s not initialized. */
WEFT_API int weft_sem_getvalue(weft_sem_t *s, int *value);

/* --- Reader-writer locks ------------------------------------------------ */

/** Reader-writer lock attributes (no settable attribute yet). */
typedef struct weft_rwlockattr { uint32_t _magic; } weft_rwlockattr_t;
/** Initialize reader-writer lock attributes.  Any caller.
 *  @param a  the attributes
 *  @return 0; EINVAL a is NULL. */
WEFT_API int weft_rwlockattr_init(weft_rwlockattr_t *a);
/** Release reader-writer lock attributes.  Any caller.
 *  @param a  the attributes
 *  @return 0; EINVAL a is NULL or not initialized. */
WEFT_API int weft_rwlockattr_destroy(weft_rwlockattr_t *a);

/**
 * A reader-writer lock.  Initialize with WEFT_RWLOCK_INITIALIZER or
 * weft_rwlock_init.  Writers do not starve: once a thread waits, later
 * readers queue behind it, and the queue is served in FIFO order (a run of
 * consecutive readers is admitted together).  Consequence: a thread that
 * holds a read lock and asks for another one while a writer waits
 * deadlocks; do not nest read locks.
 */
typedef struct weft_rwlock {
	uint32_t _state;     /* writer | waiters | readers count */
	uint32_t _reserved;
	uintptr_t _owner;    /* weft_t of the writer; 0 otherwise */
	weft_waitq_ _wq;     /* parked readers and writers, FIFO */
} weft_rwlock_t;
/** Static initializer of an unlocked reader-writer lock. */
#define WEFT_RWLOCK_INITIALIZER { 0, 0, 0, WEFT_WAITQ_INIT_ }

/** Initialize l, unlocked.  Any caller; l must not be in use.
 *  @param l  the lock
 *  @param a  attributes, or NULL
 *  @return 0; EINVAL l is NULL, or a is not NULL and not initialized. */
WEFT_API int weft_rwlock_init(weft_rwlock_t *l, const weft_rwlockattr_t *a);

/** Destroy l.  Any caller.
 *  @param l  the lock
 *  @return 0; EBUSY l is held or waited on; EINVAL l NULL or destroyed. */
WEFT_API int weft_rwlock_destroy(weft_rwlock_t *l);

/**
 * Take a read lock, blocking while a writer holds l or any thread waits.
 * Who may call: any thread.
 * @param l  the lock
 * @return 0; EDEADLK the caller holds the write lock; EAGAIN too many
 *         readers (2^29 - 1 hold l), or a foreign caller's control block
 *         cannot be made; EINVAL l NULL or destroyed.
 */
WEFT_API int weft_rwlock_rdlock(weft_rwlock_t *l);

/**
 * Take the write lock, blocking while anyone holds l.
 * Who may call: any thread.
 * @param l  the lock
 * @return 0; EDEADLK the caller holds the write lock; EINVAL l NULL or
 *         destroyed; EAGAIN a foreign caller's control block cannot be
 *         made.
 */
WEFT_API int weft_rwlock_wrlock(weft_rwlock_t *l);

/** Take a read lock if possible without blocking.  Who may call: any
 *  thread.
 *  @param l  the lock
 *  @return 0; EBUSY a writer (the caller included) holds l or threads wait;
 *  EAGAIN too many readers, or no control block for a foreign caller;
 *  EINVAL l NULL or destroyed. */
WEFT_API int weft_rwlock_tryrdlock(weft_rwlock_t *l);

/** Take the write lock if l is free.  Who may call: any thread.
 *  @param l  the lock
 *  @return 0; EBUSY l is held (the caller included); EINVAL l NULL or
 *  destroyed; EAGAIN no control block for a foreign caller. */
WEFT_API int weft_rwlock_trywrlock(weft_rwlock_t *l);

/**
 * As weft_rwlock_rdlock, but give up at abs_monotonic (CLOCK_MONOTONIC).
 * A waiter that times out leaves the queue holding nothing; a grant that
 * races with the timeout is passed on, never lost.  A cancellation point
 * when it would block, as weft_rwlock_rdlock is.
 * Who may call: any thread.
 * @param l              the lock
 * @param abs_monotonic  the deadline
 * @return 0; ETIMEDOUT the deadline passed first; EINVAL abs_monotonic NULL
 *         or tv_nsec out of range, or as for weft_rwlock_rdlock; EDEADLK,
 *         EAGAIN as for weft_rwlock_rdlock.
 */
WEFT_API int weft_rwlock_timedrdlock(weft_rwlock_t *l, const struct timespec *abs_monotonic);

/**
 * As weft_rwlock_wrlock, but give up at abs_monotonic (CLOCK_MONOTONIC).
 * A cancellation point when it would block, as weft_rwlock_wrlock is.
 * Who may call: any thread.
 * @param l              the lock
 * @param abs_monotonic  the deadline
 * @return 0; ETIMEDOUT the deadline passed first; EINVAL abs_monotonic NULL
 *         or tv_nsec out of range, or as for weft_rwlock_wrlock; EDEADLK,
 *         EAGAIN as for weft_rwlock_wrlock.
 */
WEFT_API int weft_rwlock_timedwrlock(weft_rwlock_t *l, const struct timespec *abs_monotonic);

/**
 * Release the caller's write lock or one read lock; when l becomes free,
 * hand it to the oldest waiter (a writer, or a run of readers).
 * Who may call: the writer, or a reader.  Never blocks.
 * @param l  the lock
 * @return 0; EPERM l is not held, or a writer holds it and it is not the
 *         caller; EINVAL l NULL or destroyed.
 */
WEFT_API int weft_rwlock_unlock(weft_rwlock_t *l);

/* --- Barriers ----------------------------------------------------------- */

/** Returned by weft_barrier_wait in exactly one thread per phase. */
#define WEFT_BARRIER_SERIAL_THREAD (-1)

/** A barrier for a fixed number of threads.  Initialize with
 *  weft_barrier_init (no initializer). */
typedef struct weft_barrier {
	uint32_t _magic;
	uint32_t _count;     /* threads per phase */
	uint32_t _arrived;   /* threads waiting in this phase */
	weft_waitq_ _wq;
} weft_barrier_t;

/** Initialize b for count threads.  Any caller; b must not be in use.
 *  @param b      the barrier
 *  @param count  number of threads per phase
 *  @return 0; EINVAL b NULL or count 0. */
WEFT_API int weft_barrier_init(weft_barrier_t *b, unsigned count);

/** Destroy b.  Any caller.
 *  @param b  the barrier
 *  @return 0; EBUSY threads are waiting at b; EINVAL b NULL or not
 *  initialized. */
WEFT_API int weft_barrier_destroy(weft_barrier_t *b);

/**
 * Block until count threads have called weft_barrier_wait on b; the barrier
 * then resets for the next phase.
 * Who may call: any thread.
 * @param b  the barrier
 * @return WEFT_BARRIER_SERIAL_THREAD in exactly one thread of each phase
 *         (the last to arrive), 0 in the others; EINVAL b NULL or not
 *         initialized; EAGAIN a foreign caller's control block cannot be
 *         made.
 */
WEFT_API int weft_barrier_wait(weft_barrier_t *b);

/* --- Once --------------------------------------------------------------- */

/** One-time initialization control.  Initialize with WEFT_ONCE_INIT. */
typedef struct weft_once {
	uint32_t _state;     /* 0 not run, 1 running, 2 done */
	uint32_t _reserved;
	uintptr_t _runner;   /* weft_t of the thread running fn */
	weft_waitq_ _wq;     /* threads waiting for fn to finish */
} weft_once_t;
/** Static initializer of a once control: fn has not run. */
#define WEFT_ONCE_INIT { 0, 0, 0, WEFT_WAITQ_INIT_ }

/**
 * Run fn exactly once for o: the first caller runs it; concurrent callers
 * block until it has returned; later callers return at once.  fn must
 * return (if its thread exits inside fn, the other callers block forever).
 * Who may call: any thread.
 * @param o   the once control
 * @param fn  the function to run
 * @return 0; EINVAL o or fn NULL; EDEADLK fn itself called weft_once on o;
 *         EAGAIN a foreign caller's control block cannot be made.
 */
WEFT_API int weft_once(weft_once_t *o, void (*fn)(void));

/* --- Spin and ticket locks ---------------------------------------------- */

/**
 * A test-and-test-and-set spinlock for very short critical sections.  The
 * holder is never preempted (preemption is off from lock to unlock); it must
 * not block.  A waiter spins with a pause hint and yields its worker after a
 * bounded number of spins, so it makes progress even with one worker.
 */
typedef struct weft_spinlock { uintptr_t _owner; } weft_spinlock_t;  /* weft_t or 0 */
/** Static initializer of an unlocked spinlock. */
#define WEFT_SPINLOCK_INITIALIZER { 0 }

/** Initialize l, unlocked.  Any caller.
 *  @param l  the spinlock
 *  @return 0; EINVAL l is NULL. */
WEFT_API int weft_spin_init(weft_spinlock_t *l);
/** Destroy l (it may be initialized again).  Any caller.
 *  @param l  the spinlock
 *  @return 0; EBUSY l is held; EINVAL l is NULL. */
WEFT_API int weft_spin_destroy(weft_spinlock_t *l);
/** Spin until l is free, take it, and turn preemption off for the caller.
 *  Who may call: any thread.
 *  @param l  the spinlock
 *  @return 0; EDEADLK the caller holds l; EINVAL l NULL; EAGAIN no control
 *  block for a foreign caller. */
WEFT_API int weft_spin_lock(weft_spinlock_t *l);
/** Take l if it is free.  Who may call: any thread.
 *  @param l  the spinlock
 *  @return 0; EBUSY l is held (the caller included); EINVAL l NULL; EAGAIN
 *  no control block for a foreign caller. */
WEFT_API int weft_spin_trylock(weft_spinlock_t *l);
/** Release l and turn preemption back on.  Who may call: the holder.
 *  @param l  the spinlock
 *  @return 0; EPERM the caller does not hold l; EINVAL l NULL. */
WEFT_API int weft_spin_unlock(weft_spinlock_t *l);

/**
 * A ticket lock: FIFO by atomic fetch-and-add; a waiter takes the next
 * ticket and spins (yielding its worker after a bounded number of spins,
 * at once when it is far back in line) until that ticket is served.  The
 * holder is never preempted and must not block.
 */
typedef struct weft_ticketlock {
	uint32_t _next;      /* next ticket to hand out */
	uint32_t _serving;   /* ticket allowed in */
	uintptr_t _owner;    /* weft_t of the holder; 0 when free */
} weft_ticketlock_t;
/** Static initializer of an unlocked ticket lock. */
#define WEFT_TICKETLOCK_INITIALIZER { 0, 0, 0 }

/** Initialize l, unlocked.  Any caller.
 *  @param l  the ticket lock
 *  @return 0; EINVAL l is NULL. */
WEFT_API int weft_ticket_init(weft_ticketlock_t *l);
/** Take a ticket, wait for it to be served, and turn preemption off.
 *  Who may call: any thread.
 *  @param l  the ticket lock
 *  @return 0; EDEADLK the caller holds l; EINVAL l NULL; EAGAIN no control
 *  block for a foreign caller. */
WEFT_API int weft_ticket_acquire(weft_ticketlock_t *l);
/** Serve the next ticket and turn preemption back on.  Who may call: the
 *  holder.
 *  @param l  the ticket lock
 *  @return 0; EPERM the caller does not hold l; EINVAL l NULL. */
WEFT_API int weft_ticket_release(weft_ticketlock_t *l);

/** @} */

/* ------------------------------------------------------------------------ */
/* Blocking I/O                                                             */
/* ------------------------------------------------------------------------ */

/** @defgroup weft_io Blocking I/O
 *
 * Drop-in versions of libc's I/O calls: the same arguments, the same
 * result, the same errno (this family, alone in weft, reports errors
 * through -1 and errno, because it stands in for libc).  Porting is adding
 * the prefix.  What differs is what waiting costs: where libc's call would
 * block its kernel thread, weft's parks the calling green thread and its
 * worker runs the others.
 *
 * They work on the descriptors a program already has, blocking or not,
 * and never change them (weft never sets O_NONBLOCK): a descriptor in
 * nonblocking mode gets EAGAIN exactly where libc's call would, and a
 * socket's SO_RCVTIMEO / SO_SNDTIMEO are honoured as libc honours them.
 * How each kind of descriptor avoids blocking the worker (sockets,
 * pipes, FIFOs, eventfd, timerfd, signalfd, terminals, regular files) is
 * in docs/design.md, "Blocking I/O"; calls on regular files and terminals,
 * connect, and an accept that loses its connection to another thread run
 * in a blocking section (weft_blocking_begin).
 *
 * A write on a blocking descriptor goes on until everything is written, as
 * libc's does on a pipe or a stream socket; if an error or a deadline
 * stops it after some progress it returns the count written.  A read
 * returns after its first transfer.
 *
 * Each call that waits has a deadline variant, NAME_until, taking an
 * absolute CLOCK_MONOTONIC time in nanoseconds (weft_now_ns() + timeout;
 * 0 means no deadline): when the deadline passes before the call could
 * transfer anything it fails with ETIMEDOUT.
 *
 * Closing a descriptor while green threads wait on it: weft_close wakes
 * them at once (they fail with EBADF).  With plain close(2) weft is not
 * told; the waiters fail with EBADF within about a second, unless the
 * number was reused for a new file by then (docs/guide.md, "Blocking
 * calls").
 *
 * Who may call: anyone.  From a kernel thread that is not a green thread
 * each call is libc's own (weft_fd_wait and weft_poll_until then wait in
 * poll(2)).  The first call of a process initializes weft, as any weft
 * call does.  A call never fails with EINTR because of weft; a signal
 * sent to the waiting thread (weft_kill, or a process signal it takes)
 * interrupts it as the kernel would (see weft_kill), and the calls are
 * cancellation points (see weft_cancel).
 * @{ */

/** The clock of the deadlines: CLOCK_MONOTONIC, in nanoseconds.  Any
 *  caller.
 *  @return the current time. */
WEFT_API uint64_t weft_now_ns(void);

/** Wait until fd is ready for `events`, as poll(2) means it (POLLIN,
 *  POLLOUT, POLLPRI), or has an error or a hang-up pending.  Unlike the
 *  calls below it returns an errno value and leaves errno alone.
 *  @param fd        the descriptor
 *  @param events    POLL* bits
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return 0 ready; ETIMEDOUT the deadline passed first; EBADF fd is not
 *          open, or was closed with weft_close while waiting; EINTR a
 *          signal sent to the caller interrupted the wait; ENOMEM. */
WEFT_API int weft_fd_wait(int fd, short events, uint64_t deadline);

/** read(2).
 *  @param fd   the descriptor
 *  @param buf  where to put the data
 *  @param n    at most this many bytes
 *  @return the count read, 0 at end of file; -1 and errno as read(2). */
WEFT_API ssize_t weft_read(int fd, void *buf, size_t n);
/** weft_read with a deadline.
 *  @param fd        the descriptor
 *  @param buf       where to put the data
 *  @param n         at most this many bytes
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as weft_read; -1 and ETIMEDOUT when the deadline passed. */
WEFT_API ssize_t weft_read_until(int fd, void *buf, size_t n, uint64_t deadline);

/** write(2); on a blocking descriptor, all of buf.
 *  @param fd   the descriptor
 *  @param buf  the data
 *  @param n    its length
 *  @return the count written; -1 and errno as write(2) (EPIPE, with
 *          SIGPIPE as the program set it up). */
WEFT_API ssize_t weft_write(int fd, const void *buf, size_t n);
/** weft_write with a deadline.
 *  @param fd        the descriptor
 *  @param buf       the data
 *  @param n         its length
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as weft_write (the count written so far when the deadline
 *          passes after some progress); -1 and ETIMEDOUT when it passed
 *          before any. */
WEFT_API ssize_t weft_write_until(int fd, const void *buf, size_t n, uint64_t deadline);

/** readv(2).
 *  @param fd      the descriptor
 *  @param iov     the buffers
 *  @param iovcnt  how many
 *  @return as readv(2). */
WEFT_API ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt);
/** weft_readv with a deadline.
 *  @param fd        the descriptor
 *  @param iov       the buffers
 *  @param iovcnt    how many
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as readv(2); -1 and ETIMEDOUT when the deadline passed. */
WEFT_API ssize_t weft_readv_until(int fd, const struct iovec *iov, int iovcnt,
                                  uint64_t deadline);

/** writev(2); on a blocking descriptor, all of it.
 *  @param fd      the descriptor
 *  @param iov     the buffers
 *  @param iovcnt  how many
 *  @return as writev(2). */
WEFT_API ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt);
/** weft_writev with a deadline.
 *  @param fd        the descriptor
 *  @param iov       the buffers
 *  @param iovcnt    how many
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as weft_write_until. */
WEFT_API ssize_t weft_writev_until(int fd, const struct iovec *iov, int iovcnt,
                                   uint64_t deadline);

/** pread(2), in a blocking section: positional I/O is for seekable files,
 *  which have no readiness to wait for (there is no deadline variant).
 *  @param fd   the descriptor
 *  @param buf  where to put the data
 *  @param n    at most this many bytes
 *  @param off  the file offset
 *  @return as pread(2). */
WEFT_API ssize_t weft_pread(int fd, void *buf, size_t n, off_t off);

/** pwrite(2), in a blocking section (see weft_pread).
 *  @param fd   the descriptor
 *  @param buf  the data
 *  @param n    its length
 *  @param off  the file offset
 *  @return as pwrite(2). */
WEFT_API ssize_t weft_pwrite(int fd, const void *buf, size_t n, off_t off);

/** recv(2).  MSG_WAITALL gathers until the buffer is full on a stream
 *  socket.
 *  @param fd     the socket
 *  @param buf    where to put the data
 *  @param n      at most this many bytes
 *  @param flags  MSG_* as recv(2)
 *  @return as recv(2). */
WEFT_API ssize_t weft_recv(int fd, void *buf, size_t n, int flags);
/** weft_recv with a deadline.
 *  @param fd        the socket
 *  @param buf       where to put the data
 *  @param n         at most this many bytes
 *  @param flags     MSG_* as recv(2)
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as recv(2); -1 and ETIMEDOUT when the deadline passed. */
WEFT_API ssize_t weft_recv_until(int fd, void *buf, size_t n, int flags, uint64_t deadline);

/** send(2); on a blocking socket, all of buf.
 *  @param fd     the socket
 *  @param buf    the data
 *  @param n      its length
 *  @param flags  MSG_* as send(2)
 *  @return as send(2). */
WEFT_API ssize_t weft_send(int fd, const void *buf, size_t n, int flags);
/** weft_send with a deadline.
 *  @param fd        the socket
 *  @param buf       the data
 *  @param n         its length
 *  @param flags     MSG_* as send(2)
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as weft_write_until. */
WEFT_API ssize_t weft_send_until(int fd, const void *buf, size_t n, int flags,
                                 uint64_t deadline);

/** recvfrom(2).
 *  @param fd       the socket
 *  @param buf      where to put the data
 *  @param n        at most this many bytes
 *  @param flags    MSG_* as recvfrom(2)
 *  @param from     receives the sender's address, or NULL
 *  @param fromlen  its size in, the address's length out
 *  @return as recvfrom(2). */
WEFT_API ssize_t weft_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
                               socklen_t *fromlen);
/** weft_recvfrom with a deadline.
 *  @param fd        the socket
 *  @param buf       where to put the data
 *  @param n         at most this many bytes
 *  @param flags     MSG_* as recvfrom(2)
 *  @param from      receives the sender's address, or NULL
 *  @param fromlen   its size in, the address's length out
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as recvfrom(2); -1 and ETIMEDOUT when the deadline passed. */
WEFT_API ssize_t weft_recvfrom_until(int fd, void *buf, size_t n, int flags,
                                     struct sockaddr *from, socklen_t *fromlen,
                                     uint64_t deadline);

/** sendto(2); on a blocking stream socket, all of buf.
 *  @param fd     the socket
 *  @param buf    the data
 *  @param n      its length
 *  @param flags  MSG_* as sendto(2)
 *  @param to     the destination, or NULL on a connected socket
 *  @param tolen  its length
 *  @return as sendto(2). */
WEFT_API ssize_t weft_sendto(int fd, const void *buf, size_t n, int flags,
                             const struct sockaddr *to, socklen_t tolen);
/** weft_sendto with a deadline.
 *  @param fd        the socket
 *  @param buf       the data
 *  @param n         its length
 *  @param flags     MSG_* as sendto(2)
 *  @param to        the destination, or NULL on a connected socket
 *  @param tolen     its length
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as weft_write_until. */
WEFT_API ssize_t weft_sendto_until(int fd, const void *buf, size_t n, int flags,
                                   const struct sockaddr *to, socklen_t tolen,
                                   uint64_t deadline);

/** recvmsg(2).
 *  @param fd     the socket
 *  @param msg    the message header, as recvmsg(2)
 *  @param flags  MSG_* as recvmsg(2)
 *  @return as recvmsg(2). */
WEFT_API ssize_t weft_recvmsg(int fd, struct msghdr *msg, int flags);
/** weft_recvmsg with a deadline.
 *  @param fd        the socket
 *  @param msg       the message header, as recvmsg(2)
 *  @param flags     MSG_* as recvmsg(2)
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as recvmsg(2); -1 and ETIMEDOUT when the deadline passed. */
WEFT_API ssize_t weft_recvmsg_until(int fd, struct msghdr *msg, int flags, uint64_t deadline);

/** sendmsg(2); on a blocking stream socket, all of the data (ancillary
 *  data goes with the first part).
 *  @param fd     the socket
 *  @param msg    the message, as sendmsg(2)
 *  @param flags  MSG_* as sendmsg(2)
 *  @return as sendmsg(2). */
WEFT_API ssize_t weft_sendmsg(int fd, const struct msghdr *msg, int flags);
/** weft_sendmsg with a deadline.
 *  @param fd        the socket
 *  @param msg       the message, as sendmsg(2)
 *  @param flags     MSG_* as sendmsg(2)
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as weft_write_until. */
WEFT_API ssize_t weft_sendmsg_until(int fd, const struct msghdr *msg, int flags,
                                    uint64_t deadline);

/** accept(2).
 *  @param fd    the listening socket
 *  @param addr  receives the peer's address, or NULL
 *  @param len   its size in, the address's length out
 *  @return the new socket; -1 and errno as accept(2). */
WEFT_API int weft_accept(int fd, struct sockaddr *addr, socklen_t *len);
/** weft_accept with a deadline.
 *  @param fd        the listening socket
 *  @param addr      receives the peer's address, or NULL
 *  @param len       its size in, the address's length out
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as accept(2); -1 and ETIMEDOUT when the deadline passed. */
WEFT_API int weft_accept_until(int fd, struct sockaddr *addr, socklen_t *len,
                               uint64_t deadline);

/** accept4(2).
 *  @param fd     the listening socket
 *  @param addr   receives the peer's address, or NULL
 *  @param len    its size in, the address's length out
 *  @param flags  SOCK_NONBLOCK, SOCK_CLOEXEC for the new socket
 *  @return as accept4(2). */
WEFT_API int weft_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
/** weft_accept4 with a deadline.
 *  @param fd        the listening socket
 *  @param addr      receives the peer's address, or NULL
 *  @param len       its size in, the address's length out
 *  @param flags     SOCK_NONBLOCK, SOCK_CLOEXEC for the new socket
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as accept4(2); -1 and ETIMEDOUT when the deadline passed. */
WEFT_API int weft_accept4_until(int fd, struct sockaddr *addr, socklen_t *len, int flags,
                                uint64_t deadline);

/** connect(2).  On a blocking socket the call runs in a blocking section
 *  (no flag makes connect nonblocking without O_NONBLOCK).
 *  @param fd    the socket
 *  @param addr  the peer's address
 *  @param len   its length
 *  @return 0; -1 and errno as connect(2). */
WEFT_API int weft_connect(int fd, const struct sockaddr *addr, socklen_t len);
/** weft_connect with a deadline, checked before the connection is
 *  started: once in the kernel, a connect on a blocking socket ends when
 *  the kernel's does (its own timeout, or SO_SNDTIMEO).
 *  @param fd        the socket
 *  @param addr      the peer's address
 *  @param len       its length
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return as connect(2); -1 and ETIMEDOUT when the deadline had passed. */
WEFT_API int weft_connect_until(int fd, const struct sockaddr *addr, socklen_t len,
                                uint64_t deadline);

/** poll(2).
 *  @param fds         the descriptors and events
 *  @param n           how many
 *  @param timeout_ms  milliseconds; negative for none, 0 to look only
 *  @return as poll(2): the count of entries with events, 0 on timeout. */
WEFT_API int weft_poll(struct pollfd *fds, nfds_t n, int timeout_ms);
/** poll(2) with a deadline instead of a timeout.
 *  @param fds       the descriptors and events
 *  @param n         how many
 *  @param deadline  absolute CLOCK_MONOTONIC ns; 0 for none
 *  @return the count of entries with events; -1 and ETIMEDOUT when the
 *          deadline passed first, or errno as poll(2). */
WEFT_API int weft_poll_until(struct pollfd *fds, nfds_t n, uint64_t deadline);

/** close(2), after waking every green thread waiting on fd in a weft call
 *  (they fail with EBADF).  A wait that starts on fd while this runs fails
 *  with EBADF.
 *  @param fd  the descriptor
 *  @return as close(2). */
WEFT_API int weft_close(int fd);

/** @} */

/* ------------------------------------------------------------------------ */
/* Statistics                                                               */
/* ------------------------------------------------------------------------ */

/** @defgroup weft_stats Statistics
 *  Counters of the scheduler, per worker.
 *  @{ */

/**
 * Statistics of one worker, or of all workers summed.  The fields up to
 * idle_ns are counters that only grow; `alive` and `queued` are levels read
 * at the moment of the call.
 */
typedef struct weft_stats {
	uint64_t switches;        /**< context switches into green threads */
	uint64_t yields;          /**< weft_yield calls that switched */
	uint64_t preemptions;     /**< timer ticks that switched threads */
	uint64_t deferred_ticks;  /**< timer ticks that landed outside a safe point */
	uint64_t ticks;           /**< timer ticks received */
	uint64_t steals;          /**< threads taken from another worker's queue */
	uint64_t parks;           /**< threads blocked */
	uint64_t wakeups;         /**< threads made ready by another thread */
	uint64_t created;         /**< threads created */
	uint64_t finished;        /**< threads finished */
	uint64_t idle_sleeps;     /**< times the worker slept on its futex */
	uint64_t idle_ns;         /**< ns the worker had nothing to run */
	uint64_t migrations;      /**< threads resumed on this worker after
	                               running last on another one */
	uint64_t alive;           /**< threads created and not finished, main
	                               excluded: process-wide, the same for every
	                               worker */
	uint64_t queued;          /**< threads in the worker's run queue (summed) */
	uint64_t handoffs;        /**< times a worker found blocked in the kernel
	                               had its threads handed to another kernel
	                               thread: process-wide, the same for every
	                               worker */
} weft_stats_t;

/**
 * Read the statistics of worker `worker`, or of all workers summed when
 * worker is -1.  Who may call: any code, any kernel thread; cheap (no lock,
 * no system call).  Counters are per worker and read without stopping
 * anyone, so a sum is a snapshot only up to concurrent increments.
 * @param worker  a worker index (0..weft_workers()-1, or a standby
 *                worker's index as weft_worker_self reports it), or -1 for
 *                all, standby workers included
 * @param out     receives the statistics
 * @return 0; EINVAL out NULL, worker out of range, or the runtime could not
 *         be initialized.
 */
WEFT_API int weft_stats_get(int worker, weft_stats_t *out);

/** @} */

/* ------------------------------------------------------------------------ */
/* Seeing inside: thread dump                                               */
/* ------------------------------------------------------------------------ */

/** @defgroup weft_inside Seeing inside
 *  Looking at a running program: what every thread does and waits for.
 *  @{ */

/**
 * Write a dump of the runtime to `out`: each worker and what it runs, then
 * every live green thread with its id (the low 32 bits of its weft_t), name,
 * state, worker, what it is blocked on (the thread it joins; the mutex,
 * cond, semaphore, rwlock, barrier or once by address, with the holder of a
 * mutex or write-locked rwlock; the end of its sleep) and for how long, and
 * a backtrace of each thread that is not running: from where it parked, or,
 * for a preempted thread, from the instruction it was preempted at.
 *
 * Backtraces walk frame pointers: weft and its demos are built with
 * -fno-omit-frame-pointer; build your code with it too or the walk stops at
 * the first frame without one.  Names come from each module's own symbol
 * table, so static functions are named unless the file is stripped, in
 * which case a frame reads module+offset (feed it to addr2line).  A run of
 * weft's internal frames is shown as one line.  A thread that keeps running
 * while its stack is copied (a busy thread on another worker) is shown
 * without a backtrace.
 *
 * Who may call: any code, any kernel thread, including a green thread (it
 * lists itself as running).  Not async-signal-safe: from a signal handler,
 * set WEFT_DUMP_SIGNAL instead, which makes weft print this dump to stderr
 * on that signal from a helper thread of its own, without stopping the
 * program.  Threads keep running while the dump is taken, so it is a
 * snapshot of each thread at a slightly different moment.
 *
 * @param out  the stream to write to
 * @return 0; EINVAL out NULL or the runtime could not be initialized;
 *         ENOMEM no memory for the dump's buffers; EIO writing to out failed.
 */
WEFT_API int weft_dump(FILE *out);

/** @} */

#ifdef __cplusplus
}
#endif
#endif /* WEFT_H */
