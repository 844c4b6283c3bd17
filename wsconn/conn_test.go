package wsconn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/asyncio/asynciotest"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// connServerPair returns the server side of a WebSocket connection over
// loopback TCP (TLS when tls is set) and a gorilla/websocket client
// reading it as a stream.
func connServerPair(tls bool, o *Options) (*Conn, *wstest.GorillaStream, error) {
	return connServerPairOver(tls, false, o)
}

// connServerPairOver is connServerPair; with sock, TLS runs over a
// socket.Conn, without a goroutine.
func connServerPairOver(tls, sock bool, o *Options) (*Conn, *wstest.GorillaStream, error) {
	var s, c net.Conn
	var tcpc *net.TCPConn
	if tls {
		newTLS := wstest.NewTLS
		if sock {
			newTLS = wstest.NewTLSSocket
		}
		ts, tc, _, tcp, err := newTLS(true)
		if err != nil {
			return nil, nil, err
		}
		s, c, tcpc = ts, tc, tcp
	} else {
		ts, tc, err := wstest.NewTCP(true)
		if err != nil {
			return nil, nil, err
		}
		s, c, tcpc = ts, tc, tc
	}
	gw, err := wstest.UpgradeGorilla(s, c)
	if err != nil {
		return nil, nil, err
	}
	return Server(s, o), &wstest.GorillaStream{WS: gw, TCP: tcpc}, nil
}

// connClientPair returns the client side of a WebSocket connection over
// loopback TCP and the server end read with gobwas/ws as a stream.
func connClientPair(o *Options) (*Conn, *wstest.GobwasStream, error) {
	s, c, err := wstest.NewTCP(false)
	if err != nil {
		return nil, nil, err
	}
	c.SetWriteBuffer(wstest.SendBuffer)
	s.SetReadBuffer(wstest.RecvBuffer)
	pre, err := wstest.UpgradeGobwas(s, c)
	if err != nil {
		return nil, nil, err
	}
	return newConn(c, pre, o, true), &wstest.GobwasStream{Conn: s, TCP: s}, nil
}

// TestConnConformance runs the kit on a Conn, server side (a gorilla
// client reads) and client side (a gobwas server reads), and on a
// MessageWriter. Over TLS the buffer is larger than the socket buffers,
// as in TestConnWriterConformance.
func TestConnConformance(t *testing.T) {
	big := &Options{BufferSize: 1 << 20}
	for _, tc := range []struct {
		name string
		mk   asynciotest.MakeWriter
	}{
		{"Server/TCP", func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
			c, peer, err := connServerPair(false, nil)
			if err != nil {
				return nil, nil, nil, err
			}
			return c, peer, func() { c.Close(); peer.Close() }, nil
		}},
		{"Server/TLS", func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
			c, peer, err := connServerPair(true, big)
			if err != nil {
				return nil, nil, nil, err
			}
			return c, peer, func() { c.Close(); peer.Close() }, nil
		}},
		{"Server/TLSSocket", func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
			c, peer, err := connServerPairOver(true, true, nil)
			if err != nil {
				return nil, nil, nil, err
			}
			if c.tls == nil {
				return nil, nil, nil, errors.New("TLS over the socket.Conn not detected")
			}
			return c, peer, func() { c.Close(); peer.Close() }, nil
		}},
		{"Client/TCP", func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
			c, peer, err := connClientPair(nil)
			if err != nil {
				return nil, nil, nil, err
			}
			return c, peer, func() { c.Close(); peer.Close() }, nil
		}},
		{"MessageWriter/TCP", func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
			c, peer, err := connServerPair(false, nil)
			if err != nil {
				return nil, nil, nil, err
			}
			peer.One = true
			return c.MessageWriter(Binary), peer, func() { c.Close(); peer.Close() }, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { asynciotest.TestWriter(t, tc.mk) })
	}
}

