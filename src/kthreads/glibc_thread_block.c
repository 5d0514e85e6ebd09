/*
 * glibc_thread_block.c — the glibc 2.36 x86-64 thread block for clone()
 * workers: the layout checks of the startup gate, building a block, and the
 * worker's first steps on it.  Why any of this is needed, and what stays
 * unsafe, is the essay at the top of kthread_clone.c.
 *
 * Every offset in glibc_thread_block.h is cross-checked here against at
 * least one independent source before anything is written through it:
 * libthread_db's layout descriptors exported by libc, kernel views of the
 * thread (gettid, get_robust_list, rseq), public libc calls that return
 * addresses inside the block (pthread_self, __res_state, __errno_location,
 * pthread_getattr_np), and a scan of a live pthread's block.  The probe is
 * one short-lived pthread, which doubles as the throwaway pthread that makes
 * glibc leave its single-threaded mode.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <locale.h>
#include <pthread.h>
#include <resolv.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/futex.h>

#include "glibc_thread_block.h"
#include "kt_internal.h"
#include "kt_syscall.h"
#include "libc_real.h"

#define WF_NO_ASAN __attribute__((no_sanitize_address))

/* Read or write a field of a thread block. */
#define WF_TB(pd, off, type) (*(type *)((char *)(pd) + (off)))

#if defined(__x86_64__)

/* Exported by ld.so since glibc 2.2.5: the initial thread's stack end,
 * which glibc also records as the initial thread's stackblock_size. */
extern void *__libc_stack_end;

static struct {
	void *(*allocate_tls)(void *);
	void (*deallocate_tls)(void *, bool);
	void (*static_info)(size_t *, size_t *);
	size_t static_size;       /* static TLS + struct pthread */
	size_t static_align;
	unsigned rseq_size;       /* __rseq_size: 0 if glibc registers none */
	ptrdiff_t resp_off;       /* libc's __resp, from the thread pointer */
	ptrdiff_t errno_off;      /* libc's errno, from the thread pointer */
	void *resp_init;          /* __resp as a new block's TLS image has it:
	                             &_res, the process-wide resolver state */
	uintptr_t stack_guard;    /* copied into every worker */
	uintptr_t pointer_guard;
	uint32_t feature_1;
	char *gate_tp;            /* thread block of the thread running the gate */
	char *rg;                 /* ld.so's _rtld_global: glibc's thread lists */
	bool valid;
} wf_tb;


char *wf_tb_self(void)
{
	char *tp;

	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return tp;
}

ptrdiff_t wf_tb_errno_offset(void)
{
	return wf_tb.errno_off;
}

/* ---- symbols ---------------------------------------------------------- */

static void *wf_tb_sym(const char *name, const char *version)
{
	return dlvsym(RTLD_DEFAULT, name, version);
}

static const char *wf_tb_check_version(void)
{
	static char msg[96];
	const char *v = gnu_get_libc_version();

	if (v && strcmp(v, WF_TB_GLIBC_VERSION) == 0)
		return NULL;
	snprintf(msg, sizeof msg, "glibc version check (%.20s is not %s)",
	         v ? v : "unknown", WF_TB_GLIBC_VERSION);
	return msg;
}

static const char *wf_tb_check_symbols(void)
{
	const ptrdiff_t *rseq_off;
	const unsigned *rseq_size;

	wf_tb.allocate_tls = wf_tb_sym("_dl_allocate_tls", "GLIBC_PRIVATE");
	if (!wf_tb.allocate_tls)
		return "_dl_allocate_tls symbol check";
	wf_tb.deallocate_tls = wf_tb_sym("_dl_deallocate_tls", "GLIBC_PRIVATE");
	if (!wf_tb.deallocate_tls)
		return "_dl_deallocate_tls symbol check";
	wf_tb.static_info = wf_tb_sym("_dl_get_tls_static_info", "GLIBC_PRIVATE");
	if (!wf_tb.static_info)
		return "_dl_get_tls_static_info symbol check";
	rseq_off = wf_tb_sym("__rseq_offset", "GLIBC_2.35");
	rseq_size = wf_tb_sym("__rseq_size", "GLIBC_2.35");
	if (!rseq_off || !rseq_size)
		return "__rseq_offset symbol check";
	if (*rseq_off != WF_TB_RSEQ)
		return "rseq offset check";
	if (*rseq_size != 0 && (*rseq_size < 20 || *rseq_size > WF_TB_RSEQ_LEN))
		return "rseq size check";
	wf_tb.rseq_size = *rseq_size;
	return NULL;
}

/* libthread_db's descriptor: {bits per element, elements, offset}. */
static bool wf_tb_desc(const char *name, uint32_t bits, uint32_t offset)
{
	const uint32_t *d = wf_tb_sym(name, "GLIBC_PRIVATE");

	return d && d[0] * d[1] == bits && d[2] == offset;
}

