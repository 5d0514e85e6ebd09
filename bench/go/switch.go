// yield-pingpong (bench_switch.c, yield_pingpong.h): two goroutines call
// runtime.Gosched() n times each; the figure is elapsed / 2n.
//
// runtime.Gosched is Go's weft_yield: the caller goes to the back of the
// run queue (the global one in Go, a P's local one in weft) and the next
// goroutine runs. As in the weft child, both goroutines are created before
// the clock starts and spin on a start flag with Gosched until it is set;
// a sync.WaitGroup stands for the two joins.
package main

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// yieldRound runs one round of n yields per goroutine; ns per switch.
func yieldRound(n int64) float64 {
	var start int32
	var wg sync.WaitGroup
	pinger := func() {
		defer wg.Done()
		for atomic.LoadInt32(&start) == 0 {
			runtime.Gosched()
		}
		for i := int64(0); i < n; i++ {
			runtime.Gosched()
		}
	}
	wg.Add(2)
	go pinger()
	go pinger()
	begin()
	atomic.StoreInt32(&start, 1)
	wg.Wait()
	return end(2 * float64(n))
}

func runYieldPingpong() { warmThenTime("switch", param("n"), yieldRound) }

func init() { cases["yield-pingpong"] = runYieldPingpong }
