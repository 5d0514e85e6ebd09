/*
 * test_memory.c — how stacks and TCBs flow between workers and go back to
 * the kernel (docs/design.md, "Stacks and overflow" and "Threads and their
 * control blocks"):
 *  - stacks freed on another worker than the one that creates come back
 *    to it warm, in batches, instead of being carved anew;
 *  - the bound on warm unused stacks (WEFT_STACK_CACHE) holds while
 *    threads are created on one worker and finish on the other;
 *  - after a burst of threads alive at once, an idle process gives their
 *    stacks and TCBs back;
 *  - handles of threads whose TCB memory was given back stay stale
 *    (ESRCH), and the slots are handed out again, also where the kernel
 *    would not take the memory back (locked pages);
 *  - a fork-join tree keeps about the depth-first number of threads
 *    unfinished (each with a stack) on 1, 2 and 8 workers (docs/design.md,
 *    "Run queues": a worker resumes its newest continuation first).
 * Nothing here judges time: the scavenger runs on its own period, so the
 * tests that wait for it poll (with a bound far above that period, only so
 * that a bug fails rather than hangs).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "weft_check.h"
#include "proc_memory.h"
#include "test_env.h"
#include "context/stack.h"
#include "sched/sched_internal.h"   /* white-box: the TCB chunk counter */

#ifdef __SANITIZE_ADDRESS__
#define BURST 20000    /* ASan's shadow and fake frames make threads dearer */
#else
#define BURST 100000
#endif
/* With mprotect guards (no working MADV_GUARD_INSTALL: Linux before 6.13,
 * or qemu-user, which accepts it and does nothing) each stack costs two
 * mappings, which caps a process near 32,000 stacks under the default
 * vm.max_map_count (docs/design.md, "Stacks and overflow"). */
#define BURST_MPROTECT 20000

/* Polls give up after this (the scavenger acts within a second). */
#define PATIENCE_NS (30 * 1000000000ull)

static void start(const char *workers, const char *cache)
{
	setenv("WEFT_WORKERS", workers, 1);
	unsetenv("WEFT_STACK_SIZE");
	unsetenv("WEFT_QUANTUM_US");
	if (cache)
		setenv("WEFT_STACK_CACHE", cache, 1);
	else
		unsetenv("WEFT_STACK_CACHE");
	ck_assert_int_eq(weft_init(), 0);
}

