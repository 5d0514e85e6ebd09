/*
 * context.c — the first frame of a new context.  The frame matches the one
 * wf_ctx_switch saves (see the diagram in switch_<isa>.S).
 */
#include <stdint.h>
#include <string.h>
#include "context.h"

#if defined(__x86_64__)
void wf_ctx_trampoline(void) WF_HIDDEN;

/* Default MXCSR (all exceptions masked, round to nearest) and x87 control
 * word (64-bit precision, all exceptions masked), as at process start. */
#define WF_MXCSR_DEFAULT 0x1f80u
#define WF_FPCW_DEFAULT  0x037fu

void *wf_ctx_make(void *stack_lo, void *stack_hi,
                  void (*entry)(void *transfer, void *arg), void *arg)
{
	(void)stack_lo;
	uintptr_t top = (uintptr_t)stack_hi & ~(uintptr_t)15;
	uint64_t *f = (uint64_t *)top - 8;  /* 8 words; top stays 16-aligned */
	f[0] = WF_MXCSR_DEFAULT | ((uint64_t)WF_FPCW_DEFAULT << 32);
	f[1] = 0;                           /* r15 */
	f[2] = 0;                           /* r14 */
	f[3] = (uint64_t)(uintptr_t)arg;    /* r13 */
	f[4] = (uint64_t)(uintptr_t)entry;  /* r12 */
	f[5] = 0;                           /* rbx */
	f[6] = 0;                           /* rbp */
	f[7] = (uint64_t)(uintptr_t)wf_ctx_trampoline; /* return address */
	return f;
}
#else
#error "weft: no context switch for this architecture yet"
#endif
