package ring

import (
	"fmt"

	"github.com/pollws/pollws/internal/pool"
)

// Pooled is a fixed-capacity byte ring for a writer's pending bytes that
// holds no memory while it is empty: it takes its storage from the shared
// size-class pool on the first byte written and gives it back when the
// last pending byte is discarded, so an idle connection holds no buffer.
// Writing, peeking and discarding do not allocate once the pool is warm.
//
// A Pooled is not safe for concurrent use; its owner serialises access.
// The zero value has capacity 0: set it with [NewPooled] or
// [Pooled.SetCap].
type Pooled struct {
	store *[]byte // pooled storage while bytes are pending, else nil
	head  int32   // as in a Ring over (*store)[:size]
	n     int32
	size  int32
}

// ring returns the Ring the pooled state describes; put stores it back.
func (p *Pooled) ring() Ring {
	if p.store == nil {
		return Ring{}
	}
	return Ring{b: (*p.store)[:p.size], head: int(p.head), n: int(p.n)}
}

func (p *Pooled) put(r *Ring) { p.head, p.n = int32(r.head), int32(r.n) }

// NewPooled returns an empty ring that holds up to capacity bytes. It
// takes no memory until the first Write. It panics if capacity is less
// than 1.
func NewPooled(capacity int) *Pooled {
	p := new(Pooled)
	p.SetCap(capacity)
	return p
}

// SetCap sets the capacity of an empty ring. It panics if capacity is
// less than 1 or bytes are pending.
func (p *Pooled) SetCap(capacity int) {
	if capacity < 1 || capacity > 1<<30 {
		panic(fmt.Sprintf("ring: capacity %d, must be from 1 to 1 GiB", capacity))
	}
	if p.n > 0 {
		panic("ring: SetCap with bytes pending")
	}
	p.size = int32(capacity)
}

// Write copies as much of b as fits and returns how many bytes it took.
// It takes storage from the pool when the ring was empty.
func (p *Pooled) Write(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	return p.WriteAll(b, nil)
}

// WriteAll copies head and then the slices of body, as Writes of each in
// turn would, reading and storing the ring's state once: the pieces of
// one message. It returns how many bytes it took.
func (p *Pooled) WriteAll(head []byte, body [][]byte) int {
	if p.n == p.size {
		return 0
	}
	if p.store == nil {
		p.store = pool.Get(int(p.size))
		p.head, p.n = 0, 0
	}
	r := p.ring()
	k := r.Write(head)
	for _, b := range body {
		k += r.Write(b)
	}
	p.put(&r)
	if p.n == 0 {
		p.release() // nothing was written
	}
	return k
}

// Peek returns the pending bytes as at most two slices, oldest first; b
// is empty when a is. The slices alias the ring's storage and are valid
// only until the next Write, Discard or Reset: once the ring drains its
// storage may belong to another ring.
func (p *Pooled) Peek() (a, b []byte) {
	r := p.ring()
	return r.Peek()
}

// Discard drops the n oldest pending bytes. When none are left, the
// storage goes back to the pool. It panics if n is negative or more than
// [Pooled.Len].
func (p *Pooled) Discard(n int) {
	if n < 0 || n > int(p.n) {
		panic(fmt.Sprintf("ring: Discard(%d) with %d bytes pending", n, p.n))
	}
	r := p.ring()
	r.Discard(n)
	p.put(&r)
	if p.n == 0 {
		p.release()
	}
}

// Len returns the number of pending bytes.
func (p *Pooled) Len() int { return int(p.n) }

// Cap returns the capacity in bytes.
func (p *Pooled) Cap() int { return int(p.size) }

// Free returns how many bytes Write can take now: Cap - Len.
func (p *Pooled) Free() int { return int(p.size - p.n) }

// Held reports whether the ring holds storage, which it does exactly while
// bytes are pending.
func (p *Pooled) Held() bool { return p.store != nil }

// Reset drops every pending byte and gives the storage back to the pool.
func (p *Pooled) Reset() { p.release() }

func (p *Pooled) release() {
	p.head, p.n = 0, 0
	if p.store != nil {
		pool.Put(p.store)
		p.store = nil
	}
}
