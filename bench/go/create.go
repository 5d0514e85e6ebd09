// create-join-1w / -2w (bench_create.c): n times, start a goroutine that
// hands back its argument and wait for it; the figure is the time per pair.
//
// A goroutine cannot be joined: the Go way to wait for one and get its
// result is to receive it on a channel, so the goroutine sends its argument
// on an unbuffered channel and the creator receives and checks it. One
// channel serves every pair (they are sequential), so the loop allocates
// nothing but the goroutine, as weft's creates nothing but the thread.
package main

func createRound(n int64) float64 {
	ch := make(chan int64)
	begin()
	for i := int64(0); i < n; i++ {
		go func(v int64) { ch <- v }(i)
		if r := <-ch; r != i {
			fail("goroutine %d returned %d", i, r)
		}
	}
	return end(float64(n))
}

func runCreate() { warmThenTime("pair", param("n"), createRound) }

func init() {
	cases["create-join-1w"] = runCreate
	cases["create-join-2w"] = runCreate
}
