package wsconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/asyncio/asynciotest"
	"github.com/pollws/pollws/internal/sendq"
	"github.com/pollws/pollws/internal/socket"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// cwLingerPeer is the far end of a TCP connection; its Close resets the
// connection (SO_LINGER 0), so that the writer fails at once.
type cwLingerPeer struct{ *net.TCPConn }

func (p cwLingerPeer) Close() error {
	_ = p.SetLinger(0)
	return p.TCPConn.Close()
}

// cwTLSPeer is the client end of a TLS connection; its Close resets the
// TCP connection under it.
type cwTLSPeer struct {
	*tls.Conn
	tcp *net.TCPConn
}

func (p cwTLSPeer) Close() error {
	_ = p.tcp.SetLinger(0)
	return p.Conn.Close()
}

// cwTransport makes a connection: the end a writer writes to, and the
// peer that reads it.
type cwTransport struct {
	name string
	make func() (net.Conn, asynciotest.Peer, error)
}

var cwTransports = []cwTransport{
	{"TCP", func() (net.Conn, asynciotest.Peer, error) {
		s, c, err := wstest.NewTCP(true)
		return s, cwLingerPeer{c}, err
	}},
	{"Unix", func() (net.Conn, asynciotest.Peer, error) {
		s, c, err := wstest.NewUnix(true)
		return s, c, err
	}},
	{"TLS", func() (net.Conn, asynciotest.Peer, error) {
		s, c, _, tcpc, err := wstest.NewTLS(true)
		return s, cwTLSPeer{c, tcpc}, err
	}},
	{"Pipe", func() (net.Conn, asynciotest.Peer, error) {
		s, c := net.Pipe()
		return s, c, nil
	}},
}

// TestConnWriterConformance runs the kit over every transport, with the
// defaults and with write-through.
//
// Over TLS a flush goroutine does blocking writes, so a NotReady means
// that the buffer is full, not yet that the socket is: the goroutine may
// still move the whole buffer into the kernel's socket buffers. The kit's
// rules about a peer that goes away assume the sink stalled, so over TLS
// the buffer is made several times larger than those socket buffers
// (about 160 KiB here): a full buffer then cannot drain into them.
func TestConnWriterConformance(t *testing.T) {
	for _, tr := range cwTransports {
		options := []struct {
			name string
			o    *ConnWriterOptions
		}{
			{"defaults", nil},
			{"4KiB_write_through", &ConnWriterOptions{BufferSize: 4 << 10, WriteThrough: true}},
		}
		switch tr.name {
		case "TLS":
			options[0].name, options[0].o = "1MiB", &ConnWriterOptions{BufferSize: 1 << 20}
			options[1].name, options[1].o = "1MiB_write_through", &ConnWriterOptions{BufferSize: 1 << 20, WriteThrough: true}
		case "Unix", "Pipe":
			options = options[:1]
		}
		for _, o := range options {
			t.Run(tr.name+"/"+o.name, func(t *testing.T) {
				asynciotest.TestWriter(t, func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
					c, peer, err := tr.make()
					if err != nil {
						return nil, nil, nil, err
					}
					w := NewConnWriter(c, o.o)
					return w, peer, func() {
						w.Close()
						peer.Close()
					}, nil
				})
			})
		}
	}
}

// cwWaker is a task that records its notifications on a channel.
type cwWaker struct {
	task *asyncio.Task
	ch   chan struct{}
}

func newCWWaker() *cwWaker {
	k := &cwWaker{ch: make(chan struct{}, 1)}
	k.task = asyncio.NewTask(func() {
		select {
		case k.ch <- struct{}{}:
		default:
		}
	})
	return k
}

func (k *cwWaker) wait(t *testing.T, why string) {
	t.Helper()
	select {
	case <-k.ch:
	case <-time.After(asynciotest.Timeout):
		t.Fatalf("not notified within %v: %s", asynciotest.Timeout, why)
	}
}

// cwFill writes numbered bytes until w answers NotReady and returns them.
func cwFill(t *testing.T, w *ConnWriter, task *asyncio.Task, limit int) []byte {
	t.Helper()
	var sent []byte
	chunk := make([]byte, 8<<10)
	for len(sent) < limit {
		for i := range chunk {
			chunk[i] = byte(len(sent) + i*7)
		}
		r, err := w.PollWrite(task, chunk)
		if err != nil {
			t.Fatalf("PollWrite after %d bytes: %v", len(sent), err)
		}
		if !r.Ready {
			return sent
		}
		sent = append(sent, chunk[:r.Value]...)
	}
	t.Fatalf("the writer took %d bytes from a peer that does not read", len(sent))
	return nil
}

