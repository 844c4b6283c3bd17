package load

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// serve serves handle on a loopback listener, over TLS with cfg when it
// is not nil, until the test ends; then it closes the connections and
// waits for their goroutines.
func serve(t *testing.T, cfg *tls.Config, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// byteEcho sends back every byte: a correct echo of the Raw protocol.
func byteEcho(c net.Conn) {
	io.CopyBuffer(c, c, make([]byte, 32<<10))
}

// wsEcho upgrades c and echoes every data message, batching replies until
// nothing more is buffered, as the gobwas server of the benchmarks does.
func wsEcho(c net.Conn) {
	if _, err := ws.Upgrade(c); err != nil {
		return
	}
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	var p []byte
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return
		}
		p = append(p[:0], make([]byte, h.Length)...)
		if _, err := io.ReadFull(br, p); err != nil {
			return
		}
		ws.Cipher(p, h.Mask, 0)
		h.Masked = false
		if err := ws.WriteHeader(bw, h); err != nil {
			return
		}
		bw.Write(p)
		if br.Buffered() == 0 && bw.Flush() != nil {
			return
		}
	}
}

// rawTamper echoes Raw messages through f, which returns what to send
// back for message i (nothing, m itself, or other messages).
func rawTamper(f func(i int, m []byte) [][]byte) func(net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			var n [4]byte
			if _, err := io.ReadFull(br, n[:]); err != nil {
				return
			}
			m := make([]byte, binary.BigEndian.Uint32(n[:]))
			if _, err := io.ReadFull(br, m); err != nil {
				return
			}
			for _, out := range f(i, m) {
				c.Write(binary.BigEndian.AppendUint32(nil, uint32(len(out))))
				c.Write(out)
			}
		}
	}
}

// testTLS returns a server configuration with a certificate for
// 127.0.0.1 and a client configuration that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

func dial(t *testing.T, p Proto, addr string, o *DialOptions) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), p, addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEcho(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	for _, p := range []Proto{WebSocket, Raw} {
		for _, useTLS := range []bool{false, true} {
			name := p.String()
			var sc, cc *tls.Config
			if useTLS {
				name, sc, cc = name+"/tls", serverTLS, clientTLS
			}
			t.Run(name, func(t *testing.T) {
				handle := byteEcho
				if p == WebSocket {
					handle = wsEcho
				}
				c := dial(t, p, serve(t, sc, handle), &DialOptions{TLS: cc})
				var h Histogram
				err := c.Echo(context.Background(), &EchoOptions{Size: 300, Window: 8, Messages: 2000, Latency: &h})
				if err != nil {
					t.Fatal(err)
				}
				if c.Received() != 2000 || h.Count() != 2000 {
					t.Fatalf("received %d, recorded %d; want 2000", c.Received(), h.Count())
				}
				if h.Quantile(0.5) <= 0 {
					t.Fatalf("median round trip %v", h.Quantile(0.5))
				}
			})
		}
	}
}

func TestEchoCatchesWrongEchoes(t *testing.T) {
	var held []byte
	for _, tc := range []struct {
		name string
		f    func(i int, m []byte) [][]byte
	}{
		{"a byte changed", func(i int, m []byte) [][]byte {
			if i == 10 {
				m[50] ^= 1
			}
			return [][]byte{m}
		}},
		{"a message lost", func(i int, m []byte) [][]byte {
			if i == 10 {
				return nil
			}
			return [][]byte{m}
		}},
		{"two messages swapped", func(i int, m []byte) [][]byte {
			switch i {
			case 10:
				held = m
				return nil
			case 11:
				return [][]byte{m, held}
			}
			return [][]byte{m}
		}},
		{"a message cut short", func(i int, m []byte) [][]byte {
			if i == 10 {
				return [][]byte{m[:len(m)-1]}
			}
			return [][]byte{m}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, Raw, serve(t, nil, rawTamper(tc.f)), nil)
			err := c.Echo(context.Background(), &EchoOptions{Size: 128, Window: 4, Messages: 100})
			if !errors.Is(err, ErrWrongEcho) {
				t.Fatalf("Echo: %v, want ErrWrongEcho", err)
			}
		})
	}
}