static bool wf_tb_desc_size(const char *name, uint32_t size)
{
	const uint32_t *d = wf_tb_sym(name, "GLIBC_PRIVATE");

	return d && *d == size;
}

static const char *wf_tb_check_descriptors(void)
{
	if (!wf_tb_desc_size("_thread_db_sizeof_pthread", WF_TB_SIZE))
		return "struct pthread size check";
	if (!wf_tb_desc("_thread_db_pthread_tid", 32, WF_TB_TID))
		return "tid offset check (libthread_db descriptor)";
	if (!wf_tb_desc("_thread_db_pthread_list", 128, WF_TB_LIST) ||
	    !wf_tb_desc("_thread_db_list_t_next", 64, 0) ||
	    !wf_tb_desc("_thread_db_list_t_prev", 64, 8))
		return "list offset check";
	if (!wf_tb_desc("_thread_db_pthread_dtvp", 64, WF_TB_DTV))
		return "dtv offset check";
	if (!wf_tb_desc("_thread_db_pthread_specific", 64 * WF_TB_KEY_1ST_COUNT,
	                WF_TB_SPECIFIC) ||
	    !wf_tb_desc_size("_thread_db_sizeof_pthread_key_data",
	                     WF_TB_KEY_DATA_SIZE) ||
	    !wf_tb_desc("_thread_db_pthread_key_data_data", 64, 8) ||
	    /* specific_1stblock ends where specific begins */
	    WF_TB_SPECIFIC_1ST + WF_TB_KEY_1ST_COUNT * WF_TB_KEY_DATA_SIZE !=
	            WF_TB_SPECIFIC)
		return "thread-specific data offset check";
	if (!wf_tb_desc("_thread_db_pthread_cancelhandling", 32, WF_TB_CANCELHANDLING))
		return "cancelhandling offset check";
	return NULL;
}

/* ---- glibc's thread lists ------------------------------------------------ */

#define WF_RG(off, type) WF_TB(wf_tb.rg, off, type)

/* _rtld_global (ld.so) is what libc's __nptl_rtld_global points at, and
 * libthread_db's descriptors place the two thread lists where our table
 * does; the three lists, the cache's size, the in-flight word and the lock
 * follow each other in that order (ldsodefs.h). */
static const char *wf_tb_check_rtld(void)
{
	char *rg = wf_tb_sym("_rtld_global", "GLIBC_PRIVATE");
	char **nptl_rg = wf_tb_sym("__nptl_rtld_global", "GLIBC_PRIVATE");

	if (!rg || !nptl_rg || *nptl_rg != rg)
		return "_rtld_global symbol check";
	if (!wf_tb_desc("_thread_db_rtld_global__dl_stack_used", 128, WF_RG_STACK_USED) ||
	    !wf_tb_desc("_thread_db_rtld_global__dl_stack_user", 128, WF_RG_STACK_USER) ||
	    WF_RG_STACK_CACHE != WF_RG_STACK_USER + 16 ||
	    WF_RG_CACHE_ACTSIZE != WF_RG_STACK_CACHE + 16 ||
	    WF_RG_IN_FLIGHT != WF_RG_CACHE_ACTSIZE + 8 ||
	    WF_RG_STACK_LOCK != WF_RG_IN_FLIGHT + 8)
		return "thread list offset check";
	wf_tb.rg = rg;
	/* An lll lock holds 0, 1 or 2: anything else is not the lock. */
	unsigned lock = (unsigned)__atomic_load_n(&WF_RG(WF_RG_STACK_LOCK, int),
	                                          __ATOMIC_RELAXED);
	if (lock > 2)
		return "thread list lock check";
	return NULL;
}

/* glibc's lll_lock and lll_unlock on the lists' lock (a private futex:
 * 0 free, 1 held, 2 held and waited for), exactly as pthread_create,
 * dlopen and the set*id broadcast take it. */
static void wf_tb_lists_lock(void)
{
	int *l = &WF_RG(WF_RG_STACK_LOCK, int);
	int z = 0;

	if (__atomic_compare_exchange_n(l, &z, 1, false, __ATOMIC_ACQUIRE,
	                                __ATOMIC_RELAXED))
		return;
	while (__atomic_exchange_n(l, 2, __ATOMIC_ACQUIRE) != 0)
		wf_syscall4(SYS_futex, l, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 2, NULL);
}

static void wf_tb_lists_unlock(void)
{
	int *l = &WF_RG(WF_RG_STACK_LOCK, int);

	if (__atomic_exchange_n(l, 0, __ATOMIC_RELEASE) > 1)
		wf_syscall3(SYS_futex, l, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1);
}

