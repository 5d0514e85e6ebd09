/*
 * spin.c — the contended half of wf_spin_lock (cpu.h).
 *
 * Out of line so that the uncontended lock inlined at every run-queue,
 * timer-heap and wait-queue critical section is one exchange and a branch:
 * with the wait loop inline, each caller saved and restored five or six
 * callee-saved registers for a loop it almost never runs (callgrind: about
 * 15 instructions per acquisition).  Not marked cold: cold code goes to
 * .text.unlikely, outside the weft_text section that tells preemption
 * weft's code from the program's (CMakeLists.txt).
 */
#include "cpu.h"

void wf_spin_lock_slow(wf_spin_t *l)
{
	unsigned spins = 0;
	do {
		/* Test before test-and-set: waiters share the line until it
		 * is released instead of bouncing it with exchanges. */
		while (atomic_load_explicit(&l->v, memory_order_relaxed))
			wf_spin_backoff(&spins);
	} while (atomic_exchange_explicit(&l->v, 1, memory_order_acquire));
}
