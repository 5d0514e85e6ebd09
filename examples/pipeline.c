/*
 * pipeline.c — producers and consumers over a bounded buffer guarded by a
 * weft mutex and two condition variables; prints the statistics at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <weft.h>

enum { CAP = 16, PRODUCERS = 4, CONSUMERS = 4, ITEMS = 10000 };

static weft_mutex_t lock = WEFT_MUTEX_INITIALIZER;
static weft_cond_t not_full = WEFT_COND_INITIALIZER;
static weft_cond_t not_empty = WEFT_COND_INITIALIZER;
static long buf[CAP];
static int head, count, producers_left = PRODUCERS;

static void *produce(void *arg)
{
	long base = (long)arg * ITEMS;
	for (long i = 1; i <= ITEMS; i++) {
		weft_mutex_lock(&lock);
		while (count == CAP)
			weft_cond_wait(&not_full, &lock);
		buf[(head + count++) % CAP] = base + i;
		weft_cond_signal(&not_empty);
		weft_mutex_unlock(&lock);
	}
	weft_mutex_lock(&lock);
	if (--producers_left == 0)
		weft_cond_broadcast(&not_empty);   /* consumers: no more items */
	weft_mutex_unlock(&lock);
	return NULL;
}

static void *consume(void *arg)
{
	long sum = 0;
	(void)arg;
	for (;;) {
		weft_mutex_lock(&lock);
		while (count == 0 && producers_left > 0)
			weft_cond_wait(&not_empty, &lock);
		if (count == 0) {
			weft_mutex_unlock(&lock);
			return (void *)sum;
		}
		sum += buf[head];
		head = (head + 1) % CAP;
		count--;
		weft_cond_signal(&not_full);
		weft_mutex_unlock(&lock);
	}
}

int main(void)
{
	weft_t p[PRODUCERS], c[CONSUMERS];
	for (long i = 0; i < PRODUCERS; i++)
		if (weft_create(&p[i], NULL, produce, (void *)i))
			return EXIT_FAILURE;
	for (int i = 0; i < CONSUMERS; i++)
		if (weft_create(&c[i], NULL, consume, NULL))
			return EXIT_FAILURE;
	long total = 0;
	for (int i = 0; i < PRODUCERS; i++)
		weft_join(p[i], NULL);
	for (int i = 0; i < CONSUMERS; i++) {
		void *r;
		weft_join(c[i], &r);
		total += (long)r;
	}
	/* Each producer k sends k*ITEMS + 1 .. k*ITEMS + ITEMS. */
	long n = (long)PRODUCERS * ITEMS;
	long want = n * (n + 1) / 2;
	weft_stats_t s;
	weft_stats_get(-1, &s);
	printf("pipeline: received sum %ld (expected %ld); %llu switches, %llu parks, "
	       "%llu steals\n", total, want, (unsigned long long)s.switches,
	       (unsigned long long)s.parks, (unsigned long long)s.steals);
	return total == want ? EXIT_SUCCESS : EXIT_FAILURE;
}
