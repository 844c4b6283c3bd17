// Package wstest makes real connections for the tests of package wsconn:
// loopback TCP, Unix sockets, and TLS over TCP with a certificate made in
// memory.
//
// The New functions return errors and leave closing to the caller, for
// constructors such as an asynciotest.MakeWriter; the Pair functions fail
// the test instead and close both ends when it ends.
package wstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pollws/pollws/internal/socket"
)

// Small socket buffer sizes, so that a writer fills a socket after a few
// hundred KiB instead of several MiB. The receive buffer stays larger
// than the loopback MSS (64 KiB): below it, the receiver holds back window
// updates and the sender stalls on zero-window probes.
const (
	SendBuffer = 16 << 10
	RecvBuffer = 64 << 10
)

// Connect accepts one connection from l and dials it, then closes l.
func Connect(l net.Listener) (server, client net.Conn, err error) {
	defer l.Close()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		ch <- result{c, err}
	}()
	client, err = net.Dial(l.Addr().Network(), l.Addr().String())
	if err != nil {
		l.Close() // ends the Accept
	}
	r := <-ch
	if err != nil || r.err != nil {
		for _, c := range []net.Conn{client, r.c} {
			if c != nil {
				c.Close()
			}
		}
		return nil, nil, fmt.Errorf("connecting a %s pair: dial: %v, accept: %v", l.Addr().Network(), err, r.err)
	}
	return r.c, client, nil
}

// NewTCP returns the two ends of a loopback TCP connection. With small
// set, the server's send buffer is [SendBuffer] and the client's receive
// buffer [RecvBuffer].
func NewTCP(small bool) (server, client *net.TCPConn, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	s, c, err := Connect(l)
	if err != nil {
		return nil, nil, err
	}
	server, client = s.(*net.TCPConn), c.(*net.TCPConn)
	if small {
		server.SetWriteBuffer(SendBuffer)
		client.SetReadBuffer(RecvBuffer)
	}
	return server, client, nil
}

// NewUnix returns the two ends of a Unix stream socket connection, with
// small buffers as for [NewTCP]. The socket file is removed at once.
func NewUnix(small bool) (server, client *net.UnixConn, err error) {
	dir, err := os.MkdirTemp("", "ws")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		return nil, nil, err
	}
	s, c, err := Connect(l)
	if err != nil {
		return nil, nil, err
	}
	server, client = s.(*net.UnixConn), c.(*net.UnixConn)
	if small {
		server.SetWriteBuffer(SendBuffer)
		client.SetReadBuffer(RecvBuffer)
	}
	return server, client, nil
}

// NewTLS returns the two ends of a TLS connection over loopback TCP with
// the handshake done, and the TCP connections under them; small is as for
// [NewTCP].
func NewTLS(small bool) (server, client *tls.Conn, tcpServer, tcpClient *net.TCPConn, err error) {
	return newTLS(small, false)
}

// NewTLSSocket is [NewTLS] with the server's TLS over a socket.Conn, as
// wsconn.NewListener accepts them: a Conn over it runs TLS without a
// goroutine.
func NewTLSSocket(small bool) (server, client *tls.Conn, tcpServer, tcpClient *net.TCPConn, err error) {
	return newTLS(small, true)
}

func newTLS(small, sock bool) (server, client *tls.Conn, tcpServer, tcpClient *net.TCPConn, err error) {
	sc, cc, err := Configs()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	tcpServer, tcpClient, err = NewTCP(small)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var under net.Conn = tcpServer
	if sock {
		if w := socket.Wrap(tcpServer); w != nil {
			under = w
		}
	}
	server, client = tls.Server(under, sc), tls.Client(tcpClient, cc)
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	err = client.Handshake()
	if err != nil {
		tcpClient.Close()
	}
	if serr := <-errc; err == nil {
		err = serr
	}
	if err != nil {
		tcpServer.Close()
		tcpClient.Close()
		return nil, nil, nil, nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return server, client, tcpServer, tcpClient, nil
}

// TCPPair is [NewTCP] for a test.
func TCPPair(tb testing.TB, small bool) (server, client *net.TCPConn) {
	tb.Helper()
	server, client, err := NewTCP(small)
	closeAtEnd(tb, err, server, client)
	return server, client
}

// UnixPair is [NewUnix] for a test.
func UnixPair(tb testing.TB, small bool) (server, client *net.UnixConn) {
	tb.Helper()
	server, client, err := NewUnix(small)
	closeAtEnd(tb, err, server, client)
	return server, client
}

// TLSPair is [NewTLS] for a test.
func TLSPair(tb testing.TB, small bool) (server, client *tls.Conn) {
	tb.Helper()
	server, client, _, _, err := NewTLS(small)
	closeAtEnd(tb, err, server, client)
	return server, client
}

func closeAtEnd(tb testing.TB, err error, a, b net.Conn) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		a.Close()
		b.Close()
	})
}

var (
	certOnce sync.Once
	cert     tls.Certificate
	roots    *x509.CertPool
	certErr  error
)

// Certificate returns a self-signed ECDSA certificate for 127.0.0.1 and
// localhost, made in memory once per test binary, and a pool that trusts
// it.
func Certificate() (tls.Certificate, *x509.CertPool, error) {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "pollws test"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:              []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			certErr = err
			return
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			certErr = err
			return
		}
		cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		roots = x509.NewCertPool()
		roots.AddCert(leaf)
	})
	if certErr != nil {
		return tls.Certificate{}, nil, errors.Join(errors.New("wstest: making a certificate"), certErr)
	}
	return cert, roots, nil
}

// Configs returns a server configuration with the [Certificate] and a
// client configuration that trusts it.
func Configs() (server, client *tls.Config, err error) {
	c, pool, err := Certificate()
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{c}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, nil
}