func TestEchoEndsWithContext(t *testing.T) {
	c := dial(t, Raw, serve(t, nil, func(c net.Conn) { io.Copy(io.Discard, c) }), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Echo(ctx, &EchoOptions{Window: 4}) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Echo after its context ended: %v, want nil", err)
	}
}

func TestEchoAllocatesNothingPerMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("counts the process's allocations over 40,000 messages")
	}
	c := dial(t, Raw, serve(t, nil, byteEcho), nil)
	mallocs := func(n int64) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := c.Echo(context.Background(), &EchoOptions{Window: 16, Messages: n}); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.Mallocs - before.Mallocs
	}
	small, large := mallocs(1000), mallocs(41000)
	if per := float64(int64(large)-int64(small)) / 40000; per > 0.01 {
		t.Fatalf("%.3f allocations per message, want none (%d for 1,000 messages, %d for 41,000)", per, small, large)
	}
}

func TestPace(t *testing.T) {
	c := dial(t, WebSocket, serve(t, nil, wsEcho), nil)
	var h Histogram
	start := time.Now()
	err := c.Pace(context.Background(), &PaceOptions{Size: 64, Rate: 10000, Messages: 300, Latency: &h})
	if err != nil {
		t.Fatal(err)
	}
	if c.Received() != 300 || h.Count() != 300 {
		t.Fatalf("received %d, recorded %d; want 300", c.Received(), h.Count())
	}
	if d := time.Since(start); d < 29*time.Millisecond {
		t.Fatalf("300 messages at 10,000/s took %v, under the 30 ms the rate allows", d)
	}
}

func TestPaceEndsWithContext(t *testing.T) {
	c := dial(t, WebSocket, serve(t, nil, wsEcho), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Pace(ctx, nil) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Pace after its context ended: %v, want nil", err)
	}
}

func TestExchange(t *testing.T) {
	for _, p := range []Proto{WebSocket, Raw} {
		handle := byteEcho
		if p == WebSocket {
			handle = wsEcho
		}
		c := dial(t, p, serve(t, nil, handle), nil)
		if err := c.Exchange(128); err != nil {
			t.Fatal(err)
		}
		if c.Received() != 1 || c.rd.buf != nil {
			t.Fatalf("%v: received %d, read buffer of %d bytes; want 1 and none", p, c.Received(), len(c.rd.buf))
		}
	}
}

func TestDialFromLocalIP(t *testing.T) {
	from := make(chan net.Addr, 1)
	addr := serve(t, nil, func(c net.Conn) { from <- c.RemoteAddr() })
	dial(t, Raw, addr, &DialOptions{LocalIP: net.IPv4(127, 0, 0, 2)})
	if got := (<-from).(*net.TCPAddr).IP; !got.Equal(net.IPv4(127, 0, 0, 2)) {
		t.Fatalf("the server saw %v, want 127.0.0.2", got)
	}
}

func TestDialErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if _, err := Dial(context.Background(), Raw, closed, nil); err == nil {
		t.Fatal("Dial to a closed port: no error")
	}
	notWS := serve(t, nil, func(c net.Conn) { c.Write([]byte("HTTP/1.1 404 Not Found\r\n\r\n")) })
	if _, err := Dial(context.Background(), WebSocket, notWS, nil); err == nil {
		t.Fatal("Dial to a server that refuses the upgrade: no error")
	}
	_, clientTLS := testTLS(t) // a certificate the plain server never shows
	if _, err := Dial(context.Background(), Raw, serve(t, nil, byteEcho), &DialOptions{TLS: clientTLS, Timeout: time.Second}); err == nil {
		t.Fatal("Dial over TLS to a plain server: no error")
	}
}