static struct wf_stack_stats stack_stats(void)
{
	struct wf_stack_stats st;
	wf_stack_stats_get(&st);
	return st;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- threads that finish on the other worker --------------------------- */

static _Atomic long crossed;

/* Yield until running on a worker other than the creator's (arg), so that
 * the stack is freed there: the other worker, idle, steals yielding
 * threads from the creator's queue.  A bounded number of times: a thread
 * left alone on a worker while the other is busy has nothing to yield to
 * and nobody to take it. */
static void *move_then_finish(void *arg)
{
	int creator = (int)(intptr_t)arg;
	for (int i = 0; i < 20000 && weft_worker_self() == creator; i++)
		ck_assert_int_eq(weft_yield(), 0);
	if (weft_worker_self() != creator)
		atomic_fetch_add(&crossed, 1);
	return NULL;
}

/* One round: create k threads on the calling worker, each finishing on
 * the other one, and join them. */
static void round_across(int k)
{
	weft_t t[512];
	ck_assert_int_le(k, 512);
	for (int i = 0; i < k; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, move_then_finish,
		                             (void *)(intptr_t)weft_worker_self()), 0);
	for (int i = 0; i < k; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
}

/* Stacks freed on one worker are taken back warm by the other: once the
 * caches are primed, creating costs (almost) no stack that was not warm,
 * although every stack is freed on the other worker than its creator's.
 * With per-worker caches alone, nearly every create took a cold stack and
 * nearly every exit released one. */
START_TEST(t_stacks_freed_on_another_worker_are_reused)
{
	enum { K = 64, WARMUP = 5, ROUNDS = 200 };
	start("2", NULL);
	for (int r = 0; r < WARMUP; r++)
		round_across(K);
	struct wf_stack_stats a = stack_stats();
	long c0 = atomic_load(&crossed);
	for (int r = 0; r < ROUNDS; r++)
		round_across(K);
	struct wf_stack_stats b = stack_stats();
	long creates = (long)K * ROUNDS;
	long moved = atomic_load(&crossed) - c0;
	printf("%ld of %ld threads finished on the other worker; %zu stacks not warm, %zu released\n", moved, creates, b.fresh - a.fresh, b.released - a.released);
	ck_assert_msg(moved >= creates / 2, "only %ld of %ld threads finished on the "
	              "other worker", moved, creates);
	/* The scavenger may trim a batch that sat unused for a whole period
	 * between two rounds; a handful, not one per create. */
	ck_assert_msg(b.fresh - a.fresh <= (size_t)creates / 20,
	              "%zu of %ld stacks were not warm", b.fresh - a.fresh, creates);
	ck_assert_uint_le(b.released - a.released, (size_t)creates / 20);
}
END_TEST

/* The shared tier never holds more than WEFT_STACK_CACHE, however unevenly
 * stacks flow; what does not fit is given back. */
START_TEST(t_warm_bound_holds_under_imbalance)
{
	enum { ROUNDS = 40 };
	const size_t bound = 1 << 20;   /* 16 stacks of 64 KiB */
	start("2", "1M");
	ck_assert_uint_eq(wf_stack_warm_max(), bound);
	size_t seen = 0;
	for (int r = 0; r < ROUNDS; r++) {
		round_across(r % 2 ? 300 : 40);
		size_t w = stack_stats().warm_bytes;
		ck_assert_uint_le(w, bound);
		if (w > seen)
			seen = w;
	}
	struct wf_stack_stats st = stack_stats();
	ck_assert_uint_gt(seen, 0);                      /* the tier was used */
	ck_assert_uint_gt(st.released + st.releasing, 0);  /* and overflowed */
	/* Idle: the tier and the queue empty out. */
	uint64_t end = now_ns() + PATIENCE_NS;
	while ((stack_stats().warm_bytes || stack_stats().releasing) && now_ns() < end)
		ck_assert_int_eq(weft_sleep_ns(20000000), 0);
	ck_assert_uint_eq(stack_stats().warm_bytes, 0);
	ck_assert_uint_eq(stack_stats().releasing, 0);
}
END_TEST

/* ---- a burst, then idle --------------------------------------------------- */

/* TCB chunks retired: their memory given back, or cleared in place where
 * the kernel keeps it (handle.c). */
static uint64_t chunks_retired(void)
{
	return wf_tcb_chunks_released() + wf_tcb_chunks_cleared();
}

static weft_mutex_t gate_m = WEFT_MUTEX_INITIALIZER;
static weft_cond_t gate_c = WEFT_COND_INITIALIZER;
static bool gate_open;

/* Alive until the gate opens, with a few pages of stack in use. */
static void *held(void *arg)
{
	volatile char buf[3000];
	buf[0] = (char)(intptr_t)arg;
	buf[sizeof buf - 1] = 1;
	ck_assert_int_eq(weft_mutex_lock(&gate_m), 0);
	while (!gate_open)
		ck_assert_int_eq(weft_cond_wait(&gate_c, &gate_m), 0);
	ck_assert_int_eq(weft_mutex_unlock(&gate_m), 0);
	return (void *)(intptr_t)(buf[0] + buf[sizeof buf - 1]);
}

static void open_gate(void)
{
	ck_assert_int_eq(weft_mutex_lock(&gate_m), 0);
	gate_open = true;
	ck_assert_int_eq(weft_cond_broadcast(&gate_c), 0);
	ck_assert_int_eq(weft_mutex_unlock(&gate_m), 0);
}

/* How many threads the burst keeps alive at once, asked once the first
 * stack guard exists: BURST, unless the guards are mprotect ones. */
static int burst_size(void)
{
	if (!stack_stats().guards_mprotect || BURST <= BURST_MPROTECT)
		return BURST;
	printf("a burst of %d threads, not %d: stack guards are mprotect ones here "
	       "(no MADV_GUARD_INSTALL)\n", BURST_MPROTECT, BURST);
	return BURST_MPROTECT;
}

START_TEST(t_burst_then_idle_gives_memory_back)
{
	/* RSS is judged where it is the program's own: not under ASan (it
	 * keeps the shadow of every stack it saw), nor under an emulator
	 * (WEFT_TEST_EMULATOR, set by a cross build: the emulator's memory
	 * counts too; under qemu-user it stayed 11 MiB above, with weft's own
	 * given back). */
	bool judge_rss = true;
#ifdef __SANITIZE_ADDRESS__
	judge_rss = false;
#endif
	const char *emu = getenv("WEFT_TEST_EMULATOR");
	if (judge_rss && emu && *emu) {
		weft_test_unsupported("RSS after the burst: the emulator's memory counts in it");
		judge_rss = false;
	}
	start("2", NULL);
	weft_t *t = calloc(BURST, sizeof *t);
	ck_assert_ptr_nonnull(t);
	long before = proc_smaps_kb("Rss");
	uint64_t chunks0 = chunks_retired();
	ck_assert_int_eq(weft_create(&t[0], NULL, held, (void *)(intptr_t)0), 0);
	const int burst = burst_size();
	for (int i = 1; i < burst; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, held, (void *)(intptr_t)(i & 1)), 0);
	long peak = proc_smaps_kb("Rss");
	open_gate();
	for (int i = 0; i < burst; i++) {
		void *r;
		ck_assert_int_eq(weft_join(t[i], &r), 0);
		ck_assert_int_eq((intptr_t)r, (i & 1) + 1);
	}
	/* Idle (main sleeps, in steps so as to look): the scavenger gives the
	 * stacks and the TCBs' memory back. */
	uint64_t end = now_ns() + PATIENCE_NS;
	long rss = proc_smaps_kb("Rss");
	while (now_ns() < end &&
	       (stack_stats().warm_bytes || stack_stats().releasing ||
	        chunks_retired() - chunks0 < (uint64_t)burst / WF_CHUNK_SLOTS / 2 ||
	        (judge_rss && rss > before + 8 * 1024))) {
		ck_assert_int_eq(weft_sleep_ns(50000000), 0);
		rss = proc_smaps_kb("Rss");
	}
	printf("burst of %d threads: RSS %ld KiB before, %ld KiB at the peak, %ld KiB after\n",
	       burst, before, peak, rss);
	ck_assert_uint_eq(stack_stats().warm_bytes, 0);
	ck_assert_uint_eq(stack_stats().releasing, 0);
	ck_assert_uint_ge(chunks_retired() - chunks0, (uint64_t)burst / WF_CHUNK_SLOTS / 2);
	if (judge_rss)
		ck_assert_msg(rss <= before + 8 * 1024, "RSS %ld KiB after the burst, %ld KiB before",
		              rss, before);
	free(t);
}
END_TEST

