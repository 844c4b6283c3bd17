package wsconn

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/asyncio/asynciotest"
)

// TestConnShutdownWaitsForPeer checks the whole closing handshake with a
// gorilla client that answers the close frame: ShutdownWith is Ready once
// the answer came, and the client saw the code and reason.
func TestConnShutdownWaitsForPeer(t *testing.T) {
	c, peer, err := connServerPair(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	defer c.Close()
	var clientErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for clientErr == nil {
			_, _, clientErr = peer.WS.ReadMessage()
		}
	})
	if _, err := c.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	_, err = asyncio.BlockOn(context.Background(), func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
		return c.ShutdownWith(t, StatusGoingAway, "draining")
	})
	if err != nil {
		t.Fatalf("ShutdownWith = %v", err)
	}
	wg.Wait()
	var ce *websocket.CloseError
	if !errors.As(clientErr, &ce) || ce.Code != 1001 || ce.Text != "draining" {
		t.Fatalf("the client's read ended with %v, want close 1001 \"draining\"", clientErr)
	}
	if code := closeCode(c); code != StatusGoingAway {
		t.Errorf("CloseCode = %d, want the peer's answer 1001", code)
	}
	if r, err := c.Shutdown(nil); err != nil || !r.Ready {
		t.Errorf("Shutdown after completion = %+v, %v; want Ready", r, err)
	}
	if _, _, err := readMessage(context.Background(), c); !errors.As(err, new(*CloseError)) {
		t.Errorf("ReadMessage after Shutdown = %v, want the peer's *CloseError", err)
	}
}

// TestConnShutdownWithReadLoop checks that when the application's read
// loop is running, it is the one that sees the peer's close.
func TestConnShutdownWithReadLoop(t *testing.T) {
	c, peer, err := connServerPair(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	defer c.Close()
	reading := make(chan struct{})
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		close(reading)
		for readErr == nil {
			_, _, readErr = readMessage(context.Background(), c)
		}
	})
	wg.Go(func() {
		for {
			if _, _, err := peer.WS.ReadMessage(); err != nil {
				return
			}
		}
	})
	<-reading
	if err := peer.WS.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := asyncio.Shutdown(context.Background(), c); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	wg.Wait()
	var ce *CloseError
	if !errors.As(readErr, &ce) || ce.Code != StatusNormalClosure {
		t.Fatalf("the read loop ended with %v, want *CloseError 1000", readErr)
	}
}

// TestConnPeerCloses checks that a read answers the peer's close frame
// with its code and ends with a *CloseError.
func TestConnPeerCloses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   []byte
		code   StatusCode
		reason string
	}{
		{"4000 with reason", websocket.FormatCloseMessage(4000, "done"), 4000, "done"},
		{"1001", websocket.FormatCloseMessage(1001, ""), 1001, ""},
		{"no status", nil, StatusNoStatusRcvd, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer, err := connServerPair(false, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			defer c.Close()
			if err := peer.WS.WriteControl(websocket.CloseMessage, tc.body, time.Time{}); err != nil {
				t.Fatal(err)
			}
			_, _, err = readMessage(context.Background(), c)
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != tc.code || ce.Reason != tc.reason {
				t.Fatalf("ReadMessage = %v, want *CloseError{%d, %q}", err, tc.code, tc.reason)
			}
			_, _, perr := peer.WS.ReadMessage()
			var pce *websocket.CloseError
			if !errors.As(perr, &pce) || pce.Code != int(tc.code) {
				t.Fatalf("the peer's read = %v, want the echo of close %d", perr, tc.code)
			}
			if r, err := c.Shutdown(nil); err != nil || !r.Ready {
				t.Errorf("Shutdown after the peer's close = %+v, %v; want Ready", r, err)
			}
			if _, err := c.PollWriteMessage(nil, Text, []byte("x")); !errors.Is(err, asyncio.ErrShutdown) {
				t.Errorf("PollWriteMessage after the close = %v, want ErrShutdown", err)
			}
		})
	}
}

// TestConnShutdownTimesOut checks that Shutdown gives up on a peer that
// never answers after CloseTimeout, closes the connection, and says so.
func TestConnShutdownTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		c := Server(a, &Options{CloseTimeout: 3 * time.Second})
		defer c.Close()
		var wg sync.WaitGroup
		wg.Go(func() { io.Copy(io.Discard, b) }) // reads, never answers
		defer wg.Wait()

		k := newCWWaker()
		start := time.Now()
		var err error
		for {
			var r asyncio.Async[struct{}]
			if r, err = c.Shutdown(k.task); err != nil || r.Ready {
				break
			}
			<-k.ch
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want os.ErrDeadlineExceeded", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("Shutdown gave up after %v, want the 3s CloseTimeout", d)
		}
		if _, err := c.Shutdown(nil); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Shutdown again = %v, want the same error", err)
		}
		if _, err := a.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("the connection is open after Shutdown: Write = %v", err)
		}
	})
}

