//go:build linux

package wsconn_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/wsconn"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// fuzzMaxMessage is the MaxMessageSize of the fuzzed server Conns: small,
// so that inputs of a few KiB reach the limit.
const fuzzMaxMessage = 1024

var fuzzLogger = slog.New(slog.DiscardHandler)

// fuzzPair returns the two ends of a Unix stream socket pair. Unlike
// net.Pipe it buffers and has CloseWrite, and unlike TCP a close with
// unread input does not discard what the other end has yet to read.
func fuzzPair(t *testing.T) (server, client *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]*net.UnixConn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
	}
	return conns[0], conns[1]
}

// clientFrame encodes a frame as a client sends it, masked, with first
// header byte b0 (FIN, RSV and opcode bits).
func clientFrame(b0 byte, payload []byte) []byte { return wstest.Frame(b0, payload, true) }

// rawFrame encodes a frame with first header byte b0, masked or not.
func rawFrame(b0 byte, payload []byte, masked bool) []byte { return wstest.Frame(b0, payload, masked) }

func closePayload(code ws.StatusCode, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

const (
	finBit = 0x80
	opCont = byte(ws.OpContinuation)
	opText = byte(ws.OpText)
	opBin  = byte(ws.OpBinary)
	opClos = byte(ws.OpClose)
	opPing = byte(ws.OpPing)
)

// serverExchange runs a server-side Conn over a socket pair whose client
// end sends in and then ends its stream. read is called with the Conn;
// then the Conn is closed, and serverExchange returns every byte it sent.
func serverExchange(t *testing.T, in []byte, read func(srv *wsconn.Conn)) []byte {
	t.Helper()
	s, c := fuzzPair(t)
	defer c.Close()
	srv := wsconn.Server(s, &wsconn.Options{MaxMessageSize: fuzzMaxMessage, CloseTimeout: time.Second, Logger: fuzzLogger})
	var wg sync.WaitGroup
	var out []byte
	wg.Go(func() {
		_, _ = c.Write(in) // fails once the server closed on bad input
		_ = c.CloseWrite()
	})
	wg.Go(func() { out, _ = io.ReadAll(c) })
	read(srv)
	srv.Close()
	wg.Wait()
	return out
}

// serverFrames parses what a server sent: unmasked frames, the last of
// them possibly cut short by the connection's end. It returns the frames
// and the close frame, if any, which must be the last.
func serverFrames(t *testing.T, out []byte) (frames []ws.Frame, closeFrame *ws.Frame) {
	t.Helper()
	r := bytes.NewReader(out)
	for r.Len() > 0 {
		f, err := ws.ReadFrame(r)
		if err != nil {
			t.Fatalf("the server sent a malformed frame after %d frames: %v (% x)", len(frames), err, out)
		}
		if f.Header.Masked || f.Header.Rsv != 0 || !f.Header.Fin {
			t.Fatalf("the server sent a frame with header %+v", f.Header)
		}
		if closeFrame != nil {
			t.Fatalf("the server sent a %v frame after its close frame", f.Header.OpCode)
		}
		switch f.Header.OpCode {
		case ws.OpPong:
		case ws.OpClose:
			closeFrame = &f
		default:
			t.Fatalf("the server sent a %v frame unprompted", f.Header.OpCode)
		}
		frames = append(frames, f)
	}
	return frames, closeFrame
}

// closeCode returns the status code of a close frame, 1005 when it has
// none.
func closeCode(f *ws.Frame) ws.StatusCode {
	if len(f.Payload) < 2 {
		return ws.StatusNoStatusRcvd
	}
	return ws.StatusCode(binary.BigEndian.Uint16(f.Payload))
}

func connReadSeeds() [][]byte {
	long := bytes.Repeat([]byte("x"), 200)
	cat := func(frames ...[]byte) []byte { return slices.Concat(frames...) }
	return [][]byte{
		{},
		clientFrame(finBit|opText, []byte("hello")),
		cat(clientFrame(opBin, []byte("frag")), clientFrame(finBit|opPing, []byte("ping")),
			clientFrame(finBit|opCont, []byte("ment")), clientFrame(finBit|opClos, closePayload(1000, "bye"))),
		cat(clientFrame(opText, []byte("h\xc3")), clientFrame(finBit|opCont, []byte("\xa9llo")), clientFrame(finBit|opClos, nil)),
		cat(clientFrame(finBit|opText, long), clientFrame(finBit|opBin, bytes.Repeat(long, 4))),
		clientFrame(finBit|opText, []byte("bad \xff utf-8")),
		clientFrame(opText, []byte("ends in \xe2\x82")),
		cat(clientFrame(opText, []byte("ends in \xe2\x82")), clientFrame(finBit|opCont, nil)),
		rawFrame(finBit|opText, []byte("unmasked"), false),
		clientFrame(finBit|0x40|opText, []byte("rsv1")),
		clientFrame(finBit|0x3, nil),
		clientFrame(finBit|0xb, nil),
		clientFrame(opPing, nil),
		clientFrame(finBit|opPing, bytes.Repeat([]byte("p"), 126)),
		clientFrame(finBit|opCont, []byte("orphan")),
		cat(clientFrame(opText, []byte("a")), clientFrame(finBit|opBin, []byte("b"))),
		clientFrame(finBit|opClos, []byte{3}),
		clientFrame(finBit|opClos, closePayload(999, "")),
		clientFrame(finBit|opClos, closePayload(1005, "")),
		clientFrame(finBit|opClos, closePayload(1016, "")),
		clientFrame(finBit|opClos, closePayload(4000, "\xff")),
		clientFrame(finBit|opBin, make([]byte, fuzzMaxMessage+1)),
		cat(clientFrame(opBin, make([]byte, fuzzMaxMessage/2)), clientFrame(finBit|opCont, make([]byte, fuzzMaxMessage/2+1))),
		{finBit | opBin, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4},
		{finBit | opBin, 0xfe, 0},
		clientFrame(finBit|opText, []byte("cut short"))[:9],
	}
}

// FuzzConnRead feeds arbitrary bytes to a server-side Conn as if from a
// client and reads messages until an error. It must not panic or hang;
// messages read must be within the limits; the error must say what the
// close frame the Conn sent says.
func FuzzConnRead(f *testing.F) {
	for _, s := range connReadSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var readErr error
		var code ws.StatusCode
		out := serverExchange(t, in, func(srv *wsconn.Conn) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			for {
				op, p, err := readMessage(ctx, srv)
				if err != nil {
					readErr = err
					break
				}
				if op != ws.OpText && op != ws.OpBinary {
					t.Fatalf("ReadMessage returned opcode %v", op)
				}
				if op == ws.OpText && !utf8.Valid(p) {
					t.Fatalf("ReadMessage returned invalid UTF-8 text %q", p)
				}
				if len(p) > fuzzMaxMessage {
					t.Fatalf("ReadMessage returned %d bytes, over the limit of %d", len(p), fuzzMaxMessage)
				}
			}
			if errors.Is(readErr, context.DeadlineExceeded) {
				t.Fatalf("ReadMessage hung on input % x", in)
			}
			if _, _, err := readMessage(ctx, srv); err == nil || err.Error() != readErr.Error() {
				t.Fatalf("read after %v: %v; want the same error", readErr, err)
			}
			code = ws.StatusCode(wsconn.CloseCodeOf(srv))
		})
		_, cf := serverFrames(t, out)

		var ce *wsconn.CloseError
		var want ws.StatusCode
		switch {
		case errors.Is(readErr, wsconn.ErrProtocol):
			want = ws.StatusProtocolError
		case errors.Is(readErr, wsconn.ErrInvalidUTF8):
			want = ws.StatusInvalidFramePayloadData
		case errors.Is(readErr, wsconn.ErrMessageTooBig):
			want = ws.StatusMessageTooBig
		case errors.As(readErr, &ce):
			ceCode := ws.StatusCode(ce.Code)
			switch {
			case ceCode == ws.StatusNoStatusRcvd:
				if cf == nil || len(cf.Payload) != 0 {
					t.Fatalf("peer closed without a code; the answer was %v, want an empty close frame", cf)
				}
			case ce.Code < 1000 || ce.Code == 1004 || ce.Code == 1005 || ce.Code == 1006 || ce.Code == 1015 || (ce.Code > 1014 && ce.Code < 3000) || ce.Code > 4999:
				t.Fatalf("read returned a close error with code %d, which may not be received", ce.Code)
			case cf == nil || closeCode(cf) != ceCode:
				t.Fatalf("peer closed with %d; the answer was %v, want the code echoed", ce.Code, cf)
			}
			if code != ceCode {
				t.Fatalf("CloseCode() = %d after the peer closed with %d", code, ce.Code)
			}
			return
		case errors.Is(readErr, io.ErrUnexpectedEOF):
			if cf != nil {
				t.Fatalf("the input ended (%v), yet the server sent a close frame %d", readErr, closeCode(cf))
			}
			if code != ws.StatusAbnormalClosure {
				t.Fatalf("CloseCode() = %d after the input ended, want 1006", code)
			}
			return
		default:
			t.Fatalf("read failed with %v, which is neither bad input nor the end of the input", readErr)
		}
		if cf == nil || closeCode(cf) != want || len(cf.Payload) != 2 {
			t.Fatalf("read failed with %v; the server's close frame was %v, want code %d", readErr, cf, want)
		}
		if code != want {
			t.Fatalf("CloseCode() = %d after %v, want %d", code, readErr, want)
		}
	})
}

