#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <weft.h>

/* weft functions return 0 or an errno value. */
static void check(int e, const char *what)
{
	if (e) {
		fprintf(stderr, "%s: %s\n", what, strerror(e));
		exit(EXIT_FAILURE);
	}
}

static void *square(void *arg)
{
	long n = (long)arg;
	return (void *)(n * n);
}

int main(void)
{
	check(weft_init(), "weft_init");   /* reads WEFT_* from the environment */
	weft_t t[10];
	for (long i = 0; i < 10; i++)
		check(weft_create(&t[i], NULL, square, (void *)i), "weft_create");
	long sum = 0;
	for (int i = 0; i < 10; i++) {
		void *r;
		check(weft_join(t[i], &r), "weft_join");
		sum += (long)r;
	}
	printf("%ld\n", sum);   /* 285 */
	return 0;
}
