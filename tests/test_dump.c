/*
 * test_dump.c — seeing inside weft: weft_dump's text, WEFT_DUMP_SIGNAL, and
 * the statistics' levels and idle time.
 *
 * The dump test parks threads in known functions on known objects, waits
 * until each is parked with its context saved (read from the TCB, which
 * tests may see), and checks each thread's paragraph of the dump.
 */
#include <check.h>
#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>
#include "sched/sched_internal.h"
#include "weft_check.h"
#include "helpers.h"

static void set_env(const char *workers)
{
	ck_assert_int_eq(setenv("WEFT_WORKERS", workers, 1), 0);
	unsetenv("WEFT_QUANTUM_US");
	unsetenv("WEFT_DUMP_SIGNAL");
	unsetenv("WEFT_TRACE");
}

/* Thread id as the dump prints it: the slot half of the handle. */
static unsigned id_of(weft_t t) { return (unsigned)(uint32_t)t; }

/* Wait until t is parked with its context saved. */
static int wait_parked(weft_t h, unsigned ms)
{
	uint64_t end = now_ns() + ms * MS;
	for (;;) {
		struct wf_thread *t = wf_tcb_lookup(h);
		if (t && __atomic_load_n(&t->state, __ATOMIC_ACQUIRE) == WF_BLOCKED &&
		    atomic_load(&t->on_cpu) == 0)
			return 1;
		if (now_ns() > end)
			return 0;
		weft_sleep_ns(MS);
	}
}

/* The paragraph of thread `id` in a dump: from its "thread N" line to the
 * next line that does not start with a space.  Returned in buf. */
static const char *paragraph(const char *dump, unsigned id, char *buf, size_t len)
{
	char key[32];
	snprintf(key, sizeof key, "\nthread %u", id);
	const char *p = dump;
	size_t kl = strlen(key);
	while ((p = strstr(p, key)) && p[kl] != ' ' && p[kl] != ':')
		p += kl;
	if (!p)
		return NULL;
	p++;
	const char *e = p;
	while ((e = strchr(e, '\n')) && e[1] == ' ')
		e++;
	size_t n = e ? (size_t)(e - p) : strlen(p);
	if (n >= len)
		n = len - 1;
	memcpy(buf, p, n);
	buf[n] = 0;
	return buf;
}

#define ASSERT_HAS(text, what) \
	ck_assert_msg(strstr((text), (what)) != NULL, "expected \"%s\" in:\n%s", (what), (text))

/* --- the scene ------------------------------------------------------------ */

static weft_mutex_t held = WEFT_MUTEX_INITIALIZER;
static weft_mutex_t cm = WEFT_MUTEX_INITIALIZER;
static weft_cond_t cv = WEFT_COND_INITIALIZER;
static weft_sem_t gate;
static weft_rwlock_t rw = WEFT_RWLOCK_INITIALIZER;
static weft_barrier_t bar;
static atomic_int cond_go;

__attribute__((noinline)) void *dump_holds_mutex(void *a)
{
	(void)a;
	weft_mutex_lock(&held);
	weft_sem_wait(&gate);          /* parked on the semaphore, holding `held` */
	weft_mutex_unlock(&held);
	return NULL;
}

__attribute__((noinline)) void *dump_waits_for_mutex(void *a)
{
	(void)a;
	weft_mutex_lock(&held);
	weft_mutex_unlock(&held);
	return NULL;
}

__attribute__((noinline)) void *dump_waits_on_cond(void *a)
{
	(void)a;
	weft_mutex_lock(&cm);
	while (!atomic_load(&cond_go))
		weft_cond_wait(&cv, &cm);
	weft_mutex_unlock(&cm);
	return NULL;
}

__attribute__((noinline)) void *dump_sleeps(void *a)
{
	(void)a;
	weft_sleep_ns(20000 * MS);     /* outlives the test; detached at its end */
	return NULL;
}

__attribute__((noinline)) void *dump_joins(void *a)
{
	weft_join((weft_t)(uintptr_t)a, NULL);
	return NULL;
}

__attribute__((noinline)) void *dump_write_waits(void *a)
{
	(void)a;
	weft_rwlock_wrlock(&rw);
	weft_rwlock_unlock(&rw);
	return NULL;
}

__attribute__((noinline)) void *dump_at_barrier(void *a)
{
	(void)a;
	weft_barrier_wait(&bar);
	return NULL;
}

static void *returns_at_once(void *a) { return a; }

