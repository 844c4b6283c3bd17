package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/buf"
	"github.com/pollws/pollws/wsconn"
	"github.com/pollws/pollws/wsconn/gorillaws"
)

func init() {
	impls["pollws"] = newPollws
	impls["pollws-gorilla"] = newPollwsGorilla
}

// newPollws is the echo of examples/echo on wsconn.Conn (replies queued,
// flushed by the Conn before its next read blocks) and a broadcast hub on
// one buf.Channel with a weak reader per subscriber. Each connection is
// served on a goroutine of its own, the handler returned, as
// wsconn.Upgrade's doc advises.
func newPollws() impl {
	hub := buf.NewChannel(8<<20, buf.Park)
	return impl{
		echo: func(w http.ResponseWriter, r *http.Request) {
			c, err := wsconn.Upgrade(w, r, &wsconn.UpgradeOptions{CheckOrigin: allowAll})
			if err != nil {
				return
			}
			go echoLoop(c)
		},
		sub: func(w http.ResponseWriter, r *http.Request) {
			c, err := wsconn.Upgrade(w, r, &wsconn.UpgradeOptions{CheckOrigin: allowAll})
			if err != nil {
				return
			}
			go subscribe(hub, c)
		},
		pub: func(w http.ResponseWriter, r *http.Request) {
			c, err := wsconn.Upgrade(w, r, &wsconn.UpgradeOptions{CheckOrigin: allowAll})
			if err != nil {
				return
			}
			defer c.Close()
			wr := hub.NewWeakWriter()
			defer wr.Close()
			ctx := context.Background()
			var p []byte
			for {
				var err error
				if _, p, err = c.AppendMessage(ctx, p[:0]); err != nil {
					return
				}
				if _, err := wr.Write(ctx, p); err != nil {
					return
				}
			}
		},
	}
}

// newPollwsGorilla is gorilla/websocket's read loop with replies written
// through a gorillaws.Writer.
func newPollwsGorilla() impl {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return impl{echo: func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
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

// subscribe sends c every frame of hub's from now on, until the connection
// ends: writes are batched, flushed when the reader has caught up.
func subscribe(hub *buf.Channel, c *wsconn.Conn) {
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rd := hub.NewWeakReader()
	defer rd.Close()
	go func() { // sees the client's close
		defer cancel()
		for {
			if _, _, err := c.NextMessage(ctx); err != nil {
				return
			}
		}
	}()
	f := frameWriter{c: c}
	var behind *buf.ReaderBehindError
	for {
		fr, err := rd.PollFrame(nil)
		if err == nil && !fr.Ready {
			// Caught up: send what was queued, then wait for a frame.
			if err := asyncio.Flush(ctx, c); err != nil {
				return
			}
			fr.Value, err = asyncio.BlockOn(ctx, rd.PollFrame)
		}
		switch {
		case errors.As(err, &behind):
			continue // overtaken: go on at the oldest frame left
		case err != nil:
			return
		}
		f.p = fr.Value.Data
		if _, err := asyncio.BlockOn(ctx, f.poll); err != nil {
			return
		}
	}
}

// echoLoop echoes on c until the connection ends.
func echoLoop(c *wsconn.Conn) {
	defer c.Close()
	ctx := context.Background()
	e := echoer{c: c}
	for {
		var err error
		if e.op, e.p, err = c.AppendMessage(ctx, e.p[:0]); err != nil {
			return
		}
		if _, err := asyncio.BlockOn(ctx, e.poll); err != nil {
			return
		}
	}
}

func allowAll(*http.Request) bool { return true }

type echoer struct {
	c  *wsconn.Conn
	op ws.OpCode
	p  []byte
}

func (e *echoer) poll(t *asyncio.Task) (asyncio.Async[int], error) {
	return e.c.PollWriteMessage(t, e.op, e.p)
}

type frameWriter struct {
	c *wsconn.Conn
	p []byte
}

func (f *frameWriter) poll(t *asyncio.Task) (asyncio.Async[int], error) {
	return f.c.PollWriteMessage(t, ws.OpBinary, f.p)
}

type gorillaEchoer struct {
	w   *gorillaws.Writer
	typ int
	p   []byte
}

func (e *gorillaEchoer) poll(t *asyncio.Task) (asyncio.Async[int], error) {
	return e.w.PollWriteMessage(t, e.typ, e.p)
}
