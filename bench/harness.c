/*
 * harness.c — driver and child support for weft's benchmarks (see harness.h).
 *
 * The Go implementation: the driver looks for bench/go's program at
 * $WEFT_BENCH_GO, else at go/weft-bench-go beside its own executable (where
 * CMake and bench/go/build.sh put it).  An empty WEFT_BENCH_GO, or no program
 * there, turns the go column into "n/a"; a Go child that runs and fails is a
 * failed repetition like any other.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#define MAX_FIGURES 24
#define MAX_REPS 101
#define LINE_TAG "@bench "

static const char *impl_names[] = { "weft", "pthread", "pth", "go", "c" };
enum { NIMPL = 5, IMPL_WEFT = 0, IMPL_PTHREAD = 1, IMPL_PTH = 2, IMPL_GO = 3, IMPL_C = 4 };

static struct bench_param *g_params;
static int g_nparams;

/* ---------------------------------------------------------------- child -- */

void bench_result(const char *name, enum bench_kind kind, double value)
{
	printf(LINE_TAG "%s %d %.17g\n", name, (int)kind, value);
	fflush(stdout);
}

void bench_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fflush(stdout);
	_exit(2);
}

long long bench_param(const char *name)
{
	for (int i = 0; i < g_nparams; i++)
		if (!strcmp(g_params[i].name, name))
			return g_params[i].value;
	fprintf(stderr, "bench: unknown parameter %s\n", name);
	abort();
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t sect_wall, sect_cpu;
static double sect_cpu_per_op;

void bench_begin(void)
{
	sect_cpu = cpu_now_ns();
	sect_wall = bench_now_ns();
}

double bench_end(double ops)
{
	uint64_t wall = bench_now_ns() - sect_wall;
	uint64_t cpu = cpu_now_ns() - sect_cpu;
	sect_cpu_per_op = (double)cpu / ops;
	return (double)wall / ops;
}

double bench_cpu_per_op(void) { return sect_cpu_per_op; }

static long long statm_field(int idx)
{
	/* Plain read(2): no stdio buffer, no allocation after the first call. */
	char buf[256];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = buf;
	long long v = 0;
	for (int i = 0; i <= idx; i++)
		v = strtoll(p, &p, 10);
	return v * sysconf(_SC_PAGESIZE);
}

long long bench_vsz_bytes(void) { return statm_field(0); }
long long bench_rss_bytes(void) { return statm_field(1); }

void bench_pin_one_cpu(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set))
		bench_fail("sched_getaffinity: %s", strerror(errno));
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &set)) {
			CPU_ZERO(&set);
			CPU_SET(c, &set);
			if (sched_setaffinity(0, sizeof set, &set))
				bench_fail("sched_setaffinity: %s", strerror(errno));
			return;
		}
	}
}

