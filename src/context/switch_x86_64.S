/*
 * switch_x86_64.S — green-thread context switch for x86-64, System V ABI.
 *
 * ABI rule (System V AMD64 psABI §3.2.1, §3.2.3): a called function must
 * preserve rbx, rbp, r12–r15 and rsp, the MXCSR control bits and the x87
 * control word; every other general, vector and x87/MMX register is
 * caller-saved, so a switch that is an ordinary function call needs to keep
 * only these.  At a call, rsp + 8 is 16-byte aligned inside the callee.
 *
 * Saved frame, on the stack of the context being left (higher addresses at
 * the top; *save_sp points at the lowest word).  The offsets are
 * WF_FRAME_* in frame.h, the layout's one definition:
 *
 *        +--------------------+
 *        | return address     |  +56  <- pushed by the caller's `call`
 *        | rbp                |  +48
 *        | rbx                |  +40
 *        | r12                |  +32
 *        | r13                |  +24
 *        | r14                |  +16
 *        | r15                |   +8
 *        | fpcw(16) | mxcsr(32)   +0  <- *save_sp  (mxcsr at +0, x87 cw at +4)
 *        +--------------------+
 *
 * A new context (wf_ctx_make) gets the same frame with its return address
 * pointing at wf_ctx_trampoline, r12 = entry and r13 = arg, so the first
 * switch to it "returns" into the trampoline, which calls
 * entry(transfer, arg) with transfer taken from rax.
 *
 *   void *wf_ctx_switch(void **save_sp  /rdi/, void *new_sp /rsi/,
 *                       void *transfer /rdx/);   returns transfer in rax
 */
#include "frame.h"

	.text
	.globl	wf_ctx_switch
	.hidden	wf_ctx_switch
	.type	wf_ctx_switch, @function
	.p2align 4
wf_ctx_switch:
	.cfi_startproc
	subq	$WF_FRAME_SIZE - 8, %rsp   /* the frame below the return address */
	.cfi_adjust_cfa_offset WF_FRAME_SIZE - 8
	movq	%rbp, WF_FRAME_RBP(%rsp)   /* save callee-saved registers ...    */
	movq	%rbx, WF_FRAME_RBX(%rsp)
	movq	%r12, WF_FRAME_R12(%rsp)
	movq	%r13, WF_FRAME_R13(%rsp)
	movq	%r14, WF_FRAME_R14(%rsp)
	movq	%r15, WF_FRAME_R15(%rsp)
	stmxcsr	WF_FRAME_MXCSR(%rsp)       /* MXCSR: SSE rounding mode and masks */
	fnstcw	WF_FRAME_FPCW(%rsp)        /* x87 control word: precision, rounding */
	movq	%rsp, (%rdi)               /* *save_sp = rsp: the old context is now
	                                      complete and may be resumed by anyone */
	movq	%rsi, %rsp                 /* switch stacks                        */
	ldmxcsr	WF_FRAME_MXCSR(%rsp)       /* restore the new context's MXCSR      */
	fldcw	WF_FRAME_FPCW(%rsp)        /* ... and its x87 control word         */
	movq	WF_FRAME_R15(%rsp), %r15   /* restore its callee-saved registers   */
	movq	WF_FRAME_R14(%rsp), %r14
	movq	WF_FRAME_R13(%rsp), %r13
	movq	WF_FRAME_R12(%rsp), %r12
	movq	WF_FRAME_RBX(%rsp), %rbx
	movq	WF_FRAME_RBP(%rsp), %rbp
	addq	$WF_FRAME_SIZE - 8, %rsp   /* drop the frame: rsp at the return address */
	movq	%rdx, %rax                 /* hand `transfer` to the resumed context */
	ret                                /* into its caller, or the trampoline  */
	.cfi_endproc
	.size	wf_ctx_switch, .-wf_ctx_switch

/* The return address must be the frame's last word: `ret` pops it. */
	.if WF_FRAME_RA != WF_FRAME_SIZE - 8
	.error "frame.h: the return address must be the last word of the frame"
	.endif

/*
 * First code a new context runs.  Entered by the `ret` above with rsp
 * 16-byte aligned, r12 = entry, r13 = arg, rax = transfer.
 */
	.globl	wf_ctx_trampoline
	.hidden	wf_ctx_trampoline
	.type	wf_ctx_trampoline, @function
	.p2align 4
wf_ctx_trampoline:
	.cfi_startproc
	.cfi_undefined rip          /* outermost frame: unwinders stop here    */
	xorl	%ebp, %ebp          /* frame-pointer chain ends here           */
	movq	%rax, %rdi          /* 1st argument: transfer                  */
	movq	%r13, %rsi          /* 2nd argument: arg                       */
	callq	*%r12               /* entry(transfer, arg); never returns     */
	ud2                         /* trap if it does                         */
	.cfi_endproc
	.size	wf_ctx_trampoline, .-wf_ctx_trampoline

	.section .note.GNU-stack,"",@progbits
