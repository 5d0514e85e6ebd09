/*
 * bench_fib.c — fork-join: fib(n) with a thread per call above a cutoff.
 * A call with n > cutoff creates two threads, for fib(n-1) and fib(n-2),
 * and joins both; a call at or below the cutoff runs the plain serial C
 * function fib_serial().  The root is a thread created by main.  With the
 * defaults, fib(30) and a cutoff of 15, one fib(30) is 3,193 threads, and
 * the serial function does almost all of the arithmetic: the figure shows
 * what the threads cost, and whether more workers make it finish sooner.
 *
 *   fib-1w   weft WEFT_WORKERS=1; pthreads pinned to one CPU; Go GOMAXPROCS=1
 *   fib-2w   weft WEFT_WORKERS=2; pthreads free;              Go GOMAXPROCS=2
 *   fib-8w   weft WEFT_WORKERS=8; pthreads free;              Go GOMAXPROCS=8
 *
 * pthreads get 64 KiB stacks like weft's default (--pstack, 0 for glibc's
 * 8 MiB).  Go (bench/go/fib.go) has the same shape: a goroutine per call
 * above the cutoff, a sync.WaitGroup for the two joins, the serial function
 * in Go below it.
 *
 * Each child times one cold threaded run ("cold": first stacks, first
 * faults), then `rounds` runs of the serial function alternating with
 * `rounds` threaded runs, and reports the medians: "fib" (the threaded
 * run), "serial", and "vs-serial", their ratio within the same process,
 * which is robust against a machine that is slower in one repetition than
 * in another.
 *
 * The driver prints its own table: one row per worker count with the three
 * implementations, and the ratios weft 1-worker / serial, 2-worker /
 * 1-worker, 8-worker / 2-worker, weft/pthread and weft/go.  --csv, --list,
 * --help and --child go to the harness unchanged.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <weft.h>
#include "harness.h"

static struct bench_param params[] = {
	{ "n", 30, "fib(n)" },
	{ "cutoff", 15, "calls with n at or below this run serially" },
	{ "rounds", 10, "timed rounds per process (the median is reported)" },
	{ "pstack", 65536, "pthread stack size in bytes (0: glibc default)" },
};

#define MAX_ROUNDS 1000

static long cutoff;

/* The serial function.  noipa: the threaded versions call the same code
 * the serial figure times, and the compiler may not find it free of side
 * effects and reuse one call's result for the next (it would, for the
 * serial rounds). */
