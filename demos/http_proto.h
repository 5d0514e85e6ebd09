/*
 * http_proto.h — the protocol side of the minimal HTTP/1.1 keep-alive
 * responder: finding a request's head, reading a header, answering every
 * complete request in a buffer.  demos/httpd serves with it on weft's
 * drop-in calls; bench/bench_httpd serves with it on plain pthreads and
 * libc calls, so that both answer byte for byte alike.  Every request,
 * whatever its path, gets the same small text body.
 */
#ifndef WEFT_DEMO_HTTP_PROTO_H
#define WEFT_DEMO_HTTP_PROTO_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

static const char http_body[] = "Hello from weft\n";
#define HTTP_REQ_MAX 8192   /* a request's head must fit in this */

/* The end of the head of the request at buf[0..n), or NULL if incomplete. */
static inline const char *http_head_end(const char *buf, size_t n)
{
	const char *e = memmem(buf, n, "\r\n\r\n", 4);
	return e ? e + 4 : NULL;
}

/* A header's value in head (case-insensitive name), copied to v; false if
 * absent. */
static inline bool http_header(const char *head, const char *end, const char *name, char *v, size_t vlen)
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
static inline bool http_respond(const char *head, const char *end, char *out, size_t *olen)
{
	char conn[32] = "";
	bool http10 = memmem(head, (size_t)(end - head), "HTTP/1.0\r\n", 10) != NULL;
	bool has = http_header(head, end, "connection", conn, sizeof conn);
	bool keep = http10 ? has && !strcasecmp(conn, "keep-alive") : !(has && !strcasecmp(conn, "close"));
	*olen += (size_t)sprintf(out + *olen,
	                         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	                         "Content-Length: %zu\r\n%s\r\n%s",
	                         sizeof http_body - 1, keep ? "" : "Connection: close\r\n", http_body);
	return keep;
}

/* Answer every complete request in in[0..*have) (pipelining), a body
 * (Content-Length) skipped, writing with wr (weft_write or write) as the
 * output fills; false when the connection must close. */
static inline bool http_answer(int fd, char *in, size_t *have, bool *keep,
                               ssize_t (*wr)(int, const void *, size_t))
{
	char out[4096];
	size_t olen = 0, used = 0;
	const char *end;
	while (*keep && (end = http_head_end(in + used, *have - used))) {
		char cl[24];
		size_t len = http_header(in + used, end, "content-length", cl, sizeof cl)
		             ? strtoul(cl, NULL, 10) : 0;
		if ((size_t)(end - in) + len > *have)
			break;   /* the body is not all here yet */
		if (olen + 256 > sizeof out) {
			if (wr(fd, out, olen) != (ssize_t)olen)
				return false;
			olen = 0;
		}
		*keep = http_respond(in + used, end, out, &olen);
		used = (size_t)(end - in) + len;
	}
	if (olen && wr(fd, out, olen) != (ssize_t)olen)
		return false;
	memmove(in, in + used, *have - used);
	*have -= used;
	return *have < HTTP_REQ_MAX;   /* a head too large: give up on this client */
}

#endif
