/*
 * bench_io.c — blocking I/O: the poller and the drop-in calls (src/io), and
 * the hand-off of workers blocked in the kernel (docs/design.md, "Blocking
 * I/O", "Blocked workers").
 *
 *   echo-pingpong  one TCP connection over loopback, one byte-string echoed
 *                  back and forth n times; the figure is the round trip.
 *       weft     WEFT_WORKERS=1, a client and a server green thread,
 *                weft_write/weft_read on blocking sockets
 *       c        one thread, an epoll loop over both ends (level-triggered,
 *                each readable end read once per event): the floor
 *       go       GOMAXPROCS=1, a client and a server goroutine on net.Conn
 *   idle-conns     `conns` connections open at once, each with a thread
 *                  blocked reading it into a 1 KiB buffer; the figure is the
 *                  growth of the resident set per connection (stack, buffer,
 *                  thread, descriptor record).
 *       weft     a green thread per connection (default stack), weft_read
 *       pthread  a kernel thread per connection (default attributes), read
 *       go       a goroutine per connection, conn.Read
 *   stuck-worker   on one worker, a thread calls usleep(20 ms) without
 *                  telling weft while another is ready to run; the figure is
 *                  how long the ready one waits (the monitor retakes the
 *                  stuck worker and a spare runs it), median of `rounds`.
 *       go       GOMAXPROCS=1, a raw nanosleep system call: sysmon retakes
 *                the P the same way
 *   libc-sleep     one worker, 3 spinners and a thread calling libc's
 *                  sleep(1); the figure is the time from the call to the
 *                  first spinner step after it (the stall), beside the
 *                  longest time no spinner ran during the second and the
 *                  sleep's length.
 *       go       GOMAXPROCS=1, a raw nanosleep of 1 s beside 3 spinners
 *
 * In idle-conns the client ends live in a helper process of their own (a
 * forked child in C, this program re-executed in Go), so the measured
 * process holds one descriptor per connection; RLIMIT_NOFILE is raised to
 * what it needs where the process may.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>
#include "harness.h"

static struct bench_param params[] = {
	{ "n", 100000, "echo-pingpong round trips" },
	{ "size", 32, "echo-pingpong message bytes" },
	{ "conns", 10000, "idle-conns connections" },
	{ "rounds", 21, "stuck-worker rounds" },
};

/* A connected pair of TCP sockets over loopback, TCP_NODELAY, blocking. */
static void tcp_pair(int l, const struct sockaddr_in *sa, int sv[2])
{
	int one = 1;
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sv[0] < 0 || connect(sv[0], (const struct sockaddr *)sa, sizeof *sa))
		bench_fail("connect: %s", strerror(errno));
	sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (sv[1] < 0)
		bench_fail("accept: %s", strerror(errno));
	setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int listener(struct sockaddr_in *sa, int backlog)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof *sa;
	if (l < 0 || bind(l, (struct sockaddr *)sa, sizeof *sa) || listen(l, backlog) ||
	    getsockname(l, (struct sockaddr *)sa, &len))
		bench_fail("listen: %s", strerror(errno));
	return l;
}

static void read_full(int fd, char *b, size_t n, int weft)
{
	size_t have = 0;
	while (have < n) {
		ssize_t k = weft ? weft_read(fd, b + have, n - have) : read(fd, b + have, n - have);
		if (k <= 0)
			bench_fail("read: %s", k ? strerror(errno) : "end of file");
		have += (size_t)k;
	}
}

/* ------------------------------------------------------- echo-pingpong */

static int pp_fd[2];

static void *pp_server(void *arg)
{
	(void)arg;
	char b[4096];
	for (;;) {
		ssize_t n = weft_read(pp_fd[1], b, sizeof b);
		if (n <= 0 || weft_write(pp_fd[1], b, (size_t)n) != n)
			break;
	}
	return NULL;
}

static double pp_weft_round(long n, size_t size)
{
	char *b = calloc(1, size);
	bench_begin();
	for (long i = 0; i < n; i++) {
		if (weft_write(pp_fd[0], b, size) != (ssize_t)size)
			bench_fail("write: %s", strerror(errno));
		read_full(pp_fd[0], b, size, 1);
	}
	double ns = bench_end((double)n);
	free(b);
	return ns;
}

