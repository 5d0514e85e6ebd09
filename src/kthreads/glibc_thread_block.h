/*
 * glibc_thread_block.h — glibc's per-thread block (struct pthread) built by
 * hand for clone() workers, and the checks that validate its layout at run
 * time.  Only kthread_clone.c uses it.  See the essay in kthread_clone.c.
 */
#ifndef WF_GLIBC_THREAD_BLOCK_H
#define WF_GLIBC_THREAD_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "../context/cpu.h"

/* The only glibc whose layout has been validated (see the gate). */
#define WF_TB_GLIBC_VERSION "2.36"

/*
 * Offsets into struct pthread for glibc 2.36 on x86-64, read from the glibc
 * source and confirmed with libc6-dbg (`ptype /o struct pthread`).  None is
 * trusted: wf_tb_validate() cross-checks every one before any is written.
 */
enum {
	/* tcbhead_t, at the start of struct pthread (ABI-fixed part) */
	WF_TB_TCB = 0x00,          /* void *tcb: the thread pointer itself */
	WF_TB_DTV = 0x08,          /* dtv_t *dtv */
	WF_TB_SELF = 0x10,         /* struct pthread *self: pthread_self() */
	WF_TB_MULTIPLE_THREADS = 0x18, /* int: libc's locking switch */
	WF_TB_STACK_GUARD = 0x28,  /* uintptr_t: -fstack-protector canary */
	WF_TB_POINTER_GUARD = 0x30, /* uintptr_t: PTR_MANGLE key (setjmp...) */
	WF_TB_FEATURE_1 = 0x48,    /* unsigned: CET feature bits */
	/* struct pthread proper */
	WF_TB_LIST = 704,          /* list_t: glibc's thread lists */
	WF_TB_TID = 720,           /* pid_t: kernel thread id */
	WF_TB_ROBUST_PREV = 728,   /* void *robust_prev */
	WF_TB_CANCELHANDLING = 776, /* int: SETXID_BITMASK while a set*id
	                              broadcast waits for this thread */
	WF_TB_ROBUST_HEAD = 736,   /* struct robust_list_head (24 bytes) */
	WF_TB_SPECIFIC_1ST = 784,  /* struct pthread_key_data[32] */
	WF_TB_SPECIFIC = 1296,     /* struct pthread_key_data *[32] */
	WF_TB_USER_STACK = 1554,   /* bool: the stack is not glibc's; such a
	                              thread is on GL(dl_stack_user) */
	WF_TB_SETXID_FUTEX = 1564, /* int: -1 until the thread has started
	                              (a set*id broadcast waits for it) */
	WF_TB_STACKBLOCK = 1680,   /* void *stackblock */
	WF_TB_STACKBLOCK_SIZE = 1688, /* size_t: __libc_alloca_cutoff input */
	WF_TB_GUARDSIZE = 1696,    /* size_t */
	WF_TB_REPORTED_GUARDSIZE = 1704, /* size_t */
	WF_TB_RES = 1720,          /* struct __res_state */
	WF_TB_RSEQ = 2336,         /* struct rseq area, 32 bytes */
	WF_TB_SIZE = 2368,         /* sizeof (struct pthread) */
};

/*
 * ld.so's struct rtld_global (exported as _rtld_global) for glibc 2.36 on
 * x86-64, from sysdeps/generic/ldsodefs.h and confirmed with libc6-dbg:
 * glibc's thread lists, which its per-thread broadcasts walk (docs/design.md,
 * "glibc's thread lists").  Cross-checked by wf_tb_validate before use.
 */
enum {
	WF_RG_STACK_USED = 4264,   /* list_t: threads on glibc-made stacks */
	WF_RG_STACK_USER = 4280,   /* list_t: threads on their own stacks */
	WF_RG_STACK_CACHE = 4296,  /* list_t: stacks of exited threads */
	WF_RG_CACHE_ACTSIZE = 4312, /* size_t: sum of their stackblock_size */
	WF_RG_IN_FLIGHT = 4320,    /* uintptr_t: a list update a fork may see */
	WF_RG_STACK_LOCK = 4328,   /* int: lll lock of the three lists */
};

#define WF_TB_ROBUST_HEAD_SIZE  24
#define WF_TB_ROBUST_FUTEX_OFF  (-32L)  /* __lock minus __list.__next */
#define WF_TB_KEY_DATA_SIZE     16
#define WF_TB_KEY_1ST_COUNT     32      /* PTHREAD_KEY_2NDLEVEL_SIZE */
#define WF_TB_RSEQ_LEN          32      /* length glibc registers */
#define WF_TB_RSEQ_SIG          0x53053053U /* RSEQ_SIG on x86-64 */
#define WF_TB_RSEQ_CPU_FAILED   ((uint32_t)-2) /* RSEQ_CPU_ID_REGISTRATION_FAILED */

/* Validate symbols and layout (creates and joins one probe pthread, which is
 * also the throwaway pthread that takes glibc out of single-threaded mode).
 * 0, or EAGAIN with *failed naming the failed check. */
int wf_tb_validate(const char **failed) WF_HIDDEN;

/* A new thread block for a worker whose stack ends (grows down from) at
 * stack_hi.  0, or EAGAIN with *why naming what failed.  Requires a
 * successful wf_tb_validate(). */
int wf_tb_create(char *stack_hi, char **pd_out, const char **why) WF_HIDDEN;

/* Free a block whose thread has exited (kernel cleared its tid), or never
 * ran (then it leaves glibc's list first). */
void wf_tb_destroy(char *pd) WF_HIDDEN;

/* Put the block of a thread about to be cloned on glibc's list of threads
 * with their own stacks, as pthread_create does for such a thread; take it
 * off (before its thread exits, or when clone failed). */
void wf_tb_list_join(char *pd) WF_HIDDEN;
void wf_tb_list_leave(char *pd) WF_HIDDEN;

/* The thread of pd has set itself up (or will never run): from now on a
 * set*id broadcast may signal it, as start_thread allows. */
void wf_tb_started(char *pd) WF_HIDDEN;

/* Is pd on glibc's list of threads with their own stacks?  (The self-test
 * worker's check.) */
bool wf_tb_listed(char *pd) WF_HIDDEN;

/* First thing a new worker runs, on itself, before any other libc call:
 * rseq registration, robust futex list, ctype tables. */
void wf_tb_enter(char *pd) WF_HIDDEN;

/* Address of the tid word (CLONE_PARENT_SETTID / CHILD_CLEARTID target). */
static inline volatile int *wf_tb_tid(char *pd)
{
	return (volatile int *)(pd + WF_TB_TID);
}

/* Record WF_KT_RECORDED_STACK as the calling thread's stack size when it is
 * the process's initial thread.  True if recorded. */
bool wf_tb_record_main_stack(void) WF_HIDDEN;

/* The calling thread's thread pointer (its struct pthread). */
char *wf_tb_self(void) WF_HIDDEN;

/* Offset of libc's errno from the thread pointer, as validated. */
ptrdiff_t wf_tb_errno_offset(void) WF_HIDDEN;

#endif
