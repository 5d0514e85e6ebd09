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
 *
 * Besides the switch time, the traced children report how long exit() took
 * to format and write the trace ("exit", not part of the switch figure) and
 * the size of the file.  n defaults to 1M so that the 2.2M switches of the
 * warm-up and timed rounds stay under the default cap of 4 Mi records per
 * worker (a run past the cap would measure the cheaper dropping path).
 *
 * The harness prints weft/pthread ratios only; this program runs it in CSV
 * mode into a temporary file and prints its own table with the ratios that
 * matter here: traced / untraced, in wall-clock and CPU time.  --csv,
 * --list and --help go to the harness unchanged.
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
	  .primary = "switch", .impls = BENCH_WEFT | BENCH_PTHREAD, .weft_workers = 1,
	  .pin_one_cpu = 1, .run = run_off },
	{ .name = "devnull", .what = "the same, WEFT_TRACE=/dev/null",
	  .primary = "switch", .impls = BENCH_WEFT, .weft_workers = 1, .run = run_devnull },
	{ .name = "file", .what = "the same, WEFT_TRACE=a file in /tmp",
	  .primary = "switch", .impls = BENCH_WEFT, .weft_workers = 1, .run = run_file },
};

/* ------------------------------------------------------ the ratio table */

struct row {
	char cs[16], impl[16], fig[16];
	double med, lo, hi;
	int reps;
};

static struct row rows[64];
static int nrows;

static const struct row *find(const char *cs, const char *impl, const char *fig)
{
	for (int i = 0; i < nrows; i++)
		if (!strcmp(rows[i].cs, cs) && !strcmp(rows[i].impl, impl) &&
		    !strcmp(rows[i].fig, fig))
			return &rows[i];
	return NULL;
}

static void read_csv(FILE *f)
{
	char line[512];
	while (fgets(line, sizeof line, f) && nrows < (int)(sizeof rows / sizeof rows[0])) {
		struct row *r = &rows[nrows];
		if (sscanf(line, "%*[^,],%15[^,],%15[^,],%15[^,],%*[^,],%lf,%lf,%lf,%d", r->cs,
		           r->impl, r->fig, &r->med, &r->lo, &r->hi, &r->reps) == 7)
			nrows++;
	}
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
	const struct row *w = find(cs, impl, "switch"), *c = find(cs, impl, "cpu"),
	                 *e = find(cs, impl, "exit"), *f = find(cs, impl, "file");
	char a[32], b[32], d[32], g[32];
	if (!w) {
		printf("  %-22s FAILED\n", label);
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
	const struct row *w1 = find(cs1, i1, "switch"), *w2 = find(cs2, i2, "switch");
	const struct row *c1 = find(cs1, i1, "cpu"), *c2 = find(cs2, i2, "cpu");
	if (w1 && w2 && c1 && c2)
		printf("  %-30s wall %.3g  cpu %.3g\n", label, w1->med / w2->med,
		       c1->med / c2->med);
}

static int driver(int argc, char **argv)
{
	FILE *tmp = tmpfile();
	char **av = calloc((size_t)argc + 2, sizeof *av);
	if (!tmp || !av)
		return 1;
	memcpy(av, argv, sizeof *av * (size_t)argc);
	av[argc] = "--csv";
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	dup2(fileno(tmp), STDOUT_FILENO);
	int rc = bench_main(argc + 1, av, "bench_trace", cases, BENCH_COUNTOF(cases), params,
	                    BENCH_COUNTOF(params));
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	rewind(tmp);
	read_csv(tmp);
	fclose(tmp);
	const struct row *r = find("off", "weft", "switch");
	printf("# bench_trace: yield ping-pong, n=%lld (weft) / pn=%lld (pthread) yields per "
	       "thread; medians (min .. max) of %d reps, each a fresh process\n",
	       params[0].value, params[1].value, r ? r->reps : 0);
	print_row("weft, trace off", "off", "weft");
	print_row("weft, /dev/null", "devnull", "weft");
	print_row("weft, file", "file", "weft");
	print_row("pthread", "off", "pthread");
	printf("ratios:\n");
	print_ratio("/dev/null / off", "devnull", "weft", "off", "weft");
	print_ratio("file / off", "file", "weft", "off", "weft");
	print_ratio("off / pthread", "off", "weft", "off", "pthread");
	print_ratio("/dev/null / pthread", "devnull", "weft", "off", "pthread");
	free(av);
	return rc;
}

/* Options whose output is the harness's own. */
static int passthrough(const char *a)
{
	return !strncmp(a, "--child", 7) || !strcmp(a, "--csv") || !strcmp(a, "--list") ||
	       !strcmp(a, "--help") || !strcmp(a, "--h");
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (passthrough(argv[i]))
			return bench_main(argc, argv, "bench_trace", cases, BENCH_COUNTOF(cases),
			                  params, BENCH_COUNTOF(params));
	return driver(argc, argv);
}
