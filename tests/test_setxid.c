/*
 * test_setxid.c — credentials changed by the program reach every kernel
 * thread of the process, the clone backend's workers, spares and monitor
 * included: glibc's own set*id broadcast reaches them because they are on
 * its thread list (docs/design.md, "glibc's thread lists").  The drop to
 * `nobody` is made from a green thread, on whichever worker it runs, and
 * the round trip of the effective ids gives privileges back.
 *
 * Runs as root (CI does): it drops to `nobody` and then reads the ids of
 * every task of the process from /proc/self/task/<tid>/status, and the
 * ids each worker's kernel thread reports to a green thread running on
 * it.  Without root there is nothing to drop: the suite says so and
 * checks nothing.
 */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <grp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "sync_helpers.h"
#include "test_env.h"

#define NOBODY 65534

/* Kernel threads that existed before weft started, other than the caller:
 * none in a native run (the test's process is single-threaded), but under
 * qemu-user the emulator's own helper thread, which is neither weft's nor
 * the program's and never changes credentials (test_glibc_lists does the
 * same). */
static long foreign[8];
static int nforeign;

static void note_foreign_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	long self = (long)gettid();
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) && nforeign < 8) {
		long tid = strtol(e->d_name, NULL, 10);
		if (tid > 0 && tid != self)
			foreign[nforeign++] = tid;
	}
	closedir(d);
}

/* A task of the process to look at: weft's or the program's. */
static bool counted(const char *name)
{
	long tid = strtol(name, NULL, 10);
	if (name[0] == '.' || tid <= 0)
		return false;
	for (int i = 0; i < nforeign; i++)
		if (foreign[i] == tid)
			return false;
	return true;
}

/* Every task's "Uid:"/"Gid:" lines (real, effective, saved, fs) equal to
 * want, and no supplementary group; the number of tasks looked at, or -1
 * with the offending line in bad. */
static int all_tasks_are(unsigned want, char *bad, size_t badlen)
{
	DIR *d = opendir("/proc/self/task");
	ck_assert_ptr_nonnull(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!counted(e->d_name))
			continue;
		char path[300], line[256];
		snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;   /* the task exited meanwhile */
		n++;
		while (fgets(line, sizeof line, f)) {
			unsigned a, b, c, x;
			if ((sscanf(line, "Uid: %u %u %u %u", &a, &b, &c, &x) == 4 ||
			     sscanf(line, "Gid: %u %u %u %u", &a, &b, &c, &x) == 4) &&
			    (a != want || b != want || c != want || x != want)) {
				snprintf(bad, badlen, "task %.16s: %.200s", e->d_name, line);
				n = -1;
			}
			if (!strncmp(line, "Groups:", 7) && strspn(line + 7, " \t\n") != strlen(line + 7)) {
				snprintf(bad, badlen, "task %.16s: %.200s", e->d_name, line);
				n = -1;
			}
		}
		fclose(f);
		if (n < 0)
			break;
	}
	closedir(d);
	return n;
}

/* --- the machine ----------------------------------------------------------- */

static atomic_int probe_stop;

static void *probe_sleeper(void *arg)
{
	while (!atomic_load(&probe_stop))
		usleep(1000);
	return arg;
}

static void *probe_drop(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)setresgid(4321, 4321, 4321);
}

/* Does a set*id call reach every thread of a plain pthreads process here?
 * Not under qemu-user 7.2: one thread or two of four keep the old ids
 * there, the emulator's own helper among them (measured).  Asked in a
 * child process, before weft starts. */
static bool setxid_reaches_all_threads(void)
{
	pid_t p = fork();
	if (p == 0) {
		pthread_t s1, s2, d;
		void *r;
		if (pthread_create(&s1, NULL, probe_sleeper, NULL) ||
		    pthread_create(&s2, NULL, probe_sleeper, NULL) ||
		    pthread_create(&d, NULL, probe_drop, NULL) || pthread_join(d, &r) || r)
			_exit(2);
		DIR *dir = opendir("/proc/self/task");
		struct dirent *e;
		int bad = !dir;
		while (dir && (e = readdir(dir))) {
			char path[300], line[256];
			snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
			FILE *f = e->d_name[0] == '.' ? NULL : fopen(path, "r");
			while (f && fgets(line, sizeof line, f)) {
				unsigned a, b, c;
				if (sscanf(line, "Gid: %u %u %u", &a, &b, &c) == 3 &&
				    (a != 4321 || b != 4321 || c != 4321))
					bad = 1;
			}
			if (f)
				fclose(f);
		}
		if (dir)
			closedir(dir);
		atomic_store(&probe_stop, 1);
		pthread_join(s1, NULL);
		pthread_join(s2, NULL);
		_exit(bad);
	}
	int st = -1;
	ck_assert_int_eq(waitpid(p, &st, 0), p);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

#define NEED_SETXID_BROADCAST() do { \
	if (!setxid_reaches_all_threads()) { \
		weft_test_unsupported("set*id does not reach every thread of a plain " \
		                      "pthreads process here (qemu-user)"); \
		return; \
	} \
} while (0)

