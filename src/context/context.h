/*
 * context.h — the machine context of a green thread: switching between two
 * stacks in hand-written assembly, and laying out the first frame of a new
 * stack.  Knows nothing of threads or schedulers.
 */
#ifndef WF_CONTEXT_H
#define WF_CONTEXT_H

#include <stddef.h>
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

#endif
