/*
 * test_fork.c — fork() from green threads (docs/design.md, "fork"), the
 * order of fork handlers, and the ways of starting programs that do not
 * run fork handlers (system, popen, posix_spawn).
 *
 * A child reports by its exit status: 0 when every check it made passed,
 * else the number of the first one that failed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "sync_helpers.h"
#include "test_env.h"
#include "kthreads/kthread.h"   /* white-box: which kernel workers */

extern char **environ;

/* In a child: fail with status `code` unless c. */
#define C_CHECK(c, code) do { if (!(c)) _exit(code); } while (0)

static int wait_status(pid_t p)
{
	int st = -1;
	pid_t r;
	while ((r = waitpid(p, &st, 0)) < 0 && errno == EINTR)
		;
	if (r < 0)
		fprintf(stderr, "waitpid(%d): %s\n", (int)p, strerror(errno));
	return st;
}

#define ASSERT_EXIT0(status) do { \
	int st_ = (status); \
	ck_assert_msg(WIFEXITED(st_) && WEXITSTATUS(st_) == 0, "child status 0x%x (exit %d)", \
	              st_, WIFEXITED(st_) ? WEXITSTATUS(st_) : -1); \
} while (0)

static void *square(void *a) { return (void *)((intptr_t)a * (intptr_t)a); }

/* --- the machine ----------------------------------------------------------- */

static atomic_int probe_stop, probe_running;

static void *probe_sleeper(void *arg)
{
	(void)arg;
	atomic_store(&probe_running, 1);
	while (!atomic_load(&probe_stop))
		usleep(1000);
	return NULL;
}

static void *probe_leaf(void *arg) { return arg; }

/* Can a child of fork() from a process with other threads create a thread
 * here?  Not under qemu-user 7.2, for any program: a pthreads program that
 * forks from its main thread while another thread sleeps has its child
 * abort in the emulator (cpu_exec: assertion cpu == current_cpu) when the
 * child creates a thread.  Asked before weft starts, with plain pthreads. */
static bool threads_after_fork(void)
{
	pthread_t t;
	atomic_store(&probe_stop, 0);
	atomic_store(&probe_running, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, probe_sleeper, NULL), 0);
	/* Fork only once the sleeper runs its own code: under ASan a thread
	 * still starting holds the allocator's lock (its start allocates),
	 * and a child forked then deadlocks at its first allocation (GCC 12's
	 * libasan does not lock the allocator around fork).  Seen: about 1
	 * run in 3 of the fork case under ASan at load 2. */
	while (!atomic_load(&probe_running))
		usleep(100);
	pid_t p = fork();
	if (p == 0) {
		pthread_t c;
		void *r;
		_exit(pthread_create(&c, NULL, probe_leaf, (void *)1) == 0 &&
		      pthread_join(c, &r) == 0 && r == (void *)1 ? 0 : 1);
	}
	int st = -1;
	ck_assert_int_eq(waitpid(p, &st, 0), p);
	atomic_store(&probe_stop, 1);
	pthread_join(t, NULL);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

#define NEED_THREADS_AFTER_FORK() do { \
	if (!threads_after_fork()) { \
		weft_test_unsupported("a child of fork() from a threaded process cannot " \
		                      "create threads here (qemu-user aborts it)"); \
		return; \
	} \
} while (0)

/* Is a child forked while other kernel threads allocate sure to find the
 * allocator unlocked?  Not under ASan with clone workers: GCC 12's libasan
 * does not lock its allocator around fork(), and it serves every kernel
 * thread it did not create (clone workers, weft's monitor) through one
 * lock, so a child forked while another worker is in malloc or free
 * deadlocks at its own first allocation (t_fork_under_load, about one run
 * in three, the child stuck in __asan::Allocator::Allocate).  glibc's
 * allocator, which fork() locks, has no such window. */
static bool allocator_fork_safe(void)
{
#ifdef __SANITIZE_ADDRESS__
	return wf_kt_backend() != WF_KT_CLONE;
#else
	return true;
#endif
}

/* The child's work: threads, joins, a condition variable, main's exit. */
static void child_work(int base)
{
	C_CHECK(weft_init() == 0, base + 1);
	intptr_t sum = 0;
	weft_t t[50];
	for (intptr_t i = 0; i < 50; i++)
		C_CHECK(weft_create(&t[i], NULL, square, (void *)i) == 0, base + 2);
	for (int i = 0; i < 50; i++) {
		void *r;
		C_CHECK(weft_join(t[i], &r) == 0, base + 3);
		sum += (intptr_t)r;
	}
	C_CHECK(sum == 40425, base + 4);
	C_CHECK(weft_workers() >= 1, base + 5);
}

