package gorillaws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
)

// appendEchoLoop is an application's read loop that reads through
// AppendMessage and echoes every message; the error that ended it arrives
// on the channel.
func appendEchoLoop(t *testing.T, w *Writer) <-chan error {
	end := make(chan error, 1)
	ctx := testCtx(t)
	go func() {
		var buf []byte
		for {
			typ, p, err := w.AppendMessage(buf[:0])
			if err == nil {
				buf = p
				_, err = asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
					return w.PollWriteMessage(t, typ, p)
				})
			}
			if err != nil {
				end <- err
				return
			}
		}
	}()
	return end
}

// closeOf returns the code of a close frame's payload, 1005 if it has none.
func closeOf(f serverFrame) int {
	if len(f.payload) < 2 {
		return websocket.CloseNoStatusReceived
	}
	return int(binary.BigEndian.Uint16(f.payload))
}

// TestInvalidUTF8Closes1007: text that is not UTF-8, in one frame or in
// fragments, is closed with 1007 after the echoes of the messages before
// it; valid text cut inside characters between fragments is echoed.
func TestInvalidUTF8Closes1007(t *testing.T) {
	text := func(fin bool, p string) []byte {
		b0 := byte(ws.OpText)
		if fin {
			b0 |= 0x80
		}
		return clientFrame(b0, []byte(p))
	}
	cont := func(fin bool, p string) []byte {
		b0 := byte(ws.OpContinuation)
		if fin {
			b0 |= 0x80
		}
		return clientFrame(b0, []byte(p))
	}
	for _, tc := range []struct {
		name string
		in   [][]byte
		want []string // the echoes before the close
		code int
	}{
		{"one frame", [][]byte{text(true, "before"), text(true, "caf\xc3(")}, []string{"before"}, 1007},
		{"surrogate", [][]byte{text(true, "\xed\xa0\x80")}, nil, 1007},
		{"cut at the end", [][]byte{text(true, "ab\xe2\x82")}, nil, 1007},
		{"across fragments", [][]byte{text(false, "ab\xe2\x82"), cont(true, "xy")}, nil, 1007},
		{"valid across fragments", [][]byte{text(false, "κό\xcf"), cont(false, "\x83"), cont(false, ""), cont(true, "με ✓")}, []string{"κόσμε ✓"}, 1000},
		{"close reason", [][]byte{clientFrame(0x80|byte(ws.OpClose), []byte("\x03\xe8\xce\xba\xed\xa0\x80"))}, nil, 1007},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, false)
			conn, r, _, server := s.dialGobwas(t)
			w := New(server, nil)
			defer w.Close()
			appRead := appendEchoLoop(t, w)
			in := bytes.Join(append(tc.in, clientFrame(0x80|byte(ws.OpClose), []byte{0x03, 0xe8})), nil)
			if _, err := conn.Write(in); err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			got, err := readFrames(r)
			if err != nil || len(got) != len(tc.want)+1 || closeOf(got[len(got)-1]) != tc.code {
				t.Fatalf("client read %v, %v; want %d echoes and close %d", got, err, len(tc.want), tc.code)
			}
			for i, want := range tc.want {
				if got[i].op != ws.OpText || string(got[i].payload) != want {
					t.Errorf("echo %d: %v %q, want text %q", i, got[i].op, got[i].payload, want)
				}
			}
			err = <-appRead
			if tc.code == websocket.CloseInvalidFramePayloadData && tc.name != "close reason" && !errors.Is(err, ErrInvalidUTF8) {
				t.Errorf("application read ended with %v, want ErrInvalidUTF8", err)
			}
			if _, _, err := w.AppendMessage(nil); err == nil {
				t.Error("a read after the reads ended succeeded")
			}
			if n, err := io.Copy(io.Discard, r); err != nil {
				t.Fatalf("after the close handshake: %v after %d bytes, want the connection closed", err, n)
			}
			conn.Close() // as clients do once the server closed
			noError(t, asyncio.Shutdown(testCtx(t), w), "Shutdown")
		})
	}
}

// TestInvalidUTF8FailsFast: invalid bytes in the first fragment of a text
// message, or in the first part of a frame, get close 1007 before the rest
// of the message is sent.
func TestInvalidUTF8FailsFast(t *testing.T) {
	whole := clientFrame(byte(ws.OpText)|0x80, []byte("κόσμε\xed\xa0\x80edited, and more to come"))
	for _, tc := range []struct {
		name        string
		first, rest []byte
	}{
		{"first fragment", clientFrame(byte(ws.OpText), []byte("κόσμε\xf4\x90\x80\x80")), clientFrame(0x80|byte(ws.OpContinuation), []byte("rest"))},
		{"inside a frame", whole[:6+12], whole[6+12:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, false)
			conn, r, _, server := s.dialGobwas(t)
			w := New(server, nil)
			defer w.Close()
			appRead := appendEchoLoop(t, w)
			if _, err := conn.Write(tc.first); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := readFrames(r)
			if err != nil || len(got) != 1 || closeOf(got[0]) != websocket.CloseInvalidFramePayloadData {
				t.Fatalf("before the rest of the message, client read %v, %v; want close 1007", got, err)
			}
			if err := <-appRead; !errors.Is(err, ErrInvalidUTF8) {
				t.Errorf("application read ended with %v, want ErrInvalidUTF8", err)
			}
			conn.Write(tc.rest)
			conn.Write(clientFrame(0x80|byte(ws.OpClose), []byte{0x03, 0xef}))
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := io.Copy(io.Discard, r); err != nil {
				t.Fatalf("after the close handshake: %v after %d bytes, want the connection closed", err, n)
			}
		})
	}
}

// TestForeignUpgradeStopsOnBadInput: over a connection upgraded without
// Upgrade, gorilla's close frame for bad input goes straight to the
// network; once the read reports the error, the Writer takes no more
// messages, so that none follows that close.
func TestForeignUpgradeStopsOnBadInput(t *testing.T) {
	s := newServerUpgrading(t, false, (*websocket.Upgrader).Upgrade)
	conn, r, _, server := s.dialGobwas(t)
	w := New(server, nil)
	defer w.Close()
	appRead := appendEchoLoop(t, w)
	if _, err := conn.Write(clientFrame(0x80|byte(ws.OpText), []byte("one"))); err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if f, err := ws.ReadFrame(r); err != nil || string(f.Payload) != "one" {
		t.Fatalf("echo: %q, %v", f.Payload, err)
	}
	if _, err := conn.Write(clientFrame(0x80|0x20|byte(ws.OpText), []byte("RSV2"))); err != nil {
		t.Fatal(err)
	}
	if err := <-appRead; !badInput(err) {
		t.Fatalf("application read ended with %v, want gorilla's protocol error", err)
	}
	for _, poll := range []func() error{
		func() error { _, err := w.PollWriteMessage(nil, websocket.TextMessage, []byte("late")); return err },
		func() error { _, err := w.Shutdown(nil); return err },
	} {
		if err := poll(); err == nil || !badInput(errors.Unwrap(err)) {
			t.Errorf("after gorilla closed: %v, want the read error", err)
		}
	}
	w.Close()
	got, err := readFrames(r)
	if err != nil || len(got) != 1 || closeOf(got[0]) != websocket.CloseProtocolError {
		t.Fatalf("client read %v, %v; want gorilla's close 1002", got, err)
	}
	if f, err := ws.ReadFrame(r); err == nil {
		t.Fatalf("client read %v after the close", serverFrame{f.Header.OpCode, f.Payload})
	}
}