static atomic_int stop;
static atomic_long wrong_ids;

/* Busy on whatever worker it is on, asking the kernel thread it runs on. */
static void *prober(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		if (syscall(SYS_geteuid) != NOBODY || syscall(SYS_getegid) != NOBODY)
			atomic_fetch_add(&wrong_ids, 1);
		weft_sleep_ns(200000);
	}
	return NULL;
}

static void *blocked_reader(void *arg)
{
	char c;
	return (void *)read((int)(intptr_t)arg, &c, 1);
}

static void *drop(void *arg)
{
	(void)arg;
	T_CHECK(setgroups(0, NULL) == 0);
	T_CHECK(setgid(NOBODY) == 0);
	T_CHECK(setuid(NOBODY) == 0);
	return NULL;
}

START_TEST(t_drop_to_nobody_reaches_every_thread)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_setxid: not root: nothing to drop, not checked\n");
		return;
	}
	NEED_SETXID_BROADCAST();
	setenv("WEFT_WORKERS", "2", 1);
	note_foreign_threads();
	ck_assert_int_eq(weft_init(), 0);
	/* A worker blocked in read(): the monitor starts a spare in its place,
	 * so there are kernel threads of every kind. */
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	weft_t r = spawn(blocked_reader, (void *)(intptr_t)fds[0]);
	nap_ms(30);
	/* Drop from a green thread, whichever worker it is on. */
	weft_t d = spawn(drop, NULL);
	join(d);
	ASSERT_NO_FAILS();
	ck_assert_int_eq(write(fds[1], "x", 1), 1);
	ck_assert_int_eq((intptr_t)join(r), 1);
	char bad[300] = "";
	int n = all_tasks_are(NOBODY, bad, sizeof bad);
	ck_assert_msg(n > 0, "%s", bad);
	ck_assert_int_ge(n, 4);   /* main, a worker, the monitor, a spare */
	weft_t p[6];
	for (int i = 0; i < 6; i++)
		p[i] = spawn(prober, NULL);
	nap_ms(100);
	atomic_store(&stop, 1);
	for (int i = 0; i < 6; i++)
		join(p[i]);
	ck_assert_int_eq(atomic_load(&wrong_ids), 0);
	/* New workers are made by a thread that has the new ids. */
	ck_assert_int_eq(all_tasks_are(NOBODY, bad, sizeof bad) > 0, 1);
}
END_TEST

static void *swap_euid(void *arg)
{
	(void)arg;
	/* Effective nobody, then root again (the saved id stays 0): a
	 * change that gives privileges back. */
	T_CHECK(setegid(NOBODY) == 0);
	T_CHECK(seteuid(NOBODY) == 0);
	return NULL;
}

static int all_euid(unsigned want)
{
	DIR *dir = opendir("/proc/self/task");
	int bad = 0;
	struct dirent *e;
	while ((e = readdir(dir))) {
		char path[300], line[256];
		snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
		FILE *f = counted(e->d_name) ? fopen(path, "r") : NULL;
		while (f && fgets(line, sizeof line, f)) {
			unsigned a, b, c, x;
			if (sscanf(line, "Uid: %u %u %u %u", &a, &b, &c, &x) == 4 && b != want)
				bad++;
		}
		if (f)
			fclose(f);
	}
	closedir(dir);
	return bad;
}

START_TEST(t_effective_ids_round_trip)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_setxid: not root: nothing to drop, not checked\n");
		return;
	}
	NEED_SETXID_BROADCAST();
	setenv("WEFT_WORKERS", "2", 1);
	note_foreign_threads();
	ck_assert_int_eq(weft_init(), 0);
	join(spawn(swap_euid, NULL));
	ASSERT_NO_FAILS();
	ck_assert_int_eq(all_euid(NOBODY), 0);
	ck_assert_int_eq(seteuid(0), 0);
	ck_assert_int_eq(setegid(0), 0);
	ck_assert_int_eq(all_euid(0), 0);
}
END_TEST

static Suite *setxid_suite(void)
{
	Suite *s = suite_create("setxid");
	TCase *tc = tcase_create("setxid");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_drop_to_nobody_reaches_every_thread);
	tcase_add_test(tc, t_effective_ids_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(setxid_suite());
}