/* The end of a child: main's weft_exit, which must wait for the child's
 * threads (a detached one still sleeping, here) and then call exit(0).
 * exit runs the hook, which ends the child before LeakSanitizer's check
 * at exit (registered earlier, so run later): in a child of fork() that
 * check does not scan the forking kernel thread, whose id changed ("not
 * found in registry"), and takes what only that thread's stack points to
 * (the test runner's data) for leaks. */
static atomic_int late_done;

static void *late(void *arg)
{
	weft_sleep_ns(5 * MS);
	atomic_store(&late_done, 1);
	return arg;
}

static void child_exit_hook(void) { _exit(atomic_load(&late_done) ? 0 : 70); }

static _Noreturn void child_main_exit(void)
{
	weft_t t;
	if (atexit(child_exit_hook) || weft_create(&t, NULL, late, NULL) || weft_detach(t))
		_exit(71);
	weft_exit(NULL);
}

/* --- from green threads on both workers ------------------------------------- */

static weft_t forker_handle[2];
static atomic_int forkers_ready;

static void *forker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	forker_handle[idx] = weft_self();
	atomic_fetch_add(&forkers_ready, 1);
	/* Be on different workers: wait until both run, spinning. */
	uint64_t end = now_ns() + 2000 * MS;
	while (atomic_load(&forkers_ready) < 2 && now_ns() < end)
		;
	int worker = weft_worker_self();
	pid_t p = fork();
	if (p == 0) {
		/* The caller is the child's main, with its own handle. */
		C_CHECK(weft_self() == forker_handle[idx], 10);
		char name[32];
		C_CHECK(weft_getname(forker_handle[idx], name, sizeof name) == 0, 11);
		/* The other forker does not exist here. */
		C_CHECK(weft_getname(forker_handle[!idx], name, sizeof name) == ESRCH, 12);
		C_CHECK(weft_detach(weft_self()) == EINVAL, 13);   /* main */
		child_work(20);
		child_main_exit();
	}
	int st = wait_status(p);
	return (void *)(intptr_t)(st | (worker << 16));
}

START_TEST(t_fork_from_threads_on_both_workers)
{
	NEED_THREADS_AFTER_FORK();
	setup();
	for (int round = 0; round < 10; round++) {
		atomic_store(&forkers_ready, 0);
		weft_t a = spawn(forker, (void *)0), b = spawn(forker, (void *)1);
		intptr_t ra = (intptr_t)join(a), rb = (intptr_t)join(b);
		ASSERT_EXIT0((int)(ra & 0xffff));
		ASSERT_EXIT0((int)(rb & 0xffff));
	}
}
END_TEST

START_TEST(t_fork_from_main)
{
	NEED_THREADS_AFTER_FORK();
	setup();
	weft_t busy = spawn(square, (void *)3);
	pid_t p = fork();
	if (p == 0) {
		C_CHECK(weft_getname(busy, (char[32]){ 0 }, 32) == ESRCH, 10);
		child_work(20);
		/* A child of the child, before and after its runtime restarted. */
		pid_t q = fork();
		if (q == 0) {
			child_work(40);
			_exit(0);
		}
		C_CHECK(wait_status(q) == 0, 60);
		_exit(0);
	}
	ASSERT_EXIT0(wait_status(p));
	ck_assert_ptr_eq(join(busy), (void *)9);
}
END_TEST

START_TEST(t_fork_twice_before_restart)
{
	NEED_THREADS_AFTER_FORK();
	setup();
	pid_t p = fork();
	if (p == 0) {
		/* No weft call yet: the child's runtime has not restarted. */
		pid_t q = fork();
		if (q == 0) {
			child_work(20);
			_exit(0);
		}
		C_CHECK(wait_status(q) == 0, 60);
		child_work(40);
		_exit(0);
	}
	ASSERT_EXIT0(wait_status(p));
}
END_TEST

/* --- handler order ------------------------------------------------------------- */

