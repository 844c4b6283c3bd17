package wsconn

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// TestConnIdleHoldsNoReadBuffer checks that server Conns over sockets
// that have read and answered a message and wait for the next one hold
// no read buffer, and that they read the next message all the same.
func TestConnIdleHoldsNoReadBuffer(t *testing.T) {
	const n = 8
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			ctx := context.Background()
			type pair struct {
				s, cl *Conn
				got   chan []byte
			}
			pairs := make([]pair, n)
			for i := range pairs {
				var s, cl net.Conn
				if network == "tcp" {
					s, cl = wstest.TCPPair(t, false)
				} else {
					s, cl = wstest.UnixPair(t, false)
				}
				p := pair{s: Server(s, nil), cl: Client(cl, nil), got: make(chan []byte, 2)}
				t.Cleanup(func() { p.cl.Close(); p.s.Close() })
				go func() { // echo until the connection ends
					for {
						op, b, err := readMessage(ctx, p.s)
						if err != nil {
							close(p.got)
							return
						}
						p.got <- b
						if err := asyncio.WriteAll(ctx, connWriterFunc(func(t *asyncio.Task, q []byte) (asyncio.Async[int], error) {
							return p.s.PollWriteMessage(t, op, q)
						}), b); err != nil {
							return
						}
					}
				}()
				pairs[i] = p
			}
			for round, msg := range [][]byte{[]byte("first"), bytes.Repeat([]byte("x"), 3*readBufferSize)} {
				for _, p := range pairs {
					if err := asyncio.WriteAll(ctx, connWriterFunc(func(t *asyncio.Task, q []byte) (asyncio.Async[int], error) {
						return p.cl.PollWriteMessage(t, Binary, q)
					}), msg); err != nil {
						t.Fatal(err)
					}
					if err := asyncio.Flush(ctx, p.cl); err != nil {
						t.Fatal(err)
					}
					if _, b, err := readMessage(ctx, p.cl); err != nil || !bytes.Equal(b, msg) {
						t.Fatalf("round %d: echo: got %d bytes, %v; want %d bytes", round, len(b), err, len(msg))
					}
					if b := <-p.got; !bytes.Equal(b, msg) {
						t.Fatalf("round %d: server read %d bytes, want %d", round, len(b), len(msg))
					}
				}
				// The echo is sent before the server's read waits: wait for
				// the read to give its buffer back.
				deadline := time.Now().Add(10 * time.Second)
				for i, p := range pairs {
					for p.s.rd.holding.Load() {
						if time.Now().After(deadline) {
							t.Fatalf("round %d: idle Conn %d holds a read buffer", round, i)
						}
						time.Sleep(time.Millisecond)
					}
				}
			}
		})
	}
}
