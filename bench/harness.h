/*
 * harness.h — the small shared driver of weft's benchmarks.
 *
 * Every benchmark program is a table of cases.  A case is one workload that
 * is run on several implementations (weft, plain pthreads, Go, optionally
 * GNU Pth).  The program runs in two roles:
 *
 *  - driver (what the user starts): for each repetition and each
 *    implementation (weft, pthread, pth, go, c) it re-executes itself as a
 *    child with
 *    "--child=CASE:IMPL", in a fresh process, with WEFT_WORKERS set for the
 *    weft child when the case asks for a worker count (--workers=N sets it
 *    for every case).  The Go implementation is another program,
 *    bench/go (weft-bench-go), run the same way with the same parameters
 *    and GOMAXPROCS equal to the weft child's WEFT_WORKERS; when it has not
 *    been built its column says "n/a" and nothing fails.  Implementations
 *    are interleaved within a repetition so that a noisy stretch of the
 *    machine hits all of them.  The driver collects the child's figures,
 *    its peak RSS (ru_maxrss from wait4) and its system CPU share, then
 *    prints medians and the weft/pthread and weft/go ratios of the case's
 *    primary figure, one line per case, or CSV with --csv.
 *
 *  - child: runs the workload once (with its own warm-up) and reports
 *    figures with bench_result(); a failed check exits non-zero.
 *
 * Benchmarks are never asserted: nothing here fails on a slow figure.
 * The environment is inherited by children, so runtime settings that are
 * not part of a case (WEFT_QUANTUM_US, WEFT_KTHREADS, WEFT_STACK_SIZE)
 * can be compared by running a program twice with different values.
 */
#ifndef WEFT_BENCH_HARNESS_H
#define WEFT_BENCH_HARNESS_H

#include <pthread.h>
#include <stdint.h>

/* Implementations, as bits of bench_case.impls. */
enum {
	BENCH_WEFT = 1,
	BENCH_PTHREAD = 2,
	BENCH_PTH = 4,      /* GNU Pth, when built with it (BENCH_HAVE_PTH) */
	BENCH_GO = 8,       /* the Go port in bench/go: a case sets this bit only
	                     * when weft-bench-go implements a case of its name */
	BENCH_C = 16,       /* hand-written C without threads (an epoll loop): the
	                     * floor a runtime is measured against */
};

/* Kinds of figures, which decide how they are printed. */
enum bench_kind {
	BENCH_NS,      /* nanoseconds: printed as ns, µs, ms or s */
	BENCH_BYTES,   /* bytes: printed as B, KiB, MiB or GiB */
	BENCH_COUNT,   /* a plain number */
	BENCH_PCT,     /* a percentage */
	BENCH_COUNT_FRAC, /* a ratio of counts, e.g. events per operation */
};

/* A size or count a program accepts as --NAME=VALUE (K, M suffixes: 10^3,
 * 10^6).  The driver passes every parameter on to its children. */
struct bench_param {
	const char *name;
	long long value;
	const char *help;
};

struct bench_case {
	const char *name;       /* e.g. "yield-pingpong" */
	const char *what;       /* what the primary figure measures, for the output */
	const char *primary;    /* name of the figure the ratio compares */
	int impls;              /* BENCH_* bits */
	int weft_workers;       /* WEFT_WORKERS for the weft child and GOMAXPROCS
	                         * for the Go child; 0: inherit (--workers=N
	                         * overrides it) */
	const char *weft_env;   /* more settings for the weft child, "NAME=VALUE"
	                         * separated by spaces (e.g. "WEFT_QUANTUM_US=0"),
	                         * or NULL */
	const char *go_env;     /* the same for the Go child, e.g.
	                         * "GODEBUG=asyncpreemptoff=1", or NULL */
	int pin_one_cpu;        /* pthread/pth children run pinned to one CPU (the
	                         * Go child is not pinned: GOMAXPROCS=1 is Go's
	                         * counterpart of one worker) */
	int show_maxrss;        /* print the child's peak RSS and the share of its
	                         * CPU time spent in the kernel after the figure
	                         * (CSV output always has them) */
	/* The child body: run the workload on `impl` and report figures. */
	void (*run)(int impl);
};

