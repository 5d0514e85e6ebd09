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
 * the top; *save_sp points at the lowest word):
 *
 *        +--------------------+
 *        | return address     |  <- pushed by the caller's `call`
 *        | rbp                |
 *        | rbx                |
 *        | r12                |
 *        | r13                |
 *        | r14                |
 *        | r15                |
 *        | fpcw(16) | mxcsr(32)  <- *save_sp  (mxcsr at +0, x87 cw at +4)
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
	.text
	.globl	wf_ctx_switch
	.hidden	wf_ctx_switch
	.type	wf_ctx_switch, @function
	.p2align 4
wf_ctx_switch:
	.cfi_startproc
	pushq	%rbp                /* save callee-saved registers ...        */
	.cfi_adjust_cfa_offset 8
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	subq	$8, %rsp            /* ... room for the FP control words      */
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)              /* MXCSR: SSE rounding mode and masks     */
	fnstcw	4(%rsp)             /* x87 control word: precision, rounding  */
	movq	%rsp, (%rdi)        /* *save_sp = rsp: the old context is now
	                               complete and may be resumed by anyone  */
	movq	%rsi, %rsp          /* switch stacks                           */
	ldmxcsr	(%rsp)              /* restore the new context's MXCSR         */
	fldcw	4(%rsp)             /* ... and its x87 control word            */
	addq	$8, %rsp            /* drop the FP control slot                */
	popq	%r15                /* restore its callee-saved registers      */
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	movq	%rdx, %rax          /* hand `transfer` to the resumed context  */
	ret                         /* into its caller, or the trampoline      */
	.cfi_endproc
	.size	wf_ctx_switch, .-wf_ctx_switch

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
