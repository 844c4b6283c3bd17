package main

import (
	"context"
	_ "embed"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn/gorillaws"
)

//go:embed index.html
var page []byte

const (
	// closeTimeout bounds the close of a connection whose reads ended:
	// the replies still queued and the close frame go out within it.
	closeTimeout = 5 * time.Second
	// keepBuffer is the largest read buffer a connection keeps between
	// messages: after a larger message the buffer is let go, so that an
	// idle connection does not hold the largest message it ever sent.
	keepBuffer = 64 << 10
)

// server is the echo: the page at /, the WebSocket endpoint at /ws. Its
// methods are safe for concurrent use.
type server struct {
	cfg       config
	group     *shutdown.Group // admission, idle timeouts and the drain
	upgrader  websocket.Upgrader
	open      atomic.Int64 // WebSocket connections being served
	notEchoed atomic.Int64 // messages read while their connection was closing
}

func newServer(cfg config) *server {
	return &server{
		cfg: cfg,
		group: shutdown.NewGroup(&shutdown.GroupOptions{
			Policy: shutdown.Limits{MaxConcurrent: wsLimit(cfg.maxConns)},
			Idle:   cfg.idle,
		}),
		// gorilla's default CheckOrigin admits same-origin browsers and
		// clients that send no Origin. gorilla never writes a message here
		// (the Writer frames the replies), so a pool for its write buffer
		// means it holds none.
		upgrader: websocket.Upgrader{WriteBufferPool: &sync.Pool{}},
	}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	// The group's handler refuses an upgrade with 503 when the server
	// holds as many WebSocket connections as it may, or is draining.
	mux.Handle("/ws", s.group.Handler(http.HandlerFunc(s.serveWS)))
	return mux
}

// serveWS upgrades the request and echoes on the connection until it
// ends.
func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	// gorillaws.Upgrade is gorilla's Upgrade, over a connection on which
	// even the close frames gorilla writes by itself (1002, 1009) follow
	// the replies already queued.
	c, err := gorillaws.Upgrade(&s.upgrader, w, r, nil)
	if err != nil {
		return // the upgrader answered the request
	}
	c.SetReadLimit(s.cfg.maxMessage)
	gw := gorillaws.New(c, nil)
	m, err := s.group.Add(r.Context(), gw, nil)
	if err != nil {
		gw.Close()
		return
	}
	s.open.Add(1)
	defer s.open.Add(-1)

	// Anything the client sends counts against -idle, pongs and pings
	// included; the Writer answers the pings.
	c.SetPongHandler(func(string) error { m.Touch(); return nil })
	answer := c.PingHandler()
	c.SetPingHandler(func(data string) error { m.Touch(); return answer(data) })
	stop := keepalive(gw, s.cfg.ping)
	err = s.echo(m, gw)
	stop()

	if m.Context().Err() == nil {
		// The reads ended and the group is not closing the connection: the
		// client closed (the Writer queued its answer), sent bad input (a
		// close 1002, 1007 or 1009 is queued), or vanished. Let the queued
		// replies and the close frame go out; for a client that vanished
		// that takes no time.
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		shutdown.Close(ctx, gw)
		cancel()
	}
	m.Done(unexpected(err))
}

// echo reads messages and queues each one back with its type, until the
// reads end; it returns why they ended.
func (s *server) echo(m *shutdown.Member, gw *gorillaws.Writer) error {
	var buf []byte
	for {
		typ, msg, err := readMessage(m, gw, buf[:0])
		if err != nil {
			return err
		}
		// The Writer copies the message into its queue, or waits for room
		// when the client reads slower than it sends.
		_, err = asyncio.BlockOn(context.Background(), func(t *asyncio.Task) (asyncio.Async[int], error) {
			return gw.PollWriteMessage(t, typ, msg)
		})
		if err != nil {
			// The connection is closing (a drain, an idle timeout) or
			// broke: this message is not echoed, and is counted. Reading
			// goes on, since the client's answer to the close arrives here.
			s.notEchoed.Add(1)
		}
		buf = msg
		if cap(buf) > keepBuffer {
			buf = nil
		}
	}
}

// readMessage reads the next message into buf through the Writer, which
// checks that text is UTF-8 as it arrives and closes with 1007 when it is
// not. Every piece that arrives counts as activity.
func readMessage(m *shutdown.Member, gw *gorillaws.Writer, buf []byte) (int, []byte, error) {
	typ, r, err := gw.NextReader()
	if err != nil {
		return 0, buf, err
	}
	for {
		m.Touch()
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(cap(buf), 512))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return typ, buf, nil
		case err != nil:
			return typ, buf, err
		}
	}
}

// keepalive queues a ping every interval until stop is called. A ping
// that finds the queue full is skipped: the connection is busy, and the
// client's reads are what -idle watches.
func keepalive(gw *gorillaws.Writer, every time.Duration) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	var (
		mu      sync.Mutex
		stopped bool
		timer   *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	timer = time.AfterFunc(every, func() {
		gw.PollWriteMessage(nil, websocket.PingMessage, nil)
		mu.Lock()
		if !stopped {
			timer.Reset(every)
		}
		mu.Unlock()
	})
	return func() {
		mu.Lock()
		stopped = true
		timer.Stop()
		mu.Unlock()
	}
}

// unexpected returns err unless it is how a connection normally ends:
// the client's close frame.
func unexpected(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
		return nil
	}
	return err
}