/* list_t is {next, prev}; glibc's list_add and list_del (include/list.h),
 * under the lock. */
static void wf_tb_list_add(char *node, char *head)
{
	char *first = WF_TB(head, 0, char *);

	WF_TB(node, 0, char *) = first;
	WF_TB(node, 8, char *) = head;
	WF_TB(first, 8, char *) = node;
	__atomic_thread_fence(__ATOMIC_RELEASE);   /* glibc's write barrier */
	WF_TB(head, 0, char *) = node;
}

static void wf_tb_list_del(char *node)
{
	char *next = WF_TB(node, 0, char *), *prev = WF_TB(node, 8, char *);

	WF_TB(next, 8, char *) = prev;
	WF_TB(prev, 0, char *) = next;
}

/* Is node on the list at head (under the lock)?  A list longer than any
 * process has threads is taken as a wrong offset. */
#define WF_TB_LIST_MAX (1u << 20)
static bool wf_tb_on_list(const char *node, char *head, bool *ok)
{
	unsigned n = 0;

	for (char *p = WF_TB(head, 0, char *); p != head; p = WF_TB(p, 0, char *)) {
		if (!p || WF_TB(WF_TB(p, 0, char *), 8, char *) != p || ++n > WF_TB_LIST_MAX) {
			*ok = false;
			return false;
		}
		if (p == node)
			return true;
	}
	return false;
}

/* A thread is on exactly one of the two lists: the user list iff its
 * user_stack flag is set (under the lock). */
static bool wf_tb_listed_right(char *tp)
{
	bool ok = true;
	bool used = wf_tb_on_list(tp + WF_TB_LIST, wf_tb.rg + WF_RG_STACK_USED, &ok);
	bool user = wf_tb_on_list(tp + WF_TB_LIST, wf_tb.rg + WF_RG_STACK_USER, &ok);

	return ok && used != user && user == WF_TB(tp, WF_TB_USER_STACK, bool);
}

/* The cache holds the stacks of exited threads (the probe's, if nobody
 * took it since), and its recorded size is the sum of theirs. */
static bool wf_tb_cache_right(void)
{
	char *head = wf_tb.rg + WF_RG_STACK_CACHE;
	size_t sum = 0;
	unsigned n = 0;

	for (char *p = WF_TB(head, 0, char *); p != head; p = WF_TB(p, 0, char *)) {
		if (!p || WF_TB(WF_TB(p, 0, char *), 8, char *) != p || ++n > WF_TB_LIST_MAX)
			return false;
		sum += WF_TB(p - WF_TB_LIST, WF_TB_STACKBLOCK_SIZE, size_t);
	}
	return sum == WF_RG(WF_RG_CACHE_ACTSIZE, size_t);
}

static const char *wf_tb_check_lists(char *tp)
{
	const char *f = NULL;

	wf_tb_lists_lock();
	if (WF_RG(WF_RG_IN_FLIGHT, uintptr_t) != 0)
		f = "thread list in-flight check";
	else if (!wf_tb_listed_right(tp))
		f = "thread list membership check";
	else if (tp == wf_tb.gate_tp && !wf_tb_cache_right())
		f = "thread stack cache check";
	wf_tb_lists_unlock();
	return f;
}

void wf_tb_list_join(char *pd)
{
	wf_tb_lists_lock();
	wf_tb_list_add(pd + WF_TB_LIST, wf_tb.rg + WF_RG_STACK_USER);
	wf_tb_lists_unlock();
}

void wf_tb_list_leave(char *pd)
{
	wf_tb_lists_lock();
	wf_tb_list_del(pd + WF_TB_LIST);
	wf_tb_lists_unlock();
	WF_TB(pd, WF_TB_LIST, char *) = pd + WF_TB_LIST;
	WF_TB(pd, WF_TB_LIST + 8, char *) = pd + WF_TB_LIST;
}

bool wf_tb_listed(char *pd)
{
	bool ok = true, on;

	wf_tb_lists_lock();
	on = wf_tb_on_list(pd + WF_TB_LIST, wf_tb.rg + WF_RG_STACK_USER, &ok);
	wf_tb_lists_unlock();
	return ok && on;
}

/* start_thread's "allow setxid from now onwards": a broadcast that found
 * the thread before it ran waits (-2) until it has started. */
void wf_tb_started(char *pd)
{
	int *f = &WF_TB(pd, WF_TB_SETXID_FUTEX, int);

	if (__atomic_exchange_n(f, 0, __ATOMIC_ACQUIRE) == -2)
		wf_syscall3(SYS_futex, f, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1);
}