void bench_gate_arrive(struct bench_gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->arrived++;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

void bench_gate_wait(struct bench_gate *g, long n)
{
	pthread_mutex_lock(&g->mu);
	while (g->arrived < n)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

void bench_gate_open(struct bench_gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

void bench_gate_reset(struct bench_gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->arrived = 0;
	g->open = 0;
	pthread_mutex_unlock(&g->mu);
}

void bench_weft_start(void)
{
	int e = weft_init();
	if (e)
		bench_fail("weft_init: %s", strerror(e));
}

void bench_weft_stats(const struct weft_stats *before, double ops)
{
	weft_stats_t now;
	if (weft_stats_get(-1, &now))
		return;
	bench_result("weft.switches/op", BENCH_COUNT_FRAC, (double)(now.switches - before->switches) / ops);
	bench_result("weft.parks/op", BENCH_COUNT_FRAC, (double)(now.parks - before->parks) / ops);
	bench_result("weft.steals/op", BENCH_COUNT_FRAC, (double)(now.steals - before->steals) / ops);
	bench_result("weft.idle_sleeps/op", BENCH_COUNT_FRAC,
	             (double)(now.idle_sleeps - before->idle_sleeps) / ops);
	bench_result("weft.preemptions", BENCH_COUNT, (double)(now.preemptions - before->preemptions));
	bench_result("weft.deferred_ticks", BENCH_COUNT,
	             (double)(now.deferred_ticks - before->deferred_ticks));
}

/* --------------------------------------------------------------- driver -- */

struct figure {
	char name[64];
	enum bench_kind kind;
	double v[NIMPL][MAX_REPS];
	int n[NIMPL];
};

struct case_result {
	struct figure fig[MAX_FIGURES];
	int nfig;
	int ok[NIMPL], failed[NIMPL];
};

static struct {
	int reps;
	int csv;
	int verbose;
	int timeout_s;
	int impls;   /* BENCH_* bits selected with --impl */
	int workers; /* --workers: WEFT_WORKERS and GOMAXPROCS for every case; 0: the case's */
	const char *only;
	const char *self;
	const char *prog;
	char go[PATH_MAX]; /* the Go program, or "" when it is not there */
	struct bench_rows *collect; /* bench_collect's output, or NULL */
} opt = { 5, 0, 0, 180, BENCH_WEFT | BENCH_PTHREAD | BENCH_PTH | BENCH_GO | BENCH_C, 0, NULL,
          NULL, NULL, "", NULL };

/* Find the Go program (see the top of this file); "" when there is none. */
static void find_go(void)
{
	const char *env = getenv("WEFT_BENCH_GO");
	opt.go[0] = '\0';
	if (env) {
		if (*env && access(env, X_OK) == 0)
			snprintf(opt.go, sizeof opt.go, "%s", env);
		return;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = '\0';
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/go/weft-bench-go", self);
	if (strlen(path) < sizeof opt.go && access(path, X_OK) == 0)
		snprintf(opt.go, sizeof opt.go, "%s", path);
}

int bench_go_found(void) { return opt.go[0] != '\0'; }
int bench_workers_override(void) { return opt.workers; }

double bench_loadavg(void)
{
	double load = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &load) != 1)
			load = -1;
		fclose(f);
	}
	return load;
}

/* Figures the driver adds from wait4's rusage: shown in the text output only
 * for cases with show_maxrss. */
static int is_rusage_figure(const char *name)
{
	return !strcmp(name, "maxrss") || !strcmp(name, "sys-cpu") || !strcmp(name, "sys-share");
}

static struct figure *figure_get(struct case_result *r, const char *name, enum bench_kind kind)
{
	for (int i = 0; i < r->nfig; i++) {
		struct figure *f = &r->fig[i];
		if (!strcmp(f->name, name)) {
			int none = 1;
			for (int k = 0; k < NIMPL; k++)
				none &= !f->n[k];
			if (none)
				f->kind = kind;  /* the primary is made before its kind is known */
			return f;
		}
	}
	if (r->nfig == MAX_FIGURES)
		return NULL;
	struct figure *f = &r->fig[r->nfig++];
	memset(f, 0, sizeof *f);
	snprintf(f->name, sizeof f->name, "%s", name);
	f->kind = kind;
	return f;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(const double *v, int n, double *lo, double *hi)
{
	double s[MAX_REPS];
	memcpy(s, v, sizeof *v * (size_t)n);
	qsort(s, (size_t)n, sizeof *s, cmp_double);
	if (lo)
		*lo = s[0];
	if (hi)
		*hi = s[n - 1];
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void fmt_num(char *buf, size_t len, double v, const char *unit)
{
	double a = v < 0 ? -v : v;
	if (a >= 100)
		snprintf(buf, len, "%.0f %s", v, unit);
	else if (a >= 10)
		snprintf(buf, len, "%.1f %s", v, unit);
	else
		snprintf(buf, len, "%.2f %s", v, unit);
}

static void fmt_value(char *buf, size_t len, enum bench_kind kind, double v)
{
	switch (kind) {
	case BENCH_NS:
		if (v >= 1e9)
			fmt_num(buf, len, v / 1e9, "s");
		else if (v >= 1e6)
			fmt_num(buf, len, v / 1e6, "ms");
		else if (v >= 1e3)
			fmt_num(buf, len, v / 1e3, "µs");
		else
			fmt_num(buf, len, v, "ns");
		break;
	case BENCH_BYTES:
		if (v >= 1024.0 * 1024 * 1024)
			fmt_num(buf, len, v / (1024.0 * 1024 * 1024), "GiB");
		else if (v >= 1024.0 * 1024)
			fmt_num(buf, len, v / (1024.0 * 1024), "MiB");
		else if (v >= 1024.0)
			fmt_num(buf, len, v / 1024.0, "KiB");
		else
			fmt_num(buf, len, v, "B");
		break;
	case BENCH_PCT:
		snprintf(buf, len, "%.1f%%", v);
		break;
	case BENCH_COUNT_FRAC:
		snprintf(buf, len, "%.3g", v);
		break;
	default:
		snprintf(buf, len, "%.0f", v);
		break;
	}
}

static const char *kind_unit(enum bench_kind k)
{
	switch (k) {
	case BENCH_NS: return "ns";
	case BENCH_BYTES: return "bytes";
	case BENCH_PCT: return "percent";
	case BENCH_COUNT_FRAC: return "count";
	default: return "count";
	}
}

/* Parse a count: "12", "10K", "1M", "2G" (powers of 10) or "64Ki", "1Mi",
 * "1Gi" (powers of 2). */
static int parse_size(const char *s, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	long long mul = 1;
	if (*end == 'K' || *end == 'k')
		mul = end[1] == 'i' ? 1024 : 1000, end += 1 + (end[1] == 'i');
	else if (*end == 'M' || *end == 'm')
		mul = end[1] == 'i' ? 1024 * 1024 : 1000000, end += 1 + (end[1] == 'i');
	else if (*end == 'G' || *end == 'g')
		mul = end[1] == 'i' ? 1024LL * 1024 * 1024 : 1000000000, end += 1 + (end[1] == 'i');
	if (*end)
		return -1;
	*out = v * mul;
	return 0;
}

/* Append one value of a figure the driver measured itself. */
static void add_figure(struct case_result *r, const char *name, enum bench_kind kind,
                       int impl_idx, double v)
{
	struct figure *f = figure_get(r, name, kind);
	if (f && f->n[impl_idx] < MAX_REPS)
		f->v[impl_idx][f->n[impl_idx]++] = v;
}

/* Run one child; fold its figures into r.  Returns 0 on success. */
static int run_child(const struct bench_case *c, int impl_idx, int rep, struct case_result *r)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC)) {
		perror("pipe");
		return -1;
	}
	char childarg[128];
	snprintf(childarg, sizeof childarg, "--child=%s:%s", c->name, impl_names[impl_idx]);
	char *argv[4 + 64];
	char pbuf[64][96];
	int ac = 0;
	argv[ac++] = (char *)(impl_idx == IMPL_GO ? opt.go : opt.prog);
	argv[ac++] = childarg;
	for (int i = 0; i < g_nparams && i < 64; i++) {
		snprintf(pbuf[i], sizeof pbuf[i], "--%s=%lld", g_params[i].name, g_params[i].value);
		argv[ac++] = pbuf[i];
	}
	argv[ac] = NULL;

	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return -1;
	}
	if (pid == 0) {
		dup2(pfd[1], 1);
		int workers = opt.workers ? opt.workers : c->weft_workers;
		char w[16];
		snprintf(w, sizeof w, "%d", workers);
		if (impl_idx == IMPL_WEFT && workers > 0)
			setenv("WEFT_WORKERS", w, 1);
		/* Go's processors follow weft's workers: the case's count, else
		 * the WEFT_WORKERS the weft child inherits, else both default to
		 * the CPUs the process may run on. */
		if (impl_idx == IMPL_GO && workers > 0)
			setenv("GOMAXPROCS", w, 1);
		else if (impl_idx == IMPL_GO && getenv("WEFT_WORKERS"))
			setenv("GOMAXPROCS", getenv("WEFT_WORKERS"), 1);
		const char *extra = impl_idx == IMPL_WEFT ? c->weft_env
		                    : impl_idx == IMPL_GO ? c->go_env : NULL;
		if (extra) {
			char *env = strdup(extra), *save = NULL;
			for (char *kv = env ? strtok_r(env, " ", &save) : NULL; kv;
			     kv = strtok_r(NULL, " ", &save)) {
				char *eq = strchr(kv, '=');
				if (eq) {
					*eq = '\0';
					setenv(kv, eq + 1, 1);
				}
			}
		}
		execv(impl_idx == IMPL_GO ? opt.go : opt.self, argv);
		perror("execv");
		_exit(127);
	}
	close(pfd[1]);

	/* A figure a child reports twice (a warm-up round, say) keeps the last. */
	int start_n[MAX_FIGURES];
	for (int i = 0; i < MAX_FIGURES; i++)
		start_n[i] = i < r->nfig ? r->fig[i].n[impl_idx] : 0;
	char buf[8192];
	size_t used = 0;
	int timed_out = 0;
	uint64_t deadline = bench_now_ns() + (uint64_t)opt.timeout_s * 1000000000ull;
	for (;;) {
		uint64_t now = bench_now_ns();
		if (now >= deadline) {
			timed_out = 1;
			kill(pid, SIGKILL);
			break;
		}
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int pr = poll(&p, 1, (int)((deadline - now) / 1000000 + 1));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			continue;
		ssize_t n = read(pfd[0], buf + used, sizeof buf - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
		buf[used] = '\0';
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			char name[64];
			int kind;
			double v;
			if (!strncmp(line, LINE_TAG, strlen(LINE_TAG)) &&
			    sscanf(line + strlen(LINE_TAG), "%63s %d %lf", name, &kind, &v) == 3) {
				struct figure *f = figure_get(r, name, (enum bench_kind)kind);
				if (f && f->n[impl_idx] > start_n[f - r->fig])
					f->v[impl_idx][f->n[impl_idx] - 1] = v;
				else if (f && f->n[impl_idx] < MAX_REPS)
					f->v[impl_idx][f->n[impl_idx]++] = v;
				if (opt.verbose) {
					char vb[48];
					fmt_value(vb, sizeof vb, (enum bench_kind)kind, v);
					fprintf(stderr, "  %s rep %d %s: %s = %s\n", c->name, rep + 1,
					        impl_names[impl_idx], name, vb);
				}
			} else {
				fprintf(stderr, "%s\n", line);
			}
			line = nl + 1;
		}
		used = strlen(line);
		memmove(buf, line, used + 1);
		if (used == sizeof buf - 1)
			used = 0;  /* an absurdly long line: drop it */
	}
	close(pfd[0]);
	int status = 0;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
		;
	if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (timed_out)
			fprintf(stderr, "bench: %s on %s: killed after %d s\n", c->name,
			        impl_names[impl_idx], opt.timeout_s);
		else if (WIFSIGNALED(status))
			fprintf(stderr, "bench: %s on %s: child killed by signal %d\n", c->name,
			        impl_names[impl_idx], WTERMSIG(status));
		else
			fprintf(stderr, "bench: %s on %s: child exited with status %d\n", c->name,
			        impl_names[impl_idx], WEXITSTATUS(status));
		return -1;
	}
	/* The whole child process, runtime start and warm-up included. */
	double user = (double)ru.ru_utime.tv_sec * 1e9 + (double)ru.ru_utime.tv_usec * 1e3;
	double sys = (double)ru.ru_stime.tv_sec * 1e9 + (double)ru.ru_stime.tv_usec * 1e3;
	add_figure(r, "maxrss", BENCH_BYTES, impl_idx, (double)ru.ru_maxrss * 1024.0);
	add_figure(r, "sys-cpu", BENCH_NS, impl_idx, sys);
	if (user + sys > 0)
		add_figure(r, "sys-share", BENCH_PCT, impl_idx, 100.0 * sys / (user + sys));
	return 0;
}

