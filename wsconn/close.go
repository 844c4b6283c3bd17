package wsconn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
)

// CloseError is the error a read returns when the peer closed the
// connection with a close frame: its status code (1005,
// ws.StatusNoStatusRcvd, when the frame had none) and reason. Match it
// with [errors.As].
type CloseError struct {
	Code   ws.StatusCode
	Reason string
}

// Error says that the peer closed the connection, with its status code
// and reason.
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("wsconn: the peer closed the connection with status %d", e.Code)
	}
	return fmt.Sprintf("wsconn: the peer closed the connection with status %d: %q", e.Code, e.Reason)
}

// connValidCloseCode reports whether code may be sent in a close frame:
// the codes RFC 6455 and the IANA registry define for use, and the
// application and private ranges.
func connValidCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// Shutdown closes the connection gracefully with status 1000 (normal
// closure): see [Conn.ShutdownWith].
func (c *Conn) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return c.ShutdownWith(t, ws.StatusNormalClosure, "")
}

// ShutdownWith closes the connection gracefully: first it queues a close
// frame with code and reason after every frame written before, then it
// flushes, then it waits for the peer's close frame, at most
// [Options.CloseTimeout], then it sends the end of the stream (TCP FIN,
// TLS close_notify) and closes the connection.
//
// While it waits, it reads the connection itself, dropping messages, when
// no read is in progress; when the application's read loop is running,
// that loop sees the peer's close instead (a *[CloseError]). Writes fail
// with [asyncio.ErrShutdown] from the first call on. A NotReady
// ShutdownWith resumes when called again and sends one close frame; after
// Ready it answers Ready at once. When the peer does not answer in time it
// closes the connection anyway and fails with an error that wraps
// [os.ErrDeadlineExceeded]. Errors are sticky.
//
// code must be one a close frame may carry (1000-1003, 1007-1014,
// 3000-4999), and reason at most 123 bytes.
func (c *Conn) ShutdownWith(t *asyncio.Task, code ws.StatusCode, reason string) (asyncio.Async[struct{}], error) {
	c.mu.Lock()
	r, closeNow, wake, err := c.shutdownLocked(t, code, reason)
	c.mu.Unlock()
	if closeNow {
		c.w.Close()
	}
	cwNotify(wake)
	return r, err
}

func (c *Conn) shutdownLocked(t *asyncio.Task, code ws.StatusCode, reason string) (r asyncio.Async[struct{}], closeNow bool, wake [cwSlots]*asyncio.Task, err error) {
	notReady := asyncio.NotReady[struct{}]()
	for {
		if c.shutErr != nil {
			return notReady, false, wake, c.shutErr
		}
		if c.done {
			if c.doneErr != nil {
				return notReady, false, wake, c.doneErr
			}
			return asyncio.Ready(struct{}{}), false, wake, nil
		}
		switch c.stage {
		case connShutNone:
			if !connValidCloseCode(code) {
				return notReady, false, wake, fmt.Errorf("wsconn: close status code %d may not be sent", code)
			}
			if len(reason) > ws.MaxControlFramePayloadSize-2 {
				return notReady, false, wake, fmt.Errorf("wsconn: close reason of %d bytes, more than %d", len(reason), ws.MaxControlFramePayloadSize-2)
			}
			c.shutBegan = true
			c.shutCode, c.shutReason = code, reason
			// A write waiting for room will now fail: wake it to see that.
			wake[cwSlotApp] = c.w.cwTakeSlot(cwSlotApp, t)
			c.stage = connShutQueue
			if c.closeQueued {
				c.setShutWaitLocked() // a read is answering the peer's close
			}

		case connShutQueue:
			var body [ws.MaxControlFramePayloadSize]byte
			binary.BigEndian.PutUint16(body[:], uint16(c.shutCode))
			n := 2 + copy(body[2:], c.shutReason)
			fr, err := c.closeFrame(t, cwSlotShutdown, body[:n], &wake)
			if err != nil {
				c.shutErr = err
				return notReady, false, wake, err
			}
			if !fr.Ready {
				return notReady, false, wake, nil
			}
			c.closeQueued = true
			c.stage = connShutFlush

		case connShutFlush:
			fr, w, err := c.w.cwFlushWake(t, cwSlotShutdown)
			wake = cwMergeWake(wake, w)
			if err != nil {
				c.shutErr = err
				return notReady, false, wake, err
			}
			if !fr.Ready {
				return notReady, false, wake, nil
			}
			c.setShutWaitLocked()
			if !c.peerClosed {
				c.closeTimer = time.AfterFunc(c.closeTimeout, c.closeTimedOut)
				if c.tryAcquireRead() { // no read in progress: read here
					c.wg.Add(1)
					go c.drainForClose()
				}
			}

		case connShutWait:
			if t != nil {
				c.shutTask = t
			}
			if c.readerClosing || (!c.peerClosed && !c.timedOut && !c.readDone) {
				return notReady, false, wake, nil // the reader closing will notify
			}
			c.stage = connShutEnd

		case connShutEnd:
			if c.peerClosed {
				fr, w, err := c.w.cwShutdownWake(t, cwSlotShutdown)
				wake = cwMergeWake(wake, w)
				if err == nil && !fr.Ready {
					return notReady, false, wake, nil
				}
				c.endLocked(nil)
			} else {
				c.endLocked(c.closeTimeoutErr())
			}
			closeNow = true
			if c.doneErr != nil {
				return notReady, closeNow, wake, c.doneErr
			}
			return asyncio.Ready(struct{}{}), closeNow, wake, nil
		}
	}
}

