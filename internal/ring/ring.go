// Package ring is the fixed-capacity byte ring under every pollws buffer.
//
// A Ring is not safe for concurrent use; its owner serialises access.
package ring

// Ring is a byte ring over a caller-supplied backing slice. The zero value
// has no storage and capacity 0.
type Ring struct {
	b    []byte
	head int // index of the first pending byte
	n    int // number of pending bytes
}

// New returns a Ring over b; b's length is the capacity.
func New(b []byte) Ring { return Ring{b: b} }

// Cap returns the capacity in bytes.
func (r *Ring) Cap() int { return len(r.b) }

// Len returns the number of pending bytes.
func (r *Ring) Len() int { return r.n }

// Free returns how many bytes Write can take now.
func (r *Ring) Free() int { return len(r.b) - r.n }

// Storage returns the backing slice.
func (r *Ring) Storage() []byte { return r.b }

// Reset drops every pending byte and installs b as the backing slice.
func (r *Ring) Reset(b []byte) { *r = Ring{b: b} }

// Write copies as much of p as fits and returns how many bytes it took.
func (r *Ring) Write(p []byte) int {
	if tail := r.head + r.n; tail+len(p) <= len(r.b) {
		// Into the free bytes after the pending ones, at once: the
		// common case, as a drained ring starts again at its start.
		copy(r.b[tail:], p)
		r.n += len(p)
		return len(p)
	}
	total := 0
	for len(p) > 0 && r.n < len(r.b) {
		tail := r.head + r.n
		if tail >= len(r.b) {
			tail -= len(r.b)
		}
		end := len(r.b)
		if tail < r.head {
			end = r.head
		}
		c := copy(r.b[tail:end], p)
		r.n += c
		total += c
		p = p[c:]
	}
	return total
}

// Peek returns the pending bytes as at most two slices, oldest first. b is
// empty when a is. The slices alias the ring until the next Write or Discard.
func (r *Ring) Peek() (a, b []byte) {
	if r.n == 0 {
		return nil, nil
	}
	end := r.head + r.n
	if end <= len(r.b) {
		return r.b[r.head:end], nil
	}
	return r.b[r.head:], r.b[:end-len(r.b)]
}

// Discard drops the n oldest pending bytes. It panics if n is negative or
// more than Len.
func (r *Ring) Discard(n int) {
	if n < 0 || n > r.n {
		panic("ring: discard out of range")
	}
	r.n -= n
	if r.n == 0 {
		r.head = 0 // keeps the next batch contiguous
		return
	}
	r.head += n
	if r.head >= len(r.b) {
		r.head -= len(r.b)
	}
}

// Read copies pending bytes into p, discards them, and returns how many.
func (r *Ring) Read(p []byte) int {
	a, b := r.Peek()
	n := copy(p, a)
	n += copy(p[n:], b)
	r.Discard(n)
	return n
}
