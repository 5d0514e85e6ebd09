/*
 * cpu.h — machine-level helpers every layer may use: a pause hint, a
 * test-and-test-and-set spinlock for weft's own short critical sections,
 * and the branch hints.
 *
 * Internal spinlocks are held only inside weft's own code, which the
 * preemption timer never interrupts with a switch (a tick that lands in weft
 * is deferred), so a holder is never descheduled while holding one: waiting
 * by spinning is bounded by the length of the critical section.
 */
#ifndef WF_CPU_H
#define WF_CPU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define wf_likely(x)   __builtin_expect(!!(x), 1)
#define wf_unlikely(x) __builtin_expect(!!(x), 0)
#define WF_HIDDEN      __attribute__((visibility("hidden")))
#define WF_CACHELINE   64

static inline void wf_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* A word-sized spinlock: 0 free, 1 held. */
typedef struct { _Atomic uint32_t v; } wf_spin_t;
#define WF_SPIN_INIT { 0 }

static inline bool wf_spin_trylock(wf_spin_t *l)
{
	return atomic_load_explicit(&l->v, memory_order_relaxed) == 0 &&
	       atomic_exchange_explicit(&l->v, 1, memory_order_acquire) == 0;
}

static inline void wf_spin_lock(wf_spin_t *l)
{
	while (!wf_spin_trylock(l))
		while (atomic_load_explicit(&l->v, memory_order_relaxed))
			wf_cpu_relax();
}

static inline void wf_spin_unlock(wf_spin_t *l)
{
	atomic_store_explicit(&l->v, 0, memory_order_release);
}

#endif
