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

// corpusFrames is the frames of a [Corpus]'s messages, sent in turn:
// framed and masked once, compressed when the connection negotiated
// permessage-deflate, back to back in the order they are sent, with the
// first window messages again at the end so that any window of messages
// is one slice. It is [Frames] for a corpus, and used the same way.
type corpusFrames struct {
	buf []byte
	// off[i] is where message i's frame starts in buf; off[len] its end.
	off       []int
	n, window int
	seq       uint64
}

// frameText is the first byte of a final text frame; rsv1 marks a
// compressed message.
const (
	frameText = 0x81
	rsv1      = 0x40
)

func newCorpusFrames(cp *Corpus, window int, deflate bool) (*corpusFrames, error) {
	if window < 1 {
		return nil, fmt.Errorf("load: a batch of %d frames", window)
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32()|1)
	f := &corpusFrames{n: cp.Len(), window: window}
	for i := range cp.Len() + window {
		m, b0 := cp.Message(i%cp.Len()), byte(frameText)
		if deflate {
			m, b0 = cp.Deflated(i%cp.Len()), frameText|rsv1
		}
		f.off = append(f.off, len(f.buf))
		f.buf = appendMaskedFrame(f.buf, b0, m, key)
	}
	f.off = append(f.off, len(f.buf))
	return f, nil
}

// appendMaskedFrame appends to b a client's frame of payload p, masked
// with key, whose first byte is b0.
func appendMaskedFrame(b []byte, b0 byte, p []byte, key [4]byte) []byte {
	switch n := len(p); {
	case n <= 125:
		b = append(b, b0, 0x80|byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, b0, 0x80|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, b0, 0x80|127), uint64(n))
	}
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, p...)
	for i := range p {
		b[start+i] ^= key[i%4]
	}
	return b
}

// Stamp returns the frames of the next k messages (at most the window);
// now is unused, as the messages carry no send time.
func (f *corpusFrames) Stamp(k int, _ int64) []byte {
	k = min(k, f.window)
	i := int(f.seq % uint64(f.n))
	f.seq += uint64(k)
	return f.buf[f.off[i]:f.off[i+k]]
}

// Sent is how many messages have been sent.
func (f *corpusFrames) Sent() uint64 { return f.seq }
