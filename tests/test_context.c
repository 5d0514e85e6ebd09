/*
 * test_context.c — the machine context switch (src/context/context.h) on its
 * own, with no scheduler: wf_ctx_make lays out a first frame, wf_ctx_switch
 * saves one context and resumes another.
 *
 * Covered: transfer values in both directions and the `arg` of a new
 * context; ping-pong between two stacks; a ring of many contexts; every
 * callee-saved register (x86-64: rbx, rbp, r12-r15; AArch64: x19-x29,
 * d8-d15) checked at the instruction level by an assembly helper and under
 * heavy local-variable pressure in C; the saved frame as weft_dump and gdb
 * read it (wf_ctx_saved_frame, wf_ctx_frame_layout) against what the switch
 * really saved; the floating-point controls kept per context (x86-64: MXCSR
 * and x87 control word; AArch64: FPCR), each context its own rounding mode,
 * checked both by reading the registers and by the rounding of real
 * divisions, a new context starting from the defaults; stack alignment at
 * entry for every misalignment of the stack top; the first frame staying
 * inside [lo, hi); an entry function that returns traps.
 *
 * The ISA-specific helpers are in context_x86_64.h and context_aarch64.h.
 */
#include <check.h>
#include "check_main.h"
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "context/context.h"

#if defined(__x86_64__)
#include "context_x86_64.h"
#elif defined(__aarch64__)
#include "context_aarch64.h"
#else
#error "no test helpers for this architecture"
#endif

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
/* Frames left on an abandoned context keep their redzones poisoned in the
 * shadow; a later mapping at the same address must start clean. */
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define STACK_SIZE (256 * 1024)

static void *map_stack(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	UNPOISON(p, size);
	return p;
}

/* ------------------------------------------------------------------------ */
/* Transfer values, arg, ping-pong between two stacks                       */
/* ------------------------------------------------------------------------ */

static void *main_sp, *a_sp, *b_sp;
#define PINGPONG_ROUNDS 100000
static int arg_a, arg_b;
static volatile long a_rounds, b_rounds;

/* A starts with transfer 1, then A and B hand a counter back and forth,
 * each adding one; A finally returns the counter to main. */
static void pp_entry_a(void *transfer, void *arg)
{
	ck_assert_ptr_eq(arg, &arg_a);
	uintptr_t v = (uintptr_t)transfer;
	ck_assert_uint_eq(v, 1);
	for (long i = 0; i < PINGPONG_ROUNDS; i++) {
		uintptr_t got = (uintptr_t)wf_ctx_switch(&a_sp, b_sp, (void *)(v + 1));
		ck_assert_uint_eq(got, v + 2);
		v = got;
		a_rounds++;
	}
	wf_ctx_switch(&a_sp, main_sp, (void *)(v + 1000));
	ck_abort_msg("context A resumed after it finished");
}

static void pp_entry_b(void *transfer, void *arg)
{
	ck_assert_ptr_eq(arg, &arg_b);
	uintptr_t v = (uintptr_t)transfer;
	ck_assert_uint_eq(v, 2);
	for (;;) {
		uintptr_t got = (uintptr_t)wf_ctx_switch(&b_sp, a_sp, (void *)(v + 1));
		ck_assert_uint_eq(got, v + 2);
		v = got;
		b_rounds++;
	}
}

START_TEST(t_pingpong)
{
	char *sa = map_stack(STACK_SIZE), *sb = map_stack(STACK_SIZE);
	a_sp = wf_ctx_make(sa, sa + STACK_SIZE, pp_entry_a, &arg_a);
	b_sp = wf_ctx_make(sb, sb + STACK_SIZE, pp_entry_b, &arg_b);
	ck_assert_ptr_nonnull(a_sp);
	ck_assert_ptr_nonnull(b_sp);
	uintptr_t r = (uintptr_t)wf_ctx_switch(&main_sp, a_sp, (void *)1);
	/* A sent 1, B 2, ...: after R rounds A holds 2R+1. */
	ck_assert_uint_eq(r, 2 * PINGPONG_ROUNDS + 1 + 1000);
	ck_assert_int_eq(a_rounds, PINGPONG_ROUNDS);
	/* B's first turn is its entry, not a resumed switch. */
	ck_assert_int_eq(b_rounds, PINGPONG_ROUNDS - 1);
	munmap(sa, STACK_SIZE);
	munmap(sb, STACK_SIZE);
}
END_TEST

