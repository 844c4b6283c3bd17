package wsconn

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// connRawFrame encodes a frame as a peer would send it, masked when
// masked is set, whatever the protocol says.
func connRawFrame(fin bool, op ws.OpCode, rsv byte, masked bool, p []byte) []byte {
	h := ws.Header{Fin: fin, OpCode: op, Rsv: rsv, Length: int64(len(p)), Masked: masked}
	payload := bytes.Clone(p)
	if masked {
		h.Mask = ws.NewMask()
		ws.Cipher(payload, h.Mask, 0)
	}
	var b bytes.Buffer
	if err := ws.WriteHeader(&b, h); err != nil {
		panic(err)
	}
	b.Write(payload)
	return b.Bytes()
}

func connCloseBody(code ws.StatusCode, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// connCountingHandler counts log records.
type connCountingHandler struct{ n atomic.Int32 }

func (h *connCountingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *connCountingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h *connCountingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *connCountingHandler) WithGroup(string) slog.Handler      { return h }

// connRawPeer connects a Conn (server side unless client) to a raw socket
// that writes whatever frames a test gives it.
func connRawPeer(t *testing.T, client bool, o *Options) (*Conn, net.Conn) {
	t.Helper()
	s, c := wstest.TCPPair(t, false)
	pre, err := wstest.UpgradeGobwas(s, c)
	if err != nil {
		t.Fatal(err)
	}
	if client {
		return newConn(c, pre, o, true), s
	}
	return Server(s, o), c
}

// TestConnBadInput sends each kind of bad input and checks that the read
// fails with a clear error, the right close code goes to the peer, one
// line is logged, and the connection is closed.
func TestConnBadInput(t *testing.T) {
	m := true // client frames are masked
	text := func(fin bool, p string) []byte { return connRawFrame(fin, ws.OpText, 0, m, []byte(p)) }
	cont := func(fin bool, p string) []byte { return connRawFrame(fin, ws.OpContinuation, 0, m, []byte(p)) }
	closeWith := func(p []byte) []byte { return connRawFrame(true, ws.OpClose, 0, m, p) }
	for _, tc := range []struct {
		name   string
		client bool // the Conn is the client side
		send   [][]byte
		code   StatusCode
		want   error
	}{
		{"reserved opcode", false, [][]byte{connRawFrame(true, 0x3, 0, m, nil)}, 1002, ErrProtocol},
		{"reserved control opcode", false, [][]byte{connRawFrame(true, 0xb, 0, m, nil)}, 1002, ErrProtocol},
		{"RSV1 set", false, [][]byte{connRawFrame(true, ws.OpText, 4, m, []byte("x"))}, 1002, ErrProtocol},
		{"unmasked client frame", false, [][]byte{connRawFrame(true, ws.OpText, 0, false, []byte("x"))}, 1002, ErrProtocol},
		{"masked server frame", true, [][]byte{connRawFrame(true, ws.OpText, 0, true, []byte("x"))}, 1002, ErrProtocol},
		{"fragmented ping", false, [][]byte{connRawFrame(false, ws.OpPing, 0, m, nil)}, 1002, ErrProtocol},
		{"oversized ping", false, [][]byte{connRawFrame(true, ws.OpPing, 0, m, make([]byte, 126))}, 1002, ErrProtocol},
		{"continuation without a start", false, [][]byte{cont(true, "x")}, 1002, ErrProtocol},
		{"data frame inside a fragmented message", false, [][]byte{text(false, "a"), text(true, "b")}, 1002, ErrProtocol},
		{"close code 999", false, [][]byte{closeWith(connCloseBody(999, ""))}, 1002, ErrProtocol},
		{"close code 1005", false, [][]byte{closeWith(connCloseBody(1005, ""))}, 1002, ErrProtocol},
		{"close code 1004", false, [][]byte{closeWith(connCloseBody(1004, ""))}, 1002, ErrProtocol},
		{"close code 5000", false, [][]byte{closeWith(connCloseBody(5000, ""))}, 1002, ErrProtocol},
		{"1-byte close payload", false, [][]byte{closeWith([]byte{3})}, 1002, ErrProtocol},
		{"invalid UTF-8", false, [][]byte{text(true, "ok \xff")}, 1007, ErrInvalidUTF8},
		{"UTF-8 cut across fragments", false, [][]byte{text(false, "\xe2\x82"), cont(true, "(")}, 1007, ErrInvalidUTF8},
		{"text ending inside a character", false, [][]byte{text(false, "a"), cont(true, "\xe2\x82")}, 1007, ErrInvalidUTF8},
		{"invalid UTF-8 close reason", false, [][]byte{closeWith(connCloseBody(1000, "\xc3\x28"))}, 1007, ErrInvalidUTF8},
		{"message too big", false, [][]byte{connRawFrame(true, ws.OpBinary, 0, m, make([]byte, 2000))}, 1009, ErrMessageTooBig},
		{"fragmented message too big", false, [][]byte{text(false, string(make([]byte, 600))), cont(true, string(make([]byte, 600)))}, 1009, ErrMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := new(connCountingHandler)
			c, peer := connRawPeer(t, tc.client, &Options{MaxMessageSize: 1024, Logger: slog.New(logs)})
			defer c.Close()
			for _, f := range tc.send {
				if _, err := peer.Write(f); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if _, _, err := readMessage(context.Background(), c); !errors.Is(err, tc.want) {
					t.Fatalf("ReadMessage = %v, want an error wrapping %v", err, tc.want)
				}
			}
			if got := closeCode(c); got != tc.code {
				t.Errorf("CloseCode = %d, want %d", got, tc.code)
			}
			f, err := ws.ReadFrame(peer)
			if err != nil || f.Header.OpCode != ws.OpClose || len(f.Payload) < 2 {
				t.Fatalf("the peer read %+v, %v; want a close frame", f.Header, err)
			}
			if f.Header.Masked {
				f = ws.UnmaskFrameInPlace(f)
			}
			if got, _ := ws.ParseCloseFrameData(f.Payload); StatusCode(got) != tc.code {
				t.Errorf("close frame with status %d, want %d", got, tc.code)
			}
			if _, err := peer.Read(make([]byte, 1)); err == nil {
				t.Error("the connection is still open after the close frame")
			}
			if n := logs.n.Load(); n != 1 {
				t.Errorf("%d log lines, want 1", n)
			}
		})
	}
}

