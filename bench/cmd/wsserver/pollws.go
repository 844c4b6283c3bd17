package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/fanout"
	"github.com/pollws/pollws/fanout/natsbus"
	"github.com/pollws/pollws/wsconn"
	"github.com/pollws/pollws/wsconn/gorillaws"
)

// hubCapacity is the bytes of messages the hub holds per topic; wsbench
// fills a topic's ring this much before it measures what subscribers
// cost, so that the ring's pages, touched as messages arrive, count as
// the topic's and not as theirs.
const hubCapacity = 8 << 20

func init() {
	impls["pollws"] = newPollws
	impls["pollws-gorilla"] = newPollwsGorilla
}

// newPollws is the echo of examples/echo: each upgraded connection is
// handed to a wsconn.Reactor with an echo handler and the HTTP handler
// returns (over HTTP/2, once the stream is done with, as
// Conn.HandlerDone says); the reactor reads it when bytes come and writes
// the replies in batches. Its options are wsconn's defaults (keepalive
// pings, an idle timeout); /deflate adds compression with
// wsconn.CompressionOptions' defaults (no context takeover, level 1,
// messages from 256 bytes). Broadcast is a fanout.Hub: each message
// published on /pub goes to every subscriber of /sub, and with -nats to
// those of the other instances on the broker, through a natsbus.Bus.
func newPollws(o *options) (impl, error) {
	r, err := wsconn.NewReactor(nil)
	if err != nil {
		return impl{}, err
	}
	// The hub logs a line per subscriber it loses, as every subscriber of
	// a run is at its end: warnings only (a gap on the bus is one).
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	hopts := &fanout.Options{Capacity: hubCapacity, KickAfter: -1, Logger: quiet}
	var bus *natsbus.Bus
	if o.nats != "" {
		if bus, err = natsbus.Connect(o.nats, nil); err != nil {
			r.Close()
			return impl{}, err
		}
		hopts.Bus = bus
	}
	hub := fanout.New(hopts)
	upgrade := func(w http.ResponseWriter, req *http.Request, uo *wsconn.UpgradeOptions) *wsconn.Conn {
		c, err := wsconn.Upgrade(w, req, uo)
		if err != nil {
			return nil
		}
		return c
	}
	plain := &wsconn.UpgradeOptions{CheckOrigin: allowAll}
	deflate := &wsconn.UpgradeOptions{CheckOrigin: allowAll, Options: wsconn.Options{Compression: &wsconn.CompressionOptions{}}}
	serveEcho := func(w http.ResponseWriter, req *http.Request, uo *wsconn.UpgradeOptions) {
		c := upgrade(w, req, uo)
		if c == nil {
			return
		}
		if err := r.Serve(c, &echo{c: c}, nil); err != nil {
			c.Close()
		}
		<-c.HandlerDone()
	}
	return impl{
		// wsconn.NewListener's connections let the reactor serve
		// WebSockets over TLS without a goroutine too.
		listener: func(ln net.Listener) (net.Listener, error) { return wsconn.NewListener(ln, nil) },
		close: func() {
			hub.Close()
			r.Close()
			if bus != nil {
				bus.Close() // after the hub, as natsbus asks
			}
		},
		echo:    func(w http.ResponseWriter, req *http.Request) { serveEcho(w, req, plain) },
		deflate: func(w http.ResponseWriter, req *http.Request) { serveEcho(w, req, deflate) },
		sub: func(w http.ResponseWriter, req *http.Request) {
			c := upgrade(w, req, plain)
			if c == nil {
				return
			}
			s, err := hub.Subscribe("bench", c)
			if err != nil {
				c.Close()
				return
			}
			// The subscriber's reads only see its close.
			r.Serve(c, wsconn.HandlerFunc(func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
				for {
					m, err := c.PollReadMessage(t)
					if err != nil || !m.Ready {
						return asyncio.NotReady[struct{}](), err
					}
				}
			}), func(error) { s.Stop() })
		},
		pub: func(w http.ResponseWriter, req *http.Request) {
			c := upgrade(w, req, plain)
			if c == nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					m, err := c.ReadMessage(context.Background())
					if err != nil {
						return
					}
					if err := hub.Publish("bench", m.Type, m.Data); err != nil {
						return
					}
				}
			}()
		},
	}, nil
}

// echo echoes every message with its type: it reads a message once the
// last one's echo was taken.
type echo struct {
	c       *wsconn.Conn
	m       wsconn.Message
	pending bool
}

func (e *echo) Poll(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	for {
		if e.pending {
			r, err := e.c.PollWriteMessage(t, e.m.Type, e.m.Data)
			if err != nil || !r.Ready {
				return asyncio.NotReady[struct{}](), err
			}
			e.m, e.pending = wsconn.Message{}, false // the message was the connection's to lend until the next read
		}
		r, err := e.c.PollReadMessage(t)
		if err != nil || !r.Ready {
			return asyncio.NotReady[struct{}](), err
		}
		e.m, e.pending = r.Value, true
	}
}

// newPollwsGorilla is gorilla/websocket's read loop with replies written
// through a gorillaws.Writer, which writes no compressed messages: it has
// no /deflate.
func newPollwsGorilla(*options) (impl, error) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return impl{echo: func(w http.ResponseWriter, r *http.Request) {
		conn, err := gorillaws.Upgrade(&up, w, r, nil)
		if err != nil {
			return
		}
		gw := gorillaws.New(conn, nil)
		defer gw.Close()
		ctx := context.Background()
		e := gorillaEchoer{w: gw}
		for {
			if e.typ, e.p, err = conn.ReadMessage(); err != nil {
				return
			}
			if _, err := asyncio.BlockOn(ctx, e.poll); err != nil {
				return
			}
		}
	}}, nil
}

func allowAll(*http.Request) bool { return true }

type gorillaEchoer struct {
	w   *gorillaws.Writer
	typ int
	p   []byte
}

func (e *gorillaEchoer) poll(t *asyncio.Task) (asyncio.Async[int], error) {
	return e.w.PollWriteMessage(t, e.typ, e.p)
}
