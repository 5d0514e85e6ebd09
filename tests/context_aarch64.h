/*
 * context_aarch64.h — the AArch64 half of test_context.c: an assembly
 * helper that fills every callee-saved register (x19-x29, d8-d15) around a
 * switch, an entry point that records sp exactly, and FPCR access.
 */
#ifndef WEFT_TESTS_CONTEXT_AARCH64_H
#define WEFT_TESTS_CONTEXT_AARCH64_H

#include <stdint.h>

/*
 * uint64_t regs_switch(void **save_sp, void *new_sp, void *transfer,
 *                      uint64_t seed, void **got, uintptr_t *sp_at_call);
 * Loads the callee-saved registers, in the order of regs_names (x19-x29,
 * then d8-d15), with seed + K, seed + 2K, ... (REGS_K), stores its sp at
 * the call into *sp_at_call, calls wf_ctx_switch(save_sp, new_sp,
 * transfer), and when resumed stores the transfer it received in *got and
 * returns a mask with bit i set when register i no longer holds
 * seed + (i + 1) * K.  Its own caller's registers are saved and restored
 * around all this, so it is an ordinary C function.
 */
#define REGS_K 0x9e3779b97f4a7c15ull
#define REGS_CHECKED 19
static const char *const regs_names[REGS_CHECKED] = {
	"x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29",
	"d8", "d9", "d10", "d11", "d12", "d13", "d14", "d15",
};
uint64_t regs_switch(void **save_sp, void *new_sp, void *transfer, uint64_t seed, void **got,
                     uintptr_t *sp_at_call);
extern char regs_switch_end[];

#define RS_LOAD(r)  "	add x11, x11, x10\n	mov " #r ", x11\n"
#define RS_LOADD(d) "	add x11, x11, x10\n	fmov " #d ", x11\n"
#define RS_CHECK(r, bit) \
	"	add x11, x11, x10\n	cmp " #r ", x11\n	cset x12, ne\n" \
	"	orr x0, x0, x12, lsl #" #bit "\n"
#define RS_CHECKD(d, bit) \
	"	add x11, x11, x10\n	fmov x13, " #d "\n	cmp x13, x11\n	cset x12, ne\n" \
	"	orr x0, x0, x12, lsl #" #bit "\n"
__asm__(
	"	.pushsection .text\n"
	"	.p2align 4\n"
	"	.globl regs_switch, regs_switch_end\n"   /* named in relocations, not as .text+n */
	"	.type regs_switch, %function\n"
	"regs_switch:\n"
	"	stp x29, x30, [sp, #-176]!\n"   /* own frame: x29, x30 at 0 */
	"	stp x19, x20, [sp, #16]\n"
	"	stp x21, x22, [sp, #32]\n"
	"	stp x23, x24, [sp, #48]\n"
	"	stp x25, x26, [sp, #64]\n"
	"	stp x27, x28, [sp, #80]\n"
	"	stp d8, d9, [sp, #96]\n"
	"	stp d10, d11, [sp, #112]\n"
	"	stp d12, d13, [sp, #128]\n"
	"	stp d14, d15, [sp, #144]\n"
	"	stp x3, x4, [sp, #160]\n"       /* seed, got */
	"	ldr x10, =0x9e3779b97f4a7c15\n" /* REGS_K */
	"	mov x11, x3\n"
	RS_LOAD(x19) RS_LOAD(x20) RS_LOAD(x21) RS_LOAD(x22) RS_LOAD(x23) RS_LOAD(x24)
	RS_LOAD(x25) RS_LOAD(x26) RS_LOAD(x27) RS_LOAD(x28) RS_LOAD(x29)
	RS_LOADD(d8) RS_LOADD(d9) RS_LOADD(d10) RS_LOADD(d11) RS_LOADD(d12) RS_LOADD(d13)
	RS_LOADD(d14) RS_LOADD(d15)
	"	mov x9, sp\n"
	"	str x9, [x5]\n"                 /* *sp_at_call */
	"	bl wf_ctx_switch\n"
	"	ldp x3, x4, [sp, #160]\n"
	"	str x0, [x4]\n"                 /* *got = transfer */
	"	ldr x10, =0x9e3779b97f4a7c15\n"
	"	mov x11, x3\n"
	"	mov x0, xzr\n"                  /* mask */
	RS_CHECK(x19, 0) RS_CHECK(x20, 1) RS_CHECK(x21, 2) RS_CHECK(x22, 3) RS_CHECK(x23, 4)
	RS_CHECK(x24, 5) RS_CHECK(x25, 6) RS_CHECK(x26, 7) RS_CHECK(x27, 8) RS_CHECK(x28, 9)
	RS_CHECK(x29, 10)
	RS_CHECKD(d8, 11) RS_CHECKD(d9, 12) RS_CHECKD(d10, 13) RS_CHECKD(d11, 14)
	RS_CHECKD(d12, 15) RS_CHECKD(d13, 16) RS_CHECKD(d14, 17) RS_CHECKD(d15, 18)
	"	ldp x19, x20, [sp, #16]\n"
	"	ldp x21, x22, [sp, #32]\n"
	"	ldp x23, x24, [sp, #48]\n"
	"	ldp x25, x26, [sp, #64]\n"
	"	ldp x27, x28, [sp, #80]\n"
	"	ldp d8, d9, [sp, #96]\n"
	"	ldp d10, d11, [sp, #112]\n"
	"	ldp d12, d13, [sp, #128]\n"
	"	ldp d14, d15, [sp, #144]\n"
	"	ldp x29, x30, [sp], #176\n"
	"	ret\n"
	"	.ltorg\n"
	"	.size regs_switch, .-regs_switch\n"
	"regs_switch_end:\n"
	"	.popsection\n");

/* Entry point written in assembly: records sp exactly as it is on entry,
 * then tail-jumps to the C part with the same stack.  AAPCS64 wants sp
 * 16-byte aligned there (and everywhere). */
uintptr_t probe_sp;
void align_probe_entry(void *transfer, void *arg);
__asm__(
	"	.pushsection .text\n"
	"	.p2align 4\n"
	"	.globl align_probe_entry\n"
	"	.type align_probe_entry, %function\n"
	"align_probe_entry:\n"
	"	mov x9, sp\n"
	"	adrp x10, probe_sp\n"
	"	str x9, [x10, :lo12:probe_sp]\n"
	"	b align_probe_c\n"
	"	.size align_probe_entry, .-align_probe_entry\n"
	"	.popsection\n");
#define ENTRY_SP_ALIGNED(sp) ((sp) % 16 == 0)
#define ENTRY_SP_RULE "sp 16-byte aligned"

/* ---- FPCR ---------------------------------------------------------------- */

#define FPCR_RMODE_MASK (3u << 22)   /* rounding: nearest, +inf, -inf, zero */
#define FPCR_UP         (1u << 22)
#define FPCR_DOWN       (2u << 22)
#define FPCR_ZERO       (3u << 22)
#define FPCR_FZ         (1u << 24)   /* flush denormals to zero */
#define FPCR_DN         (1u << 25)   /* default NaN */
#define FPCR_CONTROL    (FPCR_RMODE_MASK | FPCR_FZ | FPCR_DN)

static unsigned get_fpcr(void) { return __builtin_aarch64_get_fpcr(); }
static void set_fpcr(unsigned v) { __builtin_aarch64_set_fpcr(v); }

#endif
