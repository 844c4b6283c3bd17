//go:build linux

package socket_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pollws/pollws/internal/socket"
)

// streamListener returns a loopback TCP listener and a StreamListener
// over it; it skips the test where there are no raw sockets.
func streamListener(t *testing.T) (net.Listener, *socket.StreamListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl, err := socket.NewStreamListener(ln.(*net.TCPListener))
	if errors.Is(err, errors.ErrUnsupported) {
		ln.Close()
		t.Skip("no raw sockets on this system")
	}
	if err != nil {
		t.Fatal(err)
	}
	return ln, sl
}

// streamPair returns a Stream accepted by a StreamListener and the
// client's end of its connection.
func streamPair(t *testing.T) (*socket.Stream, *net.TCPConn) {
	t.Helper()
	ln, sl := streamListener(t)
	defer ln.Close()
	st, c := acceptOne(t, ln, sl)
	t.Cleanup(func() {
		st.Close()
		c.Close()
	})
	return st, c
}

// acceptOne dials ln and returns the Stream sl accepts and the client's
// end.
func acceptOne(t *testing.T, ln net.Listener, sl *socket.StreamListener) (*socket.Stream, *net.TCPConn) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	st, err := sl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return st, c.(*net.TCPConn)
}

func TestStreamIsTheAcceptedConnection(t *testing.T) {
	st, c := streamPair(t)
	if got, want := st.RemoteAddr().String(), c.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want the client's %s", got, want)
	}
	if got, want := st.LocalAddr().String(), c.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr %s, want %s", got, want)
	}
	if st.RemoteAddr().Network() != "tcp" {
		t.Errorf("RemoteAddr's network %q", st.RemoteAddr().Network())
	}
	raw, err := st.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var nodelay int
	if err := raw.Control(func(fd uintptr) {
		nodelay, err = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	}); err != nil {
		t.Fatal(err)
	}
	if nodelay == 0 {
		t.Error("TCP_NODELAY is off; the listener's accept sets it")
	}

	// Both ways, each read waiting for its bytes.
	go c.Write([]byte("ping"))
	b := make([]byte, 16)
	n, err := io.ReadAtLeast(st, b, 4)
	if err != nil || string(b[:n]) != "ping" {
		t.Fatalf("Read: %q, %v", b[:n], err)
	}
	if _, err := st.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadAtLeast(c, b, 4); err != nil || string(b[:n]) != "pong" {
		t.Fatalf("client read %q, %v", b[:n], err)
	}

	// CloseWrite ends the stream one way; reads go on.
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(b); err != io.EOF {
		t.Fatalf("client read %d, %v after CloseWrite; want EOF", n, err)
	}
	c.Write([]byte("more"))
	c.CloseWrite()
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "more" {
		t.Fatalf("ReadAll after CloseWrite: %q, %v", got, err)
	}

	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if _, err := st.Read(b); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := st.Write(b); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
	if err := st.SetReadDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetReadDeadline after Close: %v, want net.ErrClosed", err)
	}
}

func TestStreamDeadlines(t *testing.T) {
	st, c := streamPair(t)
	b := make([]byte, 16)

	// Set before any call waited: the first wait finds it.
	if err := st.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Read(b); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v", err)
	}
	var ne net.Error
	if _, err := st.Read(b); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a deadline's error %v is not a net.Error timeout", err)
	}

	// Cleared, a read waits for its bytes.
	if err := st.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	go c.Write([]byte("x"))
	if n, err := st.Read(b); err != nil || n != 1 {
		t.Fatalf("Read after the deadline was cleared: %d, %v", n, err)
	}

	// Set while a read waits: the read returns.
	done := make(chan error, 1)
	go func() {
		_, err := st.Read(b)
		done <- err
	}()
	waitBlocked(t, "socket_test.TestStreamDeadlines.func")
	if err := st.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a waiting Read returned %v when its deadline was set", err)
	}

	// A write waits while the peer reads nothing, until its deadline.
	if err := st.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	n, err := st.Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n >= 64<<20 {
		t.Fatalf("Write to a peer that reads nothing: %d, %v", n, err)
	}
}

