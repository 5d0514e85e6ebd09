/*
 * test_stack.c — the stack allocator: rounding, usable memory, guard pages,
 * warm reuse from a worker cache, batches flowing between caches through
 * the shared tier and its bound, release to the cold pool in few system
 * calls, trimming, mapping count at 100,000 stacks, the mprotect fallback,
 * and concurrent use.
 */
#include <check.h>
#include "check_main.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "context/stack.h"
#include "proc_memory.h"
#include "test_env.h"

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static struct wf_stack_stats stats(void)
{
	struct wf_stack_stats st;
	wf_stack_stats_get(&st);
	return st;
}

/* Give back everything the shared tiers hold: the first trim after stacks
 * arrived keeps them (they may be taken during its period), the second
 * releases what nobody took. */
static void release_all(void)
{
	wf_stack_trim();
	wf_stack_trim();
	ck_assert_uint_eq(stats().warm_bytes, 0);
	ck_assert_uint_eq(stats().releasing, 0);
}

static size_t count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	size_t n = 0;
	int c;
	ck_assert_ptr_nonnull(f);
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Resident anonymous pages of the process (file pages mapped in by fault-
 * around as test code first runs would only add noise). */
/* Anonymous pages mapped by the process, counted exactly. */
static long rss_anon_pages(void)
{
	return proc_smaps_kb("Anonymous") * 1024 / (long)page();
}

/* Does mincore report one entry per page of the page size the process
 * was told?  qemu-user with a page size larger than the host's (-p 65536,
 * how CI runs these tests with 64 KiB pages) passes mincore through at the
 * host's 4 KiB granularity, writing 16 entries per guest page: resident()
 * would read the wrong ones (and overrun its vector). */
static bool mincore_per_page(void)
{
	size_t p = page();
	unsigned char vec[64];
	char *m = mmap(NULL, 2 * p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(m, MAP_FAILED);
	memset(vec, 0xee, sizeof vec);
	ck_assert_int_eq(mincore(m, 2 * p, vec), 0);
	munmap(m, 2 * p);
	return vec[2] == 0xee;
}

/* Tests that count resident pages start with this. */
#define REQUIRE_MINCORE()                                                    \
	do {                                                                 \
		if (!mincore_per_page()) {                                   \
			weft_test_unsupported("mincore does not report per page " \
			                      "(an emulator with a larger page size)"); \
			return;                                              \
		}                                                            \
	} while (0)

/* Pages of [lo, hi) resident in memory. */
static size_t resident(const wf_stack *s)
{
	size_t len = (size_t)((char *)s->hi - (char *)s->lo), n = 0;
	unsigned char vec[len / page()];
	ck_assert_int_eq(mincore(s->lo, len, vec), 0);
	for (size_t i = 0; i < len / page(); i++)
		n += vec[i] & 1;
	return n;
}

static size_t npages(const wf_stack *s)
{
	return (size_t)((char *)s->hi - (char *)s->lo) / page();
}

static void touch(const wf_stack *s)
{
	for (char *p = s->lo; p < (char *)s->hi; p += page())
		*(volatile char *)p = 1;
}

/* Let a SIGSEGV kill the process even under a sanitizer's handler. */
static void default_segv(void)
{
	signal(SIGSEGV, SIG_DFL);
	signal(SIGBUS, SIG_DFL);
}

START_TEST(test_round)
{
	size_t p = page();
	wf_stack s;

	ck_assert_uint_eq(wf_stack_round(1), p);
	ck_assert_uint_eq(wf_stack_round(p), p);
	ck_assert_uint_eq(wf_stack_round(p + 1), 2 * p);
	/* Page multiples whatever the page size (4, 16 or 64 KiB). */
	ck_assert_uint_eq(wf_stack_round(16384), (16384 + p - 1) / p * p);
	ck_assert_uint_eq(wf_stack_round(16385), (16385 + p - 1) / p * p);
	ck_assert_uint_eq(wf_stack_round(4 * p - 1), 4 * p);
	ck_assert_uint_eq(wf_stack_round(0), 0);
	ck_assert_uint_eq(wf_stack_round(WF_STACK_SIZE_MAX), WF_STACK_SIZE_MAX);
	ck_assert_uint_eq(wf_stack_round(WF_STACK_SIZE_MAX + 1), 0);
	ck_assert_uint_eq(wf_stack_round((size_t)-1), 0);

	ck_assert_int_eq(wf_stack_alloc(NULL, 0, &s), EINVAL);
	ck_assert_int_eq(wf_stack_alloc(NULL, (size_t)-1, &s), EINVAL);
	ck_assert_int_eq(wf_stack_alloc(NULL, 20000, &s), 0);
	ck_assert_uint_eq((size_t)((char *)s.hi - (char *)s.lo),
	                  wf_stack_round(20000));
	wf_stack_free(NULL, &s);
}
END_TEST

START_TEST(test_writable)
{
	static const size_t sizes[] = { 16384, 20000, 65536, 1 << 20 };
	size_t base = stats().in_use;
	wf_stack s[4];

	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(wf_stack_alloc(NULL, sizes[i], &s[i]), 0);
		ck_assert_uint_eq((uintptr_t)s[i].lo % page(), 0);
		ck_assert_uint_eq((size_t)((char *)s[i].hi - (char *)s[i].lo),
		                  wf_stack_round(sizes[i]));
		ck_assert_uint_eq(s[i].guard, page());
		ck_assert_int_eq(s[i].user, 0);
		ck_assert_ptr_nonnull(s[i].slot);
		memset(s[i].lo, 0xa0 + i, wf_stack_round(sizes[i]));
	}
	ck_assert_uint_eq(stats().in_use, base + 4);
	for (int i = 0; i < 4; i++) {
		unsigned char *p = s[i].lo;
		for (size_t j = 0; j < wf_stack_round(sizes[i]); j++)
			if (p[j] != 0xa0 + i)
				ck_abort_msg("stack %d byte %zu clobbered", i, j);
	}
	for (int i = 0; i < 4; i++)
		wf_stack_free(NULL, &s[i]);
	ck_assert_uint_eq(stats().in_use, base);
}
END_TEST

