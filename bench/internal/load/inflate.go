package load

import (
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// readTail ends a compressed message for the flate reader: the sync
// flush's empty stored block that the sender stripped, then an empty
// final block, so that the reader reports the message's end as io.EOF.
var readTail = [...]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// inflater is a flate reader and its source, reused from message to
// message: without context takeover each message is a stream of its own.
type inflater struct {
	fr  io.ReadCloser
	src deflateSource
}

// inflaters holds the inflaters of every connection, taken for the length
// of one message, so that an idle connection holds none.
var inflaters = sync.Pool{New: func() any { return &inflater{fr: flate.NewReader(nil)} }}

// inflate appends the inflation of the compressed payload p to dst[:0]
// and returns it; more than limit bytes is [ErrTooLarge], a stream that
// is not DEFLATE [ErrInflate].
func inflate(dst, p []byte, limit int) ([]byte, error) {
	f := inflaters.Get().(*inflater)
	defer inflaters.Put(f)
	f.src = deflateSource{p: p}
	if err := f.fr.(flate.Resetter).Reset(&f.src, nil); err != nil {
		return dst[:0], fmt.Errorf("%w: %v", ErrInflate, err)
	}
	dst = dst[:0]
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := f.fr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return dst[:0], fmt.Errorf("%w: a message inflating to over %d bytes", ErrTooLarge, limit)
		}
		switch {
		case err == io.EOF:
			return dst, nil
		case err != nil:
			return dst[:0], fmt.Errorf("%w: %v", ErrInflate, err)
		}
	}
}

// deflateSource reads a compressed payload and then [readTail]. It is an
// io.ByteReader, so that the flate reader reads it without a buffer of
// its own.
type deflateSource struct {
	p    []byte
	tail int // bytes of readTail read
}

func (s *deflateSource) Read(b []byte) (int, error) {
	if len(s.p) > 0 {
		n := copy(b, s.p)
		s.p = s.p[n:]
		return n, nil
	}
	if s.tail == len(readTail) {
		return 0, io.EOF
	}
	n := copy(b, readTail[s.tail:])
	s.tail += n
	return n, nil
}

func (s *deflateSource) ReadByte() (byte, error) {
	if len(s.p) > 0 {
		c := s.p[0]
		s.p = s.p[1:]
		return c, nil
	}
	if s.tail == len(readTail) {
		return 0, io.EOF
	}
	s.tail++
	return readTail[s.tail-1], nil
}
