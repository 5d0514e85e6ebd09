/*
 * httpd.c — a minimal HTTP/1.1 responder: one green thread per connection,
 * keep-alive, written as plain blocking code on weft's drop-in calls.
 *
 *   httpd [--port P] [--workers N]     serve 127.0.0.1:P until interrupted
 *   httpd --check [--conns N]          serve, load itself, verdict
 *
 * Every request, whatever its path, gets the same small text body.  A
 * connection stays open until the client closes it, asks for
 * "Connection: close", or speaks HTTP/1.0 without keep-alive.  Pipelined
 * requests are answered in order, together.  It is the weft side of
 * bench/bench_httpd (wrk against it and against the same responder in Go).
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
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft.h>
#include "demo_common.h"

static const char body[] = "Hello from weft\n";
#define REQ_MAX 8192   /* a request's head must fit in this */

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
"usage: %s [--port P] [--workers N] [--check] [--conns N] [--requests N]\n"
"\n"
"A minimal HTTP/1.1 keep-alive responder, one green thread per connection.\n"
"\n"
"  --port P      listen on 127.0.0.1:P (default 8080; 0: any, printed)\n"
"  --workers N   sets WEFT_WORKERS\n"
"  --check       also run a client here (--conns connections, --requests\n"
"                each, default 100 x 100; some pipelined), then exit\n"
"\n"
"Exit status: 0 with --check when every response was right; 1 otherwise;\n"
"2 bad usage or weft_init failed.\n", prog);
}

static const char *prog;

/* The end of the head of the request at buf[0..n), or NULL if incomplete. */
static const char *head_end(const char *buf, size_t n)
{
	const char *e = memmem(buf, n, "\r\n\r\n", 4);
	return e ? e + 4 : NULL;
}

/* A header's value in head (case-insensitive name), copied to v; false if
 * absent. */
static bool header(const char *head, const char *end, const char *name, char *v, size_t vlen)
{
	size_t nl = strlen(name);
	for (const char *p = memchr(head, '\n', (size_t)(end - head)); p && p + 1 < end;
	     p = memchr(p + 1, '\n', (size_t)(end - p - 1))) {
		const char *line = p + 1;
		if ((size_t)(end - line) > nl && !strncasecmp(line, name, nl) && line[nl] == ':') {
			const char *s = line + nl + 1, *e = memchr(s, '\r', (size_t)(end - s));
			while (s < e && *s == ' ')
				s++;
			size_t l = (size_t)(e - s) < vlen - 1 ? (size_t)(e - s) : vlen - 1;
			memcpy(v, s, l);
			v[l] = '\0';
			return true;
		}
	}
	return false;
}

/* Append the response to a request at head..end to out; false when the
 * connection must close after it. */
static bool respond(const char *head, const char *end, char *out, size_t *olen)
{
	char conn[32] = "";
	bool http10 = memmem(head, (size_t)(end - head), "HTTP/1.0\r\n", 10) != NULL;
	bool has = header(head, end, "connection", conn, sizeof conn);
	bool keep = http10 ? has && !strcasecmp(conn, "keep-alive") : !(has && !strcasecmp(conn, "close"));
	*olen += (size_t)sprintf(out + *olen,
	                         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	                         "Content-Length: %zu\r\n%s\r\n%s",
	                         sizeof body - 1, keep ? "" : "Connection: close\r\n", body);
	return keep;
}

/* Answer every complete request in in[0..*have) (pipelining), a body
 * (Content-Length) skipped, writing as the output fills; false when the
 * connection must close. */
static bool answer(int fd, char *in, size_t *have, bool *keep)
{
	char out[4096];
	size_t olen = 0, used = 0;
	const char *end;
	while (*keep && (end = head_end(in + used, *have - used))) {
		char cl[24];
		size_t len = header(in + used, end, "content-length", cl, sizeof cl)
		             ? strtoul(cl, NULL, 10) : 0;
		if ((size_t)(end - in) + len > *have)
			break;   /* the body is not all here yet */
		if (olen + 256 > sizeof out) {
			if (weft_write(fd, out, olen) != (ssize_t)olen)
				return false;
			olen = 0;
		}
		*keep = respond(in + used, end, out, &olen);
		used = (size_t)(end - in) + len;
	}
	if (olen && weft_write(fd, out, olen) != (ssize_t)olen)
		return false;
	memmove(in, in + used, *have - used);
	*have -= used;
	return *have < REQ_MAX;   /* a head too large: give up on this client */
}

static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char in[REQ_MAX];
	size_t have = 0;
	bool keep = true;
	while (keep) {
		ssize_t n = weft_read(fd, in + have, sizeof in - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		if (!answer(fd, in, &have, &keep))
			break;
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
	weft_attr_setname(&a, "http-conn");
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
		if (weft_create(&t, &a, serve_conn, (void *)(intptr_t)fd))
			weft_close(fd);
	}
	weft_attr_destroy(&a);
	return NULL;
}

/* ----------------------------------------------------------- --check */

static struct sockaddr_in addr;
static int requests = 100;
static atomic_long ok_responses, bad_responses;