/* ---- TCB memory given back: stale handles stay stale ---------------------- */

static void *ret_arg(void *arg) { return arg; }

START_TEST(t_stale_handles_after_tcb_memory_given_back)
{
	enum { N = 6 * WF_CHUNK_SLOTS };
	start("2", NULL);
	static weft_t old[N], young[N];
	/* N alive at once, so that whole chunks fill up; then all joined. */
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_create(&old[i], NULL, held, NULL), 0);
	open_gate();
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_join(old[i], NULL), 0);
	uint64_t c0 = chunks_retired();
	uint64_t end = now_ns() + PATIENCE_NS;
	while (chunks_retired() == c0 && now_ns() < end)
		ck_assert_int_eq(weft_sleep_ns(20000000), 0);
	ck_assert_uint_gt(chunks_retired(), c0);
	/* Every old handle is stale, on memory given back or not. */
	char name[32];
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(weft_join(old[i], NULL), ESRCH);
		ck_assert_int_eq(weft_detach(old[i]), ESRCH);
		ck_assert_int_eq(weft_getname(old[i], name, sizeof name), ESRCH);
	}
	/* New threads take the slots again, with new handles; the old ones
	 * stay stale while the new ones live. */
	gate_open = false;
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_create(&young[i], NULL, held, NULL), 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(weft_getname(old[i], name, sizeof name), ESRCH);
		ck_assert_int_eq(weft_getname(young[i], name, sizeof name), 0);
		ck_assert(!weft_equal(old[i], young[i]));
	}
	open_gate();
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_join(young[i], NULL), 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_join(old[i], NULL), ESRCH);
	/* And the slots given back work as any: a create+join loop. */
	for (int i = 0; i < 2 * N; i++) {
		weft_t t;
		void *r;
		ck_assert_int_eq(weft_create(&t, NULL, ret_arg, (void *)(intptr_t)i), 0);
		ck_assert_int_eq(weft_join(t, &r), 0);
		ck_assert_int_eq((intptr_t)r, i);
	}
}
END_TEST

