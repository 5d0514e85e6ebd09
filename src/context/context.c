/*
 * context.c — the first frame of a new context, and the saved frame
 * described for debuggers.  Both are built from frame.h, the one definition
 * of the frame wf_ctx_switch saves (pictured in switch_<isa>.S).
 */
#include <stdint.h>
#include <string.h>
#include "context.h"

void wf_ctx_trampoline(void) WF_HIDDEN;

/* Store one word of a frame, at a byte offset from frame.h. */
static inline void wf_frame_put(char *frame, unsigned offset, uintptr_t v)
{
	memcpy(frame + offset, &v, sizeof v);
}

#if defined(__x86_64__)

/* Default MXCSR (all exceptions masked, round to nearest) and x87 control
 * word (64-bit precision, all exceptions masked), as at process start. */
#define WF_MXCSR_DEFAULT 0x1f80u
#define WF_FPCW_DEFAULT  0x037fu

/* The trampoline takes entry in r12 and arg in r13 (switch_x86_64.S). */
static void wf_frame_first(char *f, void (*entry)(void *, void *), void *arg)
{
	uint32_t mxcsr = WF_MXCSR_DEFAULT;
	uint16_t fpcw = WF_FPCW_DEFAULT;

	memcpy(f + WF_FRAME_MXCSR, &mxcsr, sizeof mxcsr);
	memcpy(f + WF_FRAME_FPCW, &fpcw, sizeof fpcw);
	wf_frame_put(f, WF_FRAME_R12, (uintptr_t)entry);
	wf_frame_put(f, WF_FRAME_R13, (uintptr_t)arg);
	wf_frame_put(f, WF_FRAME_RA, (uintptr_t)wf_ctx_trampoline);
}

const struct wf_ctx_frame_layout wf_ctx_frame_layout __attribute__((used)) = {
	.size = WF_FRAME_SIZE, .pc_offset = WF_FRAME_PC, .fp_offset = WF_FRAME_FP,
	.pc_name = "rip", .sp_name = "rsp",
	.nregs = 6,
	.regs = {
		{ "rbp", WF_FRAME_RBP }, { "rbx", WF_FRAME_RBX },
		{ "r12", WF_FRAME_R12 }, { "r13", WF_FRAME_R13 },
		{ "r14", WF_FRAME_R14 }, { "r15", WF_FRAME_R15 },
	},
};

#elif defined(__aarch64__)

/* FPCR at process start: round to nearest, no traps, no flush to zero. */
#define WF_FPCR_DEFAULT 0u

/* The trampoline takes entry in x19 and arg in x20 (switch_aarch64.S). */
static void wf_frame_first(char *f, void (*entry)(void *, void *), void *arg)
{
	wf_frame_put(f, WF_FRAME_FPCR, WF_FPCR_DEFAULT);
	wf_frame_put(f, WF_FRAME_X19, (uintptr_t)entry);
	wf_frame_put(f, WF_FRAME_X19 + 8, (uintptr_t)arg);   /* x20 */
	wf_frame_put(f, WF_FRAME_X30, (uintptr_t)wf_ctx_trampoline);
}

/* gdb's names; d8-d15 are left out: a backtrace does not need them. */
const struct wf_ctx_frame_layout wf_ctx_frame_layout __attribute__((used)) = {
	.size = WF_FRAME_SIZE, .pc_offset = WF_FRAME_PC, .fp_offset = WF_FRAME_FP,
	.pc_name = "pc", .sp_name = "sp",
	.nregs = 12,
	.regs = {
		{ "x19", WF_FRAME_X19 }, { "x20", WF_FRAME_X19 + 8 },
		{ "x21", WF_FRAME_X21 }, { "x22", WF_FRAME_X21 + 8 },
		{ "x23", WF_FRAME_X23 }, { "x24", WF_FRAME_X23 + 8 },
		{ "x25", WF_FRAME_X25 }, { "x26", WF_FRAME_X25 + 8 },
		{ "x27", WF_FRAME_X27 }, { "x28", WF_FRAME_X27 + 8 },
		{ "x29", WF_FRAME_X29 }, { "x30", WF_FRAME_X30 },
	},
};

#endif

/*
 * Both ABIs want the stack pointer 16-byte aligned where the trampoline
 * starts (x86-64: rsp + 8 at a callee's entry, which the trampoline's own
 * call provides; AArch64: always), and the frame is a multiple of 16 bytes.
 */
void *wf_ctx_make(void *stack_lo, void *stack_hi,
                  void (*entry)(void *transfer, void *arg), void *arg)
{
	(void)stack_lo;
	uintptr_t top = (uintptr_t)stack_hi & ~(uintptr_t)15;
	char *f = (char *)(top - WF_FRAME_SIZE);

	memset(f, 0, WF_FRAME_SIZE);   /* every other register: 0 */
	wf_frame_first(f, entry, arg);
	return f;
}

_Static_assert(WF_FRAME_SIZE % 16 == 0, "frame.h: the frame keeps sp 16-byte aligned");