// TestConnEchoBatchesWithoutFlush runs an echo loop that never flushes:
// a read flushes the replies before it waits, and pipelined messages go
// out in few writes.
func TestConnEchoBatchesWithoutFlush(t *testing.T) {
	const msgs = 2000
	c, peer, err := connServerPair(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	defer c.Close()

	var wg sync.WaitGroup
	wg.Go(func() {
		ctx := context.Background()
		for {
			op, p, err := readMessage(ctx, c)
			if err != nil {
				return
			}
			if err := asyncio.WriteAll(ctx, connWriterFunc(func(t *asyncio.Task, q []byte) (asyncio.Async[int], error) {
				return c.PollWriteMessage(t, op, q)
			}), p); err != nil {
				t.Error(err)
				return
			}
		}
	})
	sendErr := make(chan error, 1)
	go func() {
		for i := range msgs {
			if err := peer.WS.WriteMessage(2, []byte{byte(i), byte(i >> 8)}); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	for i := range msgs {
		_, p, err := peer.WS.ReadMessage()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if !bytes.Equal(p, []byte{byte(i), byte(i >> 8)}) {
			t.Fatalf("reply %d = %x", i, p)
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	peer.WS.Close()
	wg.Wait()
	st := c.out.Stats()
	if st.WriteSyscalls >= msgs {
		t.Errorf("%d write system calls for %d replies: no batching", st.WriteSyscalls, msgs)
	}
	t.Logf("%d replies in %d write system calls", msgs, st.WriteSyscalls)
}

// connWriterFunc makes a poll function an AsyncWriter for asyncio.WriteAll.
type connWriterFunc func(t *asyncio.Task, p []byte) (asyncio.Async[int], error)

func (f connWriterFunc) Write(p []byte) (int, error) { return asyncio.TryWrite(f, p) }
func (f connWriterFunc) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	return f(t, p)
}
func (connWriterFunc) PollFlush(*asyncio.Task) (asyncio.Async[struct{}], error) {
	return asyncio.Ready(struct{}{}), nil
}
func (connWriterFunc) Shutdown(*asyncio.Task) (asyncio.Async[struct{}], error) {
	return asyncio.Ready(struct{}{}), nil
}

// TestConnPongPassesBlockedWriter is gorilla #97: the application's
// writes are stuck on a peer that waits for a pong before it reads. The
// reader answers the ping past the full buffer and goes on reading.
func TestConnPongPassesBlockedWriter(t *testing.T) {
	c, peer, err := connServerPair(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	defer c.Close()

	k := newCWWaker()
	var sent int
	for {
		r, err := c.PollWriteMessage(k.task, Binary, make([]byte, 16<<10))
		if err != nil {
			t.Fatal(err)
		}
		if !r.Ready {
			break
		}
		sent++
	}
	pongs := make(chan string, 1)
	peer.WS.SetPongHandler(func(s string) error { pongs <- s; return nil })
	if err := peer.WS.WriteControl(9, []byte("are you there"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := peer.WS.WriteMessage(1, []byte("after the ping")); err != nil {
		t.Fatal(err)
	}
	op, p, err := readMessage(context.Background(), c)
	if err != nil || op != Text || string(p) != "after the ping" {
		t.Fatalf("ReadMessage = %v, %q, %v; the reader is stuck behind the writer", op, p, err)
	}
	for i := range sent {
		if _, _, err := peer.WS.ReadMessage(); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	// The pong is read (and handled) by the next read, which then ends
	// with the connection.
	var wg sync.WaitGroup
	wg.Go(func() { peer.WS.ReadMessage() })
	got := <-pongs
	peer.Close()
	wg.Wait()
	if got != "are you there" {
		t.Fatalf("pong %q", got)
	}
}

func TestConnMessageWriterFragments(t *testing.T) {
	c, peer, err := connServerPair(false, &Options{BufferSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	defer c.Close()

	want := bytes.Repeat([]byte("fragmented text "), 4096)
	done := make(chan error, 1)
	go func() {
		ctx := context.Background()
		m := c.MessageWriter(Text)
		if err := asyncio.WriteAll(ctx, m, want); err != nil {
			done <- err
			return
		}
		if _, err := c.PollWriteMessage(nil, Binary, []byte("x")); !errors.Is(err, ErrMessageInProgress) {
			done <- errors.Join(errors.New("a message during a MessageWriter"), err)
			return
		}
		done <- asyncio.Shutdown(ctx, m)
	}()
	op, got, err := peer.WS.ReadMessage()
	if err != nil || op != 1 || !bytes.Equal(got, want) {
		t.Fatalf("ReadMessage = %d, %d bytes, %v; want one text message of %d bytes", op, len(got), err, len(want))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r, err := c.PollWriteMessage(nil, Binary, []byte("next"))
	cwWantReady(t, "PollWriteMessage after the MessageWriter", r, err, 4)
	if err := asyncio.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if _, p, err := peer.WS.ReadMessage(); err != nil || string(p) != "next" {
		t.Fatalf("ReadMessage = %q, %v", p, err)
	}
}

func TestConnClientMasksFrames(t *testing.T) {
	s, c, err := wstest.NewTCP(false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pre, err := wstest.UpgradeGobwas(s, c)
	if err != nil {
		t.Fatal(err)
	}
	conn := newConn(c, pre, nil, true)
	defer conn.Close()
	payload := []byte("masked on the wire")
	r, err := conn.PollWriteMessage(nil, Text, payload)
	cwWantReady(t, "PollWriteMessage", r, err, len(payload))
	if err := asyncio.Flush(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	f, err := ws.ReadFrame(s)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Header.Masked || bytes.Equal(f.Payload, payload) {
		t.Fatalf("frame %+v is not masked", f.Header)
	}
	if f = ws.UnmaskFrameInPlace(f); !bytes.Equal(f.Payload, payload) {
		t.Fatalf("unmasked payload %q, want %q", f.Payload, payload)
	}
	if string(payload) != "masked on the wire" {
		t.Fatal("the caller's payload was masked in place")
	}
}

func TestConnWriteAfterShutdown(t *testing.T) {
	c, peer, err := connServerPair(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	defer c.Close()
	go io.Copy(io.Discard, peer)
	if err := asyncio.Shutdown(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []MessageType{Text, Binary} {
		if _, err := c.PollWriteMessage(nil, typ, []byte("late")); !errors.Is(err, asyncio.ErrShutdown) {
			t.Errorf("PollWriteMessage(%v) after Shutdown = %v, want ErrShutdown", typ, err)
		}
	}
	if code := closeCode(c); code != StatusNormalClosure {
		t.Errorf("CloseCode = %d, want 1000", code)
	}
}

// BenchmarkConnPipelined writes 128-byte messages with PollWriteMessage on
// loopback TCP and flushes after each batch of 64, as an echo server does
// for pipelined requests.
func BenchmarkConnPipelined(b *testing.B) {
	const size, batch = 128, 64
	s, cl, err := wstest.NewTCP(false)
	if err != nil {
		b.Fatal(err)
	}
	gw, err := wstest.UpgradeGorilla(s, cl)
	if err != nil {
		b.Fatal(err)
	}
	c := Server(s, nil)
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(io.Discard, gw.UnderlyingConn()) })
	defer wg.Wait()
	defer cl.Close()
	defer c.Close()

	msg := bytes.Repeat([]byte{'m'}, size)
	ctx := context.Background()
	write := connWriterFunc(func(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
		return c.PollWriteMessage(t, Binary, p)
	})
	b.ReportAllocs()
	b.SetBytes(size)
	n := 0
	for b.Loop() {
		if r, err := c.PollWriteMessage(nil, Binary, msg); err != nil {
			b.Fatal(err)
		} else if !r.Ready {
			if err := asyncio.WriteAll(ctx, write, msg); err != nil {
				b.Fatal(err)
			}
		}
		if n++; n%batch == 0 {
			if err := asyncio.Flush(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := asyncio.Flush(ctx, c); err != nil {
		b.Fatal(err)
	}
	st := c.out.Stats()
	b.ReportMetric(float64(st.WriteSyscalls)/float64(n), "syscalls/msg")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