static const char *wf_tb_check_static_tls(void)
{
	size_t size = 0, align = 0;

	wf_tb.static_info(&size, &align);
	if (size < WF_TB_SIZE + 64 || size > (1u << 20) || align < 16 ||
	    (align & (align - 1)) || ((uintptr_t)wf_tb_self() & (align - 1)))
		return "static TLS size check";
	wf_tb.static_size = size;
	wf_tb.static_align = align;
	return NULL;
}

/* ---- checks on one live thread ---------------------------------------- */

/* The static TLS blocks of a thread lie just below its thread pointer. */
static size_t wf_tb_tls_span(void)
{
	return wf_tb.static_size - WF_TB_SIZE;
}

static bool wf_tb_in_tls(ptrdiff_t off, size_t size)
{
	return off < 0 && (size_t)-off >= size && (size_t)-off <= wf_tb_tls_span();
}

/* Count occurrences of a word at `step`-aligned places of [lo, lo+len);
 * the offset of the last hit goes to *at.  The probe thread scans its own
 * block: plain memory, but not what ASan instruments, hence no_sanitize. */
WF_NO_ASAN static int wf_tb_scan(const char *lo, size_t len, size_t step,
                                 uint64_t value, size_t vsize, ptrdiff_t *at)
{
	int hits = 0;

	for (size_t i = 0; i + vsize <= len; i += step) {
		uint64_t v = vsize == 4 ? *(const volatile uint32_t *)(lo + i)
		                        : *(const volatile uint64_t *)(lo + i);
		if (v == value) {
			hits++;
			*at = (ptrdiff_t)i;
		}
	}
	return hits;
}

static bool wf_tb_self_refs(char *tp)
{
	return WF_TB(tp, WF_TB_TCB, char *) == tp &&
	       WF_TB(tp, WF_TB_SELF, char *) == tp &&
	       (char *)WF_LIBC(pthread_self)() == tp && WF_TB(tp, WF_TB_DTV, void *);
}

/* list_t is on a doubly linked list: both neighbours point back. */
static bool wf_tb_list_linked(char *tp)
{
	char *node = tp + WF_TB_LIST;
	char *next = WF_TB(node, 0, char *), *prev = WF_TB(node, 8, char *);

	return next && prev && WF_TB(next, 8, char *) == node &&
	       WF_TB(prev, 0, char *) == node;
}

static bool wf_tb_robust_registered(char *tp)
{
	void *head = NULL;
	size_t len = 0;

	if (wf_syscall3(SYS_get_robust_list, 0, &head, &len) != 0)
		return false;
	return head == tp + WF_TB_ROBUST_HEAD && len == WF_TB_ROBUST_HEAD_SIZE &&
	       WF_TB(tp, WF_TB_ROBUST_HEAD + 8, long) == WF_TB_ROBUST_FUTEX_OFF;
}

/* The kernel answers EBUSY only if this very area, length and signature are
 * already registered for the calling thread. */
static bool wf_tb_rseq_registered(char *tp)
{
	if (wf_tb.rseq_size == 0)
		return WF_TB(tp, WF_TB_RSEQ + 4, uint32_t) == WF_TB_RSEQ_CPU_FAILED;
	return wf_syscall4(SYS_rseq, tp + WF_TB_RSEQ, WF_TB_RSEQ_LEN, 0,
	                   WF_TB_RSEQ_SIG) == -EBUSY;
}

/* glibc's stack fields of a pthread agree with what pthread_getattr_np
 * derives from them, and contain the thread's own stack.  guardsize and
 * reported_guardsize hold the same value on a freshly mapped stack, so this
 * cannot tell those two apart; workers get 0 in both, which makes a swap
 * harmless. */
static bool wf_tb_stack_fields(char *tp)
{
	char *block = WF_TB(tp, WF_TB_STACKBLOCK, char *);
	size_t size = WF_TB(tp, WF_TB_STACKBLOCK_SIZE, size_t);
	size_t guard = WF_TB(tp, WF_TB_GUARDSIZE, size_t);
	size_t rguard = WF_TB(tp, WF_TB_REPORTED_GUARDSIZE, size_t);
	pthread_attr_t a;
	void *addr = NULL;
	size_t asize = 0, aguard = 0;
	char *here = __builtin_frame_address(0);

	if (WF_LIBC(pthread_getattr_np)(WF_LIBC(pthread_self)(), &a) != 0)
		return false;
	WF_LIBC(pthread_attr_getstack)(&a, &addr, &asize);
	WF_LIBC(pthread_attr_getguardsize)(&a, &aguard);
	WF_LIBC(pthread_attr_destroy)(&a);
	return block && size > guard && (char *)addr == block + guard &&
	       asize == size - guard && aguard == rguard && tp > block &&
	       tp < block + size && here > block + guard && here < tp;
}

/* PTR_MANGLE on x86-64: xor with the guard, rotate left by 17.  setjmp
 * stores the caller's stack pointer mangled; demangled with the guard we
 * read, it must land next to our own frame. */
