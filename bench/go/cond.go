// cond-pingpong-1w / -2w (bench_cond.c): two goroutines share a sync.Mutex
// and a turn variable; each waits on its own sync.Cond until it is its
// turn, passes the turn and signals the other. The figure is the time per
// round trip (A -> B -> A): elapsed / n.
//
// sync.Cond over sync.Mutex is the primitive of the same kind as weft's
// condition variable, so the program is the C one line for line. (A Go
// programmer might pass the turn over two channels instead; that measures
// the channel, not a condition variable.) The players spin on a start flag
// with Gosched, as the weft players do with weft_yield, until the clock
// starts.
//
// The C program's "cross" figure (hand-offs received on another worker or
// CPU) has no Go counterpart: Go does not say which P runs a goroutine, and
// getcpu is a real system call from Go (no vDSO wrapper), which would cost
// more than the hand-off it observes.
package main

import (
	"runtime"
	"sync"
	"sync/atomic"
)

func condRound(n int64) float64 {
	var mu sync.Mutex
	cv := [2]*sync.Cond{sync.NewCond(&mu), sync.NewCond(&mu)}
	turn := 0
	var start int32
	var wg sync.WaitGroup
	player := func(me int) {
		defer wg.Done()
		for atomic.LoadInt32(&start) == 0 {
			runtime.Gosched()
		}
		for i := int64(0); i < n; i++ {
			mu.Lock()
			for turn != me {
				cv[me].Wait()
			}
			turn = 1 - me
			cv[1-me].Signal()
			mu.Unlock()
		}
	}
	wg.Add(2)
	go player(0)
	go player(1)
	begin()
	atomic.StoreInt32(&start, 1)
	wg.Wait()
	return end(float64(n))
}

func runCond() { warmThenTime("roundtrip", param("n"), condRound) }

func init() {
	cases["cond-pingpong-1w"] = runCond
	cases["cond-pingpong-2w"] = runCond
}