/* The floor: both ends in one epoll loop, as a C programmer writes it. */
static double pp_c_round(int ep, long n, size_t size)
{
	char *b = calloc(1, size), *s = calloc(1, size);
	size_t srv_have = 0, cli_have = 0;
	bench_begin();
	if (write(pp_fd[0], b, size) != (ssize_t)size)
		bench_fail("write: %s", strerror(errno));
	for (long done = 0; done < n;) {
		struct epoll_event ev[2];
		int k = epoll_wait(ep, ev, 2, -1);
		for (int i = 0; i < k; i++) {
			if (ev[i].data.fd == pp_fd[1]) {   /* the server echoes what came */
				ssize_t r = read(pp_fd[1], s + srv_have, size - srv_have);
				if (r <= 0)
					bench_fail("server read");
				srv_have += (size_t)r;
				if (srv_have == size) {
					if (write(pp_fd[1], s, size) != (ssize_t)size)
						bench_fail("server write");
					srv_have = 0;
				}
			} else {                           /* the client sends again */
				ssize_t r = read(pp_fd[0], b + cli_have, size - cli_have);
				if (r <= 0)
					bench_fail("client read");
				cli_have += (size_t)r;
				if (cli_have == size) {
					cli_have = 0;
					if (++done < n && write(pp_fd[0], b, size) != (ssize_t)size)
						bench_fail("client write");
				}
			}
		}
	}
	double ns = bench_end((double)n);
	free(b);
	free(s);
	return ns;
}

static void run_pingpong(int impl)
{
	long n = bench_param("n");
	size_t size = (size_t)bench_param("size");
	if (impl == BENCH_WEFT)
		bench_weft_start();
	struct sockaddr_in sa;
	int l = listener(&sa, 4);
	tcp_pair(l, &sa, pp_fd);
	double ns;
	if (impl == BENCH_WEFT) {
		weft_t t;
		if (weft_create(&t, NULL, pp_server, NULL))
			bench_fail("weft_create");
		weft_stats_t s0;
		pp_weft_round(n / 10 + 1, size);
		weft_stats_get(-1, &s0);
		ns = pp_weft_round(n, size);
		bench_weft_stats(&s0, (double)n);
	} else {
		int ep = epoll_create1(EPOLL_CLOEXEC);
		for (int i = 0; i < 2; i++) {
			struct epoll_event e = { .events = EPOLLIN, .data.fd = pp_fd[i] };
			epoll_ctl(ep, EPOLL_CTL_ADD, pp_fd[i], &e);
		}
		pp_c_round(ep, n / 10 + 1, size);
		ns = pp_c_round(ep, n, size);
	}
	bench_result("rtt", BENCH_NS, ns);
	bench_result("cpu", BENCH_NS, bench_cpu_per_op());
}

/* ---------------------------------------------------------- idle-conns */

static atomic_long idle_arrived;

static void *idle_weft(void *arg)
{
	char buf[1024];
	atomic_fetch_add(&idle_arrived, 1);
	ssize_t n = weft_read((int)(intptr_t)arg, buf, sizeof buf);
	return (void *)(intptr_t)n;
}

static void *idle_pthread(void *arg)
{
	char buf[1024];
	atomic_fetch_add(&idle_arrived, 1);
	ssize_t n = read((int)(intptr_t)arg, buf, sizeof buf);
	return (void *)(intptr_t)n;
}

static void raise_nofile(long want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= (rlim_t)want)
		return;
	rl.rlim_cur = rl.rlim_max = (rlim_t)want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max >= (rlim_t)want) {
		rl.rlim_cur = (rlim_t)want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			return;
	}
	bench_fail("RLIMIT_NOFILE: %ld descriptors needed", want);
}

enum { IDLE_BATCH = 1000 };

/* The client ends live in a process of their own (forked before weft
 * starts), so that the measured process holds one descriptor per
 * connection: it connects n times, IDLE_BATCH at a time, each batch once
 * the server has accepted the last (a byte on `ack`, so the listen queue
 * never overflows), says so on `up`, and keeps the connections until `ack`
 * is closed. */
static void idle_client(const struct sockaddr_in *sa, long n, int ack, int up)
{
	raise_nofile(n + 64);
	char c;
	for (long i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof *sa))
			_exit(3);
		if ((i + 1) % IDLE_BATCH == 0 || i + 1 == n) {
			if (write(up, "c", 1) != 1 || read(ack, &c, 1) != 1)
				_exit(4);
		}
	}
	while (read(ack, &c, 1) > 0)
		;
	_exit(0);
}

