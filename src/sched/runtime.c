/*
 * runtime.c — bringing weft up: configuration, the worker bank, and turning
 * the initializing caller into the green thread "main" on worker 0.
 *
 * The kernel thread that initializes weft becomes worker 0, and the code it
 * was running simply continues as the green thread "main", on the stack it
 * already has.  Worker 0's scheduler (idle) context gets a stack of its own;
 * the other workers run their scheduler on their kernel stacks.  Workers
 * live as long as the process: glibc cannot release a hand-made thread
 * block, and a pool that never shrinks keeps the wake-up path simple.  An
 * initializer that is not the process's initial thread may end before the
 * process: it becomes a worker that runs main only, and the workers are
 * all weft's (main_kthread.c).
 *
 * Rejected: running "main" on a fresh green stack and parking the original
 * thread (the program's main() would have to return through weft), and
 * starting workers lazily on demand (the first parallel section would pay
 * for thread creation).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <sys/prctl.h>
#include "sched_internal.h"
#include "cxx_state.h"
#include "trace.h"
#include "../kthreads/kthread.h"
#include "../kthreads/libc_real.h"

struct wf_runtime wf_rt;

/* glibc: the initial thread's stack pointer when the program started. */
extern void *__libc_stack_end;

/* Worker 0's scheduler stack (a weft stack; the other workers run their
 * scheduler on their kernel stacks). */
#define WF_IDLE_STACK (64 * 1024)

/* Kernel stacks of workers 1..n-1.  glibc lets itself alloca a quarter of
 * the stack size it records for a kernel thread, on whatever green stack
 * runs there: keep it at WF_KT_RECORDED_STACK (libc allocas <= 4 KiB) so a
 * WEFT_STACK_MIN stack survives libc.  The idle loop needs little; ASan's
 * frames need more. */
#ifdef WF_ASAN
#define WF_WORKER_KSTACK (64 * 1024)
#else
#define WF_WORKER_KSTACK WF_KT_RECORDED_STACK
#endif

static void wf_worker_init(struct wf_worker *w, int index)
{
	memset(w, 0, sizeof *w);
	w->index = index;
	atomic_store(&w->next_deadline, UINT64_MAX);
}

/* An idle TCB for worker w.  Its context is filled by the first switch away
 * from it (workers >= 1) or made on a stack of its own (worker 0). */
static struct wf_thread *wf_idle_tcb(struct wf_worker *w)
{
	struct wf_thread *t = wf_tcb_alloc(NULL);
	if (!t)
		return NULL;
	t->kind = WF_KIND_IDLE;
	t->worker = w;
	snprintf(t->name, sizeof t->name, "idle/%d", w->index);
	return t;
}

/* What a worker learns about its own kernel thread, on it, once it is set
 * up (wf_kt_worker_setup installed the alternate signal stack). */
void wf_worker_kthread_facts(struct wf_worker *w)
{
	wf_kt_tls_span(&w->tls_lo, &w->tls_hi);
	sigaltstack(NULL, &w->altstack);
	wf_cxx_worker(w);
}

static void wf_worker_kthread_main(void *arg)
{
	struct wf_worker *w = arg;
	wf_tls_worker = w;
	w->errno_loc = &errno;   /* on w's own kernel thread, before any switch or tick */
	wf_kt_worker_setup();
	/* A kernel thread starts with its creator's signal mask: the
	 * initializing thread's for the first workers, but the monitor's
	 * (every signal blocked) for a stand-in it starts, which would then
	 * never take a tick.  Every worker takes the first workers' mask. */
	WF_LIBC(pthread_sigmask)(SIG_SETMASK, &wf_rt.worker_mask, NULL);
	wf_worker_kthread_facts(w);
	wf_sig_worker_start(w);
	/* Named for ps -L, top -H and gdb: weft-w<index> (the kernel keeps
	 * 15 bytes). */
	char name[16];
	snprintf(name, sizeof name, "weft-w%d", w->index);
	prctl(PR_SET_NAME, name);
	atomic_store_explicit(&w->tid, wf_kt_gettid(), memory_order_release);
	/* Its timer is made from its tid, by whoever started it: a thread it
	 * ran before that would arm a timer that does not exist yet, and
	 * timer_armed would say it ticks when it never does. */
	unsigned spins = 0;
	while (!atomic_load_explicit(&w->go, memory_order_acquire))
		wf_spin_backoff(&spins);
	w->current = w->idle;
	atomic_store(&w->idle->on_cpu, 1);
	w->idle->state = WF_RUNNING;
	wf_idle_main(w);
}

