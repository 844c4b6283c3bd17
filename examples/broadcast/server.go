package main

import (
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/pollws/pollws/fanout"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn"
)

//go:embed index.html
var page []byte

// subscriberMaxMessage is the largest message a subscriber may send; the
// hub ignores what they send.
const subscriberMaxMessage = 4 << 10

// defaultTopic is the topic of /sub and /pub without a ?topic=, and the
// one the generator publishes on.
const defaultTopic = "live"

// server is the broadcast server: a hub, the group of its WebSocket
// connections, and the HTTP routes.
type server struct {
	cfg      config
	log      *slog.Logger
	hub      *fanout.Hub
	group    *shutdown.Group
	subOpts  *wsconn.UpgradeOptions
	pubOpts  *wsconn.UpgradeOptions
	handlers handlers

	onSubscribe func() // called when a subscriber joined; for tests
	onLeave     func() // called when a subscriber's connection ended; for tests
}

func newServer(cfg config, log *slog.Logger) *server {
	s := &server{cfg: cfg, log: log}
	s.hub = fanout.New(&fanout.Options{
		Capacity:     cfg.capacity,
		KickAfter:    cfg.kickAfter(),
		BehindWindow: cfg.behindWindow,
		Logger:       log,
	})
	s.group = shutdown.NewGroup(&shutdown.GroupOptions{Logger: log})
	var compression *wsconn.CompressionOptions
	if cfg.compress {
		// Without context takeover, the default, every subscriber that
		// compresses alike sends the same bytes: the hub compresses each
		// message once for all of them, and an idle subscriber holds no
		// compressor.
		compression = &wsconn.CompressionOptions{}
	}
	s.subOpts = &wsconn.UpgradeOptions{Options: wsconn.Options{
		BufferSize:     cfg.writeBuffer,
		WriteTimeout:   cfg.writeTimeout,
		MaxMessageSize: subscriberMaxMessage,
		Compression:    compression,
		Logger:         log,
	}}
	s.pubOpts = &wsconn.UpgradeOptions{Options: wsconn.Options{
		MaxMessageSize: int64(s.hub.MaxMessage()),
		Compression:    compression,
		Logger:         log,
	}}
	return s
}

// handler returns the routes: the page at /, subscribers at /sub,
// publishers at /pub (both on the topic named by ?topic=, "live" by
// default) and the hub's counters at /stats.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(struct {
			fanout.Stats
			Rate float64 `json:"rate"`
		}{s.hub.Stats(), s.cfg.rate})
	})
	mux.Handle("/sub", s.group.Handler(s.handlers.wrap(s.serveSub)))
	mux.Handle("/pub", s.group.Handler(s.handlers.wrap(s.servePub)))
	return mux
}

// topic returns the topic a request names.
func topic(r *http.Request) string {
	if t := r.URL.Query().Get("topic"); t != "" {
		return t
	}
	return defaultTopic
}

// serveSub subscribes a connection to the hub. The hub writes to it; this
// handler reads it, dropping what the client sends, until it ends.
func (s *server) serveSub(w http.ResponseWriter, r *http.Request) {
	c, err := wsconn.Upgrade(w, r, s.subOpts)
	if err != nil {
		return // Upgrade answered the request
	}
	sub, err := s.hub.Subscribe(topic(r), c)
	if err != nil {
		c.Close()
		return
	}
	m, err := s.group.Add(r.Context(), sub, nil)
	if err != nil {
		sub.Close()
		return
	}
	if s.onSubscribe != nil {
		s.onSubscribe()
	}
	for {
		if _, err = c.ReadMessage(context.Background()); err != nil {
			break
		}
	}
	m.Done(normalEnd(err))
	if s.onLeave != nil {
		s.onLeave()
	}
}

// servePub publishes every message a connection sends.
func (s *server) servePub(w http.ResponseWriter, r *http.Request) {
	c, err := wsconn.Upgrade(w, r, s.pubOpts)
	if err != nil {
		return
	}
	m, err := s.group.Add(r.Context(), c, nil)
	if err != nil {
		c.Close()
		return
	}
	name := topic(r)
	for {
		var msg wsconn.Message
		if msg, err = c.ReadMessage(context.Background()); err != nil {
			break
		}
		if err = s.hub.Publish(name, msg.Type, msg.Data); err != nil {
			break
		}
	}
	m.Done(normalEnd(err))
}