static char order[32];
static atomic_int order_len;
static void rec(char c) { order[atomic_fetch_add(&order_len, 1)] = c; }
static void prep_a(void) { rec('a'); }
static void prep_b(void) { rec('b'); }
static void prep_c(void) { rec('c'); }
static void par_a(void) { rec('A'); }
static void par_b(void) { rec('B'); }
static void par_c(void) { rec('C'); }
static weft_mutex_t fm = WEFT_MUTEX_INITIALIZER;
static void prep_lock(void) { weft_mutex_lock(&fm); rec('l'); }
static void after_unlock(void) { weft_mutex_unlock(&fm); rec('u'); }
static void child_unlock(void) { weft_mutex_unlock(&fm); rec('v'); }

START_TEST(t_atfork_order)
{
	setup();
	ck_assert_int_eq(weft_atfork(prep_a, par_a, par_a), 0);
	ck_assert_int_eq(weft_atfork(prep_b, par_b, par_b), 0);
	ck_assert_int_eq(weft_atfork(NULL, NULL, NULL), 0);
	ck_assert_int_eq(weft_atfork(prep_c, par_c, par_c), 0);
	/* A handler pair that uses a weft mutex across the fork. */
	ck_assert_int_eq(weft_atfork(prep_lock, after_unlock, child_unlock), 0);
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	atomic_store(&order_len, 0);
	pid_t p = fork();
	if (p == 0) {
		/* The mutex is usable in the child: it was unlocked by the
		 * child handler, and its owner is this thread. */
		C_CHECK(weft_mutex_lock(&fm) == 0, 10);
		C_CHECK(weft_mutex_unlock(&fm) == 0, 11);
		ssize_t r = write(fds[1], order, (size_t)atomic_load(&order_len));
		(void)r;
		_exit(0);
	}
	close(fds[1]);
	char child[32] = { 0 };
	ssize_t n = read(fds[0], child, sizeof child - 1);
	close(fds[0]);
	ASSERT_EXIT0(wait_status(p));
	ck_assert_int_gt(n, 0);
	/* Prepare in reverse order of registration, the others in order. */
	order[atomic_load(&order_len)] = 0;
	ck_assert_str_eq(order, "lcbaABCu");
	ck_assert_str_eq(child, "lcbaABCv");
	ck_assert_int_eq(weft_atfork(NULL, NULL, NULL), 0);
}
END_TEST

/* --- a child forked from a kernel thread that is not a worker ------------- */

/* In a child whose main runs on a pthread's stack (which holds that
 * kernel thread's own descriptor and TLS): main never leaves its kernel
 * thread, which runs nothing else, and has the index after the workers
 * (docs/design.md, "Initialized by another thread"). */
static void main_stays_home(int base)
{
	pid_t home = gettid();
	C_CHECK(weft_worker_self() == weft_workers(), base + 1);
	for (int i = 0; i < 20; i++) {
		weft_t t;
		C_CHECK(weft_create(&t, NULL, square, (void *)2) == 0, base + 2);
		C_CHECK(weft_yield() == 0 && weft_sleep_ns(100000) == 0, base + 3);
		C_CHECK(weft_join(t, NULL) == 0, base + 4);
		C_CHECK(gettid() == home, base + 5);
	}
}

static void *foreign_forker(void *arg)
{
	(void)arg;
	pid_t p = fork();
	if (p == 0) {
		/* No green thread came along: this thread becomes main. */
		C_CHECK(weft_worker_self() == -1, 10);
		child_work(20);
		main_stays_home(30);
		_exit(0);
	}
	return (void *)(intptr_t)wait_status(p);
}

START_TEST(t_fork_from_foreign_thread)
{
	NEED_THREADS_AFTER_FORK();   /* its child starts weft's workers */
	setup();
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, foreign_forker, NULL), 0);
	void *r;
	ck_assert_int_eq(pthread_join(t, &r), 0);
	ASSERT_EXIT0((int)(intptr_t)r);
}
END_TEST

/* --- main on a kernel thread of its own (weft started by a pthread) ----------- */

static void *start_then_fork(void *arg)
{
	(void)arg;
	if (weft_init())
		return (void *)(intptr_t)-1;
	weft_t busy;
	if (weft_create(&busy, NULL, square, (void *)3))
		return (void *)(intptr_t)-2;
	pid_t p = fork();
	if (p == 0) {
		C_CHECK(weft_worker_self() == weft_workers(), 10);
		child_work(20);
		main_stays_home(30);
		_exit(0);
	}
	int st = wait_status(p);
	void *r;
	if (weft_join(busy, &r) || r != (void *)9)
		return (void *)(intptr_t)-3;
	return (void *)(intptr_t)st;
}

