// Traffic ends for bench/proxy.sh. `blast sink ADDR` listens and discards what each
// connection sends, printing the byte count when it ends; `blast send ADDR BYTES` connects,
// sends BYTES zero bytes in 1 MiB writes, half-closes and waits for the peer to close.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: blast sink ADDR | blast send ADDR BYTES")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "sink":
		ln, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "blast:", err)
			os.Exit(1)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				continue
			}
			go func(c net.Conn) {
				n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 1<<20))
				fmt.Println("received", n)
				c.Close()
			}(c)
		}
	case "send":
		n, _ := strconv.ParseInt(os.Args[3], 10, 64)
		c, err := net.Dial("tcp", os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "blast:", err)
			os.Exit(1)
		}
		buf := make([]byte, 1<<20)
		for n > 0 {
			k := int64(len(buf))
			if n < k {
				k = n
			}
			if _, err := c.Write(buf[:k]); err != nil {
				fmt.Fprintln(os.Stderr, "blast:", err)
				os.Exit(1)
			}
			n -= k
		}
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	}
}