START_TEST(test_guard_faults_below_lo)
{
	wf_stack s;
	ck_assert_int_eq(wf_stack_alloc(NULL, 65536, &s), 0);
	touch(&s);
	default_segv();
	((volatile char *)s.lo)[-1] = 1;
	ck_abort_msg("write just below lo did not fault");
}
END_TEST

START_TEST(test_guard_faults_bottom)
{
	wf_stack a, b;
	/* b sits above a in the same slab: its guard is a's upper neighbour. */
	ck_assert_int_eq(wf_stack_alloc(NULL, 16384, &a), 0);
	ck_assert_int_eq(wf_stack_alloc(NULL, 16384, &b), 0);
	default_segv();
	*((volatile char *)b.lo - b.guard) = 1;
	ck_abort_msg("write at the bottom of the guard did not fault");
}
END_TEST

START_TEST(test_in_guard)
{
	wf_stack s, u;
	static char buf[16384];
	char *lo;

	ck_assert_int_eq(wf_stack_alloc(NULL, 65536, &s), 0);
	lo = s.lo;
	ck_assert(wf_stack_in_guard(&s, lo - 1));
	ck_assert(wf_stack_in_guard(&s, lo - s.guard));
	ck_assert(wf_stack_in_guard(&s, lo - s.guard / 2));
	ck_assert(!wf_stack_in_guard(&s, lo - s.guard - 1));
	ck_assert(!wf_stack_in_guard(&s, lo));
	ck_assert(!wf_stack_in_guard(&s, lo + 100));
	ck_assert(!wf_stack_in_guard(&s, s.hi));
	ck_assert(!wf_stack_in_guard(&s, NULL));
	wf_stack_free(NULL, &s);

	u = (wf_stack){ .lo = buf, .hi = buf + sizeof buf, .guard = 0,
	                .user = 1, .slot = NULL };
	ck_assert(!wf_stack_in_guard(&u, (void *)((uintptr_t)buf - 1)));
	ck_assert(!wf_stack_in_guard(&u, buf));
	u.guard = page();   /* stale guard on a user descriptor: still none */
	ck_assert(!wf_stack_in_guard(&u, (void *)((uintptr_t)buf - 1)));
}
END_TEST

START_TEST(test_user_stack_ignored)
{
	static char buf[16384];
	wf_stack_cache k = { 0 };
	wf_stack u = { .lo = buf, .hi = buf + sizeof buf, .user = 1 };
	struct wf_stack_stats a = stats(), b;

	wf_stack_free(&k, &u);
	wf_stack_free(NULL, &u);
	b = stats();
	ck_assert_uint_eq(b.in_use, a.in_use);
	ck_assert_uint_eq(b.cold, a.cold);
	ck_assert_uint_eq(b.warm_bytes, a.warm_bytes);
	ck_assert_uint_eq(wf_stack_cache_count(&k), 0);
}
END_TEST

