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

// timeOnce times one run of f; wall and CPU ns.
func timeOnce(f func() int, want int) (ns, cpu float64) {
	begin()
	r := f()
	ns = end(1)
	if r != want {
		fail("fib = %d, expected %d", r, want)
	}
	return ns, cpuPerOp()
}

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

func runFib() {
	n, rounds := int(param("n")), int(param("rounds"))
	fibCutoff = int(param("cutoff"))
	if rounds < 1 {
		fail("--rounds must be at least 1")
	}
	want := fibSerial(n)
	serialRun := func() int { return fibSerial(n) }
	threadedRun := func() int { return fibRoot(n) }
	// The first threaded round is cold: report it on its own. Then serial
	// and threaded rounds alternate, as in C.
	cold, _ := timeOnce(threadedRun, want)
	ser, thr, thrCPU := make([]float64, rounds), make([]float64, rounds), make([]float64, rounds)
	for i := 0; i < rounds; i++ {
		ser[i], _ = timeOnce(serialRun, want)
		thr[i], thrCPU[i] = timeOnce(threadedRun, want)
	}
	serial, ns := median(ser), median(thr)
	result("fib", kindNS, ns)
	result("cpu", kindNS, median(thrCPU))
	result("serial", kindNS, serial)
	result("vs-serial", kindCountFrac, ns/serial)
	result("cold", kindNS, cold)
}

func init() {
	cases["fib-1w"] = runFib
	cases["fib-2w"] = runFib
	cases["fib-8w"] = runFib
}