/* ---- fork-join: a depth-first live set ------------------------------------ */

#ifdef __SANITIZE_ADDRESS__
#define TREE_LEAVES 10000      /* 11,111 threads, 5 levels */
#define TREE_LEVELS 5
#else
#define TREE_LEAVES 100000     /* 111,111 threads, 6 levels */
#define TREE_LEVELS 6
#endif

static _Atomic long unfinished, unfinished_peak;

static void count_unfinished(long d)
{
	long v = atomic_fetch_add(&unfinished, d) + d;
	long p = atomic_load(&unfinished_peak);
	while (v > p && !atomic_compare_exchange_weak(&unfinished_peak, &p, v))
		;
}

#define PACK(num, size) ((void *)(((uintptr_t)(num) << 32) | (uintptr_t)(size)))

/* skynet: size leaves under this thread, ten children per thread.  A
 * thread counts as unfinished from just before its creation until it
 * returns: its stack is in use all that time. */
static void *tree(void *arg)
{
	uint64_t num = (uintptr_t)arg >> 32, size = (uintptr_t)arg & 0xffffffffu, sum = num;
	if (size > 1) {
		weft_t kid[10];
		uint64_t sub = size / 10;
		sum = 0;
		for (int i = 0; i < 10; i++) {
			count_unfinished(1);
			ck_assert_int_eq(weft_create(&kid[i], NULL, tree,
			                             PACK(num + (uint64_t)i * sub, sub)), 0);
		}
		for (int i = 0; i < 10; i++) {
			void *r;
			ck_assert_int_eq(weft_join(kid[i], &r), 0);
			sum += (uintptr_t)r;
		}
	}
	count_unfinished(-1);
	return (void *)(uintptr_t)sum;
}

/* On one worker run-child-first keeps one root-to-leaf path unfinished:
 * TREE_LEVELS threads.  On W workers each worker works depth-first on
 * the piece it took (it resumes its newest continuation, and a thief
 * resumes the one it took), so that every unfinished thread lies on the
 * path of a running one (Cilk's busy-leaves property): at most W paths.
 * A preempted thread goes to the global queue while its worker resumes
 * its parent, which may start a new path meanwhile: one more path per
 * preemption at most.  One path more is allowed for the instants of a
 * hand-off.  Resuming the oldest continuation first instead kept 2,000
 * to 7,000 threads unfinished here, on any number of workers. */
static void live_set_on(const char *workers, int w)
{
	start(workers, NULL);
	weft_t root;
	void *r;
	count_unfinished(1);
	ck_assert_int_eq(weft_create(&root, NULL, tree, PACK(0, TREE_LEAVES)), 0);
	ck_assert_int_eq(weft_join(root, &r), 0);
	ck_assert_uint_eq((uintptr_t)r, (uint64_t)TREE_LEAVES * (TREE_LEAVES - 1) / 2);
	ck_assert_int_eq(atomic_load(&unfinished), 0);
	weft_stats_t st;
	ck_assert_int_eq(weft_stats_get(-1, &st), 0);
	long peak = atomic_load(&unfinished_peak);
	long bound = TREE_LEVELS * (w + 1 + (long)st.preemptions);
	printf("%s worker(s): at most %ld of %d threads unfinished (bound %ld; %llu steals, "
	       "%llu preemptions)\n", workers, peak, (TREE_LEAVES * 10 - 1) / 9, bound,
	       (unsigned long long)st.steals, (unsigned long long)st.preemptions);
	ck_assert_int_ge(peak, TREE_LEVELS);
	ck_assert_msg(peak <= bound, "%ld threads unfinished at once on %s worker(s), "
	              "bound %ld", peak, workers, bound);
}

START_TEST(t_fork_join_live_set_1) { live_set_on("1", 1); }
END_TEST
START_TEST(t_fork_join_live_set_2) { live_set_on("2", 2); }
END_TEST
START_TEST(t_fork_join_live_set_8) { live_set_on("8", 8); }
END_TEST