START_TEST(test_cache_reuse)
{
	wf_stack_cache k = { 0 };
	wf_stack a, b, c;
	struct wf_stack_stats st = stats();
	/* Two sizes of different classes that are both kept warm: 64 and
	 * 32 KiB, or 4 and 2 pages where pages are larger. */
	size_t sa = 4 * page() > 65536 ? 4 * page() : 65536, sc = sa / 2;

	REQUIRE_MINCORE();
	ck_assert_uint_le(sa, WF_STACK_CACHE_MAX_SIZE);
	ck_assert_int_eq(wf_stack_alloc(&k, sa, &a), 0);
	touch(&a);
	wf_stack_free(&k, &a);
	ck_assert_uint_eq(wf_stack_cache_count(&k), 1);
	ck_assert_uint_eq(stats().cold, st.cold);
	ck_assert_uint_eq(stats().warm_bytes, st.warm_bytes);   /* the cache's own */
	ck_assert_uint_eq(resident(&a), npages(&a));  /* still warm */

	/* Another size does not take it. */
	ck_assert_int_eq(wf_stack_alloc(&k, sc, &c), 0);
	ck_assert_ptr_ne(c.lo, a.lo);
	ck_assert_uint_eq(wf_stack_cache_count(&k), 1);

	ck_assert_int_eq(wf_stack_alloc(&k, sa, &b), 0);
	ck_assert_ptr_eq(b.lo, a.lo);
	ck_assert_ptr_eq(b.slot, a.slot);
	ck_assert_uint_eq(wf_stack_cache_count(&k), 0);
	ck_assert_uint_eq(resident(&b), npages(&b));

	/* LIFO: the most recently freed comes back first. */
	wf_stack_free(&k, &b);
	ck_assert_int_eq(wf_stack_alloc(&k, sa, &a), 0);
	ck_assert_int_eq(wf_stack_alloc(&k, sa, &b), 0);
	wf_stack_free(&k, &a);
	wf_stack_free(&k, &b);
	ck_assert_int_eq(wf_stack_alloc(&k, sa, &a), 0);
	ck_assert_ptr_eq(a.lo, b.lo);
	wf_stack_free(&k, &a);

	/* A stack of another size than the cache's goes to the shared tier,
	 * warm, where the next allocation of its size finds it. */
	wf_stack_free(&k, &c);
	ck_assert_uint_eq(wf_stack_cache_count(&k), 2);
	ck_assert_uint_eq(stats().warm_bytes, st.warm_bytes + sc);
	wf_stack d;
	ck_assert_int_eq(wf_stack_alloc(NULL, sc, &d), 0);
	ck_assert_ptr_eq(d.lo, c.lo);
	wf_stack_free(NULL, &d);

	wf_stack_cache_flush(&k);
	ck_assert_uint_eq(wf_stack_cache_count(&k), 0);
	ck_assert_ptr_null(k.cur);
	ck_assert_ptr_null(k.full);
	ck_assert_uint_eq(stats().warm_bytes, st.warm_bytes + 2 * sa + sc);
	release_all();
	ck_assert_uint_eq(stats().cold, st.cold + 3);
	ck_assert_uint_eq(resident(&a), 0);
}
END_TEST

START_TEST(test_cold_pool_reuse)
{
	wf_stack a, b;
	struct wf_stack_stats st = stats();

	REQUIRE_MINCORE();

	wf_stack_set_warm_max(0);   /* nothing is kept warm: every free is released */
	ck_assert_int_eq(wf_stack_alloc(NULL, 40960, &a), 0);
	touch(&a);
	ck_assert_uint_eq(resident(&a), npages(&a));
	wf_stack_free(NULL, &a);
	ck_assert_uint_eq(stats().releasing, 1);
	ck_assert_uint_eq(resident(&a), npages(&a));   /* lazily: not yet */
	ck_assert_uint_eq(wf_stack_scavenge(), 1);
	ck_assert_uint_eq(stats().cold, st.cold + 1);
	ck_assert_uint_eq(resident(&a), 0);
	ck_assert_int_eq(wf_stack_alloc(NULL, 40960, &b), 0);
	ck_assert_ptr_eq(b.lo, a.lo);
	ck_assert_uint_eq(stats().cold, st.cold);
	ck_assert_uint_eq(((char *)b.lo)[100], 0);  /* released: zero again */
	wf_stack_free(NULL, &b);
	wf_stack_set_warm_max(WF_STACK_WARM_DEFAULT);
}
END_TEST

START_TEST(test_cache_bound)
{
	/* A cache keeps at most two batches; the older whole batch goes to
	 * the shared tier, and beyond the tier's bound to the release queue. */
	enum { N = 2 * WF_STACK_BATCH + 4 };
	wf_stack_cache k = { 0 };
	wf_stack s[N];
	struct wf_stack_stats st = stats();
	long rss0, rss1, rss2;

	REQUIRE_MINCORE();

	wf_stack_set_warm_max(0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(wf_stack_alloc(&k, 131072, &s[i]), 0);
		touch(&s[i]);
		ck_assert_uint_eq(resident(&s[i]), npages(&s[i]));
	}
	/* The resident set is read around the release only, with nothing
	 * checked in between: each check allocates (Check records where it
	 * is), and under ASan, whose quarantine keeps what is freed, that
	 * took more pages than the allowance. */
	rss0 = rss_anon_pages();
	for (int i = 0; i < N; i++)
		wf_stack_free(&k, &s[i]);
	unsigned cached = wf_stack_cache_count(&k);
	struct wf_stack_stats st0 = stats();
	size_t scavenged = wf_stack_scavenge();
	rss1 = rss_anon_pages();
	ck_assert_uint_eq(cached, WF_STACK_BATCH + 4);
	ck_assert_uint_eq(st0.releasing, WF_STACK_BATCH);
	ck_assert_uint_eq(st0.in_use, st.in_use);
	ck_assert_uint_eq(scavenged, WF_STACK_BATCH);
	struct wf_stack_stats st1 = stats();
	ck_assert_uint_eq(st1.cold, st.cold + WF_STACK_BATCH);
	/* The first batch freed was carved in one piece: one call. */
	ck_assert_uint_eq(st1.madvises, st.madvises + 1);
	for (int i = 0; i < N; i++) {
		size_t want = i >= WF_STACK_BATCH ? npages(&s[i]) : 0;
		ck_assert_uint_eq(resident(&s[i]), want);
	}
	/* 16 stacks of 32 pages released; allow for stdio buffers and such. */
	ck_assert_int_ge(rss0 - rss1, (long)(WF_STACK_BATCH * npages(&s[0])) - 8);

	rss1 = rss_anon_pages();
	wf_stack_cache_flush(&k);
	cached = wf_stack_cache_count(&k);
	scavenged = wf_stack_scavenge();
	rss2 = rss_anon_pages();
	ck_assert_uint_eq(cached, 0);
	ck_assert_uint_eq(scavenged, WF_STACK_BATCH + 4);
	ck_assert_uint_eq(stats().cold, st.cold + N);
	for (int i = 0; i < N; i++)
		ck_assert_uint_eq(resident(&s[i]), 0);
	ck_assert_int_ge(rss1 - rss2, (long)((WF_STACK_BATCH + 4) * npages(&s[0])) - 8);
	wf_stack_set_warm_max(WF_STACK_WARM_DEFAULT);
}
END_TEST