func cwMergeWake(a, b [cwSlots]*asyncio.Task) [cwSlots]*asyncio.Task {
	for i, t := range b {
		if t != nil {
			a[i] = t
		}
	}
	return a
}

// closeFrame writes a close frame with payload body, for the task of slot,
// whatever was written before.
func (c *Conn) closeFrame(t *asyncio.Task, slot int, body []byte, wake *[cwSlots]*asyncio.Task) (asyncio.Async[int], error) {
	h := ws.Header{Fin: true, OpCode: ws.OpClose, Length: int64(len(body))}
	if c.client {
		h.Masked, h.Mask = true, ws.NewMask()
	}
	var hb [ws.MaxHeaderSize]byte
	n := connPutHeader(&hb, &h)
	one := [1][]byte{body}
	return c.w.cwFrame(t, slot, hb[:n], one[:], h.Masked, h.Mask, true, wake)
}

func (c *Conn) closeTimeoutErr() error {
	return fmt.Errorf("wsconn: close: no close frame from the peer within %v: %w", c.closeTimeout, os.ErrDeadlineExceeded)
}

// closeTimedOut runs when the peer has not answered the close frame in
// time: it wakes Shutdown and the read waiting for the answer.
func (c *Conn) closeTimedOut() {
	c.mu.Lock()
	if c.done || c.peerClosed {
		c.mu.Unlock()
		return
	}
	c.timedOut = true
	t := c.shutTask
	c.mu.Unlock()
	_ = c.conn.SetReadDeadline(connPast)
	t.Notify()
}

// setShutWaitLocked moves Shutdown to connShutWait. It sets shutWait
// before Shutdown looks for a read in progress (rheld), and a read's
// release clears rheld before it looks at shutWait, so one of the two sees
// the other: either Shutdown takes the read side itself, or the release
// finds it waiting and reads.
func (c *Conn) setShutWaitLocked() {
	c.stage = connShutWait
	c.shutWait.Store(true)
}

// drainForClose reads the connection while Shutdown waits for the peer's
// close frame, dropping messages. Shutdown acquired the read side for it.
func (c *Conn) drainForClose() {
	defer c.wg.Done()
	defer c.releaseRead()
	c.rd.ctx = context.Background()
	for {
		if _, err := c.nextLocked(); err != nil {
			if c.rd.err == nil {
				c.readFailed(err)
			}
			break
		}
	}
	c.mu.Lock()
	c.readDone = true
	t := c.shutTask
	c.mu.Unlock()
	t.Notify()
}

