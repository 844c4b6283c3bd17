package xnettest

import (
	"bytes"
	"context"
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
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn"
)

// xconnectSetting makes net/http's HTTP/2 server offer extended CONNECT;
// net/http reads it from GODEBUG when the process starts, so TestMain runs
// the tests in a child process that has it.
const xconnectSetting = "http2xconnect=1"

func TestMain(m *testing.M) {
	if strings.Contains(os.Getenv("GODEBUG"), xconnectSetting) {
		goleak.VerifyTestMain(m)
		return
	}
	godebug := os.Getenv("GODEBUG")
	if godebug != "" {
		godebug += ","
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug+xconnectSetting)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee := new(exec.ExitError); errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// certificate returns a self-signed certificate for 127.0.0.1 and a pool
// that trusts it.
func certificate(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pollws test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

// seen is what the server saw of one WebSocket.
type seen struct {
	method, proto string
	msgs          int
	code          wsconn.StatusCode
	err           error
}

// TestXNetFiftyStreams: with golang.org/x/net/http2's Transport as
// DialOptions.HTTP2, 50 WebSockets open as streams of one TLS connection
// the Transport keeps; each echoes a text and a 64 KiB binary message and
// closes with 4000, which the server echoes.
func TestXNetFiftyStreams(t *testing.T) {
	const n = 50
	cert, roots := certificate(t)
	ended := make(chan seen, n)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{method: r.Method, proto: r.Proto}
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			s.err = err
			ended <- s
			return
		}
		ctx := context.Background()
		for {
			m, err := c.ReadMessage(ctx)
			if err == nil {
				_, err = asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
					return c.PollWriteMessage(t, m.Type, m.Data)
				})
			}
			if err != nil {
				var ce *wsconn.CloseError
				if errors.As(err, &ce) {
					s.code = ce.Code
				}
				s.err = err
				break
			}
			s.msgs++
		}
		c.Close()
		<-c.HandlerDone()
		ended <- s
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()

	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "wss://" + srv.Listener.Addr().String() + "/ws"
	cs := make([]*wsconn.Conn, n)
	for i := range cs {
		c, err := wsconn.Dial(ctx, url, &wsconn.DialOptions{HTTP2: tr})
		if err != nil {
			t.Fatalf("Dial %d: %v", i, err)
		}
		defer c.Close()
		cs[i] = c
	}
	bin := bytes.Repeat([]byte{0, 1, 2, 3, 0xfe, 0xff}, 64<<10/6+1)[:64<<10]
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range cs {
		wg.Go(func() {
			for _, m := range []wsconn.Message{{Type: wsconn.Text, Data: fmt.Appendf(nil, "stream %d", i)}, {Type: wsconn.Binary, Data: bin}} {
				if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
					return c.PollWriteMessage(t, m.Type, m.Data)
				}); err != nil {
					errs <- fmt.Errorf("stream %d: write: %w", i, err)
					return
				}
				got, err := c.ReadMessage(ctx)
				if err != nil || got.Type != m.Type || !bytes.Equal(got.Data, m.Data) {
					errs <- fmt.Errorf("stream %d: echo of %d bytes = %d bytes of %v, %v", i, len(m.Data), len(got.Data), got.Type, err)
					return
				}
			}
			if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
				return c.ShutdownWith(t, 4000, "done")
			}); err != nil {
				errs <- fmt.Errorf("stream %d: ShutdownWith(4000) = %w", i, err)
				return
			}
			if _, err := c.ReadMessage(ctx); !isCode(err, 4000) {
				errs <- fmt.Errorf("stream %d: after the close, ReadMessage = %v; want the server's close 4000", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for range n {
		s := <-ended
		if s.method != http.MethodConnect || s.proto != "HTTP/2.0" || s.msgs != 2 || s.code != 4000 {
			t.Errorf("the server saw %s %s, %d messages, close code %d (%v); want CONNECT HTTP/2.0, 2 messages, 4000", s.method, s.proto, s.msgs, s.code, s.err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("the server accepted %d connections, want the one that carried every stream", got)
	}
}

func isCode(err error, code wsconn.StatusCode) bool {
	var ce *wsconn.CloseError
	return errors.As(err, &ce) && ce.Code == code
}
