/*
 * echo.c — an echo server with one green thread per connection, and a
 * load client with one green thread per connection, on weft's drop-in
 * I/O calls (weft_accept, weft_read, weft_write...).
 *
 *   echo server [--port P]             serve until interrupted
 *   echo client --port P [options]     load a server, print the figures
 *   echo [options]                     both in this one process, verdict
 *
 * Every call that would block parks only its green thread: two workers
 * serve hundreds of connections, and the client's threads wait for their
 * echoes beside the server's threads that produce them.  With plain
 * read/write and no monitor this very program deadlocked on two workers
 * (docs/design.md, "Blocked workers"); with weft's calls no worker ever
 * blocks in the kernel.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft.h>
#include "demo_common.h"

#define MAX_SIZE 65536

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
"usage: %s [server|client] [--port P] [--conns N] [--msgs N] [--size B] [--workers N]\n"
"\n"
"An echo server (a green thread per connection) and a load client (a green\n"
"thread per connection, each sending --msgs messages of --size bytes and\n"
"waiting for each echo).  Without server or client, both run in this process.\n"
"\n"
"  --port P     server: port to listen on (default 0: any; printed);\n"
"               client: the server's port on 127.0.0.1 (required)\n"
"  --conns N    client connections (default 200)\n"
"  --msgs N     messages per connection (default 100)\n"
"  --size B     bytes per message (default 32)\n"
"  --workers N  sets WEFT_WORKERS\n"
"\n"
"Exit status: 0 when every echo came back intact; 1 otherwise; 2 bad usage\n"
"or weft_init failed.\n", prog);
}

static const char *prog;

/* ---------------------------------------------------------------- server */

static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	for (;;) {
		ssize_t n = weft_read(fd, buf, sizeof buf);
		if (n <= 0) {
			if (n < 0 && errno != ECONNRESET)
				fprintf(stderr, "%s: server: read: %s\n", prog, strerror(errno));
			break;
		}
		ssize_t w = weft_write(fd, buf, (size_t)n);
		if (w != n) {
			if (w >= 0 || (errno != EPIPE && errno != ECONNRESET))
				fprintf(stderr, "%s: server: write of %zd bytes returned %zd: %s\n", prog, n,
				        w, w < 0 ? strerror(errno) : "short");
			break;
		}
	}
	weft_close(fd);
	return NULL;
}

static void *serve(void *arg)
{
	int l = (int)(intptr_t)arg;
	weft_attr_t a;
	weft_attr_init(&a);
	weft_attr_setdetachstate(&a, WEFT_CREATE_DETACHED);
	weft_attr_setname(&a, "echo-conn");
	for (;;) {
		int fd = weft_accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ECONNABORTED) {
				weft_sleep_ns(1000000);
				continue;
			}
			fprintf(stderr, "%s: accept: %s\n", prog, strerror(errno));
			break;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		weft_t t;
		int e = weft_create(&t, &a, serve_conn, (void *)(intptr_t)fd);
		if (e) {
			fprintf(stderr, "%s: server: weft_create: %s\n", prog, strerror(e));
			weft_close(fd);
		}
	}
	weft_attr_destroy(&a);
	return NULL;
}

static int listen_on(int port, struct sockaddr_in *sa)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	*sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof *sa;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (l < 0 || bind(l, (struct sockaddr *)sa, sizeof *sa) || listen(l, 4096) ||
	    getsockname(l, (struct sockaddr *)sa, &len)) {
		fprintf(stderr, "%s: listen on port %d: %s\n", prog, port, strerror(errno));
		return -1;
	}
	return l;
}

/* ---------------------------------------------------------------- client */

static struct sockaddr_in server;
static int msgs = 100, size = 32;
static atomic_long good, bad;
static uint64_t *rtt;          /* every round trip, ns, for the percentiles */
static atomic_long nrtt;
static atomic_int failed;      /* the first connection that failed reports why */

/* Say what went wrong on one connection, once per run: which step, after
 * how many echoes, and errno (or "end of file"). */
static void client_failed(const char *step, int i, ssize_t r, int err)
{
	if (atomic_exchange(&failed, 1))
		return;
	fprintf(stderr, "%s: client: %s failed after %d echoes: %s\n", prog, step, i,
	        r == 0 ? "end of file" : err ? strerror(err) : "the bytes differ");
}

