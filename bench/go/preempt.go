// spinner-shares, sleeper-late, compute-q10ms, compute-q-off
// (bench_preempt.c): what preemption buys and costs, with goroutines that
// never call the scheduler.
//
// Go preempts such goroutines asynchronously (a signal from sysmon once a
// goroutine has run 10 ms, the same quantum as weft's default), so the
// spinners are plain loops. The Go counterpart of WEFT_QUANTUM_US=0 is
// GODEBUG=asyncpreemptoff=1, which the driver sets for compute-q-off
// (bench_case.go_env); with it a loop without calls is never preempted.
//
// The loops keep the C program's shape: each spinner increments its own
// element of a shared array (C: a volatile uint64_t) and reads the stop
// flag atomically on every iteration; the compute loop adds into memory
// through a pointer, which the Go compiler loads and stores on every
// iteration as C does for a volatile. The C program's "preemptions" count
// has no Go counterpart (the runtime does not export one).
package main

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const nspin = 4

var (
	spinStop    int32
	spinStarted int32
	spinCount   [nspin]uint64
)

func spinUntilStop(i int, wg *sync.WaitGroup) {
	defer wg.Done()
	c := &spinCount[i]
	atomic.AddInt32(&spinStarted, 1)
	for atomic.LoadInt32(&spinStop) == 0 {
		*c++
	}
}

func startSpinners(wg *sync.WaitGroup) {
	wg.Add(nspin)
	for i := 0; i < nspin; i++ {
		go spinUntilStop(i, wg)
	}
}

func runShares() {
	secs := param("secs")
	var wg sync.WaitGroup
	startSpinners(&wg)
	time.Sleep(time.Duration(secs) * time.Second)
	atomic.StoreInt32(&spinStop, 1)
	wg.Wait()
	var total uint64
	for _, c := range spinCount {
		total += c
	}
	if total == 0 {
		fail("spinners did not run")
	}
	worst := 0.0
	for _, c := range spinCount {
		d := 100*float64(c)/float64(total) - 100.0/nspin
		if d < 0 {
			d = -d
		}
		if d > worst {
			worst = d
		}
	}
	result("max-share-distance-pp", kindPct, worst)
}

func runSleeper() {
	n := param("sleeps")
	const period = 2 * time.Millisecond
	var wg sync.WaitGroup
	startSpinners(&wg)
	for atomic.LoadInt32(&spinStarted) < nspin {
		time.Sleep(100 * time.Microsecond)
	}
	late := make([]time.Duration, n)
	for i := range late {
		t0 := time.Now()
		time.Sleep(period)
		late[i] = time.Since(t0) - period
	}
	atomic.StoreInt32(&spinStop, 1)
	wg.Wait()
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	result("median-late", kindNS, float64(late[n/2]))
	result("max-late", kindNS, float64(late[n-1]))
}

// One line each: the two workers' sums must not share a cache line (in C
// each is a local on its own thread's stack).
var workSink [2][8]uint64

func spinWork(n int64, x *uint64) {
	for i := int64(0); i < n; i++ {
		*x += uint64(i)
	}
}

func runCompute() {
	n := param("work")
	spinWork(n/20, &workSink[0][0]) // warm up
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Add(2)
	for i := 0; i < 2; i++ {
		go func(x *uint64) { spinWork(n, x); wg.Done() }(&workSink[i][0])
	}
	wg.Wait()
	result("ns-per-iteration", kindNS, float64(time.Since(t0))/(2*float64(n)))
}

func init() {
	cases["spinner-shares"] = runShares
	cases["sleeper-late"] = runSleeper
	cases["compute-q10ms"] = runCompute
	cases["compute-q-off"] = runCompute
}
