/*
 * bench_httpd.c — HTTP/1.1 keep-alive under wrk: demos/httpd (a green
 * thread per connection, 2 workers) against the same responder in Go (a
 * goroutine per connection, GOMAXPROCS=2; bench/go/httpd.go).
 *
 * Each child starts its server on 127.0.0.1, port chosen by the kernel,
 * runs Debian's wrk against it (`wrk -t T -c C -d Ds --latency`, default
 * -t2 -c256 -d10s: wrk shares the machine's CPUs with the server, the same
 * for both) and reports wrk's requests per second and latency percentiles.
 * The weft child runs the demo program built beside this one
 * (WEFT_HTTPD_BIN), which inherits WEFT_WORKERS.  The table at the end
 * gives requests/s and p99 of both and their ratios; the targets of the
 * issue this answers were weft >= 1.2 x Go's requests/s and a p99 no
 * higher than Go's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"

#ifndef WEFT_HTTPD_BIN
#error "WEFT_HTTPD_BIN (the path of demos/httpd) must be defined"
#endif

static struct bench_param params[] = {
	{ "t", 2, "wrk threads" },
	{ "c", 256, "wrk connections" },
	{ "d", 10, "wrk seconds" },
};

/* wrk's "12.34ms" in ns; -1 if it is not a duration. */
static double wrk_duration(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s)
		return -1;
	if (!strcmp(end, "us"))
		return v * 1e3;
	if (!strcmp(end, "ms"))
		return v * 1e6;
	if (!strcmp(end, "s"))
		return v * 1e9;
	return -1;
}

/* Run wrk against 127.0.0.1:port and report its figures. */
static void wrk_report(int port)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "wrk -t %lld -c %lld -d %llds --latency http://127.0.0.1:%d/",
	         bench_param("t"), bench_param("c"), bench_param("d"), port);
	FILE *f = popen(cmd, "r");
	if (!f)
		bench_fail("popen wrk: %s", strerror(errno));
	char line[512], all[8192] = "";
	double rps = 0, p50 = -1, p99 = -1, errors = 0;
	while (fgets(line, sizeof line, f)) {
		strncat(all, line, sizeof all - strlen(all) - 1);
		char a[64], b[64];
		if (sscanf(line, " %63s %63s", a, b) != 2)
			continue;
		if (!strcmp(a, "Requests/sec:"))
			rps = strtod(b, NULL);
		else if (!strcmp(a, "50%"))
			p50 = wrk_duration(b);
		else if (!strcmp(a, "99%"))
			p99 = wrk_duration(b);
		else if (!strcmp(a, "Socket") || !strcmp(a, "Non-2xx"))
			errors++;
	}
	int st = pclose(f);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) == 127)
		bench_fail("wrk did not run (Debian: apt-get install wrk)");
	if (rps <= 0 || p99 < 0)
		bench_fail("could not read wrk's output:\n%s", all);
	bench_result("req/s", BENCH_COUNT, rps);
	bench_result("p50", BENCH_NS, p50);
	bench_result("p99", BENCH_NS, p99);
	bench_result("wrk-errors", BENCH_COUNT, errors);
}

static void run_httpd(int impl)
{
	(void)impl;
	int out[2];
	if (pipe(out))
		bench_fail("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		bench_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		execl(WEFT_HTTPD_BIN, "httpd", "--port", "0", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	FILE *f = fdopen(out[0], "r");
	char line[256];
	int port = 0;
	if (!f || !fgets(line, sizeof line, f) || !strstr(line, "127.0.0.1:") ||
	    sscanf(strstr(line, "127.0.0.1:") + 10, "%d", &port) != 1) {
		kill(pid, SIGKILL);
		bench_fail("%s did not say where it listens", WEFT_HTTPD_BIN);
	}
	wrk_report(port);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static const struct bench_case cases[] = {
	{ .name = "httpd", .what = "wrk requests/s against an HTTP/1.1 keep-alive responder, "
	  "a thread per connection, 2 workers", .primary = "req/s", .impls = BENCH_WEFT | BENCH_GO,
	  .weft_workers = 2, .run = run_httpd },
};

static struct bench_rows rows;

static double med(const char *impl, const char *fig)
{
	const struct bench_row *r = bench_row_find(&rows, "httpd", impl, fig);
	return r ? r->med : -1;
}

static void ratio(const char *what, double num, double den)
{
	if (num >= 0 && den > 0)
		printf("  %-34s %.3g\n", what, num / den);
	else
		printf("  %-34s n/a\n", what);
}

int main(int argc, char **argv)
{
	if (bench_harness_prints(argc, argv))
		return bench_main(argc, argv, "bench_httpd", cases, BENCH_COUNTOF(cases), params,
		                  BENCH_COUNTOF(params));
	int rc = bench_collect(argc, argv, "bench_httpd", cases, BENCH_COUNTOF(cases), params,
	                       BENCH_COUNTOF(params), &rows);
	if (rc == 64)
		return rc;
	const struct bench_row *r = bench_row_find(&rows, "httpd", "weft", "req/s");
	printf("# bench_httpd: wrk -t%lld -c%lld -d%llds --latency, medians over %d processes per "
	       "server, WEFT_WORKERS=GOMAXPROCS=%d; %ld CPUs, load %.2f\n",
	       params[0].value, params[1].value, params[2].value, r ? r->reps : 0,
	       bench_workers_override() ? bench_workers_override() : cases[0].weft_workers,
	       sysconf(_SC_NPROCESSORS_ONLN), bench_loadavg());
	printf("%-8s %14s %12s %12s\n", "", "requests/s", "p50", "p99");
	static const char *const impls[] = { "weft", "go" };
	for (int i = 0; i < 2; i++) {
		double q = med(impls[i], "req/s"), p50 = med(impls[i], "p50"), p99 = med(impls[i], "p99");
		if (q < 0) {
			printf("%-8s %14s\n", impls[i], i && !bench_go_found() ? "n/a" : "FAILED");
			continue;
		}
		printf("%-8s %14.0f %10.2f ms %10.2f ms\n", impls[i], q, p50 / 1e6, p99 / 1e6);
	}
	printf("ratios (of medians):\n");
	ratio("requests/s weft/go (target >= 1.2)", med("weft", "req/s"), med("go", "req/s"));
	ratio("p99 weft/go (target <= 1)", med("weft", "p99"), med("go", "p99"));
	free(rows.row);
	return rc;
}