func cwWantReady[T comparable](t *testing.T, what string, r asyncio.Async[T], err error, want T) {
	t.Helper()
	if err != nil || !r.Ready || r.Value != want {
		t.Fatalf("%s = %+v, %v; want Ready(%v)", what, r, err, want)
	}
}

func cwWantNotReady[T any](t *testing.T, what string, r asyncio.Async[T], err error) {
	t.Helper()
	if err != nil || r.Ready {
		t.Fatalf("%s = %+v, %v; want NotReady", what, r, err)
	}
}

func TestConnWriterStalledPeer(t *testing.T) {
	for _, tr := range cwTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, peer, err := tr.make()
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			w := NewConnWriter(c, &ConnWriterOptions{BufferSize: 32 << 10})
			defer w.Close()

			k := newCWWaker()
			sent := cwFill(t, w, k.task, 4<<20)
			if len(sent) < 32<<10 {
				t.Fatalf("NotReady after %d bytes, before the 32 KiB buffer was full", len(sent))
			}

			var got []byte
			var readErr error
			var wg sync.WaitGroup
			wg.Go(func() { got, readErr = io.ReadAll(peer) })
			defer wg.Wait()
			k.wait(t, "the peer began to read")

			more := bytes.Repeat([]byte("after the stall."), 10_000)
			ctx := context.Background()
			if err := asyncio.WriteAll(ctx, w, more); err != nil {
				t.Fatal(err)
			}
			if err := asyncio.Shutdown(ctx, w); err != nil {
				t.Fatal(err)
			}
			if n := w.Undelivered(); n != 0 {
				t.Errorf("Undelivered after Shutdown = %d, want 0", n)
			}
			wg.Wait()
			if readErr != nil {
				t.Fatalf("the peer's read ended with %v, want a clean io.EOF", readErr)
			}
			if want := append(sent, more...); !bytes.Equal(got, want) {
				t.Fatalf("the peer got %d bytes, not the %d accepted", len(got), len(want))
			}
			st := w.w.Stats()
			if st.Accepted != int64(len(got)) || st.Written != int64(len(got)) || st.NotReady == 0 {
				t.Errorf("Stats = %+v; want %d accepted and written, some NotReady", st, len(got))
			}
		})
	}
}

func TestConnWriterIdleHoldsNothing(t *testing.T) {
	const conns = 200
	type pair struct {
		w    *ConnWriter
		peer net.Conn
	}
	pairs := make([]pair, conns)
	var readers sync.WaitGroup
	defer readers.Wait()
	for i := range pairs {
		s, c := wstest.TCPPair(t, true)
		pairs[i] = pair{NewConnWriter(s), c}
		readers.Go(func() { io.Copy(io.Discard, c) })
	}
	defer func() {
		for _, p := range pairs {
			p.w.Close()
			p.peer.Close()
		}
	}()
	before := runtime.NumGoroutine()

	ctx := context.Background()
	small, large := make([]byte, 1000), make([]byte, 256<<10)
	var wg sync.WaitGroup
	for i, p := range pairs {
		wg.Go(func() {
			msg := small
			if i%4 == 0 {
				msg = large // more than the socket takes at once: a flush goroutine waits
			}
			if err := asyncio.WriteAll(ctx, p.w, msg); err != nil {
				t.Error(err)
			}
			if err := asyncio.Flush(ctx, p.w); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	// A flush goroutine notifies, then returns: let the last ones finish.
	deadline := time.Now().Add(asynciotest.Timeout)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines with %d flushed idle writers, want at most %d as before", n, conns, before)
	}
	var waited int64
	for i, p := range pairs {
		if p.w.w.Held() || p.w.Buffered() != 0 {
			t.Fatalf("writer %d holds its buffer after a flush (%d bytes buffered)", i, p.w.Buffered())
		}
		waited += p.w.w.Stats().NotReady
	}
	if waited == 0 {
		t.Error("no writer waited on its socket: the flush goroutine went untested")
	}
}

// cwZeroConn takes nothing and reports no error.
type cwZeroConn struct{ net.Conn }

func (cwZeroConn) Write(p []byte) (int, error) { return 0, nil }

func TestConnWriterWriteZero(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	w := NewConnWriter(cwZeroConn{a})
	defer w.Close()
	k := newCWWaker()
	if _, err := w.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	r, err := w.PollFlush(k.task)
	cwWantNotReady(t, "PollFlush", r, err)
	k.wait(t, "the flush failed")
	for range 2 {
		if _, err := w.PollFlush(k.task); !errors.Is(err, asyncio.ErrWriteZero) {
			t.Fatalf("PollFlush = %v, want ErrWriteZero", err)
		}
		if _, err := w.Write([]byte("x")); !errors.Is(err, asyncio.ErrWriteZero) {
			t.Fatalf("Write = %v, want ErrWriteZero", err)
		}
	}
	if n := w.Undelivered(); n != 5 {
		t.Errorf("Undelivered = %d, want 5", n)
	}
}

func TestConnWriterWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		w := NewConnWriter(a, &ConnWriterOptions{WriteTimeout: time.Second})
		defer w.Close()
		if _, err := w.Write(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		k := newCWWaker()
		r, err := w.PollFlush(k.task)
		cwWantNotReady(t, "PollFlush", r, err)
		start := time.Now()
		<-k.ch
		if d := time.Since(start); d != time.Second {
			t.Errorf("the flush failed after %v, want the 1s WriteTimeout", d)
		}
		_, err = w.PollFlush(k.task)
		if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "100 bytes not delivered") {
			t.Fatalf("PollFlush = %v; want os.ErrDeadlineExceeded saying 100 bytes not delivered", err)
		}
		if n := w.Undelivered(); n != 100 {
			t.Errorf("Undelivered = %d, want 100", n)
		}
	})
}

