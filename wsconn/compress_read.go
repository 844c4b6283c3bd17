package wsconn

import (
	"errors"
	"fmt"
	"math"

	"github.com/pollws/pollws/internal/pool"
	"github.com/pollws/pollws/wsconn/internal/deflate"
	"github.com/pollws/pollws/wsconn/internal/frame"
)

// errShort: the message buffer is full and inflating goes on in a larger
// one.
var errShort = errors.New("wsconn: the message buffer is full")

// minInflateBuffer is the smallest message buffer a compressed message
// is inflated into.
const minInflateBuffer = 512

// begin starts a message, compressed or not.
func (z *compression) begin(compressed bool) {
	z.inflating = compressed
	if compressed {
		z.read++
	}
}

// inflate inflates p, the next payload bytes of a compressed message, into
// the message buffer. The buffer grows with what was inflated, never
// beyond the size limit: a message that would inflate to more fails the
// connection with 1009 having inflated no more than the limit.
func (c *Conn) inflate(p []byte) error {
	rd := &c.rd
	for {
		c.inflateRoom(len(p))
		out, k, err := c.z.r.Inflate((*rd.msg)[:rd.n], p, c.inflateLimit())
		p = p[k:]
		if err := c.inflated(out, err); err != errShort {
			return err
		}
	}
}

// finishInflate ends a compressed message: it checks that the DEFLATE
// stream ended as permessage-deflate requires.
func (c *Conn) finishInflate() error {
	rd := &c.rd
	c.z.inflating = false
	for {
		var dst []byte
		if rd.msg != nil {
			dst = (*rd.msg)[:rd.n]
		}
		out, err := c.z.r.Finish(dst, c.inflateLimit())
		if err := c.inflated(out, err); err != errShort {
			return err
		}
		c.inflateRoom(0)
	}
}

// inflated takes out, the message inflated so far, and the error of the
// inflate that made it: it checks the new bytes of a text message, and
// fails the connection on an error but errShort, which asks for a larger
// buffer.
func (c *Conn) inflated(out []byte, err error) error {
	rd := &c.rd
	if rd.op == frame.OpText && !rd.text.Write(out[rd.n:]) {
		return c.fail(StatusInvalidPayload, fmt.Errorf("%w in a text message", ErrInvalidUTF8))
	}
	rd.n = len(out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, deflate.ErrShortBuffer):
		return errShort
	case errors.Is(err, deflate.ErrTooBig):
		return c.fail(StatusMessageTooBig, fmt.Errorf("%w: it inflates to more than %d bytes", ErrMessageTooBig, c.cfg.maxMessage))
	}
	return c.fail(StatusInvalidPayload, fmt.Errorf("%w: %v", ErrCorruptMessage, err))
}

// inflateRoom makes sure the message buffer has room for more: a first
// buffer sized after the compressed bytes at hand (n), else one twice as
// large as the full one, within the size limit.
func (c *Conn) inflateRoom(n int) {
	rd := &c.rd
	limit := c.inflateLimit()
	switch {
	case rd.msg == nil:
		rd.msg = pool.Get(min(max(minInflateBuffer, 4*n), limit))
	case rd.n == cap(*rd.msg):
		grown := pool.Get(min(2*rd.n, limit))
		copy(*grown, (*rd.msg)[:rd.n])
		pool.Put(rd.msg)
		rd.msg = grown
	}
}

// inflateLimit is the most bytes a message may inflate to.
func (c *Conn) inflateLimit() int {
	return int(min(c.cfg.maxMessage, math.MaxInt))
}

// compressedLimit is the longest payload of a compressed message that
// inflates to at most limit bytes, as a compressor that falls back to
// stored blocks makes it.
func compressedLimit(limit int64) int64 {
	if limit > math.MaxInt/2 {
		return math.MaxInt64
	}
	return int64(deflate.MaxCompressedLen(int(limit)))
}
