package shutdown_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn"
)

// codedWSConn gives a wsconn.Conn the coded close the group sends,
// through Conn's ShutdownWith, until wsconn.Conn is a
// shutdown.CodeShutdowner itself; every other method is Conn's own.
type codedWSConn struct{ *wsconn.Conn }

var (
	_ shutdown.CodeShutdowner      = codedWSConn{}
	_ shutdown.UndeliveredReporter = codedWSConn{}
)

func (c codedWSConn) ShutdownCode(t *asyncio.Task, code int, reason string) (asyncio.Async[struct{}], error) {
	return c.ShutdownWith(t, ws.StatusCode(code), reason)
}

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
		m, err := g.Add(r.Context(), codedWSConn{c}, nil)
		if err != nil {
			t.Errorf("Add: %v", err)
			c.Close()
			return
		}
		for i := range msgs {
			if res, err := c.PollWriteMessage(nil, ws.OpBinary, message(i)); err != nil || !res.Ready {
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
