/*
 * kt_syscall.h — raw system calls for the kthreads layer.
 *
 * They return the kernel's result (negative errno on failure) and never touch
 * errno: weft's internals must not clobber the errno of the green thread they
 * run for (docs/design.md, "Configuration and errors"), and a freshly cloned
 * worker must make a few calls before it has initialized anything of libc.
 */
#ifndef WF_KT_SYSCALL_H
#define WF_KT_SYSCALL_H

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
static inline long wf_syscall6(long n, long a, long b, long c, long d, long e,
                               long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ __volatile__("syscall"
	                     : "=a"(ret)
	                     : "0"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
	                       "r"(r9)
	                     : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__aarch64__)
static inline long wf_syscall6(long n, long a, long b, long c, long d, long e,
                               long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;

	__asm__ __volatile__("svc 0"
	                     : "+r"(x0)
	                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
	                     : "memory");
	return x0;
}
#else
static inline long wf_syscall6(long n, long a, long b, long c, long d, long e,
                               long f)
{
	int saved = errno;
	long ret = syscall(n, a, b, c, d, e, f);

	if (ret == -1)
		ret = -errno;
	errno = saved;
	return ret;
}
#endif

#define wf_syscall0(n)             wf_syscall6((n), 0, 0, 0, 0, 0, 0)
#define wf_syscall2(n, a, b)       wf_syscall6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define wf_syscall3(n, a, b, c) \
	wf_syscall6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define wf_syscall4(n, a, b, c, d) \
	wf_syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

#endif
