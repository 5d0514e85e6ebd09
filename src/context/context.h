/*
 * context.h — the machine context of a green thread: switching between two
 * stacks in hand-written assembly, and laying out the first frame of a new
 * stack.  Knows nothing of threads or schedulers.
 */
#ifndef WF_CONTEXT_H
#define WF_CONTEXT_H

#include <stddef.h>
#include <stdint.h>
#include "cpu.h"

/*
 * Save the callee-saved state of the caller on its stack, store the stack
 * pointer in *save_sp, load new_sp and resume the context saved there.
 * `transfer` is handed over: it becomes the return value of the
 * wf_ctx_switch call that the resumed context made (or the first argument of
 * a new context's entry function).  Returns, when some context later switches
 * back to this one, that context's `transfer`.
 */
void *wf_ctx_switch(void **save_sp, void *new_sp, void *transfer) WF_HIDDEN;

/*
 * Lay out a first frame at the top of [stack_lo, stack_hi) so that switching
 * to the returned stack pointer calls entry(transfer, arg) on that stack.
 * entry must never return (the frame has no return address: it traps).
 */
void *wf_ctx_make(void *stack_lo, void *stack_hi,
                  void (*entry)(void *transfer, void *arg), void *arg) WF_HIDDEN;

/*
 * Where a context saved by wf_ctx_switch stopped: the return address into
 * the function that called wf_ctx_switch, and that function's frame pointer
 * (the start of a frame-pointer chain).  `frame` is a copy of the
 * WF_CTX_SAVED_WORDS words at the saved stack pointer, so a caller may read
 * them without trusting the stack (see switch_<isa>.S for the layout).
 */
#if defined(__x86_64__)
#define WF_CTX_SAVED_WORDS 8
static inline void wf_ctx_saved_frame(const uintptr_t frame[WF_CTX_SAVED_WORDS],
                                      uintptr_t *pc, uintptr_t *fp)
{
	*fp = frame[6];   /* rbp, pushed first */
	*pc = frame[7];   /* return address pushed by the call */
}
#endif

#endif
