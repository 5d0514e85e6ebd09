// weft-bench-go: the Go ports of weft's benchmarks (bench/bench_*.c).
//
// Go is what a user picks instead of weft, so every workload of bench/ has a
// port here with the same program shape: a goroutine where the C program
// creates a green thread, GOMAXPROCS where it sets WEFT_WORKERS, and the
// synchronization a Go programmer would write for the same job. Where Go has
// a primitive of the same kind as weft's (sync.Mutex, sync.Cond, a blocked
// receive for a semaphore wait) it is used; a join becomes a receive of the
// child's result on a channel or a sync.WaitGroup, since goroutines cannot be
// joined. Each file says which primitive it uses and why.
//
// This program is never started by hand. The C driver of a benchmark
// (bench/harness.c) runs it as one more implementation beside weft and
// pthreads, in a fresh process per repetition, exactly as it re-executes
// itself for those:
//
//	weft-bench-go --child=CASE:go --NAME=VALUE ...
//
// with every parameter of the C program (the same names, the same K/M
// suffixes) and GOMAXPROCS set to the weft worker count of the case. It
// prints its figures on stdout in the harness's line format,
//
//	@bench NAME KIND VALUE
//
// where KIND is the number of the C enum bench_kind, and exits 0; a failed
// check prints one line on stderr and exits 2, which the driver counts as a
// failed repetition. Case names are the C cases' names.
//
// Only the standard library is used, so the program builds offline with the
// Go of Debian 12 (1.19): see build.sh.
//
// Rejected: one Go program per C program (as in bench/), because the driver
// then has to know eight binary names and the shared code (argument parsing,
// the timed section, the result lines) would be repeated or need a module of
// its own; and the standard flag package, because the driver passes every
// parameter of its program, most of which a given case does not read.
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// Kinds of figures: the values of enum bench_kind in bench/harness.h.
const (
	kindNS        = 0
	kindBytes     = 1
	kindCount     = 2
	kindPct       = 3
	kindCountFrac = 4
)

// cases maps a C case name to its Go body; each file adds its own in init.
var cases = map[string]func(){}

// params holds what the driver passed, by name.
var params = map[string]int64{}

// result reports one figure, as bench_result does.
func result(name string, kind int, v float64) {
	fmt.Printf("@bench %s %d %s\n", name, kind, strconv.FormatFloat(v, 'g', 17, 64))
}

// fail reports a failed check and ends the child, as bench_fail does.
func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "bench: go: "+format+"\n", a...)
	os.Exit(2)
}

// param returns a parameter the driver passed; a missing one is a bug of
// the port (the C program and this one disagree on a name).
func param(name string) int64 {
	v, ok := params[name]
	if !ok {
		fail("parameter --%s was not passed", name)
	}
	return v
}

// parseSize reads "12", "10K", "1M", "2G" (powers of 10) or "64Ki", "1Mi",
// "1Gi" (powers of 2), like parse_size in harness.c.
func parseSize(s string) (int64, error) {
	mul := int64(1)
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9},
		{"k", 1e3}, {"m", 1e6}, {"g", 1e9}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mul = strings.TrimSuffix(s, u.suffix), u.mul
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v * mul, nil
}

// cpuNow is the process's CPU time (all threads), CLOCK_PROCESS_CPUTIME_ID
// as in harness.c; the syscall package has no wrapper for it.
func cpuNow() time.Duration {
	const clockProcessCPUTimeID = 2
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID,
		uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// A timed section, as bench_begin/bench_end: wall time per operation, and
// the CPU time per operation kept for cpuPerOp.
var sectWall time.Time
var sectCPU time.Duration
var sectCPUPerOp float64

func begin() {
	sectCPU = cpuNow()
	sectWall = time.Now() // monotonic: Go reads CLOCK_MONOTONIC through the vDSO
}

func end(ops float64) float64 {
	wall := time.Since(sectWall)
	sectCPUPerOp = float64(cpuNow()-sectCPU) / ops
	return float64(wall) / ops
}

func cpuPerOp() float64 { return sectCPUPerOp }

// warmThenTime runs a warm-up round of n/10+1 operations, then the timed
// round of n, as the C children do, and reports the timed round's time per
// operation as figure fig, and its CPU time per operation as "cpu".
func warmThenTime(fig string, n int64, round func(n int64) float64) {
	round(n/10 + 1)
	result(fig, kindNS, round(n))
	result("cpu", kindNS, cpuPerOp())
}

// statm returns field idx of /proc/self/statm in bytes (0: size, 1: resident).
func statm(idx int) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fail("/proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	v, _ := strconv.ParseInt(f[idx], 10, 64)
	return v * int64(os.Getpagesize())
}

func rssBytes() int64 { return statm(1) }
func vszBytes() int64 { return statm(0) }

func main() {
	child := ""
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "--") || !strings.Contains(a, "=") {
			fail("unexpected argument %s (this program is run by the C benchmarks)", a)
		}
		kv := strings.SplitN(a[2:], "=", 2)
		if kv[0] == "child" {
			child = kv[1]
			continue
		}
		v, err := parseSize(kv[1])
		if err != nil {
			fail("--%s: %v", kv[0], err)
		}
		params[kv[0]] = v
	}
	name := strings.TrimSuffix(child, ":go")
	run, ok := cases[name]
	if child == "" || name == child || !ok {
		var known []string
		for k := range cases {
			known = append(known, k)
		}
		sort.Strings(known)
		fail("--child=CASE:go needed, CASE one of %s", strings.Join(known, " "))
	}
	run()
	os.Exit(0)
}
