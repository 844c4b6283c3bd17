package asyncio

// Buf is a cursor over bytes waiting to be written, possibly in several
// chunks (bytes::Buf in Rust).
//
// Remaining() >= len(Chunk()) always; Chunk is empty exactly when Remaining
// is 0; Advance(0) is a no-op and Advance(n) with n > Remaining panics.
type Buf interface {
	// Remaining returns the number of bytes left.
	Remaining() int
	// Chunk returns the bytes at the cursor: a non-empty prefix of what
	// remains, or an empty slice when nothing does.
	Chunk() []byte
	// Advance moves the cursor n bytes forward.
	Advance(n int)
}

// VectoredBuf is a [Buf] that can show several chunks at once, so that a
// writer over a socket can send them with one vectored write (writev).
type VectoredBuf interface {
	Buf
	// Chunks fills dst with the chunks at the cursor, in order, none empty,
	// and returns how many it filled (at most len(dst)).
	Chunks(dst [][]byte) int
}

// BufWriter is implemented by writers that take a [Buf] directly; every
// writer in this module does, and those over a socket send a [VectoredBuf]
// with one vectored write.
type BufWriter interface {
	// WriteBuf writes from b and advances it by exactly n when it answers
	// Ready(n); on NotReady or an error b is not advanced. An empty b is
	// Ready(0) without writing.
	WriteBuf(t *Task, b Buf) (Async[int], error)
}

// WriteBuf writes from b to w and advances b by what was taken: through
// w's [BufWriter] when it has one, or else with one PollWrite of b's first
// chunk. An empty b is Ready(0) without writing.
func WriteBuf(t *Task, w AsyncWriter, b Buf) (Async[int], error) {
	if b.Remaining() == 0 {
		return Ready(0), nil
	}
	if bw, ok := w.(BufWriter); ok {
		return bw.WriteBuf(t, b)
	}
	r, err := w.PollWrite(t, b.Chunk())
	if err == nil && r.Ready {
		b.Advance(r.Value)
	}
	return r, err
}

// BytesBuf is a [VectoredBuf] over byte slices. Create one with
// [NewBytesBuf]; Reset reuses it, without allocating for up to four
// chunks. It never writes to the slices it is given.
type BytesBuf struct {
	chunks    [][]byte // chunks[0][off:] is the current chunk, never empty unless all are
	off       int
	remaining int
	small     [4][]byte // holds the chunks when they are few, so Reset does not allocate
}

var _ VectoredBuf = (*BytesBuf)(nil)

// NewBytesBuf returns a [Buf] over the concatenation of p. It does not copy
// p; the caller must not change the slices while the Buf is in use. The
// result is a *[BytesBuf].
func NewBytesBuf(p ...[]byte) Buf {
	b := new(BytesBuf)
	b.Reset(p...)
	return b
}

// Reset points b at the concatenation of p. It copies the slice headers of
// p (not the bytes), so the caller may reuse p itself at once.
func (b *BytesBuf) Reset(p ...[]byte) {
	clear(b.small[:])
	b.chunks, b.off, b.remaining = append(b.small[:0], p...), 0, 0
	for _, c := range p {
		b.remaining += len(c)
	}
	b.skipEmpty()
}

// Remaining returns the number of bytes left.
func (b *BytesBuf) Remaining() int { return b.remaining }

// Chunk returns the current chunk, or nil when nothing remains.
func (b *BytesBuf) Chunk() []byte {
	if len(b.chunks) == 0 {
		return nil
	}
	return b.chunks[0][b.off:]
}

// Chunks fills dst with the remaining chunks, skipping empty ones.
func (b *BytesBuf) Chunks(dst [][]byte) int {
	n, off := 0, b.off
	for _, c := range b.chunks {
		if n == len(dst) {
			break
		}
		if len(c) > off {
			dst[n] = c[off:]
			n++
		}
		off = 0
	}
	return n
}

// Advance moves the cursor n bytes forward; it panics if n is negative or
// more than Remaining.
func (b *BytesBuf) Advance(n int) {
	if n < 0 || n > b.remaining {
		panic("asyncio: BytesBuf.Advance past the end")
	}
	b.remaining -= n
	b.off += n
	for len(b.chunks) > 0 && b.off >= len(b.chunks[0]) {
		b.off -= len(b.chunks[0])
		b.chunks = b.chunks[1:]
	}
	b.skipEmpty()
}

func (b *BytesBuf) skipEmpty() {
	for len(b.chunks) > 0 && b.off == len(b.chunks[0]) {
		b.chunks, b.off = b.chunks[1:], 0
	}
}