START_TEST(test_big_stacks_not_cached)
{
	wf_stack_cache k = { 0 };
	wf_stack s;
	size_t cold = stats().cold;

	REQUIRE_MINCORE();

	ck_assert_int_eq(wf_stack_alloc(&k, WF_STACK_CACHE_MAX_SIZE + 1, &s),
	                 0);
	touch(&s);
	wf_stack_free(&k, &s);
	ck_assert_uint_eq(wf_stack_cache_count(&k), 0);
	ck_assert_uint_eq(stats().releasing, 1);
	ck_assert_uint_eq(wf_stack_scavenge(), 1);
	ck_assert_uint_eq(stats().cold, cold + 1);
	ck_assert_uint_eq(resident(&s), 0);
}
END_TEST

/* Stacks allocated through one cache and freed through another (a thread
 * created on one worker that finished on another) come back to the first
 * warm, through the shared tier, in batches: after a first round (the
 * freeing cache keeps up to two batches for itself), nothing new is
 * carved and nothing is released. */
START_TEST(test_flow_between_caches)
{
	enum { N = 8 * WF_STACK_BATCH, ROUNDS = 50 };
	wf_stack_cache a = { 0 }, b = { 0 };
	static wf_stack s[N];
	static void *seen[2 * N];
	int nseen = 0;

	REQUIRE_MINCORE();
	for (int r = 0; r < 2; r++) {
		for (int i = 0; i < N; i++) {
			ck_assert_int_eq(wf_stack_alloc(&a, 65536, &s[i]), 0);
			touch(&s[i]);
			bool known = false;
			for (int j = 0; j < nseen && !known; j++)
				known = seen[j] == s[i].lo;
			if (!known)
				seen[nseen++] = s[i].lo;
		}
		for (int i = 0; i < N; i++)
			wf_stack_free(&b, &s[i]);
	}
	ck_assert_int_le(nseen, N + 2 * WF_STACK_BATCH);
	struct wf_stack_stats st = stats();
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < N; i++) {
			ck_assert_int_eq(wf_stack_alloc(&a, 65536, &s[i]), 0);
			bool known = false;
			for (int j = 0; j < nseen && !known; j++)
				known = seen[j] == s[i].lo;
			ck_assert_msg(known, "round %d: a stack never freed before", r);
			/* Warm: its pages were never given back. */
			ck_assert_uint_eq(resident(&s[i]), npages(&s[i]));
		}
		for (int i = 0; i < N; i++)
			wf_stack_free(&b, &s[i]);
	}
	struct wf_stack_stats st2 = stats();
	ck_assert_uint_eq(st2.slabs, st.slabs);
	ck_assert_uint_eq(st2.cold, st.cold);
	ck_assert_uint_eq(st2.released, st.released);
	ck_assert_uint_eq(st2.releasing, 0);
	ck_assert_uint_lt(wf_stack_cache_count(&b), 2 * WF_STACK_BATCH);
	wf_stack_cache_flush(&a);
	wf_stack_cache_flush(&b);
	release_all();
}
END_TEST

/* The bound holds however unevenly stacks flow: many caches free what one
 * allocates, in bursts of different sizes.  At every step the shared
 * tiers stay within the bound, each cache within two batches, and once
 * the scavenger has run every stack not in use and not kept warm has no
 * page resident. */
