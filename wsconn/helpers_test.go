package wsconn

import (
	"bytes"
	"context"
	"errors"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/sendq"
)

// readMessage reads a message with c.ReadMessage and returns a copy of its
// payload, which the tests keep past the next read.
func readMessage(ctx context.Context, c *Conn) (MessageType, []byte, error) {
	m, err := c.ReadMessage(ctx)
	return m.Type, bytes.Clone(m.Data), err
}

// closeCode returns the status code the connection ended with: the
// peer's close frame's, else ours when we ended it on bad input or
// silence, else 1006 when it ended without one; 0 while it is open.
func closeCode(c *Conn) StatusCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.peerDone:
		return c.cl.peerCode
	case c.endErr != nil && c.cl != nil && c.cl.code != 0:
		return c.cl.code
	case c.state == stateClosed:
		return StatusAbnormalClosure
	}
	return 0
}

// pollWhole writes all of p or nothing to w: Ready(total) or NotReady. A
// total larger than the buffer is taken only when nothing is pending.
func pollWhole(w *ConnWriter, t *asyncio.Task, p ...[]byte) (asyncio.Async[int], error) {
	q := sendq.Req{Body: p, Whole: true}
	var wake asyncio.Wakeups
	n, ready, err := w.w.Poll(t, &q, &wake)
	wake.Notify()
	return result(n, ready, err)
}

var bgCtx = context.Background()

// isCloseError reports whether err is, or wraps, a *CloseError.
func isCloseError(err error) bool {
	var ce *CloseError
	return errors.As(err, &ce)
}
