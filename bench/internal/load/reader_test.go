package load

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/gobwas/ws"
)

// chunkReader returns what it holds in reads of at most n bytes.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

// message is one message of the model: its bytes, and how many frames
// the server splits it into.
type message struct {
	data   []byte
	frames int
}

// encode frames msgs as a server would send them, with a ping before
// every third message.
func encode(t testing.TB, p Proto, msgs []message) []byte {
	var b bytes.Buffer
	for i, m := range msgs {
		if p == Raw {
			b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(m.data))))
			b.Write(m.data)
			continue
		}
		if i%3 == 2 {
			if err := ws.WriteFrame(&b, ws.NewPingFrame([]byte("ping"))); err != nil {
				t.Fatal(err)
			}
		}
		n := max(m.frames, 1)
		for k := range n {
			part := m.data[k*len(m.data)/n : (k+1)*len(m.data)/n]
			op := ws.OpContinuation
			if k == 0 {
				op = ws.OpBinary
			}
			if err := ws.WriteFrame(&b, ws.NewFrame(op, k == n-1, part)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b.Bytes()
}

// readAll reads every message from r until the stream ends.
func readAll(rd *Reader) ([][]byte, error) {
	var got [][]byte
	for {
		m, err := rd.ReadMessage()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, bytes.Clone(m))
	}
}

func checkMessages(t *testing.T, got [][]byte, want []message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i].data) {
			t.Fatalf("message %d: %d bytes differ from the %d sent", i, len(got[i]), len(want[i].data))
		}
	}
}

func TestReaderMessages(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var msgs []message
	for i, size := range []int{0, 1, 125, 126, 127, 4000, 65535, 65536, 70000, 16, 16, 16} {
		m := message{data: make([]byte, size), frames: 1 + i%3}
		for j := range m.data {
			m.data[j] = byte(rng.Uint32())
		}
		msgs = append(msgs, m)
	}
	for _, p := range []Proto{WebSocket, Raw} {
		stream := encode(t, p, msgs)
		for _, tc := range []struct {
			name string
			r    io.Reader
		}{
			{"whole", bytes.NewReader(stream)},
			{"one byte at a time", iotest.OneByteReader(bytes.NewReader(stream))},
			{"odd chunks", &chunkReader{b: stream, n: 777}},
		} {
			t.Run(p.String()+"/"+tc.name, func(t *testing.T) {
				got, err := readAll(NewReader(tc.r, p, 16, 1<<20))
				if err != nil {
					t.Fatal(err)
				}
				checkMessages(t, got, msgs)
			})
		}
	}
}

func TestReaderBadInput(t *testing.T) {
	frame := func(op ws.OpCode, fin bool, p []byte) []byte {
		var b bytes.Buffer
		ws.WriteFrame(&b, ws.NewFrame(op, fin, p))
		return b.Bytes()
	}
	masked := func() []byte {
		var b bytes.Buffer
		ws.WriteFrame(&b, ws.MaskFrame(ws.NewBinaryFrame([]byte("hi"))))
		return b.Bytes()
	}()
	for _, tc := range []struct {
		name  string
		proto Proto
		in    []byte
		want  error
	}{
		{"masked", WebSocket, masked, ErrFrame},
		{"reserved bits", WebSocket, []byte{0x82 | 0x40, 1, 'x'}, ErrFrame},
		{"unknown opcode", WebSocket, []byte{0x83, 0}, ErrFrame},
		{"continuation first", WebSocket, frame(ws.OpContinuation, true, []byte("x")), ErrFrame},
		{"message inside a fragmented one", WebSocket,
			append(frame(ws.OpBinary, false, []byte("a")), frame(ws.OpText, true, []byte("b"))...), ErrFrame},
		{"longer than the limit", WebSocket, []byte{0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ErrTooLarge},
		{"fragments longer than the limit", WebSocket,
			append(frame(ws.OpBinary, false, make([]byte, 60)), frame(ws.OpContinuation, true, make([]byte, 60))...), ErrTooLarge},
		{"raw longer than the limit", Raw, []byte{0xff, 0xff, 0xff, 0xff}, ErrTooLarge},
		{"truncated header", WebSocket, []byte{0x82, 126, 1}, io.ErrUnexpectedEOF},
		{"truncated payload", WebSocket, []byte{0x82, 5, 'a', 'b'}, io.ErrUnexpectedEOF},
		{"truncated fragments", WebSocket, frame(ws.OpBinary, false, []byte("a")), io.ErrUnexpectedEOF},
		{"raw truncated", Raw, []byte{0, 0, 0, 9, 1}, io.ErrUnexpectedEOF},
		{"close", WebSocket, frame(ws.OpClose, true, []byte{3, 232}), io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := NewReader(bytes.NewReader(tc.in), tc.proto, 16, 100)
			for range 2 { // the error stays
				if _, err := rd.ReadMessage(); !errors.Is(err, tc.want) {
					t.Fatalf("ReadMessage: %v, want %v", err, tc.want)
				}
			}
		})
	}
}

