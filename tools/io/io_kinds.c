/*
 * io_kinds.c — which nonblocking attempt this kernel accepts for each kind
 * of descriptor a program may hand to weft's I/O calls, printed as the
 * Markdown table of docs/design.md ("Blocking I/O").  Every descriptor is
 * in blocking mode (O_NONBLOCK is never set) and empty, so a call that
 * works without blocking answers EAGAIN (or data, where there is some).
 *
 *   cc -O2 -o io_kinds tools/io/io_kinds.c -lutil && ./io_kinds
 *
 * Columns: recv/send with MSG_DONTWAIT; preadv2/pwritev2 with RWF_NOWAIT at
 * the current position (offset -1); whether epoll can watch it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *outcome(ssize_t r, int e)
{
	static char b[32];
	if (r >= 0)
		snprintf(b, sizeof b, "works (%zd)", r);
	else
		snprintf(b, sizeof b, "%s", e == EAGAIN ? "works (EAGAIN)" : strerrorname_np(e));
	return b;
}

static void row(const char *name, int rfd, int wfd, size_t rlen)
{
	char buf[256] = { 0 };
	struct iovec rv = { buf, rlen }, wv = { buf, 8 };
	uint64_t one = 1;
	if (wfd >= 0 && wfd == rfd)
		wv.iov_base = &one;   /* an eventfd takes a count */
	printf("| %s ", name);
	errno = 0;
	ssize_t r = recv(rfd, buf, rlen, MSG_DONTWAIT);
	printf("| %s ", outcome(r, errno));
	errno = 0;
	r = preadv2(rfd, &rv, 1, -1, RWF_NOWAIT);
	printf("| %s ", outcome(r, errno));
	if (wfd >= 0) {
		errno = 0;
		r = pwritev2(wfd, &wv, 1, -1, RWF_NOWAIT);
		printf("| %s ", outcome(r, errno));
	} else {
		printf("| — ");
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT };
	errno = 0;
	r = epoll_ctl(ep, EPOLL_CTL_ADD, rfd, &ev);
	printf("| %s |\n", r ? strerrorname_np(errno) : "yes");
	close(ep);
}

int main(void)
{
	printf("| descriptor | recv MSG_DONTWAIT | preadv2 RWF_NOWAIT | pwritev2 RWF_NOWAIT "
	       "| epoll |\n|---|---|---|---|---|\n");
	int sv[2], p[2], m, s;
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	row("UNIX stream socket", sv[0], sv[1], 8);
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	row("UDP socket", u, -1, 8);
	if (pipe(p) == 0)
		row("pipe", p[0], p[1], 8);
	char fifo[] = "/tmp/io_kinds-fifo-XXXXXX";
	int t = mkstemp(fifo);
	close(t);
	unlink(fifo);
	if (mkfifo(fifo, 0600) == 0) {
		int f = open(fifo, O_RDWR);
		row("FIFO (mkfifo)", f, f, 8);
		unlink(fifo);
	}
	int ef = eventfd(0, 0);
	row("eventfd", ef, ef, 8);
	row("timerfd", timerfd_create(CLOCK_MONOTONIC, 0), -1, 8);
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR1);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	row("signalfd (128-byte read)", signalfd(-1, &ss, 0), -1, sizeof(struct signalfd_siginfo));
	row("inotify", inotify_init(), -1, 256);
	if (openpty(&m, &s, NULL, NULL, NULL) == 0)
		row("pty (a terminal)", s, s, 8);
	int dn = open("/dev/null", O_RDWR);
	row("/dev/null", dn, dn, 8);
	char file[] = "/tmp/io_kinds-file-XXXXXX";
	int f = mkstemp(file);
	unlink(file);
	if (write(f, "0123456789", 10) == 10)
		lseek(f, 0, SEEK_SET);
	row("regular file", f, f, 8);
	return 0;
}
