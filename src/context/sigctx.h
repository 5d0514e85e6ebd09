/*
 * sigctx.h — where a signal interrupted a thread: its PC, stack pointer and
 * frame pointer in the ucontext_t that the kernel hands an SA_SIGINFO handler (the third
 * argument).  The preemption tick tests the PC for a safe point
 * (src/sched/preempt.c); weft_dump starts a preempted thread's backtrace
 * from both (src/sched/dump.c); the overflow report tests the stack pointer
 * against the guard (src/sched/overflow.c).  The kernel saved every register there, in
 * the machine's own layout: this is the only place that knows it.
 */
#ifndef WF_SIGCTX_H
#define WF_SIGCTX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

/* Byte offsets, in a ucontext_t, of the interrupted PC and frame pointer:
 * a reader that cannot trust the memory (weft_dump: the frame is on a
 * stack that may be reused while it reads) copies the word at each. */
#if defined(__x86_64__)
#define WF_SIGCTX_PC offsetof(ucontext_t, uc_mcontext.gregs[REG_RIP])
#define WF_SIGCTX_FP offsetof(ucontext_t, uc_mcontext.gregs[REG_RBP])
#define WF_SIGCTX_SP offsetof(ucontext_t, uc_mcontext.gregs[REG_RSP])
/* Bytes below the stack pointer that a signal frame must not touch: the
 * red zone (System V x86-64 psABI §3.2.2). */
#define WF_SIGCTX_RED_ZONE 128
#elif defined(__aarch64__)
#define WF_SIGCTX_PC offsetof(ucontext_t, uc_mcontext.pc)
#define WF_SIGCTX_FP offsetof(ucontext_t, uc_mcontext.regs[29])
#define WF_SIGCTX_SP offsetof(ucontext_t, uc_mcontext.sp)
/* AAPCS64 has no red zone: a signal frame starts right at sp. */
#define WF_SIGCTX_RED_ZONE 0
#else
#error "weft: no signal context layout for this architecture (src/context/sigctx.h)"
#endif

/* The interrupted PC, read in the handler from its own ucontext_t. */
static inline uintptr_t wf_sigctx_pc(const void *uc)
{
	uintptr_t pc;

	memcpy(&pc, (const char *)uc + WF_SIGCTX_PC, sizeof pc);
	return pc;
}

/* The interrupted stack pointer, likewise. */
static inline uintptr_t wf_sigctx_sp(const void *uc)
{
	uintptr_t sp;

	memcpy(&sp, (const char *)uc + WF_SIGCTX_SP, sizeof sp);
	return sp;
}

#endif
