// tls_peer: Go's crypto/tls client as a peer of the reactor's TLS record layer, for
// gonet/tests/reactor_tls_go.rs. Usage: tls_peer ADDR CA_PEM. For TLS 1.3 and for TLS 1.2
// with each AEAD suite, it connects (verifying the server as localhost against CA_PEM),
// echoes messages from 1 byte to 300 KB (each written by a goroutine while the reply is read),
// then sends close_notify (CloseWrite) and expects a clean end of stream: the server's own
// close_notify. It prints one line per case: "NAME VERSION SUITE ok".
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
)

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

func main() {
	addr, caFile := os.Args[1], os.Args[2]
	pem, err := os.ReadFile(caFile)
	if err != nil {
		fail("read %s: %v", caFile, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fail("no certificate in %s", caFile)
	}
	base := func() *tls.Config { return &tls.Config{RootCAs: roots, ServerName: "localhost"} }
	cases := []struct {
		name string
		cfg  *tls.Config
	}{
		{"tls13", base()},
		{"tls12-aes128gcm", base()},
		{"tls12-aes256gcm", base()},
		{"tls12-chacha20", base()},
	}
	cases[0].cfg.MinVersion = tls.VersionTLS13
	suites := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	}
	for i, s := range suites {
		cases[i+1].cfg.MaxVersion = tls.VersionTLS12
		cases[i+1].cfg.CipherSuites = []uint16{s}
	}
	for _, c := range cases {
		conn, err := tls.Dial("tcp", addr, c.cfg)
		if err != nil {
			fail("%s: dial: %v", c.name, err)
		}
		for i, n := range []int{1, 64, 4096, 16384, 70000, 300000} {
			msg := make([]byte, n)
			for k := range msg {
				msg[k] = byte(k*31 + i)
			}
			go conn.Write(msg)
			got := make([]byte, n)
			if _, err := io.ReadFull(conn, got); err != nil {
				fail("%s: echo of %d bytes: %v", c.name, n, err)
			}
			if !bytes.Equal(got, msg) {
				fail("%s: echo of %d bytes altered", c.name, n)
			}
		}
		if err := conn.CloseWrite(); err != nil {
			fail("%s: close_notify: %v", c.name, err)
		}
		rest, err := io.ReadAll(conn)
		if err != nil || len(rest) != 0 {
			fail("%s: after close_notify: %d bytes, %v", c.name, len(rest), err)
		}
		st := conn.ConnectionState()
		fmt.Printf("%s %x %s ok\n", c.name, st.Version, tls.CipherSuiteName(st.CipherSuite))
		conn.Close()
	}
}
