/*
 * frame.h — the frame wf_ctx_switch saves, as byte offsets from the saved
 * stack pointer.  This is the one definition of that layout: the switch
 * (switch_<isa>.S) stores and loads through these offsets, the first frame
 * of a new context (context.c) is laid out with them, wf_ctx_saved_frame
 * (context.h) reads a parked context with them, and the table debuggers
 * read (wf_ctx_frame_layout in context.c, used by tools/gdb/weft-gdb.py) is
 * built from them.  The pictures are at the top of each switch_<isa>.S.
 *
 * Included from assembly: plain #defines only.
 *
 * Common to every ISA:
 *   WF_FRAME_SIZE  bytes of the frame; a multiple of 16.  The resumed
 *                  context's stack pointer is the saved one + WF_FRAME_SIZE.
 *   WF_FRAME_PC    the word the context resumes at (return address).
 *   WF_FRAME_FP    the word holding its frame pointer: the start of the
 *                  frame-pointer chain of a parked context.
 */
#ifndef WF_FRAME_H
#define WF_FRAME_H

#if defined(__x86_64__)

/* System V AMD64 psABI: callee-saved rbx, rbp, r12-r15, MXCSR control bits
 * and the x87 control word.  The return address is the word the caller's
 * `call` pushed, so the frame ends with it. */
#define WF_FRAME_MXCSR  0    /* 32 bits */
#define WF_FRAME_FPCW   4    /* 16 bits */
#define WF_FRAME_R15    8
#define WF_FRAME_R14   16
#define WF_FRAME_R13   24
#define WF_FRAME_R12   32
#define WF_FRAME_RBX   40
#define WF_FRAME_RBP   48
#define WF_FRAME_RA    56    /* pushed by the caller's call */
#define WF_FRAME_SIZE  64

#define WF_FRAME_PC    WF_FRAME_RA
#define WF_FRAME_FP    WF_FRAME_RBP

#elif defined(__aarch64__)

/* AAPCS64: callee-saved x19-x29, sp and the low 64 bits of v8-v15
 * (d8-d15); FPCR's rounding, flush-to-zero and default-NaN controls are
 * kept across calls too.  x30 (the link register) holds the address the
 * caller resumes at, so it is saved with x29 as a frame record. */
#define WF_FRAME_FPCR   0    /* 64 bits (the upper 32 are zero) */
                             /* 8: padding, keeps the d pairs 16-aligned */
#define WF_FRAME_D8    16    /* d8, d9 */
#define WF_FRAME_D10   32    /* d10, d11 */
#define WF_FRAME_D12   48    /* d12, d13 */
#define WF_FRAME_D14   64    /* d14, d15 */
#define WF_FRAME_X19   80    /* x19, x20 */
#define WF_FRAME_X21   96    /* x21, x22 */
#define WF_FRAME_X23  112    /* x23, x24 */
#define WF_FRAME_X25  128    /* x25, x26 */
#define WF_FRAME_X27  144    /* x27, x28 */
#define WF_FRAME_X29  160    /* x29 (frame pointer), x30 (link register) */
#define WF_FRAME_X30  168
#define WF_FRAME_SIZE 176

#define WF_FRAME_PC    WF_FRAME_X30
#define WF_FRAME_FP    WF_FRAME_X29

#else
#error "weft: no context switch for this architecture (src/context/frame.h)"
#endif

#endif
