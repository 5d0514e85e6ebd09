/*
 * hello.c — the smallest weft program: start green threads, join them.
 *
 *   cmake -S examples -B build-examples -DCMAKE_PREFIX_PATH=<weft prefix>
 *   cmake --build build-examples && ./build-examples/hello
 */
#include <stdio.h>
#include <stdlib.h>
#include <weft.h>

static void *square(void *arg)
{
	long n = (long)arg;
	weft_yield();                   /* let the others run too */
	return (void *)(n * n);
}

int main(void)
{
	enum { N = 10 };
	weft_t t[N];
	long sum = 0;
	for (long i = 0; i < N; i++) {
		int e = weft_create(&t[i], NULL, square, (void *)i);
		if (e) {
			fprintf(stderr, "weft_create: error %d\n", e);
			return EXIT_FAILURE;
		}
	}
	for (int i = 0; i < N; i++) {
		void *r;
		if (weft_join(t[i], &r))
			return EXIT_FAILURE;
		sum += (long)r;
	}
	printf("hello from %d workers: sum of squares 0..%d = %ld\n", weft_workers(), N - 1, sum);
	return sum == 285 ? EXIT_SUCCESS : EXIT_FAILURE;
}
