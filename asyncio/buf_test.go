package asyncio_test

import (
	"bytes"
	"testing"

	"github.com/pollws/pollws/asyncio"
)

// checkBuf checks the rules every Buf keeps against want, the bytes it
// should have left.
func checkBuf(t *testing.T, b asyncio.Buf, want []byte) {
	t.Helper()
	if b.Remaining() != len(want) {
		t.Fatalf("Remaining = %d, want %d", b.Remaining(), len(want))
	}
	c := b.Chunk()
	if len(c) > b.Remaining() || (len(c) == 0) != (b.Remaining() == 0) || !bytes.HasPrefix(want, c) {
		t.Fatalf("Chunk = %q with %q remaining", c, want)
	}
	dst := make([][]byte, 8)
	n := b.(asyncio.VectoredBuf).Chunks(dst)
	joined := bytes.Join(dst[:n], nil)
	if !bytes.HasPrefix(want, joined) || (n < len(dst) && !bytes.Equal(joined, want)) {
		t.Fatalf("Chunks = %q with %q remaining", dst[:n], want)
	}
	for _, c := range dst[:n] {
		if len(c) == 0 {
			t.Fatal("Chunks gave an empty chunk")
		}
	}
}

func FuzzBytesBuf(f *testing.F) {
	f.Add([]byte("hello, world"), []byte{0, 3, 0, 5, 1, 200})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		// cuts split data into chunks (even positions) and give advances (odd).
		var chunks [][]byte
		rest := data
		for i := 0; i < len(cuts); i += 2 {
			n := min(int(cuts[i]), len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		chunks = append(chunks, rest)
		orig := bytes.Clone(data)
		b := asyncio.NewBytesBuf(chunks...)
		model := data
		checkBuf(t, b, model)
		for i := 1; i < len(cuts); i += 2 {
			n := min(int(cuts[i]), len(model))
			b.Advance(n)
			model = model[n:]
			checkBuf(t, b, model)
		}
		if !bytes.Equal(data, orig) {
			t.Fatal("BytesBuf changed the bytes it was given")
		}
	})
}

func TestBytesBufAdvancePastEndPanics(t *testing.T) {
	b := asyncio.NewBytesBuf([]byte("ab"))
	b.Advance(0)
	checkBuf(t, b, []byte("ab"))
	defer func() {
		if recover() == nil {
			t.Fatal("Advance(3) with 2 remaining did not panic")
		}
	}()
	b.Advance(3)
}

func TestBytesBufDoesNotModifyCallersSlices(t *testing.T) {
	chunks := [][]byte{[]byte("abc"), []byte("def")}
	b := asyncio.NewBytesBuf(chunks...)
	b.Advance(4)
	if string(chunks[0]) != "abc" || string(chunks[1]) != "def" {
		t.Fatalf("caller's chunks changed to %q", chunks)
	}
	checkBuf(t, b, []byte("ef"))
}

// plainWriter hides the Pipe writer's BufWriter, so WriteBuf takes its
// PollWrite path.
type plainWriter struct{ asyncio.AsyncWriter }

func TestWriteBufWithoutBufWriter(t *testing.T) {
	w, r := asyncio.Pipe(5)
	defer r.Close()
	pw := plainWriter{w}
	b := asyncio.NewBytesBuf([]byte("ab"), []byte("cdef"))
	res, err := asyncio.WriteBuf(nil, pw, b)
	if err != nil || res.Value != 2 || b.Remaining() != 4 {
		t.Fatalf("WriteBuf = %+v, %v, Remaining %d; want Ready(2) (the first chunk), 4", res, err, b.Remaining())
	}
	res, _ = asyncio.WriteBuf(nil, pw, b)
	if res.Value != 3 || b.Remaining() != 1 {
		t.Fatalf("WriteBuf = %+v, Remaining %d; want Ready(3), 1", res, b.Remaining())
	}
	if res, _ := asyncio.WriteBuf(nil, pw, b); res.Ready || b.Remaining() != 1 {
		t.Fatalf("WriteBuf on a full pipe = %+v, Remaining %d; want NotReady, 1", res, b.Remaining())
	}
}