/* Child side --------------------------------------------------------------- */

/* Report one figure of the running child. */
void bench_result(const char *name, enum bench_kind kind, double value);
/* A failed check: print the message and exit the child with status 2. */
void bench_fail(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
/* The value of a parameter (aborts on an unknown name: a bug). */
long long bench_param(const char *name);

/* Monotonic clock, ns. */
uint64_t bench_now_ns(void);
/* A timed section: bench_begin() reads the wall clock and the process's CPU
 * clock (all its threads); bench_end(ops) returns wall ns per operation and
 * keeps CPU ns per operation for bench_cpu_per_op().  The CPU figure is
 * robust against other load on the machine for single-CPU cases (where it
 * equals the wall figure on a quiet machine); with two CPUs it adds up both. */
void bench_begin(void);
double bench_end(double ops);
double bench_cpu_per_op(void);

/* Resident and virtual size of this process in bytes (/proc/self/statm). */
long long bench_rss_bytes(void);
long long bench_vsz_bytes(void);
/* Pin the calling kernel thread (and the threads it creates later) to one
 * CPU, the first of its current affinity mask. */
void bench_pin_one_cpu(void);

/* A start gate for kernel threads: the timed section starts only once every
 * thread is ready, and the clock is read before they are released (reading
 * it after a barrier would miss work done before the reader is scheduled). */
struct bench_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long arrived;
	int open;
};
#define BENCH_GATE_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 }
/* A thread: announce readiness and wait for the gate to open. */
void bench_gate_arrive(struct bench_gate *g);
/* The timer: wait until n threads have arrived. */
void bench_gate_wait(struct bench_gate *g, long n);
/* The timer: release everyone (read the clock just before). */
void bench_gate_open(struct bench_gate *g);
/* Close the gate for another round (no thread may be waiting at it). */
void bench_gate_reset(struct bench_gate *g);

/* Initialize weft (weft_init) in a weft child; a failure ends the child. */
void bench_weft_start(void);

/* Report weft's scheduler counters since *before (weft_stats_get(-1, ...)),
 * per operation where that reads better.  These figures are named "weft.*":
 * the text output shows them only with --verbose; --csv always has them. */
struct weft_stats;
void bench_weft_stats(const struct weft_stats *before, double ops);

/* Driver side -------------------------------------------------------------- */

/* The whole main() of a benchmark program. */
int bench_main(int argc, char **argv, const char *title,
               const struct bench_case *cases, int ncases,
               struct bench_param *params, int nparams);

/* A program that prints its own table (bench_trace, bench_fib) runs the
 * driver through bench_collect() instead: the same options and children, but
 * the medians are handed back as rows instead of being printed.  --csv,
 * --list, --help and --child must still go to bench_main(). */
struct bench_row {
	const char *cs;       /* case name (from the case table) */
	const char *impl;     /* "weft", "pthread", "pth", "go", "c" */
	char fig[64];         /* figure name */
	enum bench_kind kind;
	double med, lo, hi;   /* median, minimum, maximum over the repetitions */
	int reps;             /* repetitions that reported the figure */
};
struct bench_rows {
	struct bench_row *row;
	int n, cap;
};
/* Returns what bench_main would (0, 1 if a child failed, 64 for bad usage);
 * free rows->row afterwards. */
int bench_collect(int argc, char **argv, const char *title,
                  const struct bench_case *cases, int ncases,
                  struct bench_param *params, int nparams, struct bench_rows *rows);
/* The row of a case, implementation and figure, or NULL. */
const struct bench_row *bench_row_find(const struct bench_rows *rows, const char *cs,
                                       const char *impl, const char *fig);
/* After bench_main or bench_collect: whether the Go port was found (1) or
 * the go column is "n/a" (0), and the worker count --workers set (0: each
 * case's own). */
int bench_go_found(void);
int bench_workers_override(void);
/* Whether the arguments ask for output only the harness makes (--csv,
 * --list, --help, --child): a program with its own table then calls
 * bench_main() instead of bench_collect(). */
int bench_harness_prints(int argc, char **argv);
/* The 1-minute load average (-1 if unknown), for a table's header. */
double bench_loadavg(void);

#define BENCH_COUNTOF(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif
