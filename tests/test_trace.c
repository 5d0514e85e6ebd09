/*
 * test_trace.c — the trace timeline (WEFT_TRACE, src/sched/trace.c), read
 * back from the file a traced program writes at exit.
 *
 * Covered: the file is one JSON object with one event per line, closed
 * properly, with metadata naming the process and each worker; slices are
 * named by thread name (from attributes, or set by the thread itself:
 * the last name counts), "main", or "thread <id>" when unnamed, carry the
 * thread's id, and never overlap on a worker; block events say why (mutex,
 * sleep, join, exit) and wake events who woke whom (the unlocking thread, a
 * finished thread for its joiner, -1 for a timer); preempt and steal events
 * on two workers; slices still open at exit (main's, and a spinner's on
 * another worker) end at the exit timestamp; exit from main through exit()
 * and through weft_exit; a small WEFT_TRACE_MAX_EVENTS keeps the last
 * events (a window that ends at the exit, with its start and the dropped
 * events in otherData, a note in the file and one line on stderr); SIGTERM
 * writes the file and ends the process, SIGINT writes it and runs the
 * program's own handler, and a program that survives its signal gets the
 * file written again at exit; bad WEFT_TRACE and WEFT_TRACE_MAX_EVENTS
 * values fail weft_init with EINVAL.  The tools under tools/trace are
 * tested by check_trace_tools.sh.
 *
 * The trace is written at exit (or on the signal), so each workload runs in a forked child of
 * the (already forked) Check test process, which parses the file with the
 * small line reader below.  Thread bodies never assert: the parent checks.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "weft_check.h"
#include "child_capture.h"
#include "helpers.h"
#include "sched/sched_internal.h"

/* ------------------------------------------------------------------------ */
/* Reading a trace back                                                     */
/* ------------------------------------------------------------------------ */

struct tev {
	char ph;              /* 'M', 'X' or 'i' */
	int tid;
	double ts, dur;       /* µs */
	char name[40];
	long id, by, from;    /* LONG_MIN when absent */
	char reason[16];
};

struct trace {
	struct tev *ev;
	int n;
	bool framed;          /* header, one event per line, commas, tail */
	long long dropped, start_ns, end_ns, window_ns, workers;
	char ended_by[16];
};

static bool parse_event(const char *l, struct tev *e)
{
	memset(e, 0, sizeof *e);
	e->id = e->by = e->from = LONG_MIN;
	int n = 0;
	if (sscanf(l, "{\"ph\":\"%c\",\"pid\":%*d%n", &e->ph, &n) != 1 || !n)
		return false;
	const char *p = strstr(l, "\"name\":\"");
	if (!p || sscanf(p, "\"name\":\"%39[^\"]\"", e->name) != 1)
		return false;
	if (e->ph == 'M')
		return true;
	if (sscanf(l + n, ",\"tid\":%d,\"ts\":%lf", &e->tid, &e->ts) != 2)
		return false;
	if (e->ph == 'X' &&
	    (!(p = strstr(l, "\"dur\":")) || sscanf(p, "\"dur\":%lf", &e->dur) != 1))
		return false;
	if ((p = strstr(l, "\"id\":")))
		sscanf(p, "\"id\":%ld", &e->id);
	if ((p = strstr(l, "\"by\":")))
		sscanf(p, "\"by\":%ld", &e->by);
	if ((p = strstr(l, "\"from\":")))
		sscanf(p, "\"from\":%ld", &e->from);
	if ((p = strstr(l, "\"reason\":\"")))
		sscanf(p, "\"reason\":\"%15[^\"]\"", e->reason);
	return true;
}

static long long other_field(const char *tail, const char *name)
{
	char key[64];
	snprintf(key, sizeof key, "\"%s\":", name);
	const char *p = strstr(tail, key);
	return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "no trace file %s", path);
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0)
		if ((len += r) == cap - 1)
			buf = realloc(buf, cap *= 2);
	fclose(f);
	ck_assert_ptr_nonnull(buf);
	buf[len] = '\0';
	return buf;
}