START_TEST(test_warm_bound_imbalanced)
{
	enum { NK = 4, LIVE = 600, STEPS = 4000 };
	const size_t bound = 20 * 65536;   /* not a multiple of a batch */
	static wf_stack_cache k[NK];
	static wf_stack live[LIVE];
	int n = 0;
	unsigned rnd = 12345;
	struct wf_stack_stats st0 = stats();

	wf_stack_set_warm_max(bound);
	for (int step = 0; step < STEPS; step++) {
		rnd = rnd * 1103515245u + 12345u;
		/* Cache 0 creates in bursts; caches 1..3 (mostly 3) free. */
		unsigned burst = 1 + (rnd >> 16) % 97;
		bool grow = n < LIVE / 4 || (n < LIVE && (rnd >> 8) % 3 == 0);
		for (unsigned j = 0; j < burst; j++) {
			if (grow && n < LIVE) {
				ck_assert_int_eq(wf_stack_alloc(&k[0], 65536, &live[n]), 0);
				((volatile char *)live[n].hi)[-1] = 1;   /* the top page, as a thread */
				n++;
			} else if (!grow && n > 0) {
				int who = (rnd >> 4) % 8 ? 3 : 1 + (int)((rnd >> 12) % 2);
				wf_stack_free(&k[who], &live[--n]);
			}
			ck_assert_uint_le(stats().warm_bytes, bound);
			for (int i = 0; i < NK; i++)
				ck_assert_uint_lt(wf_stack_cache_count(&k[i]), 2 * WF_STACK_BATCH);
		}
		if (step % 500 == 0)
			wf_stack_scavenge();
	}
	while (n > 0)
		wf_stack_free(&k[3], &live[--n]);
	wf_stack_scavenge();
	struct wf_stack_stats st = stats();
	ck_assert_uint_le(st.warm_bytes, bound);
	ck_assert_uint_gt(st.released, st0.released);   /* the bound was met */
	/* Resident stack pages: at most the shared tier's and the caches'. */
	size_t cached = 0;
	for (int i = 0; i < NK; i++)
		cached += wf_stack_cache_count(&k[i]);
	long anon = rss_anon_pages();
	for (int i = 0; i < NK; i++)
		wf_stack_cache_flush(&k[i]);
	wf_stack_set_warm_max(0);
	release_all();
	long freed = anon - rss_anon_pages();
	if (!mincore_per_page()) {
		/* The host backs a larger page with its own pages, one at a
		 * time: what is resident is not a count of these pages. */
		weft_test_unsupported("the pages released (an emulator with a larger page size)");
	} else {
		/* What the tier and caches held is exactly what was still
		 * resident. */
		ck_assert_int_ge(freed, (long)((st.warm_bytes / 65536 + cached) * 1) - 8);
		ck_assert_int_le(freed, (long)((bound / 65536 + cached) * (65536 / page())) + 8);
	}
	wf_stack_set_warm_max(WF_STACK_WARM_DEFAULT);
}
END_TEST

/* A trim gives back what nobody took during the whole period, oldest
 * first, and keeps what was taken. */
START_TEST(test_trim_keeps_what_is_used)
{
	enum { N = 6 * WF_STACK_BATCH };
	wf_stack_cache k = { 0 };
	static wf_stack s[N];
	REQUIRE_MINCORE();
	release_all();
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(wf_stack_alloc(NULL, 65536, &s[i]), 0);
		touch(&s[i]);
	}
	for (int i = 0; i < N; i++)
		wf_stack_free(&k, &s[i]);
	wf_stack_cache_flush(&k);
	ck_assert_uint_eq(stats().warm_bytes, (size_t)N * 65536);
	/* The first trim opens the period: nothing was known unused before. */
	ck_assert_uint_eq(wf_stack_trim(), (size_t)N * 65536);
	/* Two batches are taken and come back within the period: the tier
	 * never held fewer than N - 2 batches' worth, which go; two stay. */
	wf_stack t[2 * WF_STACK_BATCH];
	for (int i = 0; i < 2 * WF_STACK_BATCH; i++)
		ck_assert_int_eq(wf_stack_alloc(&k, 65536, &t[i]), 0);
	for (int i = 0; i < 2 * WF_STACK_BATCH; i++)
		wf_stack_free(&k, &t[i]);
	wf_stack_cache_flush(&k);
	size_t released = stats().released;
	ck_assert_uint_eq(wf_stack_trim(), (size_t)2 * WF_STACK_BATCH * 65536);
	ck_assert_uint_eq(stats().released, released + (N - 2 * WF_STACK_BATCH));
	/* The ones kept are the ones just used: still resident. */
	for (int i = 0; i < 2 * WF_STACK_BATCH; i++)
		ck_assert_uint_eq(resident(&t[i]), npages(&t[i]));
	/* Another quiet period: the rest goes. */
	ck_assert_uint_eq(wf_stack_trim(), 0);
	for (int i = 0; i < N; i++)
		ck_assert_uint_eq(resident(&s[i]), 0);
}
END_TEST

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const wf_stack *)a)->lo;
	uintptr_t y = (uintptr_t)((const wf_stack *)b)->lo;
	return x < y ? -1 : x > y;
}

