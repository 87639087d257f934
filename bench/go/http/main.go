// HTTP hello server, Go peer for bench/http.sh: net/http answering "Hello, World!" to every
// path, with a 10 s read timeout like gonet's http_hello example. Listens on the address
// given as the first argument; run it with GOMAXPROCS=1.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := "127.0.0.1:8080"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	body := []byte("Hello, World!")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(body)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
}