/* Worker 0's scheduler context starts here, on its own stack. */
static void wf_worker0_idle_entry(void *transfer, void *arg)
{
	(void)arg;
	struct wf_worker *w = transfer;
	wf_context_entered(w, w->idle);
	wf_idle_main(w);
}

int wf_make_main(struct wf_worker *w0, void (*idle_entry)(void *transfer, void *arg))
{
	struct wf_thread *m = wf_tcb_alloc(NULL);
	if (!m)
		return EAGAIN;
	m->kind = WF_KIND_MAIN;
	m->state = WF_RUNNING;
	m->worker = w0;
	atomic_store(&m->on_cpu, 1);
	strcpy(m->name, "main");
	/* main keeps the stack it has: its bounds, for rebasing its frames
	 * when it moves (migrate.c); never freed (user). */
	void *lo;
	size_t size;
	if (wf_kt_own_stack(&lo, &size) == 0) {
		m->stack.lo = lo;
		m->stack.hi = (char *)lo + size;
	}
	/* For the initial thread glibc finds the stack in /proc/self/maps,
	 * which can fail (qemu-user with 64 KiB pages answers ENOENT); its
	 * frames all lie below where the stack began, __libc_stack_end.
	 * Without bounds main's frames were never rebased when it moved: an
	 * errno address kept across a weft call named the old worker's. */
	if (!m->stack.hi && wf_kt_gettid() == getpid()) {
		struct rlimit rl;
		size = getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
		       ? (size_t)rl.rlim_cur : (size_t)8 << 20;
		m->stack.hi = __libc_stack_end;
		m->stack.lo = (char *)__libc_stack_end - size;
	}
	m->stack.user = 1;
	wf_rt.main = m;
	w0->current = m;

	struct wf_thread *idle = w0->idle;
	if (wf_stack_alloc(NULL, WF_IDLE_STACK, &idle->stack))
		return EAGAIN;
	wf_tcb_first_context(idle, idle_entry, NULL);
	return 0;
}

/* A new worker, the monitor's stand-in for a blocked one: started ACTIVE,
 * published once its kernel thread and its timer exist.  Only the monitor
 * calls this, so nothing races for the slot. */
int wf_worker_add(struct wf_worker **out)
{
	int k = atomic_load_explicit(&wf_rt.nkthreads, memory_order_relaxed);
	if (k >= WF_MAX_KTHREADS)
		return EAGAIN;
	struct wf_worker *w = &wf_rt.workers[k];
	wf_worker_init(w, k);
	if (!(w->idle = wf_idle_tcb(w)))
		return EAGAIN;
	pid_t tid;
	if (wf_kt_spawn(wf_worker_kthread_main, w, WF_WORKER_KSTACK, &tid))
		return EAGAIN;
	unsigned spins = 0;
	while (!atomic_load_explicit(&w->tid, memory_order_acquire))
		wf_spin_backoff(&spins);
	/* Without a timer it still runs, untimed: a worker all the same.
	 * Published before it may run anything, so that a green thread it
	 * runs finds its own index below nkthreads (weft_stats_get), and the
	 * slot is never handed out twice.  seq_cst, and the signal hook's
	 * flag before it runs: Dekker with wf_flag_raise (signals.c). */
	(void)wf_preempt_timer_create(w);
	atomic_store(&wf_rt.nkthreads, k + 1);
	wf_sig_worker_added(w);
	atomic_store_explicit(&w->go, 1, memory_order_release);
	*out = w;
	return 0;
}

