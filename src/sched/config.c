/*
 * config.c — the environment, read once at init (docs/design.md,
 * "Configuration and errors").  A bad value
 * is refused with EINVAL and one stderr line naming the variable and what it
 * accepts; nothing is guessed.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sched_internal.h"
#include "../kthreads/kthread.h"

#define WF_WORKERS_MAX        1024
#define WF_QUANTUM_US_DEFAULT 10000ull           /* 10 ms */
#define WF_QUANTUM_US_MIN     100ull
#define WF_QUANTUM_US_MAX     10000000ull        /* 10 s */
#define WF_STACK_CACHE_LIMIT  (1ull << 40)       /* 1024G */

/* One line on stderr: var=val is invalid, expected <accepted, formatted>. */
static int wf_bad(const char *var, const char *val, const char *accepted, ...)
	__attribute__((format(printf, 3, 4)));
static int wf_bad(const char *var, const char *val, const char *accepted, ...)
{
	char what[512];   /* the longest, the signal list, is about 230 */
	va_list ap;
	va_start(ap, accepted);
	vsnprintf(what, sizeof what, accepted, ap);
	va_end(ap);
	fprintf(stderr, "weft: %s=\"%s\" is invalid: expected %s\n", var, val, what);
	return EINVAL;
}

/* Parse a whole decimal number; false on junk, sign or overflow. */
static bool wf_parse_u64(const char *s, uint64_t *out, const char **rest)
{
	if (!isdigit((unsigned char)*s))
		return false;
	uint64_t v = 0;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	*rest = s;
	return true;
}

static int wf_default_workers(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set) < WF_WORKERS_MAX ? CPU_COUNT(&set) : WF_WORKERS_MAX;
	return 1;
}

static int wf_read_workers(struct wf_config *c)
{
	const char *s = getenv("WEFT_WORKERS");
	c->workers = c->cpus = wf_default_workers();
	if (!s)
		return 0;
	uint64_t v;
	const char *rest;
	if (!wf_parse_u64(s, &v, &rest) || *rest || v < 1 || v > WF_WORKERS_MAX)
		return wf_bad("WEFT_WORKERS", s, "a whole number from 1 to %d", WF_WORKERS_MAX);
	c->workers = (int)v;
	return 0;
}

static int wf_read_quantum(struct wf_config *c)
{
	const char *s = getenv("WEFT_QUANTUM_US");
	c->quantum_us = WF_QUANTUM_US_DEFAULT;
	if (!s)
		return 0;
	uint64_t v;
	const char *rest;
	if (!wf_parse_u64(s, &v, &rest) || *rest || (v != 0 && v < WF_QUANTUM_US_MIN) ||
	    v > WF_QUANTUM_US_MAX)
		return wf_bad("WEFT_QUANTUM_US", s,
		              "0 (preemption off) or microseconds from %llu to %llu",
		              WF_QUANTUM_US_MIN, WF_QUANTUM_US_MAX);
	c->quantum_us = v;
	return 0;
}

static int wf_read_stack_size(struct wf_config *c)
{
	const char *s = getenv("WEFT_STACK_SIZE");
	c->stack_size = WF_STACK_SIZE_DEFAULT;
	if (!s)
		return 0;
	uint64_t v;
	const char *rest;
	if (wf_parse_u64(s, &v, &rest)) {
		uint64_t mul = 1;
		if ((*rest == 'K' || *rest == 'k'))
			mul = 1024, rest++;
		else if (*rest == 'M' || *rest == 'm')
			mul = 1024 * 1024, rest++;
		if (*rest == '\0' && v <= WF_STACK_SIZE_MAX / mul &&
		    v * mul >= WEFT_STACK_MIN) {
			c->stack_size = (size_t)(v * mul);
			return 0;
		}
	}
	return wf_bad("WEFT_STACK_SIZE", s, "bytes from %zu (%zuK) to %zu (%zuM), with optional K or M",
	              WEFT_STACK_MIN, WEFT_STACK_MIN >> 10, WF_STACK_SIZE_MAX,
	              WF_STACK_SIZE_MAX >> 20);
}

/* A byte count with an optional K, M or G suffix (powers of 1024); false
 * on junk or overflow. */
