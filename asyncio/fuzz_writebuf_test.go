package asyncio_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/pollws/pollws/asyncio"
)

// FuzzWriteBuf writes Bufs of fuzz-chosen chunks with asyncio.WriteBuf
// into a Pipe of fuzz-chosen capacity, draining it in fuzz-chosen steps:
// the bytes read are the concatenation of the chunks, and every Ready(n)
// advanced its Buf by exactly n.
func FuzzWriteBuf(f *testing.F) {
	f.Add([]byte("hello, world"), []byte{3, 0, 5}, uint8(4), []byte{1})
	f.Add([]byte("abcdefghijklmnopqrstuvwxyz"), []byte{0, 0, 1, 26}, uint8(1), []byte{2, 0, 7})
	f.Add(bytes.Repeat([]byte{0xaa, 0x55}, 300), []byte{10, 200, 0, 90, 255, 45}, uint8(64), []byte{13, 100, 1})
	f.Add([]byte{}, []byte{0, 0}, uint8(0), []byte{})
	f.Add([]byte("x"), []byte{}, uint8(255), []byte{0})
	f.Fuzz(func(t *testing.T, data, cuts []byte, capacity uint8, steps []byte) {
		// cuts splits data into chunks: a cut of 0 is an empty chunk, a
		// cut of 255 ends the Buf (the next chunks go into a new one).
		var bufs [][][]byte
		var cur [][]byte
		rest := data
		for _, c := range cuts {
			if c == 255 {
				bufs, cur = append(bufs, cur), nil
				continue
			}
			n := min(int(c), len(rest))
			cur, rest = append(cur, rest[:n]), rest[n:]
		}
		bufs = append(bufs, append(cur, rest))

		w, rc := asyncio.Pipe(int(capacity)%64 + 1)
		task := asyncio.NewTask(func() {})
		var got bytes.Buffer
		step := 0
		drain := func() {
			n := 1
			if len(steps) > 0 {
				n = int(steps[step%len(steps)]) + 1
				step++
			}
			n = min(n, w.Buffered())
			if n == 0 {
				return
			}
			p := make([]byte, n)
			k, err := io.ReadFull(rc, p)
			if err != nil {
				t.Fatalf("reading %d buffered bytes: %d, %v", n, k, err)
			}
			got.Write(p)
		}
		for i, chunks := range bufs {
			b := asyncio.NewBytesBuf(chunks...)
			for b.Remaining() > 0 {
				before := b.Remaining()
				r, err := asyncio.WriteBuf(task, w, b)
				if err != nil {
					t.Fatalf("Buf %d: WriteBuf: %v", i, err)
				}
				switch {
				case !r.Ready:
					if b.Remaining() != before {
						t.Fatalf("Buf %d: NotReady, yet the Buf went from %d to %d remaining", i, before, b.Remaining())
					}
					if w.Buffered() == 0 {
						t.Fatalf("Buf %d: NotReady with an empty pipe", i)
					}
				case r.Value <= 0 || r.Value > before:
					t.Fatalf("Buf %d: Ready(%d) with %d remaining", i, r.Value, before)
				case before-b.Remaining() != r.Value:
					t.Fatalf("Buf %d: Ready(%d) advanced the Buf by %d", i, r.Value, before-b.Remaining())
				}
				drain()
			}
			if r, err := asyncio.WriteBuf(task, w, b); err != nil || !r.Ready || r.Value != 0 {
				t.Fatalf("Buf %d: WriteBuf of an empty Buf = %+v, %v; want Ready(0)", i, r, err)
			}
		}
		for w.Buffered() > 0 {
			drain()
		}
		if r, err := w.Shutdown(task); err != nil || !r.Ready {
			t.Fatalf("Shutdown of a drained pipe = %+v, %v", r, err)
		}
		if n, err := rc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("read after Shutdown = %d, %v; want io.EOF", n, err)
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("read %q, want %q", got.Bytes(), data)
		}
	})
}
