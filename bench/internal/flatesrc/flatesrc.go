// Package flatesrc is what a flate reader inflates one permessage-deflate
// message (RFC 7692) from: the message's payload, then the empty stored
// block that its sender stripped and an empty final block, so that the
// reader reports the message's end as io.EOF.
package flatesrc

import "io"

// tail is the sync flush's empty stored block, then an empty final block.
var tail = [...]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// Reader reads a compressed payload and then the blocks that end it. It
// is an io.ByteReader, so that a flate reader reads it without a buffer
// of its own. A Reader is used by one goroutine at a time; its zero value
// reads only the blocks.
type Reader struct {
	p    []byte
	tail int // bytes of tail read
}

// Reset has r read p, which it keeps until the next Reset, and then the
// blocks.
func (r *Reader) Reset(p []byte) { *r = Reader{p: p} }

func (r *Reader) Read(b []byte) (int, error) {
	if len(r.p) > 0 {
		n := copy(b, r.p)
		r.p = r.p[n:]
		return n, nil
	}
	if r.tail == len(tail) {
		return 0, io.EOF
	}
	n := copy(b, tail[r.tail:])
	r.tail += n
	return n, nil
}

func (r *Reader) ReadByte() (byte, error) {
	if len(r.p) > 0 {
		c := r.p[0]
		r.p = r.p[1:]
		return c, nil
	}
	if r.tail == len(tail) {
		return 0, io.EOF
	}
	r.tail++
	return tail[r.tail-1], nil
}