__attribute__((noinline)) static bool wf_tb_pointer_guard_ok(uintptr_t guard)
{
	jmp_buf jb;
	uintptr_t frame = (uintptr_t)__builtin_frame_address(0);
	uintptr_t m, sp;

	if (setjmp(jb))
		return false;
	m = (uintptr_t)jb[0].__jmpbuf[6];       /* JB_RSP */
	sp = ((m >> 17) | (m << 47)) ^ guard;
	return (sp > frame ? sp - frame : frame - sp) < 65536;
}

/* ---- the calling thread (the gate runs on the process's main thread) --- */

static const char *wf_tb_check_current(void)
{
	char *tp = wf_tb_self();
	ptrdiff_t off;
	void **resp;

	if (!wf_tb_self_refs(tp))
		return "thread pointer check";
	if (WF_TB(tp, WF_TB_TID, int) != wf_kt_gettid())
		return "tid offset check (gate thread)";
	wf_tb.gate_tp = tp;
	if (!wf_tb_list_linked(tp))
		return "list offset check";
	if (!wf_tb_robust_registered(tp))
		return "robust list check";
	if (!wf_tb_rseq_registered(tp))
		return "rseq registration check";
	if (WF_TB(tp, WF_TB_STACKBLOCK, char *) == NULL) {
		/* glibc's initial thread: no block, size = __libc_stack_end */
		if (wf_kt_gettid() != getpid() ||
		    WF_TB(tp, WF_TB_STACKBLOCK_SIZE, size_t) !=
		            (size_t)__libc_stack_end)
			return "stack fields check";
	} else if (!wf_tb_stack_fields(tp)) {
		return "stack fields check";
	}
	/* Both guards are random (AT_RANDOM), zero only by a 2^-56 chance:
	 * zero means we read the wrong word. */
	wf_tb.stack_guard = WF_TB(tp, WF_TB_STACK_GUARD, uintptr_t);
	wf_tb.pointer_guard = WF_TB(tp, WF_TB_POINTER_GUARD, uintptr_t);
	wf_tb.feature_1 = WF_TB(tp, WF_TB_FEATURE_1, uint32_t);
	if (wf_tb.stack_guard == 0)
		return "stack guard check";
	if (wf_tb.pointer_guard == 0 ||
	    !wf_tb_pointer_guard_ok(wf_tb.pointer_guard))
		return "pointer guard check";

	resp = wf_tb_sym("__resp", "GLIBC_PRIVATE");
	if (!resp)
		return "__resp symbol check";
	off = (char *)resp - tp;
	if (!wf_tb_in_tls(off, sizeof(void *)) || *resp != __res_state())
		return "resolver slot check";
	wf_tb.resp_off = off;
	/* The TLS image holds &_res; start_thread points a pthread's slot at
	 * its own pd->res.  So the gate thread holds one or the other, by
	 * what it is, and a new block starts with the image's. */
	wf_tb.resp_init = wf_tb_sym("_res", "GLIBC_2.2.5");
	if (!wf_tb.resp_init)
		return "_res symbol check";
	if (*resp != (WF_TB(tp, WF_TB_STACKBLOCK, char *) ? tp + WF_TB_RES
	                                                  : wf_tb.resp_init))
		return "resolver slot check (gate thread)";

	off = (char *)&errno - tp;
	if (!wf_tb_in_tls(off, sizeof(int)))
		return "errno slot check";
	wf_tb.errno_off = off;
	return NULL;
}

/* ---- the probe pthread ------------------------------------------------ */

static const char *wf_tb_probe_specific(char *tp)
{
	const uint64_t magic = 0x5745465450524f42ULL; /* "WEFTPROB" */
	pthread_key_t key;
	ptrdiff_t at = -1;
	bool ok = true;

	if (WF_TB(tp, WF_TB_SPECIFIC, char *) != tp + WF_TB_SPECIFIC_1ST)
		return "thread-specific data check";
	if (WF_LIBC(pthread_key_create)(&key, NULL) != 0)
		return "thread-specific data check";
	/* keys below 32 live in specific_1stblock: {seq, data} pairs */
	if (key < WF_TB_KEY_1ST_COUNT) {
		WF_LIBC(pthread_setspecific)(key, (void *)(uintptr_t)magic);
		ok = wf_tb_scan(tp, WF_TB_SIZE, 8, magic, 8, &at) == 1 &&
		     at == (ptrdiff_t)(WF_TB_SPECIFIC_1ST +
		                       key * WF_TB_KEY_DATA_SIZE + 8);
		WF_LIBC(pthread_setspecific)(key, NULL);
	}
	WF_LIBC(pthread_key_delete)(key);
	return ok ? NULL : "thread-specific data check";
}

