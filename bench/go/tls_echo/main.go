// TLS echo server for the Go peer of bench/tls.sh: crypto/tls over net.Listen on the address
// given as the first argument, one goroutine per connection, read a record's worth (up to
// 64 KiB) and write it all back. The certificate is self-signed (ECDSA P-256, for localhost,
// 127.0.0.1 and ::1), made at start as the Rust servers make theirs, and its PEM written to
// $TMPDIR/gonet-go_tls_echo-cert.pem (the client's CA file). TLS 1.2 and 1.3 with Go's
// defaults; the cipher suite is the client's choice (tls_loadgen offers TLS 1.3
// AES-128-GCM only). Run it with GOMAXPROCS=1.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

func handle(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64*1024)
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

func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gonet bench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pemBytes, nil
}

func main() {
	addr := "127.0.0.1:9443"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	cert, pemBytes, err := selfSigned()
	if err != nil {
		fmt.Fprintln(os.Stderr, "certificate:", err)
		os.Exit(1)
	}
	path := filepath.Join(os.TempDir(), "gonet-go_tls_echo-cert.pem")
	if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "write certificate:", err)
		os.Exit(1)
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "go_tls_echo: listening on", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "accept:", err)
			continue
		}
		go handle(c)
	}
}
