package buf

import (
	"fmt"

	"github.com/pollws/pollws/internal/ring"
)

// Ring is a fixed-capacity byte ring for a writer's pending bytes: Write
// copies in what fits, Peek shows what is pending as at most two slices
// (for one vectored write), and Discard drops what was written.
//
// A Ring holds no memory while it is empty: it takes its storage from a
// pool shared by every Ring on the first byte written and gives it back
// when the last pending byte is discarded, so an idle connection holds no
// buffer. Writing, peeking and discarding do not allocate once the pool is
// warm.
//
// A Ring is not safe for concurrent use; its owner serialises access.
type Ring struct {
	r     ring.Ring
	store *[]byte // pooled storage while bytes are pending, else nil
	size  int
}

// NewRing returns an empty Ring that holds up to capacity bytes. It takes
// no memory until the first Write. It panics if capacity is less than 1.
func NewRing(capacity int) *Ring {
	if capacity < 1 {
		panic(fmt.Sprintf("buf: NewRing capacity %d, must be at least 1", capacity))
	}
	return &Ring{size: capacity}
}

// Write copies as much of p as fits and returns how many bytes it took.
// It takes storage from the pool when the ring was empty.
func (r *Ring) Write(p []byte) int {
	if len(p) == 0 || r.r.Len() == r.size {
		return 0
	}
	if r.store == nil {
		r.store = getBytes(r.size)
		r.r.Reset((*r.store)[:r.size])
	}
	return r.r.Write(p)
}

// Peek returns the pending bytes as at most two slices, oldest first; b is
// empty when a is. The slices alias the ring's storage and are valid only
// until the next Write, Discard or Reset: once the ring drains its storage
// may belong to another Ring.
func (r *Ring) Peek() (a, b []byte) { return r.r.Peek() }

// Discard drops the n oldest pending bytes. When none are left, the
// storage goes back to the pool. It panics if n is negative or more than
// [Ring.Len].
func (r *Ring) Discard(n int) {
	if n < 0 || n > r.r.Len() {
		panic(fmt.Sprintf("buf: Ring.Discard(%d) with %d bytes pending", n, r.r.Len()))
	}
	r.r.Discard(n)
	if r.r.Len() == 0 {
		r.release()
	}
}

// Len returns the number of pending bytes.
func (r *Ring) Len() int { return r.r.Len() }

// Cap returns the capacity in bytes.
func (r *Ring) Cap() int { return r.size }

// Free returns how many bytes Write can take now: Cap - Len.
func (r *Ring) Free() int { return r.size - r.r.Len() }

// Held reports whether the ring holds storage, which it does exactly while
// bytes are pending.
func (r *Ring) Held() bool { return r.store != nil }

// Reset drops every pending byte and gives the storage back to the pool.
func (r *Ring) Reset() { r.release() }

func (r *Ring) release() {
	r.r.Reset(nil)
	if r.store != nil {
		putBytes(r.store)
		r.store = nil
	}
}