static void run_idle_conns(int impl)
{
	long n = bench_param("conns");
	raise_nofile(n + 64);
	struct sockaddr_in sa;
	int l = listener(&sa, 4096), ack[2], up[2];
	if (pipe2(ack, O_CLOEXEC) || pipe2(up, O_CLOEXEC))
		bench_fail("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		bench_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(ack[1]);
		close(up[0]);
		idle_client(&sa, n, ack[0], up[1]);
	}
	close(ack[0]);
	close(up[1]);
	if (impl == BENCH_WEFT)
		bench_weft_start();
	/* The baseline after one connection and thread came and went (on a
	 * listener of its own: the client process is queueing on l). */
	struct sockaddr_in wsa;
	int wl = listener(&wsa, 4), warm[2];
	tcp_pair(wl, &wsa, warm);
	close(wl);
	close(warm[0]);
	if (impl == BENCH_WEFT) {
		weft_t t;
		weft_create(&t, NULL, idle_weft, (void *)(intptr_t)warm[1]);
		weft_join(t, NULL);
	} else {
		pthread_t t;
		pthread_create(&t, NULL, idle_pthread, (void *)(intptr_t)warm[1]);
		pthread_join(t, NULL);
	}
	close(warm[1]);
	atomic_store(&idle_arrived, 0);
	usleep(20000);
	long long rss0 = bench_rss_bytes();
	for (long i = 0; i < n; i++) {
		char c;
		if (i % IDLE_BATCH == 0 && read(up[0], &c, 1) != 1)
			bench_fail("the client process failed");
		int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC), e;
		if (fd < 0)
			bench_fail("accept: %s", strerror(errno));
		if (impl == BENCH_WEFT) {
			weft_attr_t a;
			weft_attr_init(&a);
			weft_attr_setdetachstate(&a, WEFT_CREATE_DETACHED);
			weft_t t;
			e = weft_create(&t, &a, idle_weft, (void *)(intptr_t)fd);
		} else {
			pthread_attr_t a;
			pthread_attr_init(&a);
			pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
			pthread_t t;
			e = pthread_create(&t, &a, idle_pthread, (void *)(intptr_t)fd);
			pthread_attr_destroy(&a);
		}
		if (e)
			bench_fail("creating thread %ld: %s", i, strerror(e));
		if ((i + 1) % IDLE_BATCH == 0 || i + 1 == n) {
			if (write(ack[1], "a", 1) != 1)
				bench_fail("the client process is gone");
		}
	}
	while (atomic_load(&idle_arrived) < n)
		usleep(1000);
	usleep(100000);   /* the last arrivals finish parking */
	long long rss1 = bench_rss_bytes();
	bench_result("rss/conn", BENCH_BYTES, (double)(rss1 - rss0) / (double)n);
	bench_result("rss", BENCH_BYTES, (double)rss1);
	close(ack[1]);   /* the client process ends */
	waitpid(pid, NULL, 0);
}

/* -------------------------------------------------------- stuck-worker */

static _Atomic uint64_t stuck_at;

