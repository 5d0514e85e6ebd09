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
#include "frame.h"

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
 * Where a context saved by wf_ctx_switch stopped: the address it resumes at
 * (a return address into the function that called wf_ctx_switch) and that
 * function's frame pointer (the start of a frame-pointer chain).  `frame` is
 * a copy of the WF_CTX_SAVED_WORDS words at the saved stack pointer, so a
 * caller may read them without trusting the stack.  The layout is frame.h's.
 */
#define WF_CTX_SAVED_WORDS (WF_FRAME_SIZE / sizeof(uintptr_t))
static inline void wf_ctx_saved_frame(const uintptr_t frame[WF_CTX_SAVED_WORDS],
                                      uintptr_t *pc, uintptr_t *fp)
{
	*fp = frame[WF_FRAME_FP / sizeof(uintptr_t)];
	*pc = frame[WF_FRAME_PC / sizeof(uintptr_t)];
}

/*
 * A frame record, where a frame pointer points, on both ISAs weft supports
 * (x86-64 with -fno-omit-frame-pointer: push rbp; mov rsp, rbp; AAPCS64:
 * stp x29, x30): the caller's frame pointer, then the return address, one
 * word each.  Frame pointers grow towards the base of the stack.
 */
#define WF_FRAME_RECORD_FP 0   /* word index: the caller's frame pointer */
#define WF_FRAME_RECORD_PC 1   /* word index: the return address */

/*
 * The saved frame described for debuggers, built from frame.h: gdb reads it
 * through the debug info (tools/gdb/weft-gdb.py), so the script holds no
 * layout of its own.  Register names are gdb's.  For each register in
 * `regs`, its value in the parked context is the word at saved sp +
 * offset; the context's pc is the word at saved sp + pc_offset (named
 * pc_name), its stack pointer (sp_name) is saved sp + size, and fp_offset
 * is where the frame-pointer chain starts.  test_context checks this table
 * against what wf_ctx_switch really saves.
 */
#define WF_CTX_DEBUG_REGS 12
struct wf_ctx_debug_reg {
	char name[8];
	uint32_t offset;
};
struct wf_ctx_frame_layout {
	uint32_t size, pc_offset, fp_offset, nregs;
	char pc_name[8], sp_name[8];
	struct wf_ctx_debug_reg regs[WF_CTX_DEBUG_REGS];
};
extern const struct wf_ctx_frame_layout wf_ctx_frame_layout WF_HIDDEN;

#endif
