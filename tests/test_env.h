/*
 * test_env.h — what the tests learn from the environment they run in.
 *
 * WEFT_TEST_STRESS_DIV=N   the long stress cases run 1/N of their rounds
 *                          (at least one).  CI sets it for the AArch64 suite
 *                          under qemu-user, where emulation is 10 to 50 times
 *                          slower; every other check is unchanged.
 *
 * weft_test_unsupported(why) is for a check whose precondition the machine
 * itself does not meet (a kernel feature an emulator hides): the test says
 * so on stdout and ends without having checked anything, instead of failing
 * on something weft does not control or passing silently.  The README lists
 * where this happens.
 */
#ifndef WEFT_TEST_ENV_H
#define WEFT_TEST_ENV_H

#include <stdio.h>
#include <stdlib.h>

/* n rounds of a long stress case, divided by WEFT_TEST_STRESS_DIV. */
static inline long weft_test_rounds(long n)
{
	const char *s = getenv("WEFT_TEST_STRESS_DIV");
	long div = s ? strtol(s, NULL, 10) : 1;
	if (div <= 1)
		return n;
	return n / div > 0 ? n / div : 1;
}

/* Report that the calling test cannot be valid here, and why. */
#define weft_test_unsupported(why) \
	printf("%s: not checked on this machine: %s\n", __func__, (why))

#endif