static const char *wf_tb_probe_resolver(char *tp)
{
	char *res = tp + WF_TB_RES;
	ptrdiff_t at = 0;
	char *lo = tp - wf_tb_tls_span();

	if ((char *)__res_state() != res ||
	    WF_TB(tp, wf_tb.resp_off, char *) != res)
		return "resolver state check";
	if (wf_tb_scan(lo, wf_tb_tls_span(), 8, (uintptr_t)res, 8, &at) != 1 ||
	    lo + at != tp + wf_tb.resp_off)
		return "resolver slot check";
	return NULL;
}

/* The probe's tid is at WF_TB_TID and at no other offset that also holds
 * the gate thread's tid in its block: another word may equal the probe's
 * tid by coincidence (a size, a counter; seen about once in 1,000 starts
 * under load), but a second tid field would hold each thread's own. */
WF_NO_ASAN static bool wf_tb_tid_unique(const char *probe, uint32_t probe_tid)
{
	const char *gate = wf_tb.gate_tp;
	uint32_t gate_tid = (uint32_t)WF_TB(gate, WF_TB_TID, int);
	bool found = false;

	for (size_t i = 0; i + 4 <= WF_TB_SIZE; i += 4) {
		if (*(const volatile uint32_t *)(probe + i) != probe_tid)
			continue;
		if (i == WF_TB_TID)
			found = true;
		else if (*(const volatile uint32_t *)(gate + i) == gate_tid)
			return false;
	}
	return found;
}

static const char *wf_tb_probe_checks(void)
{
	char *tp = wf_tb_self();

	if (!wf_tb_self_refs(tp))
		return "thread pointer check";
	if (WF_TB(tp, WF_TB_MULTIPLE_THREADS, int) != 1)
		return "multiple_threads check";
	/* feature_1 (CET) is only compared: it is 0 on every thread unless
	 * the kernel enabled CET for the process, which kernels have never done
	 * with glibc 2.36's interface.  Its place, like the canary's at 0x28
	 * and the pointer guard's at 0x30, is fixed by the x86-64 ABI (0x48);
	 * the worker gets main's value as pthread_create would give it. */
	if (WF_TB(tp, WF_TB_STACK_GUARD, uintptr_t) != wf_tb.stack_guard ||
	    WF_TB(tp, WF_TB_POINTER_GUARD, uintptr_t) != wf_tb.pointer_guard ||
	    WF_TB(tp, WF_TB_FEATURE_1, uint32_t) != wf_tb.feature_1)
		return "stack/pointer guard copy check";
	if (!wf_tb.gate_tp || !wf_tb_tid_unique(tp, (uint32_t)wf_kt_gettid()))
		return "tid offset check (probe scan)";
	if (!wf_tb_list_linked(tp))
		return "list offset check";
	if (!wf_tb_robust_registered(tp) ||
	    WF_TB(tp, WF_TB_ROBUST_HEAD, char *) != tp + WF_TB_ROBUST_HEAD ||
	    WF_TB(tp, WF_TB_ROBUST_HEAD + 16, void *) != NULL ||
	    WF_TB(tp, WF_TB_ROBUST_PREV, char *) != tp + WF_TB_ROBUST_HEAD)
		return "robust list check";
	if (!wf_tb_rseq_registered(tp))
		return "rseq registration check";
	if (!wf_tb_stack_fields(tp))
		return "stack fields check";
	if ((char *)&errno - tp != wf_tb.errno_off)
		return "errno slot check";
	/* A pthread on a stack glibc made: not a user stack, started. */
	if (WF_TB(tp, WF_TB_USER_STACK, bool) != false ||
	    WF_TB(tp, WF_TB_SETXID_FUTEX, int) != 0 ||
	    WF_TB(tp, WF_TB_CANCELHANDLING, int) != 0)
		return "user_stack/setxid_futex check";
	const char *f = wf_tb_check_lists(tp);
	if (f)
		return f;
	f = wf_tb_probe_specific(tp);
	return f ? f : wf_tb_probe_resolver(tp);
}

static void *wf_tb_probe_main(void *out)
{
	*(const char **)out = wf_tb_probe_checks();
	return NULL;
}

/* Create, check from inside, join: the one throwaway pthread. */
static const char *wf_tb_run_probe(void)
{
	const char *failed = "probe pthread check";
	pthread_attr_t a;
	pthread_t t;
	int e;

	if (WF_LIBC(pthread_attr_init)(&a) != 0)
		return failed;
	WF_LIBC(pthread_attr_setstacksize)(&a, 256 * 1024);
	WF_LIBC(pthread_attr_setguardsize)(&a, wf_pagesize());
	e = WF_LIBC(pthread_create)(&t, &a, wf_tb_probe_main, &failed);
	WF_LIBC(pthread_attr_destroy)(&a);
	if (e != 0 || WF_LIBC(pthread_join)(t, NULL) != 0)
		return "probe pthread check";
	return failed;
}