func TestReaderRelease(t *testing.T) {
	msgs := []message{{data: []byte("one")}, {data: []byte("two")}}
	rd := NewReader(bytes.NewReader(encode(t, WebSocket, msgs)), WebSocket, 64, 100)
	if _, err := rd.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	rd.Release() // "two" is still buffered: kept
	m, err := rd.ReadMessage()
	if err != nil || string(m) != "two" {
		t.Fatalf("after Release: %q, %v; want \"two\"", m, err)
	}
	rd.Release()
	if rd.buf != nil {
		t.Fatalf("Release with nothing buffered kept %d bytes", len(rd.buf))
	}
}

// loopReader replays b forever.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

func TestReaderAllocatesNothing(t *testing.T) {
	for _, p := range []Proto{WebSocket, Raw} {
		var msgs []message
		for range 50 {
			msgs = append(msgs, message{data: make([]byte, 128)})
		}
		rd := NewReader(&loopReader{b: encode(t, p, msgs)}, p, 4096, 1<<20)
		n := testing.AllocsPerRun(1000, func() {
			if err := rd.Fill(); err != nil {
				t.Fatal(err)
			}
			for {
				_, ok, err := rd.Next()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
			}
		})
		if n != 0 {
			t.Fatalf("%v: %v allocations per read, want 0", p, n)
		}
	}
}

// FuzzReader checks that messages framed any way (sizes, fragments,
// pings) and read in chunks of any size come back whole and in order.
func FuzzReader(f *testing.F) {
	f.Add([]byte{3, 0, 200, 1, 2}, uint16(1), false)
	f.Add([]byte{126, 127, 255}, uint16(100), true)
	f.Fuzz(func(t *testing.T, sizes []byte, chunk uint16, raw bool) {
		p := WebSocket
		if raw {
			p = Raw
		}
		var msgs []message
		for i, s := range sizes {
			size := int(s) * (1 + i%5) * 7 // up to a few kilobytes, across the 126 boundary
			msgs = append(msgs, message{data: bytes.Repeat([]byte{byte(i)}, size), frames: 1 + int(s)%4})
		}
		r := &chunkReader{b: encode(t, p, msgs), n: max(int(chunk), 1)}
		got, err := readAll(NewReader(r, p, 16, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		checkMessages(t, got, msgs)
	})
}

// FuzzReaderAnyBytes checks that no input makes the reader panic or
// allocate beyond its limit.
func FuzzReaderAnyBytes(f *testing.F) {
	f.Add([]byte{0x82, 2, 'h', 'i'}, false)
	f.Add([]byte{0x02, 1, 'h', 0x80, 1, 'i'}, false)
	f.Add([]byte{0, 0, 0, 2, 'h', 'i'}, true)
	f.Fuzz(func(t *testing.T, in []byte, raw bool) {
		p := WebSocket
		if raw {
			p = Raw
		}
		rd := NewReader(&chunkReader{b: in, n: 7}, p, 16, 1<<12)
		for {
			if _, err := rd.ReadMessage(); err != nil {
				break
			}
		}
		if cap(rd.buf) > 1<<12+10 || cap(rd.msg) > 2<<12 {
			t.Fatalf("buffers of %d and %d bytes past a limit of %d", cap(rd.buf), cap(rd.msg), 1<<12)
		}
	})
}
