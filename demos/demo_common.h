/*
 * demo_common.h — what the demos share: starting a named green thread.
 * Names show up in thread dumps (WEFT_DUMP_SIGNAL) and traces (WEFT_TRACE).
 */
#ifndef WEFT_DEMO_COMMON_H
#define WEFT_DEMO_COMMON_H

#include <stdio.h>
#include <string.h>
#include <weft.h>

/* Create a green thread running fn(arg), named by `fmt` with `i` (a printf
 * format taking one int).  On failure say so on stderr, as `prog`, and
 * return the error. */
static inline int demo_create(const char *prog, weft_t *t, void *(*fn)(void *), void *arg,
                              const char *fmt, int i)
{
	char name[32];
	weft_attr_t a;
	int e = weft_attr_init(&a);
	snprintf(name, sizeof name, fmt, i);
	if (!e)
		e = weft_attr_setname(&a, name);
	if (!e)
		e = weft_create(t, &a, fn, arg);
	weft_attr_destroy(&a);
	if (e)
		fprintf(stderr, "%s: weft_create: %s\n", prog, strerror(e));
	return e;
}

#endif
