/*
 * sleeper.c — a green thread that sleeps wakes on time although CPU-bound
 * threads keep every worker busy.
 *
 * Spinners (default 4) run a tight loop and never call weft.  A sleeper
 * sleeps many times for 2-5 ms and measures how late it wakes.  Without
 * preemption it would wait until a spinner ends; with only a periodic
 * quantum it would wait for the quantum, times the threads ahead of it.
 * weft arms the worker's timer at the sleeper's deadline, and the woken
 * sleeper runs next.
 *
 * Two lateness figures are printed.  "Woke late" is wall-clock time from the
 * deadline to the sleeper running again.  "Kept waiting by spinners" is how
 * long spinners still ran on the sleeper's worker after its deadline (they
 * note the time every few microseconds): weft's part.  The difference is
 * time the kernel did not run this process at all, which on a busy machine
 * can be milliseconds; the verdict judges weft's part.
 */
#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <weft.h>
#include "demo_common.h"

#define MAX_SPINNERS 256
#define MAX_SLEEPS 100000

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
"usage: %s [--spinners N] [--sleeps N] [--min-ms MS] [--max-ms MS] [--limit-ms MS]\n"
"          [--timeout S] [--workers N] [--quantum-us US]\n"
"\n"
"A sleeper beside CPU-bound spinners: how late does it wake?\n"
"\n"
"  --spinners N     CPU-bound threads (default 4)\n"
"  --sleeps N       sleeps to measure (default 200)\n"
"  --min-ms, --max-ms  each sleep lasts a random time in this range (default 2-5)\n"
"  --limit-ms MS    verdict: median time the spinners may keep the sleeper\n"
"                   waiting past its deadline (default: the kernel's tick,\n"
"                   measured, plus 1; weft's tick fires at the kernel's)\n"
"  --timeout S      spinners give up after S seconds even if the sleeper has\n"
"                   not finished, so that the demo ends without preemption too\n"
"                   (default 5)\n"
"  --workers N      sets WEFT_WORKERS;  --quantum-us US  sets WEFT_QUANTUM_US\n"
"\n"
"Environment: WEFT_WORKERS (default: CPUs), WEFT_QUANTUM_US (default 10000;\n"
"0 turns preemption off).\n"
"\n"
"Exit status: 0 on time (median wait caused by the spinners within the limit,\n"
"spinners running during at least 90 %% of the sleeps, and the sleeper started\n"
"within 1 s); 1 late, e.g. with WEFT_QUANTUM_US=0, where the spinners keep the\n"
"workers until --timeout; 2 bad usage or weft_init failed.\n", prog);
}

struct spinner {
	_Atomic uint64_t iters;
} __attribute__((aligned(64)));

static struct spinner sp[MAX_SPINNERS];
static int nspinners = 4;
static _Atomic uint64_t *last_spin_ns;  /* per worker: last time a spinner ran there */
static _Atomic int go, stop;
static uint64_t give_up_ns;
static volatile uint64_t sink;

