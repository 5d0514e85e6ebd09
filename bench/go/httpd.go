// httpd (bench_httpd.c): wrk against a minimal HTTP/1.1 keep-alive
// responder, a goroutine per connection, GOMAXPROCS=2 like weft's two
// workers. The responder is demos/httpd.c's, line for line: a request's
// head ends at an empty line, a body (Content-Length) is skipped,
// pipelined requests are answered together, "Connection: close" and
// HTTP/1.0 without keep-alive close, every answer is the same small text.
// It is written on net.Conn as a Go programmer would, without net/http,
// whose routing and header maps the C responder does not have either.
//
// The child starts the server on 127.0.0.1:0, runs wrk against it (the
// same command line as the weft child) and reports wrk's figures.
package main

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
)

var httpBody = []byte("Hello from weft\n")

// httpHeader finds a header's value in a request head (case-insensitive).
func httpHeader(head []byte, name string) (string, bool) {
	for _, line := range bytes.Split(head, []byte("\r\n"))[1:] {
		i := bytes.IndexByte(line, ':')
		if i == len(name) && strings.EqualFold(string(line[:i]), name) {
			return strings.TrimLeft(string(line[i+1:]), " "), true
		}
	}
	return "", false
}

func httpRespond(head []byte, out []byte) ([]byte, bool) {
	conn, has := httpHeader(head, "connection")
	http10 := bytes.Contains(head, []byte("HTTP/1.0\r\n"))
	keep := !(has && strings.EqualFold(conn, "close"))
	if http10 {
		keep = has && strings.EqualFold(conn, "keep-alive")
	}
	closing := ""
	if !keep {
		closing = "Connection: close\r\n"
	}
	out = append(out, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"+
		"Content-Length: %d\r\n%s\r\n", len(httpBody), closing)...)
	return append(out, httpBody...), keep
}

func httpServe(c net.Conn) {
	defer c.Close()
	in := make([]byte, 8192)
	out := make([]byte, 0, 4096)
	have := 0
	for keep := true; keep; {
		n, err := c.Read(in[have:])
		if n <= 0 || err != nil {
			return
		}
		have += n
		used := 0
		out = out[:0]
		for keep {
			e := bytes.Index(in[used:have], []byte("\r\n\r\n"))
			if e < 0 {
				break
			}
			end := used + e + 4
			length := 0
			if cl, ok := httpHeader(in[used:end], "content-length"); ok {
				length, _ = strconv.Atoi(cl)
			}
			if end+length > have {
				break
			}
			out, keep = httpRespond(in[used:end], out)
			used = end + length
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
		copy(in, in[used:have])
		have -= used
		if have == len(in) {
			return
		}
	}
}

func runHttpd() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				continue
			}
			go httpServe(c)
		}
	}()
	wrkReport(l.Addr().(*net.TCPAddr).Port)
}

func init() { cases["httpd"] = runHttpd }