static int case_selected(const struct bench_case *c)
{
	if (!opt.only)
		return 1;
	size_t n = strlen(c->name);
	for (const char *p = opt.only; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == n && !strncmp(p, c->name, n))
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

/* Whether implementation k of case c runs in this invocation. */
static int impl_runs(const struct bench_case *c, int k)
{
	if (!(c->impls & opt.impls & (1 << k)))
		return 0;
	return k != IMPL_GO || opt.go[0];
}

/* Whether it would run but cannot: the Go port was not built. */
static int impl_na(const struct bench_case *c, int k)
{
	return k == IMPL_GO && (c->impls & opt.impls & BENCH_GO) && !opt.go[0];
}

/* Median of the primary figure for implementation k, or -1 if none. */
static double prim_median(const struct figure *prim, int k)
{
	return prim && prim->n[k] ? median(prim->v[k], prim->n[k], NULL, NULL) : -1;
}

/* The ratios printed for every case: numerator / denominator of the primary. */
static const struct { int num, den; } ratios[] = {
	{ IMPL_WEFT, IMPL_PTHREAD }, { IMPL_PTH, IMPL_PTHREAD }, { IMPL_WEFT, IMPL_GO },
	{ IMPL_WEFT, IMPL_C },
};

static void collect_case(const struct bench_case *c, const struct case_result *r)
{
	struct bench_rows *rs = opt.collect;
	for (int i = 0; i < r->nfig; i++) {
		const struct figure *f = &r->fig[i];
		for (int k = 0; k < NIMPL; k++) {
			if (!f->n[k])
				continue;
			if (rs->n == rs->cap) {
				int cap = rs->cap ? 2 * rs->cap : 64;
				struct bench_row *nr = realloc(rs->row, sizeof *nr * (size_t)cap);
				if (!nr)
					return;
				rs->row = nr;
				rs->cap = cap;
			}
			struct bench_row *row = &rs->row[rs->n++];
			row->cs = c->name;
			row->impl = impl_names[k];
			snprintf(row->fig, sizeof row->fig, "%s", f->name);
			row->kind = f->kind;
			row->med = median(f->v[k], f->n[k], &row->lo, &row->hi);
			row->reps = f->n[k];
		}
	}
}

static void print_csv(const char *title, const struct bench_case *c, const struct case_result *r,
                      const struct figure *prim)
{
	for (int i = 0; i < r->nfig; i++) {
		const struct figure *f = &r->fig[i];
		for (int k = 0; k < NIMPL; k++) {
			if (!f->n[k])
				continue;
			double lo, hi, m = median(f->v[k], f->n[k], &lo, &hi);
			printf("%s,%s,%s,%s,%s,%.6g,%.6g,%.6g,%d\n", title, c->name, impl_names[k],
			       f->name, kind_unit(f->kind), m, lo, hi, f->n[k]);
		}
	}
	for (int i = 0; i < BENCH_COUNTOF(ratios); i++) {
		double num = prim_median(prim, ratios[i].num), den = prim_median(prim, ratios[i].den);
		if (num >= 0 && den > 0)
			printf("%s,%s,ratio,%s,%s/%s,%.6g,,,\n", title, c->name, prim->name,
			       impl_names[ratios[i].num], impl_names[ratios[i].den], num / den);
	}
}

static void print_case(const char *title, const struct bench_case *c, struct case_result *r)
{
	const struct figure *prim = NULL;
	for (int i = 0; i < r->nfig; i++)
		if (!strcmp(r->fig[i].name, c->primary))
			prim = &r->fig[i];

	if (opt.collect) {
		collect_case(c, r);
		return;
	}
	if (opt.csv) {
		print_csv(title, c, r, prim);
		fflush(stdout);
		return;
	}

	char line[4096];
	size_t pos = 0;
	/* Append to line, never past its end. */
#define ADD(...) (pos += (size_t)snprintf(line + pos, pos < sizeof line ? sizeof line - pos : 0, __VA_ARGS__), \
	              pos = pos < sizeof line ? pos : sizeof line - 1)
	ADD("%-22s", c->name);
	for (int k = 0; k < NIMPL; k++) {
		if (impl_na(c, k)) {
			ADD("  %s n/a", impl_names[k]);
			continue;
		}
		if (!impl_runs(c, k))
			continue;
		ADD("  %s ", impl_names[k]);
		if (!prim || !prim->n[k]) {
			ADD("FAILED");
			continue;
		}
		char vb[48];
		fmt_value(vb, sizeof vb, prim->kind, median(prim->v[k], prim->n[k], NULL, NULL));
		ADD("%s", vb);
		/* The other figures of this implementation, in parentheses. */
		int first = 1;
		for (int i = 0; i < r->nfig; i++) {
			const struct figure *f = &r->fig[i];
			if (f == prim || !f->n[k] || (is_rusage_figure(f->name) && !c->show_maxrss) ||
			    (!strncmp(f->name, "weft.", 5) && !opt.verbose))
				continue;
			fmt_value(vb, sizeof vb, f->kind, median(f->v[k], f->n[k], NULL, NULL));
			ADD("%s%s %s", first ? " (" : ", ", f->name, vb);
			first = 0;
		}
		if (!first)
			ADD(")");
		if (r->failed[k])
			ADD(" [%d of %d runs failed]", r->failed[k], r->failed[k] + r->ok[k]);
	}
	/* weft/pthread and weft/go; "n/a" where Go was not built. */
	const char *sep = "  ratio ";
	for (int i = 0; i < BENCH_COUNTOF(ratios); i++) {
		int nk = ratios[i].num, dk = ratios[i].den;
		double num = prim_median(prim, nk), den = prim_median(prim, dk);
		if (nk != IMPL_WEFT)
			continue;  /* pth/pthread: CSV only, as before */
		if (num >= 0 && den > 0)
			ADD("%s%.3g (%s/%s)", sep, num / den, impl_names[nk], impl_names[dk]);
		else if (impl_na(c, dk))
			ADD("%sn/a (%s/%s)", sep, impl_names[nk], impl_names[dk]);
		else
			continue;
		sep = ", ";
	}
	ADD("  [%s]", c->what);
#undef ADD
	puts(line);
	fflush(stdout);
}