/* The workers, and the caller as main.  The caller becomes worker 0 when
 * it is the process's initial thread; otherwise it may end before the
 * process does, so every worker is a kernel thread of weft's own and the
 * caller becomes worker n, which runs main only (main_kthread.c). */
static int wf_start_workers(void)
{
	int n = wf_rt.cfg.workers;
	bool initial = wf_runtime_on_initial_thread();
	int own = initial ? 0 : n;            /* the caller's worker */
	int k = initial ? n : n + 1;          /* kernel threads at start */
	/* Room for the spares too; only the pages of workers in use are
	 * touched. */
	struct wf_worker *ws = aligned_alloc(WF_CACHELINE, sizeof *ws * WF_MAX_KTHREADS);
	if (!ws)
		return EAGAIN;
	for (int i = 0; i < k; i++) {
		wf_worker_init(&ws[i], i);
		/* No green thread exists before weft_init returns, so the first
		 * workers may run before their timers are made. */
		atomic_store(&ws[i].go, 1);
		if (!(ws[i].idle = wf_idle_tcb(&ws[i])))
			return EAGAIN;
	}
	wf_rt.workers = ws;
	wf_rt.nworkers = n;
	WF_LIBC(pthread_sigmask)(SIG_SETMASK, NULL, &wf_rt.worker_mask);
	atomic_store(&wf_rt.nactive, n);

	/* The default signal mask of a green thread is this one too
	 * (signals.c). */
	wf_sig_init(wf_rt.cfg.preempt_signal, wf_rt.cfg.dump_signal);
	/* Interruptible parks may skip a fence only while membarrier can make
	 * up for it (park.c). */
	if (!wf_barrier_all())
		atomic_store(&wf_intr_used, 2);
	struct wf_worker *me = &ws[own];
	wf_tls_worker = me;
	me->errno_loc = &errno;   /* on its own kernel thread, before any switch or tick */
	me->tid = wf_kt_gettid();
	int e = initial ? wf_make_main(me, wf_worker0_idle_entry) : wf_main_kthread_start(me);
	if (e)
		return e;
	atomic_store_explicit(&wf_rt.nkthreads, k, memory_order_release);
	if ((e = wf_kt_worker_setup()))
		return EAGAIN;
	wf_worker_kthread_facts(me);
	if ((e = wf_overflow_install()))
		return EAGAIN;
	for (int i = 0; i < n; i++) {
		pid_t tid;
		if (i != own &&
		    wf_kt_spawn(wf_worker_kthread_main, &ws[i], WF_WORKER_KSTACK, &tid))
			return EAGAIN;
	}
	/* Timers are aimed at kernel thread ids: wait until every worker is up
	 * and has published its own. */
	for (int i = 0; i < n; i++) {
		unsigned spins = 0;
		while (!atomic_load_explicit(&ws[i].tid, memory_order_acquire))
			wf_spin_backoff(&spins);
	}
	return wf_preempt_init() ? EAGAIN : 0;
}

/* In a child of fork(): the trace file is the parent's (fork.c). */
static bool wf_rt_child;
/* In a child of fork() whose forking kernel thread was not the process's
 * initial thread: this one (the child's only thread, so its tid is the
 * pid) runs on a pthread's stack all the same. */
static bool wf_rt_leader_not_initial;

bool wf_runtime_on_initial_thread(void)
{
	return wf_kt_gettid() == getpid() && !wf_rt_leader_not_initial;
}

static int wf_runtime_init(void)
{
	int e = wf_config_read(&wf_rt.cfg);
	if (e)
		return e;
	if (wf_rt_child)
		wf_rt.cfg.trace_path = NULL;
	wf_stack_set_warm_max(wf_rt.cfg.stack_cache);   /* a child's: the same */
	enum wf_kt_backend b;
	if ((e = wf_kt_select(wf_rt.cfg.kthreads_mode, &b)))
		return e;
	wf_cxx_init();
	if ((e = wf_start_workers()))
		return e;
	if ((e = wf_trace_init()))
		return e;
	if ((e = wf_monitor_start()))
		return e;
	wf_signals_adopt();
	wf_fork_install();
	return wf_dump_signal_install();
}

