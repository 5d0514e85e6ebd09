// off, devnull, file (bench_trace.c): what tracing every switch costs. The
// yield ping-pong of switch.go runs
//
//	off      untraced;
//	devnull  under Go's execution tracer (runtime/trace) writing to /dev/null;
//	file     the same, writing to a temporary file in /tmp.
//
// runtime/trace is Go's counterpart of WEFT_TRACE: it records every
// goroutine switch with a timestamp. The two differ in when the cost is
// paid: Go encodes events as they happen and a background goroutine writes
// full buffers while the program runs, whereas weft only appends fixed-size
// records and formats the JSON at exit. So "exit" (the time from just before
// trace.Stop until the file is closed) is a small flush in Go and the whole
// formatting in weft; compare the switch figures, and the sum of switch time
// and exit for the total.
package main

import (
	"os"
	"runtime/trace"
	"time"
)

func runTraced(path string) {
	var f *os.File
	var err error
	if path == "" {
		f, err = os.CreateTemp("/tmp", "weft-bench-go-trace-")
		if err == nil {
			defer os.Remove(f.Name())
		}
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY, 0)
	}
	if err != nil {
		fail("trace file: %v", err)
	}
	if err := trace.Start(f); err != nil {
		fail("trace.Start: %v", err)
	}
	warmThenTime("switch", param("n"), yieldRound)
	t0 := time.Now()
	trace.Stop()
	if err := f.Close(); err != nil {
		fail("closing the trace: %v", err)
	}
	result("exit", kindNS, float64(time.Since(t0)))
	if path == "" {
		if st, err := os.Stat(f.Name()); err == nil {
			result("file", kindBytes, float64(st.Size()))
		}
	}
}

func init() {
	cases["off"] = runYieldPingpong
	cases["devnull"] = func() { runTraced("/dev/null") }
	cases["file"] = func() { runTraced("") }
}