static inline uint64_t work(uint64_t x)
{
	for (int i = 0; i < 64; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	return x;
}

static void *spin(void *arg)
{
	struct spinner *s = arg;
	while (!atomic_load(&go))
		weft_yield();
	uint64_t x = (uint64_t)(s - sp) + 1, n = 0;
	for (;;) {
		x = work(x);
		atomic_store_explicit(&s->iters, ++n, memory_order_relaxed);
		if (n % 64)
			continue;
		uint64_t t = now_ns();
		atomic_store_explicit(&last_spin_ns[weft_worker_self()], t, memory_order_relaxed);
		if (atomic_load_explicit(&stop, memory_order_relaxed) || t >= give_up_ns)
			break;
	}
	sink += x;
	return NULL;
}

static uint64_t spun_total(void)
{
	uint64_t s = 0;
	for (int i = 0; i < nspinners; i++)
		s += atomic_load_explicit(&sp[i].iters, memory_order_relaxed);
	return s;
}

static int nsleeps = 200, min_ms = 2, max_ms = 5;
static uint64_t *late, *kept;
static int beside;
static uint64_t go_ns, first_run_ns;

static void *sleeper(void *arg)
{
	(void)arg;
	while (!atomic_load(&go))
		weft_yield();
	first_run_ns = now_ns();
	uint32_t rng = 12345;
	for (int k = 0; k < nsleeps; k++) {
		rng = rng * 1664525u + 1013904223u;
		uint64_t d = (uint64_t)min_ms * 1000000ull +
		             (uint64_t)(rng >> 8) % ((uint64_t)(max_ms - min_ms) * 1000000ull + 1);
		uint64_t before = spun_total();
		uint64_t due = now_ns() + d;
		weft_sleep_ns(d);
		uint64_t woke = now_ns();
		uint64_t spun = atomic_load(&last_spin_ns[weft_worker_self()]);
		late[k] = woke > due ? woke - due : 0;
		kept[k] = spun > due ? spun - due : 0;
		beside += spun_total() != before;
		if ((k + 1) % 50 == 0 || k + 1 == nsleeps) {
			printf("  %d sleeps done\n", k + 1);
			fflush(stdout);
		}
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

int main(int argc, char **argv)
{
	int limit_ms = -1, timeout_s = 5, v;
	static const struct option opts[] = {
		{ "spinners", required_argument, NULL, 'n' },
		{ "sleeps", required_argument, NULL, 'k' },
		{ "min-ms", required_argument, NULL, 'a' },
		{ "max-ms", required_argument, NULL, 'b' },
		{ "limit-ms", required_argument, NULL, 'l' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "workers", required_argument, NULL, 'w' },
		{ "quantum-us", required_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "n:k:a:b:l:T:w:q:h", opts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'n': bad = parse_int(optarg, 0, MAX_SPINNERS, &nspinners); break;
		case 'k': bad = parse_int(optarg, 1, MAX_SLEEPS, &nsleeps); break;
		case 'a': bad = parse_int(optarg, 0, 10000, &min_ms); break;
		case 'b': bad = parse_int(optarg, 0, 10000, &max_ms); break;
		case 'l': bad = parse_int(optarg, 0, 10000, &limit_ms); break;
		case 'T': bad = parse_int(optarg, 1, 3600, &timeout_s); break;
		case 'w':
			bad = parse_int(optarg, 1, 1024, &v);
			setenv("WEFT_WORKERS", optarg, 1);
			break;
		case 'q':
			bad = parse_int(optarg, 0, 10000000, &v);
			setenv("WEFT_QUANTUM_US", optarg, 1);
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			bad = 1;
		}
		if (bad) {
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind != argc || max_ms < min_ms) {
		usage(stderr, argv[0]);
		return 2;
	}
	/* weft's tick fires at the kernel's tick (docs/design.md,
	 * "Preemption"): by default the sleeper may be kept about one. */
	if (limit_ms < 0)
		limit_ms = (int)((demo_kernel_tick_ns() + 999999) / 1000000) + 1;
	int e = weft_init();
	if (e) {
		fprintf(stderr, "sleeper: weft_init: %s\n", strerror(e));
		return 2;
	}
	int nworkers = weft_workers();
	last_spin_ns = calloc((size_t)nworkers, sizeof *last_spin_ns);
	late = calloc((size_t)nsleeps, sizeof *late);
	kept = calloc((size_t)nsleeps, sizeof *kept);
	if (!last_spin_ns || !late || !kept) {
		fprintf(stderr, "sleeper: out of memory\n");
		return 2;
	}
	const char *q = getenv("WEFT_QUANTUM_US");
	long quantum = q ? atol(q) : 10000;
	printf("sleeper: %d sleeps of %d-%d ms beside %d CPU-bound threads, %d worker%s, quantum %ld us%s\n",
	       nsleeps, min_ms, max_ms, nspinners, nworkers, nworkers == 1 ? "" : "s", quantum,
	       quantum ? "" : " (preemption off)");

	weft_t t[MAX_SPINNERS], s;
	for (int i = 0; i < nspinners; i++)
		if (demo_create("sleeper", &t[i], spin, &sp[i], "spinner %d", i))
			return 2;
	if (demo_create("sleeper", &s, sleeper, NULL, "sleeper", 0))
		return 2;
	uint64_t t0 = now_ns();
	go_ns = t0;
	give_up_ns = t0 + (uint64_t)timeout_s * 1000000000ull;
	atomic_store(&go, 1);
	weft_join(s, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < nspinners; i++)
		weft_join(t[i], NULL);
	uint64_t elapsed = now_ns() - t0;

	qsort(late, (size_t)nsleeps, sizeof *late, cmp_u64);
	qsort(kept, (size_t)nsleeps, sizeof *kept, cmp_u64);
	int med = nsleeps / 2, p99 = nsleeps * 99 / 100;
	printf("woke late by:             median %7.3f ms   p99 %7.3f ms   max %8.3f ms\n",
	       ms(late[med]), ms(late[p99]), ms(late[nsleeps - 1]));
	printf("kept waiting by spinners: median %7.3f ms   p99 %7.3f ms   max %8.3f ms\n",
	       ms(kept[med]), ms(kept[p99]), ms(kept[nsleeps - 1]));
	static const double edges[] = { 0.1, 0.5, 1, 2, 5, 10, 50 };
	int nb = (int)(sizeof edges / sizeof edges[0]);
	printf("woke late by, histogram:");
	for (int b = 0, k = 0; b <= nb; b++) {
		int n = 0;
		while (k < nsleeps && (b == nb || ms(late[k]) < edges[b]))
			n++, k++;
		if (b < nb)
			printf("  <%g ms: %d", edges[b], n);
		else
			printf("  more: %d", n);
	}
	uint64_t start_delay = first_run_ns - go_ns;
	printf("\nthe sleeper started %.3f ms after the spinners; spinners ran during %d of %d "
	       "sleeps; %.1f s in all\n", ms(start_delay), beside, nsleeps, (double)elapsed / 1e9);
	if (quantum && nspinners)
		printf("(without a tick at the deadline, a sleeper behind %d spinners could wait up to "
		       "%.0f ms)\n", nspinners, (double)quantum * nspinners / 1000.0);

	bool on_time = ms(kept[med]) <= limit_ms && (nspinners == 0 || beside * 10 >= nsleeps * 9) &&
	               ms(start_delay) <= 1000;
	if (on_time) {
		printf("verdict: ON TIME - the spinners kept the sleeper waiting %.3f ms past its "
		       "deadline at the median (limit %d ms)\n", ms(kept[med]), limit_ms);
		return 0;
	}
	printf("verdict: LATE - the spinners kept the sleeper waiting %.3f ms past its deadline at "
	       "the median (limit %d ms), max %.1f ms; it could not start for %.0f ms; spinners ran "
	       "during %d of %d sleeps%s\n",
	       ms(kept[med]), limit_ms, ms(kept[nsleeps - 1]), ms(start_delay), beside, nsleeps,
	       quantum ? "" : " - expected: WEFT_QUANTUM_US=0 turns preemption off");
	return 1;
}
