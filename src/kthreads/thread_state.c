/*
 * thread_state.c — what the kernel says about another kernel thread of
 * this process: the CPU time it has used, and whether it is running (or
 * waiting for a CPU) or asleep in a system call.  src/sched's monitor asks
 * both of a worker that has not switched threads for a while: a worker
 * whose clock advances is running code, one whose clock stands still is
 * either asleep in the kernel (then its threads are handed to another
 * worker) or merely not given a CPU (more threads than CPUs: then it is
 * left alone).  weft_dump asks for the state too, to show a green thread
 * that sits in a system call as such rather than as running.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kt_internal.h"

clockid_t wf_kt_cpu_clock(pid_t tid)
{
	/* The kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED): what
	 * pthread_getcpuclockid returns for a pthread. */
	return (clockid_t)((~(unsigned)tid << 3) | 4u /* per thread */ | 2u /* sched */);
}

uint64_t wf_kt_cpu_ns(pid_t tid)
{
	struct timespec ts;
	if (clock_gettime(wf_kt_cpu_clock(tid), &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The state letter of the stat file open at fd, or 0 if unreadable. */
static char wf_kt_stat_state(int fd)
{
	char buf[512];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "tid (comm) S ...": the state follows the last ')' (comm may hold
	 * any character). */
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static int wf_kt_stat_open(pid_t tid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

bool wf_kt_runnable(pid_t tid, int *fd)
{
	if (*fd < 0 && (*fd = wf_kt_stat_open(tid)) < 0)
		return true;
	char st = wf_kt_stat_state(*fd);
	return !st || st == 'R';
}

char wf_kt_state(pid_t tid)
{
	int e = errno;
	int fd = tid > 0 ? wf_kt_stat_open(tid) : -1;
	char st = fd >= 0 ? wf_kt_stat_state(fd) : 0;
	if (fd >= 0)
		close(fd);
	errno = e;
	return st;
}
