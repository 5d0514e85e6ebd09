/*
 * round_robin.c — CPU-bound green threads that never yield share their
 * worker round-robin, because weft's timer preempts them.
 *
 * N spinners (default 4) run a tight arithmetic loop and never call weft.
 * A printer thread sleeps until each full second and prints a table: per
 * thread, the worker it last ran on, its iterations in that second, the
 * quanta it got and its share of all the spinners' work.  The printer only
 * gets to run because the spinners are preempted; it also shows how far
 * past its deadline the spinners kept its worker, in that worker's CPU
 * time: weft's tick counts the worker's CPU time (docs/design.md,
 * "Preemption"), so while the kernel runs other processes neither the
 * spinners nor the tick advance, and the wall-clock delay that adds is
 * the machine's, not weft's (it is printed too).
 *
 * With more than one worker, preempted threads circulate through every
 * worker (weft's global queue), so N spinners on W workers each get W/N of
 * a CPU, not whatever their first worker happened to hold: fairness is
 * judged across the whole process.
 *
 * Fairness is judged two ways.  Quanta: each spinner notes, every few
 * microseconds, whether it is still the thread that ran last on its worker;
 * when it is not, it has just been given a worker again, and that is one
 * quantum (turn).  Round-robin gives every thread the same number of
 * quanta, and nothing outside weft changes that number.  CPU time
 * (iterations): the share each thread got of all the work.  On a quiet
 * machine both agree; on a busy one the kernel also runs other processes
 * in the middle of some quanta, so CPU time per quantum varies by several
 * percent while the quanta stay equal.  The verdict wants equal quanta
 * (within the tolerance) and no thread above 1.5 or below 0.5 times its fair
 * CPU share (which catches a thread hogging its worker: without preemption
 * every thread gets exactly one "quantum" — the first one runs to the end).
 *
 * Build: part of the weft build (build/demos/round_robin).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <weft.h>
#include "demo_common.h"

#define MAX_THREADS 256
#define SAMPLE_EVERY 32          /* work blocks between two clock reads */

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
"usage: %s [--threads N] [--seconds S] [--tolerance PCT] [--workers N] [--quantum-us US]\n"
"\n"
"N CPU-bound green threads (default 4) that never yield, block or call weft\n"
"share the kernel workers.  Once a second a printer thread (itself a green\n"
"thread that sleeps) prints each thread's worker, iterations, quanta and share\n"
"of its worker's CPU time; at the end a one-line verdict.\n"
"\n"
"  --threads N       spinners (default 4, at most %d)\n"
"  --seconds S       run time (default 5)\n"
"  --tolerance PCT   allowed deviation from the fair number of quanta, in %%\n"
"                    (default 10)\n"
"  --workers N       sets WEFT_WORKERS (default: the environment's, else CPUs)\n"
"  --quantum-us US   sets WEFT_QUANTUM_US (default: the environment's, else 10000)\n"
"\n"
"Environment: WEFT_WORKERS, WEFT_QUANTUM_US (0 turns preemption off).\n"
"Try WEFT_WORKERS=1 (all threads share one worker), WEFT_WORKERS=2, and\n"
"WEFT_QUANTUM_US=0 to see what happens without preemption.\n"
"\n"
"Exit status:\n"
"  0  fair: on every worker, each thread got its fair number of quanta\n"
"     within +-PCT %% (or +-2), and 0.5 to 1.5 times its fair share of CPU\n"
"     time, and the printer was never kept waiting past its deadline by\n"
"     more than 5 ms;\n"
"  1  unfair or printer held up.  This is the expected outcome with\n"
"     WEFT_QUANTUM_US=0: the first thread on each worker keeps it to the\n"
"     end and the verdict says so;\n"
"  2  bad usage, or weft_init failed.\n",
	        prog, MAX_THREADS);
}

struct spinner {
	_Atomic uint64_t iters;     /* work blocks done */
	_Atomic uint64_t turns;     /* quanta: times it was given its worker */
	_Atomic int worker;         /* where it runs */
	int id;
} __attribute__((aligned(64)));

