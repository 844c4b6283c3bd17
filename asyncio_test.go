package pollws_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn"
)

// chunks produces fixed-size chunks of a payload.
type chunks struct {
	rest []byte
	size int
}

func (c *chunks) PollProduce(_ *asyncio.Task, dst *asyncio.Destination[[]byte], _ bool) (asyncio.Async[asyncio.StreamResult], error) {
	if len(c.rest) == 0 {
		return asyncio.Ready(asyncio.Dropped), nil
	}
	for len(c.rest) > 0 {
		n := min(c.size, len(c.rest))
		if dst.Write(c.rest[:n]) == 0 {
			break
		}
		c.rest = c.rest[n:]
	}
	return asyncio.Ready(asyncio.Completed), nil
}

// TestProducerThroughPipe pulls a producer only as fast as a bounded pipe
// drains, writes each batch with one vectored WriteBuf, and shuts down:
// the reader gets every byte, then io.EOF.
func TestProducerThroughPipe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	payload := bytes.Repeat([]byte("pollws "), 100_000)
	w, r := asyncio.Pipe(4 << 10)
	pl := asyncio.NewPuller[[]byte](&chunks{rest: payload, size: 1000})

	errc := make(chan error, 1)
	go func() {
		var b asyncio.BytesBuf
		for {
			batch, err := pl.Pull(nil, 4, false)
			if err == io.EOF {
				errc <- asyncio.Shutdown(ctx, w)
				return
			}
			if err != nil || !batch.Ready {
				errc <- err
				return
			}
			b.Reset(batch.Value...)
			for b.Remaining() > 0 {
				if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
					return asyncio.WriteBuf(t, w, &b)
				}); err != nil {
					errc <- err
					return
				}
			}
		}
	}()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("reader got %d bytes (%v); want the %d produced", len(got), err, len(payload))
	}
	if err := <-errc; err != nil {
		t.Fatalf("writer: %v", err)
	}
}

// TestPumpIntoConnThenClose runs the packages together over real TCP: a
// producer is pumped into a wsconn.Conn as messages, shutdown.Close sends
// the close frame after every message, and a gorilla client receives them
// all, in order, then close 1000.
func TestPumpIntoConnThenClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	payload := bytes.Repeat([]byte("0123456789abcdef"), 20_000)
	errc := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			errc <- err
			return
		}
		p := wsconn.NewPump(&chunks{rest: payload, size: 1000}, wsconn.MessageSinkOf(c, wsconn.Binary), nil)
		if err := p.Run(ctx); err != nil {
			errc <- err
			c.Close()
			return
		}
		errc <- shutdown.Close(ctx, c)
	}))
	defer srv.Close()

	client, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var got []byte
	for {
		_, m, err := client.ReadMessage()
		if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		if len(m) != 1000 {
			t.Fatalf("message of %d bytes; want the producer's 1000-byte chunks", len(m))
		}
		got = append(got, m...)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("client got %d bytes; want the %d produced, in order", len(got), len(payload))
	}
	if err := <-errc; err != nil {
		t.Fatalf("server: %v", err)
	}
}
