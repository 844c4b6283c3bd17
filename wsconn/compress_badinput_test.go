package wsconn

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/pollws/pollws/internal/handlertest"
)

// zReadServer serves connections upgraded under o that read messages
// until a read fails, and sends that error on the returned channel.
func zReadServer(t *testing.T, o *UpgradeOptions) (url string, errs <-chan error) {
	ch := make(chan error, 1)
	var handlers handlertest.Group
	srv := httptest.NewServer(handlers.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, o)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, err := c.ReadMessage(context.Background()); err != nil {
				ch <- err
				return
			}
		}
	})))
	t.Cleanup(func() {
		srv.Close()
		handlers.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http"), ch
}

// zFrame is a masked frame as a client sends it, whatever the protocol
// says.
func zFrame(fin bool, op ws.OpCode, rsv byte, p []byte) []byte {
	var b bytes.Buffer
	h := ws.Header{Fin: fin, OpCode: op, Rsv: rsv, Length: int64(len(p)), Masked: true, Mask: ws.NewMask()}
	p = bytes.Clone(p)
	ws.Cipher(p, h.Mask, 0)
	ws.WriteHeader(&b, h)
	b.Write(p)
	return b.Bytes()
}

// TestCompressBadInput: frames that break permessage-deflate close the
// connection with the status code RFC 6455 and 7692 give, and the read
// returns an error that says why.
func TestCompressBadInput(t *testing.T) {
	rsv1 := ws.Rsv(true, false, false)
	deflated := func(t *testing.T, z *zRaw, msg string) []byte { return z.compress(t, []byte(msg)) }
	cases := []struct {
		name     string
		compress bool // the server compresses and the client offers it
		frames   func(t *testing.T, z *zRaw) [][]byte
		code     StatusCode
		err      error
	}{
		{"RSV1 without the extension", false, func(t *testing.T, z *zRaw) [][]byte {
			return [][]byte{zFrame(true, ws.OpText, rsv1, []byte("hello"))}
		}, StatusProtocolError, ErrProtocol},
		{"RSV1 on a ping", true, func(t *testing.T, z *zRaw) [][]byte {
			return [][]byte{zFrame(true, ws.OpPing, rsv1, nil)}
		}, StatusProtocolError, ErrProtocol},
		{"RSV1 on a close", true, func(t *testing.T, z *zRaw) [][]byte {
			return [][]byte{zFrame(true, ws.OpClose, rsv1, []byte{0x03, 0xe8})}
		}, StatusProtocolError, ErrProtocol},
		{"RSV1 on a continuation", true, func(t *testing.T, z *zRaw) [][]byte {
			p := deflated(t, z, strings.Repeat("fragmented and compressed ", 20))
			return [][]byte{zFrame(false, ws.OpText, rsv1, p[:5]), zFrame(true, ws.OpContinuation, rsv1, p[5:])}
		}, StatusProtocolError, ErrProtocol},
		{"RSV1 on a continuation of an uncompressed message", true, func(t *testing.T, z *zRaw) [][]byte {
			return [][]byte{zFrame(false, ws.OpBinary, 0, []byte("abc")), zFrame(true, ws.OpContinuation, rsv1, []byte("def"))}
		}, StatusProtocolError, ErrProtocol},
		{"RSV2 with the extension", true, func(t *testing.T, z *zRaw) [][]byte {
			return [][]byte{zFrame(true, ws.OpText, ws.Rsv(false, true, false), []byte("hello"))}
		}, StatusProtocolError, ErrProtocol},
		{"RSV3 with RSV1", true, func(t *testing.T, z *zRaw) [][]byte {
			return [][]byte{zFrame(true, ws.OpText, ws.Rsv(true, false, true), deflated(t, z, "hello"))}
		}, StatusProtocolError, ErrProtocol},
		{"a block of reserved type", true, func(t *testing.T, z *zRaw) [][]byte {
			return [][]byte{zFrame(true, ws.OpBinary, rsv1, []byte{0x07, 0x00})}
		}, StatusInvalidPayload, ErrCorruptMessage},
		{"a stored block whose length is not its complement", true, func(t *testing.T, z *zRaw) [][]byte {
			return [][]byte{zFrame(true, ws.OpBinary, rsv1, []byte{0x00, 0x05, 0x00, 0x00, 0x00, 'a'})}
		}, StatusInvalidPayload, ErrCorruptMessage},
		{"a message that ends inside a block", true, func(t *testing.T, z *zRaw) [][]byte {
			p := deflated(t, z, strings.Repeat("a message cut short ", 30))
			return [][]byte{zFrame(true, ws.OpText, rsv1, p[:len(p)/2])}
		}, StatusInvalidPayload, ErrCorruptMessage},
		{"invalid UTF-8 once inflated", true, func(t *testing.T, z *zRaw) [][]byte {
			return [][]byte{zFrame(true, ws.OpText, rsv1, deflated(t, z, "valid, then \xff\xfe, then more"))}
		}, StatusInvalidPayload, ErrInvalidUTF8},
		{"invalid UTF-8 in a fragmented compressed message", true, func(t *testing.T, z *zRaw) [][]byte {
			p := deflated(t, z, strings.Repeat("é", 100)+"\xc3")
			return [][]byte{zFrame(false, ws.OpText, rsv1, p[:3]), zFrame(true, ws.OpContinuation, 0, p[3:])}
		}, StatusInvalidPayload, ErrInvalidUTF8},
		{"a message that inflates beyond the limit", true, func(t *testing.T, z *zRaw) [][]byte {
			return [][]byte{zFrame(true, ws.OpBinary, rsv1, deflated(t, z, strings.Repeat("x", 5000)))}
		}, StatusMessageTooBig, ErrMessageTooBig},
		{"compressed frames that claim more than the limit allows", true, func(t *testing.T, z *zRaw) [][]byte {
			// A stored block of 2995 bytes, then more than the limit
			// allows for a compressed message of 4096 bytes.
			stored := append([]byte{0x00, 0xb3, 0x0b, 0x4c, 0xf4}, make([]byte, 2995)...)
			f := zFrame(false, ws.OpBinary, rsv1, stored)
			h := ws.Header{Fin: true, OpCode: ws.OpContinuation, Length: 2000, Masked: true}
			var b bytes.Buffer
			ws.WriteHeader(&b, h)
			return [][]byte{f, b.Bytes()}
		}, StatusMessageTooBig, ErrMessageTooBig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &UpgradeOptions{Options: Options{MaxMessageSize: 4096}}
			var offers []wsflate.Parameters
			if tc.compress {
				o.Compression = &CompressionOptions{}
				offers = append(offers, wsflate.Parameters{})
			}
			url, errs := zReadServer(t, o)
			z := zRawDial(t, url, 0, offers...)
			if z.ok != tc.compress {
				t.Fatalf("compression agreed: %v, want %v", z.ok, tc.compress)
			}
			for _, f := range tc.frames(t, z) {
				if _, err := z.conn.Write(f); err != nil {
					t.Fatal(err)
				}
			}
			z.wantClose(t, tc.code)
			if err := <-errs; !errors.Is(err, tc.err) {
				t.Fatalf("the read failed with %v, want %v", err, tc.err)
			}
		})
	}
}