int wf_tb_validate(const char **failed)
{
	const bool *single = wf_tb_sym("__libc_single_threaded", "GLIBC_2.32");
	char *tp = wf_tb_self();
	const char *f;

	f = wf_tb_check_version();
	if (!f)
		f = wf_tb_check_symbols();
	if (!f && !single)
		f = "__libc_single_threaded symbol check";
	if (!f)
		f = wf_tb_check_descriptors();
	if (!f)
		f = wf_tb_check_rtld();
	if (!f)
		f = wf_tb_check_static_tls();
	if (!f)
		f = wf_tb_check_current();
	/* Single-threaded so far: the locking switch must still be off. */
	if (!f && *single && WF_TB(tp, WF_TB_MULTIPLE_THREADS, int) != 0)
		f = "multiple_threads check";
	if (!f)
		f = wf_tb_run_probe();
	/* pthread_create turned it on for the creator, for good. */
	if (!f && (*single || WF_TB(tp, WF_TB_MULTIPLE_THREADS, int) != 1))
		f = "multiple_threads check";
	if (!f)
		f = wf_tb_check_lists(tp);
	if (f) {
		*failed = f;
		return EAGAIN;
	}
	wf_tb.valid = true;
	return 0;
}

/* ---- building a worker's block ---------------------------------------- */

/* What _dl_allocate_tls gave: zeroed struct pthread, TLS images copied
 * (the resolver slot holds the image's &_res).  NULL or the failed check. */
static const char *wf_tb_fresh_block(char *pd)
{
	if ((uintptr_t)pd & (wf_tb.static_align - 1))
		return "thread block alignment";
	if (!WF_TB(pd, WF_TB_DTV, void *))
		return "thread block dtv";
	if (WF_TB(pd, WF_TB_TID, int) != 0)
		return "thread block zeroed tid";
	if (WF_TB(pd, wf_tb.resp_off, void *) != wf_tb.resp_init)
		return "thread block resolver slot";
	return NULL;
}

int wf_tb_create(char *stack_hi, char **pd_out, const char **why)
{
	char *pd;

	*why = "thread block gate";
	if (!wf_tb.valid)
		return EAGAIN;
	*why = "thread block allocation";
	pd = wf_tb.allocate_tls(NULL);
	if (!pd)
		return EAGAIN;
	if ((*why = wf_tb_fresh_block(pd))) {
		wf_tb.deallocate_tls(pd, true);
		return EAGAIN;
	}
	WF_TB(pd, WF_TB_TCB, char *) = pd;
	WF_TB(pd, WF_TB_SELF, char *) = pd;
	WF_TB(pd, WF_TB_MULTIPLE_THREADS, int) = 1;
	/* The same guards as every other thread: a green thread that migrates
	 * carries canaries and mangled pointers from one worker to another. */
	WF_TB(pd, WF_TB_STACK_GUARD, uintptr_t) = wf_tb.stack_guard;
	WF_TB(pd, WF_TB_POINTER_GUARD, uintptr_t) = wf_tb.pointer_guard;
	WF_TB(pd, WF_TB_FEATURE_1, uint32_t) = wf_tb.feature_1;
	/* A one-element list until wf_tb_list_join; as pthread_create marks
	 * a thread on a stack of its caller's: glibc never frees our stack,
	 * and a set*id broadcast waits until the thread has started. */
	WF_TB(pd, WF_TB_LIST, char *) = pd + WF_TB_LIST;
	WF_TB(pd, WF_TB_LIST + 8, char *) = pd + WF_TB_LIST;
	WF_TB(pd, WF_TB_USER_STACK, bool) = true;
	WF_TB(pd, WF_TB_SETXID_FUTEX, int) = -1;
	WF_TB(pd, WF_TB_ROBUST_PREV, char *) = pd + WF_TB_ROBUST_HEAD;
	WF_TB(pd, WF_TB_ROBUST_HEAD, char *) = pd + WF_TB_ROBUST_HEAD;
	WF_TB(pd, WF_TB_ROBUST_HEAD + 8, long) = WF_TB_ROBUST_FUTEX_OFF;
	WF_TB(pd, WF_TB_SPECIFIC, char *) = pd + WF_TB_SPECIFIC_1ST;
	/* The recorded stack: the top WF_KT_RECORDED_STACK bytes of the real
	 * one, no guard (ours is further down).  libc's alloca cutoff is a
	 * quarter of the size; pthread_getattr_np reports this range. */
	WF_TB(pd, WF_TB_STACKBLOCK, char *) = stack_hi - WF_KT_RECORDED_STACK;
	WF_TB(pd, WF_TB_STACKBLOCK_SIZE, size_t) = WF_KT_RECORDED_STACK;
	WF_TB(pd, WF_TB_GUARDSIZE, size_t) = 0;
	WF_TB(pd, WF_TB_REPORTED_GUARDSIZE, size_t) = 0;
	/* What start_thread does with `__resp = &pd->res`. */
	WF_TB(pd, wf_tb.resp_off, char *) = pd + WF_TB_RES;
	*pd_out = pd;
	return 0;
}

