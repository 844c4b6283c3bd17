package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/fanout"
	"github.com/pollws/pollws/wsconn"
)

// wireCounter counts the bytes a client reads from its connection.
type wireCounter struct {
	net.Conn
	n *atomic.Int64
}

func (c wireCounter) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// dialCounting connects a gorilla client, compressing or not, to /sub,
// and returns it with the count of bytes it reads and whether the server
// agreed on permessage-deflate.
func (ts *testServer) dialCounting(t *testing.T, compress bool) (*websocket.Conn, *atomic.Int64, bool) {
	t.Helper()
	wire := new(atomic.Int64)
	d := websocket.Dialer{EnableCompression: compress, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return wireCounter{c, wire}, nil
	}}
	c, resp, err := d.Dial("ws://"+ts.addr+"/sub", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, wire, strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
}

// stats returns the hub's counters from /stats.
func (ts *testServer) stats(t *testing.T) fanout.Stats {
	t.Helper()
	res, err := http.Get("http://" + ts.addr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st fanout.Stats
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// With -compress, the default, subscribers that offer permessage-deflate
// get every message compressed, and each message is compressed once,
// however many of them there are; a subscriber that does not offer it
// gets the messages as they are. With -compress=false nobody compresses.
func TestCompressedSubscribers(t *testing.T) {
	for _, compress := range []bool{true, false} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.compress = compress
			ts := startServer(t, cfg, 0, 0, nil)
			type client struct {
				c        *websocket.Conn
				wire     *atomic.Int64
				compress bool
			}
			var clients []client
			for i := range 4 {
				c, wire, agreed := ts.dialCounting(t, i > 0)
				if want := compress && i > 0; agreed != want {
					t.Fatalf("client %d: permessage-deflate agreed: %v, want %v", i, agreed, want)
				}
				clients = append(clients, client{c, wire, agreed})
			}
			ts.waitSubscribed(t, len(clients))

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			pub, err := wsconn.Dial(ctx, "ws://"+ts.addr+"/pub", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			const n = 20
			msgs := make([][]byte, n)
			for i := range msgs {
				var b bytes.Buffer
				for b.Len() < 1024 {
					fmt.Fprintf(&b, `{"seq":%d,"symbol":"X%d","price":%d.%02d},`, i, b.Len()%97, 1000+b.Len()*7%500, b.Len()%100)
				}
				msgs[i] = b.Bytes()[:1024]
				if err := publishText(ctx, pub, msgs[i]); err != nil {
					t.Fatal(err)
				}
			}
			for i, cl := range clients {
				cl.c.SetReadDeadline(time.Now().Add(20 * time.Second))
				before := cl.wire.Load()
				for j, msg := range msgs {
					typ, p, err := cl.c.ReadMessage()
					if err != nil || typ != websocket.TextMessage || !bytes.Equal(p, msg) {
						t.Fatalf("client %d, message %d: type %d, %d bytes, %v", i, j, typ, len(p), err)
					}
				}
				wire := cl.wire.Load() - before
				if compressed := wire < n*1024/2; compressed != cl.compress {
					t.Errorf("client %d: %d bytes on the wire for %d messages of 1 KiB; compressed: %v, want %v", i, wire, n, compressed, cl.compress)
				}
			}
			want := uint64(0)
			if compress {
				want = n // once per message for the 3 compressing subscribers
			}
			if st := ts.stats(t); st.Deflated != want || st.Published != n || st.Delivered != 4*n {
				t.Errorf("/stats: %d compressions, %d published, %d delivered; want %d, %d, %d", st.Deflated, st.Published, st.Delivered, want, n, 4*n)
			}
		})
	}
}

// publishText writes p to c as one text message, waiting for room, and
// flushes it.
func publishText(ctx context.Context, c *wsconn.Conn, p []byte) error {
	if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
		return c.PollWriteMessage(t, wsconn.Text, p)
	}); err != nil {
		return err
	}
	return asyncio.Flush(ctx, c)
}