static bool wf_parse_bytes(const char *s, uint64_t *out)
{
	uint64_t v, mul = 1;
	const char *rest;
	if (!wf_parse_u64(s, &v, &rest))
		return false;
	switch (*rest) {
	case 'K': case 'k': mul = 1ull << 10; rest++; break;
	case 'M': case 'm': mul = 1ull << 20; rest++; break;
	case 'G': case 'g': mul = 1ull << 30; rest++; break;
	}
	if (*rest || v > UINT64_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

static int wf_read_stack_cache(struct wf_config *c)
{
	const char *s = getenv("WEFT_STACK_CACHE");
	c->stack_cache = WF_STACK_WARM_DEFAULT;
	if (!s)
		return 0;
	uint64_t v;
	if (!wf_parse_bytes(s, &v) || v > WF_STACK_CACHE_LIMIT)
		return wf_bad("WEFT_STACK_CACHE", s,
		              "bytes from 0 to %lluG, with optional K, M or G",
		              (unsigned long long)(WF_STACK_CACHE_LIMIT >> 30));
	c->stack_cache = (size_t)v;
	return 0;
}

static int wf_read_kthreads(struct wf_config *c)
{
	const char *s = getenv("WEFT_KTHREADS");
	c->kthreads_mode = WF_KT_MODE_AUTO;
	if (!s || !strcmp(s, "auto"))
		return 0;
	if (!strcmp(s, "clone"))
		c->kthreads_mode = WF_KT_MODE_CLONE;
	else if (!strcmp(s, "pthread"))
		c->kthreads_mode = WF_KT_MODE_PTHREAD;
	else
		return wf_bad("WEFT_KTHREADS", s, "clone, pthread or auto");
	return 0;
}

/* Signals weft may use for its timer: not ones the kernel or the runtime
 * reserve for other meanings. */
static bool wf_signal_usable(int sig)
{
	switch (sig) {
	case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGFPE:
	case SIGILL: case SIGABRT: case SIGTRAP: case SIGCHLD: case SIGCONT:
	case SIGTSTP: case SIGTTIN: case SIGTTOU: case SIGPIPE: case SIGSYS:
		return false;
	}
	return sig >= 1 && sig <= SIGRTMAX && (sig < 32 || sig >= SIGRTMIN);
}

static const struct { const char *name; int sig; } wf_signames[] = {
	{ "SIGALRM", SIGALRM }, { "SIGVTALRM", SIGVTALRM }, { "SIGPROF", SIGPROF },
	{ "SIGUSR1", SIGUSR1 }, { "SIGUSR2", SIGUSR2 }, { "SIGHUP", SIGHUP },
	{ "SIGINT", SIGINT }, { "SIGQUIT", SIGQUIT }, { "SIGTERM", SIGTERM },
	{ "SIGURG", SIGURG }, { "SIGWINCH", SIGWINCH }, { "SIGIO", SIGIO },
	{ "SIGXCPU", SIGXCPU }, { "SIGXFSZ", SIGXFSZ }, { "SIGPWR", SIGPWR },
	{ "SIGSTKFLT", SIGSTKFLT },
};

static int wf_signal_from_name(const char *s)
{
	const char *n = strncmp(s, "SIG", 3) ? s : s + 3;
	for (size_t i = 0; i < sizeof wf_signames / sizeof wf_signames[0]; i++)
		if (!strcmp(n, wf_signames[i].name + 3))
			return wf_signames[i].sig;
	if (!strncmp(n, "RTMIN", 5) || !strncmp(n, "RTMAX", 5)) {
		int base = n[2] == 'M' && n[3] == 'I' ? SIGRTMIN : SIGRTMAX;
		if (n[5] == '\0')
			return base;
		uint64_t off;
		const char *rest;
		if ((n[5] == '+' || n[5] == '-') && wf_parse_u64(n + 6, &off, &rest) &&
		    !*rest && off <= 32)
			return n[5] == '+' ? base + (int)off : base - (int)off;
	}
	return -1;
}

/* A signal variable: a name or a number; *out keeps its default when unset. */
static int wf_read_signal(const char *var, int *out)
{
	const char *s = getenv(var);
	if (!s)
		return 0;
	uint64_t v;
	const char *rest;
	int sig = -1;
	if (wf_parse_u64(s, &v, &rest)) {
		if (!*rest && v <= 64)
			sig = (int)v;
	} else {
		sig = wf_signal_from_name(s);
	}
	if (!wf_signal_usable(sig))
		return wf_bad(var, s,
		              "a signal name or number such as SIGALRM, SIGVTALRM, SIGUSR1, "
		              "SIGRTMIN+N or 14 (not SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, "
		              "SIGILL, SIGABRT, SIGTRAP, SIGCHLD, SIGCONT, SIGPIPE, SIGSYS or a "
		              "job-control signal)");
	*out = sig;
	return 0;
}

static int wf_read_signals(struct wf_config *c)
{
	int e;
	c->preempt_signal = SIGALRM;
	c->dump_signal = 0;
	if ((e = wf_read_signal("WEFT_PREEMPT_SIGNAL", &c->preempt_signal)) ||
	    (e = wf_read_signal("WEFT_DUMP_SIGNAL", &c->dump_signal)))
		return e;
	if (c->dump_signal == c->preempt_signal)
		return wf_bad("WEFT_DUMP_SIGNAL", getenv("WEFT_DUMP_SIGNAL"),
		              "a signal other than the preemption signal (WEFT_PREEMPT_SIGNAL)");
	return 0;
}

/* WEFT_TRACE: a file to write the trace to at exit; unset or empty = off. */
static int wf_read_trace(struct wf_config *c)
{
	const char *s = getenv("WEFT_TRACE");
	c->trace_path = s && *s ? s : NULL;
	return 0;
}

int wf_config_read(struct wf_config *cfg)
{
	int e;
	if ((e = wf_read_workers(cfg)) || (e = wf_read_quantum(cfg)) ||
	    (e = wf_read_stack_size(cfg)) || (e = wf_read_stack_cache(cfg)) ||
	    (e = wf_read_kthreads(cfg)) ||
	    (e = wf_read_signals(cfg)) || (e = wf_read_trace(cfg)))
		return e;
	return 0;
}