START_TEST(t_fork_from_main_on_its_own_thread)
{
	NEED_THREADS_AFTER_FORK();
	setup_env();
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, start_then_fork, NULL), 0);
	void *r;
	ck_assert_int_eq(pthread_join(t, &r), 0);
	ASSERT_EXIT0((int)(intptr_t)r);
}
END_TEST

/* --- descriptors waited on across the fork ------------------------------- */

static int io_pipe[2];

static void *io_reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char c = 0;
	ssize_t r = weft_read(fd, &c, 1);
	return (void *)(intptr_t)(r == 1 ? c : -1);
}

static void *io_writer(void *arg)
{
	int fd = (int)(intptr_t)arg;
	weft_sleep_ns(5 * MS);   /* after the reader parked */
	return (void *)(intptr_t)weft_write(fd, "c", 1);
}

START_TEST(t_fork_with_io_waiters)
{
	NEED_THREADS_AFTER_FORK();
	setup();
	/* A parent's thread waits in the poller across the fork. */
	ck_assert_int_eq(pipe(io_pipe), 0);
	weft_t r = spawn(io_reader, (void *)(intptr_t)io_pipe[0]);
	nap_ms(5);
	pid_t p = fork();
	if (p == 0) {
		/* The child's own waits use a poller of its own: a reader parks
		 * and a writer wakes it, twice (the second wait re-arms). */
		for (int round = 0; round < 2; round++) {
			int fds[2];
			C_CHECK(pipe(fds) == 0, 10);
			weft_t cr, cw;
			C_CHECK(weft_create(&cr, NULL, io_reader, (void *)(intptr_t)fds[0]) == 0, 11);
			C_CHECK(weft_create(&cw, NULL, io_writer, (void *)(intptr_t)fds[1]) == 0, 12);
			void *got, *wrote;
			C_CHECK(weft_join(cr, &got) == 0 && (intptr_t)got == 'c', 13);
			C_CHECK(weft_join(cw, &wrote) == 0 && (intptr_t)wrote == 1, 14);
			close(fds[0]);
			close(fds[1]);
		}
		/* The parent's pipe: its reader does not exist here, and a
		 * read of the child's own is served (the parent reads the
		 * byte written for it below, not this one). */
		child_main_exit();
	}
	ASSERT_EXIT0(wait_status(p));
	/* The parent's reader is still parked in the parent's poller. */
	ck_assert_int_eq(weft_write(io_pipe[1], "p", 1), 1);
	ck_assert_int_eq((intptr_t)join(r), 'p');
}
END_TEST

/* --- preemption and the monitor work in the child ------------------------------- */

static atomic_long progress[2];
static atomic_int spin_stop;

static void *spin_count(void *arg)
{
	int i = (int)(intptr_t)arg;
	while (!atomic_load(&spin_stop))
		atomic_fetch_add(&progress[i], 1);
	return NULL;
}

static void *blocked_reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char c;
	return (void *)(intptr_t)read(fd, &c, 1);   /* blocks its worker */
}

START_TEST(t_child_preempts_and_hands_off)
{
	NEED_THREADS_AFTER_FORK();
	setenv("WEFT_WORKERS", "1", 1);
	setenv("WEFT_QUANTUM_US", "1000", 1);
	ck_assert_int_eq(weft_init(), 0);
	pid_t p = fork();
	if (p == 0) {
		/* Two CPU-bound threads on one worker both progress: ticks. */
		weft_t a, b;
		C_CHECK(weft_create(&a, NULL, spin_count, (void *)0) == 0, 10);
		C_CHECK(weft_create(&b, NULL, spin_count, (void *)1) == 0, 11);
		weft_sleep_ns(100 * MS);
		atomic_store(&spin_stop, 1);
		weft_join(a, NULL);
		weft_join(b, NULL);
		C_CHECK(atomic_load(&progress[0]) > 0 && atomic_load(&progress[1]) > 0, 12);
		weft_stats_t s;
		C_CHECK(weft_stats_get(-1, &s) == 0 && s.preemptions > 0, 13);
		/* A thread blocked in read() on the only worker: the monitor
		 * hands the others to another kernel thread. */
		int fds[2];
		C_CHECK(pipe(fds) == 0, 14);
		weft_t r;
		C_CHECK(weft_create(&r, NULL, blocked_reader, (void *)(intptr_t)fds[0]) == 0, 15);
		weft_sleep_ns(20 * MS);
		C_CHECK(write(fds[1], "x", 1) == 1, 16);
		void *got;
		C_CHECK(weft_join(r, &got) == 0 && (intptr_t)got == 1, 17);
		_exit(0);
	}
	ASSERT_EXIT0(wait_status(p));
}
END_TEST