/*
 * A child of fork() (fork.c), on its only thread, before fork returns
 * there: the other threads and workers do not exist.  The forking green
 * thread becomes "main" on a fresh worker (this kernel thread, with a new
 * scheduler context), every other TCB is reclaimed, and the queues, counts
 * and timers start empty.  The other workers, the timers and the monitor
 * are started by the first wf_runtime_ensure (wf_runtime_restart): a child
 * that only execs pays for none of them.  The fresh worker is worker 0,
 * except when the forker is main on a kernel thread that runs main only
 * (main_kthread.c): main's stack is then a pthread's, holding that kernel
 * thread's own descriptor and TLS, and main must not move in the child
 * either, so this kernel thread is again the one that runs main only.  A
 * child forked from a kernel thread that is not a worker has no green
 * thread: its next weft call initializes weft afresh, its caller becoming
 * "main" (on a thread of its own if the forker was not the process's
 * initial thread, which `initial` says).
 */
void wf_runtime_forked_child(struct wf_thread *self, bool initial)
{
	wf_rt_child = true;
	wf_rt_leader_not_initial = !initial;
	bool pinned = self && wf_worker_main_only(self->worker);
	int n = wf_rt.cfg.workers;
	wf_trace_forked_child();
	wf_monitor_forked_child();
	wf_poller_forked_child();
	wf_sig_forked_child(self);
	/* A forker that is no worker keeps its foreign TCB (foreign.c): its
	 * kernel thread still names it, and releases it when it exits. */
	wf_tcb_forked_child(self ? self : WF_TLS_LOAD(wf_tls_foreign));
	for (int i = 0, k = wf_nkthreads(); i < k; i++)
		wf_worker_init(&wf_rt.workers[i], i);
	wf_rt.main_kt = NULL;
	wf_rt.gq_lock = (wf_spin_t)WF_SPIN_INIT;
	wf_rt.gq_head = wf_rt.gq_tail = NULL;
	atomic_store(&wf_rt.gq_len, 0);
	atomic_store(&wf_rt.nsleeping, 0);
	atomic_store(&wf_rt.main_waiting, 0);
	atomic_store(&wf_rt.created_foreign, 0);
	atomic_store(&wf_rt.retakes, 0);
	/* Idle spinners and a create's wake-up under way were other workers'. */
	atomic_store(&wf_rt.nspinning, 0);
	atomic_store(&wf_rt.waking, 0);
	if (!self) {
		wf_tls_worker = NULL;
		wf_rt.main = NULL;
		atomic_store(&wf_rt.nkthreads, 0);
		atomic_store(&wf_rt.state, WF_RT_NONE);
		return;
	}
	int own = pinned ? n : 0;
	struct wf_worker *me = &wf_rt.workers[own];
	wf_worker_init(me, own);   /* beyond the parent's count, maybe */
	wf_tls_worker = me;
	me->errno_loc = &errno;
	me->tid = wf_kt_gettid();
	atomic_store(&me->go, 1);
	wf_worker_kthread_facts(me);
	me->current = self;
	me->kmask_x = self->sigmask_x;   /* the kernel mask is the forker's */
	if (atomic_load(&wf_sig_active))
		atomic_fetch_or(&me->resume, WF_RESUME_SIGNALS);
	self->kind = WF_KIND_MAIN;
	self->worker = me;
	self->joiner = NULL;
	self->joined = 0;
	self->detached = 0;
	self->state = WF_RUNNING;
	wf_rt.main = self;
	wf_rt.nworkers = pinned ? 0 : 1;
	atomic_store(&wf_rt.nactive, pinned ? 0 : 1);
	atomic_store(&wf_rt.nkthreads, own + 1);
	struct wf_thread *idle = wf_idle_tcb(me);
	if (!idle || wf_stack_alloc(NULL, WF_IDLE_STACK, &idle->stack)) {
		wf_rt.init_error = EAGAIN;
		atomic_store(&wf_rt.state, WF_RT_FAILED);
		return;
	}
	me->idle = idle;
	if (pinned) {
		atomic_store(&me->mstate, WF_WS_MAIN);
		wf_rt.main_kt = me;
		wf_tcb_first_context(idle, wf_main_kthread_entry, NULL);
	} else {
		wf_tcb_first_context(idle, wf_worker0_idle_entry, NULL);
	}
	atomic_store(&wf_rt.state, WF_RT_FORKED);
}