// normalEnd maps the ways a connection normally ends to nil.
func normalEnd(err error) error {
	var ce *wsconn.CloseError
	if errors.As(err, &ce) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// generate publishes cfg.rate messages per second of cfg.size bytes until
// ctx ends. Each message holds its number and the time it was published,
// in nanoseconds since 1970, as big-endian uint64s; the page shows the
// latency from them.
func (s *server) generate(ctx context.Context) {
	if s.cfg.rate <= 0 {
		return
	}
	period := 10 * time.Millisecond // publish in batches at high rates
	if p := time.Duration(float64(time.Second) / s.cfg.rate); p > period {
		period = p
	}
	// After a pause (a stopped process, a loaded machine) the generator
	// catches up by at most a tenth of a second of messages.
	maxBurst := uint64(s.cfg.rate/10) + 1
	msg := make([]byte, s.cfg.size)
	for i := 16; i < len(msg); i++ {
		msg[i] = 'a' + byte(i%26)
	}
	t := time.NewTicker(period)
	defer t.Stop()
	start := time.Now()
	var sent uint64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := uint64(s.cfg.rate * now.Sub(start).Seconds())
			if due > sent+maxBurst {
				sent = due - maxBurst
			}
			for ; sent < due; sent++ {
				binary.BigEndian.PutUint64(msg, sent+1)
				binary.BigEndian.PutUint64(msg[8:], uint64(time.Now().UnixNano()))
				if err := s.hub.Publish(defaultTopic, wsconn.Binary, msg); err != nil {
					return
				}
			}
		}
	}
}

// serve serves on ln until ctx ends, then drains: the generator and the
// slow subscribers stop, the listener closes, every WebSocket connection
// is shut down with close 1001 after what it was sent is flushed, and the
// ones still open at the deadline are closed hard. It prints where it
// listens and the drain report to out.
func (s *server) serve(ctx context.Context, ln net.Listener, out io.Writer) error {
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.group.RegisterOnShutdown(srv, s.cfg.drain)
	if s.cfg.sendBuffer > 0 {
		ln = sendBuffers{ln, s.cfg.sendBuffer}
	}
	addr := ln.Addr().String()
	fmt.Fprintf(out, "broadcast on http://%s/  (subscribe: ws://%s/sub, publish: ws://%s/pub)\n", addr, addr, addr)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	bg, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.generate(bg) })
	for i := range s.cfg.slow {
		wg.Go(func() { s.slowSubscriber(bg, i, "ws://"+addr+"/sub") })
	}
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	stop()
	wg.Wait()

	st := s.hub.Stats()
	fmt.Fprintf(out, "draining %d subscribers (deadline %v)…\n", st.Subscribers, s.cfg.drain)
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.drain+time.Second)
	defer cancel()
	if serr := srv.Shutdown(dctx); serr != nil {
		srv.Close()
	}
	rep, _ := s.group.Wait(dctx)
	s.handlers.wait()
	s.hub.Close()
	st = s.hub.Stats()
	fmt.Fprintf(out, "drained: %v\n", rep)
	fmt.Fprintf(out, "published %d messages, delivered %d, missed %d (%d overtakes, %d subscribers disconnected for falling behind)\n",
		st.Published, st.Delivered, st.MissedFrames, st.Overtakes, st.Kicked)
	if err == nil {
		err = <-errc
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// handlers counts the WebSocket handlers that run, which outlive
// http.Server.Shutdown once they hijacked their connection.
type handlers struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{} // closed when closed and n is 0
}

// wrap runs h counted; once wait began, requests get 503.
func (hs *handlers) wrap(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.mu.Lock()
		if hs.closed {
			hs.mu.Unlock()
			http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
			return
		}
		hs.n++
		hs.mu.Unlock()
		defer hs.leave()
		h(w, r)
	})
}

func (hs *handlers) leave() {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.n--
	if hs.n == 0 && hs.closed {
		close(hs.idle)
	}
}

// wait refuses new handlers and waits for the running ones to return.
// Each returns once the group ended its connection.
func (hs *handlers) wait() {
	hs.mu.Lock()
	if !hs.closed {
		hs.closed = true
		hs.idle = make(chan struct{})
		if hs.n == 0 {
			close(hs.idle)
		}
	}
	idle := hs.idle
	hs.mu.Unlock()
	<-idle
}

// sendBuffers is a listener that sets the socket send buffer of the
// connections it accepts. The kernel grows a send buffer to megabytes
// by default; a subscriber's connection then takes bytes again only once
// the subscriber read a third of that, so a slow one is noticed late,
// and every subscriber may hold that much kernel memory.
type sendBuffers struct {
	net.Listener
	size int
}

func (l sendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(l.size)
	}
	return c, err
}
