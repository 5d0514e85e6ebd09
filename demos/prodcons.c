/*
 * prodcons.c — producers and consumers on a bounded buffer built from a
 * weft mutex and two condition variables, with preemption on: every item
 * arrives exactly once.
 *
 * Each producer numbers its items 0, 1, 2, ... and puts (producer, number)
 * into a small ring buffer, waiting on "not full" when it is full; consumers
 * wait on "not empty".  The buffer is FIFO and a producer's items enter in
 * order, so under the mutex a consumer checks that the item it takes is the
 * next one expected from that producer: a lost, duplicated or reordered item
 * is caught at the moment it happens.  Both sides also keep checksums
 * (count, sum and a hash of every item), compared at the end.  Work outside
 * and inside the lock gives the timer chances to preempt anywhere.
 *
 * The quantum defaults to 1 ms here (WEFT_QUANTUM_US is set to 1000 unless
 * the environment or --quantum-us says otherwise).
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

#define MAX_THREADS 1024

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
"usage: %s [--producers N] [--consumers N] [--capacity N] [--seconds S]\n"
"          [--workers N] [--quantum-us US]\n"
"\n"
"Producers and consumers on a bounded buffer (weft mutex + condition variables).\n"
"\n"
"  --producers N    (default 4)      --consumers N   (default 4)\n"
"  --capacity N     buffer slots (default 16)\n"
"  --seconds S      producers stop after S seconds (default 3)\n"
"  --workers N      sets WEFT_WORKERS;  --quantum-us US  sets WEFT_QUANTUM_US\n"
"                   (default here: 1000 unless the environment says otherwise)\n"
"\n"
"Exit status: 0 every item produced was consumed exactly once and in order\n"
"per producer, checksums equal, no weft call failed; 1 otherwise; 2 bad usage\n"
"or weft_init failed.\n", prog);
}

struct item { uint32_t producer; uint32_t seq; };

static uint64_t item_hash(struct item it)
{
	uint64_t x = ((uint64_t)it.producer << 32 | it.seq) * 0x9e3779b97f4a7c15ull;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 32);
}

struct sums { uint64_t count, seqsum, hash; };

static void sums_add(struct sums *s, struct item it)
{
	s->count++;
	s->seqsum += it.seq;
	s->hash += item_hash(it);
}

/* The bounded buffer: all under `lock`. */
static weft_mutex_t lock;
static weft_cond_t not_full, not_empty;
static struct item *ring;
static int capacity = 16, head, len;
static int producers_left;
static uint32_t *next_seq;      /* per producer: next number a consumer expects */
static uint64_t order_errors;   /* wrong item taken: lost, duplicated or reordered */
static uint64_t full_waits, empty_waits;

static int nproducers = 4, nconsumers = 4;
static struct sums *produced, *consumed;
static _Atomic int stop;
static _Atomic uint64_t call_errors;
static volatile uint64_t sink;

static void check(int e)
{
	if (e)
		atomic_fetch_add(&call_errors, 1);
}