static __attribute__((noipa)) long fib_serial(long n)
{
	return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

/* Threads in one threaded fib(n), the root included. */
static long fib_threads(long n)
{
	return n <= cutoff ? 1 : 1 + fib_threads(n - 1) + fib_threads(n - 2);
}

static void *weft_fib(void *arg)
{
	long n = (long)(intptr_t)arg;
	if (n <= cutoff)
		return (void *)(intptr_t)fib_serial(n);
	weft_t a, b;
	void *ra, *rb;
	if (weft_create(&a, NULL, weft_fib, (void *)(intptr_t)(n - 1)) ||
	    weft_create(&b, NULL, weft_fib, (void *)(intptr_t)(n - 2)))
		bench_fail("weft_create failed");
	if (weft_join(a, &ra) || weft_join(b, &rb))
		bench_fail("weft_join failed");
	return (void *)((intptr_t)ra + (intptr_t)rb);
}

static pthread_attr_t pattr;

static void *pthread_fib(void *arg)
{
	long n = (long)(intptr_t)arg;
	if (n <= cutoff)
		return (void *)(intptr_t)fib_serial(n);
	pthread_t a, b;
	void *ra, *rb;
	if (pthread_create(&a, &pattr, pthread_fib, (void *)(intptr_t)(n - 1)) ||
	    pthread_create(&b, &pattr, pthread_fib, (void *)(intptr_t)(n - 2)))
		bench_fail("pthread_create failed");
	if (pthread_join(a, &ra) || pthread_join(b, &rb))
		bench_fail("pthread_join failed");
	return (void *)((intptr_t)ra + (intptr_t)rb);
}

/* One run of the workload for this child: serial (impl 0) or threaded. */
static long run_once(int impl, long n)
{
	void *r = NULL;
	if (impl == BENCH_WEFT) {
		weft_t root;
		if (weft_create(&root, NULL, weft_fib, (void *)(intptr_t)n) || weft_join(root, &r))
			bench_fail("weft root failed");
	} else if (impl == BENCH_PTHREAD) {
		pthread_t root;
		if (pthread_create(&root, &pattr, pthread_fib, (void *)(intptr_t)n) ||
		    pthread_join(root, &r))
			bench_fail("pthread root failed");
	} else {
		r = (void *)(intptr_t)fib_serial(n);
	}
	return (long)(intptr_t)r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One timed run, checked; wall ns, and in *cpu (if not NULL) CPU ns. */
static double time_once(int impl, long n, long want, double *cpu)
{
	bench_begin();
	long r = run_once(impl, n);
	double ns = bench_end(1);
	if (cpu)
		*cpu = bench_cpu_per_op();
	if (r != want)
		bench_fail("fib(%ld) = %ld, expected %ld", n, r, want);
	return ns;
}

static double median_of(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return v[n / 2];
}

static void run_fib(int impl)
{
	long n = bench_param("n");
	long rounds = bench_param("rounds");
	cutoff = bench_param("cutoff");
	if (n < 0 || n > 60 || cutoff < 1)
		bench_fail("--n must be 0..60 and --cutoff at least 1");
	if (rounds < 1 || rounds > MAX_ROUNDS)
		bench_fail("--rounds must be 1..%d", MAX_ROUNDS);
	if (impl == BENCH_WEFT) {
		bench_weft_start();
	} else {
		pthread_attr_init(&pattr);
		long long st = bench_param("pstack");
		if (st && pthread_attr_setstacksize(&pattr, (size_t)st))
			bench_fail("pthread_attr_setstacksize(%lld) refused", st);
	}
	long want = fib_serial(n);
	weft_stats_t s0;
	if (impl == BENCH_WEFT)
		weft_stats_get(-1, &s0);
	double cold = time_once(impl, n, want, NULL);
	/* Serial and threaded rounds alternate, so that a stretch of the
	 * machine busy with other work slows both alike. */
	static double ser[MAX_ROUNDS], thr[MAX_ROUNDS], thr_cpu[MAX_ROUNDS];
	for (long i = 0; i < rounds; i++) {
		ser[i] = time_once(0, n, want, NULL);
		thr[i] = time_once(impl, n, want, &thr_cpu[i]);
	}
	double serial = median_of(ser, (int)rounds), ns = median_of(thr, (int)rounds);
	double cpu = median_of(thr_cpu, (int)rounds);
	long threads = fib_threads(n);
	if (impl == BENCH_WEFT)
		bench_weft_stats(&s0, (double)threads * (double)(rounds + 1));

	bench_result("fib", BENCH_NS, ns);
	bench_result("cpu", BENCH_NS, cpu);
	bench_result("serial", BENCH_NS, serial);
	bench_result("vs-serial", BENCH_COUNT_FRAC, ns / serial);
	bench_result("cold", BENCH_NS, cold);
	bench_result("threads", BENCH_COUNT, (double)threads);
}

#define FIB_IMPLS (BENCH_WEFT | BENCH_PTHREAD | BENCH_GO)
static const struct bench_case cases[] = {
	{ .name = "fib-1w", .what = "one fib(n); 1 worker / pthreads on 1 CPU / GOMAXPROCS=1",
	  .primary = "fib", .impls = FIB_IMPLS, .weft_workers = 1, .pin_one_cpu = 1,
	  .run = run_fib },
	{ .name = "fib-2w", .what = "one fib(n); 2 workers / pthreads free / GOMAXPROCS=2",
	  .primary = "fib", .impls = FIB_IMPLS, .weft_workers = 2, .run = run_fib },
	{ .name = "fib-8w", .what = "one fib(n); 8 workers / pthreads free / GOMAXPROCS=8",
	  .primary = "fib", .impls = FIB_IMPLS, .weft_workers = 8, .run = run_fib },
};

/* ------------------------------------------------------ the ratio table */

static struct bench_rows rows;

static double med(const char *cs, const char *impl, const char *fig)
{
	const struct bench_row *r = bench_row_find(&rows, cs, impl, fig);
	return r ? r->med : -1;
}

static void fmt_ns(char *buf, size_t len, double ns)
{
	if (ns < 0)
		snprintf(buf, len, "%s", "-");
	else if (ns >= 1e6)
		snprintf(buf, len, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.1f µs", ns / 1e3);
}

/* Print a column of the table: two spaces, then s padded to `width`
 * characters (not bytes: "µ" is two bytes of UTF-8). */
static void column(const char *s, int width)
{
	int chars = 0;
	for (const char *p = s; *p; p++)
		chars += ((unsigned char)*p & 0xc0) != 0x80;
	printf("  %s%*s", s, width > chars ? width - chars : 0, "");
}

/* One cell: median of the threaded run, its ratio to serial, the cold run. */
static void print_cell(const char *cs, const char *impl)
{
	char a[32], b[32];
	double ns = med(cs, impl, "fib");
	if (ns < 0) {
		column(!strcmp(impl, "go") && !bench_go_found() ? "n/a" : "FAILED", 36);
		return;
	}
	fmt_ns(a, sizeof a, ns);
	fmt_ns(b, sizeof b, med(cs, impl, "cold"));
	char cell[96];
	snprintf(cell, sizeof cell, "%s x%.2f (cold %s)", a, med(cs, impl, "vs-serial"), b);
	column(cell, 36);
}

static void print_ratio(const char *label, double num, double den)
{
	if (num > 0 && den > 0)
		printf("  %-34s %.3g\n", label, num / den);
	else
		printf("  %-34s n/a\n", label);
}

static int driver(int argc, char **argv)
{
	int rc = bench_collect(argc, argv, "bench_fib", cases, BENCH_COUNTOF(cases), params,
	                       BENCH_COUNTOF(params), &rows);
	if (rc == 64)
		return rc;
	cutoff = params[1].value;
	const struct bench_row *r = bench_row_find(&rows, "fib-1w", "weft", "fib");
	printf("# bench_fib: fib(%lld), a thread per call above %lld (%ld threads), the serial "
	       "function below; per process %lld timed rounds after a cold one, medians over %d "
	       "processes; %ld CPUs, load %.2f\n",
	       params[0].value, params[1].value, fib_threads(params[0].value), params[2].value,
	       r ? r->reps : 0, sysconf(_SC_NPROCESSORS_ONLN), bench_loadavg());
	printf("# xR: threaded / serial in the same process (C serial for weft and pthreads, Go "
	       "serial for go)\n");
	column("", 10);
	column("weft", 36);
	column("pthread", 36);
	column("go", 36);
	printf("\n");
	column("serial", 10);
	static const char *const impls[] = { "weft", "pthread", "go" };
	for (int k = 0; k < BENCH_COUNTOF(impls); k++) {
		char a[32];
		double ns = med("fib-1w", impls[k], "serial");
		fmt_ns(a, sizeof a, ns);
		column(ns < 0 && k == 2 && !bench_go_found() ? "n/a" : a, 36);
	}
	printf("\n");
	static const char *const label[] = { "1 worker", "2 workers", "8 workers" };
	for (int i = 0; i < BENCH_COUNTOF(cases); i++) {
		const char *cs = cases[i].name;
		char l[32];
		if (bench_workers_override())
			snprintf(l, sizeof l, "%s=%d", cs, bench_workers_override());
		column(bench_workers_override() ? l : label[i], 10);
		print_cell(cs, "weft");
		print_cell(cs, "pthread");
		print_cell(cs, "go");
		printf("\n");
	}
	printf("ratios (of medians):\n");
	print_ratio("weft 1 worker / serial C", med("fib-1w", "weft", "vs-serial"), 1);
	print_ratio("weft 2 workers / 1 worker", med("fib-2w", "weft", "fib"),
	            med("fib-1w", "weft", "fib"));
	print_ratio("weft 8 workers / 2 workers", med("fib-8w", "weft", "fib"),
	            med("fib-2w", "weft", "fib"));
	print_ratio("go GOMAXPROCS=1 / serial Go", med("fib-1w", "go", "vs-serial"), 1);
	print_ratio("go 2 / 1", med("fib-2w", "go", "fib"), med("fib-1w", "go", "fib"));
	print_ratio("go 8 / 2", med("fib-8w", "go", "fib"), med("fib-2w", "go", "fib"));
	print_ratio("pthread free / 1 CPU", med("fib-2w", "pthread", "fib"),
	            med("fib-1w", "pthread", "fib"));
	for (int i = 0; i < BENCH_COUNTOF(cases); i++) {
		const char *cs = cases[i].name;
		char l[64];
		snprintf(l, sizeof l, "weft/pthread, %s", cs);
		print_ratio(l, med(cs, "weft", "fib"), med(cs, "pthread", "fib"));
	}
	for (int i = 0; i < BENCH_COUNTOF(cases); i++) {
		const char *cs = cases[i].name;
		char l[64];
		snprintf(l, sizeof l, "weft/go, %s", cs);
		print_ratio(l, med(cs, "weft", "fib"), med(cs, "go", "fib"));
	}
	free(rows.row);
	return rc;
}

int main(int argc, char **argv)
{
	if (bench_harness_prints(argc, argv))
		return bench_main(argc, argv, "bench_fib", cases, BENCH_COUNTOF(cases), params,
		                  BENCH_COUNTOF(params));
	return driver(argc, argv);
}