// waitBlocked waits until a goroutine whose stack names fn is parked.
// Nothing else tells that a call waits in the runtime's poller.
func waitBlocked(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for range 2000 {
		n := runtime.Stack(buf, true)
		for _, g := range bytes.Split(buf[:n], []byte("\n\n")) {
			if bytes.Contains(g, []byte("[IO wait")) && bytes.Contains(g, []byte(fn)) {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no goroutine of %s waits", fn)
}

func TestStreamWriteWaitsForRoom(t *testing.T) {
	st, c := streamPair(t)
	const size = 16 << 20
	got := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	n, err := st.Write(make([]byte, size))
	if err != nil || n != size {
		t.Fatalf("Write: %d, %v", n, err)
	}
	st.Close()
	if n := <-got; n != size {
		t.Fatalf("the peer read %d bytes, want %d", n, size)
	}
}

func TestStreamCloseWakesAWaitingRead(t *testing.T) {
	st, _ := streamPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := st.Read(make([]byte, 1))
		done <- err
	}()
	waitBlocked(t, "socket_test.TestStreamCloseWakesAWaitingRead.func")
	st.Close()
	if err := <-done; err == nil {
		t.Fatal("a waiting Read returned no error when the Stream closed")
	}
}

func TestStreamResetDropsUnsent(t *testing.T) {
	st, c := streamPair(t)
	if q := st.Socket().OutQueue(); q != 0 {
		t.Fatalf("OutQueue of a new Stream: %d", q)
	}
	c.SetReadBuffer(4096)
	for {
		n, err := st.Socket().Writev([][]byte{make([]byte, 64<<10)})
		if errors.Is(err, socket.ErrWouldBlock) || n == 0 {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if q := st.Socket().OutQueue(); q <= 0 {
		t.Fatalf("OutQueue with a peer that reads nothing: %d", q)
	}
	st.Socket().Reset()
	st.Close()
	_, err := io.Copy(io.Discard, c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the peer's read after a reset: %v, want ECONNRESET", err)
	}
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestStreamsCloseTheirDescriptors(t *testing.T) {
	ln, sl := streamListener(t)
	defer ln.Close()
	before := openFDs(t)
	for i := range 50 {
		st, c := acceptOne(t, ln, sl)
		if i%2 == 0 {
			// A call that waits makes the duplicate; Close closes it too.
			st.SetReadDeadline(time.Now())
			st.Read(make([]byte, 1))
		}
		st.Close()
		c.Close()
	}
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors open before 50 Streams, %d after they closed", before, after)
	}
}

func TestStreamListenerClosed(t *testing.T) {
	_, sl := streamListener(t)
	done := make(chan error, 1)
	go func() {
		_, err := sl.Accept()
		done <- err
	}()
	sl.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener: %v, want net.ErrClosed", err)
	}
}

// sockopt reads an integer option of c's descriptor.
func sockopt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if cerr := raw.Control(func(fd uintptr) { v, err = syscall.GetsockoptInt(int(fd), level, opt) }); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A connection already waiting is accepted on the listener's descriptor
// with the options net gave the listener's previous connection: no delay,
// and keep-alive probes as the listener is configured, or none.
func TestStreamListenerAcceptsWaitingConnections(t *testing.T) {
	for _, tc := range []struct {
		name string
		lc   net.ListenConfig
	}{
		{"defaults", net.ListenConfig{}},
		{"no keep-alive", net.ListenConfig{KeepAlive: -1}},
		{"keep-alive configured", net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 7 * time.Second, Interval: 3 * time.Second, Count: 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := tc.lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			sl, err := socket.NewStreamListener(ln.(*net.TCPListener))
			if err != nil {
				t.Fatal(err)
			}
			if st, ok, err := sl.AcceptWaiting(); ok || st != nil || err != nil {
				t.Fatalf("AcceptWaiting before an accept through net = %v, %v, %v", st, ok, err)
			}
			first, c1 := acceptOne(t, ln, sl) // through net: the listener learns its options
			defer first.Close()
			defer c1.Close()
			if st, ok, err := sl.AcceptWaiting(); !ok || st != nil || err != nil {
				t.Fatalf("AcceptWaiting with none waiting = %v, %v, %v; want nothing", st, ok, err)
			}
			c2, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			// Over loopback the connection waits once the dial returned;
			// nothing else says so, hence the polling.
			var st *socket.Stream
			for deadline := time.Now().Add(5 * time.Second); st == nil; time.Sleep(time.Millisecond) {
				var ok bool
				if st, ok, err = sl.AcceptWaiting(); !ok || err != nil {
					t.Fatalf("AcceptWaiting = %v, %v", ok, err)
				}
				if st == nil && time.Now().After(deadline) {
					t.Fatal("the dialled connection never waited to be accepted")
				}
			}
			defer st.Close()
			if got, want := st.RemoteAddr().String(), c2.LocalAddr().String(); got != want {
				t.Errorf("RemoteAddr %s, want the client's %s", got, want)
			}
			if got := sockopt(t, st, syscall.IPPROTO_TCP, syscall.TCP_NODELAY); got != 1 {
				t.Errorf("TCP_NODELAY %d, want 1", got)
			}
			ka := sockopt(t, first, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
			if got := sockopt(t, st, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); got != ka {
				t.Errorf("SO_KEEPALIVE %d, net's accept gave %d", got, ka)
			}
			if (ka != 0) != (tc.lc.KeepAlive >= 0) {
				t.Errorf("SO_KEEPALIVE %d with KeepAlive %v", ka, tc.lc.KeepAlive)
			}
			if ka != 0 {
				for _, opt := range []int{syscall.TCP_KEEPIDLE, syscall.TCP_KEEPINTVL, syscall.TCP_KEEPCNT} {
					if got, want := sockopt(t, st, syscall.IPPROTO_TCP, opt), sockopt(t, first, syscall.IPPROTO_TCP, opt); got != want {
						t.Errorf("TCP option %d: %d, net's accept gave %d", opt, got, want)
					}
				}
			}
			if tc.lc.KeepAliveConfig.Enable {
				if got := sockopt(t, st, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE); got != 7 {
					t.Errorf("TCP_KEEPIDLE %d, want the listener's 7", got)
				}
			}
			if _, err := c2.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("read %q, %v", buf, err)
			}
		})
	}
}
