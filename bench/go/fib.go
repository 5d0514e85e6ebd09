// fib-1w, fib-2w, fib-8w (bench_fib.c): fork-join. fib(n) with a goroutine
// per call above the cutoff: a call with n > cutoff starts two goroutines
// for fib(n-1) and fib(n-2) and waits for both; a call at or below the
// cutoff runs the serial function. The root is a goroutine started by main.
//
// sync.WaitGroup is how a Go programmer waits for two goroutines; each
// child writes its result into its parent's frame before Done, and Wait
// orders those writes before the parent's read. The serial function is
// timed in the same process ("serial") so that the ratio threaded / serial
// compares Go with itself, as the C children compare weft and pthreads with
// the serial C function.
package main

import (
	"sort"
	"sync"
)

var fibCutoff int

//go:noinline
func fibSerial(n int) int {
	if n < 2 {
		return n
	}
	return fibSerial(n-1) + fibSerial(n-2)
}

func fibPar(n int) int {
	if n <= fibCutoff {
		return fibSerial(n)
	}
	var a, b int
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { a = fibPar(n - 1); wg.Done() }()
	go func() { b = fibPar(n - 2); wg.Done() }()
	wg.Wait()
	return a + b
}

func fibRoot(n int) int {
	r := make(chan int)
	go func() { r <- fibPar(n) }()
	return <-r
}

// medianRounds times f `rounds` times and returns the median in ns (and,
// in cpu, the CPU time of the median round's section).
func medianRounds(rounds int, f func()) (ns, cpu float64) {
	type round struct{ ns, cpu float64 }
	rs := make([]round, rounds)
	for i := range rs {
		begin()
		f()
		rs[i].ns = end(1)
		rs[i].cpu = cpuPerOp()
	}
	sort.Slice(rs, func(a, b int) bool { return rs[a].ns < rs[b].ns })
	return rs[rounds/2].ns, rs[rounds/2].cpu
}

func runFib() {
	n, rounds := int(param("n")), int(param("rounds"))
	fibCutoff = int(param("cutoff"))
	if rounds < 1 {
		fail("--rounds must be at least 1")
	}
	want := fibSerial(n)
	serial, _ := medianRounds(rounds, func() {
		if fibSerial(n) != want {
			fail("serial fib changed its mind")
		}
	})
	// The first threaded round is cold: report it on its own.
	begin()
	if fibRoot(n) != want {
		fail("fib(%d) threaded != serial", n)
	}
	cold := end(1)
	ns, cpu := medianRounds(rounds, func() {
		if r := fibRoot(n); r != want {
			fail("fib(%d) = %d, expected %d", n, r, want)
		}
	})
	result("fib", kindNS, ns)
	result("cpu", kindNS, cpu)
	result("serial", kindNS, serial)
	result("vs-serial", kindCountFrac, ns/serial)
	result("cold", kindNS, cold)
}

func init() {
	cases["fib-1w"] = runFib
	cases["fib-2w"] = runFib
	cases["fib-8w"] = runFib
}