// fuzzMessage is a message of the round trip and how it is fragmented.
type fuzzMessage struct {
	op             ws.OpCode
	data           []byte
	cuts           []int // fragment boundaries, ascending, within data
	pingAfterFirst bool
}

// decodeMessages turns fuzz input into messages: script drives the
// types, sizes and fragmentation, payload the bytes.
func decodeMessages(script, payload []byte) []fuzzMessage {
	if len(payload) == 0 {
		payload = []byte{0}
	}
	var msgs []fuzzMessage
	pos := 0
	for len(script) >= 2 && len(msgs) < 16 {
		ctl, size := script[0], int(script[1])
		script = script[2:]
		if ctl&0x80 != 0 {
			size *= 300 // up to 76500 bytes: the 8-byte length form
		}
		m := fuzzMessage{op: ws.OpBinary, pingAfterFirst: ctl&0x10 != 0}
		m.data = make([]byte, size)
		for i := range m.data {
			m.data[i] = payload[pos%len(payload)]
			pos++
		}
		if ctl&1 != 0 {
			m.op = ws.OpText
			m.data = bytes.ToValidUTF8(m.data, []byte("\uFFFD"))
		}
		for range int(ctl>>1) & 7 {
			if len(script) == 0 {
				break
			}
			m.cuts = append(m.cuts, len(m.data)*int(script[0])/255)
			script = script[1:]
		}
		slices.Sort(m.cuts)
		msgs = append(msgs, m)
	}
	return msgs
}

