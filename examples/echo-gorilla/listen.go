package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"
)

// listen opens cfg's listener, bounded by -max-conns and with TLS when
// cfg asks for it, and returns the page's URL. With -tls it prints the
// certificate's fingerprint to out.
func listen(cfg config, out io.Writer) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, "", err
	}
	if cfg.maxConns > 0 {
		ln = newLimitListener(ln, cfg.maxConns)
	}
	if !cfg.tls && cfg.certFile == "" {
		return ln, "http://" + ln.Addr().String() + "/", nil
	}
	var cert tls.Certificate
	if cfg.certFile != "" {
		cert, err = tls.LoadX509KeyPair(cfg.certFile, cfg.keyFile)
	} else {
		host, _, _ := net.SplitHostPort(ln.Addr().String())
		var fp string
		cert, fp, err = selfSigned(host, "localhost", "127.0.0.1", "::1")
		if err == nil {
			fmt.Fprintf(out, "self-signed certificate, SHA-256 fingerprint %s\n", fp)
		}
	}
	if err != nil {
		ln.Close()
		return nil, "", fmt.Errorf("certificate: %w", err)
	}
	// WebSockets here are HTTP/1.1 upgrades.
	ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	return ln, "https://" + ln.Addr().String() + "/", nil
}

// limitListener holds at most n connections at once, whatever they
// carry: when n are open, Accept waits for one of them to close, and new
// clients wait in the kernel's backlog. It bounds the descriptors the
// server uses; the WebSocket limit, a little lower, keeps a few places
// for page requests.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its place back when it closes.
type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// CloseWrite ends the sending side (TCP FIN), as *net.TCPConn's does: the
// gorillaws.Writer uses it to end a connection whose peer sent bad input
// without a reset.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// wsLimit returns how many WebSocket connections -max-conns admits: all
// but a few, kept for page requests and for refusing upgrades with 503.
// 0 means no limit.
func wsLimit(maxConns int) int {
	if maxConns == 0 {
		return 0
	}
	reserve := min(max(maxConns/10, 1), 16)
	return max(maxConns-reserve, 1)
}

// selfSigned makes a certificate for hosts (names or IP addresses), valid
// for a day, entirely in memory, and returns it with its SHA-256
// fingerprint in the colon-separated form browsers show.
func selfSigned(hosts ...string) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"echo-gorilla (self-signed)"}},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	sum := sha256.Sum256(der)
	hex := make([]string, len(sum))
	for i, b := range sum {
		hex[i] = fmt.Sprintf("%02X", b)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, strings.Join(hex, ":"), nil
}
