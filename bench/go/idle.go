// idle-rss (bench_idle.c): resident memory per idle goroutine. Start
// `threads` goroutines (the weft child's count, 100,000 by default) that
// each block for good, wait until all have arrived, and divide the growth of
// the resident set (/proc/self/statm) by the count.
//
// A goroutine blocks in a receive from a channel nobody sends on: that is
// Go's semaphore wait, the counterpart of weft's weft_sem_wait (the C
// program's --sem=1; --sem is ignored here). The baseline is read after one
// goroutine has been started and has finished, as in C. Go's goroutine
// stacks start small (a few KiB) and grow by copying; that is part of what
// the figure compares.
package main

import (
	"sync"
	"sync/atomic"
	"time"
)

func runIdle() {
	n := param("threads")
	var once sync.WaitGroup
	once.Add(1)
	go once.Done()
	once.Wait()
	time.Sleep(10 * time.Millisecond)
	rss0, vsz0 := rssBytes(), vszBytes()
	never := make(chan struct{})
	var arrived int64
	for i := int64(0); i < n; i++ {
		go func() {
			atomic.AddInt64(&arrived, 1)
			<-never
		}()
	}
	for atomic.LoadInt64(&arrived) < n {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the last arrivals finish parking
	rss1, vsz1 := rssBytes(), vszBytes()
	result("rss/thread", kindBytes, float64(rss1-rss0)/float64(n))
	result("vsz/thread", kindBytes, float64(vsz1-vsz0)/float64(n))
	result("threads", kindCount, float64(n))
}

func init() { cases["idle-rss"] = runIdle }
