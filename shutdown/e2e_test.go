package shutdown_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
)

// frameWriter is a small WebSocket server-side writer made for the
// end-to-end test from asyncio's contract and gobwas/ws frames: each
// PollWrite queues one binary message; queued frames go to the socket
// only on PollFlush or Shutdown (or when the queue is full), from a
// flusher goroutine that runs only while there is something to write.
// ShutdownCode queues a close frame after the messages and is Ready once
// it left and the peer's close came back (the handshake): the handler's
// read loop reports the peer's close with gotClose.
type frameWriter struct {
	conn  net.Conn
	limit int
	wg    sync.WaitGroup // the flusher

	mu        sync.Mutex
	buf       []byte // frames not yet handed to the flusher
	inflight  int    // bytes the flusher is writing
	flushing  bool
	sentClose bool // a close frame is queued
	peerClose bool
	err       error
	waiter    *asyncio.Task
}

var (
	_ asyncio.AsyncWriter          = (*frameWriter)(nil)
	_ shutdown.CodeShutdowner      = (*frameWriter)(nil)
	_ shutdown.UndeliveredReporter = (*frameWriter)(nil)
)

func newFrameWriter(conn net.Conn, limit int) *frameWriter {
	return &frameWriter{conn: conn, limit: limit}
}

func (w *frameWriter) Write(p []byte) (int, error) { return asyncio.TryWrite(w, p) }

func (w *frameWriter) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.err != nil:
		return asyncio.NotReady[int](), w.err
	case w.sentClose:
		return asyncio.NotReady[int](), asyncio.ErrShutdown
	case len(p) == 0:
		return asyncio.Ready(0), nil
	}
	h := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: int64(len(p))}
	if len(w.buf) > 0 && len(w.buf)+ws.HeaderSize(h)+len(p) > w.limit {
		w.waiter = t
		w.startLocked()
		return asyncio.NotReady[int](), nil
	}
	b := bytes.NewBuffer(w.buf)
	ws.WriteHeader(b, h)
	b.Write(p)
	w.buf = b.Bytes()
	return asyncio.Ready(len(p)), nil
}

func (w *frameWriter) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked(t)
}

func (w *frameWriter) flushLocked(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	if w.err != nil {
		return asyncio.NotReady[struct{}](), w.err
	}
	if len(w.buf) == 0 && w.inflight == 0 {
		return asyncio.Ready(struct{}{}), nil
	}
	w.waiter = t
	w.startLocked()
	return asyncio.NotReady[struct{}](), nil
}

func (w *frameWriter) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return w.ShutdownCode(t, int(ws.StatusNormalClosure), "")
}

func (w *frameWriter) ShutdownCode(t *asyncio.Task, code int, reason string) (asyncio.Async[struct{}], error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.sentClose && w.err == nil {
		w.sentClose = true
		w.buf = append(w.buf, ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusCode(code), reason)))...)
	}
	if r, err := w.flushLocked(t); err != nil || !r.Ready {
		return r, err
	}
	if !w.peerClose {
		w.waiter = t
		return asyncio.NotReady[struct{}](), nil
	}
	return asyncio.Ready(struct{}{}), nil
}

// gotClose reports the peer's close frame.
func (w *frameWriter) gotClose() {
	w.mu.Lock()
	w.peerClose = true
	t := w.waiter
	w.waiter = nil
	w.mu.Unlock()
	t.Notify()
}

func (w *frameWriter) Undelivered() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int64(len(w.buf) + w.inflight)
}

// Close closes the socket and waits for the flusher.
func (w *frameWriter) Close() error {
	err := w.conn.Close()
	w.mu.Lock()
	if w.err == nil {
		w.err = net.ErrClosed
	}
	t := w.waiter
	w.waiter = nil
	w.mu.Unlock()
	t.Notify()
	w.wg.Wait()
	return err
}

func (w *frameWriter) startLocked() {
	if w.flushing || len(w.buf) == 0 || w.err != nil {
		return
	}
	w.flushing = true
	w.wg.Add(1)
	go w.flush()
}

// flush writes queued frames until none are left, then notifies the
// waiting task.
func (w *frameWriter) flush() {
	defer w.wg.Done()
	w.mu.Lock()
	for len(w.buf) > 0 && w.err == nil {
		data := w.buf
		w.buf, w.inflight = nil, len(data)
		w.mu.Unlock()
		_, err := w.conn.Write(data)
		w.mu.Lock()
		w.inflight = 0
		if err != nil && w.err == nil {
			w.err = err
		}
	}
	w.flushing = false
	t := w.waiter
	w.waiter = nil
	w.mu.Unlock()
	t.Notify()
}

