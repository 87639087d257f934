// Echo server for the Go peer: net.Listen on the address given as the first argument,
// one goroutine per connection, read up to 64 KiB (or the buffer size given as the second
// argument) and write it all back. Run it with GOMAXPROCS=1. Go sets TCP_NODELAY on
// accepted connections by default.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

var bufSize = 64 * 1024

func handle(c net.Conn) {
	defer c.Close()
	buf := make([]byte, bufSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	addr := "127.0.0.1:9000"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	if len(os.Args) > 2 {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n <= 0 {
			fmt.Fprintln(os.Stderr, "buffer size must be a positive integer:", os.Args[2])
			os.Exit(2)
		}
		bufSize = n
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "accept:", err)
			continue
		}
		go handle(c)
	}
}
