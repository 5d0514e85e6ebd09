/*
 * bench_trace.c — what the trace timeline (WEFT_TRACE) costs: the yield
 * ping-pong of bench_switch (two threads on one worker hand the CPU to each
 * other, n yields each; figure = elapsed / 2n) run
 *
 *   off        weft, WEFT_TRACE unset (set to "", which is off)
 *   devnull    weft, WEFT_TRACE=/dev/null: every switch recorded, the JSON
 *              formatted at exit and thrown away
 *   file       weft, WEFT_TRACE=<a temporary file>: the same, written to disk
 *   pthread    two kernel threads pinned to one CPU calling sched_yield()
 *   go         the same three on Go (bench/go/trace.go, GOMAXPROCS=1):
 *              untraced, and under runtime/trace writing to /dev/null or to
 *              a file in /tmp.  Go's tracer encodes and writes while the
 *              program runs; weft formats its records at exit, so compare
 *              switch + exit for the total
 *
 * Besides the switch time, the traced children report how long exit() took
 * to format and write the trace ("exit", not part of the switch figure) and
 * the size of the file.  n defaults to 1M so that the 2.2M switches of the
 * warm-up and timed rounds stay under the default cap of 4 Mi records per
 * worker (a run past the cap would measure the cheaper dropping path).
 *
 * The harness prints weft/pthread and weft/go ratios only; this program
 * collects its medians (bench_collect) and prints its own table with the
 * ratios that matter here: traced / untraced, in wall-clock and CPU time,
 * and weft against Go in each mode.  --csv, --list and --help go to the
 * harness unchanged.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <weft.h>
#include "harness.h"

static struct bench_param params[] = {
	{ "n", 1000000, "yields per thread on weft" },
	{ "pn", 200000, "yields per thread on pthreads" },
};

#include "yield_pingpong.h"

/* ------------------------------------------------------------------ weft */

/* Exit-time cost: measured from just before exit() to an atexit handler
 * registered before weft's (handlers run in reverse order). */
static uint64_t exit_from;
static char trace_file[64];

static void report_exit(void)
{
	bench_result("exit", BENCH_NS, (double)(bench_now_ns() - exit_from));
	struct stat st;
	if (trace_file[0] && stat(trace_file, &st) == 0)
		bench_result("file", BENCH_BYTES, (double)st.st_size);
	if (trace_file[0])
		unlink(trace_file);
}

static void run_weft(const char *trace)
{
	if (trace && !strcmp(trace, "tmp")) {
		snprintf(trace_file, sizeof trace_file, "/tmp/weft-bench-trace-XXXXXX");
		int fd = mkstemp(trace_file);
		if (fd < 0)
			bench_fail("mkstemp failed");
		close(fd);
		trace = trace_file;
	}
	setenv("WEFT_TRACE", trace ? trace : "", 1);
	if (atexit(report_exit))
		bench_fail("atexit failed");
	bench_weft_start();
	long n = bench_param("n");
	yp_weft_round(n / 10 + 1, NULL, NULL);
	double ns = yp_weft_round(n, NULL, NULL);
	bench_result("switch", BENCH_NS, ns);
	bench_result("cpu", BENCH_NS, bench_cpu_per_op());
	fflush(stdout);
	exit_from = bench_now_ns();
	exit(0);  /* both pingers are joined: nothing is parked */
}

/* --------------------------------------------------------------- pthread */

static void run_pthread(void)
{
	long pn = bench_param("pn");
	yp_pthread_round(pn / 10 + 1);
	double ns = yp_pthread_round(pn);
	bench_result("switch", BENCH_NS, ns);
	bench_result("cpu", BENCH_NS, bench_cpu_per_op());
}

static void run_off(int impl)
{
	if (impl == BENCH_WEFT)
		run_weft(NULL);
	else
		run_pthread();
}

static void run_devnull(int impl) { (void)impl; run_weft("/dev/null"); }
static void run_file(int impl) { (void)impl; run_weft("tmp"); }

static const struct bench_case cases[] = {
	{ .name = "off", .what = "yield ping-pong, 1 worker, WEFT_TRACE unset",
	  .primary = "switch", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO, .weft_workers = 1,
	  .pin_one_cpu = 1, .run = run_off },
	{ .name = "devnull", .what = "the same, WEFT_TRACE=/dev/null",
	  .primary = "switch", .impls = BENCH_WEFT | BENCH_GO, .weft_workers = 1,
	  .run = run_devnull },
	{ .name = "file", .what = "the same, WEFT_TRACE=a file in /tmp",
	  .primary = "switch", .impls = BENCH_WEFT | BENCH_GO, .weft_workers = 1, .run = run_file },
};

