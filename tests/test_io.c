/*
 * test_io.c — the drop-in I/O calls (src/io) and the poller (poller.c):
 * every call on the descriptors programs have, deadlines, bad input,
 * closing a descriptor others wait on, a peer's reset, a broken pipe,
 * 10,000 connections open at once, and the thread-per-connection echo
 * server with plain read/write that deadlocked on two workers (the
 * scenario of docs/design.md "Blocked workers"), run 100 times in one
 * process and 100 times as two processes.
 *
 * Green threads record what they saw; the test's own thread asserts.  No
 * test judges speed: where a wait must end, it is bounded generously and
 * the test judges what the calls returned.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "weft_check.h"
#include "helpers.h"

static void start(const char *workers)
{
	setenv("WEFT_WORKERS", workers, 1);
	unsetenv("WEFT_QUANTUM_US");
	ck_assert_int_eq(weft_init(), 0);
}

static weft_t spawn(void *(*fn)(void *), void *arg)
{
	weft_t t;
	ck_assert_int_eq(weft_create(&t, NULL, fn, arg), 0);
	return t;
}

static intptr_t join(weft_t t)
{
	void *r;
	ck_assert_int_eq(weft_join(t, &r), 0);
	return (intptr_t)r;
}

static int flags_of(int fd) { return fcntl(fd, F_GETFL); }

/* A TCP listener on 127.0.0.1, an ephemeral port. */
static int tcp_listener(struct sockaddr_in *sa, int backlog)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(l, 0);
	*sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_eq(bind(l, (struct sockaddr *)sa, sizeof *sa), 0);
	ck_assert_int_eq(listen(l, backlog), 0);
	socklen_t len = sizeof *sa;
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)sa, &len), 0);
	return l;
}

/* A connected pair of TCP sockets over loopback (blocking). */
static void tcp_pair(int sv[2])
{
	struct sockaddr_in sa;
	int l = tcp_listener(&sa, 4);
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(sv[0], (struct sockaddr *)&sa, sizeof sa), 0);
	sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(sv[1], 0);
	close(l);
}

/* ------------------------------------------------------------------------ */
/* Parking only the caller: a reader waits, its worker runs the others.     */

static atomic_long spun;
static atomic_bool stop_spin;

static void *spinner(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop_spin, memory_order_relaxed))
		atomic_fetch_add_explicit(&spun, 1, memory_order_relaxed);
	return NULL;
}

struct rd { int fd; char buf[64]; ssize_t n; int err; long spun_before; long spun_after; };

static void *reader(void *arg)
{
	struct rd *r = arg;
	r->spun_before = atomic_load(&spun);
	errno = 0;
	r->n = weft_read(r->fd, r->buf, sizeof r->buf);
	r->err = errno;
	r->spun_after = atomic_load(&spun);
	return NULL;
}

static void *late_writer(void *arg)
{
	int fd = (int)(intptr_t)arg;
	weft_sleep_ns(30 * MS);
	return (void *)(intptr_t)weft_write(fd, "hello", 5);
}

START_TEST(t_read_parks_only_the_caller)
{
	/* One worker, a spinner, a reader of an empty pipe and the writer
	 * that fills it 30 ms later: with a blocking read the writer would
	 * never run (nor would the spinner until the monitor stepped in). */
	start("1");
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	int fl = flags_of(p[0]);
	weft_t s = spawn(spinner, NULL);
	struct rd r = { .fd = p[0] };
	weft_t rt = spawn(reader, &r);
	weft_t w = spawn(late_writer, (void *)(intptr_t)p[1]);
	ck_assert_int_eq(join(w), 5);
	join(rt);
	atomic_store(&stop_spin, true);
	join(s);
	ck_assert_int_eq(r.n, 5);
	ck_assert_int_eq(memcmp(r.buf, "hello", 5), 0);
	ck_assert_int_gt(r.spun_after, r.spun_before);   /* the spinner ran meanwhile */
	ck_assert_int_eq(flags_of(p[0]), fl);            /* O_NONBLOCK never flipped */
	weft_stats_t st;
	ck_assert_int_eq(weft_stats_get(-1, &st), 0);
	ck_assert_uint_eq(st.handoffs, 0);               /* no worker was stuck */
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Each call on sockets.                                                     */

static void *echo_once(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char b[256];
	ssize_t n = weft_recv(fd, b, sizeof b, 0);
	if (n > 0)
		n = weft_send(fd, b, (size_t)n, 0);
	return (void *)(intptr_t)n;
}

START_TEST(t_socket_calls)
{
	start("2");
	int sv[2];
	tcp_pair(sv);
	/* recv/send */
	weft_t e = spawn(echo_once, (void *)(intptr_t)sv[1]);
	ck_assert_int_eq(weft_send(sv[0], "ping", 4, 0), 4);
	char b[16];
	ck_assert_int_eq(weft_recv(sv[0], b, sizeof b, 0), 4);
	ck_assert_int_eq(memcmp(b, "ping", 4), 0);
	ck_assert_int_eq(join(e), 4);
	/* readv/writev, several buffers */
	e = spawn(echo_once, (void *)(intptr_t)sv[1]);
	struct iovec out[3] = { { "ab", 2 }, { "cde", 3 }, { "f", 1 } };
	ck_assert_int_eq(weft_writev(sv[0], out, 3), 6);
	char x[4], y[8], all6[6];
	struct iovec in[2] = { { x, sizeof x }, { y, sizeof y } };
	ssize_t got = weft_readv(sv[0], in, 2);
	ck_assert_int_gt(got, 0);
	memcpy(all6, x, got < 4 ? (size_t)got : 4);
	if (got > 4)
		memcpy(all6 + 4, y, (size_t)got - 4);
	while (got < 6) {   /* delivered in pieces: the rest */
		ssize_t n = weft_read(sv[0], all6 + got, (size_t)(6 - got));
		ck_assert_int_gt(n, 0);
		got += n;
	}
	ck_assert_int_eq(memcmp(all6, "abcdef", 6), 0);
	ck_assert_int_eq(join(e), 6);
	/* MSG_WAITALL gathers pieces sent apart */
	weft_t w = spawn(late_writer, (void *)(intptr_t)sv[1]);
	ck_assert_int_eq(weft_send(sv[1], "12345", 5, 0), 5);
	char all[10];
	ck_assert_int_eq(weft_recv(sv[0], all, 10, MSG_WAITALL), 10);
	ck_assert_int_eq(memcmp(all, "12345hello", 10), 0);
	ck_assert_int_eq(join(w), 5);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

static void *udp_echo(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char b[64];
	struct sockaddr_in from;
	socklen_t len = sizeof from;
	ssize_t n = weft_recvfrom(fd, b, sizeof b, 0, (struct sockaddr *)&from, &len);
	if (n > 0)
		n = weft_sendto(fd, b, (size_t)n, 0, (struct sockaddr *)&from, len);
	return (void *)(intptr_t)n;
}

START_TEST(t_datagram_calls)
{
	start("2");
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), c = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
	socklen_t len = sizeof sa;
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	weft_t e = spawn(udp_echo, (void *)(intptr_t)s);
	weft_sleep_ns(5 * MS);   /* the echo thread parks first */
	ck_assert_int_eq(weft_sendto(c, "dgram", 5, 0, (struct sockaddr *)&sa, sizeof sa), 5);
	char b[16];
	struct sockaddr_in from;
	socklen_t fl = sizeof from;
	ck_assert_int_eq(weft_recvfrom(c, b, sizeof b, 0, (struct sockaddr *)&from, &fl), 5);
	ck_assert_int_eq(memcmp(b, "dgram", 5), 0);
	ck_assert_int_eq(from.sin_port, sa.sin_port);
	ck_assert_int_eq(join(e), 5);
	close(s);
	close(c);
}
END_TEST

/* recvmsg/sendmsg with a descriptor passed over a UNIX socket. */
static void *pass_fd(void *arg)
{
	int fd = (int)(intptr_t)arg;
	weft_sleep_ns(10 * MS);
	int passed = STDIN_FILENO;
	char data = 'x';
	struct iovec v = { &data, 1 };
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
	memset(&ctl, 0, sizeof ctl);
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl.b,
	                    .msg_controllen = sizeof ctl.b };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &passed, sizeof passed);
	return (void *)(intptr_t)weft_sendmsg(fd, &m, 0);
}

