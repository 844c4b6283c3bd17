package deflate

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
)

// inflateMessage inflates one message given as chunks, growing its buffer
// the way a connection's reader does (from what arrived, never beyond
// limit), and finishes it.
func inflateMessage(d *Decompressor, chunks [][]byte, limit int) ([]byte, error) {
	var out []byte
	grow := func() {
		n := min(max(2*cap(out), 64), limit+1)
		if n <= cap(out) {
			n = cap(out) + 1
		}
		grown := make([]byte, len(out), n)
		copy(grown, out)
		out = grown
	}
	for _, c := range chunks {
		for {
			var n int
			var err error
			out, n, err = d.Inflate(out, c, limit)
			c = c[n:]
			if errors.Is(err, ErrShortBuffer) {
				grow()
				continue
			}
			if err != nil {
				return out, err
			}
			if len(c) != 0 {
				return out, fmt.Errorf("Inflate left %d bytes without an error", len(c))
			}
			break
		}
	}
	for {
		var err error
		out, err = d.Finish(out, limit)
		if errors.Is(err, ErrShortBuffer) {
			grow()
			continue
		}
		return out, err
	}
}

// split cuts p into chunks of k bytes (the last one shorter); k <= 0
// gives p whole.
func split(p []byte, k int) [][]byte {
	if k <= 0 || k >= len(p) {
		return [][]byte{p}
	}
	var c [][]byte
	for len(p) > k {
		c = append(c, p[:k])
		p = p[k:]
	}
	return append(c, p)
}

// jsonMessage returns n bytes of JSON-like text, the kind of message
// WebSocket applications send.
func jsonMessage(r *rand.Rand, n int) []byte {
	var b bytes.Buffer
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
	kinds := []string{"update", "insert", "delete", "ping"}
	b.WriteByte('[')
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"user":"%s","kind":"%s","price":%.2f,"ts":%d,"tags":["t%d","t%d"]}`,
			r.IntN(1e6), users[r.IntN(len(users))], kinds[r.IntN(len(kinds))], r.Float64()*1000,
			1700000000000+r.Int64N(1e9), r.IntN(50), r.IntN(50))
	}
	return b.Bytes()[:n]
}

// binaryMessage returns n bytes of binary data: random bytes when noisy,
// else a low-entropy mix of runs and repeats.
func binaryMessage(r *rand.Rand, n int, noisy bool) []byte {
	p := make([]byte, n)
	if noisy {
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		return p
	}
	for i := 0; i < n; {
		switch r.IntN(3) {
		case 0: // a run
			k := min(n-i, 1+r.IntN(40))
			v := byte(r.Uint32())
			for j := range k {
				p[i+j] = v
			}
			i += k
		case 1: // a repeat of something earlier
			if i == 0 {
				continue
			}
			from := r.IntN(i)
			k := min(n-i, 1+r.IntN(60))
			for j := range k {
				p[i+j] = p[from+j]
			}
			i += k
		default:
			p[i] = byte(r.IntN(16))
			i++
		}
	}
	return p
}