/* The rest of a child's runtime (see wf_runtime_forked_child): the workers
 * the forker's is not, their timers, the monitor. */
static int wf_runtime_restart(void)
{
	int n = wf_rt.cfg.workers;
	int own = wf_rt.main_kt ? n : 0;
	bool sig = atomic_load(&wf_sig_active);
	for (int i = 0; i < n; i++) {
		struct wf_worker *w = &wf_rt.workers[i];
		if (i == own)
			continue;
		wf_worker_init(w, i);
		atomic_store(&w->go, 1);   /* no thread runs until this returns */
		if (!(w->idle = wf_idle_tcb(w)))
			return EAGAIN;
		if (sig)
			atomic_fetch_or(&w->resume, WF_RESUME_SIGNALS);
	}
	wf_rt.nworkers = n;
	atomic_store(&wf_rt.nactive, n);
	atomic_store_explicit(&wf_rt.nkthreads, wf_rt.main_kt ? n + 1 : n,
	                      memory_order_release);
	for (int i = 0; i < n; i++) {
		pid_t tid;
		if (i != own &&
		    wf_kt_spawn(wf_worker_kthread_main, &wf_rt.workers[i], WF_WORKER_KSTACK, &tid))
			return EAGAIN;
	}
	for (int i = 0; i < n; i++) {
		unsigned spins = 0;
		while (!atomic_load_explicit(&wf_rt.workers[i].tid, memory_order_acquire))
			wf_spin_backoff(&spins);
	}
	for (int i = 0; i < n; i++)
		if (wf_preempt_timer_create(&wf_rt.workers[i]))
			return EAGAIN;
	if (wf_monitor_start())
		return EAGAIN;
	return wf_dump_signal_install();
}

int wf_runtime_ensure(void)
{
	int s = atomic_load_explicit(&wf_rt.state, memory_order_acquire);
	if (wf_likely(s == WF_RT_READY))
		return 0;
	if (s == WF_RT_FAILED)
		return wf_rt.init_error;
	int expected = WF_RT_FORKED;
	if (s == WF_RT_FORKED &&
	    atomic_compare_exchange_strong(&wf_rt.state, &expected, WF_RT_INITIALIZING)) {
		int e = wf_runtime_restart();
		wf_rt.init_error = e;
		atomic_store_explicit(&wf_rt.state, e ? WF_RT_FAILED : WF_RT_READY,
		                      memory_order_release);
		return e;
	}
	expected = WF_RT_NONE;
	if (atomic_compare_exchange_strong(&wf_rt.state, &expected, WF_RT_INITIALIZING)) {
		int e = wf_runtime_init();
		wf_rt.init_error = e;
		atomic_store_explicit(&wf_rt.state, e ? WF_RT_FAILED : WF_RT_READY,
		                      memory_order_release);
		return e;
	}
	/* Another kernel thread is initializing: wait for it. */
	unsigned spins = 0;
	while ((s = atomic_load_explicit(&wf_rt.state, memory_order_acquire)) == WF_RT_INITIALIZING)
		wf_spin_backoff(&spins);
	return s == WF_RT_READY ? 0 : wf_rt.init_error;
}

int weft_init(void) { return wf_runtime_ensure(); }

int weft_workers(void)
{
	return wf_runtime_ensure() ? 0 : wf_rt.nworkers;
}

int weft_worker_self(void)
{
	struct wf_worker *w = wf_worker_self();
	return w ? w->index : -1;
}
