// http_peer: Go's net/http as a second real peer for gonet's hyper tests (gonet/tests/hyper_go.rs
// builds it with `go build`; standard library only).
//
//	http_peer server [-tls CERT.pem KEY.pem]
//	    Listens on 127.0.0.1:0 and prints "listening ADDR". Every path answers
//	    "go PROTO PATH" (PROTO is r.Proto: HTTP/1.1, or HTTP/2.0 when TLS's ALPN chose h2),
//	    except /conns, which answers the number of connections accepted so far. Exits when
//	    stdin closes.
//	http_peer client [-cacert PEM] [-h1] [-n N] [-c C] URL
//	    GETs URL N times, C at a time (each request's path gets "/<i>" appended), prints
//	    "PROTO STATUS BODY" per response in order, then "conns K": the connections it dialed.
//	    -h1 turns HTTP/2 off (TLS offers http/1.1 only).
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync"
	"sync/atomic"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: http_peer server|client ...")
	}
	switch os.Args[1] {
	case "server":
		server(os.Args[2:])
	case "client":
		client(os.Args[2:])
	default:
		fail("unknown mode " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "http_peer:", msg)
	os.Exit(2)
}

func server(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	withTLS := fs.Bool("tls", false, "serve HTTPS with the CERT and KEY files that follow")
	fs.Parse(args)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err.Error())
	}
	var conns int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/conns" {
				fmt.Fprintf(w, "%d", atomic.LoadInt64(&conns))
				return
			}
			fmt.Fprintf(w, "go %s %s", r.Proto, r.URL.Path)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				atomic.AddInt64(&conns, 1)
			}
		},
	}
	fmt.Printf("listening %s\n", ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	if *withTLS {
		if fs.NArg() != 2 {
			fail("-tls needs CERT.pem KEY.pem")
		}
		err = srv.ServeTLS(ln, fs.Arg(0), fs.Arg(1)) // h2 and http/1.1 by ALPN
	} else {
		err = srv.Serve(ln)
	}
	fail(err.Error())
}

func client(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	cacert := fs.String("cacert", "", "PEM file of the roots to trust")
	h1 := fs.Bool("h1", false, "HTTP/1.1 only")
	n := fs.Int("n", 1, "requests")
	c := fs.Int("c", 1, "requests at a time")
	fs.Parse(args)
	if fs.NArg() != 1 {
		fail("client needs one URL")
	}
	url := fs.Arg(0)
	tr := &http.Transport{ForceAttemptHTTP2: !*h1, TLSClientConfig: &tls.Config{}}
	if *h1 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	if *cacert != "" {
		pem, err := os.ReadFile(*cacert)
		if err != nil {
			fail(err.Error())
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fail("no certificates in " + *cacert)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	cl := &http.Client{Transport: tr}
	var dialed int64
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			atomic.AddInt64(&dialed, 1)
		}
	}}
	lines := make([]string, *n)
	sem := make(chan struct{}, *c)
	var wg sync.WaitGroup
	for i := 0; i < *n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			req, err := http.NewRequest("GET", fmt.Sprintf("%s/%d", url, i), nil)
			if err != nil {
				fail(err.Error())
			}
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
			resp, err := cl.Do(req)
			if err != nil {
				fail(err.Error())
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				fail(err.Error())
			}
			lines[i] = fmt.Sprintf("%s %d %s", resp.Proto, resp.StatusCode, body)
		}(i)
	}
	wg.Wait()
	for _, l := range lines {
		fmt.Println(l)
	}
	fmt.Printf("conns %d\n", atomic.LoadInt64(&dialed))
}