func TestConnWriterWriteTimeoutSocket(t *testing.T) {
	s, _ := wstest.TCPPair(t, true)
	w := NewConnWriter(s, &ConnWriterOptions{WriteTimeout: 50 * time.Millisecond})
	defer w.Close()
	k := newCWWaker()
	sent := cwFill(t, w, k.task, 16<<20)
	var err error
	for {
		var r asyncio.Async[struct{}]
		if r, err = w.PollFlush(k.task); err != nil {
			break
		}
		if r.Ready {
			// The kernel took it all: the socket buffers were not full yet.
			sent = append(sent, cwFill(t, w, k.task, 16<<20)...)
			continue
		}
		k.wait(t, "the flush timed out")
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "bytes not delivered") {
		t.Fatalf("PollFlush = %v; want os.ErrDeadlineExceeded saying how many bytes were not delivered", err)
	}
	if n := w.Undelivered(); n <= 0 || n > int64(len(sent)) {
		t.Errorf("Undelivered = %d, want in (0, %d]", n, len(sent))
	}
}

func TestConnWriterCloseWakesWaiter(t *testing.T) {
	for _, tr := range cwTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, peer, err := tr.make()
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			var o *ConnWriterOptions
			if tr.name == "TLS" {
				// As in TestConnWriterConformance: a buffer the socket
				// buffers cannot swallow, so that bytes stay undelivered.
				o = &ConnWriterOptions{BufferSize: 1 << 20}
			}
			w := NewConnWriter(c, o)
			k := newCWWaker()
			sent := cwFill(t, w, k.task, 16<<20)
			closed := make(chan error, 1)
			go func() { closed <- w.Close() }()
			k.wait(t, "Close fails a waiting writer")
			for range 2 {
				if _, err := w.PollWrite(k.task, []byte("x")); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("PollWrite after Close = %v, want net.ErrClosed", err)
				}
				if _, err := w.Shutdown(k.task); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("Shutdown after Close = %v, want net.ErrClosed", err)
				}
			}
			if err := <-closed; err != nil {
				t.Errorf("Close = %v", err)
			}
			if err := w.Close(); err != nil {
				t.Errorf("second Close = %v, want nil", err)
			}
			st := w.w.Stats()
			// Undelivered counts what the writer held and, over a socket,
			// what the kernel still had to send: the close reset it.
			if u := w.Undelivered(); st.Accepted != int64(len(sent)) || u < st.Accepted-st.Written || u > st.Accepted || u <= 0 {
				t.Errorf("Stats = %+v, Undelivered = %d; want %d accepted, and undelivered at least what was not written", st, u, len(sent))
			}
			if w.w.Held() {
				t.Error("a closed writer holds its buffer")
			}
		})
	}
}