static char *dump_to_string(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(weft_dump(f), 0);
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

START_TEST(t_dump_describes_each_thread)
{
	set_env("2");
	ck_assert_int_eq(setenv("WEFT_QUANTUM_US", "0", 1), 0);
	ck_assert_int_eq(weft_sem_init(&gate, 0), 0);
	ck_assert_int_eq(weft_barrier_init(&bar, 2), 0);
	weft_attr_t at;
	ck_assert_int_eq(weft_attr_init(&at), 0);
	weft_t holder, waiter, condw, sleeper, joiner, done, writer, barw;

	ck_assert_int_eq(weft_attr_setname(&at, "holder"), 0);
	ck_assert_int_eq(weft_create(&holder, &at, dump_holds_mutex, NULL), 0);
	ck_assert(wait_parked(holder, 5000));
	ck_assert_int_eq(weft_attr_setname(&at, "mutex-waiter"), 0);
	ck_assert_int_eq(weft_create(&waiter, &at, dump_waits_for_mutex, NULL), 0);
	ck_assert_int_eq(weft_attr_setname(&at, "cond-waiter"), 0);
	ck_assert_int_eq(weft_create(&condw, &at, dump_waits_on_cond, NULL), 0);
	ck_assert_int_eq(weft_attr_setname(&at, "sleeper"), 0);
	ck_assert_int_eq(weft_create(&sleeper, &at, dump_sleeps, NULL), 0);
	ck_assert_int_eq(weft_attr_setname(&at, "joiner"), 0);
	ck_assert_int_eq(weft_create(&joiner, &at, dump_joins, (void *)(uintptr_t)holder), 0);
	ck_assert_int_eq(weft_create(&done, NULL, returns_at_once, NULL), 0);
	ck_assert_int_eq(weft_rwlock_rdlock(&rw), 0);
	ck_assert_int_eq(weft_create(&writer, NULL, dump_write_waits, NULL), 0);
	ck_assert_int_eq(weft_create(&barw, NULL, dump_at_barrier, NULL), 0);
	weft_t parked[] = { waiter, condw, sleeper, joiner, writer, barw };
	for (size_t i = 0; i < sizeof parked / sizeof parked[0]; i++)
		ck_assert(wait_parked(parked[i], 5000));
	uint64_t end = now_ns() + 5000 * MS;
	while (wf_tcb_lookup(done) && wf_tcb_lookup(done)->state != WF_DONE && now_ns() < end)
		weft_sleep_ns(MS);
	weft_sleep_ns(20 * MS);          /* so that "for N s" is not 0 everywhere */

	char *d = dump_to_string();
	char p[4096];
	ASSERT_HAS(d, "=== weft dump at ");
	ASSERT_HAS(d, "2 workers");
	ASSERT_HAS(d, "worker 0 (kernel tid ");
	ASSERT_HAS(d, "worker 1 (kernel tid ");
	ASSERT_HAS(d, "=== end of weft dump: 9 threads ===");

	ck_assert_ptr_nonnull(paragraph(d, id_of(weft_self()), p, sizeof p));
	ASSERT_HAS(p, "[main]: running on worker ");

	char want[128];
	ck_assert_ptr_nonnull(paragraph(d, id_of(holder), p, sizeof p));
	snprintf(want, sizeof want, "\"holder\": blocked, waiting on semaphore %p", (void *)&gate);
	ASSERT_HAS(p, want);
	ASSERT_HAS(p, "dump_holds_mutex+");
	ASSERT_HAS(p, "weft_sem_wait+");

	ck_assert_ptr_nonnull(paragraph(d, id_of(waiter), p, sizeof p));
	snprintf(want, sizeof want, "blocked, waiting for mutex %p (held by thread %u)",
	         (void *)&held, id_of(holder));
	ASSERT_HAS(p, want);
	ASSERT_HAS(p, "weft_mutex_lock+");
	ASSERT_HAS(p, "dump_waits_for_mutex+");
	ASSERT_HAS(p, "[weft internal, ");

	ck_assert_ptr_nonnull(paragraph(d, id_of(condw), p, sizeof p));
	snprintf(want, sizeof want, "blocked, waiting on cond %p", (void *)&cv);
	ASSERT_HAS(p, want);
	ASSERT_HAS(p, "weft_cond_wait+");
	ASSERT_HAS(p, "dump_waits_on_cond+");

	ck_assert_ptr_nonnull(paragraph(d, id_of(sleeper), p, sizeof p));
	ASSERT_HAS(p, "\"sleeper\": blocked, sleeping, wakes in 19.");
	ASSERT_HAS(p, "weft_sleep_ns+");
	ASSERT_HAS(p, "dump_sleeps+");

	ck_assert_ptr_nonnull(paragraph(d, id_of(joiner), p, sizeof p));
	snprintf(want, sizeof want, "blocked, joining thread %u, for ", id_of(holder));
	ASSERT_HAS(p, want);
	ASSERT_HAS(p, "weft_join+");

	/* Finished threads are counted on one line, not listed one by one. */
	snprintf(want, sizeof want, "\n1 finished thread not yet joined: %u\n", id_of(done));
	ASSERT_HAS(d, want);
	ck_assert_ptr_null(paragraph(d, id_of(done), p, sizeof p));

	ck_assert_ptr_nonnull(paragraph(d, id_of(writer), p, sizeof p));
	snprintf(want, sizeof want, "blocked, waiting to write-lock rwlock %p", (void *)&rw);
	ASSERT_HAS(p, want);
	ASSERT_HAS(p, "dump_write_waits+");

	ck_assert_ptr_nonnull(paragraph(d, id_of(barw), p, sizeof p));
	snprintf(want, sizeof want, "blocked, waiting at barrier %p", (void *)&bar);
	ASSERT_HAS(p, want);
	free(d);

	/* Let everyone go but the sleeper, which is detached and left to its
	 * 20 s: the test process ends before. */
	ck_assert_int_eq(weft_detach(sleeper), 0);
	ck_assert_int_eq(weft_rwlock_unlock(&rw), 0);
	int r = weft_barrier_wait(&bar);
	ck_assert(r == 0 || r == WEFT_BARRIER_SERIAL_THREAD);
	ck_assert_int_eq(weft_sem_post(&gate), 0);
	ck_assert_int_eq(weft_mutex_lock(&cm), 0);
	atomic_store(&cond_go, 1);
	ck_assert_int_eq(weft_cond_broadcast(&cv), 0);
	ck_assert_int_eq(weft_mutex_unlock(&cm), 0);
	/* The holder is the joiner's to join. */
	weft_t all[] = { waiter, condw, joiner, done, writer, barw };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		ck_assert_int_eq(weft_join(all[i], NULL), 0);
	ck_assert_int_eq(weft_join(holder, NULL), ESRCH);
}
END_TEST

START_TEST(t_dump_bad_args)
{
	set_env("1");
	ck_assert_int_eq(weft_dump(NULL), EINVAL);
	/* A stream that cannot be written: EIO, and the process goes on. */
	FILE *f = fopen("/dev/null", "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(weft_dump(f), EIO);
	fclose(f);
}
END_TEST

/* A dump from a kernel thread that is not a weft worker, while the green
 * threads run, many times: no crash, and every dump is complete. */
static atomic_int churn_stop;
static void *churner(void *a)
{
	(void)a;
	while (!atomic_load(&churn_stop)) {
		weft_t t;
		if (weft_create(&t, NULL, returns_at_once, NULL) == 0)
			weft_join(t, NULL);
		weft_yield();
	}
	return NULL;
}

static void *foreign_dumper(void *a)
{
	(void)a;
	long complete = 0;
	for (int i = 0; i < 200; i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		if (!f || weft_dump(f) != 0 || fclose(f) != 0)
			return (void *)-1L;
		complete += strstr(buf, "=== end of weft dump: ") != NULL;
		free(buf);
	}
	return (void *)complete;
}

START_TEST(t_dump_while_threads_churn)
{
	set_env("2");
	weft_t c[4];
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(weft_create(&c[i], NULL, churner, NULL), 0);
	pthread_t p;
	void *r;
	ck_assert_int_eq(pthread_create(&p, NULL, foreign_dumper, NULL), 0);
	ck_assert_int_eq(pthread_join(p, &r), 0);
	atomic_store(&churn_stop, 1);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(weft_join(c[i], NULL), 0);
	ck_assert_int_eq((long)r, 200);
}
END_TEST

/* WEFT_DUMP_SIGNAL: the dump reaches stderr and the program carries on. */
static atomic_long ticks;
static void *ticker(void *a)
{
	(void)a;
	while (atomic_load(&ticks) >= 0) {
		atomic_fetch_add(&ticks, 1);
		weft_sleep_ns(MS);
	}
	return NULL;
}

START_TEST(t_dump_signal)
{
	set_env("2");
	ck_assert_int_eq(setenv("WEFT_DUMP_SIGNAL", "SIGUSR2", 1), 0);
	char path[] = "/tmp/weft-dump-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	int saved = dup(2);
	ck_assert_int_eq(dup2(fd, 2), 2);
	ck_assert_int_eq(weft_init(), 0);
	weft_attr_t at;
	ck_assert_int_eq(weft_attr_init(&at), 0);
	ck_assert_int_eq(weft_attr_setname(&at, "ticker"), 0);
	weft_t t;
	ck_assert_int_eq(weft_create(&t, &at, ticker, NULL), 0);
	ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);

	/* Wait for the dump to be complete in the file. */
	char buf[16384];
	ssize_t n = 0;
	uint64_t end = now_ns() + 10000 * MS;
	for (;;) {
		n = pread(fd, buf, sizeof buf - 1, 0);
		ck_assert_int_ge(n, 0);
		buf[n] = 0;
		if (strstr(buf, "=== end of weft dump") || now_ns() > end)
			break;
		weft_sleep_ns(MS);
	}
	dup2(saved, 2);
	close(saved);
	ASSERT_HAS(buf, "=== weft dump at ");
	ASSERT_HAS(buf, "\"ticker\"");
	ASSERT_HAS(buf, "=== end of weft dump");
	/* Still running: the ticker goes on ticking. */
	long before = atomic_load(&ticks);
	end = now_ns() + 5000 * MS;
	while (atomic_load(&ticks) < before + 5 && now_ns() < end)
		weft_sleep_ns(MS);
	ck_assert_int_ge(atomic_load(&ticks), before + 5);
	atomic_store(&ticks, -1000000);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	close(fd);
}
END_TEST

/* The levels and the idle time in weft_stats_t. */
static atomic_int lv_go;
static void *lv_wait(void *a)
{
	(void)a;
	while (!atomic_load(&lv_go))
		weft_sleep_ns(MS);
	return NULL;
}

START_TEST(t_stats_levels_and_idle)
{
	set_env("2");
	weft_stats_t s0, s1, w;
	uint64_t t0 = now_ns();          /* before the first weft call: init */
	ck_assert_int_eq(weft_stats_get(-1, &s0), 0);
	ck_assert_uint_eq(s0.alive, 0);
	weft_t t[5];
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, lv_wait, NULL), 0);
	ck_assert_int_eq(weft_stats_get(-1, &s1), 0);
	ck_assert_uint_eq(s1.alive, 5);
	/* Alive is process-wide: every worker reports it. */
	ck_assert_int_eq(weft_stats_get(1, &w), 0);
	ck_assert_uint_eq(w.alive, 5);
	/* Everyone sleeps in 1 ms steps: the workers are idle most of the time. */
	weft_sleep_ns(200 * MS);
	ck_assert_int_eq(weft_stats_get(-1, &s1), 0);
	ck_assert_msg(s1.idle_ns > s0.idle_ns + 100 * MS,
	              "idle grew by %llu ns only over 200 ms of sleeping",
	              (unsigned long long)(s1.idle_ns - s0.idle_ns));
	/* No worker can have been idle longer than it has existed. */
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(weft_stats_get(i, &w), 0);
		ck_assert_uint_le(w.idle_ns, now_ns() - t0);
	}
	atomic_store(&lv_go, 1);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	ck_assert_int_eq(weft_stats_get(-1, &s1), 0);
	ck_assert_uint_eq(s1.alive, 0);
	ck_assert_uint_eq(s1.queued, 0);
	ck_assert_uint_ge(s1.created, 5);
	ck_assert_uint_ge(s1.finished, 5);
}
END_TEST

