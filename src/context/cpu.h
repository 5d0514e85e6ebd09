/*
 * cpu.h — machine-level helpers every layer may use: a pause hint, a
 * test-and-test-and-set spinlock for weft's own short critical sections,
 * and the branch hints.
 *
 * Internal spinlocks are held only inside weft's own code, which the
 * preemption timer never interrupts with a switch (a tick that lands in weft
 * is deferred), so weft never deschedules a holder: waiting by spinning is
 * bounded by the length of the critical section, as long as the holder's
 * kernel thread runs.  The kernel, though, may preempt that kernel thread
 * (more runnable threads than CPUs: other processes, or a machine shared
 * with other programs).  A waiter that only paused would then burn its own
 * time slice, milliseconds, while the holder waits for a CPU — perhaps the
 * waiter's.  So every spin-wait pauses WF_SPIN_PAUSES times (a few
 * microseconds, far longer than any critical section) and then gives its
 * CPU away with sched_yield() between looks (wf_spin_backoff).
 */
#ifndef WF_CPU_H
#define WF_CPU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define wf_likely(x)   __builtin_expect(!!(x), 1)
#define wf_unlikely(x) __builtin_expect(!!(x), 0)
#define WF_HIDDEN      __attribute__((visibility("hidden")))
/* The line size that false sharing is avoided over: 64 bytes on x86-64
 * and on the usual AArch64 cores (Linux's arm64 L1_CACHE_BYTES is 64 too;
 * a few cores have 128-byte lines, where two neighbours may share one). */
#define WF_CACHELINE   64

/*
 * The pause of a spin-wait: tells the core that this loop only waits.
 * x86-64: `pause` (tens of cycles on recent cores, and it keeps the loop
 * from flooding the memory pipeline).  AArch64: `isb`, not `yield`: `yield`
 * is a hint for SMT cores, and nearly every AArch64 core has no SMT and
 * executes it as a no-op, so a loop of them polls the line as fast as it
 * can; `isb` empties the pipeline, a delay of the same order as `pause`
 * (the choice of Rust's core::hint::spin_loop).  Without
 * it WF_SPIN_PAUSES would be spent in a few nanoseconds.
 */
static inline void wf_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("isb" ::: "memory");
#endif
}

/* Pauses before a spin-wait starts yielding its CPU: about 2.5 us at the
 * 25 ns a pause takes on the x86-64 machines weft was measured on (not
 * measured on AArch64 hardware). */
#define WF_SPIN_PAUSES 100u

/* One step of a spin-wait; *spins counts the steps (start it at 0).
 * sched_yield never fails and leaves errno alone, and it is a plain system
 * call, so this is also safe in a signal handler and on a clone worker.
 * It is made through syscall(), not libc's sched_yield(), which a program
 * may replace: the pthread layer (src/pthread) does, to yield the green
 * thread, and weft's own spin-waits must give up the CPU, not the thread. */
static inline void wf_spin_backoff(unsigned *spins)
{
	if (wf_likely(*spins < WF_SPIN_PAUSES)) {
		++*spins;
		wf_cpu_relax();
	} else {
		syscall(SYS_sched_yield);
	}
}

/* A word-sized spinlock: 0 free, 1 held. */
typedef struct { _Atomic uint32_t v; } wf_spin_t;
#define WF_SPIN_INIT { 0 }

static inline bool wf_spin_trylock(wf_spin_t *l)
{
	return atomic_load_explicit(&l->v, memory_order_relaxed) == 0 &&
	       atomic_exchange_explicit(&l->v, 1, memory_order_acquire) == 0;
}

void wf_spin_lock_slow(wf_spin_t *l) WF_HIDDEN __attribute__((noinline));

static inline void wf_spin_lock(wf_spin_t *l)
{
	/* Uncontended: one exchange.  Otherwise test-and-test-and-set with
	 * backoff (spin.c). */
	if (wf_unlikely(atomic_exchange_explicit(&l->v, 1, memory_order_acquire)))
		wf_spin_lock_slow(l);
}

static inline void wf_spin_unlock(wf_spin_t *l)
{
	atomic_store_explicit(&l->v, 0, memory_order_release);
}

#endif
