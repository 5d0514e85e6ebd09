// cancel-parked-1w (bench_cancel.c): n rounds of starting a goroutine that
// blocks until it is cancelled, then timing the cancel and the wait for it
// to finish; the figure is the time from the cancel to the wait's return.
//
// Go has no way to stop a goroutine from outside: the Go way is a
// context.Context whose Done channel the goroutine waits on, and a
// "finished" message (here a receive on an unbuffered channel) stands for
// the join. With GOMAXPROCS=1 a Gosched after the go statement runs the
// goroutine until it blocks, as weft's work-first create does.
package main

import (
	"context"
	"runtime"
	"time"
)

func cancelRound(n int64) float64 {
	done := make(chan struct{})
	var sum time.Duration
	for i := int64(0); i < n; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-ctx.Done()
			done <- struct{}{}
		}()
		runtime.Gosched()
		t0 := time.Now()
		cancel()
		<-done
		sum += time.Since(t0)
	}
	return float64(sum) / float64(n)
}

func runCancel() {
	n := param("n")
	cancelRound(n/10 + 1)
	result("cancel", kindNS, cancelRound(n))
}

func init() { cases["cancel-parked-1w"] = runCancel }
