package wsconn

import (
	"fmt"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/pool"
	"github.com/pollws/pollws/wsconn/internal/deflate"
	"github.com/pollws/pollws/wsconn/internal/frame"
)

// compressedLocked writes one whole message of op, the concatenation of
// body, compressed in one frame with RSV1; it may change body's slices. done is false when it did not
// write it, and the message is to go as it is: below the compression
// threshold, or when the send queue has not room for the most its
// compression can take. A full queue then answers NotReady to the plain
// write and wakes its task, which comes back here; no compression is
// done for a message the queue would refuse, which, with context
// takeover, would be in the compressor's window and yet never sent.
func (c *Conn) compressedLocked(t *asyncio.Task, op byte, body [][]byte, wake *asyncio.Wakeups) (r asyncio.Async[int], done bool, err error) {
	z := c.z
	n := 0
	for _, b := range body {
		n += len(b)
	}
	if len(body) == 0 || !z.w.ShouldCompress(n) {
		return r, false, nil
	}
	if err := c.writableLocked(nil); err != nil {
		return asyncio.NotReady[int](), true, err
	}
	bound := frame.MaxHeader + deflate.MaxCompressedLen(n)
	if !c.roomLocked(bound, wake) {
		return r, false, nil
	}
	var in []byte
	var flat *[]byte
	switch len(body) {
	case 1:
		in = body[0]
	default:
		if n > 0 {
			flat = pool.Get(n)
			k := 0
			for _, b := range body {
				k += copy((*flat)[k:], b)
			}
			in = *flat
		}
	}
	buf := pool.Get(bound)
	out, err := z.w.Compress((*buf)[:0], in)
	if flat != nil {
		pool.Put(flat)
	}
	if err != nil {
		pool.Put(buf)
		return asyncio.NotReady[int](), true, fmt.Errorf("wsconn: compressing a message: %w", err)
	}
	// body is the caller's own list, made for this write: it carries the
	// compressed payload now, which saves a second one.
	body[0] = out
	_, ready, err := c.putFrameLocked(t, true, rsv1, op, body[:1], false, wake)
	pool.Put(buf)
	if !ready || err != nil {
		// Only a connection that failed refuses what roomLocked let
		// through. A compressor with context takeover forgets its window,
		// which holds a message the peer will not get.
		z.w.Release()
		return asyncio.NotReady[int](), true, err
	}
	z.sent++
	return asyncio.Ready(n), true, nil
}

// roomLocked reports whether the send queue takes a whole write of n
// bytes now: it has room for it, or nothing is pending, when it takes a
// write of any size. Without room it makes some the way a write to a
// full queue would, and looks again. Writes to the queue hold c.mu, so
// none takes the room until c.mu is released; the queue's flush only
// makes more.
func (c *Conn) roomLocked(n int, wake *asyncio.Wakeups) bool {
	room := func() bool {
		avail := c.availableLocked()
		return avail >= n || avail > 0 && c.out.Buffered()+c.tls.staged() == 0
	}
	if room() {
		return true
	}
	c.flushTLSLocked()
	c.out.Kick(wake)
	return room()
}
