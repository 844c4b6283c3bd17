package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn"
)

//go:embed index.html
var page []byte

// server is the echo: the page at /, the WebSocket endpoint at /ws, the
// counters at /stats. Its methods are safe for concurrent use.
type server struct {
	cfg       config
	log       *slog.Logger
	reactor   *wsconn.Reactor // serves every connection, unless -goroutines
	group     *shutdown.Group // admission and the drain
	open      atomic.Int64    // WebSocket connections being served
	accepted  atomic.Int64
	messages  atomic.Int64
	bytes     atomic.Int64
	notEchoed atomic.Int64 // messages read while their connection was closing
	http2     atomic.Int64 // WebSocket connections accepted over HTTP/2

	mu      sync.Mutex
	streams map[string]int // open WebSockets over HTTP/2, by the client's address
}

func newServer(cfg config, log *slog.Logger) (*server, error) {
	r, err := wsconn.NewReactor(nil)
	if err != nil {
		return nil, err
	}
	return &server{
		cfg:     cfg,
		log:     log,
		reactor: r,
		streams: map[string]int{},
		group: shutdown.NewGroup(&shutdown.GroupOptions{
			Policy: shutdown.Limits{MaxConcurrent: wsLimit(cfg.maxConns)},
			Logger: log,
		}),
	}, nil
}

// close stops the reactor, once the drain is over.
func (s *server) close() { s.reactor.Close() }

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"open":%d,"accepted":%d,"http2":%d,"messages":%d,"bytes":%d}`+"\n",
			s.open.Load(), s.accepted.Load(), s.http2.Load(), s.messages.Load(), s.bytes.Load())
	})
	// The page asks which protocol its WebSocket went over, which only
	// the server knows: over HTTP/2 the page's requests and its WebSocket
	// share one connection, so a WebSocket from the same address is it.
	mux.HandleFunc("GET /protocol", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		h2 := r.ProtoMajor == 2 && s.streams[r.RemoteAddr] > 0
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		if h2 {
			io.WriteString(w, "HTTP/2\n")
		} else {
			io.WriteString(w, "HTTP/1.1\n")
		}
	})
	// The group's handler refuses an upgrade with 503 when the server
	// holds as many WebSocket connections as it may, or is draining.
	mux.Handle("/ws", s.group.Handler(http.HandlerFunc(s.serveWS)))
	return mux
}

// serveWS upgrades the request, hands the connection to the reactor (or
// to a goroutine of its own) and returns: over HTTP/1.1 net/http then
// frees what it held for the request. Over HTTP/2 the WebSocket is the
// request's stream, which ends when the handler returns: the handler
// waits for the connection to end.
func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	o := wsconn.Options{
		MaxMessageSize: s.cfg.maxMessage,
		PingInterval:   orOff(s.cfg.ping),
		IdleTimeout:    orOff(s.cfg.idle),
		Logger:         s.log,
	}
	if s.cfg.compress {
		o.Compression = &wsconn.CompressionOptions{}
	}
	c, err := wsconn.Upgrade(w, r, &wsconn.UpgradeOptions{Options: o})
	if err != nil {
		return // Upgrade answered the request
	}
	m, err := s.group.Add(r.Context(), c, nil)
	if err != nil {
		c.Close()
		return
	}
	s.open.Add(1)
	s.accepted.Add(1)
	h2 := r.ProtoMajor == 2
	if h2 {
		s.http2.Add(1)
		s.stream(r.RemoteAddr, 1)
	}
	done := func(err error) {
		if h2 {
			s.stream(r.RemoteAddr, -1)
		}
		s.open.Add(-1)
		m.Done(unexpected(err))
	}
	if s.cfg.goroutines {
		go s.serveBlocking(m.Context(), c, done)
	} else if err := s.reactor.Serve(c, &echo{s: s, c: c}, done); err != nil {
		c.Close()
		done(err)
	}
	<-c.HandlerDone() // at once over HTTP/1.1
}

// stream counts the open WebSockets over HTTP/2 from addr.
func (s *server) stream(addr string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[addr] += n; s.streams[addr] == 0 {
		delete(s.streams, addr)
	}
}

// echo is the echo of one connection, as the reactor polls it: a state
// machine that reads a message only once the last one's echo was taken,
// so that a client that reads slower than it sends is held back by TCP
// instead of growing the server's memory. The echo of everything read is
// sent when the read waits for the next message, in one write.
//
// A message read is valid until the next read: the connection lends its
// buffer, and takes it back (to a pool) with the next read, so a
// connection that was sent 32 MiB once does not keep 32 MiB.
type echo struct {
	s       *server
	c       *wsconn.Conn
	m       wsconn.Message
	pending bool // m is read and not yet echoed
}

func (e *echo) Poll(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	for {
		if e.pending {
			r, err := e.c.PollWriteMessage(t, e.m.Type, e.m.Data)
			if errors.Is(err, asyncio.ErrShutdown) {
				// The connection is closing (a drain, an idle client, the
				// client's close): this message is not echoed, and is
				// counted. Reading goes on, for the client's close.
				e.s.notEchoed.Add(1)
				e.m, e.pending = wsconn.Message{}, false // the message was the connection's to lend until the next read
				continue
			}
			if err != nil || !r.Ready {
				return asyncio.NotReady[struct{}](), err // not ready: t is notified when it is
			}
			e.s.messages.Add(1)
			e.s.bytes.Add(int64(len(e.m.Data)))
			e.m, e.pending = wsconn.Message{}, false // the message was the connection's to lend until the next read
		}
		r, err := e.c.PollReadMessage(t)
		if err != nil || !r.Ready {
			// An error ends the echo: the client's close (answered) or bad
			// input (closed with 1002, 1007 or 1009); the reactor then
			// finishes the closing handshake.
			return asyncio.NotReady[struct{}](), err
		}
		e.m, e.pending = r.Value, true
	}
}

// serveBlocking is the same echo on a goroutine of its own, with a
// blocking read: the way to serve when a handler would rather block.
func (s *server) serveBlocking(ctx context.Context, c *wsconn.Conn, done func(error)) {
	var end error
	for end == nil {
		var m wsconn.Message
		if m, end = c.ReadMessage(ctx); end != nil {
			break
		}
		_, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
			return c.PollWriteMessage(t, m.Type, m.Data)
		})
		switch {
		case errors.Is(err, asyncio.ErrShutdown):
			s.notEchoed.Add(1)
		case err != nil:
			end = err
		default:
			s.messages.Add(1)
			s.bytes.Add(int64(len(m.Data)))
		}
	}
	if unexpected(end) == nil {
		// The reads ended normally (the client's close): the closing
		// handshake finished before ReadMessage returned.
		c.Close()
	}
	done(end)
}

// unexpected maps the ways a connection normally ends to nil: the
// client's close, the server's drain and the client vanishing.
func unexpected(err error) error {
	var ce *wsconn.CloseError
	if err == nil || errors.As(err, &ce) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// orOff makes a flag's 0 ("off") the negative value wsconn's options
// take for off (their 0 means the default).
func orOff(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