// zBomb returns about n bytes of a DEFLATE stream that inflates about
// 160 times: a fixed Huffman block of one zero byte, then matches of 258
// bytes at distance 1, 13 bits each, with no end.
func zBomb(n int) []byte {
	out := make([]byte, 0, n+8)
	var acc uint64
	var nb uint
	put := func(v uint64, bits uint) {
		acc |= v << nb
		nb += bits
		for nb >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			nb -= 8
		}
	}
	// Huffman codes go most significant bit first.
	code := func(c uint64, bits uint) {
		var r uint64
		for i := range bits {
			r |= (c >> i & 1) << (bits - 1 - i)
		}
		put(r, bits)
	}
	put(0, 1) // not the final block
	put(1, 2) // fixed Huffman codes
	code(0x30, 8)
	for len(out) < n {
		code(0xc5, 8) // length 258: symbol 285
		code(0, 5)    // distance 1
	}
	return out
}

// TestCompressBomb: a 1 MiB compressed message that would inflate to
// about 160 MiB gets 1009 having inflated no more than the limit, and the
// heap holds about the limit, not what the message claims.
func TestCompressBomb(t *testing.T) {
	const limit = 1 << 20
	url, errs := zReadServer(t, &UpgradeOptions{Options: Options{MaxMessageSize: limit, Compression: &CompressionOptions{}}})
	z := zRawDial(t, url, 0, wsflate.Parameters{})
	if !z.ok {
		t.Fatal("compression not agreed")
	}
	frame := zFrame(true, ws.OpBinary, ws.Rsv(true, false, false), zBomb(1<<20))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	writeErr := make(chan error, 1)
	go func() {
		_, err := z.conn.Write(frame)
		writeErr <- err
	}()
	z.wantClose(t, StatusMessageTooBig)
	err := <-errs
	runtime.ReadMemStats(&after)
	z.conn.Close()
	<-writeErr // the server may have closed before it took all of it
	if !errors.Is(err, ErrMessageTooBig) {
		t.Fatalf("the read failed with %v, want ErrMessageTooBig", err)
	}
	// The message buffer grows to the limit by doubling: 2 MiB allocated
	// at most, plus the read buffer and the handshake.
	if got := after.TotalAlloc - before.TotalAlloc; got > 8*limit {
		t.Fatalf("reading the bomb allocated %d bytes; the limit is %d", got, limit)
	} else {
		t.Logf("reading a 1 MiB bomb allocated %d KiB", got>>10)
	}
}
