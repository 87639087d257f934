// Runtime micro-benchmarks for the Go peer (run with GOMAXPROCS=1): spawn + join of an
// empty goroutine, unbuffered-channel ping-pong, resident memory per parked goroutine.
// Prints one "key value" line per figure, like the Rust rt_* binaries.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func vmRSSBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				panic(err)
			}
			return kb * 1024
		}
	}
	panic("no VmRSS line")
}

func nsPer(d time.Duration, ops int) string {
	return fmt.Sprintf("%.1f", float64(d.Nanoseconds())/float64(ops))
}

// Go has no join handle: a WaitGroup is the idiomatic join of one goroutine.
func spawnJoin(n, warmup int) {
	var wg sync.WaitGroup
	one := func() {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
	for i := 0; i < warmup; i++ {
		one()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		one()
	}
	fmt.Printf("spawn_join_ns %s\n", nsPer(time.Since(start), n))
}

func pingpong(n, warmup int) {
	ping := make(chan uint64)
	pong := make(chan uint64)
	done := make(chan struct{})
	go func() {
		for v := range ping {
			pong <- v
		}
		close(done)
	}()
	round := func(i uint64) {
		ping <- i
		if <-pong != i {
			panic("ping-pong mismatch")
		}
	}
	for i := 0; i < warmup; i++ {
		round(uint64(i))
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		round(uint64(i))
	}
	fmt.Printf("pingpong_ns %s\n", nsPer(time.Since(start), n))
	close(ping)
	<-done
}

func parked(n int) {
	ch := make(chan struct{})
	var waiting int64
	var wg sync.WaitGroup
	runtime.GC()
	before := vmRSSBytes()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			atomic.AddInt64(&waiting, 1)
			<-ch
			wg.Done()
		}()
	}
	for atomic.LoadInt64(&waiting) < int64(n) {
		runtime.Gosched()
	}
	runtime.Gosched()
	after := vmRSSBytes()
	fmt.Printf("parked_rss_bytes %.0f\n", float64(after-before)/float64(n))
	close(ch)
	wg.Wait()
}

// burst spawns n goroutines and only then waits for them all (wg.Add(1); go f(); ...;
// wg.Wait()), three rounds; prints the cost per goroutine of each round.
func burst(n int) {
	for round := 1; round <= 3; round++ {
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { wg.Done() }()
		}
		wg.Wait()
		fmt.Printf("burst%d_ns %s\n", round, nsPer(time.Since(start), n))
	}
}

func main() {
	spawn := flag.Int("spawn", 100000, "spawn + join iterations")
	pp := flag.Int("pingpong", 1000000, "ping-pong round trips")
	park := flag.Int("parked", 100000, "goroutines parked at once")
	warmup := flag.Int("warmup", 10000, "untimed iterations before each timed loop")
	burstN := flag.Int("burst", 100000, "goroutines spawned before any is joined, per burst round")
	flag.Parse()
	spawnJoin(*spawn, *warmup)
	pingpong(*pp, *warmup)
	parked(*park)
	burst(*burstN)
}