func TestConnWriterPollWriteWhole(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	w := NewConnWriter(a, &ConnWriterOptions{BufferSize: 1024})
	defer w.Close()
	k := newCWWaker()
	msg := func(c byte, size int) []byte { return bytes.Repeat([]byte{c}, size) }

	r, err := pollWhole(w, k.task, msg('a', 100), msg('b', 500))
	cwWantReady(t, "PollWriteWhole(600)", r, err, 600)
	r, err = pollWhole(w, k.task, msg('c', 600))
	cwWantNotReady(t, "PollWriteWhole(600) beside 600 pending", r, err)
	r, err = pollWhole(w, k.task, msg('d', 3000))
	cwWantNotReady(t, "PollWriteWhole(3000) larger than the buffer with bytes pending", r, err)
	if n := w.Buffered(); n != 600 {
		t.Fatalf("Buffered = %d, want 600", n)
	}

	got := make([]byte, 600)
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if want := append(msg('a', 100), msg('b', 500)...); !bytes.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
	k.wait(t, "the pending bytes went out")
	for {
		r, err = pollWhole(w, k.task, msg('d', 3000))
		if err != nil || r.Ready {
			break
		}
		k.wait(t, "the last pending bytes went out")
	}
	cwWantReady(t, "PollWriteWhole(3000) with nothing pending", r, err, 3000)
	if n := w.w.Available(); n != 0 {
		t.Fatalf("Available = %d while a large write is pending, want 0", n)
	}
	r, err = pollWhole(w, k.task, msg('e', 1))
	cwWantNotReady(t, "PollWriteWhole(1) while a large write is pending", r, err)

	got = make([]byte, 3000)
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg('d', 3000)) {
		t.Fatal("the large write arrived changed")
	}
	if err := asyncio.Flush(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	if n := w.w.Available(); n != 1024 {
		t.Fatalf("Available after the flush = %d, want 1024", n)
	}
}

// TestConnWriterLargeWriteGoesDirect checks that a write larger than the
// buffer, with nothing pending, goes to the socket without a copy.
func TestConnWriterLargeWriteGoesDirect(t *testing.T) {
	if !socket.Supported {
		t.Skip("no raw socket writes on this system")
	}
	s, c := wstest.TCPPair(t, false)
	w := NewConnWriter(s, &ConnWriterOptions{BufferSize: 4096})
	defer w.Close()
	p := bytes.Repeat([]byte("0123456789abcdef"), 1024)
	r, err := pollWhole(w, nil, p)
	cwWantReady(t, "PollWriteWhole(16 KiB)", r, err, len(p))
	if w.Buffered() != 0 || w.w.Held() {
		t.Fatalf("%d bytes buffered: the write did not go around the buffer", w.Buffered())
	}
	got := make([]byte, len(p))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, p) {
		t.Fatal("the write arrived changed")
	}
	if n := w.w.Stats().WriteSyscalls; n != 1 {
		t.Errorf("%d write system calls, want 1", n)
	}
}

func TestConnWriterControlFramePassesFullBuffer(t *testing.T) {
	s, c := wstest.TCPPair(t, true)
	w := NewConnWriter(s)
	w.w.Init(s, sendq.Options{BufferSize: 8 << 10, PriorityMax: 16}) // a priority lane, as a Conn has
	defer w.Close()
	k := newCWWaker()
	sent := cwFill(t, w, k.task, 16<<20)

	pong := []byte("\x8a\x04pong")
	body := [][]byte{pong[2:]}
	var wake asyncio.Wakeups
	q := sendq.Req{Head: pong[:2], Body: body, Priority: true}
	n, ready, err := w.w.Poll(nil, &q, &wake)
	cwWantReady(t, "a control frame past a full buffer", asyncio.Async[int]{Value: n, Ready: ready}, err, 6)
	n, ready, err = w.w.Poll(nil, &q, &wake)
	cwWantNotReady(t, "a second control frame past a full buffer", asyncio.Async[int]{Value: n, Ready: ready}, err)

	// Let part of the queue out, then write more: it goes after the pong.
	var got []byte
	buf := make([]byte, 4096)
	for w.w.Available() == 0 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
		w.w.Kick(&wake)
	}
	tail := []byte("after the pong")
	r, err := w.PollWrite(nil, tail)
	cwWantReady(t, "PollWrite", r, err, len(tail))

	var wg sync.WaitGroup
	wg.Go(func() {
		rest, _ := io.ReadAll(c)
		got = append(got, rest...)
	})
	if err := asyncio.Shutdown(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if want := append(append(sent, pong...), tail...); !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes; want the %d written, then the pong, then the later write", len(got), len(sent))
	}
}