static void usage(const char *title, const struct bench_case *cases, int ncases)
{
	printf("usage: %s [options]\n\n%s: runs each case on weft, on pthreads and on Go (and\n"
	       "GNU Pth where it applies), each repetition in a fresh process, and prints medians.\n\n"
	       "options:\n"
	       "  --reps=N          repetitions per implementation (default %d)\n"
	       "  --only=A,B        run only these cases\n"
	       "  --impl=weft,pthread,pth,go,c  implementations to run (default all available)\n"
	       "  --workers=N       WEFT_WORKERS (and GOMAXPROCS) for every case instead of the\n"
	       "                    case's own; pthreads run as the case says\n"
	       "  --csv             machine-readable output: bench,case,impl,figure,unit,median,min,max,reps\n"
	       "  --verbose         print every repetition's figures on stderr\n"
	       "  --timeout=S       kill a child after S seconds (default %d)\n"
	       "  --list            list the cases\n"
	       "Go: %s\n",
	       opt.prog, title, opt.reps, opt.timeout_s,
	       opt.go[0] ? opt.go : "not found (build bench/go, or set WEFT_BENCH_GO): n/a");
	for (int i = 0; i < g_nparams; i++) {
		int pad = 14 - (int)strlen(g_params[i].name);
		printf("  --%s=N%*s %s (default %lld)\n", g_params[i].name, pad > 0 ? pad : 1, "",
		       g_params[i].help, g_params[i].value);
	}
	printf("\ncases:\n");
	for (int i = 0; i < ncases; i++)
		printf("  %-22s %s\n", cases[i].name, cases[i].what);
}

