// mutex-uncontended and mutex-contended (bench_mutex.c), on sync.Mutex,
// which is what weft's mutex is modelled on (docs/design.md, "Mutex").
//
//	mutex-uncontended  one goroutine locks and unlocks one mutex n times;
//	                   time per pair (a warm-up of n/10 first).
//	mutex-contended    `threads` goroutines each do `per` times: lock,
//	                   increment a shared counter, unlock; time per
//	                   operation. They wait at a start gate (a channel that
//	                   is closed when the clock has been read); the final
//	                   count is checked.
package main

import "sync"

func runMutexUncontended() {
	var m sync.Mutex
	warmThenTime("pair", param("n"), func(k int64) float64 {
		begin()
		for i := int64(0); i < k; i++ {
			m.Lock()
			m.Unlock()
		}
		return end(float64(k))
	})
}

func runMutexContended() {
	nt, per := param("threads"), param("per")
	if nt < 1 || nt > 4096 {
		fail("--threads must be 1..4096")
	}
	var m sync.Mutex
	var counter int64
	gate := make(chan struct{})
	var ready, done sync.WaitGroup
	ready.Add(int(nt))
	done.Add(int(nt))
	for t := int64(0); t < nt; t++ {
		go func() {
			defer done.Done()
			ready.Done()
			<-gate
			for i := int64(0); i < per; i++ {
				m.Lock()
				counter++
				m.Unlock()
			}
		}()
	}
	ready.Wait()
	begin()
	close(gate)
	done.Wait()
	ns := end(float64(nt * per))
	if counter != nt*per {
		fail("counter %d, expected %d: the mutex let two goroutines in", counter, nt*per)
	}
	result("op", kindNS, ns)
	result("cpu", kindNS, cpuPerOp())
}

func init() {
	cases["mutex-uncontended"] = runMutexUncontended
	cases["mutex-contended"] = runMutexContended
}
