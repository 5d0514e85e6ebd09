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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Where a kernel thread's static TLS block and thread descriptor (glibc's
 * struct pthread, `desc` bytes), which glibc allocates together, lie around
 * its thread pointer tp, given glibc's static TLS size (`static_size`, from
 * _dl_get_tls_static_info; 0 if unknown).  src/kthreads/tls_span.c asks,
 * for the rebasing of a green thread that moves (docs/design.md, "Moving
 * threads between workers").  Measured with glibc 2.36 (x86-64 natively,
 * AArch64 under qemu-user): errno at tp - 136 and 48, pthread_self() at
 * tp + 0 and tp - 1856, static sizes 4224 and 1856.
 *
 * x86-64, TLS variant II: the TLS blocks lie below tp, the descriptor at
 * and above it, and the static size counts both (glibc's TLS_TCB_SIZE is
 * the descriptor): [tp + desc - static_size, tp + desc).
 * AArch64, TLS variant I: the descriptor lies below tp (TLS_PRE_TCB_SIZE),
 * then the 16-byte tcbhead at tp, then the TLS blocks and the surplus; the
 * static size counts from tp and leaves the descriptor out:
 * [tp - desc, tp + static_size).
 * True if [lo, hi) is the whole block; false if the static size was
 * unknown (or, on x86-64, implausible): then it is the descriptor alone,
 * which the caller widens to the TLS blocks it can find.
 */
static inline bool wf_tls_static_span(uintptr_t tp, size_t desc, size_t static_size,
                                      uintptr_t *lo, uintptr_t *hi)
{
#if defined(__x86_64__)
	if (static_size > desc) {
		*lo = tp + desc - static_size;
		*hi = tp + desc;
		return true;
	}
	*lo = tp;
	*hi = tp + desc;
	return false;
#elif defined(__aarch64__)
	*lo = tp - desc;
	*hi = tp + static_size;
	return static_size > 0;
#else
#error "weft: no TLS layout for this architecture (src/context/tls.h)"
#endif
}

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
