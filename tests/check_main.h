/*
 * check_main.h — the main() of every Check suite here, in one place.
 */
#ifndef WEFT_TESTS_CHECK_MAIN_H
#define WEFT_TESTS_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

/* The main() of every suite: run it with each test in a forked child (each
 * initializes weft anew, whatever CK_FORK says), verbosity from
 * CK_VERBOSITY; the exit status says whether any test failed. */
static inline int weft_check_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
