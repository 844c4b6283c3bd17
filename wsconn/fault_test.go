package wsconn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// faultWait bounds every wait of the fault tests, so that a failure ends
// the test instead of hanging it.
const faultWait = 10 * time.Second

// faultWriter is what the fault tests need of a ConnWriter or a Conn.
type faultWriter interface {
	asyncio.AsyncWriter
	Undelivered() int64
	Close() error
}

// faultKinds makes the writers under test over c: a ConnWriter, and the
// server side of a Conn (no opening handshake: the peer reads raw frames).
var faultKinds = []struct {
	name string
	mk   func(c net.Conn, o *ConnWriterOptions) faultWriter
}{
	{"ConnWriter", func(c net.Conn, o *ConnWriterOptions) faultWriter { return NewConnWriter(c, o) }},
	{"Conn", func(c net.Conn, o *ConnWriterOptions) faultWriter {
		var co Options
		if o != nil {
			co = Options{BufferSize: o.BufferSize, WriteTimeout: o.WriteTimeout}
		}
		return Server(c, &co)
	}},
}

// faultRun is a poll driven by asyncio.BlockOn on a goroutine of its own.
type faultRun struct {
	parked chan struct{} // closed once a poll answered NotReady
	done   chan struct{} // closed when BlockOn returned; err is then set
	err    error
	once   sync.Once
}

// faultBlock runs poll under asyncio.BlockOn on a new goroutine. Its
// parked channel is closed once a poll answered NotReady, that is once
// the goroutine parks or is about to.
func faultBlock[T any](ctx context.Context, poll func(*asyncio.Task) (asyncio.Async[T], error)) *faultRun {
	r := &faultRun{parked: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		_, r.err = asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[T], error) {
			a, err := poll(t)
			if err == nil && !a.Ready {
				r.once.Do(func() { close(r.parked) })
			}
			return a, err
		})
	}()
	return r
}

// faultFill starts a goroutine that writes 32 KiB chunks to w until a
// write fails, parking whenever w is full.
func faultFill(ctx context.Context, w asyncio.AsyncWriter) *faultRun {
	msg := make([]byte, 32<<10)
	return faultBlock(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
		for {
			r, err := w.PollWrite(t, msg)
			if err != nil || !r.Ready {
				return r, err
			}
		}
	})
}

// waitParked fails the test unless r parks within ctx.
func waitParked(ctx context.Context, t *testing.T, r *faultRun) {
	t.Helper()
	select {
	case <-r.parked:
		return
	case <-r.done:
	case <-ctx.Done():
		t.Fatal("never parked: the socket did not fill")
	}
	select {
	case <-r.parked:
	default:
		t.Fatalf("ended before parking: %v", r.err)
	}
}

// waitErr returns the error r ended with, failing the test when it ends
// without one or not within ctx.
func waitErr(ctx context.Context, t *testing.T, what string, r *faultRun) error {
	t.Helper()
	select {
	case <-r.done:
		if r.err == nil {
			t.Fatalf("%s: got nil error; want one", what)
		}
		if errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("%s: not woken: %v", what, r.err)
		}
		return r.err
	case <-ctx.Done():
		t.Fatalf("%s: not woken within %v", what, faultWait)
	}
	return nil
}

