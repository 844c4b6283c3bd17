package load

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
)

// Frames is a batch of messages of one size framed once and stamped per
// send: the bytes of [Frames.Cap] messages back to back, masked for
// WebSocket with one key, of which [Frames.Stamp] rewrites only each
// message's sequence number and send time. A Frames is used by one
// goroutine at a time.
type Frames struct {
	buf      []byte
	frameLen int
	hdrLen   int
	n        int
	// mask is the masking key twice over, as a little-endian word: the
	// stamps sit at payload offsets 0 and 8, both multiples of 4, so a
	// stamp is masked by one XOR. Zero for Raw.
	mask uint64
	seq  uint64
}

// NewFrames returns a batch of n messages of size bytes framed for p.
func NewFrames(p Proto, size, n int) (*Frames, error) {
	if size < MinSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrSize, size)
	}
	if n < 1 {
		return nil, fmt.Errorf("load: a batch of %d frames", n)
	}
	var hdr []byte
	var key [4]byte
	switch p {
	case WebSocket:
		const finBinary = 0x82
		switch {
		case size <= 125:
			hdr = []byte{finBinary, 0x80 | byte(size)}
		case size <= 0xffff:
			hdr = binary.BigEndian.AppendUint16([]byte{finBinary, 0x80 | 126}, uint16(size))
		default:
			hdr = binary.BigEndian.AppendUint64([]byte{finBinary, 0x80 | 127}, uint64(size))
		}
		binary.LittleEndian.PutUint32(key[:], rand.Uint32()|1) // never all zero
		hdr = append(hdr, key[:]...)
	case Raw:
		if uint64(size) > 0xffffffff {
			return nil, fmt.Errorf("load: a raw message of %d bytes", size)
		}
		hdr = binary.BigEndian.AppendUint32(nil, uint32(size))
	default:
		return nil, fmt.Errorf("load: unknown %v", p)
	}
	frame := append(hdr, make([]byte, MinSize)...)
	frame = append(frame, pattern(size)...)
	if p == WebSocket {
		payload := frame[len(hdr):]
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	f := &Frames{frameLen: len(frame), hdrLen: len(hdr), n: n}
	f.mask = uint64(binary.LittleEndian.Uint32(key[:])) * (1<<32 + 1)
	f.buf = make([]byte, 0, n*len(frame))
	for range n {
		f.buf = append(f.buf, frame...)
	}
	return f, nil
}

// Cap is the most messages one [Frames.Stamp] returns.
func (f *Frames) Cap() int { return f.n }

// Len is the length in bytes of one framed message.
func (f *Frames) Len() int { return f.frameLen }

// Sent is how many messages have been stamped: the sequence number of the
// next.
func (f *Frames) Sent() uint64 { return f.seq }

// Stamp numbers the next k messages (at most [Frames.Cap]), stamps them
// with the send time now (from [Now]) and returns their bytes, valid
// until the next Stamp.
func (f *Frames) Stamp(k int, now int64) []byte {
	k = min(k, f.n)
	for i := range k {
		m := f.buf[i*f.frameLen+f.hdrLen:]
		binary.LittleEndian.PutUint64(m, f.seq^f.mask)
		binary.LittleEndian.PutUint64(m[8:], uint64(now)^f.mask)
		f.seq++
	}
	return f.buf[:k*f.frameLen]
}
