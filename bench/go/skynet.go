// skynet (bench_skynet.c): skynet(num, size) returns num when size is 1,
// else starts 10 children skynet(num + i*size/10, size/10), collects their
// results and returns the sum. The root is a goroutine started by main;
// size is the weft child's ("size", 10^6 by default: 1,111,111 goroutines).
//
// This is the Go program of the original skynet benchmark: each parent makes
// one unbuffered channel and its 10 children send their results on it,
// which is how Go waits for a group of goroutines and collects what they
// return. It stands for weft's ten joins. One cold run per process, as in
// C; the driver adds the process's peak RSS and system CPU share.
package main

func skynet(c chan<- uint64, num, size uint64) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan uint64)
	sub := size / 10
	for i := uint64(0); i < 10; i++ {
		go skynet(rc, num+i*sub, sub)
	}
	var sum uint64
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

func runSkynet() {
	size := uint64(param("size"))
	threads := uint64(0)
	for s := size; ; s /= 10 {
		threads = threads*10 + 1
		if s == 1 {
			break
		}
		if s%10 != 0 {
			fail("size %d is not a power of 10", size)
		}
	}
	c := make(chan uint64)
	begin()
	go skynet(c, 0, size)
	r := <-c
	ns := end(float64(threads))
	if want := size * (size - 1) / 2; r != want {
		fail("skynet(%d) = %d, expected %d", size, r, want)
	}
	result("thread", kindNS, ns)
	result("time", kindNS, ns*float64(threads))
	result("cpu-time", kindNS, cpuPerOp()*float64(threads))
	result("threads", kindCount, float64(threads))
}

func init() { cases["skynet"] = runSkynet }