START_TEST(test_100k_stacks)
{
	enum { N = 100000 };
	wf_stack *s = calloc(N, sizeof *s);
	struct wf_stack_stats st = stats(), st2;
	size_t maps0, maps1;

	ck_assert_ptr_nonnull(s);
	maps0 = count_maps();
	ck_assert_int_eq(wf_stack_alloc(NULL, 16384, &s[0]), 0);
	if (stats().guards_mprotect != st.guards_mprotect) {
		/* The first guard had to be an mprotect one: this machine has no
		 * working MADV_GUARD_INSTALL (Linux before 6.13, or qemu-user,
		 * which accepts it and does nothing).  Two mappings per stack
		 * then cap a process near 32,000 stacks (docs/design.md §8), so
		 * what this test checks cannot hold here. */
		weft_test_unsupported("MADV_GUARD_INSTALL guards are not available "
		                      "(mprotect fallback in use)");
		wf_stack_free(NULL, &s[0]);
		free(s);
		return;
	}
	for (int i = 1; i < N; i++)
		if (wf_stack_alloc(NULL, 16384, &s[i]))
			ck_abort_msg("allocation %d of %d failed", i, N);
	maps1 = count_maps();
	st2 = stats();
	printf("100k stacks of 16 KiB: %zu slabs, %zu MiB mapped, "
	       "maps %zu -> %zu\n", st2.slabs - st.slabs,
	       (st2.slab_bytes - st.slab_bytes) >> 20, maps0, maps1);
	ck_assert_uint_eq(st2.guards_mprotect, st.guards_mprotect);
	ck_assert_msg(maps1 <= maps0 + 300, "maps grew %zu -> %zu",
	              maps0, maps1);
	ck_assert_uint_eq(st2.in_use, st.in_use + N);

	qsort(s, N, sizeof *s, cmp_ptr);
	for (int i = 1; i < N; i++)
		ck_assert((char *)s[i].lo >= (char *)s[i - 1].hi + s[i].guard);
	for (int i = 0; i < N; i++)
		wf_stack_free(NULL, &s[i]);
	ck_assert_uint_eq(stats().in_use, st.in_use);
	release_all();
	st2 = stats();
	ck_assert_uint_eq(st2.cold, st.cold + N);
	/* Neighbours go back together: a few calls, not one per stack. */
	printf("100k stacks released with %zu madvise calls\n", st2.madvises - st.madvises);
	ck_assert_uint_le(st2.madvises - st.madvises, 2 * (st2.slabs - st.slabs) + 2);
	free(s);
}
END_TEST

START_TEST(test_guard_faults_late_stack)
{
	/* A stack carved late in a later slab is guarded too. */
	enum { N = 5000 };
	static wf_stack s[N];
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(wf_stack_alloc(NULL, 16384, &s[i]), 0);
	default_segv();
	((volatile char *)s[N - 1].lo)[-1] = 1;
	ck_abort_msg("write below the last stack did not fault");
}
END_TEST

START_TEST(test_errno_preserved)
{
	wf_stack s;
	errno = 4242;
	ck_assert_int_eq(wf_stack_alloc(NULL, 16384, &s), 0);
	ck_assert_int_eq(errno, 4242);
	wf_stack_free(NULL, &s);
	ck_assert_int_eq(errno, 4242);
	ck_assert_int_eq(wf_stack_alloc(NULL, 0, &s), EINVAL);
	ck_assert_int_eq(errno, 4242);
}
END_TEST

