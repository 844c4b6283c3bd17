package load

import (
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"

	"github.com/pollws/pollws/bench/internal/flatesrc"
)

// inflater is a flate reader and its source, reused from message to
// message: without context takeover each message is a stream of its own.
type inflater struct {
	fr  io.ReadCloser
	src flatesrc.Reader
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
	f.src.Reset(p)
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
