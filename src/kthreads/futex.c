/*
 * futex.c — how kernel workers sleep: futex wait/wake on a 32-bit word, and
 * the caller's kernel thread id.  Raw system calls only: nothing here reads
 * or writes errno (the green thread running on the worker owns it).
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kt_internal.h"
#include "kt_syscall.h"

static int wf_futex_result(long r)
{
	switch (r) {
	case 0:
		return 0;
	case -EAGAIN:
		return EAGAIN;
	case -ETIMEDOUT:
		return ETIMEDOUT;
	case -EINTR:
		return EINTR;
	default:
		return r < 0 ? (int)-r : 0;
	}
}

/*
 * FUTEX_WAIT_BITSET takes an absolute timeout, measured on CLOCK_MONOTONIC
 * unless FUTEX_CLOCK_REALTIME is given: exactly what a deadline needs, and a
 * retry after EINTR keeps the same deadline.
 */
static int wf_futex_wait_op(void *word, uint32_t expected, int op,
                            const struct timespec *abs_monotonic)
{
	long r = wf_syscall6(SYS_futex, (long)word, op, (long)expected,
	                     (long)abs_monotonic, 0, FUTEX_BITSET_MATCH_ANY);

	return wf_futex_result(r);
}

int wf_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                  const struct timespec *abs_monotonic)
{
	return wf_futex_wait_op((void *)word, expected,
	                        FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
	                        abs_monotonic);
}

int wf_futex_wait_shared(volatile int *word, int expected,
                         const struct timespec *abs_monotonic)
{
	return wf_futex_wait_op((void *)word, (uint32_t)expected,
	                        FUTEX_WAIT_BITSET, abs_monotonic);
}

void wf_futex_wake(_Atomic uint32_t *word, int n)
{
	wf_syscall3(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n);
}

pid_t wf_kt_gettid(void)
{
	return (pid_t)wf_syscall0(SYS_gettid);
}

/* A short sleep, for a spin-wait that has given the CPU away many times
 * in vain (park.c, wf_spin_wait_long): raw, so errno stays the caller's;
 * a signal that ends it early only shortens the nap. */
void wf_kt_nap(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	(void)wf_syscall6(SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0);
}