#ifndef __SANITIZE_ADDRESS__
START_TEST(test_enomem)
{
	/* With no address space left for a slab, the allocator says so. */
	struct rlimit rl = { 64 << 20, 64 << 20 };
	wf_stack s;
	size_t in_use = stats().in_use;
	int r;
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	void *probe = mmap(NULL, (size_t)128 << 20, PROT_NONE,
	                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (probe != MAP_FAILED) {
		/* The limit is not enforced: qemu-user keeps RLIMIT_AS for
		 * itself (it would limit the emulator) and never applies a
		 * guest's, so nothing here can run out of address space. */
		munmap(probe, (size_t)128 << 20);
		weft_test_unsupported("RLIMIT_AS is not enforced (an emulator?)");
		return;
	}
	errno = 0;
	r = wf_stack_alloc(NULL, 128 << 20, &s);
	ck_assert_int_eq(r, ENOMEM);
	ck_assert_int_eq(errno, 0);
	ck_assert_uint_eq(stats().in_use, in_use);
}
END_TEST
#endif

START_TEST(test_double_free_aborts)
{
	wf_stack s, copy;
	ck_assert_int_eq(wf_stack_alloc(NULL, 16384, &s), 0);
	copy = s;
	wf_stack_free(NULL, &s);
	fclose(stderr);
	wf_stack_free(NULL, &copy);
}
END_TEST

/* ---- mprotect fallback ---------------------------------------------------- */

START_TEST(test_mprotect_fallback)
{
	enum { N = 30 };
	wf_stack s[N];
	struct wf_stack_stats st = stats();
	size_t maps0 = count_maps(), limit, maps1;
	FILE *log = tmpfile();
	char buf[4096] = { 0 };
	int err = dup(2);
	char *p, *q;

	/* Warn once ~10 guards in: the threshold is 7/8 of the limit. */
	limit = (maps0 + 4 + 20) * 8 / 7;
	fflush(stderr);
	dup2(fileno(log), 2);
	wf_stack_test_force_mprotect(limit);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(wf_stack_alloc(NULL, 36864, &s[i]), 0);
		memset(s[i].lo, 1, 36864);
		if (i == 2)
			ck_assert_int_eq(lseek(2, 0, SEEK_CUR), 0);
	}
	fflush(stderr);
	dup2(err, 2);
	maps1 = count_maps();
	ck_assert_uint_eq(stats().guards_mprotect, st.guards_mprotect + N);
	ck_assert_msg(maps1 >= maps0 + 2 * N - 4, "maps %zu -> %zu",
	              maps0, maps1);
	for (int i = 0; i < N; i++)
		ck_assert(wf_stack_in_guard(&s[i], (char *)s[i].lo - 1));

	rewind(log);
	ck_assert_uint_gt(fread(buf, 1, sizeof buf - 1, log), 0);
	ck_assert_msg(strncmp(buf, "weft: ", 6) == 0, "stderr: %s", buf);
	ck_assert_ptr_nonnull(strstr(buf, "max_map_count"));
	p = strstr(buf, "weft:");
	q = strstr(p + 1, "weft:");
	ck_assert_msg(q == NULL, "warned more than once: %s", buf);
	ck_assert_int_eq((int)(strchr(buf, '\n') - buf) + 1, (int)strlen(buf));

	/* Reuse does not install a second guard. */
	wf_stack_free(NULL, &s[0]);
	ck_assert_int_eq(wf_stack_alloc(NULL, 36864, &s[0]), 0);
	ck_assert_uint_eq(stats().guards_mprotect, st.guards_mprotect + N);
	for (int i = 0; i < N; i++)
		wf_stack_free(NULL, &s[i]);
	fclose(log);
}
END_TEST

START_TEST(test_mprotect_guard_faults)
{
	wf_stack s;
	size_t g = stats().guards_mprotect;
	wf_stack_test_force_mprotect(0);
	ck_assert_int_eq(wf_stack_alloc(NULL, 16384, &s), 0);
	ck_assert_uint_eq(stats().guards_mprotect, g + 1);
	default_segv();
	((volatile char *)s.lo)[-1] = 1;
	ck_abort_msg("write below an mprotect-guarded stack did not fault");
}
END_TEST

/* ---- concurrency ---------------------------------------------------------- */

enum { NTHREADS = 4, LIVE = 48, NLIVE = NTHREADS * LIVE };

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { char *lo, *hi; } live[NLIVE];
static _Atomic int conc_fail;
static _Atomic long conc_allocs;
static char conc_msg[256];

static void conc_failf(const char *what, const void *p)
{
	if (!atomic_exchange(&conc_fail, 1))
		snprintf(conc_msg, sizeof conc_msg, "%s %p", what, p);
}

/* Record [lo, hi) as handed out; fail if it overlaps a live stack. */
static void live_add(const wf_stack *s)
{
	char *lo = s->lo, *hi = s->hi;
	int free_i = -1;
	pthread_mutex_lock(&live_mu);
	for (int i = 0; i < NLIVE; i++) {
		if (!live[i].lo) {
			if (free_i < 0)
				free_i = i;
		} else if (lo < live[i].hi && live[i].lo < hi) {
			conc_failf("overlapping stacks at", lo);
		}
	}
	if (free_i < 0)
		conc_failf("live table full", lo);
	else
		live[free_i].lo = lo, live[free_i].hi = hi;
	pthread_mutex_unlock(&live_mu);
}

static void live_del(const wf_stack *s)
{
	int found = 0;
	pthread_mutex_lock(&live_mu);
	for (int i = 0; i < NLIVE; i++)
		if (live[i].lo == s->lo) {
			live[i].lo = live[i].hi = NULL;
			found = 1;
			break;
		}
	pthread_mutex_unlock(&live_mu);
	if (!found)
		conc_failf("freed stack not live", s->lo);
}

struct tag { uintptr_t self, seq; };

static void tag_set(const wf_stack *s, uintptr_t self, uintptr_t seq)
{
	struct tag t = { self, seq };
	memcpy(s->lo, &t, sizeof t);
	memcpy((char *)s->hi - sizeof t, &t, sizeof t);
}