func message(i int) []byte {
	return fmt.Appendf(nil, "message %d %s", i, bytes.Repeat([]byte{'.'}, 100*i))
}

// A server with 200 WebSocket connections, each with 10 messages queued
// and not yet sent, is shut down with srv.Shutdown: every client receives
// every message, then close 1001, and every connection ends cleanly.
func TestEndToEndServerShutdown(t *testing.T) {
	const conns, msgs = 200, 10
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var mu sync.Mutex
	onDone := make(map[uint64][]error)
	g := shutdown.NewGroup(&shutdown.GroupOptions{OnDone: func(id uint64, err error) {
		mu.Lock()
		onDone[id] = append(onDone[id], err)
		mu.Unlock()
	}})
	queued := make(chan struct{}, conns)
	mux := http.NewServeMux()
	mux.Handle("/ws", g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		fw := newFrameWriter(conn, 64<<10)
		m, err := g.Add(r.Context(), fw, nil)
		if err != nil {
			t.Errorf("Add: %v", err)
			conn.Close()
			return
		}
		for i := range msgs {
			if err := asyncio.WriteAll(ctx, fw, message(i)); err != nil {
				t.Errorf("WriteAll: %v", err)
			}
		}
		queued <- struct{}{}
		m.Done(readUntilClose(rw.Reader, fw))
	})))
	srv := &http.Server{Handler: mux}
	g.RegisterOnShutdown(srv, 10*time.Second)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var clients sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		clients.Go(func() { errs <- client(ctx, "ws://"+ln.Addr().String()+"/ws", msgs) })
	}
	for range conns {
		select {
		case <-queued:
		case <-ctx.Done():
			t.Fatalf("connections not all up: %v", ctx.Err())
		}
	}

	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("srv.Shutdown: %v", err)
	}
	rep, err := g.Wait(ctx)
	if err != nil || rep.Clean != conns || rep.Forced != 0 || len(rep.Errors) != 0 {
		t.Errorf("Wait = %v, %v; want clean=%d forced=0", rep, err, conns)
	}
	clients.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve = %v, want http.ErrServerClosed", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(onDone) != conns {
		t.Errorf("OnDone called for %d connections, want %d", len(onDone), conns)
	}
	for id, errs := range onDone {
		if len(errs) != 1 || errs[0] != shutdown.ErrDraining {
			t.Errorf("OnDone(%d) got %v, want ErrDraining once", id, errs)
		}
	}
}

// readUntilClose is the server's read loop: it discards client frames
// until the client's close frame.
func readUntilClose(rd *bufio.Reader, fw *frameWriter) error {
	for {
		h, err := ws.ReadHeader(rd)
		if err != nil {
			return err
		}
		if _, err := io.CopyN(io.Discard, rd, h.Length); err != nil {
			return err
		}
		if h.OpCode == ws.OpClose {
			fw.gotClose()
			return nil
		}
	}
}

// client connects, then expects msgs messages, then close 1001, which it
// answers; then the server closes the connection.
func client(ctx context.Context, url string, msgs int) error {
	conn, br, _, err := ws.Dial(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d) // a safety net: nothing here waits for it
	}
	rd := io.Reader(conn)
	if br != nil {
		rd = br
	}
	for i := 0; ; i++ {
		h, err := ws.ReadHeader(rd)
		if err != nil {
			return fmt.Errorf("client: after %d messages: %w", i, err)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(rd, payload); err != nil {
			return fmt.Errorf("client: message %d: %w", i, err)
		}
		if h.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(payload)
			if i != msgs || code != ws.StatusGoingAway {
				return fmt.Errorf("client: close %d after %d messages, want 1001 after %d", code, i, msgs)
			}
			reply := ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(code, "")))
			if err := ws.WriteFrame(conn, reply); err != nil {
				return fmt.Errorf("client: close reply: %w", err)
			}
			io.Copy(io.Discard, rd) // until the server closes
			return nil
		}
		if !bytes.Equal(payload, message(i)) {
			return fmt.Errorf("client: message %d is %.20q…, want %.20q…", i, payload, message(i))
		}
	}
}
