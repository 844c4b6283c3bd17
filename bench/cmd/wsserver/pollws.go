package main

import (
	"context"
	"log"
	"net"
	"net/http"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/fanout"
	"github.com/pollws/pollws/wsconn"
	"github.com/pollws/pollws/wsconn/gorillaws"
)

func init() {
	impls["pollws"] = newPollws
	impls["pollws-gorilla"] = newPollwsGorilla
}

// newPollws is the echo of examples/echo: each upgraded connection is
// handed to a wsconn.Reactor with an echo handler and the HTTP handler
// returns; the reactor reads it when bytes come and writes the replies in
// batches. Its options are wsconn's defaults (keepalive pings, an idle
// timeout). Broadcast is a fanout.Hub: each message published on /pub
// goes to every subscriber of /sub.
func newPollws() impl {
	r, err := wsconn.NewReactor(nil)
	if err != nil {
		log.Fatal(err)
	}
	hub := fanout.New(&fanout.Options{Capacity: 8 << 20, KickAfter: -1})
	upgrade := func(w http.ResponseWriter, req *http.Request) *wsconn.Conn {
		c, err := wsconn.Upgrade(w, req, &wsconn.UpgradeOptions{CheckOrigin: allowAll})
		if err != nil {
			return nil
		}
		return c
	}
	return impl{
		// wsconn.NewListener's connections let the reactor serve
		// WebSockets over TLS without a goroutine too.
		listener: func(ln net.Listener) (net.Listener, error) { return wsconn.NewListener(ln, nil) },
		echo: func(w http.ResponseWriter, req *http.Request) {
			if c := upgrade(w, req); c != nil {
				r.Serve(c, &echo{c: c}, nil)
			}
		},
		sub: func(w http.ResponseWriter, req *http.Request) {
			c := upgrade(w, req)
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
			c := upgrade(w, req)
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
	}
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
// through a gorillaws.Writer.
func newPollwsGorilla() impl {
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
	}}
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