func TestConnReadsAcrossFragments(t *testing.T) {
	c, peer := connRawPeer(t, false, nil)
	defer c.Close()
	for _, f := range [][]byte{
		connRawFrame(false, ws.OpText, 0, true, []byte("frag \xe2")),
		connRawFrame(true, ws.OpPing, 0, true, []byte("between")),
		connRawFrame(false, ws.OpContinuation, 0, true, []byte("\x82")),
		connRawFrame(true, ws.OpContinuation, 0, true, []byte("\xac ment")),
	} {
		if _, err := peer.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	op, p, err := readMessage(context.Background(), c)
	if err != nil || op != Text || string(p) != "frag € ment" {
		t.Fatalf("ReadMessage = %v, %q, %v", op, p, err)
	}
	if err := asyncio.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	f, err := ws.ReadFrame(peer)
	if err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "between" {
		t.Fatalf("the peer read %+v %q, %v; want the pong", f.Header, f.Payload, err)
	}
}

// TestConnMessageLifetime checks that a message read stays valid until
// the next read, that fragmented messages are read whole, and that a read
// after the peer left fails.
func TestConnMessageLifetime(t *testing.T) {
	c, peer := connRawPeer(t, false, nil)
	defer c.Close()
	for _, f := range [][]byte{
		connRawFrame(true, ws.OpBinary, 0, true, []byte("one")),
		connRawFrame(false, ws.OpText, 0, true, []byte("tw")),
		connRawFrame(true, ws.OpContinuation, 0, true, []byte("o")),
		connRawFrame(true, ws.OpBinary, 0, true, []byte("three")),
	} {
		if _, err := peer.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for _, want := range []Message{{Binary, []byte("one")}, {Text, []byte("two")}, {Binary, []byte("three")}} {
		m, err := c.ReadMessage(ctx)
		if err != nil || m.Type != want.Type || string(m.Data) != string(want.Data) {
			t.Fatalf("ReadMessage = %v %q, %v; want %v %q", m.Type, m.Data, err, want.Type, want.Data)
		}
	}
	peer.Close()
	if m, err := c.ReadMessage(ctx); err == nil {
		t.Fatalf("ReadMessage after the peer left = %q, nil; want an error", m.Data)
	}
}

// TestConnReadContext checks that a read woken by its context returns the
// context's error and leaves the connection usable, even in the middle of
// a frame header.
func TestConnReadContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		c := Server(a, nil)
		defer c.Close()
		defer b.Close()
		frame := connRawFrame(true, ws.OpBinary, 0, true, []byte("late"))
		written := make(chan error, 1)
		go func() {
			_, err := b.Write(frame[:1])
			written <- err
		}()

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if _, _, err := readMessage(ctx, c); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ReadMessage = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("the read returned after %v, want 1s", d)
		}
		if err := <-written; err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := b.Write(frame[1:])
			written <- err
		}()
		op, p, err := readMessage(context.Background(), c)
		if err != nil || op != Binary || string(p) != "late" {
			t.Fatalf("ReadMessage after the cancelled one = %v, %q, %v", op, p, err)
		}
		if err := <-written; err != nil {
			t.Fatal(err)
		}
	})
}

func TestConnPeerEndsWithoutClose(t *testing.T) {
	c, peer := connRawPeer(t, false, nil)
	defer c.Close()
	peer.Close()
	_, _, err := readMessage(context.Background(), c)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadMessage = %v, want io.ErrUnexpectedEOF", err)
	}
	if code := closeCode(c); code != StatusAbnormalClosure {
		t.Errorf("CloseCode = %d, want 1006", code)
	}
}

// TestConnSecondReaderWaitsForFirst: a read that finds another in
// progress waits for the read side, and the first read's release hands it
// over, so each gets one message.
func TestConnSecondReaderWaitsForFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		c := Server(a, nil)
		defer c.Close()
		defer b.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		type result struct {
			p   string
			err error
		}
		read := func(into chan<- result) {
			_, p, err := readMessage(ctx, c)
			into <- result{string(p), err}
		}
		first, second := make(chan result, 1), make(chan result, 1)
		go read(first)
		synctest.Wait() // the first read holds the read side, blocked on the pipe
		go read(second)
		synctest.Wait()
		if n := c.rd.nhold.Load(); n != 1 {
			t.Fatalf("%d readers wait for the read side, want 1", n)
		}
		// A message is valid until the next read: the second message comes
		// once the first reader has taken its copy.
		go b.Write(connRawFrame(true, ws.OpBinary, 0, true, []byte("one")))
		if r := <-first; r.err != nil || r.p != "one" {
			t.Fatalf("first read = %q, %v; want \"one\"", r.p, r.err)
		}
		go b.Write(connRawFrame(true, ws.OpBinary, 0, true, []byte("two")))
		if r := <-second; r.err != nil || r.p != "two" {
			t.Fatalf("second read = %q, %v; want \"two\" (was it woken when the first ended?)", r.p, r.err)
		}
	})
}