static int child_main(const char *spec, const struct bench_case *cases, int ncases)
{
	const char *colon = strchr(spec, ':');
	if (!colon)
		bench_fail("bad --child=%s", spec);
	int impl = -1;
	for (int k = 0; k < NIMPL; k++)
		if (!strcmp(colon + 1, impl_names[k]))
			impl = k;
	for (int i = 0; i < ncases; i++) {
		const struct bench_case *c = &cases[i];
		if (strlen(c->name) != (size_t)(colon - spec) || strncmp(c->name, spec, (size_t)(colon - spec)))
			continue;
		if (impl < 0 || !(c->impls & (1 << impl)))
			bench_fail("case %s has no implementation %s", c->name, colon + 1);
		if (impl == IMPL_GO)
			bench_fail("the go implementation is bench/go's program, not this one");
		if (impl != 0 && c->pin_one_cpu)
			bench_pin_one_cpu();
		c->run(1 << impl);
		fflush(stdout);
		/* Not exit(): green threads or kernel threads may still be parked. */
		_exit(0);
	}
	bench_fail("unknown case in --child=%s", spec);
}

int bench_main(int argc, char **argv, const char *title, const struct bench_case *cases,
               int ncases, struct bench_param *params, int nparams)
{
	g_params = params;
	g_nparams = nparams;
	opt.prog = argv[0];
	opt.self = "/proc/self/exe";
	find_go();
#ifndef BENCH_HAVE_PTH
	opt.impls &= ~BENCH_PTH;
#endif
	const char *child = NULL;
	int list = 0;

	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		char *val = NULL;
		if (strncmp(a, "--", 2)) {
			fprintf(stderr, "%s: unexpected argument %s (try --help)\n", opt.prog, a);
			return 64;
		}
		a += 2;
		char *eq = strchr(a, '=');
		char name[64];
		size_t nl = eq ? (size_t)(eq - a) : strlen(a);
		if (nl >= sizeof name)
			nl = sizeof name - 1;
		memcpy(name, a, nl);
		name[nl] = '\0';
		if (eq)
			val = eq + 1;
#define NEEDVAL()                                                                   \
	do {                                                                            \
		if (!val && i + 1 < argc)                                                   \
			val = argv[++i];                                                        \
		if (!val) {                                                                 \
			fprintf(stderr, "%s: --%s needs a value\n", opt.prog, name);            \
			return 64;                                                              \
		}                                                                           \
	} while (0)
		if (!strcmp(name, "help") || !strcmp(name, "h")) {
			usage(title, cases, ncases);
			return 0;
		} else if (!strcmp(name, "csv")) {
			opt.csv = 1;
		} else if (!strcmp(name, "verbose")) {
			opt.verbose = 1;
		} else if (!strcmp(name, "list")) {
			list = 1;
		} else if (!strcmp(name, "child")) {
			NEEDVAL();
			child = val;
		} else if (!strcmp(name, "only")) {
			NEEDVAL();
			opt.only = val;
		} else if (!strcmp(name, "reps") || !strcmp(name, "timeout")) {
			NEEDVAL();
			long long v;
			if (parse_size(val, &v) || v < 1 || v > (name[0] == 'r' ? MAX_REPS : 86400)) {
				fprintf(stderr, "%s: bad --%s=%s\n", opt.prog, name, val);
				return 64;
			}
			*(name[0] == 'r' ? &opt.reps : &opt.timeout_s) = (int)v;
		} else if (!strcmp(name, "workers")) {
			NEEDVAL();
			long long v;
			if (parse_size(val, &v) || v < 1 || v > 1024) {
				fprintf(stderr, "%s: bad --workers=%s (1..1024)\n", opt.prog, val);
				return 64;
			}
			opt.workers = (int)v;
		} else if (!strcmp(name, "impl")) {
			NEEDVAL();
			int m = 0;
			for (int k = 0; k < NIMPL; k++) {
				size_t l = strlen(impl_names[k]);
				for (const char *p = val; (p = strstr(p, impl_names[k])); p += l)
					if ((p == val || p[-1] == ',') && (p[l] == ',' || !p[l]))
						m |= 1 << k;
			}
			if (!m) {
				fprintf(stderr, "%s: bad --impl=%s\n", opt.prog, val);
				return 64;
			}
			opt.impls &= m;
		} else {
			int found = 0;
			for (int k = 0; k < nparams; k++) {
				if (strcmp(name, params[k].name))
					continue;
				NEEDVAL();
				long long v;
				if (parse_size(val, &v)) {
					fprintf(stderr, "%s: bad --%s=%s\n", opt.prog, name, val);
					return 64;
				}
				params[k].value = v;
				found = 1;
			}
			if (!found) {
				fprintf(stderr, "%s: unknown option --%s (try --help)\n", opt.prog, name);
				return 64;
			}
		}
	}
	if (child)
		return child_main(child, cases, ncases);
	if (list) {
		for (int i = 0; i < ncases; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}

	const char *goenv = getenv("WEFT_BENCH_GO");
	if (goenv && *goenv && !opt.go[0])
		fprintf(stderr, "%s: WEFT_BENCH_GO=%s is not an executable: go is n/a\n", opt.prog,
		        goenv);
	if (opt.collect) {
		/* the caller prints */
	} else if (opt.csv) {
		printf("bench,case,impl,figure,unit,median,min,max,reps\n");
	} else {
		printf("# %s: %d reps per implementation, each a fresh process; medians", title, opt.reps);
		for (int i = 0; i < nparams; i++)
			printf("%s%s=%lld", i ? " " : "; ", params[i].name, params[i].value);
		if (opt.workers)
			printf("; --workers=%d (WEFT_WORKERS, GOMAXPROCS)", opt.workers);
		if (!opt.go[0] && (opt.impls & BENCH_GO))
			printf("; go n/a (no bench/go program)");
		/* The machine's load: figures from a busy machine are not comparable. */
		printf("; %ld CPUs, load %.2f\n", sysconf(_SC_NPROCESSORS_ONLN), bench_loadavg());
	}
	fflush(stdout);

	int any_failed = 0;
	for (int i = 0; i < ncases; i++) {
		const struct bench_case *c = &cases[i];
		if (!case_selected(c))
			continue;
		struct case_result *r = calloc(1, sizeof *r);
		if (!r)
			return 1;
		figure_get(r, c->primary, BENCH_NS);  /* primary first */
		for (int rep = 0; rep < opt.reps; rep++) {
			for (int k = 0; k < NIMPL; k++) {
				if (!impl_runs(c, k))
					continue;
				if (run_child(c, k, rep, r)) {
					r->failed[k]++;
					any_failed = 1;
				} else {
					r->ok[k]++;
				}
			}
		}
		print_case(title, c, r);
		free(r);
	}
	return any_failed ? 1 : 0;
}

int bench_collect(int argc, char **argv, const char *title, const struct bench_case *cases,
                  int ncases, struct bench_param *params, int nparams, struct bench_rows *rows)
{
	rows->row = NULL;
	rows->n = rows->cap = 0;
	opt.collect = rows;
	int rc = bench_main(argc, argv, title, cases, ncases, params, nparams);
	opt.collect = NULL;
	return rc;
}

const struct bench_row *bench_row_find(const struct bench_rows *rows, const char *cs,
                                       const char *impl, const char *fig)
{
	for (int i = 0; i < rows->n; i++) {
		const struct bench_row *r = &rows->row[i];
		if (!strcmp(r->cs, cs) && !strcmp(r->impl, impl) && !strcmp(r->fig, fig))
			return r;
	}
	return NULL;
}

int bench_harness_prints(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strncmp(a, "--child", 7) || !strcmp(a, "--csv") || !strcmp(a, "--list") ||
		    !strcmp(a, "--help") || !strcmp(a, "--h"))
			return 1;
	}
	return 0;
}