/* Pointer-sized transfer values pass unchanged, including all-ones and
 * values with the top bit set. */
static void *echo_sp, *echo_main_sp;
static void echo_entry(void *transfer, void *arg)
{
	(void)arg;
	for (;;)
		transfer = wf_ctx_switch(&echo_sp, echo_main_sp, transfer);
}

START_TEST(t_transfer_values)
{
	static const uintptr_t vals[] = { 0, 1, 0x7fffffffffffffffull, 0x8000000000000000ull,
	                                  0xffffffffffffffffull, 0xdeadbeefcafef00dull, 42 };
	char *s = map_stack(STACK_SIZE);
	echo_sp = wf_ctx_make(s, s + STACK_SIZE, echo_entry, NULL);
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		void *r = wf_ctx_switch(&echo_main_sp, echo_sp, (void *)vals[i]);
		ck_assert_uint_eq((uintptr_t)r, vals[i]);
	}
	munmap(s, STACK_SIZE);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* A ring of contexts passing a token                                       */
/* ------------------------------------------------------------------------ */

#define RING 64
#define RING_LAPS 2000
static void *ring_sp[RING], *ring_main_sp;
static long ring_seen[RING];

static void ring_entry(void *transfer, void *arg)
{
	int me = (int)(intptr_t)arg;
	uintptr_t tok = (uintptr_t)transfer;
	for (;;) {
		/* The token counts hops: hop k lands on context k % RING. */
		ck_assert_int_eq((int)(tok % RING), me);
		ring_seen[me]++;
		if (tok + 1 == (uintptr_t)RING * RING_LAPS)
			tok = (uintptr_t)wf_ctx_switch(&ring_sp[me], ring_main_sp, (void *)(tok + 1));
		else
			tok = (uintptr_t)wf_ctx_switch(&ring_sp[me], ring_sp[(me + 1) % RING],
			                               (void *)(tok + 1));
	}
}