func isResetOrClosed(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// checkSticky polls w twice for a write and a flush, and wants first, the
// error that failed it, each time.
func checkSticky(t *testing.T, w asyncio.AsyncWriter, first error) {
	t.Helper()
	for i := range 2 {
		if _, err := w.PollWrite(nil, []byte("x")); err != first {
			t.Errorf("write %d after the failure: got %v; want the sticky %v", i, err, first)
		}
		if _, err := w.PollFlush(nil); err != first {
			t.Errorf("flush %d after the failure: got %v; want the sticky %v", i, err, first)
		}
	}
}

// TestFaultPeerReset: the peer resets the connection while the writer is
// full and parked; the parked write fails with the reset (or a broken
// pipe), and that error is sticky.
func TestFaultPeerReset(t *testing.T) {
	for _, k := range faultKinds {
		t.Run(k.name, func(t *testing.T) {
			server, client := wstest.TCPPair(t, true)
			w := k.mk(server, nil)
			defer w.Close()
			ctx, cancel := context.WithTimeout(context.Background(), faultWait)
			defer cancel()

			run := faultFill(ctx, w)
			waitParked(ctx, t, run)
			if err := client.SetLinger(0); err != nil {
				t.Fatal(err)
			}
			client.Close()

			err := waitErr(ctx, t, "parked write", run)
			t.Logf("parked write: %v", err)
			if !isResetOrClosed(err) {
				t.Fatalf("parked write: got %v; want ECONNRESET, EPIPE or net.ErrClosed", err)
			}
			checkSticky(t, w, err)
			if w.Undelivered() <= 0 {
				t.Errorf("Undelivered() = %d after a reset with bytes queued; want > 0", w.Undelivered())
			}
			if err := w.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestFaultResetBeforeFirstWrite: the peer resets the connection while
// everything accepted still sits in the buffer, unwritten; the write that
// finds the buffer full tries the socket, which fails, and must answer
// that error rather than NotReady, since no flush is left to wake it.
func TestFaultResetBeforeFirstWrite(t *testing.T) {
	for _, k := range faultKinds {
		t.Run(k.name, func(t *testing.T) {
			server, client := wstest.TCPPair(t, false)
			w := k.mk(server, nil)
			defer w.Close()

			small := bytes.Repeat([]byte("a"), 1000)
			for range 10 { // queued, not written: nothing asked for a flush
				if r, err := w.PollWrite(nil, small); err != nil || !r.Ready {
					t.Fatalf("PollWrite: %v, %v", r, err)
				}
			}
			if err := client.SetLinger(0); err != nil {
				t.Fatal(err)
			}
			client.Close()
			// The reset has arrived once the server's read sees it.
			server.SetReadDeadline(time.Now().Add(faultWait))
			if _, err := server.Read(make([]byte, 1)); !isResetOrClosed(err) {
				t.Fatalf("server read after the peer's reset: %v", err)
			}

			big := make([]byte, 1<<20) // larger than the buffer: needs it empty
			r, err := w.PollWrite(nil, big)
			if k.name == "ConnWriter" && err == nil && r.Ready {
				// A ConnWriter takes what fits; the next write finds it full.
				r, err = w.PollWrite(nil, big)
			}
			t.Logf("write after the reset: %v, %v", r, err)
			if !isResetOrClosed(err) {
				t.Fatalf("write after the reset: got %v, %v; want ECONNRESET or EPIPE", r, err)
			}
			checkSticky(t, w, err)
			if w.Undelivered() <= 0 {
				t.Errorf("Undelivered() = %d with bytes queued; want > 0", w.Undelivered())
			}
		})
	}
}

// TestFaultPeerHalfClose: the peer half-closes its side (CloseWrite) and
// keeps reading; the server's reads see the end, and every byte written
// still reaches the peer.
func TestFaultPeerHalfClose(t *testing.T) {
	const chunks, size = 64, 16 << 10 // 1 MiB: several times the socket buffers
	for _, k := range faultKinds {
		t.Run(k.name, func(t *testing.T) {
			server, client := wstest.TCPPair(t, true)
			w := k.mk(server, nil)
			defer w.Close()
			ctx, cancel := context.WithTimeout(context.Background(), faultWait)
			defer cancel()
			deadline, _ := ctx.Deadline()
			client.SetReadDeadline(deadline)
			if err := client.CloseWrite(); err != nil {
				t.Fatal(err)
			}

			var want bytes.Buffer
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(client)
				got <- b
			}()
			for i := range chunks {
				p := bytes.Repeat([]byte{byte(i)}, size)
				want.Write(p)
				if err := asyncio.WriteAll(ctx, w, p); err != nil {
					t.Fatalf("write %d after the peer's half-close: %v", i, err)
				}
			}
			if err := asyncio.Flush(ctx, w); err != nil {
				t.Fatalf("flush after the peer's half-close: %v", err)
			}

			switch c := w.(type) {
			case *ConnWriter:
				server.SetReadDeadline(deadline)
				if n, err := server.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Errorf("server read after the peer's half-close = %d, %v; want 0, EOF", n, err)
				}
				// The write side still works after the read saw EOF.
				if err := asyncio.WriteAll(ctx, w, []byte("end")); err != nil {
					t.Fatalf("write after the read saw EOF: %v", err)
				}
				want.WriteString("end")
				if err := asyncio.Shutdown(ctx, w); err != nil {
					t.Fatalf("shutdown: %v", err)
				}
			case *Conn:
				// A read ends a Conn at the end of the stream, without a
				// close frame: it must flush first and then fail.
				if _, _, err := readMessage(ctx, c); !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("Conn read after the peer's half-close: got %v; want io.ErrUnexpectedEOF", err)
				}
				if code := closeCode(c); code != StatusAbnormalClosure {
					t.Errorf("CloseCode() = %d; want %d", code, ws.StatusAbnormalClosure)
				}
			}

			var b []byte
			select {
			case b = <-got:
			case <-ctx.Done():
				t.Fatal("the peer did not see the end of the stream")
			}
			if _, ok := w.(*Conn); ok {
				b = faultPayloads(t, b)
			}
			if !bytes.Equal(b, want.Bytes()) {
				t.Fatalf("the peer received %d bytes; want the %d written", len(b), want.Len())
			}
			if u := w.Undelivered(); u != 0 {
				t.Errorf("Undelivered() = %d; want 0", u)
			}
		})
	}
}

// faultPayloads returns the concatenated payloads of the unmasked data
// frames in b.
func faultPayloads(t *testing.T, b []byte) []byte {
	t.Helper()
	var out []byte
	r := bufio.NewReader(bytes.NewReader(b))
	for {
		f, err := ws.ReadFrame(r)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading the frames the peer received: %v", err)
		}
		if !f.Header.OpCode.IsData() || !f.Header.Fin || f.Header.Masked {
			t.Fatalf("unexpected frame %+v", f.Header)
		}
		out = append(out, f.Payload...)
	}
}

// TestFaultWriteTimeout: the peer stops reading and the writer has a
// WriteTimeout; the parked flush fails with os.ErrDeadlineExceeded, and
// the bytes it could not send are counted as undelivered.
func TestFaultWriteTimeout(t *testing.T) {
	for _, k := range faultKinds {
		t.Run(k.name, func(t *testing.T) {
			server, _ := wstest.TCPPair(t, true) // the client never reads
			// The buffer is far larger than the socket buffers, and the
			// writes below stay within it: nothing is sent until the flush,
			// which then parks with most of the bytes still queued.
			w := k.mk(server, &ConnWriterOptions{BufferSize: 4 << 20, WriteTimeout: 200 * time.Millisecond})
			defer w.Close()
			ctx, cancel := context.WithTimeout(context.Background(), faultWait)
			defer cancel()

			msg := make([]byte, 32<<10)
			for i := range 64 {
				if _, err := w.Write(msg); err != nil {
					t.Fatalf("write %d into an empty 4 MiB buffer: %v", i, err)
				}
			}
			run := faultBlock(ctx, w.PollFlush)
			waitParked(ctx, t, run)
			err := waitErr(ctx, t, "parked flush", run)
			t.Logf("parked flush: %v", err)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("parked flush: got %v; want os.ErrDeadlineExceeded", err)
			}
			if w.Undelivered() <= 0 {
				t.Errorf("Undelivered() = %d after the timeout; want > 0", w.Undelivered())
			}
			checkSticky(t, w, err)
		})
	}
}