func TestDialKeepsWhatCameWithTheHandshake(t *testing.T) {
	addr := serve(t, nil, func(c net.Conn) {
		bw := bufio.NewWriter(c) // the response and a message in one write
		rw := struct {
			io.Reader
			io.Writer
		}{c, bw}
		if _, err := ws.Upgrade(rw); err != nil {
			return
		}
		ws.WriteFrame(bw, ws.NewBinaryFrame([]byte("early")))
		bw.Flush()
		io.Copy(io.Discard, c)
	})
	c := dial(t, WebSocket, addr, nil)
	c.SetReadDeadline(time.Now().Add(5 * time.Second)) // a lost message fails, not hangs
	m, err := c.ReadMessage()
	if err != nil || string(m) != "early" {
		t.Fatalf("ReadMessage: %q, %v; want \"early\"", m, err)
	}
}

func TestEchoAll(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	for _, tc := range []struct {
		name   string
		proto  Proto
		tls    bool
		size   int
		window int
		n      int64
	}{
		{"websocket", WebSocket, false, 128, 4, 100},
		{"raw", Raw, false, 128, 4, 100},
		{"websocket/tls", WebSocket, true, 128, 4, 100},
		// A window of 16 MiB does not fit the socket buffers: writes come
		// back short and the rest waits for EPOLLOUT.
		{"raw/short writes", Raw, false, 1 << 20, 16, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sc, cc *tls.Config
			if tc.tls {
				sc, cc = serverTLS, clientTLS
			}
			handle := byteEcho
			if tc.proto == WebSocket {
				handle = wsEcho
			}
			addr := serve(t, sc, handle)
			var conns []*Conn
			for range 5 {
				conns = append(conns, dial(t, tc.proto, addr, &DialOptions{TLS: cc}))
			}
			if err := EchoAll(context.Background(), conns, &EchoOptions{Size: tc.size, Window: tc.window, Messages: tc.n}); err != nil {
				t.Fatal(err)
			}
			for i, c := range conns {
				if c.Received() != tc.n {
					t.Fatalf("connection %d received %d, want %d", i, c.Received(), tc.n)
				}
			}
		})
	}
}

func TestEchoAllCatchesAWrongEcho(t *testing.T) {
	addr := serve(t, nil, rawTamper(func(i int, m []byte) [][]byte {
		if i == 50 {
			m[len(m)-1]++
		}
		return [][]byte{m}
	}))
	conns := []*Conn{dial(t, Raw, addr, nil), dial(t, Raw, addr, nil)}
	err := EchoAll(context.Background(), conns, &EchoOptions{Window: 4, Messages: 100})
	if !errors.Is(err, ErrWrongEcho) {
		t.Fatalf("EchoAll: %v, want ErrWrongEcho", err)
	}
}

func TestEchoAllEndsWithContext(t *testing.T) {
	addr := serve(t, nil, byteEcho)
	conns := []*Conn{dial(t, Raw, addr, nil), dial(t, Raw, addr, nil), dial(t, Raw, addr, nil)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- EchoAll(ctx, conns, &EchoOptions{Window: 8}) }()
	for conns[0].Received() < 1000 { // running: the context ends a loop in progress
		runtime.Gosched()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("EchoAll after its context ended: %v, want nil", err)
	}
	for _, c := range conns {
		if err := c.Close(); err != nil {
			t.Fatalf("Close after EchoAll: %v", err)
		}
	}
}

func TestEchoAllRejectsLatency(t *testing.T) {
	if err := EchoAll(context.Background(), nil, &EchoOptions{Latency: new(Histogram)}); err == nil {
		t.Fatal("EchoAll with a histogram: no error")
	}
}

func TestPaceEndsWhenWritesFail(t *testing.T) {
	// The server never answers; the client's writes fail at once. The
	// reads, which would wait for ever, must end too.
	c := dial(t, Raw, serve(t, nil, func(c net.Conn) { io.Copy(io.Discard, c) }), nil)
	c.SetWriteDeadline(aLongTimeAgo)
	done := make(chan error, 1)
	go func() { done <- c.Pace(context.Background(), &PaceOptions{Size: 64, Rate: 100000}) }()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Pace: %v, want the writes' os.ErrDeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pace still waits 10 s after its writes failed")
	}
}