START_TEST(t_ring)
{
	size_t sz = 32 * 1024;
	char *mem = map_stack(sz * RING);
	for (int i = 0; i < RING; i++)
		ring_sp[i] = wf_ctx_make(mem + sz * i, mem + sz * (i + 1), ring_entry,
		                         (void *)(intptr_t)i);
	uintptr_t r = (uintptr_t)wf_ctx_switch(&ring_main_sp, ring_sp[0], (void *)0);
	ck_assert_uint_eq(r, (uintptr_t)RING * RING_LAPS);
	for (int i = 0; i < RING; i++)
		ck_assert_int_eq(ring_seen[i], RING_LAPS);
	munmap(mem, sz * RING);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Callee-saved registers, checked in assembly                              */
/* ------------------------------------------------------------------------ */

static void *rg_main_sp, *rg_co_sp;
static uint64_t rg_co_seed;
static uintptr_t rg_co_sp_at_call, rg_main_sp_at_call;
#define REG_ROUNDS 1000

static void regs_entry(void *transfer, void *arg)
{
	(void)arg;
	uintptr_t v = (uintptr_t)transfer;
	for (;;) {
		void *got = NULL;
		/* A different seed each time: main's values must not leak in. */
		uint64_t seed = 0xc0ffee0000000000ull ^ (v * 0x9e3779b97f4a7c15ull);
		rg_co_seed = seed;
		uint64_t mask = regs_switch(&rg_co_sp, rg_main_sp, (void *)(v * 3), seed, &got,
		                            &rg_co_sp_at_call);
		ck_assert_msg(mask == 0, "coroutine: callee-saved registers clobbered, mask %#llx",
		              (unsigned long long)mask);
		v = (uintptr_t)got;
	}
}

START_TEST(t_callee_saved_asm)
{
	char *s = map_stack(STACK_SIZE);
	rg_co_sp = wf_ctx_make(s, s + STACK_SIZE, regs_entry, NULL);
	for (uintptr_t i = 1; i <= REG_ROUNDS; i++) {
		void *got = NULL;
		uint64_t seed = 0x0123456789abcdefull * i;
		uint64_t mask = regs_switch(&rg_main_sp, rg_co_sp, (void *)i, seed, &got,
		                            &rg_main_sp_at_call);
		ck_assert_msg(mask == 0, "main: callee-saved registers clobbered, mask %#llx",
		              (unsigned long long)mask);
		ck_assert_uint_eq((uintptr_t)got, i * 3);
	}
	munmap(s, STACK_SIZE);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The saved frame as weft_dump and gdb read it                             */
/* ------------------------------------------------------------------------ */

/* The value regs_switch gave register `name`, or false if it loads none. */
static bool regs_expected(const char *name, uint64_t seed, uint64_t *v)
{
	for (int i = 0; i < REGS_CHECKED; i++)
		if (!strcmp(regs_names[i], name)) {
			*v = seed + (uint64_t)(i + 1) * REGS_K;
			return true;
		}
	return false;
}

/*
 * The coroutine parks inside regs_switch with known values in every
 * callee-saved register; its saved frame must hold each where
 * wf_ctx_frame_layout (the table the gdb script reads) and
 * wf_ctx_saved_frame (weft_dump's reader) say, resume inside regs_switch,
 * and give back the stack pointer regs_switch had at its call.  This ties
 * frame.h, the switch, the first frame's users and the debugger's table to
 * each other.
 */
START_TEST(t_saved_frame_layout)
{
	const struct wf_ctx_frame_layout *l = &wf_ctx_frame_layout;
	char *s = map_stack(STACK_SIZE);
	void *got = NULL;
	rg_co_sp = wf_ctx_make(s, s + STACK_SIZE, regs_entry, NULL);
	regs_switch(&rg_main_sp, rg_co_sp, (void *)7, 1, &got, &rg_main_sp_at_call);
	ck_assert_uint_eq((uintptr_t)got, 21);   /* the coroutine is parked */

	uintptr_t sp = (uintptr_t)rg_co_sp;
	ck_assert_uint_eq(l->size, WF_CTX_SAVED_WORDS * sizeof(uintptr_t));
	ck_assert_uint_eq(sp + l->size, rg_co_sp_at_call);
	ck_assert_uint_le(l->nregs, WF_CTX_DEBUG_REGS);
	uintptr_t pc = *(const uintptr_t *)(sp + l->pc_offset);
	ck_assert_msg(pc > (uintptr_t)regs_switch && pc < (uintptr_t)regs_switch_end,
	              "resume address %#lx is not inside regs_switch [%p, %p)", (unsigned long)pc,
	              (void *)regs_switch, (void *)regs_switch_end);

	int general = 0, found = 0;
	for (int i = 0; i < REGS_CHECKED; i++)
		general += regs_names[i][0] != 'd';   /* gdb's table: general registers */
	uint64_t want_fp = 0;
	for (unsigned i = 0; i < l->nregs; i++) {
		const char *name = l->regs[i].name;
		uint64_t want, got_v = *(const uint64_t *)(sp + l->regs[i].offset);
		ck_assert_uint_lt(l->regs[i].offset + sizeof(uint64_t), l->size + 1);
		if (regs_expected(name, rg_co_seed, &want)) {
			found++;
			ck_assert_msg(got_v == want, "%s at +%u: %#llx, expected %#llx", name,
			              l->regs[i].offset, (unsigned long long)got_v,
			              (unsigned long long)want);
			if (l->regs[i].offset == l->fp_offset)
				want_fp = want;
		} else {
			/* The only register the helper does not load: AArch64's
			 * link register, which is the resume address. */
			ck_assert_msg(!strcmp(name, "x30") && l->regs[i].offset == l->pc_offset,
			              "register %s in the table is not checked", name);
		}
	}
	ck_assert_int_eq(found, general);
	ck_assert_msg(want_fp != 0, "the frame-pointer slot names no register");

	uintptr_t frame[WF_CTX_SAVED_WORDS], fpc, ffp;
	memcpy(frame, (const void *)sp, sizeof frame);
	wf_ctx_saved_frame(frame, &fpc, &ffp);
	ck_assert_uint_eq(fpc, pc);
	ck_assert_uint_eq(ffp, want_fp);
	munmap(s, STACK_SIZE);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Callee-saved registers under register pressure from C                    */
/* ------------------------------------------------------------------------ */

static void *pr_main_sp, *pr_co_sp;

static __attribute__((noinline)) uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	return x;
}

/* Many live values across each switch: gcc keeps them in callee-saved
 * registers and spills the rest. */
static uint64_t pressure_round(void **save, void **to, uint64_t seed)
{
	uint64_t a = mix(seed + 1), b = mix(seed + 2), c = mix(seed + 3), d = mix(seed + 4);
	uint64_t e = mix(seed + 5), f = mix(seed + 6), g = mix(seed + 7), h = mix(seed + 8);
	uint64_t i = mix(seed + 9), j = mix(seed + 10), k = mix(seed + 11), l = mix(seed + 12);
	uint64_t expect = a ^ (b << 1) ^ (c << 2) ^ (d << 3) ^ (e << 4) ^ (f << 5) ^ (g << 6) ^
	                  (h << 7) ^ (i << 8) ^ (j << 9) ^ (k << 10) ^ (l << 11);
	wf_ctx_switch(save, *to, NULL);
	uint64_t got = a ^ (b << 1) ^ (c << 2) ^ (d << 3) ^ (e << 4) ^ (f << 5) ^ (g << 6) ^
	               (h << 7) ^ (i << 8) ^ (j << 9) ^ (k << 10) ^ (l << 11);
	ck_assert_uint_eq(got, expect);
	/* Use every value again after a second switch. */
	wf_ctx_switch(save, *to, NULL);
	return a + b + c + d + e + f + g + h + i + j + k + l - (a + b + c + d + e + f + g + h + i +
	                                                        j + k + l) + got;
}

static void pressure_entry(void *transfer, void *arg)
{
	(void)transfer; (void)arg;
	for (uint64_t n = 0;; n++)
		pressure_round(&pr_co_sp, &pr_main_sp, 0xabcdef0000ull + n);
}

START_TEST(t_callee_saved_pressure)
{
	char *s = map_stack(STACK_SIZE);
	pr_co_sp = wf_ctx_make(s, s + STACK_SIZE, pressure_entry, NULL);
	for (uint64_t n = 0; n < 20000; n++)
		pressure_round(&pr_main_sp, &pr_co_sp, n * 1000003ull);
	munmap(s, STACK_SIZE);
}
END_TEST

#if defined(__x86_64__)

/* ------------------------------------------------------------------------ */
/* Floating-point controls, per context: MXCSR and the x87 control word    */
/* ------------------------------------------------------------------------ */

/* Rounding observed in real arithmetic: 1/3 in double (SSE) and in long
 * double (x87), under the current modes. */
static volatile double d_one = 1.0, d_three = 3.0;
static volatile long double l_one = 1.0L, l_three = 3.0L;
static double sse_third(void) { return d_one / d_three; }
static long double x87_third(void) { return l_one / l_three; }

static double sse_ref[4];       /* by MXCSR rounding mode index */
static long double x87_ref[4];  /* by x87 rounding mode index */

static int rc_index_sse(unsigned mxcsr) { return (int)((mxcsr & MXCSR_RC_MASK) >> 13); }
static int rc_index_x87(unsigned cw) { return (int)((cw & FPCW_RC_MASK) >> 10); }

static void fp_reference(void)
{
	unsigned m0 = get_mxcsr(), c0 = get_fpcw();
	for (int i = 0; i < 4; i++) {
		set_mxcsr((m0 & ~MXCSR_RC_MASK) | ((unsigned)i << 13));
		set_fpcw((c0 & ~FPCW_RC_MASK) | ((unsigned)i << 10));
		sse_ref[i] = sse_third();
		x87_ref[i] = x87_third();
	}
	set_mxcsr(m0);
	set_fpcw(c0);
	/* Up and down must differ, or the arithmetic check proves nothing. */
	ck_assert(sse_ref[1] != sse_ref[2]);
	ck_assert(x87_ref[1] != x87_ref[2]);
}

/* Check that the current control words are exactly (mx, cw) and that real
 * arithmetic rounds accordingly. */
static void fp_expect(const char *who, unsigned mx, unsigned cw)
{
	unsigned gm = get_mxcsr() & 0xffc0u;  /* control bits; flags may be set */
	unsigned gc = get_fpcw() & 0x1f3fu;
	ck_assert_msg(gm == (mx & 0xffc0u), "%s: MXCSR %#x, expected %#x", who, gm, mx & 0xffc0u);
	ck_assert_msg(gc == (cw & 0x1f3fu), "%s: x87 CW %#x, expected %#x", who, gc, cw & 0x1f3fu);
	ck_assert_msg(sse_third() == sse_ref[rc_index_sse(mx)], "%s: SSE rounding wrong", who);
	ck_assert_msg(x87_third() == x87_ref[rc_index_x87(cw)], "%s: x87 rounding wrong", who);
}

static void *fp_main_sp, *fp_a_sp, *fp_b_sp;
static unsigned fp_a_mx, fp_a_cw, fp_b_mx, fp_b_cw;
static volatile int fp_fresh_checked;

static void fp_entry_a(void *transfer, void *arg)
{
	(void)transfer; (void)arg;
	/* A new context starts from the default control words, whatever its
	 * creator had set (wf_ctx_make: MXCSR 0x1f80, x87 CW 0x037f). */
	fp_expect("A at entry", 0x1f80u, 0x037fu);
	fp_fresh_checked++;
	set_mxcsr(fp_a_mx);
	set_fpcw(fp_a_cw);
	for (;;) {
		wf_ctx_switch(&fp_a_sp, fp_b_sp, NULL);
		fp_expect("A", fp_a_mx, fp_a_cw);
	}
}

static void fp_entry_b(void *transfer, void *arg)
{
	(void)transfer; (void)arg;
	fp_expect("B at entry", 0x1f80u, 0x037fu);
	fp_fresh_checked++;
	set_mxcsr(fp_b_mx);
	set_fpcw(fp_b_cw);
	for (;;) {
		wf_ctx_switch(&fp_b_sp, fp_main_sp, NULL);
		fp_expect("B", fp_b_mx, fp_b_cw);
	}
}

START_TEST(t_fp_control_per_context)
{
	fp_reference();
	unsigned m0 = get_mxcsr() & ~0x3fu, c0 = get_fpcw();
	/* Three contexts, three different settings. */
	unsigned main_mx = (m0 & ~MXCSR_RC_MASK) | MXCSR_UP;
	unsigned main_cw = (c0 & ~(FPCW_RC_MASK | FPCW_PC_MASK)) | FPCW_DOWN | FPCW_PC53;
	fp_a_mx = (m0 & ~MXCSR_RC_MASK) | MXCSR_ZERO;
	fp_a_cw = (c0 & ~FPCW_RC_MASK) | FPCW_UP;
	fp_b_mx = (m0 & ~MXCSR_RC_MASK) | MXCSR_DOWN;
	fp_b_cw = (c0 & ~FPCW_RC_MASK) | FPCW_ZERO;
	/* x87 precision control affects long double results: keep the
	 * reference computed at 64-bit precision valid for A and B only. */

	char *sa = map_stack(STACK_SIZE), *sb = map_stack(STACK_SIZE);
	fp_a_sp = wf_ctx_make(sa, sa + STACK_SIZE, fp_entry_a, NULL);
	fp_b_sp = wf_ctx_make(sb, sb + STACK_SIZE, fp_entry_b, NULL);

	set_mxcsr(main_mx);
	set_fpcw(main_cw);
	for (int i = 0; i < 1000; i++) {
		/* main -> A -> B -> main */
		wf_ctx_switch(&fp_main_sp, fp_a_sp, NULL);
		unsigned gm = get_mxcsr() & 0xffc0u, gc = get_fpcw() & 0x1f3fu;
		ck_assert_msg(gm == (main_mx & 0xffc0u), "main: MXCSR %#x, expected %#x", gm,
		              main_mx & 0xffc0u);
		ck_assert_msg(gc == (main_cw & 0x1f3fu), "main: x87 CW %#x, expected %#x", gc,
		              main_cw & 0x1f3fu);
		ck_assert(sse_third() == sse_ref[rc_index_sse(main_mx)]);
	}
	ck_assert_int_eq(fp_fresh_checked, 2);
	set_mxcsr(m0 | 0x1f80u);
	set_fpcw(c0);
	munmap(sa, STACK_SIZE);
	munmap(sb, STACK_SIZE);
}
END_TEST

#elif defined(__aarch64__)

/* ------------------------------------------------------------------------ */
/* Floating-point controls, per context: FPCR                               */
/* ------------------------------------------------------------------------ */

/* Rounding observed in real arithmetic: 1/3 in double under the current
 * mode, and whether a denormal survives a multiplication (FZ). */
static volatile double d_one = 1.0, d_three = 3.0, d_tiny = 0x1p-1030, d_half = 0.5;
static double fp_third(void) { return d_one / d_three; }
static double fp_ref[4];   /* by FPCR.RMode */

static int rmode(unsigned fpcr) { return (int)((fpcr & FPCR_RMODE_MASK) >> 22); }

static void fp_reference(void)
{
	unsigned f0 = get_fpcr();
	for (int i = 0; i < 4; i++) {
		set_fpcr((f0 & ~FPCR_RMODE_MASK) | ((unsigned)i << 22));
		fp_ref[i] = fp_third();
	}
	set_fpcr(f0);
	/* Up and down must differ, or the arithmetic check proves nothing. */
	ck_assert(fp_ref[1] != fp_ref[2]);
}

/* The current FPCR's controls are exactly those of `want`, and real
 * arithmetic rounds and flushes accordingly. */
static void fp_expect(const char *who, unsigned want)
{
	unsigned got = get_fpcr() & FPCR_CONTROL;
	ck_assert_msg(got == (want & FPCR_CONTROL), "%s: FPCR %#x, expected %#x", who, got,
	              want & FPCR_CONTROL);
	ck_assert_msg(fp_third() == fp_ref[rmode(want)], "%s: rounding wrong", who);
	double denormal = d_tiny * d_half;
	ck_assert_msg((denormal == 0.0) == ((want & FPCR_FZ) != 0),
	              "%s: flush-to-zero %s", who, denormal == 0.0 ? "on" : "off");
}

static void *fp_main_sp, *fp_a_sp, *fp_b_sp;
static unsigned fp_a, fp_b;
static volatile int fp_fresh_checked;

static void fp_entry_a(void *transfer, void *arg)
{
	(void)transfer; (void)arg;
	/* A new context starts from FPCR 0 (round to nearest, no flush to
	 * zero), whatever its creator had set. */
	fp_expect("A at entry", 0);
	fp_fresh_checked++;
	set_fpcr(fp_a);
	for (;;) {
		wf_ctx_switch(&fp_a_sp, fp_b_sp, NULL);
		fp_expect("A", fp_a);
	}
}

static void fp_entry_b(void *transfer, void *arg)
{
	(void)transfer; (void)arg;
	fp_expect("B at entry", 0);
	fp_fresh_checked++;
	set_fpcr(fp_b);
	for (;;) {
		wf_ctx_switch(&fp_b_sp, fp_main_sp, NULL);
		fp_expect("B", fp_b);
	}
}

START_TEST(t_fp_control_per_context)
{
	fp_reference();
	unsigned f0 = get_fpcr();
	/* Three contexts, three different settings. */
	unsigned main_f = (f0 & ~FPCR_CONTROL) | FPCR_UP | FPCR_DN;
	fp_a = (f0 & ~FPCR_CONTROL) | FPCR_ZERO | FPCR_FZ;
	fp_b = (f0 & ~FPCR_CONTROL) | FPCR_DOWN;

	char *sa = map_stack(STACK_SIZE), *sb = map_stack(STACK_SIZE);
	fp_a_sp = wf_ctx_make(sa, sa + STACK_SIZE, fp_entry_a, NULL);
	fp_b_sp = wf_ctx_make(sb, sb + STACK_SIZE, fp_entry_b, NULL);

	set_fpcr(main_f);
	for (int i = 0; i < 1000; i++) {
		/* main -> A -> B -> main */
		wf_ctx_switch(&fp_main_sp, fp_a_sp, NULL);
		fp_expect("main", main_f);
	}
	ck_assert_int_eq(fp_fresh_checked, 2);
	set_fpcr(f0);
	munmap(sa, STACK_SIZE);
	munmap(sb, STACK_SIZE);
}
END_TEST

#endif

/* ------------------------------------------------------------------------ */
/* Stack alignment and bounds of the first frame                            */
/* ------------------------------------------------------------------------ */

/* align_probe_entry (context_<isa>.h) records the stack pointer exactly as
 * the entry function gets it, then tail-jumps here with the same stack. */
static void align_probe_c(void *transfer, void *arg);
static void *al_main_sp, *al_co_sp;
static char *al_lo, *al_hi;
static uintptr_t al_frame;

static __attribute__((noinline, noipa)) uintptr_t frame_addr(void)
{
	uintptr_t fa = (uintptr_t)__builtin_frame_address(0);
	__asm__ __volatile__("" : "+r"(fa));
	return fa;
}

static __attribute__((noinline, used)) void align_probe_c(void *transfer, void *arg)
{
	ck_assert_ptr_eq(arg, (void *)0x5eed);
	al_frame = frame_addr();
	/* A 16-byte-aligned vector local: on x86-64 gcc stores it with
	 * movaps, which faults if the stack is misaligned (AArch64 faults on
	 * any use of a misaligned sp). */
	volatile __attribute__((vector_size(16))) float v = { 1, 2, 3, 4 };
	v += v;
	ck_assert(v[3] == 8.0f);
	wf_ctx_switch(&al_co_sp, al_main_sp, transfer);
	ck_abort_msg("probe resumed");
}

START_TEST(t_alignment_at_entry)
{
	size_t size = 64 * 1024;
	for (int off = 0; off < 16; off++) {
		char *mem = map_stack(size + 4096);
		al_lo = mem;
		al_hi = mem + size - off;
		/* A canary just above the stack top: the first frame must not
		 * write past hi. */
		memset(al_hi, 0xa5, 64 + (size_t)off);
		memset(al_lo, 0x5a, (size_t)(al_hi - al_lo));
		probe_sp = 0;
		al_frame = 0;
		al_co_sp = wf_ctx_make(al_lo, al_hi, align_probe_entry, (void *)0x5eed);
		ck_assert_ptr_nonnull(al_co_sp);
		ck_assert_msg((char *)al_co_sp >= al_lo && (char *)al_co_sp < al_hi,
		              "off %d: initial sp outside the stack", off);
		ck_assert_msg(al_hi - (char *)al_co_sp <= 256,
		              "off %d: first frame is not at the top of the stack", off);
		void *r = wf_ctx_switch(&al_main_sp, al_co_sp, (void *)(intptr_t)(off + 100));
		ck_assert_ptr_eq(r, (void *)(intptr_t)(off + 100));
		ck_assert_msg(ENTRY_SP_ALIGNED(probe_sp), "off %d: stack pointer %#lx at entry: "
		              "not " ENTRY_SP_RULE, off, (unsigned long)probe_sp);
		ck_assert_msg(al_frame % 16 == 0, "off %d: frame address %#lx not 16-aligned", off,
		              (unsigned long)al_frame);
		/* At most hi: AArch64 enters with the stack empty (sp == hi),
		 * x86-64's call has pushed a return address below hi. */
		ck_assert_msg(probe_sp > (uintptr_t)al_lo && probe_sp <= (uintptr_t)al_hi,
		              "off %d: entry stack pointer outside the stack", off);
		for (int i = 0; i < 64 + off; i++)
			ck_assert_msg((unsigned char)al_hi[i] == 0xa5,
			              "off %d: byte %d above the stack top was written", off, i);
		munmap(mem, size + 4096);
	}
}
END_TEST

/* Alignment after resuming too: a context that is switched away from at
 * odd stack depths and resumed keeps an aligned stack in its callees. */
static void *ad_main_sp, *ad_co_sp;
static int ad_bad;

static __attribute__((noinline)) void ad_depth(int n)
{
	volatile char pad[24];
	pad[0] = (char)n;
	if (n > 0) {
		ad_depth(n - 1);
	} else {
		wf_ctx_switch(&ad_co_sp, ad_main_sp, NULL);
		if (frame_addr() % 16)
			ad_bad++;
	}
	(void)pad[0];
}

static void ad_entry(void *transfer, void *arg)
{
	(void)transfer; (void)arg;
	for (int n = 0;; n = (n + 1) % 7)
		ad_depth(n);
}

START_TEST(t_alignment_after_resume)
{
	char *s = map_stack(STACK_SIZE);
	ad_co_sp = wf_ctx_make(s, s + STACK_SIZE, ad_entry, NULL);
	for (int i = 0; i < 100; i++) {
		wf_ctx_switch(&ad_main_sp, ad_co_sp, NULL);
		ck_assert_uint_eq(frame_addr() % 16, 0);
	}
	ck_assert_int_eq(ad_bad, 0);
	munmap(s, STACK_SIZE);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* An entry function that returns traps                                     */
/* ------------------------------------------------------------------------ */

static void *tr_main_sp, *tr_co_sp;
static void returning_entry(void *transfer, void *arg)
{
	(void)transfer; (void)arg;
}

START_TEST(t_entry_return_traps)
{
	char *s = map_stack(STACK_SIZE);
	tr_co_sp = wf_ctx_make(s, s + STACK_SIZE, returning_entry, NULL);
	wf_ctx_switch(&tr_main_sp, tr_co_sp, NULL);
	ck_abort_msg("an entry function returned into its caller");
}
END_TEST

static Suite *context_suite(void)
{
	Suite *s = suite_create("context");
	TCase *tc = tcase_create("switch");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_pingpong);
	tcase_add_test(tc, t_transfer_values);
	tcase_add_test(tc, t_ring);
	tcase_add_test(tc, t_callee_saved_asm);
	tcase_add_test(tc, t_callee_saved_pressure);
	tcase_add_test(tc, t_saved_frame_layout);
	tcase_add_test(tc, t_fp_control_per_context);
	tcase_add_test(tc, t_alignment_at_entry);
	tcase_add_test(tc, t_alignment_after_resume);
	tcase_add_test_raise_signal(tc, t_entry_return_traps, SIGILL);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(context_suite());
}
