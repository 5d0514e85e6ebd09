/*
 * harness.c — driver and child support for weft's benchmarks (see harness.h).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
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

#define MAX_FIGURES 16
#define MAX_REPS 101
#define LINE_TAG "@bench "

static const char *impl_names[] = { "weft", "pthread", "pth" };
enum { NIMPL = 3 };

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
	const char *only;
	const char *self;
	const char *prog;
} opt = { 5, 0, 0, 180, BENCH_WEFT | BENCH_PTHREAD | BENCH_PTH, NULL, NULL, NULL };

static struct figure *figure_get(struct case_result *r, const char *name, enum bench_kind kind)
{
	for (int i = 0; i < r->nfig; i++) {
		struct figure *f = &r->fig[i];
		if (!strcmp(f->name, name)) {
			if (!f->n[0] && !f->n[1] && !f->n[2])
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
	argv[ac++] = (char *)opt.prog;
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
		if (impl_idx == 0 && c->weft_workers > 0) {
			char w[16];
			snprintf(w, sizeof w, "%d", c->weft_workers);
			setenv("WEFT_WORKERS", w, 1);
		}
		if (impl_idx == 0 && c->weft_env) {
			char *env = strdup(c->weft_env), *save = NULL;
			for (char *kv = env ? strtok_r(env, " ", &save) : NULL; kv;
			     kv = strtok_r(NULL, " ", &save)) {
				char *eq = strchr(kv, '=');
				if (eq) {
					*eq = '\0';
					setenv(kv, eq + 1, 1);
				}
			}
		}
		execv(opt.self, argv);
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
	struct figure *f = figure_get(r, "maxrss", BENCH_BYTES);
	if (f && f->n[impl_idx] < MAX_REPS)
		f->v[impl_idx][f->n[impl_idx]++] = (double)ru.ru_maxrss * 1024.0;
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

static void print_case(const char *title, const struct bench_case *c, struct case_result *r)
{
	const struct figure *prim = NULL;
	for (int i = 0; i < r->nfig; i++)
		if (!strcmp(r->fig[i].name, c->primary))
			prim = &r->fig[i];

	if (opt.csv) {
		for (int i = 0; i < r->nfig; i++) {
			const struct figure *f = &r->fig[i];
			for (int k = 0; k < NIMPL; k++) {
				if (!f->n[k])
					continue;
				double lo, hi, m = median(f->v[k], f->n[k], &lo, &hi);
				printf("%s,%s,%s,%s,%s,%.6g,%.6g,%.6g,%d\n", title, c->name,
				       impl_names[k], f->name, kind_unit(f->kind), m, lo, hi, f->n[k]);
			}
		}
		for (int k = 0; k < NIMPL; k += 2) {  /* weft/pthread, pth/pthread */
			if (prim && prim->n[k] && prim->n[1]) {
				double m = median(prim->v[k], prim->n[k], NULL, NULL) /
				           median(prim->v[1], prim->n[1], NULL, NULL);
				printf("%s,%s,ratio,%s,%s/pthread,%.6g,,,\n", title, c->name, prim->name,
				       impl_names[k], m);
			}
		}
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
		if (!(c->impls & opt.impls & (1 << k)))
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
			if (f == prim || !f->n[k] || (!strcmp(f->name, "maxrss") && !c->show_maxrss) ||
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
	if (prim && prim->n[0] && prim->n[1]) {
		double ratio = median(prim->v[0], prim->n[0], NULL, NULL) /
		               median(prim->v[1], prim->n[1], NULL, NULL);
		ADD("  ratio %.3g (weft/pthread)", ratio);
	}
	ADD("  [%s]", c->what);
#undef ADD
	puts(line);
	fflush(stdout);
}

static void usage(const char *title, const struct bench_case *cases, int ncases)
{
	printf("usage: %s [options]\n\n%s: runs each case on weft and on pthreads (and GNU Pth\n"
	       "where it applies), each repetition in a fresh process, and prints medians.\n\n"
	       "options:\n"
	       "  --reps=N          repetitions per implementation (default %d)\n"
	       "  --only=A,B        run only these cases\n"
	       "  --impl=weft,pthread,pth  implementations to run (default all available)\n"
	       "  --csv             machine-readable output: bench,case,impl,figure,unit,median,min,max,reps\n"
	       "  --verbose         print every repetition's figures on stderr\n"
	       "  --timeout=S       kill a child after S seconds (default %d)\n"
	       "  --list            list the cases\n",
	       opt.prog, title, opt.reps, opt.timeout_s);
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

	if (opt.csv) {
		printf("bench,case,impl,figure,unit,median,min,max,reps\n");
	} else {
		printf("# %s: %d reps per implementation, each a fresh process; medians", title, opt.reps);
		for (int i = 0; i < nparams; i++)
			printf("%s%s=%lld", i ? " " : "; ", params[i].name, params[i].value);
		/* The machine's load: figures from a busy machine are not comparable. */
		double load = -1;
		FILE *f = fopen("/proc/loadavg", "r");
		if (f) {
			if (fscanf(f, "%lf", &load) != 1)
				load = -1;
			fclose(f);
		}
		printf("; %ld CPUs, load %.2f\n", sysconf(_SC_NPROCESSORS_ONLN), load);
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
				if (!(c->impls & opt.impls & (1 << k)))
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