/* queued counts threads waiting in run queues: on one worker, while main
 * runs, every other ready thread is queued. */
static atomic_int q_stop;
static void *yielder(void *a)
{
	while (!atomic_load(&q_stop))
		weft_yield();
	return a;
}

START_TEST(t_stats_queued)
{
	set_env("1");
	weft_t t[3];
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, yielder, NULL), 0);
	weft_yield();
	weft_stats_t s, all;
	ck_assert_int_eq(weft_stats_get(0, &s), 0);
	ck_assert_int_eq(weft_stats_get(-1, &all), 0);
	atomic_store(&q_stop, 1);
	ck_assert_uint_eq(s.queued, 3);
	ck_assert_uint_eq(all.queued, 3);
	ck_assert_uint_eq(s.alive, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
}
END_TEST

/* Many finished threads that nobody joined: one line for all of them. */
START_TEST(t_dump_finished_on_one_line)
{
	set_env("2");
	enum { N = 150 };
	static weft_t t[N];
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, returns_at_once, NULL), 0);
	uint64_t end = now_ns() + 5000 * MS;
	for (int i = 0; i < N; i++)
		while (wf_tcb_lookup(t[i])->state != WF_DONE && now_ns() < end)
			weft_sleep_ns(MS);
	char *d = dump_to_string();
	char want[64];
	snprintf(want, sizeof want, "\n%d finished threads not yet joined: %u ", N, id_of(t[0]));
	ASSERT_HAS(d, want);
	ck_assert_ptr_null(strstr(d, "finished, not yet joined"));
	int lines = 0;
	for (const char *c = d; *c; c++)
		lines += *c == '\n';
	/* Header, two workers, main, the summary, the end line. */
	ck_assert_msg(lines <= 6, "%d lines:\n%s", lines, d);
	snprintf(want, sizeof want, "=== end of weft dump: %d threads ===", N + 1);
	ASSERT_HAS(d, want);
	free(d);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
}
END_TEST