/* Read one response (head and body) from fd into buf; its length, or 0. */
static size_t read_response(int fd, char *buf, size_t cap, size_t *have)
{
	for (;;) {
		const char *e = head_end(buf, *have);
		if (e) {
			char cl[24];
			size_t len = header(buf, e, "content-length", cl, sizeof cl)
			             ? strtoul(cl, NULL, 10) : 0;
			size_t total = (size_t)(e - buf) + len;
			if (*have >= total)
				return total;
		}
		ssize_t n = weft_read(fd, buf + *have, cap - *have);
		if (n <= 0)
			return 0;
		*have += (size_t)n;
	}
}

static bool response_ok(const char *r, size_t n)
{
	return n > sizeof body && !strncmp(r, "HTTP/1.1 200 OK\r\n", 17) &&
	       !memcmp(r + n - (sizeof body - 1), body, sizeof body - 1);
}

static void *client(void *arg)
{
	int id = (int)(intptr_t)arg;
	char buf[8192];
	size_t have = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || weft_connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
		atomic_fetch_add(&bad_responses, requests);
		return NULL;
	}
	static const char req[] = "GET /hello HTTP/1.1\r\nHost: localhost\r\nUser-Agent: check\r\n\r\n";
	for (int i = 0; i < requests;) {
		/* Every fourth connection pipelines two requests at a time. */
		int batch = id % 4 == 0 && i + 1 < requests ? 2 : 1;
		for (int k = 0; k < batch; k++)
			if (weft_write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
				goto out;
		for (int k = 0; k < batch; k++, i++) {
			size_t n = read_response(fd, buf, sizeof buf, &have);
			if (!n)
				goto out;
			atomic_fetch_add(response_ok(buf, n) ? &ok_responses : &bad_responses, 1);
			memmove(buf, buf + n, have - n);
			have -= n;
		}
	}
	/* The last request asks to close: the server must. */
	static const char last[] = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
	if (weft_write(fd, last, sizeof last - 1) == (ssize_t)(sizeof last - 1)) {
		size_t n = read_response(fd, buf, sizeof buf, &have);
		bool closed = n && response_ok(buf, n) && weft_read(fd, buf, sizeof buf) == 0;
		atomic_fetch_add(closed ? &ok_responses : &bad_responses, 1);
	}
out:
	weft_close(fd);
	return NULL;
}

static int check(int conns)
{
	weft_t *t = calloc((size_t)conns, sizeof *t);
	if (!t)
		return 2;
	uint64_t t0 = now_ns();
	int made = 0;
	for (; made < conns; made++)
		if (demo_create(prog, &t[made], client, (void *)(intptr_t)made, "client/%d", made))
			break;
	for (int i = 0; i < made; i++)
		weft_join(t[i], NULL);
	double secs = (double)(now_ns() - t0) / 1e9;
	long ok = atomic_load(&ok_responses), bad = atomic_load(&bad_responses);
	bool good = made == conns && ok == (long)conns * (requests + 1) && !bad;
	printf("%d connections x %d keep-alive requests: %ld right, %ld wrong, %.0f requests/s\n",
	       made, requests + 1, ok, bad, (double)(ok + bad) / secs);
	printf("%s: %s\n", prog, good ? "every response right" : "RESPONSES MISSING OR WRONG");
	free(t);
	return good ? 0 : 1;
}

int main(int argc, char **argv)
{
	prog = argv[0];
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' }, { "workers", required_argument, NULL, 'w' },
		{ "check", no_argument, NULL, 'k' }, { "conns", required_argument, NULL, 'c' },
		{ "requests", required_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int port = 8080, conns = 100, c;
	bool do_check = false;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'p': bad = parse_int(optarg, 0, 65535, &port); break;
		case 'w': setenv("WEFT_WORKERS", optarg, 1); break;
		case 'k': do_check = true; break;
		case 'c': bad = parse_int(optarg, 1, 100000, &conns); break;
		case 'r': bad = parse_int(optarg, 1, 10000000, &requests); break;
		case 'h': usage(stdout, prog); return 0;
		default: bad = 1; break;
		}
		if (bad) {
			usage(stderr, prog);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr, prog);
		return 2;
	}
	if (do_check && port == 8080)
		port = 0;
	int e = weft_init();
	if (e) {
		fprintf(stderr, "%s: weft_init: %s\n", prog, strerror(e));
		return 2;
	}
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof addr;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (l < 0 || bind(l, (struct sockaddr *)&addr, sizeof addr) || listen(l, 4096) ||
	    getsockname(l, (struct sockaddr *)&addr, &len)) {
		fprintf(stderr, "%s: listen on port %d: %s\n", prog, port, strerror(errno));
		return 2;
	}
	weft_t s;
	if (demo_create(prog, &s, serve, (void *)(intptr_t)l, "acceptor", 0))
		return 2;
	if (do_check)
		return check(conns);
	printf("%s: listening on 127.0.0.1:%d with %d workers\n", prog, ntohs(addr.sin_port),
	       weft_workers());
	fflush(stdout);
	weft_join(s, NULL);
	return 1;
}
