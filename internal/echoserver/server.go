// Package echoserver is the echo server of examples/echo, on wsconn.Conn.
// Its tests run the shared end-to-end suites of internal/echotest against
// it.
//
// The server echoes every message with its opcode and the peer's close
// code, serves a page that runs an echo in the browser at /, admits
// connections through a [shutdown.Group], and drains gracefully.
package echoserver

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn"
)

//go:embed index.html
var page []byte

// Backend chooses the writer the echo runs on.
type Backend int

// Pollws echoes on a [wsconn.Conn]: gobwas frames written through a
// ConnWriter, replies batched before each read blocks. It is the only
// backend: the gorilla one is examples/echo-gorilla, on its own.
const Pollws Backend = 0

func (b Backend) String() string { return "pollws" }

// Config holds the server's settings; [Config.RegisterFlags] binds them to
// the examples' flags.
type Config struct {
	Addr       string        // listen address; default 127.0.0.1:8080
	TLS        bool          // serve HTTPS with a self-signed certificate made in memory
	CertFile   string        // serve HTTPS with this certificate…
	KeyFile    string        // …and key
	MaxMessage int64         // largest message accepted; default 32 MiB
	MaxConns   int           // most concurrent WebSocket connections; 0 means no limit
	Drain      time.Duration // graceful-drain deadline; default 5 s
	Backend    Backend
	Logger     *slog.Logger // nil: slog.Default
}

// RegisterFlags defines the examples' flags on fs, bound to c's fields,
// with the defaults above.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.BoolVar(&c.TLS, "tls", false, "serve HTTPS/WSS with a self-signed certificate made in memory")
	fs.StringVar(&c.CertFile, "cert", "", "serve HTTPS/WSS with this certificate file (PEM; with -key)")
	fs.StringVar(&c.KeyFile, "key", "", "the private key file (PEM) for -cert")
	fs.Int64Var(&c.MaxMessage, "max-message", 32<<20, "largest message accepted, in bytes; larger ones are closed with 1009")
	fs.IntVar(&c.MaxConns, "max-conns", 0, "most concurrent WebSocket connections (0: no limit); refused upgrades get 503")
	fs.DurationVar(&c.Drain, "drain", 5*time.Second, "graceful-drain deadline on SIGINT/SIGTERM")
}

func (c *Config) defaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 32 << 20
	}
	if c.Drain <= 0 {
		c.Drain = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Stats counts what the server did; it is served as JSON at /stats.
type Stats struct {
	Open     int64 `json:"open"`
	Accepted int64 `json:"accepted"`
	Messages int64 `json:"messages"`
	Bytes    int64 `json:"bytes"`
}

// Server is the echo server. Its methods are safe for concurrent use.
type Server struct {
	cfg      Config
	group    *shutdown.Group
	open     atomic.Int64
	accepted atomic.Int64
	messages atomic.Int64
	bytes    atomic.Int64
}

// New returns a server configured by cfg.
func New(cfg Config) *Server {
	cfg.defaults()
	s := &Server{cfg: cfg}
	s.group = shutdown.NewGroup(&shutdown.GroupOptions{
		Policy: shutdown.Limits{MaxConcurrent: cfg.MaxConns},
		Logger: cfg.Logger,
	})
	return s
}

// Group returns the group that tracks the server's connections.
func (s *Server) Group() *shutdown.Group { return s.group }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{Open: s.open.Load(), Accepted: s.accepted.Load(), Messages: s.messages.Load(), Bytes: s.bytes.Load()}
}

// Handler returns the server's routes: the page at /, the echo at /ws and
// the counters at /stats.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		st := s.Stats()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"open":%d,"accepted":%d,"messages":%d,"bytes":%d}`+"\n", st.Open, st.Accepted, st.Messages, st.Bytes)
	})
	mux.Handle("/ws", s.group.Handler(http.HandlerFunc(s.echoPollws)))
	return mux
}

// track adds w to the group and counts it; the returned func ends it.
func (s *Server) track(r *http.Request, w asyncio.AsyncWriter) (*shutdown.Member, func(error), error) {
	m, err := s.group.Add(r.Context(), w, nil)
	if err != nil {
		return nil, nil, err
	}
	s.open.Add(1)
	s.accepted.Add(1)
	return m, func(err error) {
		// Done closes the writer at once; when the peer closed politely,
		// finish the writer's shutdown first so that the last replies and
		// the answer to its close go out. A peer that vanished cannot take
		// them, and while the group drains it does that itself.
		if peerClosed(err) && m.Context().Err() == nil {
			ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			shutdown.Close(ctx, w)
			cancel()
		}
		s.open.Add(-1)
		m.Done(ignoreNormalEnd(err))
	}, nil
}

// closeTimeout bounds the graceful close of a connection whose handler
// has finished.
const closeTimeout = 5 * time.Second

// peerClosed reports whether err is the peer's close frame.
func peerClosed(err error) bool {
	var ce *wsconn.CloseError
	return errors.As(err, &ce)
}

// ignoreNormalEnd maps the ways a connection normally ends to nil.
func ignoreNormalEnd(err error) error {
	var ce *wsconn.CloseError
	if errors.As(err, &ce) || errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// echoPollws echoes on a wsconn.Conn. Replies are queued without a flush:
// the Conn flushes them before its next read blocks, so a burst of
// pipelined messages is answered with one write.
//
// The echo runs on a goroutine of its own and the handler returns: net/http
// keeps its goroutine and its buffers for the connection (about 10 KiB)
// until the handler returns, which would more than double what an idle
// connection costs. The member's context, unlike the request's, outlives
// the handler.
func (s *Server) echoPollws(w http.ResponseWriter, r *http.Request) {
	c, err := wsconn.Upgrade(w, r, &wsconn.UpgradeOptions{Options: wsconn.Options{MaxMessageSize: s.cfg.MaxMessage, Logger: s.cfg.Logger}})
	if err != nil {
		return // Upgrade answered the request
	}
	m, done, err := s.track(r, c)
	if err != nil {
		c.Close()
		return
	}
	go s.servePollws(m.Context(), c, done)
}

// servePollws echoes on c until the connection ends, then calls done.
func (s *Server) servePollws(ctx context.Context, c *wsconn.Conn, done func(error)) {
	e := echoer{c: c}
	var end error
	for end == nil {
		var m wsconn.Message
		if m, end = c.ReadMessage(ctx); end != nil {
			break
		}
		e.op, e.p = m.Type, m.Data
		_, end = asyncio.BlockOn(ctx, e.poll)
		s.messages.Add(1)
		s.bytes.Add(int64(len(e.p)))
	}
	done(end)
}

// echoer writes one reply; its poll method is reused for every message.
type echoer struct {
	c  *wsconn.Conn
	op wsconn.MessageType
	p  []byte
}

func (e *echoer) poll(t *asyncio.Task) (asyncio.Async[int], error) {
	return e.c.PollWriteMessage(t, e.op, e.p)
}
