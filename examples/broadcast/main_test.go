package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// smallSendBuffers is a listener that gives its first n connections a
// small send buffer, so that a subscriber that does not read stalls its
// server side soon.
type smallSendBuffers struct {
	net.Listener
	n, size int
	mu      sync.Mutex
	done    int
}

func (l *smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	l.mu.Lock()
	small := l.done < l.n
	l.done++
	l.mu.Unlock()
	if tc, ok := c.(*net.TCPConn); ok && small {
		tc.SetWriteBuffer(l.size)
	}
	return c, err
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testServer is the server running on a loopback port.
type testServer struct {
	*server
	addr       string
	subscribed chan struct{} // a value per subscriber that joined
	left       chan struct{} // a value per subscriber whose connection ended
	out        syncBuffer
	stop       context.CancelFunc
	done       chan error
	once       sync.Once
	err        error
}

// testConfig is the default configuration, on a free port, without
// generator.
func testConfig(t *testing.T) config {
	t.Helper()
	cfg, err := parseFlags([]string{"-addr", "127.0.0.1:0", "-rate", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startServer serves cfg on a loopback listener whose first small
// connections have a send buffer of sendBuf bytes, until the test ends.
// The server logs to h, or, when h is nil, to the test's log with -v.
func startServer(t *testing.T, cfg config, small, sendBuf int, h slog.Handler) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if small > 0 {
		ln = &smallSendBuffers{Listener: ln, n: small, size: sendBuf}
	}
	if h == nil {
		h = slog.NewTextHandler(io.Discard, nil)
		if testing.Verbose() {
			h = slog.NewTextHandler(tWriter{t}, nil)
		}
	}
	log := slog.New(h)
	ts := &testServer{server: newServer(cfg, log), addr: ln.Addr().String(), subscribed: make(chan struct{}, 4096), left: make(chan struct{}, 4096), done: make(chan error, 1)}
	ts.onSubscribe = func() { ts.subscribed <- struct{}{} }
	ts.onLeave = func() { ts.left <- struct{}{} }
	ctx, stop := context.WithCancel(context.Background())
	ts.stop = stop
	go func() { ts.done <- ts.serve(ctx, ln, &ts.out) }()
	t.Cleanup(func() { ts.shutdown(t) })
	return ts
}

// shutdown stops the server as SIGINT does, waits for its drain, and
// returns what serve returned. Later calls return the same.
func (ts *testServer) shutdown(t *testing.T) error {
	t.Helper()
	ts.once.Do(func() {
		ts.stop()
		select {
		case ts.err = <-ts.done:
		case <-time.After(30 * time.Second):
			ts.err = errors.New("the server did not drain in time")
		}
	})
	if ts.err != nil {
		t.Errorf("serve: %v", ts.err)
	}
	return ts.err
}

// waitSubscribed waits until n more subscribers joined the hub.
func (ts *testServer) waitSubscribed(t *testing.T, n int) {
	t.Helper()
	waitN(t, ts.subscribed, n, "subscribers to join")
}

// waitLeft waits until the connections of n more subscribers ended.
func (ts *testServer) waitLeft(t *testing.T, n int) {
	t.Helper()
	waitN(t, ts.left, n, "subscribers to leave")
}

func waitN(t *testing.T, c <-chan struct{}, n int, what string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for i := range n {
		select {
		case <-c:
		case <-timeout:
			t.Fatalf("timed out waiting for %s: %d of %d", what, i, n)
		}
	}
}

// dial connects a gorilla client to path with a socket receive buffer of
// recvBuf bytes (0: the system's).
func (ts *testServer) dial(t *testing.T, path string, recvBuf int) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok && recvBuf > 0 {
			tc.SetReadBuffer(recvBuf)
		}
		return c, err
	}}
	c, _, err := d.Dial("ws://"+ts.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tWriter sends log lines to the test's log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