/* ---- TCB memory the kernel will not take back ------------------------------ */

/* The same, where madvise(MADV_DONTNEED) cannot give the chunks back:
 * their pages are locked (mlock, as under a program's mlockall), so the
 * kernel refuses (EINVAL) and the memory keeps what it held, every slot's
 * lock included, which the scavenger took before asking.  The chunk must
 * then be cleared in place: stale handles stay stale, their locks free,
 * and the slots are handed out again. */
START_TEST(t_stale_handles_when_tcb_memory_is_locked)
{
	enum { N = 6 * WF_CHUNK_SLOTS };
	start("2", NULL);
	static weft_t old[N];
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_create(&old[i], NULL, held, NULL), 0);
	/* Lock every chunk these threads use (slot = low 32 bits - 1). */
	const size_t len = WF_CHUNK_SLOTS * sizeof(struct wf_thread);
	uint32_t locked[WF_MAX_CHUNKS / 8];
	unsigned nlocked = 0;
	for (int i = 0; i < N; i++) {
		uint32_t ci = (uint32_t)((old[i] & 0xffffffffu) - 1) >> WF_CHUNK_SHIFT;
		bool seen = false;
		for (unsigned k = 0; k < nlocked && !seen; k++)
			seen = locked[k] == ci;
		if (seen)
			continue;
		ck_assert_uint_lt(nlocked, sizeof locked / sizeof locked[0]);
		if (mlock(wf_tcb_slot(ci << WF_CHUNK_SHIFT), len)) {
			weft_test_unsupported("mlock refused");
			nlocked = 0;
			break;
		}
		locked[nlocked++] = ci;
	}
	/* ASan's mlock does nothing (and answers 0): the pages must show as
	 * locked. */
	if (nlocked && proc_smaps_kb("Locked") < (long)(nlocked * len / 1024)) {
		weft_test_unsupported("mlock locks nothing here (a sanitizer's interceptor?)");
		nlocked = 0;
	}
	if (!nlocked) {
		open_gate();
		for (int j = 0; j < N; j++)
			ck_assert_int_eq(weft_join(old[j], NULL), 0);
		return;
	}
	open_gate();
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_join(old[i], NULL), 0);
	uint64_t r0 = wf_tcb_chunks_released(), k0 = wf_tcb_chunks_cleared();
	uint64_t end = now_ns() + PATIENCE_NS;
	while (wf_tcb_chunks_cleared() == k0 && now_ns() < end)
		ck_assert_int_eq(weft_sleep_ns(20000000), 0);
	ck_assert_uint_gt(wf_tcb_chunks_cleared(), k0);
	/* What went was cleared in place, not given back. */
	ck_assert_uint_eq(wf_tcb_chunks_released(), r0);
	char name[32];
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(weft_join(old[i], NULL), ESRCH);
		ck_assert_int_eq(weft_getname(old[i], name, sizeof name), ESRCH);
	}
	/* The slots work as any: threads alive at once on them, then joined. */
	static weft_t young[N];
	gate_open = false;
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_create(&young[i], NULL, held, NULL), 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(weft_getname(old[i], name, sizeof name), ESRCH);
		ck_assert(!weft_equal(old[i], young[i]));
	}
	open_gate();
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_join(young[i], NULL), 0);
	for (unsigned k = 0; k < nlocked; k++)
		ck_assert_int_eq(munlock(wf_tcb_slot(locked[k] << WF_CHUNK_SHIFT), len), 0);
}
END_TEST

static Suite *memory_suite(void)
{
	Suite *s = suite_create("memory");
	TCase *tc = tcase_create("memory");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_stacks_freed_on_another_worker_are_reused);
	tcase_add_test(tc, t_warm_bound_holds_under_imbalance);
	tcase_add_test(tc, t_burst_then_idle_gives_memory_back);
	tcase_add_test(tc, t_stale_handles_after_tcb_memory_given_back);
	tcase_add_test(tc, t_stale_handles_when_tcb_memory_is_locked);
	tcase_add_test(tc, t_fork_join_live_set_1);
	tcase_add_test(tc, t_fork_join_live_set_2);
	tcase_add_test(tc, t_fork_join_live_set_8);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(memory_suite());
}