/* --- under load ----------------------------------------------------------------------- */

/* 1,000 threads create, exit and lock on 2 workers while the main thread
 * forks 200 times; each child creates threads and exits 0. */
static weft_mutex_t load_lock = WEFT_MUTEX_INITIALIZER;
static atomic_int load_stop;
static long load_counter;

static void *load_leaf(void *arg)
{
	weft_mutex_lock(&load_lock);
	load_counter++;
	weft_mutex_unlock(&load_lock);
	return arg;
}

static void *load_worker(void *arg)
{
	(void)arg;
	while (!atomic_load(&load_stop)) {
		weft_t t;
		if (weft_create(&t, NULL, load_leaf, NULL) == 0)
			weft_join(t, NULL);
		weft_mutex_lock(&load_lock);
		load_counter++;
		weft_mutex_unlock(&load_lock);
	}
	return NULL;
}

START_TEST(t_fork_under_load)
{
	NEED_THREADS_AFTER_FORK();
	setup();
	if (!allocator_fork_safe()) {
		weft_test_unsupported("ASan's allocator is not locked across fork() and "
		                      "serves clone workers through one lock");
		return;
	}
	enum { LOADERS = 1000 };
	weft_t *t = calloc(LOADERS, sizeof *t);
	ck_assert_ptr_nonnull(t);
	for (int i = 0; i < LOADERS; i++)
		t[i] = spawn(load_worker, NULL);
	for (int k = 0; k < 200; k++) {
		pid_t p = fork();
		ck_assert_int_ge(p, 0);
		if (p == 0) {
			child_work(20);
			/* The parent's mutex may have been held by a thread that is
			 * not here: a fresh one works. */
			weft_mutex_t m2 = WEFT_MUTEX_INITIALIZER;
			C_CHECK(weft_mutex_lock(&m2) == 0 && weft_mutex_unlock(&m2) == 0, 50);
			child_main_exit();
		}
		ASSERT_EXIT0(wait_status(p));
	}
	atomic_store(&load_stop, 1);
	for (int i = 0; i < LOADERS; i++)
		join(t[i]);
	free(t);
	ck_assert_int_gt(load_counter, 0);
}
END_TEST

/* --- system, popen, posix_spawn from green threads ----------------------------- */

static void *spawner(void *arg)
{
	(void)arg;
	int bad = 0;
	for (int i = 0; i < 10; i++) {
		int st = system("exit 3");
		bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 3);
		FILE *f = popen("echo weft", "r");
		char buf[16] = { 0 };
		if (!f || !fgets(buf, sizeof buf, f) || strcmp(buf, "weft\n") != 0)
			bad++;
		if (f)
			bad += pclose(f) != 0;
		pid_t p;
		char *argv[] = { "/bin/sh", "-c", "exit 5", NULL };
		if (posix_spawn(&p, "/bin/sh", NULL, NULL, argv, environ) != 0)
			bad++;
		else {
			int s2 = wait_status(p);
			bad += !(WIFEXITED(s2) && WEXITSTATUS(s2) == 5);
		}
		weft_yield();
	}
	return (void *)(intptr_t)bad;
}

START_TEST(t_system_popen_spawn_from_green_threads)
{
	setup();
	weft_t t[4];
	for (int i = 0; i < 4; i++)
		t[i] = spawn(spawner, NULL);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq((intptr_t)join(t[i]), 0);
	ck_assert_int_eq((intptr_t)spawner(NULL), 0);   /* and from main */
}
END_TEST

static Suite *fork_suite(void)
{
	Suite *s = suite_create("fork");
	TCase *tc = tcase_create("fork");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_fork_from_threads_on_both_workers);
	tcase_add_test(tc, t_fork_from_main);
	tcase_add_test(tc, t_fork_twice_before_restart);
	tcase_add_test(tc, t_atfork_order);
	tcase_add_test(tc, t_fork_from_foreign_thread);
	tcase_add_test(tc, t_fork_from_main_on_its_own_thread);
	tcase_add_test(tc, t_fork_with_io_waiters);
	tcase_add_test(tc, t_child_preempts_and_hands_off);
	tcase_add_test(tc, t_system_popen_spawn_from_green_threads);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, t_fork_under_load);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(fork_suite());
}
