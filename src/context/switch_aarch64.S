/*
 * switch_aarch64.S — green-thread context switch for AArch64, AAPCS64.
 *
 * ABI rule (Procedure Call Standard for the Arm 64-bit Architecture,
 * AAPCS64, "Machine Registers" and "The Stack"): a called function must
 * preserve x19–x29, sp and the bottom 64 bits of v8–v15 (d8–d15); x0–x18,
 * x30 and the rest of the SIMD/FP registers are the caller's to save.  x18,
 * the platform register, is an ordinary temporary on Linux.  sp is 16-byte
 * aligned at every public interface, and Linux traps a misaligned sp used as
 * a base register.  The control fields of FPCR (rounding mode, flush to
 * zero, default NaN) are, like MXCSR on x86-64, state that a function
 * changes only when documented to (fesetround): a thread that sets its own
 * rounding mode keeps it, so FPCR is saved per context.  FPSR (the sticky
 * exception flags) is status, not control, and is not saved, as on x86-64.
 *
 * Saved frame, on the stack of the context being left (higher addresses at
 * the top; *save_sp points at the lowest word).  The offsets are
 * WF_FRAME_* in frame.h, the layout's one definition.  x29/x30 form a frame
 * record, so the frame-pointer chain of a parked context starts at the
 * saved x29 and its resume address is the saved x30:
 *
 *        +--------------------+
 *        | x30 (link register)| +168  <- where the context resumes
 *        | x29 (frame pointer)| +160
 *        | x28                | +152
 *        | x27                | +144
 *        |  ...               |
 *        | x20                |  +88
 *        | x19                |  +80
 *        | d15                |  +72
 *        | d14                |  +64
 *        |  ...               |
 *        | d9                 |  +24
 *        | d8                 |  +16
 *        | (padding)          |   +8
 *        | fpcr               |   +0  <- *save_sp
 *        +--------------------+
 *
 * A new context (wf_ctx_make) gets the same frame with x30 = the address of
 * wf_ctx_trampoline, x19 = entry, x20 = arg and fpcr = 0 (round to
 * nearest, no traps, as at process start), so the first switch to it
 * "returns" into the trampoline, which calls entry(transfer, arg) with
 * transfer still in x0.
 *
 * Memory order: the stores below are published to other CPUs by the
 * release store of the thread's on_cpu = 0 that the next context on this
 * CPU makes right after the switch (docs/design.md §3, "Direct switches and
 * after-switch actions"); a worker resumes a context only after an acquire
 * load sees on_cpu == 0.  The switch itself therefore needs no barrier.
 *
 *   void *wf_ctx_switch(void **save_sp  /x0/, void *new_sp /x1/,
 *                       void *transfer /x2/);   returns transfer in x0
 */
#include "frame.h"

/* Branch Target Identification: where the program is built with it,
 * wf_ctx_switch carries a landing pad (it may be called through a pointer)
 * and the object says so, else the linker would turn BTI off for the whole
 * program.  The trampoline is entered by `ret`, which BTI does not check. */
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define WF_BTI_C hint #34           /* bti c: valid target of a call */
#else
#define WF_BTI_C
#endif

	.text
	.globl	wf_ctx_switch
	.hidden	wf_ctx_switch
	.type	wf_ctx_switch, %function
	.p2align 4
wf_ctx_switch:
	.cfi_startproc
	WF_BTI_C
	sub	sp, sp, #WF_FRAME_SIZE            // room for the frame
	.cfi_def_cfa_offset WF_FRAME_SIZE
	stp	x29, x30, [sp, #WF_FRAME_X29]     // frame record: fp, resume address
	stp	x27, x28, [sp, #WF_FRAME_X27]     // callee-saved general registers ...
	stp	x25, x26, [sp, #WF_FRAME_X25]
	stp	x23, x24, [sp, #WF_FRAME_X23]
	stp	x21, x22, [sp, #WF_FRAME_X21]
	stp	x19, x20, [sp, #WF_FRAME_X19]
	stp	d14, d15, [sp, #WF_FRAME_D14]     // ... and the low halves of v8-v15
	stp	d12, d13, [sp, #WF_FRAME_D12]
	stp	d10, d11, [sp, #WF_FRAME_D10]
	stp	d8, d9, [sp, #WF_FRAME_D8]
	mrs	x9, fpcr                          // FP control: rounding, FZ, DN
	str	x9, [sp, #WF_FRAME_FPCR]
	mov	x9, sp                            // sp cannot be stored directly
	str	x9, [x0]                          // *save_sp = sp: the old context is complete
	mov	sp, x1                            // switch stacks
	ldr	x9, [sp, #WF_FRAME_FPCR]          // the new context's FP control ...
	msr	fpcr, x9                          // ... restored
	ldp	d8, d9, [sp, #WF_FRAME_D8]        // restore its callee-saved registers
	ldp	d10, d11, [sp, #WF_FRAME_D10]
	ldp	d12, d13, [sp, #WF_FRAME_D12]
	ldp	d14, d15, [sp, #WF_FRAME_D14]
	ldp	x19, x20, [sp, #WF_FRAME_X19]
	ldp	x21, x22, [sp, #WF_FRAME_X21]
	ldp	x23, x24, [sp, #WF_FRAME_X23]
	ldp	x25, x26, [sp, #WF_FRAME_X25]
	ldp	x27, x28, [sp, #WF_FRAME_X27]
	ldp	x29, x30, [sp, #WF_FRAME_X29]     // its frame pointer and resume address
	add	sp, sp, #WF_FRAME_SIZE            // drop the frame
	mov	x0, x2                            // hand `transfer` to the resumed context
	ret                                       // to x30: its caller, or the trampoline
	.cfi_endproc
	.size	wf_ctx_switch, .-wf_ctx_switch

/* x29 and x30 are stored as one pair: they must be adjacent. */
	.if WF_FRAME_X30 != WF_FRAME_X29 + 8
	.error "frame.h: x30 must follow x29"
	.endif

/*
 * First code a new context runs.  Entered by the `ret` above with sp
 * 16-byte aligned, x19 = entry, x20 = arg, x0 = transfer.
 */
	.globl	wf_ctx_trampoline
	.hidden	wf_ctx_trampoline
	.type	wf_ctx_trampoline, %function
	.p2align 4
wf_ctx_trampoline:
	.cfi_startproc
	.cfi_undefined x30                        // outermost frame: unwinders stop here
	mov	x29, xzr                          // frame-pointer chain ends here
	mov	x30, xzr                          // and no return address above it
	mov	x1, x20                           // 2nd argument: arg (1st, transfer, is in x0)
	blr	x19                               // entry(transfer, arg); never returns
	udf	#0                                // trap (SIGILL) if it does
	.cfi_endproc
	.size	wf_ctx_trampoline, .-wf_ctx_trampoline

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
/* GNU property note: this object has BTI landing pads (bit 0 of
 * GNU_PROPERTY_AARCH64_FEATURE_1_AND). */
	.pushsection .note.gnu.property, "a"
	.p2align 3
	.word	4                                 // name size ("GNU\0")
	.word	16                                // descriptor size
	.word	5                                 // NT_GNU_PROPERTY_TYPE_0
	.asciz	"GNU"                             // owner
	.word	0xc0000000                        // GNU_PROPERTY_AARCH64_FEATURE_1_AND
	.word	4                                 // property data size
	.word	1                                 // GNU_PROPERTY_AARCH64_FEATURE_1_BTI
	.word	0                                 // pad to 8 bytes
	.popsection
#endif

	.section .note.GNU-stack,"",%progbits