// writeFrame writes one masked frame, as a client does, to c.
func writeFrame(c net.Conn, fin bool, op ws.OpCode, p []byte) error {
	f := ws.Frame{Header: ws.Header{Fin: fin, OpCode: op, Length: int64(len(p))}, Payload: bytes.Clone(p)}
	return ws.WriteFrame(c, ws.MaskFrameInPlace(f))
}

// FuzzFrameRoundTrip writes messages fragmented at fuzz-chosen points,
// with pings between fragments, as a client, and reads them with a
// server-side Conn: the messages read equal those written.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add([]byte{0, 5}, []byte("hello"))
	f.Add([]byte{1, 12, 0x02 | 1, 40, 128}, []byte("héllo wörld ✓"))
	f.Add([]byte{0x80 | 0x10 | 0x0e, 255, 0, 10, 100, 100, 200, 250, 255}, []byte{1, 2, 3})
	f.Add([]byte{0x80, 1, 0x80 | 1, 219, 0x11 | 0x04, 126, 30, 90}, []byte("€𝄞a"))
	f.Add([]byte{0, 0, 1, 0, 0x1e, 0}, []byte{})
	f.Fuzz(func(t *testing.T, script, payload []byte) {
		msgs := decodeMessages(script, payload)
		if len(msgs) == 0 {
			return
		}
		s, c := fuzzPair(t)
		srv := wsconn.Server(s, &wsconn.Options{Logger: fuzzLogger})
		defer srv.Close()
		go io.Copy(io.Discard, c) // the pongs
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()

		var wg sync.WaitGroup
		var werr error
		wg.Go(func() {
			for i, m := range msgs {
				bounds := append(append([]int{0}, m.cuts...), len(m.data))
				for k := 1; k < len(bounds); k++ {
					op := m.op
					if k > 1 {
						op = ws.OpContinuation
					}
					if werr = writeFrame(c, k == len(bounds)-1, op, m.data[bounds[k-1]:bounds[k]]); werr != nil {
						return
					}
					if k == 1 && m.pingAfterFirst {
						if werr = writeFrame(c, true, ws.OpPing, []byte{byte(i)}); werr != nil {
							return
						}
					}
				}
			}
		})
		for i, m := range msgs {
			op, p, err := readMessage(ctx, srv)
			if err != nil {
				cancel()
				wg.Wait()
				t.Fatalf("message %d of %d: read: %v (write: %v)", i, len(msgs), err, werr)
			}
			if op != m.op || !bytes.Equal(p, m.data) {
				t.Fatalf("message %d: read %v of %d bytes, want %v of %d bytes (fragments at %v)", i, op, len(p), m.op, len(m.data), m.cuts)
			}
		}
		wg.Wait()
		if werr != nil {
			t.Fatalf("write: %v", werr)
		}
	})
}