// TestFaultTLSPeerVanishes: the TCP connection under the TLS client is
// reset while the server's writer is full; the parked write fails.
func TestFaultTLSPeerVanishes(t *testing.T) {
	for _, k := range faultKinds {
		t.Run(k.name, func(t *testing.T) {
			server, client, _, tcpClient, err := wstest.NewTLS(true)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			w := k.mk(server, nil)
			defer w.Close()
			ctx, cancel := context.WithTimeout(context.Background(), faultWait)
			defer cancel()

			run := faultFill(ctx, w)
			waitParked(ctx, t, run)
			if err := tcpClient.SetLinger(0); err != nil {
				t.Fatal(err)
			}
			tcpClient.Close()

			err = waitErr(ctx, t, "parked write", run)
			t.Logf("parked write: %v", err)
			if !isResetOrClosed(err) {
				t.Fatalf("parked write: got %v; want ECONNRESET, EPIPE or net.ErrClosed", err)
			}
			if _, err2 := w.PollWrite(nil, []byte("x")); err2 != err {
				t.Errorf("write after the failure: got %v; want the sticky %v", err2, err)
			}
			if err := w.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestFaultCloseDuringShutdown: a shutdown waits on a peer that does not
// read; Close ends it. The writer parked before the shutdown fails with
// ErrShutdown when it begins; the parked shutdown and a flush parked
// during it fail when Close comes, and Close returns.
func TestFaultCloseDuringShutdown(t *testing.T) {
	for _, k := range faultKinds {
		t.Run(k.name, func(t *testing.T) {
			server, _ := wstest.TCPPair(t, true) // the client never reads
			w := k.mk(server, nil)
			defer w.Close()
			ctx, cancel := context.WithTimeout(context.Background(), faultWait)
			defer cancel()

			wr := faultFill(ctx, w)
			waitParked(ctx, t, wr)

			sr := faultBlock(ctx, w.Shutdown)
			waitParked(ctx, t, sr)
			if err := waitErr(ctx, t, "writer parked before the shutdown", wr); !errors.Is(err, asyncio.ErrShutdown) {
				t.Errorf("writer parked before the shutdown: got %v; want ErrShutdown", err)
			}

			fr := faultBlock(ctx, w.PollFlush)
			waitParked(ctx, t, fr)

			closed := make(chan error, 1)
			go func() { closed <- w.Close() }()
			select {
			case <-closed:
			case <-ctx.Done():
				t.Fatal("Close did not return during a stalled shutdown")
			}
			if err := waitErr(ctx, t, "parked shutdown", sr); !errors.Is(err, net.ErrClosed) {
				t.Errorf("parked shutdown: got %v; want net.ErrClosed", err)
			}
			if err := waitErr(ctx, t, "flush parked during the shutdown", fr); !errors.Is(err, net.ErrClosed) {
				t.Errorf("flush parked during the shutdown: got %v; want net.ErrClosed", err)
			}
			if _, err := w.Shutdown(nil); !errors.Is(err, net.ErrClosed) {
				t.Errorf("shutdown after Close: got %v; want net.ErrClosed", err)
			}
			if w.Undelivered() <= 0 {
				t.Errorf("Undelivered() = %d after Close with bytes queued; want > 0", w.Undelivered())
			}
		})
	}
}
