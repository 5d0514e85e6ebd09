/*
 * context_x86_64.h — the x86-64 half of test_context.c: an assembly helper
 * that fills every callee-saved register around a switch, an entry point
 * that records rsp exactly, and MXCSR / x87 control word access.
 */
#ifndef WEFT_TESTS_CONTEXT_X86_64_H
#define WEFT_TESTS_CONTEXT_X86_64_H

#include <stdint.h>

/*
 * uint64_t regs_switch(void **save_sp, void *new_sp, void *transfer,
 *                      uint64_t seed, void **got, uintptr_t *sp_at_call);
 * Loads the callee-saved registers, in the order of regs_names, with
 * seed + K, seed + 2K, ... (REGS_K), stores its rsp at the call into
 * *sp_at_call, calls wf_ctx_switch(save_sp, new_sp, transfer), and when
 * resumed stores the transfer it received in *got and returns a mask with
 * bit i set when register i no longer holds seed + (i + 1) * K.  Its own
 * caller's registers are saved and restored around all this, so it is an
 * ordinary C function.
 */
#define REGS_K 0x9e3779b97f4a7c15ull
#define REGS_CHECKED 6
static const char *const regs_names[REGS_CHECKED] = {
	"rbx", "rbp", "r12", "r13", "r14", "r15",
};
uint64_t regs_switch(void **save_sp, void *new_sp, void *transfer, uint64_t seed, void **got,
                     uintptr_t *sp_at_call);
extern char regs_switch_end[];

#define RS_LOAD(r) "	addq %r10, %r11\n	movq %r11, %" #r "\n"
#define RS_CHECK(r, bit) \
	"	addq %r10, %r11\n	xorl %eax, %eax\n	cmpq %r11, %" #r "\n" \
	"	setne %al\n	shlq $" #bit ", %rax\n	orq %rax, %rdx\n"
__asm__(
	"	.pushsection .text\n"
	"	.p2align 4\n"
	"	.globl regs_switch, regs_switch_end\n"   /* named in relocations, not as .text+n */
	"	.type regs_switch, @function\n"
	"regs_switch:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	pushq %r8\n"            /* got  : 16(%rsp) after the sub below */
	"	pushq %rcx\n"           /* seed :  8(%rsp) */
	"	subq $8, %rsp\n"        /* 8 pushes + 8: rsp is 16-aligned at the call */
	"	movabsq $0x9e3779b97f4a7c15, %r10\n"   /* REGS_K */
	"	movq %rcx, %r11\n"
	RS_LOAD(rbx) RS_LOAD(rbp) RS_LOAD(r12) RS_LOAD(r13) RS_LOAD(r14) RS_LOAD(r15)
	"	movq %rsp, (%r9)\n"     /* *sp_at_call */
	"	call wf_ctx_switch\n"
	"	movq 16(%rsp), %r8\n"
	"	movq %rax, (%r8)\n"     /* *got = transfer */
	"	movabsq $0x9e3779b97f4a7c15, %r10\n"
	"	movq 8(%rsp), %r11\n"   /* seed */
	"	xorl %edx, %edx\n"      /* mask */
	RS_CHECK(rbx, 0) RS_CHECK(rbp, 1) RS_CHECK(r12, 2) RS_CHECK(r13, 3) RS_CHECK(r14, 4)
	RS_CHECK(r15, 5)
	"	movq %rdx, %rax\n"
	"	addq $24, %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	ret\n"
	"	.size regs_switch, .-regs_switch\n"
	"regs_switch_end:\n"
	"	.popsection\n");

/* Entry point written in assembly: records rsp exactly as it is on entry,
 * then tail-jumps to the C part with the same stack.  The ABI wants rsp + 8
 * to be a multiple of 16 there. */
uintptr_t probe_sp;
void align_probe_entry(void *transfer, void *arg);
__asm__(
	"	.pushsection .text\n"
	"	.p2align 4\n"
	"	.globl align_probe_entry\n"
	"	.type align_probe_entry, @function\n"
	"align_probe_entry:\n"
	"	movq %rsp, probe_sp(%rip)\n"
	"	jmp align_probe_c\n"
	"	.size align_probe_entry, .-align_probe_entry\n"
	"	.popsection\n");
#define ENTRY_SP_ALIGNED(sp) (((sp) + 8) % 16 == 0)
#define ENTRY_SP_RULE "rsp + 8 16-byte aligned"

/* ---- MXCSR and the x87 control word ---------------------------------- */

#define MXCSR_RC_MASK 0x6000u
#define MXCSR_DOWN    0x2000u
#define MXCSR_UP      0x4000u
#define MXCSR_ZERO    0x6000u
#define FPCW_RC_MASK  0x0c00u
#define FPCW_DOWN     0x0400u
#define FPCW_UP       0x0800u
#define FPCW_ZERO     0x0c00u
#define FPCW_PC_MASK  0x0300u
#define FPCW_PC53     0x0200u

static unsigned get_mxcsr(void) { return __builtin_ia32_stmxcsr(); }
static void set_mxcsr(unsigned v) { __builtin_ia32_ldmxcsr(v); }
static unsigned get_fpcw(void)
{
	unsigned short cw;
	__asm__ __volatile__("fnstcw %0" : "=m"(cw));
	return cw;
}
static void set_fpcw(unsigned v)
{
	unsigned short cw = (unsigned short)v;
	__asm__ __volatile__("fldcw %0" : : "m"(cw));
}

#endif