/* A thread inside a system call is shown as such, with its worker, which
 * the monitor retakes; the worker it adds to stand in, and later the
 * retaken one waiting as a spare, are listed too. */
static int sys_pipe[2];
__attribute__((noinline)) void *dump_in_read(void *a)
{
	(void)a;
	char c;
	return (void *)(intptr_t)read(sys_pipe[0], &c, 1);
}

/* Dump until `what` is in the dump (and `also`, if given); the last dump,
 * to be freed, or NULL after `ms`. */
static char *dump_until(const char *what, const char *also, unsigned ms)
{
	uint64_t end = now_ns() + ms * MS;
	for (;;) {
		char *d = dump_to_string();
		if (strstr(d, what) && (!also || strstr(d, also)))
			return d;
		if (now_ns() > end) {
			fprintf(stderr, "last dump:\n%s", d);
			free(d);
			return NULL;
		}
		free(d);
		weft_sleep_ns(MS);
	}
}

START_TEST(t_dump_thread_in_system_call)
{
	set_env("2");
	ck_assert_int_eq(pipe(sys_pipe), 0);
	weft_attr_t at;
	ck_assert_int_eq(weft_attr_init(&at), 0);
	ck_assert_int_eq(weft_attr_setname(&at, "reader"), 0);
	weft_t r;
	ck_assert_int_eq(weft_create(&r, &at, dump_in_read, NULL), 0);
	char want[96], p[4096];
	snprintf(want, sizeof want, "thread %u \"reader\": in a system call on worker ", id_of(r));
	/* The monitor retakes the worker, then starts a stand-in (on a loaded
	 * machine it may have retaken another worker meanwhile: "+2"). */
	char *d = dump_until(want, " added by the monitor)", 10000);
	ck_assert_msg(d != NULL, "the reader was never shown in its system call, retaken");
	ck_assert_ptr_nonnull(paragraph(d, id_of(r), p, sizeof p));
	ASSERT_HAS(p, "(worker retaken: another stands in)");
	snprintf(want, sizeof want, ": in a system call under thread %u, retaken by the monitor",
	         id_of(r));
	ASSERT_HAS(d, want);
	ASSERT_HAS(d, "worker 2 (kernel tid ");
	ck_assert_ptr_null(strstr(d, "\"reader\": running"));
	free(d);

	/* Back from the kernel, the retaken worker hands its thread over and
	 * waits as a spare. */
	ck_assert_int_eq(write(sys_pipe[1], "x", 1), 1);
	void *ret;
	ck_assert_int_eq(weft_join(r, &ret), 0);
	ck_assert_int_eq((intptr_t)ret, 1);
	d = dump_until("spare, waiting to stand in for a blocked worker", NULL, 10000);
	ck_assert_msg(d != NULL, "no spare worker in the dump");
	free(d);
	close(sys_pipe[0]);
	close(sys_pipe[1]);
}
END_TEST

static Suite *dump_suite(void)
{
	Suite *s = suite_create("dump");
	TCase *tc = tcase_create("dump");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_dump_describes_each_thread);
	tcase_add_test(tc, t_dump_bad_args);
	tcase_add_test(tc, t_dump_finished_on_one_line);
	tcase_add_test(tc, t_dump_thread_in_system_call);
	tcase_add_test(tc, t_dump_while_threads_churn);
	tcase_add_test(tc, t_dump_signal);
	tcase_add_test(tc, t_stats_levels_and_idle);
	tcase_add_test(tc, t_stats_queued);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(dump_suite());
}