func TestConnShutdownRejectsBadCode(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := Server(a, nil)
	defer c.Close()
	for _, code := range []StatusCode{0, 999, 1005, 1006, 1015, 5000} {
		if _, err := c.ShutdownWith(nil, code, ""); err == nil {
			t.Errorf("ShutdownWith(%d) = nil error", code)
		}
	}
	long := string(make([]byte, 124))
	if _, err := c.ShutdownWith(nil, 1000, long); err == nil {
		t.Error("ShutdownWith with a 124-byte reason = nil error")
	}
}

func TestConnCloseFailsWaiters(t *testing.T) {
	c, peer, err := connServerPair(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	k := newCWWaker()
	for {
		r, err := c.PollWriteMessage(k.task, Binary, make([]byte, 32<<10))
		if err != nil {
			t.Fatal(err)
		}
		if !r.Ready {
			break
		}
	}
	readErr := make(chan error, 1)
	go func() {
		_, _, err := readMessage(context.Background(), c)
		readErr <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	k.wait(t, "Close fails a waiting writer")
	if _, err := c.PollWriteMessage(k.task, Binary, []byte("x")); err == nil {
		t.Error("PollWriteMessage after Close: no error")
	}
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("a read blocked in Close = %v, want net.ErrClosed", err)
	}
	if c.Undelivered() <= 0 {
		t.Errorf("Undelivered = %d after Close with a full buffer", c.Undelivered())
	}
	if _, err := c.Shutdown(nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Shutdown after Close = %v, want net.ErrClosed", err)
	}
}

// TestConnShutdownAfterReadLoopStops: Shutdown finds the application's
// read in progress and leaves the peer's answer to it, then the read loop
// stops (its context ended, as a handler's does when a drain begins). The
// Conn must read the answer itself: Shutdown completes when it comes, not
// at CloseTimeout.
func TestConnShutdownAfterReadLoopStops(t *testing.T) {
	c, peer := connRawPeer(t, false, &Options{CloseTimeout: time.Hour})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	readCtx, stopReading := context.WithCancel(ctx)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := readMessage(readCtx, c)
		readErr <- err
	}()
	for deadline := time.Now().Add(asynciotest.Timeout); !c.rd.held.Load(); { // the read is in progress; nothing else says so
		if time.Now().After(deadline) {
			t.Fatal("the read did not start")
		}
		time.Sleep(time.Millisecond)
	}
	shut := make(chan error, 1)
	go func() {
		_, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
			return c.ShutdownWith(t, StatusGoingAway, "")
		})
		shut <- err
	}()
	// The close frame arrives: Shutdown flushed it with the read still on.
	for {
		f, err := ws.ReadFrame(peer)
		if err != nil {
			t.Fatalf("peer: %v", err)
		}
		if f.Header.OpCode == ws.OpClose {
			break
		}
	}
	stopReading()
	if err := <-readErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadMessage = %v, want context.Canceled", err)
	}
	if _, err := peer.Write(connRawFrame(true, ws.OpClose, 0, true, connCloseBody(ws.StatusGoingAway, ""))); err != nil {
		t.Fatal(err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("ShutdownWith = %v, want nil once the peer answered", err)
	}
	if code := closeCode(c); code != StatusGoingAway {
		t.Errorf("CloseCode = %d, want 1001", code)
	}
}

// TestConnPeerCloseWaitingForRoomKeepsWriters: the peer's close arrives
// while the buffer is full and a pong already waits past it, so the
// answer cannot be queued yet and the close is read again later. A
// writer that waited for room before must still be notified: the close
// that began and was put back took it from the queue's waiters.
func TestConnPeerCloseWaitingForRoomKeepsWriters(t *testing.T) {
	c, peer, err := connServerPair(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer peer.Close()
	// Fill with frames of 127 bytes, so that less room than a pong of
	// 125 bytes is left.
	k := newCWWaker()
	p := make([]byte, 125)
	for {
		r, err := c.PollWriteMessage(k.task, Binary, p)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Ready {
			break
		}
	}
	go func() {
		for {
			if _, _, err := readMessage(context.Background(), c); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(asynciotest.Timeout)
	if err := peer.WS.WriteControl(websocket.PingMessage, p, deadline); err != nil {
		t.Fatal(err)
	}
	if err := peer.WS.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), deadline); err != nil {
		t.Fatal(err)
	}
	k.wait(t, "a writer waiting for room while the peer's close could not be answered")
}
