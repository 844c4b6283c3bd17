package gorillaws

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
)

// codedCloser is how a package that closes connections without knowing
// their WebSocket library finds a writer's coded close.
type codedCloser interface {
	ShutdownCode(t *asyncio.Task, code int, reason string) (asyncio.Async[struct{}], error)
}

var _ codedCloser = (*Writer)(nil)

// TestShutdownCode closes through the ShutdownCode method found on an
// AsyncWriter: the client gets the queued message, then the code and
// reason.
func TestShutdownCode(t *testing.T) {
	s := newTestServer(t, false)
	client, _, server := s.dialGorilla(t)
	var w asyncio.AsyncWriter = New(server, &Options{ReadClose: true})
	defer w.(*Writer).Close()
	read := readInBackground(client)
	ctx := testCtx(t)
	noError(t, asyncio.WriteAll(ctx, w, []byte("last")), "WriteAll")
	cc, ok := w.(codedCloser)
	if !ok {
		t.Fatal("Writer has no ShutdownCode method")
	}
	_, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
		return cc.ShutdownCode(t, websocket.CloseGoingAway, "going away")
	})
	noError(t, err, "ShutdownCode")
	r := <-read
	r.check(t, []string{"last"}, websocket.CloseGoingAway)
	var ce *websocket.CloseError
	if errors.As(r.err, &ce) && ce.Text != "going away" {
		t.Errorf("close reason %q, want %q", ce.Text, "going away")
	}
	if _, err := cc.ShutdownCode(nil, websocket.CloseAbnormalClosure, ""); !errors.Is(err, errCloseCode) {
		t.Errorf("ShutdownCode(1006) = %v, want errCloseCode", err)
	}
}

// TestGroupDrain drains a shutdown.Group of Writers whose application
// reads through AppendMessage: every client gets its last message and
// close 1001, and the drain is clean.
func TestGroupDrain(t *testing.T) {
	const conns = 5
	s := newTestServer(t, false)
	g := shutdown.NewGroup(nil)
	var reads []<-chan readResult
	var loops []<-chan error
	for range conns {
		client, _, server := s.dialGorilla(t)
		w := New(server, nil)
		m, err := g.Add(context.Background(), w, nil)
		noError(t, err, "Add")
		noError(t, asyncio.WriteAll(testCtx(t), w, []byte("hello")), "WriteAll")
		reads = append(reads, readInBackground(client))
		loop := make(chan error, 1)
		go func() {
			var err error
			for err == nil {
				_, _, err = w.AppendMessage(nil)
			}
			m.Done(err)
			loop <- err
		}()
		loops = append(loops, loop)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep := g.Drain(ctx)
	if rep.Clean != conns || rep.Forced != 0 {
		t.Errorf("drain report %v, want %d clean", rep, conns)
	}
	for _, r := range reads {
		(<-r).check(t, []string{"hello"}, websocket.CloseGoingAway)
	}
	for _, l := range loops {
		if err := <-l; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("application read ended with %v, want the client's answer 1001", err)
		}
	}
}
