/*
 * bench_pt.c — the pthread layer's costs: the same workloads through
 * pthread_* on glibc, through pthread_* under weft-run (libweft-pthread
 * preloaded), and through weft_* directly (libweft.so, as the layer uses
 * it).  Built twice: bench_pt_posix (plain pthreads, no weft) and
 * bench_pt_weft (-DBENCH_PT_WEFT: weft_* calls).  Running bench_pt_posix
 * with no argument drives all three as child processes, interleaved, and
 * prints medians and ratios:
 *
 *   mutex     lock+unlock of an uncontended mutex (ns per pair)
 *   yield     two threads yielding to each other on one worker (one CPU for
 *             glibc) (ns per yield)
 *   create    100,000 sequential create+join of a trivial thread, default
 *             attributes (ns per pair)
 *   alive     100,000 threads alive at once, default attributes, each
 *             blocked on a barrier: RSS and page tables per thread
 *             (glibc: 10,000 threads, since 8 MiB stacks and two mappings
 *             per thread do not allow 100,000 by default)
 *
 * Targets (issue 13): mutex and yield under weft-run <= 1.1 x weft_*;
 * create >= 50 x faster than glibc; alive <= 8 KiB RSS per thread.
 * Benchmarks are never asserted; --reps=N (default 5).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef BENCH_PT_WEFT
#include <weft.h>
#endif

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_pt: %s failed\n", what);
	exit(1);
}

/* ---- the operations, through one API or the other ---- */
#ifdef BENCH_PT_WEFT
typedef weft_t thr_t;
typedef weft_mutex_t mtx_t;
#define MTX_INIT WEFT_MUTEX_INITIALIZER
static int thr_create(thr_t *t, void *(*f)(void *), void *a) { return weft_create(t, NULL, f, a); }
static int thr_join(thr_t t, void **r) { return weft_join(t, r); }
static int mtx_lock(mtx_t *m) { return weft_mutex_lock(m); }
static int mtx_unlock(mtx_t *m) { return weft_mutex_unlock(m); }
static int thr_yield(void) { return weft_yield(); }
typedef weft_barrier_t bar_t;
static int bar_init(bar_t *b, unsigned n) { return weft_barrier_init(b, n); }
static int bar_wait(bar_t *b) { return weft_barrier_wait(b); }
#else
typedef pthread_t thr_t;
typedef pthread_mutex_t mtx_t;
#define MTX_INIT PTHREAD_MUTEX_INITIALIZER
static int thr_create(thr_t *t, void *(*f)(void *), void *a) { return pthread_create(t, NULL, f, a); }
static int thr_join(thr_t t, void **r) { return pthread_join(t, r); }
static int mtx_lock(mtx_t *m) { return pthread_mutex_lock(m); }
static int mtx_unlock(mtx_t *m) { return pthread_mutex_unlock(m); }
static int thr_yield(void) { return sched_yield(); }
typedef pthread_barrier_t bar_t;
static int bar_init(bar_t *b, unsigned n) { return pthread_barrier_init(b, NULL, n); }
static int bar_wait(bar_t *b) { return pthread_barrier_wait(b); }
#endif

/* The compiler must not see through the calls: one per pair, as a program
 * would make them. */
static mtx_t mtx = MTX_INIT;
__attribute__((noinline)) static void mutex_loop(long n)
{
	for (long i = 0; i < n; i++) {
		mtx_lock(&mtx);
		mtx_unlock(&mtx);
		__asm__ __volatile__("" ::: "memory");
	}
}

static double bench_mutex(void)
{
	long n = 20000000;
	mutex_loop(n / 10);
	double t0 = now_ns();
	mutex_loop(n);
	return (now_ns() - t0) / (double)n;
}

static long yield_n = 1000000;
static void *yield_body(void *a)
{
	(void)a;
	for (long i = 0; i < yield_n; i++)
		thr_yield();
	return NULL;
}

static double bench_yield(void)
{
	thr_t a, b;
	double t0 = now_ns();
	if (thr_create(&a, yield_body, NULL) || thr_create(&b, yield_body, NULL))
		die("create");
	thr_join(a, NULL);
	thr_join(b, NULL);
	return (now_ns() - t0) / (2.0 * (double)yield_n);
}

static void *trivial(void *a) { return a; }

static double bench_create(void)
{
	long n = 100000;
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		thr_t t;
		void *r;
		if (thr_create(&t, trivial, (void *)(intptr_t)i))
			die("create");
		if (thr_join(t, &r) || r != (void *)(intptr_t)i)
			die("join");
	}
	return (now_ns() - t0) / (double)n;
}