static void *client_conn(void *arg)
{
	(void)arg;
	char *out = malloc((size_t)size), *in = malloc((size_t)size);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (!out || !in || fd < 0 || weft_connect(fd, (struct sockaddr *)&server, sizeof server)) {
		client_failed(!out || !in ? "malloc" : fd < 0 ? "socket" : "connect", 0, -1, errno);
		atomic_fetch_add(&bad, msgs);
		goto out;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	for (int i = 0; i < msgs; i++) {
		for (int k = 0; k < size; k++)
			out[k] = (char)(fd * 31 + i * 7 + k);
		uint64_t t0 = now_ns();
		ssize_t w = weft_write(fd, out, (size_t)size);
		if (w != size) {
			client_failed("write", i, w, errno);
			atomic_fetch_add(&bad, msgs - i);
			break;
		}
		int have = 0;
		while (have < size) {
			ssize_t n = weft_read(fd, in + have, (size_t)(size - have));
			if (n <= 0) {
				client_failed("read", i, n, errno);
				break;
			}
			have += (int)n;
		}
		rtt[atomic_fetch_add(&nrtt, 1)] = now_ns() - t0;
		if (have == size && !memcmp(in, out, (size_t)size))
			atomic_fetch_add(&good, 1);
		else {
			if (have == size)
				client_failed("compare", i, -1, 0);
			atomic_fetch_add(&bad, 1);
		}
	}
out:
	if (fd >= 0)
		weft_close(fd);
	free(out);
	free(in);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int run_client(int conns)
{
	rtt = calloc((size_t)conns * (size_t)msgs, sizeof *rtt);
	weft_t *t = calloc((size_t)conns, sizeof *t);
	if (!rtt || !t) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 2;
	}
	uint64_t t0 = now_ns();
	int made = 0;
	for (; made < conns; made++)
		if (demo_create(prog, &t[made], client_conn, NULL, "client/%d", made))
			break;
	for (int i = 0; i < made; i++)
		weft_join(t[i], NULL);
	double secs = (double)(now_ns() - t0) / 1e9;
	long n = atomic_load(&nrtt);
	qsort(rtt, (size_t)n, sizeof *rtt, cmp_u64);
	printf("%d connections x %d messages of %d bytes: %ld echoed, %ld bad, %.2f s, %.0f round "
	       "trips/s; round trip median %.1f us, p99 %.1f us\n",
	       made, msgs, size, atomic_load(&good), atomic_load(&bad), secs,
	       (double)n / secs, n ? rtt[n / 2] / 1e3 : 0.0, n ? rtt[n * 99 / 100] / 1e3 : 0.0);
	bool ok = made == conns && atomic_load(&good) == (long)conns * msgs && !atomic_load(&bad);
	printf("%s: %s\n", prog, ok ? "every echo came back intact" : "ECHOES MISSING OR WRONG");
	free(t);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	prog = argv[0];
	const char *mode = "both";
	if (argc > 1 && (!strcmp(argv[1], "server") || !strcmp(argv[1], "client"))) {
		mode = argv[1];
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' }, { "conns", required_argument, NULL, 'c' },
		{ "msgs", required_argument, NULL, 'm' }, { "size", required_argument, NULL, 's' },
		{ "workers", required_argument, NULL, 'w' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int port = -1, conns = 200, c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int bad_arg = 0;
		switch (c) {
		case 'p': bad_arg = parse_int(optarg, 0, 65535, &port); break;
		case 'c': bad_arg = parse_int(optarg, 1, 100000, &conns); break;
		case 'm': bad_arg = parse_int(optarg, 1, 100000000, &msgs); break;
		case 's': bad_arg = parse_int(optarg, 1, MAX_SIZE, &size); break;
		case 'w': setenv("WEFT_WORKERS", optarg, 1); break;
		case 'h': usage(stdout, prog); return 0;
		default: bad_arg = 1; break;
		}
		if (bad_arg) {
			usage(stderr, prog);
			return 2;
		}
	}
	if (optind != argc || (!strcmp(mode, "client") && port < 0)) {
		usage(stderr, prog);
		return 2;
	}
	int e = weft_init();
	if (e) {
		fprintf(stderr, "%s: weft_init: %s\n", prog, strerror(e));
		return 2;
	}
	if (!strcmp(mode, "client")) {
		server = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		return run_client(conns);
	}
	int l = listen_on(port < 0 ? 0 : port, &server);
	if (l < 0)
		return 2;
	weft_t s;
	if (demo_create(prog, &s, serve, (void *)(intptr_t)l, "acceptor", 0))
		return 2;
	if (!strcmp(mode, "server")) {
		printf("%s: listening on 127.0.0.1:%d with %d workers\n", prog, ntohs(server.sin_port),
		       weft_workers());
		fflush(stdout);
		weft_join(s, NULL);
		return 1;
	}
	printf("%s: server and client in one process, %d workers\n", prog, weft_workers());
	/* Returning from main ends the process, server included. */
	return run_client(conns);
}
