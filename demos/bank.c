/*
 * bank.c — money transfers between accounts under weft mutexes, with
 * preemption on: threads are switched in the middle of their critical
 * sections, yet no money is created or lost.
 *
 * Tellers (default 32 green threads) repeatedly pick two accounts, lock
 * both (lower index first, so two tellers never wait for each other in a
 * cycle), and move a random amount.  Inside the critical section the
 * balances are read into locals, some arithmetic is done (so the timer often
 * lands there), then written back: without the mutexes, a preempted
 * teller's stale write would make money vanish or appear.  Each account
 * also has an occupancy counter that must be 0 on entry, which catches two
 * threads inside at once directly.  An auditor locks every account in
 * index order every 100 ms and checks that the total is unchanged.
 *
 * The quantum defaults to 1 ms here (WEFT_QUANTUM_US is set to 1000 unless
 * the environment or --quantum-us says otherwise) so that preemptions are
 * frequent.
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

#define MAX_TELLERS 4096
#define MAX_ACCOUNTS 100000
#define START_BALANCE 1000

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
"usage: %s [--tellers N] [--accounts N] [--seconds S] [--workers N] [--quantum-us US]\n"
"\n"
"Transfers between accounts under weft mutexes with preemption on; an auditor\n"
"checks every 100 ms, holding every account's lock, that the total is conserved.\n"
"\n"
"  --tellers N      green threads doing transfers (default 32)\n"
"  --accounts N     accounts, each starting with %d (default 64)\n"
"  --seconds S      run time (default 3)\n"
"  --workers N      sets WEFT_WORKERS (default: the environment's, else CPUs)\n"
"  --quantum-us US  sets WEFT_QUANTUM_US (default: the environment's, else 1000)\n"
"\n"
"Exit status: 0 total conserved at every audit and at the end, no two threads\n"
"ever inside one account's critical section, no weft call failed; 1 otherwise;\n"
"2 bad usage or weft_init failed.\n", prog, START_BALANCE);
}

struct account {
	weft_mutex_t lock;
	long balance;
	_Atomic int inside;        /* threads in its critical section: 0 or 1 */
} __attribute__((aligned(64)));

struct teller {
	_Atomic uint64_t transfers;
	_Atomic uint64_t contended;  /* trylock found the lock taken */
	int id;
} __attribute__((aligned(64)));

static struct account *accts;
static struct teller *tel;
static int ntellers = 32, naccounts = 64;
static _Atomic int stop;
static _Atomic uint64_t violations, call_errors;
static uint64_t audits, bad_audits;
static long expected_total;
static volatile uint64_t sink;

static void enter(struct account *a)
{
	if (atomic_fetch_add(&a->inside, 1) != 0)
		atomic_fetch_add(&violations, 1);
}

static void leave(struct account *a)
{
	atomic_fetch_sub(&a->inside, 1);
}

static void lock(struct teller *t, struct account *a)
{
	int e = weft_mutex_trylock(&a->lock);
	if (e == EBUSY) {
		if (t)
			atomic_fetch_add_explicit(&t->contended, 1, memory_order_relaxed);
		e = weft_mutex_lock(&a->lock);
	}
	if (e)
		atomic_fetch_add(&call_errors, 1);
}

static void unlock(struct account *a)
{
	if (weft_mutex_unlock(&a->lock))
		atomic_fetch_add(&call_errors, 1);
}