/* kB of a /proc/self/status field */
static long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t len = strlen(field);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, field, len) && line[len] == ':')
			v = strtol(line + len + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static bar_t alive_bar;
static void *alive_body(void *a)
{
	bar_wait(&alive_bar);
	return a;
}

static void bench_alive(long n, double *rss_b, double *pte_b)
{
	thr_t *t = malloc(sizeof *t * (size_t)n);
	if (!t || bar_init(&alive_bar, (unsigned)n + 1))
		die("setup");
	long rss0 = status_kb("VmRSS"), pte0 = status_kb("VmPTE");
	for (long i = 0; i < n; i++)
		if (thr_create(&t[i], alive_body, NULL))
			die("create (alive)");
	long rss1 = status_kb("VmRSS"), pte1 = status_kb("VmPTE");
	bar_wait(&alive_bar);
	for (long i = 0; i < n; i++)
		thr_join(t[i], NULL);
	*rss_b = (double)(rss1 - rss0) * 1024.0 / (double)n;
	*pte_b = (double)(pte1 - pte0) * 1024.0 / (double)n;
	free(t);
}

static int child(const char *what)
{
	if (!strcmp(what, "mutex")) {
		printf("%.3f\n", bench_mutex());
	} else if (!strcmp(what, "yield")) {
		cpu_set_t one;           /* glibc: both threads on one CPU */
		CPU_ZERO(&one);
		CPU_SET(0, &one);
		sched_setaffinity(0, sizeof one, &one);
		printf("%.3f\n", bench_yield());
	} else if (!strcmp(what, "create")) {
		bench_create();   /* warm-up */
		printf("%.3f\n", bench_create());
	} else if (!strcmp(what, "alive") || !strcmp(what, "alive10k")) {
		double rss, pte;
		bench_alive(!strcmp(what, "alive") ? 100000 : 10000, &rss, &pte);
		printf("%.0f %.0f\n", rss, pte);
	} else {
		return 2;
	}
	return 0;
}

/* ---- driver ---- */
#ifndef BENCH_PT_WEFT
enum { GLIBC, LAYER, WEFT, NIMPL };
static const char *impl_name[NIMPL] = { "glibc", "weft-run", "weft_*" };

static int run(int impl, const char *what, double out[2])
{
	int p[2];
	if (pipe(p))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		if (!strcmp(what, "yield"))
			setenv("WEFT_WORKERS", "1", 1);
		char arg[64];
		snprintf(arg, sizeof arg, "--child=%s", what);
		if (impl == LAYER) {
			setenv("LD_PRELOAD", BENCH_PT_LAYER, 1);
			execl("/proc/self/exe", "bench_pt_posix", arg, (char *)NULL);
		} else if (impl == WEFT) {
			execl(BENCH_PT_WEFT_EXE, "bench_pt_weft", arg, (char *)NULL);
		} else {
			execl("/proc/self/exe", "bench_pt_posix", arg, (char *)NULL);
		}
		_exit(127);
	}
	close(p[1]);
	char buf[128] = { 0 };
	ssize_t k = read(p[0], buf, sizeof buf - 1);
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	if (k <= 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	out[1] = 0;
	return sscanf(buf, "%lf %lf", &out[0], &out[1]) >= 1 ? 0 : -1;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return n ? v[n / 2] : -1;
}

int main(int argc, char **argv)
{
	int reps = 5;
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--child=", 8))
			return child(argv[i] + 8);
		if (!strncmp(argv[i], "--reps=", 7))
			reps = atoi(argv[i] + 7);
	}
	if (reps < 1 || reps > 100)
		reps = 5;
	const char *cases[] = { "mutex", "yield", "create" };
	printf("%-8s %12s %12s %12s   %-24s %s\n", "case", impl_name[0], impl_name[1],
	       impl_name[2], "weft-run / weft_*", "glibc / weft-run");
	for (int c = 0; c < 3; c++) {
		double v[NIMPL][100];
		int nv[NIMPL] = { 0 };
		for (int r = 0; r < reps; r++)
			for (int i = 0; i < NIMPL; i++) {
				double o[2];
				if (run(i, cases[c], o) == 0)
					v[i][nv[i]++] = o[0];
			}
		double m[NIMPL];
		for (int i = 0; i < NIMPL; i++)
			m[i] = median(v[i], nv[i]);
		printf("%-8s %9.1f ns %9.1f ns %9.1f ns   %-24.3f %.1f\n", cases[c], m[GLIBC],
		       m[LAYER], m[WEFT], m[LAYER] / m[WEFT], m[GLIBC] / m[LAYER]);
	}
	/* One run each: memory figures are not noisy. */
	double o[2];
	printf("\nalive (per thread)     RSS        page tables\n");
	if (run(GLIBC, "alive10k", o) == 0)
		printf("glibc, 10,000      %8.0f B  %8.0f B\n", o[0], o[1]);
	if (run(LAYER, "alive", o) == 0)
		printf("weft-run, 100,000  %8.0f B  %8.0f B\n", o[0], o[1]);
	if (run(WEFT, "alive", o) == 0)
		printf("weft_*, 100,000    %8.0f B  %8.0f B   (WEFT_STACK_SIZE default)\n", o[0], o[1]);
	return 0;
}
#else
int main(int argc, char **argv)
{
	if (argc == 2 && !strncmp(argv[1], "--child=", 8))
		return child(argv[1] + 8);
	fprintf(stderr, "bench_pt_weft is run by bench_pt_posix\n");
	return 2;
}
#endif
