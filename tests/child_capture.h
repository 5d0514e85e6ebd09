/*
 * child_capture.h — run a function in a forked child with its stderr
 * captured, for tests that check what weft prints or how a process ends.
 */
#ifndef WEFT_TEST_CHILD_CAPTURE_H
#define WEFT_TEST_CHILD_CAPTURE_H

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Remove the line qemu-user adds to a guest's stderr when a signal kills
 * it ("qemu: uncaught target signal 6 (Aborted) - core dumped"): it is the
 * emulator's, not the program's, and a native run has no such line. */
static inline void weft_test_drop_emulator_lines(char *err)
{
	static const char tag[] = "qemu: uncaught target signal ";
	char *p = err;
	while ((p = strstr(p, tag)) != NULL) {
		if (p != err && p[-1] != '\n') {
			p++;
			continue;
		}
		char *end = strchr(p, '\n');
		end = end ? end + 1 : p + strlen(p);
		memmove(p, end, strlen(end) + 1);
	}
}

/* Fork; the child runs fn(arg) with stderr on a pipe and exits 0 if fn
 * returns.  The parent reads the child's stderr into err (NUL-terminated,
 * cut at errlen - 1; the rest is read and dropped, so a talkative child
 * never blocks on a full pipe) and returns its wait status. */
static inline int weft_test_run_captured(void (*fn)(void *), void *arg, char *err, size_t errlen)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);   /* nothing buffered is written twice */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		close(fds[1]);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	size_t n = 0;
	char drop[512];
	ssize_t r;
	for (;;) {
		char *into = n < errlen - 1 ? err + n : drop;
		size_t room = n < errlen - 1 ? errlen - 1 - n : sizeof drop;
		if ((r = read(fds[0], into, room)) <= 0)
			break;
		if (into != drop)
			n += (size_t)r;
	}
	err[n] = '\0';
	weft_test_drop_emulator_lines(err);
	close(fds[0]);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return st;
}

#endif