// FuzzUTF8Fragments sends one text message split into fragments at
// fuzz-chosen points: the server accepts it exactly when the whole
// message is valid UTF-8, and otherwise closes the connection with 1007.
func FuzzUTF8Fragments(f *testing.F) {
	f.Add([]byte("hello"), []byte{})
	f.Add([]byte("héllo"), []byte{2})
	f.Add([]byte("€uro"), []byte{1, 2, 2})
	f.Add([]byte("𝄞"), []byte{1, 2, 3})
	f.Add([]byte("\xf0\x9d\x84"), []byte{1})
	f.Add([]byte("a\xffb"), []byte{1, 2})
	f.Add([]byte("\xed\xa0\x80"), []byte{1, 2})  // a surrogate
	f.Add([]byte("\xc0\xaf"), []byte{1})         // an overlong encoding
	f.Add([]byte("\xf4\x90\x80\x80"), []byte{3}) // past U+10FFFF
	f.Fuzz(func(t *testing.T, text, cuts []byte) {
		if len(text) > 4*fuzzMaxMessage/5 || len(cuts) > 32 {
			return
		}
		bounds := []int{0}
		for _, c := range cuts {
			bounds = append(bounds, int(c)%(len(text)+1))
		}
		slices.Sort(bounds)
		bounds = append(bounds, len(text))
		var in []byte
		for k := 1; k < len(bounds); k++ {
			b0 := opCont
			if k == 1 {
				b0 = opText
			}
			if k == len(bounds)-1 {
				b0 |= finBit
			}
			in = append(in, clientFrame(b0, text[bounds[k-1]:bounds[k]])...)
		}
		valid := utf8.Valid(text)
		var op ws.OpCode
		var got []byte
		var readErr error
		out := serverExchange(t, in, func(srv *wsconn.Conn) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			op, got, readErr = readMessage(ctx, srv)
		})
		if valid {
			if readErr != nil || op != ws.OpText || !bytes.Equal(got, text) {
				t.Fatalf("valid text %q in fragments %v: read %v %q, %v", text, bounds, op, got, readErr)
			}
			return
		}
		if !errors.Is(readErr, wsconn.ErrInvalidUTF8) {
			t.Fatalf("invalid text %q in fragments %v: read %v %q, %v; want ErrInvalidUTF8", text, bounds, op, got, readErr)
		}
		if _, cf := serverFrames(t, out); cf == nil || closeCode(cf) != ws.StatusInvalidFramePayloadData {
			t.Fatalf("invalid text %q in fragments %v: the server's close frame was %v, want 1007", text, bounds, cf)
		}
	})
}
