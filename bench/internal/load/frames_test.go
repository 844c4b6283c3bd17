package load

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/gobwas/ws"
)

// readClientFrame reads one message as a server would: a WebSocket frame
// (checked to be a final, masked, binary one, and unmasked) or a
// length-prefixed message.
func readClientFrame(t *testing.T, p Proto, r io.Reader) []byte {
	t.Helper()
	if p == Raw {
		var n [4]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			t.Fatal(err)
		}
		m := make([]byte, binary.BigEndian.Uint32(n[:]))
		if _, err := io.ReadFull(r, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	f, err := ws.ReadFrame(r)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Header.Fin || f.Header.OpCode != ws.OpBinary || !f.Header.Masked {
		t.Fatalf("header %+v, want a final, masked, binary frame", f.Header)
	}
	return ws.UnmaskFrame(f).Payload
}

func TestFramesStamp(t *testing.T) {
	for _, p := range []Proto{WebSocket, Raw} {
		for _, size := range []int{MinSize, 125, 126, 1000, 65535, 65536} {
			f, err := NewFrames(p, size, 3)
			if err != nil {
				t.Fatal(err)
			}
			var seq uint64
			for _, stamp := range []struct {
				k    int
				time int64
			}{{3, 42}, {2, 1 << 40}, {5, 7}} {
				b := f.Stamp(stamp.k, stamp.time)
				want := min(stamp.k, 3)
				if len(b) != want*f.Len() {
					t.Fatalf("%v %d: Stamp(%d) gave %d bytes, want %d frames of %d", p, size, stamp.k, len(b), want, f.Len())
				}
				r := bytes.NewReader(b)
				for range want {
					m := readClientFrame(t, p, r)
					if len(m) != size {
						t.Fatalf("%v %d: message of %d bytes", p, size, len(m))
					}
					if got := binary.LittleEndian.Uint64(m); got != seq {
						t.Fatalf("%v %d: sequence %d, want %d", p, size, got, seq)
					}
					if got := int64(binary.LittleEndian.Uint64(m[8:])); got != stamp.time {
						t.Fatalf("%v %d: time %d, want %d", p, size, got, stamp.time)
					}
					if !bytes.Equal(m[MinSize:], pattern(size)) {
						t.Fatalf("%v %d: payload differs from the pattern", p, size)
					}
					seq++
				}
				if r.Len() != 0 {
					t.Fatalf("%v %d: %d bytes after the frames", p, size, r.Len())
				}
			}
			if f.Sent() != seq {
				t.Fatalf("%v %d: Sent %d, want %d", p, size, f.Sent(), seq)
			}
		}
	}
}

func TestNewFramesErrors(t *testing.T) {
	if _, err := NewFrames(WebSocket, MinSize-1, 1); !errors.Is(err, ErrSize) {
		t.Fatalf("size %d: %v, want ErrSize", MinSize-1, err)
	}
	if _, err := NewFrames(WebSocket, 128, 0); err == nil {
		t.Fatal("a batch of 0 frames: no error")
	}
	if _, err := NewFrames(Proto(7), 128, 1); err == nil {
		t.Fatal("an unknown protocol: no error")
	}
}

func TestStampAllocatesNothing(t *testing.T) {
	f, err := NewFrames(WebSocket, 128, 32)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { f.Stamp(32, Now()) }); n != 0 {
		t.Fatalf("Stamp: %v allocations, want 0", n)
	}
}
