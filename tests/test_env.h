/*
 * test_env.h — what the tests learn from the environment they run in.
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

/* Report that the calling test cannot be valid here, and why. */
#define weft_test_unsupported(why) \
	printf("%s: not checked on this machine: %s\n", __func__, (why))

#endif
