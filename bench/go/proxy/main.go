// TCP proxy, the Go peer of examples/proxy.rs: net.Listen on the first argument, one
// net.Dial to the backend (second argument) per client, io.Copy in both directions (on
// Linux io.Copy between two *net.TCPConn uses splice(2)), half-close passed on.
// Run it with GOMAXPROCS=1 to compare with gonet on one worker.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func pipe(dst, src *net.TCPConn, done chan<- struct{}) {
	io.Copy(dst, src)
	dst.CloseWrite()
	done <- struct{}{}
}

func serve(c *net.TCPConn, backend string) {
	defer c.Close()
	u, err := net.Dial("tcp", backend)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		return
	}
	up := u.(*net.TCPConn)
	defer up.Close()
	done := make(chan struct{}, 2)
	go pipe(up, c, done)
	go pipe(c, up, done)
	<-done
	<-done
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: proxy LISTEN_ADDR BACKEND_ADDR")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c.(*net.TCPConn), os.Args[2])
	}
}