/* ------------------------------------------------------ the ratio table */

static struct bench_rows rows;

static const struct bench_row *find(const char *cs, const char *impl, const char *fig)
{
	return bench_row_find(&rows, cs, impl, fig);
}

static const char *fmt(char *buf, size_t len, double ns)
{
	if (ns >= 1e6)
		snprintf(buf, len, "%.1f ms", ns / 1e6);
	else if (ns >= 1e3)
		snprintf(buf, len, "%.2f µs", ns / 1e3);
	else
		snprintf(buf, len, "%.1f ns", ns);
	return buf;
}

static void print_row(const char *label, const char *cs, const char *impl)
{
	const struct bench_row *w = find(cs, impl, "switch"), *c = find(cs, impl, "cpu"),
	                       *e = find(cs, impl, "exit"), *f = find(cs, impl, "file");
	char a[32], b[32], d[32], g[32];
	if (!w) {
		printf("  %-22s %s\n", label,
		       !strcmp(impl, "go") && !bench_go_found() ? "n/a (bench/go not built)" : "FAILED");
		return;
	}
	printf("  %-22s %10s (%s .. %s)  cpu %9s", label, fmt(a, sizeof a, w->med),
	       fmt(b, sizeof b, w->lo), fmt(d, sizeof d, w->hi),
	       c ? fmt(g, sizeof g, c->med) : "-");
	if (e && strcmp(cs, "off"))
		printf("  exit %s", fmt(a, sizeof a, e->med));
	if (f)
		printf("  file %.1f MiB", f->med / (1024.0 * 1024.0));
	printf("\n");
}

static void print_ratio(const char *label, const char *cs1, const char *i1, const char *cs2,
                        const char *i2)
{
	const struct bench_row *w1 = find(cs1, i1, "switch"), *w2 = find(cs2, i2, "switch");
	const struct bench_row *c1 = find(cs1, i1, "cpu"), *c2 = find(cs2, i2, "cpu");
	if (w1 && w2 && c1 && c2)
		printf("  %-30s wall %.3g  cpu %.3g\n", label, w1->med / w2->med,
		       c1->med / c2->med);
	else if (!bench_go_found() && (!strcmp(i1, "go") || !strcmp(i2, "go")))
		printf("  %-30s n/a\n", label);
}

static int driver(int argc, char **argv)
{
	int rc = bench_collect(argc, argv, "bench_trace", cases, BENCH_COUNTOF(cases), params,
	                       BENCH_COUNTOF(params), &rows);
	if (rc == 64)
		return rc;
	const struct bench_row *r = find("off", "weft", "switch");
	printf("# bench_trace: yield ping-pong, n=%lld (weft, go) / pn=%lld (pthread) yields per "
	       "thread; medians (min .. max) of %d reps, each a fresh process; load %.2f\n",
	       params[0].value, params[1].value, r ? r->reps : 0, bench_loadavg());
	print_row("weft, trace off", "off", "weft");
	print_row("weft, /dev/null", "devnull", "weft");
	print_row("weft, file", "file", "weft");
	print_row("pthread", "off", "pthread");
	print_row("go, trace off", "off", "go");
	print_row("go, /dev/null", "devnull", "go");
	print_row("go, file", "file", "go");
	printf("ratios:\n");
	print_ratio("/dev/null / off", "devnull", "weft", "off", "weft");
	print_ratio("file / off", "file", "weft", "off", "weft");
	print_ratio("off / pthread", "off", "weft", "off", "pthread");
	print_ratio("/dev/null / pthread", "devnull", "weft", "off", "pthread");
	print_ratio("go: /dev/null / off", "devnull", "go", "off", "go");
	print_ratio("weft/go, trace off", "off", "weft", "off", "go");
	print_ratio("weft/go, /dev/null", "devnull", "weft", "devnull", "go");
	print_ratio("weft/go, file", "file", "weft", "file", "go");
	free(rows.row);
	return rc;
}

int main(int argc, char **argv)
{
	if (bench_harness_prints(argc, argv))
		return bench_main(argc, argv, "bench_trace", cases, BENCH_COUNTOF(cases), params,
		                  BENCH_COUNTOF(params));
	return driver(argc, argv);
}