static inline uint64_t work(uint64_t x, int rounds)
{
	for (int i = 0; i < rounds; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	return x;
}

static void *teller(void *arg)
{
	struct teller *t = arg;
	uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(t->id + 1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		x = work(x, 200);  /* outside any lock */
		int i = (int)((x >> 20) % (uint64_t)naccounts);
		int j = (int)((x >> 40) % (uint64_t)(naccounts - 1));
		if (j >= i)
			j++;
		struct account *lo = &accts[i < j ? i : j], *hi = &accts[i < j ? j : i];
		struct account *from = &accts[i], *to = &accts[j];
		lock(t, lo);
		lock(t, hi);
		enter(lo);
		enter(hi);
		long a = from->balance, b = to->balance;  /* read ... */
		long amount = a > 0 ? (long)(x % (uint64_t)(a < 100 ? a + 1 : 100)) : 0;
		x = work(x, 300);                          /* ... think (preempted here) ... */
		from->balance = a - amount;                /* ... write back */
		to->balance = b + amount;
		leave(hi);
		leave(lo);
		unlock(hi);
		unlock(lo);
		atomic_fetch_add_explicit(&t->transfers, 1, memory_order_relaxed);
	}
	sink += x;
	return NULL;
}

static long audit(void)
{
	for (int i = 0; i < naccounts; i++)
		lock(NULL, &accts[i]);
	long total = 0;
	for (int i = 0; i < naccounts; i++)
		total += accts[i].balance;
	for (int i = naccounts - 1; i >= 0; i--)
		unlock(&accts[i]);
	return total;
}

static uint64_t total_transfers(uint64_t *contended)
{
	uint64_t s = 0, c = 0;
	for (int i = 0; i < ntellers; i++) {
		s += atomic_load_explicit(&tel[i].transfers, memory_order_relaxed);
		c += atomic_load_explicit(&tel[i].contended, memory_order_relaxed);
	}
	if (contended)
		*contended = c;
	return s;
}

static uint64_t end_ns;

static void *auditor(void *arg)
{
	(void)arg;
	uint64_t next_print = now_ns() + 1000000000ull;
	for (;;) {
		weft_sleep_ns(100000000ull);
		long total = audit();
		audits++;
		if (total != expected_total) {
			bad_audits++;
			printf("  audit %llu: total %ld, expected %ld - MONEY %s\n",
			       (unsigned long long)audits, total, expected_total,
			       total > expected_total ? "CREATED" : "LOST");
		}
		uint64_t t = now_ns();
		if (t >= next_print) {
			uint64_t contended, n = total_transfers(&contended);
			weft_stats_t st;
			weft_stats_get(-1, &st);
			printf("  %llu transfers, %llu found a lock taken, %llu audits (%llu wrong), "
			       "%llu preemptions so far\n",
			       (unsigned long long)n, (unsigned long long)contended,
			       (unsigned long long)audits, (unsigned long long)bad_audits,
			       (unsigned long long)st.preemptions);
			fflush(stdout);
			next_print += 1000000000ull;
		}
		if (t >= end_ns)
			break;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int seconds = 3, v;
	static const struct option opts[] = {
		{ "tellers", required_argument, NULL, 't' },
		{ "accounts", required_argument, NULL, 'a' },
		{ "seconds", required_argument, NULL, 's' },
		{ "workers", required_argument, NULL, 'w' },
		{ "quantum-us", required_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "t:a:s:w:q:h", opts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 't': bad = parse_int(optarg, 1, MAX_TELLERS, &ntellers); break;
		case 'a': bad = parse_int(optarg, 2, MAX_ACCOUNTS, &naccounts); break;
		case 's': bad = parse_int(optarg, 1, 3600, &seconds); break;
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
	if (optind != argc) {
		usage(stderr, argv[0]);
		return 2;
	}
	setenv("WEFT_QUANTUM_US", "1000", 0);  /* frequent preemption, unless told otherwise */
	int e = weft_init();
	if (e) {
		fprintf(stderr, "bank: weft_init: %s\n", strerror(e));
		return 2;
	}
	accts = aligned_alloc(64, sizeof *accts * (size_t)naccounts);
	tel = aligned_alloc(64, sizeof *tel * (size_t)ntellers);
	if (!accts || !tel) {
		fprintf(stderr, "bank: out of memory\n");
		return 2;
	}
	memset(tel, 0, sizeof *tel * (size_t)ntellers);
	for (int i = 0; i < naccounts; i++) {
		if ((e = weft_mutex_init(&accts[i].lock, NULL))) {
			fprintf(stderr, "bank: weft_mutex_init: %s\n", strerror(e));
			return 2;
		}
		accts[i].balance = START_BALANCE;
		atomic_init(&accts[i].inside, 0);
	}
	expected_total = (long)naccounts * START_BALANCE;
	int nworkers = weft_workers();
	printf("bank: %d tellers, %d accounts of %d, %d worker%s, quantum %s us, %d s\n", ntellers,
	       naccounts, START_BALANCE, nworkers, nworkers == 1 ? "" : "s",
	       getenv("WEFT_QUANTUM_US"), seconds);

	end_ns = now_ns() + (uint64_t)seconds * 1000000000ull;
	weft_t *t = calloc((size_t)ntellers, sizeof *t), a;
	if (!t) {
		fprintf(stderr, "bank: out of memory\n");
		return 2;
	}
	for (int i = 0; i < ntellers; i++) {
		tel[i].id = i;
		if (demo_create("bank", &t[i], teller, &tel[i], "teller %d", i))
			return 2;
	}
	if (demo_create("bank", &a, auditor, NULL, "auditor", 0))
		return 2;
	weft_join(a, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < ntellers; i++)
		weft_join(t[i], NULL);

	long final = 0;
	for (int i = 0; i < naccounts; i++) {
		final += accts[i].balance;
		if (accts[i].balance < 0)
			atomic_fetch_add(&violations, 1);  /* overdrawn: a lost update */
		weft_mutex_destroy(&accts[i].lock);
	}
	uint64_t contended, n = total_transfers(&contended);
	weft_stats_t st;
	weft_stats_get(-1, &st);
	printf("%llu transfers (%llu found a lock taken), %llu audits, %llu preemptions, "
	       "%llu parks (blocked on a lock, or sleeping)\n",
	       (unsigned long long)n, (unsigned long long)contended, (unsigned long long)audits,
	       (unsigned long long)st.preemptions, (unsigned long long)st.parks);
	bool ok = final == expected_total && !bad_audits && !atomic_load(&violations) &&
	          !atomic_load(&call_errors) && n > 0 && audits > 0;
	if (ok) {
		printf("verdict: CONSERVED - total %ld at all %llu audits and at the end; critical "
		       "sections never shared\n", final, (unsigned long long)audits);
		return 0;
	}
	printf("verdict: BROKEN - final total %ld (expected %ld), %llu wrong audits, %llu "
	       "mutual-exclusion violations, %llu failed weft calls\n", final, expected_total,
	       (unsigned long long)bad_audits, (unsigned long long)atomic_load(&violations),
	       (unsigned long long)atomic_load(&call_errors));
	return 1;
}