// peerClose handles the peer's close frame with payload p: it checks it,
// answers it with the same status code unless this side sent its close
// frame already, and returns the *CloseError reads end with.
func (c *Conn) peerClose(p []byte) error {
	code := ws.StatusNoStatusRcvd
	var reason string
	if len(p) == 1 {
		return c.fail(ws.StatusProtocolError, fmt.Errorf("%w: a close frame with a 1-byte payload", ErrProtocol))
	}
	if len(p) >= 2 {
		code = ws.StatusCode(binary.BigEndian.Uint16(p))
		if !connValidCloseCode(code) {
			return c.fail(ws.StatusProtocolError, fmt.Errorf("%w: close status code %d", ErrProtocol, code))
		}
		if !utf8.Valid(p[2:]) {
			return c.fail(ws.StatusInvalidFramePayloadData, fmt.Errorf("%w in a close reason", ErrInvalidUTF8))
		}
		reason = string(p[2:])
	}
	ce := &CloseError{Code: code, Reason: reason}
	c.rd.err = ce
	c.mu.Lock()
	c.peerClosed = true
	if c.closeCode == 0 {
		c.closeCode = code
	}
	answer := !c.closeQueued && !c.done
	c.closeQueued, c.shutBegan = true, true
	c.readerClosing = answer
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	t := c.shutTask
	c.mu.Unlock()
	t.Notify()
	if answer {
		c.closeAndEnd(p[:min(len(p), 2)], nil) // p is never nil: an empty echo is sent

	}
	return ce
}

// fail ends the connection on bad input from the peer: every later read
// returns err; it is logged, once; a close frame with code is sent unless
// one was; then the connection is closed.
func (c *Conn) fail(code ws.StatusCode, err error) error {
	c.rd.err = err
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode = code
	}
	send := !c.closeQueued && !c.done
	c.closeQueued, c.shutBegan = true, true
	c.readerClosing = !c.done
	logIt := !c.logged
	c.logged = true
	c.mu.Unlock()
	if logIt {
		c.log.Warn("wsconn: closing the connection on bad input",
			"remote", c.conn.RemoteAddr().String(), "code", int(code), "err", err)
	}
	var body []byte
	if send {
		body = binary.BigEndian.AppendUint16(nil, uint16(code))
	}
	c.closeAndEnd(body, err)
	return err
}

// closeAndEnd sends a close frame with payload body (none when body is
// nil), flushes it and the end of the stream, all within CloseTimeout,
// then closes the connection, which ends with err (nil: cleanly).
func (c *Conn) closeAndEnd(body []byte, err error) {
	if body != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.closeTimeout)
		_, werr := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
			var wake [cwSlots]*asyncio.Task
			r, err := c.closeFrame(t, cwSlotReader, body, &wake)
			cwNotify(wake)
			return r, err
		})
		if werr == nil {
			_, werr = asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
				return c.w.cwPollFlush(t, cwSlotReader)
			})
		}
		if werr == nil {
			_, _ = asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
				return c.w.cwShutdown(t, cwSlotReader)
			})
		}
		cancel()
	}
	c.mu.Lock()
	t := c.endLocked(err)
	c.mu.Unlock()
	c.w.Close()
	t.Notify()
}

// endLocked marks the connection closed, ending with err, and returns
// Shutdown's task, to notify once unlocked; the caller also closes the
// ConnWriter then.
func (c *Conn) endLocked(err error) *asyncio.Task {
	if c.done {
		return nil
	}
	c.done, c.doneErr = true, err
	c.closeQueued, c.shutBegan = true, true
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	return c.shutTask
}

// readFailed ends the connection after a read error err, which every
// later read returns.
func (c *Conn) readFailed(err error) error {
	c.mu.Lock()
	switch {
	case c.timedOut:
		err = c.closeTimeoutErr()
	case c.done && c.doneErr != nil:
		err = c.doneErr
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		err = errConnEOF
	default:
		err = fmt.Errorf("wsconn: read: %w", err)
	}
	if !c.done && c.closeCode == 0 {
		c.closeCode = ws.StatusAbnormalClosure
	}
	t := c.endLocked(err)
	c.mu.Unlock()
	c.rd.err = err
	c.w.Close()
	t.Notify()
	return err
}

// Close closes the connection at once, without a closing handshake:
// frames not yet sent are dropped ([Conn.Undelivered] counts their bytes),
// waiting writes fail and a blocked read returns. Close waits for the
// goroutines of the Conn to exit. Closing again does nothing.
func (c *Conn) Close() error {
	c.mu.Lock()
	t := c.endLocked(net.ErrClosed)
	c.mu.Unlock()
	err := c.w.Close()
	c.wg.Wait()
	t.Notify()
	return err
}