static void tag_check(const wf_stack *s, uintptr_t self, uintptr_t seq)
{
	struct tag a, b;
	memcpy(&a, s->lo, sizeof a);
	memcpy(&b, (char *)s->hi - sizeof b, sizeof b);
	if (a.self != self || a.seq != seq || b.self != self || b.seq != seq)
		conc_failf("stack scribbled by another owner", s->lo);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *conc_worker(void *arg)
{
	static const size_t sizes[] = { 16384, 20480, 65536, 16384,
	                                WF_STACK_CACHE_MAX_SIZE + 4096 };
	uintptr_t self = (uintptr_t)arg, seq = 0;
	unsigned rnd = (unsigned)self * 2654435761u + 1;
	wf_stack_cache k = { 0 };
	wf_stack s[LIVE];
	uintptr_t tags[LIVE];
	int n = 0;
	double end = now() + 1.0;
	long allocs = 0;

	while (!atomic_load(&conc_fail)) {
		if ((allocs & 255) == 0 && now() > end)
			break;
		rnd = rnd * 1103515245u + 12345u;
		if (n < LIVE && (n == 0 || (rnd >> 16) % 2)) {
			size_t sz = sizes[(rnd >> 8) % 5];
			int r = wf_stack_alloc((rnd >> 20) % 8 ? &k : NULL,
			                       sz, &s[n]);
			if (r) {
				conc_failf("allocation failed", NULL);
				break;
			}
			live_add(&s[n]);
			tags[n] = ++seq;
			tag_set(&s[n], self, seq);
			n++;
			allocs++;
		} else {
			int i = (int)((rnd >> 12) % (unsigned)n);
			tag_check(&s[i], self, tags[i]);
			live_del(&s[i]);
			wf_stack_free((rnd >> 24) % 8 ? &k : NULL, &s[i]);
			s[i] = s[--n];
			tags[i] = tags[n];
		}
	}
	while (n > 0) {
		n--;
		tag_check(&s[n], self, tags[n]);
		live_del(&s[n]);
		wf_stack_free(&k, &s[n]);
	}
	if (wf_stack_cache_count(&k) >= 2 * WF_STACK_BATCH)
		conc_failf("cache over its bound", NULL);
	wf_stack_cache_flush(&k);
	atomic_fetch_add(&conc_allocs, allocs);
	return NULL;
}

/* The scavenger, as the runtime's monitor is: what overflows the shared
 * tier is queued for release, and only the scavenger makes it cold (and
 * so reusable) again.  Without one the queue only grew, and so did the
 * stacks carved; with mprotect guards (two mappings each) the test ran
 * out of mappings under qemu-user. */
static atomic_int conc_done;

static void *conc_scavenger(void *arg)
{
	(void)arg;
	const struct timespec ms = { 0, 1000000 };
	while (!atomic_load(&conc_done)) {
		wf_stack_scavenge();
		nanosleep(&ms, NULL);
	}
	return NULL;
}

START_TEST(test_concurrent)
{
	pthread_t t[NTHREADS], scav;
	size_t in_use = stats().in_use;

	ck_assert_int_eq(pthread_create(&scav, NULL, conc_scavenger, NULL), 0);
	for (uintptr_t i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, conc_worker,
		                                (void *)(i + 1)), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&conc_done, 1);
	pthread_join(scav, NULL);
	printf("concurrent: %ld stacks handed out by %d threads\n",
	       atomic_load(&conc_allocs), NTHREADS);
	ck_assert_msg(!atomic_load(&conc_fail), "%s", conc_msg);
	ck_assert_int_gt(atomic_load(&conc_allocs), 10000);
	ck_assert_uint_eq(stats().in_use, in_use);
	for (int i = 0; i < NLIVE; i++)
		ck_assert_ptr_null(live[i].lo);
}
END_TEST

static Suite *stack_suite(void)
{
	Suite *s = suite_create("stack");
	TCase *tc = tcase_create("alloc");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_round);
	tcase_add_test(tc, test_writable);
	tcase_add_test_raise_signal(tc, test_guard_faults_below_lo, SIGSEGV);
	tcase_add_test_raise_signal(tc, test_guard_faults_bottom, SIGSEGV);
	tcase_add_test_raise_signal(tc, test_guard_faults_late_stack, SIGSEGV);
	tcase_add_test(tc, test_in_guard);
	tcase_add_test(tc, test_user_stack_ignored);
	tcase_add_test(tc, test_cache_reuse);
	tcase_add_test(tc, test_cold_pool_reuse);
	tcase_add_test(tc, test_cache_bound);
	tcase_add_test(tc, test_big_stacks_not_cached);
	tcase_add_test(tc, test_flow_between_caches);
	tcase_add_test(tc, test_warm_bound_imbalanced);
	tcase_add_test(tc, test_trim_keeps_what_is_used);
	tcase_add_test(tc, test_errno_preserved);
	tcase_add_test(tc, test_100k_stacks);
#ifndef __SANITIZE_ADDRESS__
	tcase_add_test(tc, test_enomem);
#endif
	tcase_add_test_raise_signal(tc, test_double_free_aborts, SIGABRT);
	tcase_add_test(tc, test_concurrent);
	suite_add_tcase(s, tc);

	/* Forces the fallback for the rest of the process: keep these last
	 * (each test runs in its own child unless CK_FORK=no). */
	tc = tcase_create("mprotect");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_mprotect_fallback);
	tcase_add_test_raise_signal(tc, test_mprotect_guard_faults, SIGSEGV);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(stack_suite());
}