static inline uint64_t work(uint64_t x, int rounds)
{
	for (int i = 0; i < rounds; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	return x;
}

static void *producer(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	struct sums *mine = &produced[id];
	uint64_t x = id + 1;
	for (uint32_t seq = 0; !atomic_load_explicit(&stop, memory_order_relaxed); seq++) {
		x = work(x, 300 + (int)(x % 400));  /* make the item */
		struct item it = { id, seq };
		check(weft_mutex_lock(&lock));
		while (len == capacity) {
			full_waits++;
			check(weft_cond_wait(&not_full, &lock));
		}
		ring[(head + len) % capacity] = it;
		len++;
		x = work(x, 50);                       /* inside the lock too */
		check(weft_cond_signal(&not_empty));
		check(weft_mutex_unlock(&lock));
		sums_add(mine, it);
	}
	check(weft_mutex_lock(&lock));
	if (--producers_left == 0)
		check(weft_cond_broadcast(&not_empty));  /* consumers: drain and stop */
	check(weft_mutex_unlock(&lock));
	sink += x;
	return NULL;
}

static void *consumer(void *arg)
{
	struct sums *mine = arg;
	uint64_t x = (uint64_t)(uintptr_t)arg;
	for (;;) {
		check(weft_mutex_lock(&lock));
		while (len == 0 && producers_left > 0) {
			empty_waits++;
			check(weft_cond_wait(&not_empty, &lock));
		}
		if (len == 0) {  /* every producer is done and the buffer is drained */
			check(weft_mutex_unlock(&lock));
			break;
		}
		struct item it = ring[head];
		head = (head + 1) % capacity;
		len--;
		if (it.producer >= (uint32_t)nproducers || it.seq != next_seq[it.producer])
			order_errors++;
		else
			next_seq[it.producer]++;
		check(weft_cond_signal(&not_full));
		check(weft_mutex_unlock(&lock));
		sums_add(mine, it);
		x = work(x, 300 + (int)(it.seq % 400));  /* use the item */
	}
	sink += x;
	return NULL;
}

static void report(uint64_t t0)
{
	weft_stats_t st;
	weft_stats_get(-1, &st);
	uint64_t p = 0, c = 0;
	for (int i = 0; i < nproducers; i++)
		p += produced[i].count;
	for (int i = 0; i < nconsumers; i++)
		c += consumed[i].count;
	/* Racy reads of counters owned by running threads: a progress line only. */
	printf("  t=%.0f s: about %llu produced, %llu consumed, %llu preemptions so far\n",
	       (double)(now_ns() - t0) / 1e9, (unsigned long long)p, (unsigned long long)c,
	       (unsigned long long)st.preemptions);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int seconds = 3, v;
	static const struct option opts[] = {
		{ "producers", required_argument, NULL, 'p' },
		{ "consumers", required_argument, NULL, 'c' },
		{ "capacity", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "workers", required_argument, NULL, 'w' },
		{ "quantum-us", required_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "p:c:n:s:w:q:h", opts, NULL)) != -1) {
		int bad = 0;
		switch (ch) {
		case 'p': bad = parse_int(optarg, 1, MAX_THREADS, &nproducers); break;
		case 'c': bad = parse_int(optarg, 1, MAX_THREADS, &nconsumers); break;
		case 'n': bad = parse_int(optarg, 1, 1 << 20, &capacity); break;
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
	setenv("WEFT_QUANTUM_US", "1000", 0);
	int e = weft_init();
	if (e) {
		fprintf(stderr, "prodcons: weft_init: %s\n", strerror(e));
		return 2;
	}
	ring = calloc((size_t)capacity, sizeof *ring);
	next_seq = calloc((size_t)nproducers, sizeof *next_seq);
	produced = calloc((size_t)nproducers, sizeof *produced);
	consumed = calloc((size_t)nconsumers, sizeof *consumed);
	weft_t *tp = calloc((size_t)nproducers, sizeof *tp), *tc = calloc((size_t)nconsumers, sizeof *tc);
	if (!ring || !next_seq || !produced || !consumed || !tp || !tc) {
		fprintf(stderr, "prodcons: out of memory\n");
		return 2;
	}
	if ((e = weft_mutex_init(&lock, NULL)) || (e = weft_cond_init(&not_full, NULL)) ||
	    (e = weft_cond_init(&not_empty, NULL))) {
		fprintf(stderr, "prodcons: init: %s\n", strerror(e));
		return 2;
	}
	producers_left = nproducers;
	int nworkers = weft_workers();
	printf("prodcons: %d producers, %d consumers, %d slots, %d worker%s, quantum %s us, %d s\n",
	       nproducers, nconsumers, capacity, nworkers, nworkers == 1 ? "" : "s",
	       getenv("WEFT_QUANTUM_US"), seconds);

	uint64_t t0 = now_ns();
	for (int i = 0; i < nconsumers; i++)
		if (demo_create("prodcons", &tc[i], consumer, &consumed[i], "consumer %d", i))
			return 2;
	for (int i = 0; i < nproducers; i++)
		if (demo_create("prodcons", &tp[i], producer, (void *)(uintptr_t)i, "producer %d", i))
			return 2;
	for (int s = 1; s <= seconds; s++) {
		uint64_t due = t0 + (uint64_t)s * 1000000000ull, t = now_ns();
		if (due > t)
			weft_sleep_ns(due - t);
		report(t0);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < nproducers; i++)
		weft_join(tp[i], NULL);
	for (int i = 0; i < nconsumers; i++)
		weft_join(tc[i], NULL);

	struct sums p = { 0, 0, 0 }, c = { 0, 0, 0 };
	for (int i = 0; i < nproducers; i++) {
		p.count += produced[i].count;
		p.seqsum += produced[i].seqsum;
		p.hash += produced[i].hash;
	}
	for (int i = 0; i < nconsumers; i++) {
		c.count += consumed[i].count;
		c.seqsum += consumed[i].seqsum;
		c.hash += consumed[i].hash;
	}
	/* Every producer's last number was taken: nothing left behind. */
	uint64_t missing = 0;
	for (int i = 0; i < nproducers; i++)
		missing += produced[i].count - next_seq[i];
	weft_stats_t st;
	weft_stats_get(-1, &st);
	printf("produced %llu, consumed %llu items; waits: %llu on a full buffer, %llu on an empty "
	       "one; %llu preemptions\n", (unsigned long long)p.count, (unsigned long long)c.count,
	       (unsigned long long)full_waits, (unsigned long long)empty_waits,
	       (unsigned long long)st.preemptions);
	printf("checksums: produced %016llx/%016llx, consumed %016llx/%016llx\n",
	       (unsigned long long)p.seqsum, (unsigned long long)p.hash,
	       (unsigned long long)c.seqsum, (unsigned long long)c.hash);
	weft_cond_destroy(&not_full);
	weft_cond_destroy(&not_empty);
	weft_mutex_destroy(&lock);
	bool ok = p.count > 0 && p.count == c.count && p.seqsum == c.seqsum && p.hash == c.hash &&
	          !order_errors && !missing && len == 0 && !atomic_load(&call_errors);
	if (ok) {
		printf("verdict: EXACT - %llu items, each consumed once, in order per producer; "
		       "checksums equal\n", (unsigned long long)c.count);
		return 0;
	}
	printf("verdict: BROKEN - %llu items out of order, lost or duplicated; %llu never "
	       "consumed; %llu failed weft calls; counts %llu/%llu\n",
	       (unsigned long long)order_errors, (unsigned long long)missing,
	       (unsigned long long)atomic_load(&call_errors), (unsigned long long)p.count,
	       (unsigned long long)c.count);
	return 1;
}