/* Parse the whole file; framing problems leave tr->framed false. */
static void read_trace(const char *path, struct trace *tr)
{
	static const char head[] = "{\"traceEvents\":[\n";
	static const char mid[] = "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{";
	char *buf = slurp(path);
	memset(tr, 0, sizeof *tr);
	size_t len = strlen(buf);
	char *end = strstr(buf, mid);
	if (!end) {
		free(buf);
		ck_abort_msg("%s: no end of traceEvents", path);
	}
	/* The tail is one line: the otherData object and the closing brace. */
	tr->framed = !strncmp(buf, head, strlen(head)) && len >= 3 &&
	             !strcmp(buf + len - 3, "}}\n") &&
	             strchr(end + strlen(mid), '\n') == buf + len - 1;
	tr->dropped = other_field(end, "dropped_events");
	tr->start_ns = other_field(end, "start_ns");
	tr->end_ns = other_field(end, "end_ns");
	tr->workers = other_field(end, "workers");
	tr->window_ns = other_field(end, "window_start_ns");
	const char *eb = strstr(end, "\"ended_by\":\"");
	if (!eb || sscanf(eb, "\"ended_by\":\"%15[^\"]\"", tr->ended_by) != 1)
		tr->ended_by[0] = '\0';
	*end = '\0';
	int cap = 1024;
	tr->ev = malloc(sizeof *tr->ev * (size_t)cap);
	char *line = buf + strlen(head), *save = NULL;
	for (char *l = strtok_r(line, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		size_t ll = strlen(l);
		bool comma = ll && l[ll - 1] == ',';
		bool last = l + ll == end;
		if (comma)
			l[--ll] = '\0';
		if (comma == last || ll < 2 || l[ll - 1] != '}')
			tr->framed = false;  /* every event but the last ends with a comma */
		if (tr->n == cap)
			tr->ev = realloc(tr->ev, sizeof *tr->ev * (size_t)(cap *= 2));
		if (!parse_event(l, &tr->ev[tr->n]))
			ck_abort_msg("%s: unreadable event line: %s", path, l);
		tr->n++;
	}
	free(buf);
}

static int count(const struct trace *tr, char ph, const char *name, const char *reason)
{
	int c = 0;
	for (int i = 0; i < tr->n; i++) {
		const struct tev *e = &tr->ev[i];
		c += e->ph == ph && (!name || !strcmp(e->name, name)) &&
		     (!reason || !strcmp(e->reason, reason));
	}
	return c;
}

/* The id of the thread whose slices are called name, or -1. */
static long id_of(const struct trace *tr, const char *name)
{
	for (int i = 0; i < tr->n; i++)
		if (tr->ev[i].ph == 'X' && !strcmp(tr->ev[i].name, name))
			return tr->ev[i].id;
	return -1;
}

static int cmp_ts(const void *a, const void *b)
{
	const struct tev *x = a, *y = b;
	return x->tid != y->tid ? x->tid - y->tid : (x->ts > y->ts) - (x->ts < y->ts);
}

/* Slices: well formed, inside the trace, never overlapping on a worker. */
static void check_slices(const struct trace *tr)
{
	ck_assert_msg(tr->framed, "the trace file is not framed as expected");
	ck_assert_int_eq(tr->dropped >= 0, 1);
	double span_us = (double)(tr->end_ns - tr->start_ns) / 1000.0;
	ck_assert_msg(tr->window_ns >= tr->start_ns && tr->window_ns <= tr->end_ns,
	              "window_start_ns %lld outside [%lld, %lld]", tr->window_ns, tr->start_ns,
	              tr->end_ns);
	double window_us = (double)(tr->window_ns - tr->start_ns) / 1000.0;
	struct tev *s = malloc(sizeof *s * (size_t)(tr->n ? tr->n : 1));
	int n = 0;
	for (int i = 0; i < tr->n; i++) {
		const struct tev *e = &tr->ev[i];
		if (e->ph == 'M')
			continue;
		ck_assert_msg(e->tid >= 0 && e->tid < tr->workers, "tid %d", e->tid);
		ck_assert_msg(e->ts >= window_us - 1e-3 && e->ts <= span_us + 1e-3,
		              "ts %.3f outside the window [%.3f, %.3f]", e->ts, window_us, span_us);
		if (e->ph != 'X')
			continue;
		ck_assert_msg(e->dur >= 0 && e->ts + e->dur <= span_us + 1e-3,
		              "slice %s [%.3f +%.3f] outside the trace", e->name, e->ts, e->dur);
		ck_assert_msg(e->id > 0, "slice %s without an id", e->name);
		s[n++] = *e;
	}
	ck_assert_msg(n > 0, "no slices");
	qsort(s, (size_t)n, sizeof *s, cmp_ts);
	for (int i = 1; i < n; i++)
		if (s[i].tid == s[i - 1].tid)
			ck_assert_msg(s[i - 1].ts + s[i - 1].dur <= s[i].ts + 1e-3,
			              "worker %d: %s [%.3f +%.3f] overlaps %s at %.3f", s[i].tid,
			              s[i - 1].name, s[i - 1].ts, s[i - 1].dur, s[i].name, s[i].ts);
	free(s);
}

/* ------------------------------------------------------------------------ */
/* Running a traced child                                                   */
/* ------------------------------------------------------------------------ */

struct child {
	char path[64];        /* the trace file */
	char err[4096];       /* the child's stderr */
	int status;
};

static void temp_path(struct child *c)
{
	snprintf(c->path, sizeof c->path, "/tmp/weft-trace-XXXXXX");
	int fd = mkstemp(c->path);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

struct child_setup {
	const struct child *c;
	const char *workers, *env;
	void (*body)(void);
};

/* In the child: WEFT_TRACE, WEFT_WORKERS and `env`, then body. */
static void child_main(void *arg)
{
	const struct child_setup *cs = arg;
	/* Check's forked tests inherit its SIGTERM handler (it kills the
	 * test's process group): the traced program starts as any would. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	setenv("WEFT_TRACE", cs->c->path, 1);
	setenv("WEFT_WORKERS", cs->workers, 1);
	unsetenv("WEFT_TRACE_MAX_EVENTS");
	char kv[256];
	snprintf(kv, sizeof kv, "%s", cs->env ? cs->env : "");
	char *save = NULL;
	for (char *p = strtok_r(kv, " ", &save); p; p = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(p, '=');
		if (eq) {
			*eq = '\0';
			setenv(p, eq + 1, 1);
		}
	}
	cs->body();
	_exit(99);  /* body must not return */
}

/* Fork; the child sets WEFT_TRACE (and `env`, "NAME=VALUE" pairs separated
 * by spaces), runs body (which ends the process) with stderr captured. */
/* The same, for a child that may end otherwise: its status is c->status. */
static void run_child_any(struct child *c, const char *workers, const char *env,
                          void (*body)(void))
{
	temp_path(c);
	struct child_setup cs = { c, workers, env, body };
	c->status = weft_test_run_captured(child_main, &cs, c->err, sizeof c->err);
}

static void run_child(struct child *c, const char *workers, const char *env, void (*body)(void))
{
	run_child_any(c, workers, env, body);
	ck_assert_msg(WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0,
	              "traced child failed (status %#x); stderr: %s", c->status, c->err);
}

static void done_child(struct child *c, struct trace *tr)
{
	unlink(c->path);
	free(tr->ev);
}

static weft_t spawn(const char *name, void *(*fn)(void *), void *arg)
{
	weft_attr_t a;
	weft_t t;
	if (weft_attr_init(&a) || (name && weft_attr_setname(&a, name)) ||
	    weft_create(&t, &a, fn, arg))
		_exit(20);
	weft_attr_destroy(&a);
	return t;
}

/* ------------------------------------------------------------------------ */
/* One worker: names, mutex, sleep, join, wakes                             */
/* ------------------------------------------------------------------------ */

static weft_mutex_t mu = WEFT_MUTEX_INITIALIZER;

static void *alpha(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++) {
		weft_mutex_lock(&mu);
		/* Asleep holding mu: beta blocks on it.  Long enough that the
		 * deadline is still ahead when the sleep parks, even under an
		 * emulator (a deadline already past returns without parking, and
		 * then no block is recorded; with 2 ms, qemu once gave 2 of 3). */
		weft_sleep_ns(20 * MS);
		weft_mutex_unlock(&mu);
		weft_yield();
	}
	return NULL;
}

static void *beta(void *arg)
{
	(void)arg;
	weft_setname(weft_self(), "beta");  /* its last name names all its slices */
	for (int i = 0; i < 3; i++) {
		weft_yield();
		weft_mutex_lock(&mu);
		weft_mutex_unlock(&mu);
	}
	return NULL;
}

static void one_worker_body(void)
{
	weft_t a = spawn("alpha", alpha, NULL);
	weft_t b = spawn(NULL, beta, NULL);
	if (weft_join(a, NULL) || weft_join(b, NULL))
		_exit(21);
	exit(0);  /* main is running: its slice ends at exit */
}

START_TEST(t_one_worker_named_blocks_wakes)
{
	struct child c;
	struct trace tr;
	run_child(&c, "1", NULL, one_worker_body);
	read_trace(c.path, &tr);
	check_slices(&tr);
	ck_assert_int_eq(tr.workers, 1);
	ck_assert_int_eq(tr.dropped, 0);
	ck_assert_int_eq(count(&tr, 'M', "process_name", NULL), 1);
	ck_assert_int_eq(count(&tr, 'M', "thread_name", NULL), 1);
	ck_assert_int_ge(count(&tr, 'X', "alpha", NULL), 3);
	ck_assert_int_ge(count(&tr, 'X', "beta", NULL), 3);
	ck_assert_int_ge(count(&tr, 'X', "main", NULL), 2);
	long ia = id_of(&tr, "alpha"), ib = id_of(&tr, "beta"), im = id_of(&tr, "main");
	ck_assert_int_gt(ia, 0);
	ck_assert_int_gt(ib, 0);
	ck_assert_int_ne(ia, ib);
	int mutex_blocks = 0, sleep_blocks = 0, join_blocks = 0;
	int unlock_wakes = 0, timer_wakes = 0, join_wakes = 0;
	double main_end = 0;
	for (int i = 0; i < tr.n; i++) {
		const struct tev *e = &tr.ev[i];
		if (e->ph == 'i' && !strcmp(e->name, "block")) {
			mutex_blocks += e->id == ib && !strcmp(e->reason, "mutex");
			sleep_blocks += e->id == ia && !strcmp(e->reason, "sleep");
			join_blocks += e->id == im && !strcmp(e->reason, "join");
		} else if (e->ph == 'i' && !strcmp(e->name, "wake")) {
			unlock_wakes += e->id == ib && e->by == ia;
			timer_wakes += e->id == ia && e->by == -1;
			join_wakes += e->id == im && (e->by == ia || e->by == ib);
		} else if (e->ph == 'X' && e->id == im && e->ts + e->dur > main_end) {
			main_end = e->ts + e->dur;
		}
	}
	ck_assert_int_ge(mutex_blocks, 1);
	ck_assert_int_eq(sleep_blocks, 3);
	ck_assert_int_ge(join_blocks, 1);
	ck_assert_int_ge(unlock_wakes, 1);
	ck_assert_int_eq(timer_wakes, 3);
	ck_assert_int_ge(join_wakes, 1);
	double span_us = (double)(tr.end_ns - tr.start_ns) / 1000.0;
	ck_assert_msg(main_end > span_us - 2e-3, "main's last slice ends at %.3f, exit at %.3f",
	              main_end, span_us);
	ck_assert_ptr_null(strstr(c.err, "dropped"));
	done_child(&c, &tr);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Two workers: preemption, steals, unnamed threads, weft_exit              */
/* ------------------------------------------------------------------------ */

static void *spinner(void *arg)
{
	uint64_t end = now_ns() + (uint64_t)(uintptr_t)arg * MS;
	volatile uint64_t x = 1;
	while (now_ns() < end)
		for (int i = 0; i < 1000; i++)
			x = x * 6364136223846793005ull + 1;
	return NULL;
}

/*
 * What the test looks for must happen, however the machine is loaded: a
 * spin of some wall-clock time may get no CPU time (the tick counts CPU
 * time), the other worker may not run while the yielders do, and main may
 * run again only after every thread has finished (then it never parks in
 * weft_exit).  So the threads keep going until a preemption, a steal and
 * main's park have happened (a few seconds at most, else the child fails
 * with its own exit code).
 */
#define TW_GIVE_UP_NS (10000 * MS)

static weft_stats_t all_stats(void)
{
	weft_stats_t s;
	if (weft_stats_get(-1, &s))
		_exit(23);
	return s;
}

static void *spin_until_preempted(void *arg)
{
	uint64_t start = now_ns(), end = start + (uint64_t)(uintptr_t)arg * MS;
	volatile uint64_t x = 1;
	while (now_ns() < end || all_stats().preemptions == 0) {
		for (int i = 0; i < 1000; i++)
			x = x * 6364136223846793005ull + 1;
		if (now_ns() - start > TW_GIVE_UP_NS)
			_exit(24);
	}
	return NULL;
}

static void *yielder(void *arg)
{
	(void)arg;
	uint64_t start = now_ns();
	for (int i = 0; i < 500 || all_stats().steals == 0; i++) {
		weft_mutex_lock(&mu);
		weft_yield();
		weft_mutex_unlock(&mu);
		if (i % 100 == 0)
			weft_sleep_ns(100000);
		if (now_ns() - start > TW_GIVE_UP_NS)
			_exit(25);
	}
	return NULL;
}

/* Main, parked in weft_exit?  (Its TCB, read as weft_dump does.) */
static weft_t tw_main;
static void *close_after_main_parks(void *arg)
{
	(void)arg;
	uint64_t start = now_ns();
	for (;;) {
		struct wf_thread *m = wf_tcb_lookup(tw_main);
		if (m && __atomic_load_n(&m->state, __ATOMIC_ACQUIRE) == WF_BLOCKED &&
		    atomic_load(&m->block_kind) == WF_BLOCK_EXIT)
			return NULL;
		if (now_ns() - start > TW_GIVE_UP_NS)
			_exit(26);
		weft_sleep_ns(MS);
	}
}

static void two_workers_body(void)
{
	tw_main = weft_self();
	for (int i = 0; i < 4; i++)
		weft_detach(spawn(NULL, spin_until_preempted, (void *)(uintptr_t)40));
	weft_detach(spawn("yielder-a", yielder, NULL));
	weft_detach(spawn("yielder-b", yielder, NULL));
	weft_detach(spawn("closer", close_after_main_parks, NULL));
	weft_exit(NULL);  /* waits for every thread, then exit(0) */
}

START_TEST(t_two_workers_preempt_steal)
{
	struct child c;
	struct trace tr;
	run_child(&c, "2", "WEFT_QUANTUM_US=1000", two_workers_body);
	read_trace(c.path, &tr);
	check_slices(&tr);
	/* Two workers, and a stand-in if the monitor found one blocked in the
	 * kernel (main's membarrier at weft_exit may sleep). */
	ck_assert_int_ge(tr.workers, 2);
	ck_assert_int_le(tr.workers, 8);
	ck_assert_int_eq(count(&tr, 'M', "thread_name", NULL), tr.workers);
	int per_worker[8] = { 0 }, unnamed = 0;
	for (int i = 0; i < tr.n; i++) {
		const struct tev *e = &tr.ev[i];
		if (e->ph != 'X')
			continue;
		per_worker[e->tid]++;
		char want[40];
		snprintf(want, sizeof want, "thread %ld", e->id);
		unnamed += !strcmp(e->name, want);
	}
	ck_assert_int_gt(per_worker[0], 0);
	ck_assert_int_gt(per_worker[1], 0);
	ck_assert_int_gt(unnamed, 0);
	ck_assert_int_gt(count(&tr, 'X', "yielder-a", NULL), 0);
	ck_assert_int_gt(count(&tr, 'X', "yielder-b", NULL), 0);
	ck_assert_int_gt(count(&tr, 'i', "preempt", NULL), 0);
	ck_assert_int_gt(count(&tr, 'i', "steal", NULL), 0);
	ck_assert_int_gt(count(&tr, 'i', "block", "exit"), 0);
	for (int i = 0; i < tr.n; i++) {
		const struct tev *e = &tr.ev[i];
		if (e->ph == 'i' && !strcmp(e->name, "steal"))
			ck_assert_msg(e->from >= 0 && e->from < tr.workers && e->from != e->tid,
			              "steal by worker %d from %ld", e->tid, e->from);
		if (e->ph == 'i')
			ck_assert_int_gt(e->id, 0);
	}
	done_child(&c, &tr);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* A thread running on another worker at exit                               */
/* ------------------------------------------------------------------------ */

static _Atomic int spin_worker = -1;
static _Atomic uint64_t spin_beat;

static void *forever(void *arg)
{
	(void)arg;
	for (;;) {
		atomic_store(&spin_worker, weft_worker_self());
		atomic_fetch_add(&spin_beat, 1);
	}
	return NULL;
}

static void open_at_exit_body(void)
{
	weft_detach(spawn("forever", forever, NULL));
	uint64_t deadline = now_ns() + 10000 * MS;
	for (;;) {
		uint64_t beat = atomic_load(&spin_beat);
		weft_sleep_ns(MS);
		int w = atomic_load(&spin_worker);
		/* Running now, elsewhere: it stays there, alone on its worker. */
		if (w >= 0 && w != weft_worker_self() && atomic_load(&spin_beat) != beat)
			break;
		if (now_ns() > deadline)
			_exit(30);
	}
	exit(0);
}

START_TEST(t_open_slices_end_at_exit)
{
	struct child c;
	struct trace tr;
	run_child(&c, "2", NULL, open_at_exit_body);
	read_trace(c.path, &tr);
	check_slices(&tr);
	double span_us = (double)(tr.end_ns - tr.start_ns) / 1000.0;
	bool forever_open = false, main_open = false;
	for (int i = 0; i < tr.n; i++) {
		const struct tev *e = &tr.ev[i];
		if (e->ph != 'X' || e->ts + e->dur < span_us - 2e-3)
			continue;
		forever_open |= !strcmp(e->name, "forever");
		main_open |= !strcmp(e->name, "main");
	}
	ck_assert_msg(forever_open, "the spinner's slice does not reach the exit");
	ck_assert_msg(main_open, "main's slice does not reach the exit");
	done_child(&c, &tr);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The cap                                                                  */
/* ------------------------------------------------------------------------ */

static void *busy_yielder(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2000; i++)
		weft_yield();
	return NULL;
}

static void capped_body(void)
{
	weft_t a = spawn("y1", busy_yielder, NULL), b = spawn("y2", busy_yielder, NULL);
	if (weft_join(a, NULL) || weft_join(b, NULL))
		_exit(21);
	exit(0);
}

/* A ring of the last WEFT_TRACE_MAX_EVENTS records: the file ends at the
 * exit, starts where the ring does (said in the file and on stderr), and
 * names the threads whose slices it keeps. */
START_TEST(t_ring_keeps_the_last_events)
{
	struct child c;
	struct trace tr;
	run_child(&c, "1", "WEFT_TRACE_MAX_EVENTS=300", capped_body);
	read_trace(c.path, &tr);
	check_slices(&tr);
	ck_assert_int_gt(tr.dropped, 3000);
	ck_assert_int_le(count(&tr, 'X', NULL, NULL), 300);
	ck_assert_int_gt(tr.window_ns, tr.start_ns);
	ck_assert_str_eq(tr.ended_by, "exit");
	/* The note viewers show, once, where the window starts. */
	ck_assert_int_eq(count(&tr, 'i', "trace window starts", NULL), 1);
	double window_us = (double)(tr.window_ns - tr.start_ns) / 1000.0;
	double span_us = (double)(tr.end_ns - tr.start_ns) / 1000.0;
	double main_end = 0, first = span_us;
	for (int i = 0; i < tr.n; i++) {
		const struct tev *e = &tr.ev[i];
		if (e->ph == 'i' && !strcmp(e->name, "trace window starts"))
			ck_assert_msg(e->ts > window_us - 1e-3 && e->ts < window_us + 1e-3,
			              "the note at %.3f, the window at %.3f", e->ts, window_us);
		if (e->ph == 'X' && !strcmp(e->name, "main") && e->ts + e->dur > main_end)
			main_end = e->ts + e->dur;
		if (e->ph == 'X' && e->ts < first)
			first = e->ts;
	}
	/* The end is kept (main's slice reaches the exit), the window is
	 * covered from its start, and the yielders' names were recorded in it. */
	ck_assert_msg(main_end > span_us - 2e-3, "main's last slice ends at %.3f, exit at %.3f",
	              main_end, span_us);
	ck_assert_msg(first < window_us + 1e-3, "first slice at %.3f, window at %.3f", first,
	              window_us);
	ck_assert_int_gt(count(&tr, 'X', "y1", NULL) + count(&tr, 'X', "y2", NULL), 0);
	const char *p = strstr(c.err, "events dropped");
	ck_assert_msg(p != NULL, "no report on stderr: %s", c.err);
	ck_assert_ptr_null(strstr(p + 1, "events dropped"));  /* once */
	done_child(&c, &tr);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* SIGTERM and SIGINT                                                       */
/* ------------------------------------------------------------------------ */

/* Two named threads busy on two workers, then the signal to the process;
 * the body never ends by itself. */
static void *busy_named(void *arg)
{
	(void)arg;
	for (;;) {
		spinner((void *)(uintptr_t)1);
		weft_yield();
	}
	return NULL;
}

static void busy_then_signal(int sig)
{
	weft_detach(spawn("busy", busy_named, NULL));
	weft_detach(spawn("busy-too", busy_named, NULL));
	weft_sleep_ns(30 * MS);
	kill(getpid(), sig);
	for (int i = 0; i < 5000; i++)
		weft_sleep_ns(MS);
	_exit(31);   /* the signal should have ended the process */
}

static void sigterm_body(void) { busy_then_signal(SIGTERM); }

/* The default action of SIGTERM ends the process, as without weft; the
 * file is complete and says how the trace ended. */
START_TEST(t_sigterm_writes_the_trace)
{
	struct child c;
	struct trace tr;
	run_child_any(&c, "2", "WEFT_QUANTUM_US=1000", sigterm_body);
	ck_assert_msg(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGTERM,
	              "status %#x, not killed by SIGTERM; stderr: %s", c.status, c.err);
	read_trace(c.path, &tr);
	check_slices(&tr);
	ck_assert_str_eq(tr.ended_by, "SIGTERM");
	ck_assert_int_gt(count(&tr, 'X', "busy", NULL), 0);
	ck_assert_int_gt(count(&tr, 'X', "busy-too", NULL), 0);
	done_child(&c, &tr);
}
END_TEST

static void sigint_exit7(int sig)
{
	(void)sig;
	_exit(7);
}

static void sigint_handler_body(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = sigint_exit7;
	sigemptyset(&sa.sa_mask);
	if (weft_init() || sigaction(SIGINT, &sa, NULL))
		_exit(20);
	busy_then_signal(SIGINT);
}

/* The program's own SIGINT handler still runs, after the file is written:
 * one that ends the process at once leaves a complete trace. */
START_TEST(t_sigint_then_the_program_handler)
{
	struct child c;
	struct trace tr;
	run_child_any(&c, "2", NULL, sigint_handler_body);
	ck_assert_msg(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 7,
	              "status %#x: the program's handler did not run; stderr: %s", c.status,
	              c.err);
	read_trace(c.path, &tr);
	check_slices(&tr);
	ck_assert_str_eq(tr.ended_by, "SIGINT");
	ck_assert_int_gt(count(&tr, 'X', "busy", NULL), 0);
	done_child(&c, &tr);
}
END_TEST

static atomic_int term_seen;
static void note_term(int sig)
{
	(void)sig;
	atomic_store(&term_seen, 1);
}

static void *after_signal(void *arg)
{
	(void)arg;
	weft_yield();
	return NULL;
}

static void survives_body(void)
{
	if (weft_init() || signal(SIGTERM, note_term) == SIG_ERR ||
	    signal(SIGINT, SIG_IGN) == SIG_ERR)
		_exit(20);
	kill(getpid(), SIGINT);    /* ignored: nothing happens */
	kill(getpid(), SIGTERM);   /* handled: the program goes on */
	for (int i = 0; i < 5000 && !atomic_load(&term_seen); i++)
		weft_sleep_ns(MS);
	if (!atomic_load(&term_seen))
		_exit(21);
	weft_t t = spawn("after-signal", after_signal, NULL);
	if (weft_join(t, NULL))
		_exit(22);
	exit(0);
}

/* A program that survives the signal (it handles or ignores it) goes on,
 * and its file is written again, whole, at exit. */
START_TEST(t_survived_signal_rewritten_at_exit)
{
	struct child c;
	struct trace tr;
	run_child(&c, "2", NULL, survives_body);
	read_trace(c.path, &tr);
	check_slices(&tr);
	ck_assert_str_eq(tr.ended_by, "exit");
	ck_assert_int_gt(count(&tr, 'X', "after-signal", NULL), 0);
	done_child(&c, &tr);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Bad settings                                                             */
/* ------------------------------------------------------------------------ */

static void expect_init_einval(const char *var, const char *val)
{
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, STDERR_FILENO);
		setenv("WEFT_TRACE", "/tmp/weft-trace-unused.json", 1);
		setenv(var, val, 1);
		_exit(weft_init() == EINVAL ? 0 : 1);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s=%s accepted", var, val);
}

START_TEST(t_bad_settings_rejected)
{
	expect_init_einval("WEFT_TRACE", "/nonexistent-weft-dir/trace.json");
	expect_init_einval("WEFT_TRACE_MAX_EVENTS", "many");
	expect_init_einval("WEFT_TRACE_MAX_EVENTS", "10");
	expect_init_einval("WEFT_TRACE_MAX_EVENTS", "-5");
	unlink("/tmp/weft-trace-unused.json");
}
END_TEST

static Suite *trace_suite(void)
{
	Suite *s = suite_create("trace");
	TCase *tc = tcase_create("timeline");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_one_worker_named_blocks_wakes);
	tcase_add_test(tc, t_two_workers_preempt_steal);
	tcase_add_test(tc, t_open_slices_end_at_exit);
	tcase_add_test(tc, t_ring_keeps_the_last_events);
	tcase_add_test(tc, t_sigterm_writes_the_trace);
	tcase_add_test(tc, t_sigint_then_the_program_handler);
	tcase_add_test(tc, t_survived_signal_rewritten_at_exit);
	tcase_add_test(tc, t_bad_settings_rejected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(trace_suite());
}