START_TEST(t_msg_calls)
{
	start("1");
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	weft_t t = spawn(pass_fd, (void *)(intptr_t)sv[1]);
	char data = 0;
	struct iovec v = { &data, 1 };
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl.b,
	                    .msg_controllen = sizeof ctl.b };
	ck_assert_int_eq(weft_recvmsg(sv[0], &m, MSG_CMSG_CLOEXEC), 1);   /* waited 10 ms */
	ck_assert_int_eq(data, 'x');
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->cmsg_type, SCM_RIGHTS);
	int got;
	memcpy(&got, CMSG_DATA(c), sizeof got);
	ck_assert_int_ge(got, 0);
	close(got);
	ck_assert_int_eq(join(t), 1);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* A big write to a socket whose reader is slow: all of it, as libc's. */
enum { BIG = 4 << 20 };

static void *slow_sink(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *b = malloc(65536);
	long total = 0;
	for (;;) {
		ssize_t n = weft_read(fd, b, 65536);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (b[i] != (char)((total + i) * 7))
				total = -1000000000L;
		total += n;
		if ((total & 0xfffff) < n)
			weft_sleep_ns(MS);   /* now and then */
	}
	free(b);
	return (void *)total;
}

START_TEST(t_big_writes)
{
	start("2");
	int sv[2];
	tcp_pair(sv);
	char *b = malloc(BIG);
	for (long i = 0; i < BIG; i++)
		b[i] = (char)(i * 7);
	weft_t s = spawn(slow_sink, (void *)(intptr_t)sv[1]);
	ck_assert_int_eq(weft_write(sv[0], b, BIG / 2), BIG / 2);
	/* The second half as 16 buffers (more than fit on weft's stack). */
	struct iovec v[16];
	for (int i = 0; i < 16; i++)
		v[i] = (struct iovec){ b + BIG / 2 + i * (BIG / 32), BIG / 32 };
	ck_assert_int_eq(weft_writev(sv[0], v, 16), BIG / 2);
	shutdown(sv[0], SHUT_WR);
	ck_assert_int_eq(join(s), BIG);
	/* The same through a pipe (RWF_NOWAIT). */
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	s = spawn(slow_sink, (void *)(intptr_t)p[0]);
	ck_assert_int_eq(weft_write(p[1], b, BIG), BIG);
	close(p[1]);
	ck_assert_int_eq(join(s), BIG);
	free(b);
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* accept, accept4, connect, poll, weft_fd_wait.                             */

static struct sockaddr_in acc_sa;

static void *connector(void *arg)
{
	int n = (int)(intptr_t)arg, ok = 0;
	weft_sleep_ns(10 * MS);   /* the acceptor parks first */
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (weft_connect(fd, (struct sockaddr *)&acc_sa, sizeof acc_sa) == 0 &&
		    weft_write(fd, "c", 1) == 1)
			ok++;
		weft_close(fd);
	}
	return (void *)(intptr_t)ok;
}