static struct spinner sp[MAX_THREADS];
static int nthreads = 4;
static int nworkers;
static _Atomic int *last_runner;        /* per worker: spinner that ran last, -1 other */
/* The printer's current deadline, and per worker the worker's CPU clock
 * at the first spinner sample at or after it (0: none yet).  The printer
 * moves the deadline first, then clears the array, so no sample of the
 * old deadline lands in the new round. */
static _Atomic uint64_t deadline_ns;
static _Atomic uint64_t *cpu_at_deadline;
static _Atomic int go, stop;
static uint64_t go_ns, end_ns;
static volatile uint64_t sink;

/* CPU time of the kernel thread the caller runs on: in a green thread, its
 * worker's (a system call, about a microsecond: taken once a sample). */
static uint64_t worker_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* About a microsecond of arithmetic that the compiler cannot skip. */
static inline uint64_t work(uint64_t x)
{
	for (int i = 0; i < 256; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	return x;
}

static void *spin(void *arg)
{
	struct spinner *s = arg;
	while (!atomic_load(&go))
		weft_yield();
	uint64_t x = (uint64_t)s->id + 1, n = 0;
	for (;;) {
		x = work(x);
		atomic_store_explicit(&s->iters, ++n, memory_order_relaxed);
		if (n % SAMPLE_EVERY)
			continue;
		uint64_t t = now_ns();
		int w = weft_worker_self();
		atomic_store_explicit(&s->worker, w, memory_order_relaxed);
		if (atomic_load_explicit(&last_runner[w], memory_order_relaxed) != s->id) {
			atomic_store_explicit(&last_runner[w], s->id, memory_order_relaxed);
			atomic_fetch_add_explicit(&s->turns, 1, memory_order_relaxed);
		}
		uint64_t zero = 0;
		if (t >= atomic_load_explicit(&deadline_ns, memory_order_relaxed) &&
		    !atomic_load_explicit(&cpu_at_deadline[w], memory_order_relaxed))
			atomic_compare_exchange_strong(&cpu_at_deadline[w], &zero, worker_cpu_ns());
		if (atomic_load_explicit(&stop, memory_order_relaxed) || t >= end_ns)
			break;
	}
	sink += x;
	return NULL;
}

/* ---- accounting, by the printer each second and by main at the end ---- */

static uint64_t prev_iters[MAX_THREADS], prev_turns[MAX_THREADS];
/* Whole run: what each thread got, and its fair share (an equal part) of
 * what all the workers gave out, interval by interval. */
static double got_cpu[MAX_THREADS], fair_cpu[MAX_THREADS];
static double got_q[MAX_THREADS], fair_q[MAX_THREADS];
static uint64_t max_overrun_ns, max_late_ns;

static void account(uint64_t interval_ns, bool print)
{
	uint64_t di[MAX_THREADS], dt[MAX_THREADS];
	int wk[MAX_THREADS];
	for (int i = 0; i < nthreads; i++) {
		uint64_t it = atomic_load(&sp[i].iters), tu = atomic_load(&sp[i].turns);
		di[i] = it - prev_iters[i];
		dt[i] = tu - prev_turns[i];
		prev_iters[i] = it;
		prev_turns[i] = tu;
		wk[i] = atomic_load(&sp[i].worker);
	}
	if (print)
		printf("  thread  worker  iterations/s  quanta  share of all the work\n");
	uint64_t gi = 0, gt = 0;
	int members = nthreads;
	for (int j = 0; j < nthreads; j++) {
		gi += di[j];
		gt += dt[j];
	}
	for (int i = 0; i < nthreads; i++) {
		got_cpu[i] += (double)di[i];
		fair_cpu[i] += (double)gi / members;
		got_q[i] += (double)dt[i];
		fair_q[i] += (double)gt / members;
		if (!print)
			continue;
		double share = gi ? 100.0 * (double)di[i] / (double)gi : 0;
		char bar[41];
		int len = (int)(share / 2.5 + 0.5);
		if (len > 40)
			len = 40;
		memset(bar, '#', (size_t)len);
		bar[len] = '\0';
		double rate = (double)di[i] * 1e9 / (double)(interval_ns ? interval_ns : 1);
		printf("  %6d  %6d  %10.2f M  %6llu  %5.1f %% (fair %4.1f %%) %s\n", i, wk[i],
		       rate / 1e6, (unsigned long long)dt[i], share, 100.0 / members, bar);
	}
}

static void *printer(void *arg)
{
	(void)arg;
	uint64_t prev = go_ns, next = go_ns + 1000000000ull;
	for (;;) {
		if (next > end_ns)
			next = end_ns;
		atomic_store(&deadline_ns, next);
		for (int w = 0; w < nworkers; w++)
			atomic_store(&cpu_at_deadline[w], 0);
		uint64_t t = now_ns();
		if (next > t)
			weft_sleep_ns(next - t);
		uint64_t woke = now_ns(), cpu = worker_cpu_ns();
		int pw = weft_worker_self();
		atomic_store(&last_runner[pw], -1);
		uint64_t c0 = atomic_load(&cpu_at_deadline[pw]);
		uint64_t overrun = c0 && cpu > c0 ? cpu - c0 : 0, late = woke - next;
		if (overrun > max_overrun_ns)
			max_overrun_ns = overrun;
		if (late > max_late_ns)
			max_late_ns = late;
		printf("t=%.1f s: printer on worker %d woke %.2f ms after its deadline "
		       "(spinners kept the worker %.2f ms of its CPU time past it)\n",
		       (double)(woke - go_ns) / 1e9, pw, (double)late / 1e6, (double)overrun / 1e6);
		account(woke - prev, true);
		fflush(stdout);
		prev = woke;
		if (woke >= end_ns)
			break;
		while (next <= woke)
			next += 1000000000ull;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int seconds = 5, tol = 10, v;
	/* weft's tick fires at the kernel's tick (docs/design.md,
	 * "Preemption"): the printer may be kept up to about one past its
	 * deadline, and one more when the kernel ran other processes. */
	uint64_t tick_ns = demo_kernel_tick_ns();
	static const struct option opts[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ "tolerance", required_argument, NULL, 'p' },
		{ "workers", required_argument, NULL, 'w' },
		{ "quantum-us", required_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "t:s:p:w:q:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_int(optarg, 1, MAX_THREADS, &nthreads))
				goto bad;
			break;
		case 's':
			if (parse_int(optarg, 1, 3600, &seconds))
				goto bad;
			break;
		case 'p':
			if (parse_int(optarg, 1, 100, &tol))
				goto bad;
			break;
		case 'w':
			if (parse_int(optarg, 1, 1024, &v))
				goto bad;
			setenv("WEFT_WORKERS", optarg, 1);
			break;
		case 'q':
			if (parse_int(optarg, 0, 10000000, &v))
				goto bad;
			setenv("WEFT_QUANTUM_US", optarg, 1);
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;

	int e = weft_init();
	if (e) {
		fprintf(stderr, "round_robin: weft_init: %s\n", strerror(e));
		return 2;
	}
	nworkers = weft_workers();
	last_runner = calloc((size_t)nworkers, sizeof *last_runner);
	cpu_at_deadline = calloc((size_t)nworkers, sizeof *cpu_at_deadline);
	if (!last_runner || !cpu_at_deadline) {
		fprintf(stderr, "round_robin: out of memory\n");
		return 2;
	}
	for (int w = 0; w < nworkers; w++)
		atomic_store(&last_runner[w], -1);
	const char *q = getenv("WEFT_QUANTUM_US");
	long quantum = q ? atol(q) : 10000;
	printf("round_robin: %d CPU-bound threads that never yield, %d worker%s, quantum %ld us%s, %d s\n",
	       nthreads, nworkers, nworkers == 1 ? "" : "s", quantum,
	       quantum ? "" : " (preemption off)", seconds);

	weft_t t[MAX_THREADS], pr;
	for (int i = 0; i < nthreads; i++) {
		sp[i].id = i;
		atomic_store(&sp[i].worker, -1);
		if (demo_create("round_robin", &t[i], spin, &sp[i], "spinner %d", i))
			return 2;
	}
	go_ns = now_ns();
	end_ns = go_ns + (uint64_t)seconds * 1000000000ull;
	if (demo_create("round_robin", &pr, printer, NULL, "printer", 0))
		return 2;
	atomic_store(&go, 1);
	weft_join(pr, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < nthreads; i++)
		weft_join(t[i], NULL);
	account(0, false);  /* the last few microseconds */

	/* Verdict: each thread against its fair share of the whole. */
	int worst_q = 0, worst_c = 0;
	double dev_q = 0, dev_c = 0;
	bool quanta_ok = true, cpu_ok = true;
	for (int i = 0; i < nthreads; i++) {
		double dq = fair_q[i] > 0 ? got_q[i] / fair_q[i] - 1 : 0;
		double dc = fair_cpu[i] > 0 ? got_cpu[i] / fair_cpu[i] - 1 : 0;
		double aq = dq < 0 ? -dq : dq, ac = dc < 0 ? -dc : dc;
		/* Counting error: a turn that straddles an interval, and, with
		 * threads moving between workers, two chance orders of who ran
		 * last where; allow twice the square root of the count. */
		double slack = got_q[i] - fair_q[i], allow = 2 * sqrt(fair_q[i]);
		if (allow < 2)
			allow = 2;
		if (aq * 100 > tol && (slack < -allow || slack > allow))
			quanta_ok = false;
		if (ac > 0.5)
			cpu_ok = false;
		if (aq > (dev_q < 0 ? -dev_q : dev_q))
			dev_q = dq, worst_q = i;
		if (ac > (dev_c < 0 ? -dev_c : dev_c))
			dev_c = dc, worst_c = i;
	}
	bool printer_ok = max_overrun_ns <= 2 * tick_ns + 2000000ull;
	weft_stats_t st;
	weft_stats_get(-1, &st);
	printf("whole run, %% of the fair share - quanta:");
	for (int i = 0; i < nthreads; i++)
		printf(" %d:%.0f%%", i, fair_q[i] > 0 ? 100.0 * got_q[i] / fair_q[i] : 0.0);
	printf("; CPU time:");
	for (int i = 0; i < nthreads; i++)
		printf(" %d:%.0f%%", i, fair_cpu[i] > 0 ? 100.0 * got_cpu[i] / fair_cpu[i] : 0.0);
	printf("\nprinter: woke at most %.2f ms after a deadline (wall clock, including time the "
	       "kernel ran other processes)\n", (double)max_late_ns / 1e6);
	printf("weft: %llu ticks, %llu preemptions, %llu ticks deferred (landed outside the program's code)\n",
	       (unsigned long long)st.ticks, (unsigned long long)st.preemptions,
	       (unsigned long long)st.deferred_ticks);
	if (quanta_ok && cpu_ok && printer_ok) {
		printf("verdict: FAIR - the threads took turns: quanta within %+.1f %% "
		       "of fair (limit +-%d %%), CPU time within %+.1f %%%s; the printer was kept past "
		       "its deadline %.2f ms of its worker's CPU time at most\n", 100 * dev_q, tol, 100 * dev_c,
		       dev_c * 100 > tol || dev_c * 100 < -tol ?
		       " (the kernel ran other processes during some quanta)" : "",
		       (double)max_overrun_ns / 1e6);
		return 0;
	}
	if (!cpu_ok) {
		printf("verdict: UNFAIR - thread %d on worker %d got %.0f %% of its fair share of CPU "
		       "time (limit 50 to 150 %%)", worst_c, atomic_load(&sp[worst_c].worker),
		       100 * (1 + dev_c));
	} else if (!quanta_ok) {
		printf("verdict: UNFAIR - thread %d on worker %d got %.0f %% of its fair number of "
		       "quanta (limit +-%d %%)", worst_q, atomic_load(&sp[worst_q].worker),
		       100 * (1 + dev_q), tol);
	} else {
		printf("verdict: LATE - the threads took turns fairly");
	}
	printf("; the printer was kept past its deadline %.1f ms of its worker's CPU time at most%s\n",
	       (double)max_overrun_ns / 1e6,
	       quantum ? "" : " - expected: WEFT_QUANTUM_US=0 turns preemption off, so a thread keeps its worker until it ends");
	return 1;

bad:
	usage(stderr, argv[0]);
	return 2;
}
