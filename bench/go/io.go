// The cases of bench_io.c: blocking I/O and blocked threads.
//
// echo-pingpong: a client and a server goroutine on one loopback TCP
// connection (net.TCPConn, TCP_NODELAY as Go sets it), GOMAXPROCS=1 like
// weft's one worker: Go's netpoller is the counterpart of weft's poller.
//
// idle-conns: a goroutine per connection blocked in conn.Read into a 1 KiB
// buffer; the client ends in a process of their own (this program
// re-executed), as in C. The figure is the growth of the resident set per
// connection.
//
// stuck-worker: GOMAXPROCS=1; a goroutine makes a raw nanosleep system
// call of 20 ms (syscall.Nanosleep: Go enters the system call without
// handing its P over, as a libc call weft is not told of) while the main
// goroutine is ready to run; the figure is how long main waits, which is
// sysmon retaking the P.
//
// libc-sleep: GOMAXPROCS=1, 3 spinning goroutines (asynchronous
// preemption shares the P between them) and one goroutine in a raw
// nanosleep of 1 s: the time from the call to the first spinner step after
// it, and the longest time no spinner ran during the second.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func tcpPair() (net.Conn, net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		fail("dial: %v", err)
	}
	return c, <-accepted
}

func runEchoPingpong() {
	n, size := param("n"), param("size")
	cli, srv := tcpPair()
	go func() {
		b := make([]byte, 4096)
		for {
			k, err := srv.Read(b)
			if err != nil {
				return
			}
			if _, err := srv.Write(b[:k]); err != nil {
				return
			}
		}
	}()
	b := make([]byte, size)
	round := func(n int64) float64 {
		begin()
		for i := int64(0); i < n; i++ {
			if _, err := cli.Write(b); err != nil {
				fail("write: %v", err)
			}
			if _, err := io.ReadFull(cli, b); err != nil {
				fail("read: %v", err)
			}
		}
		return end(float64(n))
	}
	round(n/10 + 1)
	result("rtt", kindNS, round(n))
	result("cpu", kindNS, cpuPerOp())
}

func raiseNofile(want uint64) {
	rl := syscall.Rlimit{Cur: want, Max: want}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		return
	}
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Max >= want {
		rl.Cur = want
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
			return
		}
	}
	fail("RLIMIT_NOFILE: %d descriptors needed", want)
}

const idleBatch = 1000

// connectHelper is this program re-executed as idle-conns' client
// process (WEFT_BENCH_CONNECT=ADDR,N): it connects N times, a batch at a
// time, each batch once the server has accepted the last (a byte on stdin,
// after one on stdout), and keeps the connections until stdin closes.
func connectHelper(spec string) {
	parts := strings.Split(spec, ",")
	n, _ := strconv.Atoi(parts[1])
	raiseNofile(uint64(n + 64))
	conns := make([]net.Conn, 0, n)
	b := make([]byte, 1)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", parts[0])
		if err != nil {
			fail("dial: %v", err)
		}
		conns = append(conns, c)
		if (i+1)%idleBatch == 0 || i+1 == n {
			os.Stdout.Write([]byte("c"))
			if _, err := os.Stdin.Read(b); err != nil {
				os.Exit(4)
			}
		}
	}
	for {
		if _, err := os.Stdin.Read(b); err != nil {
			os.Exit(0)
		}
	}
}

func runIdleConns() {
	n := param("conns")
	raiseNofile(uint64(n + 64))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	helper := exec.Command("/proc/self/exe")
	helper.Env = append(os.Environ(), fmt.Sprintf("WEFT_BENCH_CONNECT=%s,%d", l.Addr(), n))
	ack, _ := helper.StdinPipe()
	up, _ := helper.StdoutPipe()
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		fail("client process: %v", err)
	}
	var arrived int64
	serve := func(c net.Conn) {
		b := make([]byte, 1024)
		atomic.AddInt64(&arrived, 1)
		c.Read(b)
	}
	// The baseline after one connection and goroutine came and went (on a
	// listener of its own: the client process is queueing on l).
	wl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	c, err := net.Dial("tcp", wl.Addr().String())
	if err != nil {
		fail("dial: %v", err)
	}
	s, err := wl.Accept()
	if err != nil {
		fail("accept: %v", err)
	}
	wl.Close()
	go serve(s)
	c.Close()
	for atomic.LoadInt64(&arrived) < 1 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	rss0 := rssBytes()
	b := make([]byte, 1)
	for i := int64(0); i < n; i++ {
		if i%idleBatch == 0 {
			if _, err := up.Read(b); err != nil {
				fail("the client process failed")
			}
		}
		s, err := l.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		go serve(s)
		if (i+1)%idleBatch == 0 || i+1 == n {
			ack.Write([]byte("a"))
		}
	}
	for atomic.LoadInt64(&arrived) < n+1 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	rss1 := rssBytes()
	result("rss/conn", kindBytes, float64(rss1-rss0)/float64(n))
	result("rss", kindBytes, float64(rss1))
	ack.Close()
	helper.Wait()
}

func rawSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}

func runStuckWorker() {
	rounds := param("rounds")
	d := make([]float64, rounds)
	for r := range d {
		var at int64
		done := make(chan struct{})
		go func() {
			atomic.StoreInt64(&at, time.Now().UnixNano())
			rawSleep(20 * time.Millisecond)
			close(done)
		}()
		runtime.Gosched() // the sleeper runs; main waits for the P
		d[r] = float64(time.Now().UnixNano() - atomic.LoadInt64(&at))
		<-done
	}
	sort.Float64s(d)
	result("handoff", kindNS, d[rounds/2])
	result("max", kindNS, d[rounds-1])
}

func runLibcSleep() {
	var stop int32
	var last, from, to, first, gap int64
	now := func() int64 { return time.Now().UnixNano() }
	spinners := make(chan struct{}, 3)
	for i := 0; i < 3; i++ {
		go func() {
			for atomic.LoadInt32(&stop) == 0 {
				t := now()
				prev := atomic.SwapInt64(&last, t)
				f, e := atomic.LoadInt64(&from), atomic.LoadInt64(&to)
				if f == 0 || t < f || (e != 0 && prev > e) {
					continue
				}
				atomic.CompareAndSwapInt64(&first, 0, t)
				if t-prev > atomic.LoadInt64(&gap) {
					atomic.StoreInt64(&gap, t-prev)
				}
			}
			spinners <- struct{}{}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	slept := make(chan int64)
	go func() {
		t0 := now()
		atomic.StoreInt64(&from, t0)
		rawSleep(time.Second)
		t1 := now()
		atomic.StoreInt64(&to, t1)
		slept <- t1 - t0
	}()
	s := <-slept
	time.Sleep(20 * time.Millisecond)
	atomic.StoreInt32(&stop, 1)
	for i := 0; i < 3; i++ {
		<-spinners
	}
	result("stall", kindNS, float64(atomic.LoadInt64(&first)-atomic.LoadInt64(&from)))
	result("max-gap", kindNS, float64(atomic.LoadInt64(&gap)))
	result("slept", kindNS, float64(s))
}

func init() {
	if spec := os.Getenv("WEFT_BENCH_CONNECT"); spec != "" {
		connectHelper(spec)
	}
	cases["echo-pingpong"] = runEchoPingpong
	cases["idle-conns"] = runIdleConns
	cases["stuck-worker"] = runStuckWorker
	cases["libc-sleep"] = runLibcSleep
}
