/*
 * tls.h — the kernel thread's own __thread variables, read by code that may
 * have changed kernel threads since it last looked.
 *
 * A green thread that blocks, yields or creates may resume on another
 * worker, that is, another kernel thread with another thread pointer.
 * Compilers treat the thread pointer as constant within a function: GCC
 * and Clang read it once (x86-64: `mov %fs:0`, only when an address is
 * needed; AArch64: `mrs tpidr_el0`, for every access) and keep it in a
 * register across calls.  On AArch64 even a plain read of a __thread
 * variable after a switch, in the same function or in one inlined into it,
 * then reads the previous worker's copy (seen: wf_tsd_run_destructors
 * asked "who am I" after a destructor had blocked and got another thread).
 * The macros below read the thread pointer anew, in a volatile asm that
 * the compiler can neither move nor merge, and add the variable's offset
 * from it (constant for the process: an initial-exec variable).
 *
 * Only initial-exec variables (tls_model("initial-exec")), named by their
 * symbol: the offset is loaded with the initial-exec relocations, which the
 * linker turns into a constant in an executable.  A static one must be
 * marked `used`, since the compiler sees no access but the asm's.
 *
 *   WF_TLS_ADDR(var)  the address of var on the calling kernel thread now
 *   WF_TLS_LOAD(var)  its value
 */
#ifndef WF_TLS_H
#define WF_TLS_H

#include <stdint.h>

#if defined(__x86_64__)

/* The offset from the GOT (GOTTPOFF), the thread pointer from %fs:0 (the
 * TCB's self pointer, psABI). */
#define WF_TLS_ADDR(var) ({                                                   \
	uintptr_t wf_tls_off_, wf_tls_tp_;                                    \
	__asm__("movq " #var "@gottpoff(%%rip), %0" : "=r"(wf_tls_off_));     \
	__asm__ __volatile__("movq %%fs:0, %0" : "=r"(wf_tls_tp_));           \
	(__typeof__(var) *)(wf_tls_tp_ + wf_tls_off_); })

/* A plain read is a single %fs-relative load: the segment base is applied
 * by the CPU at each access and never held in a register, so it is always
 * the current kernel thread's. */
#define WF_TLS_LOAD(var) (var)

#elif defined(__aarch64__)

/* The offset from the GOT (the initial-exec pair adrp + ldr, GOTTPREL),
 * the thread pointer from tpidr_el0. */
#define WF_TLS_ADDR(var) ({                                                   \
	uintptr_t wf_tls_off_, wf_tls_tp_;                                    \
	__asm__("adrp %0, :gottprel:" #var "\n\t"                             \
	        "ldr %0, [%0, #:gottprel_lo12:" #var "]" : "=r"(wf_tls_off_)); \
	__asm__ __volatile__("mrs %0, tpidr_el0" : "=r"(wf_tls_tp_));         \
	(__typeof__(var) *)(wf_tls_tp_ + wf_tls_off_); })

#define WF_TLS_LOAD(var) (*WF_TLS_ADDR(var))

#else
#error "weft: no thread-pointer access for this architecture (src/context/tls.h)"
#endif

#endif
