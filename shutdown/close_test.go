package shutdown_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
)

// Close flushes every queued byte, then sends the end, then closes: the
// peer, reading three bytes at a time, gets the data, then the close
// marker, then EOF, and Close is called only once all of it left.
func TestCloseFlushesThenEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newConn(64)
		data := strings.Repeat("0123456789abcdef", 4)
		c.queue(t, data)
		got := c.read(3)
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()

		if err := shutdown.Close(ctx, codedConn{c}); err != nil {
			t.Fatalf("Close = %v, want nil", err)
		}
		r := <-got
		if want := data + "<close 1000>"; r.data != want || r.err != io.EOF {
			t.Fatalf("peer got %q, %v; want %q, EOF: the data, then the end", r.data, r.err, want)
		}
		if _, closes, atClose := c.state(); closes != 1 || atClose != "shut=true buffered=0" {
			t.Fatalf("Close called %d times, first when %s; want once, when shut=true buffered=0", closes, atClose)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("Close took %v of fake time, want 0: it waited for no deadline", d)
		}
	})
}

// At the deadline, with a peer that never reads, Close closes hard and
// says how many bytes did not leave; it does not wait a moment longer.
func TestCloseDeadlineStuckPeer(t *testing.T) {
	const queued = 1000
	tests := []struct {
		name      string
		writer    func(c *conn) asyncio.AsyncWriter
		wantBytes int64
		wantClose bool
	}{
		{"plain", func(c *conn) asyncio.AsyncWriter { return c }, queued, true},
		{"CodeShutdowner", func(c *conn) asyncio.AsyncWriter { return codedConn{c} }, queued, true},
		{"BufferedReporter", func(c *conn) asyncio.AsyncWriter { return bufferedConn{c} }, queued, true},
		{"Pipe (Buffered, no Close)", func(c *conn) asyncio.AsyncWriter { return c.w }, queued, false},
		{"opaque (bytes unknown)", func(c *conn) asyncio.AsyncWriter { return opaque{c} }, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newConn(queued)
				defer c.r.Close()
				c.queue(t, strings.Repeat("x", queued))
				start := time.Now()
				ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
				defer cancel()

				err := shutdown.Close(ctx, tt.writer(c))
				if d := time.Since(start); d != 3*time.Second {
					t.Errorf("Close returned after %v, want at the 3s deadline", d)
				}
				var ue *shutdown.UndeliveredError
				if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Close = %v, want an *UndeliveredError wrapping context.DeadlineExceeded", err)
				}
				if ue.Bytes != tt.wantBytes {
					t.Errorf("Bytes = %d, want %d", ue.Bytes, tt.wantBytes)
				}
				if _, closes, _ := c.state(); (closes == 1) != tt.wantClose {
					t.Errorf("Close called %d times; want closed hard: %v", closes, tt.wantClose)
				}
				if tt.wantBytes < 0 && !strings.Contains(err.Error(), "unknown number of bytes") {
					t.Errorf("error %q does not say the count is unknown", err)
				}
			})
		})
	}
}

// A context that is already done still gets one poll: a writer with
// nothing pending shuts down cleanly, one with bytes queued is closed
// hard at once.
func TestCloseContextAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	w, r := asyncio.Pipe(16)
	defer r.Close()
	if err := shutdown.Close(ctx, w); err != nil {
		t.Fatalf("Close of an empty writer = %v, want nil", err)
	}

	c := newConn(7) // full: the end marker cannot be queued
	c.queue(t, "pending")
	err := shutdown.Close(ctx, c)
	var ue *shutdown.UndeliveredError
	if !errors.As(err, &ue) || ue.Bytes != 7 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want 7 bytes undelivered and context.Canceled", err)
	}
}

// When the peer goes away during the shutdown, Close reports the
// writer's error and what it still held, and closes it.
func TestClosePeerGoesAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newConn(100)
		c.queue(t, strings.Repeat("y", 100))
		done := make(chan error, 1)
		go func() { done <- shutdown.Close(t.Context(), c) }()
		synctest.Wait()
		c.r.Close()
		err := <-done
		var ue *shutdown.UndeliveredError
		if !errors.As(err, &ue) || ue.Bytes != 100 || !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("Close = %v, want 100 bytes undelivered and io.ErrClosedPipe", err)
		}
		if _, closes, _ := c.state(); closes != 1 {
			t.Fatalf("Close called %d times, want 1", closes)
		}
	})
}

// An error from closing the writer after a clean shutdown is returned,
// unless it says the writer was closed already; it is not an
// UndeliveredError.
func TestCloseReleaseError(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		closeErr error
		wantErr  bool
	}{
		{nil, false},
		{net.ErrClosed, false},
		{boom, true},
	} {
		c := newConn(8)
		c.closeErr = tt.closeErr
		got := c.read(64)
		err := shutdown.Close(context.Background(), c)
		<-got
		var ue *shutdown.UndeliveredError
		switch {
		case !tt.wantErr && err != nil:
			t.Errorf("Close with a close error %v = %v, want nil", tt.closeErr, err)
		case tt.wantErr && (!errors.Is(err, boom) || errors.As(err, &ue)):
			t.Errorf("Close = %v, want it to wrap %v and not be an UndeliveredError", err, boom)
		}
	}
}

func TestUndeliveredErrorMessage(t *testing.T) {
	for _, tt := range []struct {
		e    shutdown.UndeliveredError
		want string
	}{
		{shutdown.UndeliveredError{Bytes: 42, Err: context.DeadlineExceeded}, "shutdown: closed hard with 42 bytes undelivered: context deadline exceeded"},
		{shutdown.UndeliveredError{Bytes: -1, Err: io.ErrClosedPipe}, "shutdown: closed hard with an unknown number of bytes undelivered: io: read/write on closed pipe"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