void wf_tb_destroy(char *pd)
{
	wf_tb.deallocate_tls(pd, true);
}

/* Runs on the new worker before anything else of libc, as start_thread
 * does: rseq (sched_getcpu reads the area), robust futexes, ctype tables
 * (uselocale fills the per-thread ctype pointers; isdigit and printf's
 * number parsing crash without them). */
void wf_tb_enter(char *pd)
{
	bool rseq_ok = false;

	if (wf_tb.rseq_size)
		rseq_ok = wf_syscall4(SYS_rseq, pd + WF_TB_RSEQ, WF_TB_RSEQ_LEN,
		                      0, WF_TB_RSEQ_SIG) == 0;
	if (!rseq_ok)
		WF_TB(pd, WF_TB_RSEQ + 4, uint32_t) = WF_TB_RSEQ_CPU_FAILED;
	wf_syscall2(SYS_set_robust_list, pd + WF_TB_ROBUST_HEAD,
	            WF_TB_ROBUST_HEAD_SIZE);
	uselocale(LC_GLOBAL_LOCALE);
}

/*
 * The initial thread's recorded stack size.  glibc reads a thread's
 * stackblock_size in __libc_alloca_cutoff: libc functions (printf with
 * positional arguments, the resolver, getaddrinfo, nss, glob, ...) alloca
 * up to min(64 KiB, stackblock_size / 4) and use malloc beyond.  glibc sets
 * it to __libc_stack_end for the initial thread, which makes the cutoff
 * 64 KiB: far more than a green stack can take.  Recording 16 KiB makes it
 * 4 KiB.
 *
 * Safe because, for the initial thread (stackblock == NULL), the only other
 * readers are the cancellation unwinder and __pthread_cleanup_upto (on
 * longjmp), which use stackblock + stackblock_size as an "adjustment" that
 * only shifts the address comparisons they make between stack addresses;
 * any value below every stack address preserves their order, and 16 KiB
 * is.  pthread_getattr_np tests stackblock, which stays NULL, and keeps
 * reading /proc/self/maps.  A glibc pthread (stackblock != NULL) is left
 * alone: glibc frees its stack with these fields.
 */
bool wf_tb_record_main_stack(void)
{
	char *tp = wf_tb_self();

	if (!wf_tb.valid || WF_TB(tp, WF_TB_STACKBLOCK, void *) != NULL ||
	    wf_kt_gettid() != getpid())
		return false;
	WF_TB(tp, WF_TB_STACKBLOCK_SIZE, size_t) = WF_KT_RECORDED_STACK;
	return true;
}

#else /* !__x86_64__ */

/*
 * Other ISAs: the gate fails closed, so `auto` uses pthread workers and
 * WEFT_KTHREADS=clone is an error.  On AArch64 glibc lays the block out
 * differently (TLS variant I: the thread pointer points just past struct
 * pthread, at a 16-byte tcbhead {dtv, private}; the stack and pointer
 * guards are globals, not block fields; PTR_MANGLE has no rotation; RSEQ_SIG
 * differs), so the recipe would need its own table and cross-checks, and
 * every fact under it was measured on x86-64 hardware; the only AArch64
 * that CI has is qemu-user, which has no rseq and emulates signals, so it
 * could not validate one.  docs/design.md §4, "The clone gate".
 */

char *wf_tb_self(void)
{
	return NULL;
}

ptrdiff_t wf_tb_errno_offset(void)
{
	return 0;
}

int wf_tb_validate(const char **failed)
{
	*failed = "architecture check (the thread block is validated on x86-64 only)";
	return EAGAIN;
}

int wf_tb_create(char *stack_hi, char **pd_out, const char **why)
{
	(void)stack_hi;
	(void)pd_out;
	*why = "architecture";
	return EAGAIN;
}

void wf_tb_destroy(char *pd)
{
	(void)pd;
}

void wf_tb_enter(char *pd)
{
	(void)pd;
}

void wf_tb_list_join(char *pd)
{
	(void)pd;
}

void wf_tb_list_leave(char *pd)
{
	(void)pd;
}

void wf_tb_started(char *pd)
{
	(void)pd;
}

bool wf_tb_listed(char *pd)
{
	(void)pd;
	return false;
}

bool wf_tb_record_main_stack(void)
{
	return false;
}

#endif