static void *stuck(void *arg)
{
	(void)arg;
	atomic_store(&stuck_at, bench_now_ns());
	usleep(20000);   /* not announced: the worker sleeps in the kernel */
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void run_stuck_worker(int impl)
{
	(void)impl;
	bench_weft_start();
	long rounds = bench_param("rounds");
	double *d = calloc((size_t)rounds, sizeof *d);
	weft_stats_t s0, s1;
	weft_stats_get(-1, &s0);
	for (long r = 0; r < rounds; r++) {
		weft_t t;
		/* The child runs first; this thread waits in the stuck worker's
		 * queue until a spare takes it. */
		if (weft_create(&t, NULL, stuck, NULL))
			bench_fail("weft_create");
		d[r] = (double)(bench_now_ns() - atomic_load(&stuck_at));
		weft_join(t, NULL);
	}
	weft_stats_get(-1, &s1);
	qsort(d, (size_t)rounds, sizeof *d, cmp_double);
	bench_result("handoff", BENCH_NS, d[rounds / 2]);
	bench_result("max", BENCH_NS, d[rounds - 1]);
	bench_result("weft.handoffs", BENCH_COUNT, (double)(s1.handoffs - s0.handoffs));
	free(d);
}

/* ---------------------------------------------------------- libc-sleep */

static atomic_bool ls_stop;
static _Atomic uint64_t ls_last;     /* when some spinner last ran */
static _Atomic uint64_t ls_from, ls_to;
static _Atomic uint64_t ls_first;    /* the first spinner step after ls_from */
static _Atomic uint64_t ls_gap;      /* longest time no spinner ran, in the window */

static void *ls_spinner(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&ls_stop, memory_order_relaxed)) {
		uint64_t now = bench_now_ns();
		uint64_t prev = atomic_exchange_explicit(&ls_last, now, memory_order_relaxed);
		uint64_t from = atomic_load_explicit(&ls_from, memory_order_relaxed);
		uint64_t to = atomic_load_explicit(&ls_to, memory_order_relaxed);
		if (!from || now < from || (to && prev > to))
			continue;
		uint64_t none = 0;
		atomic_compare_exchange_strong(&ls_first, &none, now);
		if (now > prev && now - prev > atomic_load_explicit(&ls_gap, memory_order_relaxed))
			atomic_store_explicit(&ls_gap, now - prev, memory_order_relaxed);
	}
	return NULL;
}

static void *ls_sleeper(void *arg)
{
	(void)arg;
	uint64_t t0 = bench_now_ns();
	atomic_store(&ls_from, t0);
	unsigned left = sleep(1);
	uint64_t t1 = bench_now_ns();
	atomic_store(&ls_to, t1);
	return (void *)(uintptr_t)(left ? 0 : t1 - t0);
}

static void run_libc_sleep(int impl)
{
	(void)impl;
	bench_weft_start();
	weft_t sp[3], z;
	for (int i = 0; i < 3; i++)
		if (weft_create(&sp[i], NULL, ls_spinner, NULL))
			bench_fail("weft_create");
	weft_sleep_ns(50000000);   /* the spinners share the worker */
	if (weft_create(&z, NULL, ls_sleeper, NULL))
		bench_fail("weft_create");
	void *slept;
	weft_join(z, &slept);
	weft_sleep_ns(20000000);
	atomic_store(&ls_stop, true);
	for (int i = 0; i < 3; i++)
		weft_join(sp[i], NULL);
	if (!slept)
		bench_fail("sleep(1) returned early");
	/* The stall: from the call into sleep() to the first spinner step
	 * after it.  The longest gap of the whole second also counts the
	 * times the kernel ran other processes instead of this one. */
	bench_result("stall", BENCH_NS, (double)(atomic_load(&ls_first) - atomic_load(&ls_from)));
	bench_result("max-gap", BENCH_NS, (double)atomic_load(&ls_gap));
	bench_result("slept", BENCH_NS, (double)(uintptr_t)slept);
}

static const struct bench_case cases[] = {
	{ .name = "echo-pingpong", .what = "round trip, 1 TCP connection over loopback, 1 worker",
	  .primary = "rtt", .impls = BENCH_WEFT | BENCH_C | BENCH_GO, .weft_workers = 1,
	  .pin_one_cpu = 1, .run = run_pingpong },
	{ .name = "idle-conns", .what = "resident memory per idle connection (its thread blocked "
	  "in a read)", .primary = "rss/conn", .impls = BENCH_WEFT | BENCH_PTHREAD | BENCH_GO,
	  .weft_workers = 2, .run = run_idle_conns },
	{ .name = "stuck-worker", .what = "wait of a ready thread behind one blocked in an "
	  "unannounced usleep, 1 worker (median)", .primary = "handoff",
	  .impls = BENCH_WEFT | BENCH_GO, .weft_workers = 1, .run = run_stuck_worker },
	{ .name = "libc-sleep", .what = "time 3 spinners stop when a thread calls libc sleep(1), "
	  "1 worker", .primary = "stall", .impls = BENCH_WEFT | BENCH_GO,
	  .weft_workers = 1, .run = run_libc_sleep },
};

int main(int argc, char **argv)
{
	return bench_main(argc, argv, "bench_io", cases, BENCH_COUNTOF(cases), params,
	                  BENCH_COUNTOF(params));
}
