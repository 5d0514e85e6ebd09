/*
 * test_glibc_lists.c — glibc's per-thread broadcasts reach every kernel
 * worker (docs/design.md, "glibc's thread lists").
 *
 * Covered: a set*id call changes the credentials of every kernel thread
 * of the process, the workers and a spare started by the monitor
 * included (before, clone workers kept the old ones).  The static TLS of a
 * library dlopen'ed later is covered by the C++ suite (tests/cxx).
 *
 * Changing credentials needs root (CI runs as root); without it the test
 * says so on stderr and checks nothing.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "child_capture.h"
#include "sched_helpers.h"

#define NEW_GID 4321

/* Under an emulator (WEFT_TEST_EMULATOR, set by the build for a cross
 * build run with qemu-user), the process also holds the emulator's own
 * helper threads, which are neither weft's nor the program's and never
 * change credentials: only the initial thread and weft's named kernel
 * threads (weft-w<n>, weft-monitor) count there.  A native run counts
 * every thread of the process. */
static bool counted(const char *tid)
{
	const char *emu = getenv("WEFT_TEST_EMULATOR");
	if (!emu || !*emu || strtol(tid, NULL, 10) == (long)getpid())
		return true;
	char path[300], comm[32] = "";
	snprintf(path, sizeof path, "/proc/self/task/%s/comm", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool weft = fgets(comm, sizeof comm, f) && strncmp(comm, "weft-", 5) == 0;
	fclose(f);
	return weft;
}

/* Kernel threads of this process whose real, effective and saved gids are
 * not all NEW_GID; *tasks counts them all. */
static int tasks_with_old_gid(int *tasks)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int wrong = 0;
	*tasks = 0;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[300], line[256];
		if (e->d_name[0] == '.' || !counted(e->d_name))
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;   /* it has just exited */
		while (fgets(line, sizeof line, f))
			if (strncmp(line, "Gid:", 4) == 0) {
				unsigned r, ef, s;
				(*tasks)++;
				if (sscanf(line + 4, "%u %u %u", &r, &ef, &s) != 3 ||
				    r != NEW_GID || ef != NEW_GID || s != NEW_GID)
					wrong++;
			}
		fclose(f);
	}
	closedir(d);
	return wrong;
}

static int pipe_fds[2];

/* Blocks its worker in read() until the monitor has handed the worker
 * over (a spare kernel thread is then running). */
static void *blocked_reader(void *arg)
{
	(void)arg;
	char c;
	if (read(pipe_fds[0], &c, 1) != 1)
		return (void *)1;
	return NULL;
}

static void setxid_child(void *arg)
{
	(void)arg;
	setenv("WEFT_WORKERS", "2", 1);
	if (weft_init() || pipe(pipe_fds))
		_exit(10);
	weft_t t;
	if (weft_create(&t, NULL, blocked_reader, NULL))
		_exit(11);
	weft_stats_t s;
	for (int i = 0; i < 2000; i++) {
		weft_stats_get(-1, &s);
		if (s.handoffs)
			break;
		weft_sleep_ns(1000000);
	}
	if (!s.handoffs)
		_exit(12);   /* no spare was started */
	/* The monitor counts the handoff before the spare it starts exists:
	 * wait until the initial thread, both workers, the spare and the
	 * monitor are all there. */
	int tasks = 0;
	for (int i = 0; i < 2000; i++) {
		tasks_with_old_gid(&tasks);
		if (tasks >= 4)
			break;
		weft_sleep_ns(1000000);
	}
	if (setresgid(NEW_GID, NEW_GID, NEW_GID))
		_exit(13);
	int wrong = tasks_with_old_gid(&tasks);
	fprintf(stderr, "%d of %d kernel threads kept the old gid\n", wrong, tasks);
	if (write(pipe_fds[1], "x", 1) != 1 || weft_join(t, NULL))
		_exit(14);
	_exit(wrong == 0 && tasks >= 4 ? 0 : 15);
}

START_TEST(t_setxid_reaches_every_worker)
{
	if (geteuid() != 0) {
		fputs("t_setxid_reaches_every_worker: not root, nothing checked\n", stderr);
		return;
	}
	char err[1024];
	int st = weft_test_run_captured(setxid_child, NULL, err, sizeof err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, stderr: %s", st, err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("glibc_lists");
	TCase *tc = tcase_create("glibc_lists");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_setxid_reaches_every_worker);
	suite_add_tcase(s, tc);
	return weft_check_run(s);
}
