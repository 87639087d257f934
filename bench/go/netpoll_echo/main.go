// netpoll_echo is the CloudWeGo netpoll echo server that bench/reactor.sh measures gonet's
// reactor against, written the way netpoll's users write a handler: one EventLoop whose
// OnRequest reads everything that has arrived with ReadBinary(Len()), writes it back with
// WriteBinary, sends it with Flush and releases the input with Release.
//
// It builds in GOPATH mode against sources taken from the project's mirrors (no module
// proxy): see bench/netpoll/setup.sh, which builds it as target/release/echo_netpoll.
//
// Run: echo_netpoll 127.0.0.1:9010. Sub-reactors (netpoll's "loops"): NETPOLL_LOOPS, else
// GONET_PROCS, else 1; Go's own threads are bounded by GOMAXPROCS as usual.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/cloudwego/netpoll"
)

// loops reads the sub-reactor count from NETPOLL_LOOPS or GONET_PROCS (default 1).
func loops() int {
	for _, name := range []string{"NETPOLL_LOOPS", "GONET_PROCS"} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				fmt.Fprintf(os.Stderr, "netpoll_echo: %s=%q is not a positive integer\n", name, v)
				os.Exit(2)
			}
			return n
		}
	}
	return 1
}

// echo is the OnRequest handler: netpoll calls it on a pooled goroutine when bytes arrive
// on an idle connection, and again while unread input remains.
func echo(_ context.Context, conn netpoll.Connection) error {
	r, w := conn.Reader(), conn.Writer()
	defer r.Release()
	buf, err := r.ReadBinary(r.Len())
	if err != nil {
		return err
	}
	if _, err := w.WriteBinary(buf); err != nil {
		return err
	}
	return w.Flush()
}

func main() {
	addr := "127.0.0.1:9010"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	n := loops()
	if err := netpoll.SetNumLoops(n); err != nil {
		fmt.Fprintf(os.Stderr, "netpoll_echo: SetNumLoops(%d): %v\n", n, err)
		os.Exit(1)
	}
	ln, err := netpoll.CreateListener("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "netpoll_echo: cannot listen on %s: %v\n", addr, err)
		os.Exit(1)
	}
	loop, err := netpoll.NewEventLoop(echo)
	if err != nil {
		fmt.Fprintf(os.Stderr, "netpoll_echo: NewEventLoop: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "netpoll_echo: listening on %s with %d loop(s)\n", ln.Addr(), n)
	if err := loop.Serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "netpoll_echo: serve %s: %v\n", addr, err)
		os.Exit(1)
	}
}