START_TEST(t_accept_connect)
{
	start("2");
	int l = tcp_listener(&acc_sa, 16);
	weft_t c = spawn(connector, (void *)(intptr_t)3);
	struct sockaddr_in peer;
	socklen_t len = sizeof peer;
	int a = weft_accept(l, (struct sockaddr *)&peer, &len);
	ck_assert_int_ge(a, 0);
	ck_assert_int_eq(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	int b = weft_accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	ck_assert_int_ge(b, 0);
	ck_assert(flags_of(b) & O_NONBLOCK);              /* accept4's flags for the new one */
	ck_assert(!(flags_of(l) & O_NONBLOCK));           /* the listener's untouched */
	int d = weft_accept_until(l, NULL, NULL, weft_now_ns() + 10000 * MS);
	ck_assert_int_ge(d, 0);
	ck_assert_int_eq(join(c), 3);
	char x;
	ck_assert_int_eq(weft_read(a, &x, 1), 1);
	ck_assert_int_eq(weft_read(d, &x, 1), 1);
	/* Nothing more to accept: the deadline. */
	errno = 0;
	ck_assert_int_eq(weft_accept_until(l, NULL, NULL, weft_now_ns() + 20 * MS), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_int_eq(weft_accept4_until(l, NULL, NULL, 0, weft_now_ns() + 20 * MS), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	/* connect: refused, and a deadline already past. */
	struct sockaddr_in dead = acc_sa;
	close(l);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(weft_connect(s, (struct sockaddr *)&dead, sizeof dead), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	close(s);
	s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(weft_connect_until(s, (struct sockaddr *)&dead, sizeof dead, 1), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	close(s);
	close(a);
	close(b);
	close(d);
}
END_TEST

START_TEST(t_poll_and_fd_wait)
{
	start("1");
	int p[2], q[2];
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(pipe(q), 0);
	/* Nothing ready: poll times out, weft_fd_wait too. */
	struct pollfd f[3] = { { p[0], POLLIN, 0 }, { -1, POLLIN, 0 }, { q[0], POLLIN, 0 } };
	ck_assert_int_eq(weft_poll(f, 3, 20), 0);
	uint64_t t0 = now_ns();
	ck_assert_int_eq(weft_fd_wait(p[0], POLLIN, weft_now_ns() + 20 * MS), ETIMEDOUT);
	ck_assert_uint_ge(now_ns() - t0, 20 * MS);
	errno = 0;
	ck_assert_int_eq(weft_poll_until(f, 3, weft_now_ns() + 10 * MS), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	/* Data 30 ms later on the second pipe: poll waits for it. */
	weft_t w = spawn(late_writer, (void *)(intptr_t)q[1]);
	ck_assert_int_eq(weft_poll(f, 3, -1), 1);
	ck_assert_int_eq(f[0].revents, 0);
	ck_assert_int_eq(f[1].revents, 0);
	ck_assert_int_eq(f[2].revents, POLLIN);
	ck_assert_int_eq(join(w), 5);
	ck_assert_int_eq(weft_fd_wait(q[0], POLLIN, 0), 0);
	ck_assert_int_eq(weft_fd_wait(p[1], POLLOUT, 0), 0);
	/* A closed number: POLLNVAL, EBADF; a hung-up pipe: ready. */
	int dead = dup(p[0]);
	close(dead);
	struct pollfd g = { dead, POLLIN, 0 };
	ck_assert_int_eq(weft_poll(&g, 1, -1), 1);
	ck_assert_int_eq(g.revents, POLLNVAL);
	ck_assert_int_eq(weft_fd_wait(dead, POLLIN, 0), EBADF);
	ck_assert_int_eq(weft_fd_wait(-1, POLLIN, 0), EBADF);
	close(p[1]);
	ck_assert_int_eq(weft_fd_wait(p[0], POLLIN, 0), 0);
	/* Many descriptors (more than weft keeps on its stack), one ready. */
	int many[6][2];
	struct pollfd mf[6];
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(pipe(many[i]), 0);
		mf[i] = (struct pollfd){ many[i][0], POLLIN, 0 };
	}
	w = spawn(late_writer, (void *)(intptr_t)many[4][1]);
	ck_assert_int_eq(weft_poll(mf, 6, 5000), 1);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(mf[i].revents, i == 4 ? POLLIN : 0);
	ck_assert_int_eq(join(w), 5);
	for (int i = 0; i < 6; i++) {
		close(many[i][0]);
		close(many[i][1]);
	}
	/* No descriptors: poll is a sleep. */
	t0 = now_ns();
	ck_assert_int_eq(weft_poll(NULL, 0, 15), 0);
	ck_assert_uint_ge(now_ns() - t0, 15 * MS);
	close(p[0]);
	close(q[0]);
	close(q[1]);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Deadlines of every waiting call.                                         */

START_TEST(t_deadlines)
{
	start("2");
	int sv[2];
	tcp_pair(sv);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	char b[8];
	struct iovec v = { b, sizeof b };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	struct sockaddr_in from;
	socklen_t fl = sizeof from;
	uint64_t t0 = now_ns();
#define EXPIRES(call) do { \
		errno = 0; \
		ck_assert_int_eq((call), -1); \
		ck_assert_int_eq(errno, ETIMEDOUT); \
	} while (0)
	EXPIRES(weft_read_until(sv[0], b, sizeof b, weft_now_ns() + 10 * MS));
	EXPIRES(weft_read_until(p[0], b, sizeof b, weft_now_ns() + 10 * MS));
	EXPIRES(weft_readv_until(sv[0], &v, 1, weft_now_ns() + 10 * MS));
	EXPIRES(weft_recv_until(sv[0], b, sizeof b, 0, weft_now_ns() + 10 * MS));
	EXPIRES(weft_recvfrom_until(sv[0], b, sizeof b, 0, (struct sockaddr *)&from, &fl,
	                            weft_now_ns() + 10 * MS));
	EXPIRES(weft_recvmsg_until(sv[0], &m, 0, weft_now_ns() + 10 * MS));
	ck_assert_uint_ge(now_ns() - t0, 60 * MS);
	/* A deadline already past: no wait at all, but a ready descriptor
	 * still answers. */
	EXPIRES(weft_read_until(sv[0], b, sizeof b, 1));
	ck_assert_int_eq(weft_write_until(sv[1], "x", 1, 1), 1);
	ck_assert_int_eq(weft_read_until(sv[0], b, sizeof b, 1), 1);
	/* Writes: a UNIX socket filled to the brim stays full while nobody
	 * reads (TCP might make room as the peer's window grows): each write
	 * waits, then times out without having written anything. */
	int u[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, u), 0);
	char *big = calloc(1, 1 << 20);
	while (send(u[1], big, 4096, MSG_DONTWAIT) > 0)
		;
	EXPIRES(weft_write_until(u[1], big, 1 << 20, weft_now_ns() + 10 * MS));
	EXPIRES(weft_send_until(u[1], big, 1 << 20, 0, weft_now_ns() + 10 * MS));
	EXPIRES(weft_sendto_until(u[1], big, 1 << 20, 0, NULL, 0, weft_now_ns() + 10 * MS));
	struct iovec bv = { big, 1 << 20 };
	EXPIRES(weft_writev_until(u[1], &bv, 1, weft_now_ns() + 10 * MS));
	struct msghdr bm = { .msg_iov = &bv, .msg_iovlen = 1 };
	EXPIRES(weft_sendmsg_until(u[1], &bm, 0, weft_now_ns() + 10 * MS));
	/* Room for part of a write: what went before the deadline is
	 * reported, as a count. */
	char drain[8192];
	ck_assert_int_gt(recv(u[0], drain, sizeof drain, 0), 0);
	ssize_t n = weft_write_until(u[1], big, 1 << 20, weft_now_ns() + 10 * MS);
	ck_assert_int_gt(n, 0);
	ck_assert_int_lt(n, 1 << 20);
	close(u[0]);
	close(u[1]);
	free(big);
#undef EXPIRES
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The program's own settings: O_NONBLOCK and socket timeouts.              */

START_TEST(t_program_settings)
{
	start("1");
	int sv[2];
	tcp_pair(sv);
	char b[8];
	/* Nonblocking: EAGAIN at once, as libc's; weft leaves the flag. */
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	errno = 0;
	ck_assert_int_eq(weft_read(sv[0], b, sizeof b), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(weft_recv(sv[0], b, sizeof b, 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert(flags_of(sv[0]) & O_NONBLOCK);
	/* Back to blocking: the next call waits again (here, times out). */
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, 0), 0);
	errno = 0;
	ck_assert_int_eq(weft_read_until(sv[0], b, sizeof b, weft_now_ns() + 10 * MS), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	/* SO_RCVTIMEO: EAGAIN after it, as libc's. */
	struct timeval tv = { 0, 20000 };
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	uint64_t t0 = now_ns();
	errno = 0;
	ck_assert_int_eq(weft_read(sv[0], b, sizeof b), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_ge(now_ns() - t0, 20 * MS);
	/* MSG_DONTWAIT: libc's call. */
	ck_assert_int_eq(weft_recv(sv[0], b, sizeof b, MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
	/* A nonblocking pipe. */
	int p[2];
	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	ck_assert_int_eq(weft_read(p[0], b, sizeof b), -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The other kinds of descriptor.                                           */

static void *fifo_writer(void *arg)
{
	const char *path = arg;
	int fd = open(path, O_WRONLY | O_CLOEXEC);   /* the reader opened it first */
	weft_sleep_ns(20 * MS);
	ssize_t n = weft_write(fd, "fifo", 4);
	close(fd);
	return (void *)(intptr_t)n;
}

START_TEST(t_descriptor_kinds)
{
	/* SIGUSR2, read below through a signalfd, is blocked before weft
	 * starts, as docs/guide.md says: every worker then blocks it, the
	 * spares the monitor may add under load included (blocked later, in
	 * this thread only, it once reached such a spare and ended the
	 * process). */
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR2);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &ss, NULL), 0);
	start("1");
	char b[64];
	/* eventfd: the read waits (RWF_NOWAIT), the write takes the
	 * readiness path (RWF_NOWAIT refused). */
	int ev = eventfd(0, EFD_CLOEXEC);
	uint64_t one = 1, got = 0;
	ck_assert_int_eq(weft_read_until(ev, &got, 8, weft_now_ns() + 10 * MS), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_int_eq(weft_write(ev, &one, 8), 8);
	ck_assert_int_eq(weft_read(ev, &got, 8), 8);
	ck_assert_uint_eq(got, 1);
	close(ev);
	/* timerfd: the read waits for the expiry. */
	int tf = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	struct itimerspec its = { .it_value = { 0, 20 * 1000000 } };
	ck_assert_int_eq(timerfd_settime(tf, 0, &its, NULL), 0);
	uint64_t t0 = now_ns();
	ck_assert_int_eq(weft_read(tf, &got, 8), 8);
	ck_assert_uint_ge(got, 1);
	ck_assert_uint_ge(now_ns() - t0, 19 * MS);
	close(tf);
	/* signalfd: the read waits for the signal. */
	int sf = signalfd(-1, &ss, SFD_CLOEXEC);
	struct signalfd_siginfo si;
	ck_assert_int_eq(weft_read_until(sf, &si, sizeof si, weft_now_ns() + 10 * MS), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
	ck_assert_int_eq(weft_read(sf, &si, sizeof si), (ssize_t)sizeof si);
	ck_assert_uint_eq(si.ssi_signo, SIGUSR2);
	close(sf);
	/* A FIFO (RWF_NOWAIT refused): readiness, then the call. */
	char path[] = "/tmp/weft-test-fifo-XXXXXX";
	int tmp = mkstemp(path);
	close(tmp);
	unlink(path);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	int fr = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(fr, 0);
	ck_assert_int_eq(fcntl(fr, F_SETFL, 0), 0);   /* blocking from now on */
	weft_t w = spawn(fifo_writer, path);
	ssize_t n = 0;
	while (n < 4) {
		ssize_t k = weft_read(fr, b + n, sizeof b - (size_t)n);
		ck_assert_int_gt(k, 0);
		n += k;
	}
	ck_assert_int_eq(memcmp(b, "fifo", 4), 0);
	ck_assert_int_eq(join(w), 4);
	ck_assert_int_eq(weft_read(fr, b, sizeof b), 0);   /* the writer closed */
	close(fr);
	unlink(path);
	/* A regular file: read, pread, write, pwrite in a blocking section. */
	char fpath[] = "/tmp/weft-test-file-XXXXXX";
	int f = mkstemp(fpath);
	unlink(fpath);
	ck_assert_int_eq(weft_write(f, "0123456789", 10), 10);
	ck_assert_int_eq(weft_pwrite(f, "AB", 2, 3), 2);
	ck_assert_int_eq(weft_pread(f, b, 4, 2), 4);
	ck_assert_int_eq(memcmp(b, "2AB5", 4), 0);
	ck_assert_int_eq(lseek(f, 0, SEEK_SET), 0);
	ck_assert_int_eq(weft_read(f, b, sizeof b), 10);
	ck_assert_int_eq(weft_read(f, b, sizeof b), 0);
	ck_assert_int_eq(weft_fd_wait(f, POLLIN, 0), 0);   /* always ready, as poll says */
	close(f);
	/* pread on a pipe: ESPIPE, as libc's. */
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(weft_pread(p[0], b, 1, 0), -1);
	ck_assert_int_eq(errno, ESPIPE);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Bad input and the edge cases of a connection's life.                      */

START_TEST(t_bad_descriptors)
{
	start("1");
	char b[4];
	struct iovec v = { b, 4 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	/* A number that was open and is closed now.  Not the lowest free one:
	 * weft's monitor opens /proc files meanwhile, and the kernel gives
	 * them the lowest free number (found under qemu, where a read of the
	 * closed number returned 4 bytes of such a file).  Numbers are handed
	 * out lowest first, so the one below the limit stays closed. */
	struct rlimit rl;
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	int dead = (int)(rl.rlim_cur < 4096 ? rl.rlim_cur : 4096) - 1;
	ck_assert_int_eq(dup2(0, dead), dead);
	ck_assert_int_eq(close(dead), 0);
	int bad[] = { -1, dead, 1 << 30 };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int fd = bad[i];
#define EBADF_FROM(call) do { errno = 0; ck_assert_int_eq((call), -1); \
		ck_assert_int_eq(errno, EBADF); } while (0)
		EBADF_FROM(weft_read(fd, b, 4));
		EBADF_FROM(weft_write(fd, b, 4));
		EBADF_FROM(weft_readv(fd, &v, 1));
		EBADF_FROM(weft_writev(fd, &v, 1));
		EBADF_FROM(weft_pread(fd, b, 4, 0));
		EBADF_FROM(weft_pwrite(fd, b, 4, 0));
		EBADF_FROM(weft_recv(fd, b, 4, 0));
		EBADF_FROM(weft_send(fd, b, 4, 0));
		EBADF_FROM(weft_recvfrom(fd, b, 4, 0, NULL, NULL));
		EBADF_FROM(weft_sendto(fd, b, 4, 0, NULL, 0));
		EBADF_FROM(weft_recvmsg(fd, &m, 0));
		EBADF_FROM(weft_sendmsg(fd, &m, 0));
		EBADF_FROM(weft_accept(fd, NULL, NULL));
		EBADF_FROM(weft_accept4(fd, NULL, NULL, 0));
		EBADF_FROM(weft_connect(fd, (struct sockaddr *)&acc_sa, sizeof acc_sa));
		EBADF_FROM(weft_close(fd));
		ck_assert_int_eq(weft_fd_wait(fd, POLLIN, 0), EBADF);
#undef EBADF_FROM
	}
	/* Not a socket: ENOTSOCK, as libc's. */
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(weft_recv(p[0], b, 4, 0), -1);
	ck_assert_int_eq(errno, ENOTSOCK);
	ck_assert_int_eq(weft_accept(p[0], NULL, NULL), -1);
	ck_assert_int_eq(errno, ENOTSOCK);
	/* Bad vectors: EINVAL, as libc's. */
	ck_assert_int_eq(weft_readv(p[0], &v, -1), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(weft_writev(p[1], &v, 1 << 20), -1);
	ck_assert_int_eq(errno, EINVAL);
	/* The file status flags are as they were. */
	ck_assert_int_eq(flags_of(p[0]) & O_NONBLOCK, 0);
	close(p[0]);
	close(p[1]);
}
END_TEST

struct waiter { int fd; ssize_t n; int err; };

static void *blocked_reader(void *arg)
{
	struct waiter *w = arg;
	char b[8];
	errno = 0;
	w->n = weft_read(w->fd, b, sizeof b);
	w->err = errno;
	return NULL;
}

START_TEST(t_close_while_waiting)
{
	start("2");
	/* weft_close: the waiters wake at once with EBADF. */
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct waiter w1 = { .fd = sv[0] }, w2 = { .fd = sv[0] };
	weft_t a = spawn(blocked_reader, &w1), b = spawn(blocked_reader, &w2);
	weft_sleep_ns(20 * MS);   /* both parked */
	ck_assert_int_eq(weft_close(sv[0]), 0);
	join(a);
	join(b);
	ck_assert_int_eq(w1.n, -1);
	ck_assert_int_eq(w1.err, EBADF);
	ck_assert_int_eq(w2.n, -1);
	ck_assert_int_eq(w2.err, EBADF);
	close(sv[1]);
	/* close(2): weft finds out at its next check of the waited numbers
	 * (about a second); the waiter fails with EBADF then. */
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	struct waiter w3 = { .fd = p[0] };
	a = spawn(blocked_reader, &w3);
	weft_sleep_ns(20 * MS);
	ck_assert_int_eq(close(p[0]), 0);
	join(a);
	ck_assert_int_eq(w3.n, -1);
	ck_assert_int_eq(w3.err, EBADF);
	close(p[1]);
	/* The number reused for a new file: a new waiter on it works. */
	int q[2];
	ck_assert_int_eq(pipe(q), 0);
	ck_assert_int_eq(q[0], p[0]);   /* lowest free numbers */
	struct waiter w4 = { .fd = q[0] };
	a = spawn(blocked_reader, &w4);
	weft_t wr = spawn(late_writer, (void *)(intptr_t)q[1]);
	join(a);
	ck_assert_int_eq(w4.n, 5);
	ck_assert_int_eq(join(wr), 5);
	close(q[0]);
	close(q[1]);
}
END_TEST

/* Numbers closed and reused at once by other threads: accept and socket
 * hand out the lowest free number, so the number one thread's weft_close
 * just released is often the next thread's new socket.  A wait on it must
 * wait for the new file, never fail with EBADF because the closer has not
 * quite finished.  Each thread makes a pair, waits on it (nothing to read:
 * its deadline ends it) and closes it, over and over. */
static atomic_long reuse_waits, reuse_wrong;

static void *reuse_churn(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3000; i++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			return (void *)(intptr_t)errno;
		char b;
		errno = 0;
		ssize_t n = weft_read_until(sv[0], &b, 1, weft_now_ns() + 20000);
		if (n != -1 || errno != ETIMEDOUT)
			atomic_fetch_add(&reuse_wrong, 1);
		atomic_fetch_add(&reuse_waits, 1);
		weft_close(sv[0]);
		weft_close(sv[1]);
	}
	return NULL;
}

START_TEST(t_close_and_reuse_race)
{
	setenv("WEFT_QUANTUM_US", "200", 1);   /* preemption inside weft_close too */
	setenv("WEFT_WORKERS", "2", 1);
	ck_assert_int_eq(weft_init(), 0);
	weft_t t[8];
	for (int i = 0; i < 8; i++)
		t[i] = spawn(reuse_churn, NULL);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(join(t[i]), 0);
	long waits = atomic_load(&reuse_waits), wrong = atomic_load(&reuse_wrong);
	ck_assert_int_eq(waits, 8 * 3000);
	ck_assert_msg(wrong == 0, "%ld of %ld waits on a new socket failed (not ETIMEDOUT)", wrong,
	              waits);
}
END_TEST

static void *reset_later(void *arg)
{
	int fd = (int)(intptr_t)arg;
	weft_sleep_ns(20 * MS);
	struct linger lg = { 1, 0 };   /* close sends RST */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	return (void *)(intptr_t)close(fd);
}

START_TEST(t_peer_reset)
{
	start("2");
	int sv[2];
	tcp_pair(sv);
	/* Data in flight from us, then the peer resets. */
	ck_assert_int_eq(weft_write(sv[0], "unread", 6), 6);
	weft_t r = spawn(reset_later, (void *)(intptr_t)sv[1]);
	char b[8];
	errno = 0;
	ck_assert_int_eq(weft_read(sv[0], b, sizeof b), -1);
	ck_assert_int_eq(errno, ECONNRESET);
	ck_assert_int_eq(join(r), 0);
	close(sv[0]);
}
END_TEST

static atomic_int pipe_sigs;
static void on_sigpipe(int sig) { (void)sig; atomic_fetch_add(&pipe_sigs, 1); }

/* The child of t_broken_pipe: weft_write to a pipe nobody reads, with
 * SIGPIPE's default action: it must die of SIGPIPE, as with write. */
static void broken_pipe_child(void)
{
	int p[2];
	if (pipe(p) || weft_init())
		_exit(3);
	close(p[0]);
	weft_write(p[1], "x", 1);
	_exit(4);   /* not reached */
}

START_TEST(t_broken_pipe)
{
	/* The default action first, in a child of our own (before weft). */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		broken_pipe_child();
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGPIPE);

	start("1");
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	close(p[0]);
	/* Ignored: EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	errno = 0;
	ck_assert_int_eq(weft_write(p[1], "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	/* A handler: it runs, and EPIPE. */
	struct sigaction sa = { .sa_handler = on_sigpipe };
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGPIPE, &sa, NULL), 0);
	ck_assert_int_eq(weft_write(p[1], "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_int_eq(atomic_load(&pipe_sigs), 1);
	close(p[1]);
	/* A socket whose peer is gone: the same. */
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	ck_assert_int_eq(weft_send(sv[0], "x", 1, 0), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_int_eq(atomic_load(&pipe_sigs), 2);
	ck_assert_int_eq(weft_send(sv[0], "x", 1, MSG_NOSIGNAL), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_int_eq(atomic_load(&pipe_sigs), 2);
	close(sv[0]);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* From a kernel thread that is not a green thread: libc's calls.           */

static void *pthread_reader(void *arg)
{
	int fd = *(int *)arg;
	char b[8];
	ssize_t n = weft_read(fd, b, sizeof b);   /* blocks this pthread, as read */
	return (void *)(intptr_t)(n == 2 && !memcmp(b, "hi", 2));
}

START_TEST(t_foreign_thread)
{
	start("1");
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, pthread_reader, &p[0]), 0);
	weft_sleep_ns(20 * MS);
	ck_assert_int_eq(weft_write(p[1], "hi", 2), 2);
	void *ok;
	ck_assert_int_eq(pthread_join(t, &ok), 0);
	ck_assert_int_eq((intptr_t)ok, 1);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The poller: no busy polling; readiness while every worker is busy.       */

START_TEST(t_idle_with_waiters_sleeps)
{
	/* A thread waits on a descriptor for 300 ms; the worker should sleep
	 * in the poller meanwhile: a few wake-ups (for timers and the check
	 * of waited numbers), not thousands. */
	start("2");
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	struct waiter w = { .fd = p[0] };
	weft_t r = spawn(blocked_reader, &w);
	weft_sleep_ns(20 * MS);
	weft_stats_t s0, s1;
	ck_assert_int_eq(weft_stats_get(-1, &s0), 0);
	weft_sleep_ns(300 * MS);
	ck_assert_int_eq(weft_stats_get(-1, &s1), 0);
	ck_assert_uint_le(s1.idle_sleeps - s0.idle_sleeps, 20);
	ck_assert_int_eq(weft_write(p[1], "x", 1), 1);
	join(r);
	ck_assert_int_eq(w.n, 1);
	close(p[0]);
	close(p[1]);
}
END_TEST

static void *pthread_write_later(void *arg)
{
	int fd = *(int *)arg;
	struct timespec ts = { 0, 30 * 1000000 };
	nanosleep(&ts, NULL);
	return (void *)(intptr_t)write(fd, "busy", 4);
}

START_TEST(t_readiness_while_workers_busy)
{
	/* One worker, a spinner that never blocks: nobody sleeps in the
	 * poller.  The reader's data comes from a pthread; the monitor's look
	 * at the poller must find it, and the tick give the reader a turn. */
	start("1");
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	weft_t s = spawn(spinner, NULL);
	struct rd r = { .fd = p[0] };
	weft_t rt = spawn(reader, &r);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, pthread_write_later, &p[1]), 0);
	join(rt);
	atomic_store(&stop_spin, true);
	join(s);
	pthread_join(t, NULL);
	ck_assert_int_eq(r.n, 4);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* libc sleep(1) in a green thread: a full second, others run meanwhile.    */

static void *libc_sleep(void *arg)
{
	uint64_t *took = arg, t0 = now_ns();
	unsigned left = sleep(1);
	*took = now_ns() - t0;
	return (void *)(uintptr_t)left;
}

START_TEST(t_libc_sleep_full_second)
{
	start("1");
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	weft_t s = spawn(spinner, NULL);
	uint64_t took = 0;
	weft_t z = spawn(libc_sleep, &took);
	/* I/O on the same worker goes on while it sleeps in the kernel. */
	struct rd r = { .fd = p[0] };
	weft_t rt = spawn(reader, &r);
	weft_t w = spawn(late_writer, (void *)(intptr_t)p[1]);
	join(rt);
	ck_assert_int_eq(r.n, 5);
	ck_assert_int_eq(join(w), 5);
	ck_assert_int_eq(join(z), 0);
	atomic_store(&stop_spin, true);
	join(s);
	ck_assert_msg(took >= 1000000000ull, "sleep(1) returned after %.1f ms", took / 1e6);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* 10,000 connections open at once.                                         */

enum { CONNS = 10000, BATCH = 500 };

static void raise_nofile(rlim_t want)
{
	struct rlimit rl;
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < want) {
		struct rlimit up = { want, want };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)   /* root may raise the ceiling */
			return;
	}
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_msg(rl.rlim_cur >= CONNS + 64, "RLIMIT_NOFILE is %lu: %d descriptors needed",
	              (unsigned long)rl.rlim_cur, CONNS + 64);
}

static int must_read(int fd, void *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = read(fd, (char *)b + got, n - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

/* The client side, a plain process of its own (forked before weft
 * starts): connects CONNS times, BATCH at a time, each batch once the
 * server says it accepted the last (so the listen queue never
 * overflows); once the server says every connection has a thread waiting
 * in weft_read, sends a byte on each and reads each echo, then closes
 * all.  Exit status 0 when every echo came back. */
static void many_client(struct sockaddr_in sa, int ack, int go)
{
	static int fds[CONNS];
	char c;
	for (int i = 0; i < CONNS; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof sa))
			_exit(10);
		if ((i + 1) % BATCH == 0 && must_read(ack, &c, 1))
			_exit(11);
	}
	if (must_read(go, &c, 1))
		_exit(12);
	for (int i = 0; i < CONNS; i++)
		if (write(fds[i], "e", 1) != 1)
			_exit(13);
	for (int i = 0; i < CONNS; i++)
		if (must_read(fds[i], &c, 1) || c != 'e')
			_exit(14);
	for (int i = 0; i < CONNS; i++)
		close(fds[i]);
	_exit(0);
}

static atomic_int many_echoed, many_done, many_waiting;

static void *many_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char c;
	atomic_fetch_add(&many_waiting, 1);
	if (weft_read(fd, &c, 1) == 1 && weft_write(fd, &c, 1) == 1)
		atomic_fetch_add(&many_echoed, 1);
	if (weft_read(fd, &c, 1) == 0)   /* the client closed */
		atomic_fetch_add(&many_done, 1);
	weft_close(fd);
	return NULL;
}

START_TEST(t_ten_thousand_connections)
{
	raise_nofile(CONNS + 1024);
	struct sockaddr_in sa;
	int l = tcp_listener(&sa, BATCH * 2);
	int ack[2], go[2];
	ck_assert_int_eq(pipe(ack), 0);
	ck_assert_int_eq(pipe(go), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(l);
		many_client(sa, ack[0], go[0]);
	}
	start("2");
	weft_attr_t a;
	ck_assert_int_eq(weft_attr_init(&a), 0);
	ck_assert_int_eq(weft_attr_setdetachstate(&a, WEFT_CREATE_DETACHED), 0);
	ck_assert_int_eq(weft_attr_setstacksize(&a, 16 << 10), 0);
	for (int i = 0; i < CONNS; i++) {
		int fd = weft_accept4(l, NULL, NULL, SOCK_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		weft_t t;
		ck_assert_int_eq(weft_create(&t, &a, many_conn, (void *)(intptr_t)fd), 0);
		if ((i + 1) % BATCH == 0)
			ck_assert_int_eq(weft_write(ack[1], "a", 1), 1);
	}
	/* All open at once, each with a thread parked in weft_read. */
	ck_assert(wait_atomic(&many_waiting, CONNS, 60000));
	weft_sleep_ns(50 * MS);
	weft_stats_t st;
	ck_assert_int_eq(weft_stats_get(-1, &st), 0);
	ck_assert_uint_ge(st.alive, CONNS);
	ck_assert_int_eq(weft_write(go[1], "g", 1), 1);
	ck_assert(wait_atomic(&many_done, CONNS, 120000));
	ck_assert_int_eq(atomic_load(&many_echoed), CONNS);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client status %#x", status);
	close(l);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The echo deadlock: a thread-per-connection server and its clients with
 * plain accept/connect/read/write, 2 workers, default settings — in one
 * process, and as two processes — 100 runs each, each a fresh process
 * (this program re-executed with one of the roles below), none may hang. */

enum { ECHO_CLIENTS = 64, ECHO_MSGS = 16, ECHO_RUNS = 100 };

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char b[64];
	for (;;) {
		ssize_t n = read(fd, b, sizeof b);
		if (n <= 0 || write(fd, b, (size_t)n) != n)
			break;
	}
	close(fd);
	return NULL;
}

static void *echo_acceptor(void *arg)
{
	int l = (int)(intptr_t)arg;
	weft_t t[ECHO_CLIENTS];
	for (int i = 0; i < ECHO_CLIENTS; i++) {
		int fd = accept(l, NULL, NULL);
		if (fd < 0 || weft_create(&t[i], NULL, echo_conn, (void *)(intptr_t)fd))
			return (void *)1;
	}
	for (int i = 0; i < ECHO_CLIENTS; i++)
		weft_join(t[i], NULL);
	return NULL;
}

static struct sockaddr_in echo_sa;
static atomic_int echo_bad;

static void *echo_client(void *arg)
{
	(void)arg;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&echo_sa, sizeof echo_sa)) {
		atomic_fetch_add(&echo_bad, 1);
		return NULL;
	}
	for (int i = 0; i < ECHO_MSGS; i++) {
		char m[32], r[32];
		int len = snprintf(m, sizeof m, "%d:%d", fd, i), have = 0;
		if (write(fd, m, (size_t)len) != len)
			break;
		while (have < len) {
			ssize_t n = read(fd, r + have, (size_t)(len - have));
			if (n <= 0)
				break;
			have += (int)n;
		}
		if (have != len || memcmp(m, r, (size_t)len))
			atomic_fetch_add(&echo_bad, 1);
	}
	close(fd);
	return NULL;
}

static int echo_clients(void)
{
	weft_t t[ECHO_CLIENTS];
	for (int i = 0; i < ECHO_CLIENTS; i++)
		if (weft_create(&t[i], NULL, echo_client, NULL))
			return 20;
	for (int i = 0; i < ECHO_CLIENTS; i++)
		weft_join(t[i], NULL);
	return atomic_load(&echo_bad) ? 21 : 0;
}

/* The roles, as this program's first argument (argv[2]: the listener or
 * the port). */
static int echo_role(const char *role, const char *arg)
{
	setenv("WEFT_WORKERS", "2", 1);
	unsetenv("WEFT_QUANTUM_US");
	if (weft_init())
		return 30;
	if (!strcmp(role, "--echo-server")) {
		void *r;
		weft_t a;
		if (weft_create(&a, NULL, echo_acceptor, (void *)(intptr_t)atoi(arg)))
			return 31;
		weft_join(a, &r);
		return r ? 32 : 0;
	}
	echo_sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(arg)),
	                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (!strcmp(role, "--echo-client"))
		return echo_clients();
	/* --echo-both: server and clients in this one process. */
	int l = socket(AF_INET, SOCK_STREAM, 0);
	echo_sa.sin_port = 0;
	socklen_t len = sizeof echo_sa;
	if (bind(l, (struct sockaddr *)&echo_sa, sizeof echo_sa) || listen(l, 128) ||
	    getsockname(l, (struct sockaddr *)&echo_sa, &len))
		return 33;
	weft_t a;
	if (weft_create(&a, NULL, echo_acceptor, (void *)(intptr_t)l))
		return 34;
	int rc = echo_clients();
	void *r;
	weft_join(a, &r);
	return rc ? rc : r ? 35 : 0;
}

/* This program again, with a role: through the emulator when the suite
 * runs under one (WEFT_TEST_EMULATOR, set by tests/CMakeLists.txt for a
 * cross build: qemu-user cannot execute the foreign binary itself). */
static pid_t run_role(const char *role, const char *arg)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	const char *emu = getenv("WEFT_TEST_EMULATOR");
	pid_t pid = n > 0 ? fork() : -1;
	if (pid == 0) {
		self[n] = '\0';
		if (emu && *emu)
			execlp(emu, emu, self, role, arg, (char *)NULL);
		else
			execl(self, "test_io", role, arg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Wait for pid for at most `ms`: its status, or -1 after killing it. */
static int reap(pid_t pid, unsigned ms)
{
	uint64_t end = now_ns() + ms * MS;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (now_ns() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(2000);
	}
}

#define ECHO_BOUND_MS 60000   /* a run that takes this long has hung */

START_TEST(t_echo_one_process_100_runs)
{
	for (int run = 0; run < ECHO_RUNS; run++) {
		int st = reap(run_role("--echo-both", "0"), ECHO_BOUND_MS);
		ck_assert_msg(st != -1, "run %d hung", run);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "run %d: status %#x", run, st);
	}
}
END_TEST

START_TEST(t_echo_two_processes_100_runs)
{
	for (int run = 0; run < ECHO_RUNS; run++) {
		struct sockaddr_in sa;
		int l = tcp_listener(&sa, 128);
		ck_assert_int_eq(fcntl(l, F_SETFD, 0), 0);   /* the server inherits it */
		char lfd[16], port[16];
		snprintf(lfd, sizeof lfd, "%d", l);
		snprintf(port, sizeof port, "%d", ntohs(sa.sin_port));
		pid_t srv = run_role("--echo-server", lfd);
		close(l);
		pid_t cli = run_role("--echo-client", port);
		int cs = reap(cli, ECHO_BOUND_MS), ss = reap(srv, ECHO_BOUND_MS);
		ck_assert_msg(cs != -1 && ss != -1, "run %d hung (client %d, server %d)", run, cs, ss);
		ck_assert_msg(WIFEXITED(cs) && WEXITSTATUS(cs) == 0, "run %d: client %#x", run, cs);
		ck_assert_msg(WIFEXITED(ss) && WEXITSTATUS(ss) == 0, "run %d: server %#x", run, ss);
	}
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 3 && !strncmp(argv[1], "--echo-", 7))
		return echo_role(argv[1], argv[2]);
	Suite *s = suite_create("io");
	TCase *tc = tcase_create("calls");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_read_parks_only_the_caller);
	tcase_add_test(tc, t_socket_calls);
	tcase_add_test(tc, t_datagram_calls);
	tcase_add_test(tc, t_msg_calls);
	tcase_add_test(tc, t_big_writes);
	tcase_add_test(tc, t_accept_connect);
	tcase_add_test(tc, t_poll_and_fd_wait);
	tcase_add_test(tc, t_deadlines);
	tcase_add_test(tc, t_program_settings);
	tcase_add_test(tc, t_descriptor_kinds);
	tcase_add_test(tc, t_bad_descriptors);
	tcase_add_test(tc, t_close_while_waiting);
	tcase_add_test(tc, t_close_and_reuse_race);
	tcase_add_test(tc, t_peer_reset);
	tcase_add_test(tc, t_broken_pipe);
	tcase_add_test(tc, t_foreign_thread);
	tcase_add_test(tc, t_idle_with_waiters_sleeps);
	tcase_add_test(tc, t_readiness_while_workers_busy);
	tcase_add_test(tc, t_libc_sleep_full_second);
	suite_add_tcase(s, tc);
	TCase *big = tcase_create("scale");
	tcase_set_timeout(big, 300);
	tcase_add_test(big, t_ten_thousand_connections);
	tcase_add_test(big, t_echo_one_process_100_runs);
	tcase_add_test(big, t_echo_two_processes_100_runs);
	suite_add_tcase(s, big);
	return weft_check_run(s);
}
