package main

import (
	"context"
	_ "embed"
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
	"github.com/pollws/pollws/fanout/natsbus"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn"
)

//go:embed index.html
var page []byte

// defaultTopic is the topic of /sub and /pub without a ?topic=.
const defaultTopic = "live"

// subscriberMaxMessage is the largest message a subscriber may send; the
// hub ignores what they send.
const subscriberMaxMessage = 4 << 10

// instance is one instance of the service: a hub over the bus, the group of its WebSocket
// connections, and the HTTP routes.
type instance struct {
	cfg      config
	log      *slog.Logger
	bus      *natsbus.Bus // nil when the instance runs alone
	hub      *fanout.Hub
	group    *shutdown.Group
	handlers handlers

	onSubscribe func() // called when a subscriber joined; for tests
}

func newInstance(cfg config, bus *natsbus.Bus, log *slog.Logger) *instance {
	return &instance{
		cfg:   cfg,
		log:   log,
		bus:   bus,
		hub:   fanout.New(hubOptions(cfg, bus, log)),
		group: shutdown.NewGroup(&shutdown.GroupOptions{Logger: log}),
	}
}

// handler returns the routes: the page at /, subscribers at /sub,
// publishers at /pub (both on the topic named by ?topic=), and the
// counters at /stats.
func (s *instance) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		st := struct {
			Hub fanout.Stats   `json:"hub"`
			Bus *natsbus.Stats `json:"bus,omitempty"`
			Err string         `json:"bus_error,omitempty"`
		}{Hub: s.hub.Stats()}
		if s.bus != nil {
			bs := s.bus.Stats()
			st.Bus = &bs
			if err := s.bus.Err(); err != nil {
				st.Err = err.Error()
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
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

// serveSub subscribes a connection to a topic. The hub writes to it; this
// handler reads it, dropping what the client sends, until it ends.
func (s *instance) serveSub(w http.ResponseWriter, r *http.Request) {
	c, err := wsconn.Upgrade(w, r, &wsconn.UpgradeOptions{Options: wsconn.Options{MaxMessageSize: subscriberMaxMessage, Logger: s.log}})
	if err != nil {
		return // Upgrade answered the request
	}
	sub, err := s.hub.Subscribe(topic(r), c)
	if err != nil {
		s.log.Warn("subscribe", "err", err)
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
}

// servePub publishes every message a connection sends on a topic. When
// the bus refuses one (the broker is away and the reconnect buffer full)
// the message still reached this instance's subscribers; the bus reports
// the outage and the other instances count what they missed, so the
// publisher goes on.
func (s *instance) servePub(w http.ResponseWriter, r *http.Request) {
	c, err := wsconn.Upgrade(w, r, &wsconn.UpgradeOptions{Options: wsconn.Options{MaxMessageSize: int64(s.hub.MaxMessage()), Logger: s.log}})
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
		if err = s.hub.Publish(name, msg.Type, msg.Data); err != nil && !errors.Is(err, fanout.ErrBus) {
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

// serve serves on ln until ctx ends, then drains: the listener closes,
// every WebSocket connection is shut down with close 1001 after what it
// was sent is flushed, the ones still open at the deadline are closed
// hard, and the hub stops. It prints where it listens and the drain
// report to out.
func (s *instance) serve(ctx context.Context, ln net.Listener, out io.Writer) error {
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.group.RegisterOnShutdown(srv, s.cfg.drain)
	addr := ln.Addr().String()
	fmt.Fprintf(out, "serving on http://%s/  (subscribe: ws://%s/sub?topic=NAME, publish: ws://%s/pub?topic=NAME)\n", addr, addr, addr)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}

	fmt.Fprintf(out, "draining %d subscribers (deadline %v)…\n", s.hub.Stats().Subscribers, s.cfg.drain)
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.drain+time.Second)
	defer cancel()
	if serr := srv.Shutdown(dctx); serr != nil {
		srv.Close()
	}
	rep, _ := s.group.Wait(dctx)
	s.handlers.wait()
	s.hub.Close()
	st := s.hub.Stats()
	fmt.Fprintf(out, "drained: %v\n", rep)
	fmt.Fprintf(out, "published %d messages, delivered %d, missed %d (%d lost on the bus in %d gaps), %d received from other instances\n",
		st.Published, st.Delivered, st.MissedFrames, st.BusMissed, st.BusGaps, st.BusReceived)
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
