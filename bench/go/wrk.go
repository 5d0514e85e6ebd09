// wrk.go — run Debian's wrk against a server of this process and report
// its figures, as bench_httpd.c's weft child does (the same command line,
// the same parsing).
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// wrkDuration reads wrk's "12.34ms" into ns.
func wrkDuration(s string) (float64, bool) {
	for _, u := range []struct {
		suffix string
		mul    float64
	}{{"us", 1e3}, {"ms", 1e6}, {"s", 1e9}} {
		if strings.HasSuffix(s, u.suffix) {
			v, err := strconv.ParseFloat(strings.TrimSuffix(s, u.suffix), 64)
			return v * u.mul, err == nil
		}
	}
	return 0, false
}

func wrkReport(port int) {
	out, err := exec.Command("wrk", "-t", strconv.FormatInt(param("t"), 10),
		"-c", strconv.FormatInt(param("c"), 10), "-d", fmt.Sprintf("%ds", param("d")),
		"--latency", fmt.Sprintf("http://127.0.0.1:%d/", port)).Output()
	if err != nil {
		fail("wrk: %v (Debian: apt-get install wrk)", err)
	}
	var rps, p50, p99 float64
	var errs int64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && f[0] == "50%":
			p50, _ = wrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			p99, _ = wrkDuration(f[1])
		case len(f) > 0 && (f[0] == "Socket" || f[0] == "Non-2xx"):
			errs++
		}
	}
	if rps == 0 || p99 == 0 {
		fail("could not read wrk's output:\n%s", out)
	}
	result("req/s", kindCount, rps)
	result("p50", kindNS, p50)
	result("p99", kindNS, p99)
	result("wrk-errors", kindCount, float64(errs))
}