func TestConnWriterWriteBufIsVectored(t *testing.T) {
	if !socket.Supported {
		t.Skip("no raw socket writes on this system")
	}
	s, c := wstest.TCPPair(t, false)
	w := NewConnWriter(s, &ConnWriterOptions{BufferSize: 1024, WriteThrough: true})
	defer w.Close()
	b := asyncio.NewBytesBuf([]byte("one "), nil, []byte("two "), []byte("three"))
	r, err := w.WriteBuf(nil, b)
	cwWantReady(t, "WriteBuf", r, err, 13)
	if b.Remaining() != 0 {
		t.Fatalf("Remaining = %d after Ready(13), want 0", b.Remaining())
	}
	if n := w.w.Stats().WriteSyscalls; n != 1 {
		t.Errorf("%d write system calls for three chunks, want 1 writev", n)
	}
	got := make([]byte, 13)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "one two three" {
		t.Fatalf("read %q", got)
	}
}

func TestConnWriterShutdownSendsEndOnce(t *testing.T) {
	for _, tr := range cwTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, peer, err := tr.make()
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			w := NewConnWriter(c)
			defer w.Close()
			if _, err := w.Write([]byte("bye")); err != nil {
				t.Fatal(err)
			}
			var got []byte
			var readErr error
			var wg sync.WaitGroup
			wg.Go(func() { got, readErr = io.ReadAll(peer) })
			if err := asyncio.Shutdown(context.Background(), w); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				r, err := w.Shutdown(nil)
				cwWantReady(t, "Shutdown again", r, err, struct{}{})
			}
			if _, err := w.Write([]byte("x")); !errors.Is(err, asyncio.ErrShutdown) {
				t.Fatalf("Write after Shutdown = %v, want ErrShutdown", err)
			}
			wg.Wait()
			if readErr != nil || string(got) != "bye" {
				t.Fatalf("the peer read %q, %v; want \"bye\" and a clean end", got, readErr)
			}
		})
	}
}

func TestConnWriterPeerResetIsSticky(t *testing.T) {
	s, c := wstest.TCPPair(t, true)
	w := NewConnWriter(s)
	defer w.Close()
	k := newCWWaker()
	cwFill(t, w, k.task, 16<<20)
	if err := (cwLingerPeer{c}).Close(); err != nil {
		t.Fatal(err)
	}
	k.wait(t, "the peer reset the connection")
	_, first := w.PollFlush(k.task)
	if first == nil || !strings.HasPrefix(first.Error(), "wsconn: ") {
		t.Fatalf("PollFlush after a reset = %v; want an error from package wsconn", first)
	}
	for range 2 {
		if _, err := w.PollWrite(nil, []byte("x")); !errors.Is(err, first) {
			t.Fatalf("PollWrite = %v, want the first error %v", err, first)
		}
		if _, err := w.Shutdown(nil); !errors.Is(err, first) {
			t.Fatalf("Shutdown = %v, want the first error %v", err, first)
		}
	}
}

// BenchmarkConnWriterPipelined writes 128-byte messages on loopback TCP and
// flushes after each batch of 64, as a server answering pipelined
// requests does: one writev per batch.
func BenchmarkConnWriterPipelined(b *testing.B) {
	const size, batch = 128, 64
	s, c := wstest.TCPPair(b, false)
	w := NewConnWriter(s)
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(io.Discard, c) })
	defer wg.Wait()
	defer w.Close()

	ctx := context.Background()
	msg := bytes.Repeat([]byte{'m'}, size)
	b.ReportAllocs()
	b.SetBytes(size)
	n := 0
	for b.Loop() {
		if err := asyncio.WriteAll(ctx, w, msg); err != nil {
			b.Fatal(err)
		}
		if n++; n%batch == 0 {
			if err := asyncio.Flush(ctx, w); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := asyncio.Flush(ctx, w); err != nil {
		b.Fatal(err)
	}
	st := w.w.Stats()
	b.ReportMetric(float64(st.WriteSyscalls)/float64(n), "syscalls/msg")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
