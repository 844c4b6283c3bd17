package shutdown_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/internal/handlertest"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn"
)

var (
	_ shutdown.CodeShutdowner      = (*wsconn.Conn)(nil)
	_ shutdown.UndeliveredReporter = (*wsconn.Conn)(nil)
)

// The same drain with the library's own wsconn.Conn: 200 connections,
// each with 10 messages accepted into its buffer and never flushed by the
// handler, which only waits for the member's context. srv.Shutdown drains:
// every client receives every message, then close 1001, and every
// connection ends cleanly.
func TestEndToEndServerShutdownConn(t *testing.T) {
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
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		m, err := g.Add(r.Context(), c, nil)
		if err != nil {
			t.Errorf("Add: %v", err)
			c.Close()
			return
		}
		for i := range msgs {
			if res, err := c.PollWriteMessage(nil, wsconn.Binary, message(i)); err != nil || !res.Ready {
				t.Errorf("PollWriteMessage %d = %+v, %v", i, res, err)
			}
		}
		if n := c.Undelivered(); n == 0 {
			t.Error("messages already sent: the test wants them queued at the drain")
		}
		queued <- struct{}{}
		<-m.Context().Done()
		m.Done(context.Cause(m.Context()))
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
	if err != nil || rep.Clean != conns || rep.Forced != 0 || rep.Undelivered != 0 {
		t.Errorf("Wait = %v, %v; want clean=%d forced=0 undelivered=0", rep, err, conns)
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
		if len(errs) != 1 || !errors.Is(errs[0], shutdown.ErrDraining) {
			t.Errorf("OnDone(%d) got %v, want ErrDraining once", id, errs)
		}
	}
}

// Peers that vanish, over real sockets: 50 clients upgrade, the server
// queues 10 messages to each, and each client resets its connection
// (SO_LINGER 0) before the drain; the handlers' reads fail, but they
// wait for the drain. The drain counts all 50 as gone, with no error and
// one log line, and its Undelivered is what the writers report after
// their close. (The handler's read flushes first, so part of what they
// queued left them before the reset: that part is the writers' to count,
// through the kernel's send queue, not the group's.)
func TestEndToEndDrainVanishedPeers(t *testing.T) {
	const conns, msgs = 50, 10
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	log, lines := logger(slog.LevelInfo)
	var mu sync.Mutex
	var held int64 // queued by the handlers, before their reads
	var writers []*wsconn.Conn
	onDone := make(map[uint64][]error)
	g := shutdown.NewGroup(&shutdown.GroupOptions{Logger: log, OnDone: func(id uint64, err error) {
		mu.Lock()
		onDone[id] = append(onDone[id], err)
		mu.Unlock()
	}})
	left := make(chan error, conns)
	var handlers handlertest.Group
	mux := http.NewServeMux()
	mux.Handle("/ws", handlers.Wrap(g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		m, err := g.Add(r.Context(), c, nil)
		if err != nil {
			t.Errorf("Add: %v", err)
			c.Close()
			return
		}
		for i := range msgs {
			if res, err := c.PollWriteMessage(nil, wsconn.Binary, message(i)); err != nil || !res.Ready {
				t.Errorf("PollWriteMessage %d = %+v, %v", i, res, err)
			}
		}
		mu.Lock()
		held += c.Undelivered()
		writers = append(writers, c)
		mu.Unlock()
		// The read fails when the peer's reset arrives; the handler then
		// waits for the drain, as one does that has not yet noticed.
		_, err = c.ReadMessage(context.Background())
		left <- err
		<-m.Context().Done()
		m.Done(err)
	}))))
	srv := &http.Server{Handler: mux}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-served
		handlers.Wait()
	}()

	for range conns {
		conn, _, _, err := ws.Dial(ctx, "ws://"+ln.Addr().String()+"/ws")
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.(*net.TCPConn).SetLinger(0); err != nil {
			t.Fatal(err)
		}
		conn.Close() // a reset: the 10 messages will never be read
	}
	for range conns {
		select {
		case err := <-left:
			if err == nil {
				t.Fatal("a server read succeeded; want it to fail when the peer reset")
			}
		case <-ctx.Done():
			t.Fatalf("server reads did not all end: %v", ctx.Err())
		}
	}

	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	rep := g.Drain(dctx)
	mu.Lock()
	defer mu.Unlock()
	var reported int64
	for _, c := range writers {
		reported += c.Undelivered()
	}
	if held == 0 || reported > held {
		t.Errorf("the handlers queued %d bytes and the writers report %d undelivered; want some queued, and no more reported", held, reported)
	}
	if rep.Gone != conns || rep.Clean != 0 || rep.Forced != 0 || len(rep.Errors) != 0 || rep.Undelivered != reported {
		t.Errorf("Drain = %v, want clean=0 forced=0 undelivered=%dB errors=0 gone=%d", rep, reported, conns)
	}
	t.Logf("%d connections gone: %d bytes queued, %d reported undelivered by the writers after the drain", conns, held, reported)
	if got := lines.lines(); len(got) != 1 || !strings.Contains(got[0], "level=INFO") || !strings.Contains(got[0], "gone=50") {
		t.Errorf("log %q, want one INFO line with gone=50", got)
	}
	if len(onDone) != conns {
		t.Errorf("OnDone called for %d connections, want %d", len(onDone), conns)
	}
	for id, errs := range onDone {
		var ue *shutdown.UndeliveredError
		if len(errs) != 1 || !errors.Is(errs[0], shutdown.ErrDraining) || !errors.As(errs[0], &ue) {
			t.Errorf("OnDone(%d) got %v, want once ErrDraining with an UndeliveredError", id, errs)
		}
	}
}
