package wsconn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"unicode/utf8"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/frame"
)

// closeState is how far the closing handshake got. It only moves forward,
// through the transitions named below, each under c.mu.
type closeState uint8

const (
	// stateOpen: messages flow both ways.
	stateOpen closeState = iota
	// stateClosing: our close frame is chosen (Shutdown began, or the
	// peer's close, bad input or silence ends the connection) and waits
	// to be queued; data writes fail.
	stateClosing
	// stateCloseQueued: our close frame is queued after every frame
	// written before it; the queue is being flushed.
	stateCloseQueued
	// stateCloseSent: our close frame left; the peer's close is awaited,
	// at most CloseTimeout.
	stateCloseSent
	// stateEnding: the handshake is over or timed out; the end of the
	// stream (FIN, close_notify) is being sent.
	stateEnding
	// stateClosed: the socket is closed.
	stateClosed
)

// beginCloseLocked chooses our close frame: stateOpen -> stateClosing.
// Writes waiting for room are woken to see that they now fail.
func (c *Conn) beginCloseLocked(code StatusCode, reason string, wake *asyncio.Wakeups) {
	if c.state != stateOpen {
		return
	}
	c.state = stateClosing
	c.closingLocked()
	c.cl.code, c.cl.reason = code, reason
	c.out.WakeAll(wake)
	// The whole closing handshake is bounded, also when the socket is
	// full and the close frame cannot even be queued.
	c.cl.by = now() + int64(c.cfg.closeTimeout)
	c.armLocked()
}

// closingLocked makes sure the closing state exists.
func (c *Conn) closingLocked() *closing {
	if c.cl == nil {
		c.cl = new(closing)
	}
	return c.cl
}

// queueCloseLocked queues our close frame: stateClosing ->
// stateCloseQueued. It reports false when the frame waits for room (t is
// notified).
func (c *Conn) queueCloseLocked(t *asyncio.Task, wake *asyncio.Wakeups) (bool, error) {
	var body [frame.MaxControlPayload]byte
	n := 0
	if c.cl.code != StatusNoStatusRcvd {
		n = frame.ClosePayload(&body, uint16(c.cl.code), c.cl.reason)
	}
	ok, err := c.controlLocked(t, frame.OpClose, body[:n], wake)
	if ok && err == nil {
		c.state = stateCloseQueued
	}
	return ok, err
}

// closeSentLocked records that our close frame left: stateCloseQueued ->
// stateCloseSent (the handshake's deadline was set when it began).
func (c *Conn) closeSentLocked() { c.state = stateCloseSent }

// endingLocked ends the handshake: stateCloseSent -> stateEnding.
func (c *Conn) endingLocked() { c.state = stateEnding }

// closedLocked records the end of the connection, with err (nil: a clean
// closing handshake): any state -> stateClosed. The caller closes the
// socket once c.mu is released, and wakes the waiters.
func (c *Conn) closedLocked(err error) bool {
	if c.state == stateClosed {
		return false
	}
	c.state = stateClosed
	c.endErr = err
	c.flags.Or(flagDoomed)
	c.stopTimerLocked()
	if c.treg != nil {
		c.treg.StopTimer()
	}
	return true
}

// Shutdown closes the connection gracefully with status 1000 (normal
// closure): see [Conn.ShutdownWith].
func (c *Conn) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return c.ShutdownWith(t, StatusNormalClosure, "")
}

// ShutdownCode is [Conn.ShutdownWith] with the code as an int: the coded
// close through which package shutdown closes any writer with a status
// code.
func (c *Conn) ShutdownCode(t *asyncio.Task, code int, reason string) (asyncio.Async[struct{}], error) {
	if code < 0 || code > 0xffff {
		return asyncio.NotReady[struct{}](), fmt.Errorf("wsconn: close status code %d may not be sent", code)
	}
	return c.ShutdownWith(t, StatusCode(code), reason)
}

// ShutdownWith closes the connection gracefully. It works by first
// queueing a close frame with code and reason after every frame written
// before, then flushing, then waiting for the peer's close frame, at most
// [Options].CloseTimeout, then sending the end of the stream (TCP FIN,
// TLS close_notify) and closing the connection.
//
// While it waits it reads the connection itself, dropping messages, when
// no read is in progress; when the application reads, that read sees the
// peer's close instead (a *[CloseError]). Writes fail with
// [asyncio.ErrShutdown] from the first call on. A NotReady ShutdownWith
// resumes when called again, whatever its arguments, and sends one close
// frame; after Ready it answers Ready at once. When the peer does not
// answer in time it closes the connection anyway and fails with an error
// that wraps [os.ErrDeadlineExceeded]. Errors are sticky.
//
// code must be one a close frame may carry (1000-1003, 1007-1014,
// 3000-4999), and reason at most 123 bytes.
func (c *Conn) ShutdownWith(t *asyncio.Task, code StatusCode, reason string) (asyncio.Async[struct{}], error) {
	if !frame.ValidCloseCode(uint16(code)) {
		return asyncio.NotReady[struct{}](), fmt.Errorf("wsconn: close status code %d may not be sent", code)
	}
	if err := frame.CheckReason(reason); err != nil {
		return asyncio.NotReady[struct{}](), fmt.Errorf("wsconn: %w", err)
	}
	var wake asyncio.Wakeups
	c.mu.Lock()
	c.beginCloseLocked(code, reason, &wake)
	c.mu.Unlock()
	wake.Notify()
	ready, err := c.drive(t)
	return unit(ready, err)
}

// drive moves the closing handshake on as far as it can without waiting,
// and answers Ready once the connection is closed; otherwise t is
// notified when it can go on. Any number of goroutines may drive it.
func (c *Conn) drive(t *asyncio.Task) (bool, error) {
	for {
		var wake asyncio.Wakeups
		c.mu.Lock()
		ready, read, closeNow, err := c.stepLocked(t, &wake)
		c.mu.Unlock()
		wake.Notify()
		if closeNow {
			c.closeSocket()
		}
		if !read {
			return ready, err
		}
		// Waiting for the peer's close with no read in progress: read
		// here, dropping messages, until it comes or the read waits.
		if !c.readForClose(t) {
			return false, nil
		}
	}
}

// stepLocked runs the transitions that can run now. read asks the caller
// to read for the peer's close and step again; closeNow to close the
// socket.
func (c *Conn) stepLocked(t *asyncio.Task, wake *asyncio.Wakeups) (ready, read, closeNow bool, err error) {
	for {
		switch c.state {
		case stateOpen:
			return false, false, false, errors.New("wsconn: no shutdown began")
		case stateClosing:
			ok, err := c.queueCloseLocked(t, wake)
			if err != nil {
				return false, false, c.closedLocked(err), err
			}
			if !ok {
				return false, false, false, nil
			}
		case stateCloseQueued:
			c.flushTLSLocked()
			ok, err := c.out.PollFlush(t, wake)
			if err != nil {
				err = c.writeFailedLocked(err)
				return false, false, c.closedLocked(err), err
			}
			if !ok {
				return false, false, false, nil
			}
			c.closeSentLocked()
		case stateCloseSent:
			if !c.peerDone && !c.timedOut && !c.failing() {
				if !c.rd.held.Load() {
					return false, true, false, nil // read for it; the read registers t
				}
				// The reader in progress will see it; it notifies t when
				// it does, or when it stops reading.
				c.cl.wait.Add(t)
				c.flags.Or(flagWaiting)
				return false, false, false, nil
			}
			c.endingLocked()
		case stateEnding:
			if c.peerDone || c.failing() {
				if c.tls != nil && !c.notified {
					c.notified = true
					c.flushTLSLocked()
					_ = c.tls.conn.CloseWrite() // close_notify, into the queue before the FIN
				}
				ok, err := c.out.Shutdown(t, wake)
				if err == nil && !ok {
					return false, false, false, nil
				}
			}
			var end error
			switch {
			case c.endErr != nil:
				end = c.endErr
			case !c.peerDone:
				end = c.closeTimeoutErr()
			}
			c.closedLocked(end)
			c.takeShutWaitLocked(wake)
			return end == nil, false, true, end
		case stateClosed:
			if c.endErr != nil {
				return false, false, false, c.endErr
			}
			return true, false, false, nil
		}
	}
}

// failing reports whether the connection ends on an error of its own
// (bad input, silence): it closes once its close frame is out, without
// waiting for the peer's.
func (c *Conn) failing() bool { return c.endErr != nil }

// closeTimeoutErr says why a closing handshake that ran out of time
// ended; c.mu is held.
func (c *Conn) closeTimeoutErr() error {
	if c.state < stateCloseSent {
		return fmt.Errorf("wsconn: close: the peer took no close frame within %v: %w", c.cfg.closeTimeout, os.ErrDeadlineExceeded)
	}
	return fmt.Errorf("wsconn: close: no close frame from the peer within %v: %w", c.cfg.closeTimeout, os.ErrDeadlineExceeded)
}

// readForClose reads, dropping messages, while a shutdown waits for the
// peer's close and no one else reads. It reports whether the shutdown
// should step again now.
func (c *Conn) readForClose(t *asyncio.Task) bool {
	if !c.rd.held.CompareAndSwap(false, true) {
		return true // a reader came: stepping again waits for it
	}
	defer c.releaseRead()
	for {
		_, ready, err := c.readHeld(t, false)
		switch {
		case err != nil:
			return true // the peer's close, or the end: step again
		case !ready:
			return false // t is notified when bytes come
		}
	}
}

// takeShutWaitLocked adds the shutdowns waiting for the peer's close or
// the read side to wake.
func (c *Conn) takeShutWaitLocked(wake *asyncio.Wakeups) {
	if c.cl != nil {
		c.cl.wait.TakeInto(wake)
		c.flags.And(^uint32(flagWaiting))
	}
}

// peerClose handles the peer's close frame with payload p: it checks it,
// answers it with the same status code unless our close frame was chosen
// already, and makes every later read return the *CloseError. It reports
// false when the answer waits for room (t is notified); the frame is then
// read again.
func (c *Conn) peerClose(t *asyncio.Task, p []byte) (bool, error) {
	code := StatusNoStatusRcvd
	var reason string
	switch {
	case len(p) == 1:
		return true, c.fail(StatusProtocolError, fmt.Errorf("%w: a close frame with a 1-byte payload", ErrProtocol))
	case len(p) >= 2:
		code = StatusCode(binary.BigEndian.Uint16(p))
		if !frame.ValidCloseCode(uint16(code)) {
			return true, c.fail(StatusProtocolError, fmt.Errorf("%w: close status code %d", ErrProtocol, code))
		}
		if !utf8.Valid(p[2:]) {
			return true, c.fail(StatusInvalidPayload, fmt.Errorf("%w in a close reason", ErrInvalidUTF8))
		}
		reason = string(p[2:])
	}
	var wake asyncio.Wakeups
	c.mu.Lock()
	if c.state == stateOpen {
		c.beginCloseLocked(code, "", &wake)
		ok, err := c.queueCloseLocked(t, &wake)
		if err == nil && !ok {
			// Not answered: read it again later. The close that began
			// took the writers waiting for room from the queue; they
			// poll again and wait anew.
			c.state, c.cl = stateOpen, nil
			c.mu.Unlock()
			wake.Notify()
			return false, nil
		}
	}
	c.peerDone = true
	c.closingLocked().peerCode = code
	c.takeShutWaitLocked(&wake)
	c.mu.Unlock()
	wake.Notify()
	ce := &CloseError{Code: code, Reason: reason}
	c.rd.err = ce
	c.endLater(c.rd.self)
	return true, ce
}

// fail ends the connection on bad input from the peer: every later read
// returns err; it is logged, once; a close frame with code is sent unless
// one was, and the connection closes once it is out.
func (c *Conn) fail(code StatusCode, err error) error {
	c.rd.err = err
	var wake asyncio.Wakeups
	c.mu.Lock()
	logIt := !c.logged
	c.logged = true
	c.beginCloseLocked(code, "", &wake)
	if c.endErr == nil {
		c.endErr = err
	}
	c.flags.Or(flagDoomed)
	c.mu.Unlock()
	wake.Notify()
	if logIt {
		c.cfg.log.Warn("wsconn: closing the connection on bad input",
			"remote", c.out.Conn().RemoteAddr().String(), "code", int(code), "err", err)
	}
	c.endLater(c.rd.self)
	return err
}

// doomedErr is what a read returns once the connection ended without the
// reader: idleness, a closing handshake that timed out, or Close.
func (c *Conn) doomedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.timedOut:
		return c.closeTimeoutErr()
	case c.endErr != nil:
		return c.endErr
	case c.state == stateClosed:
		return net.ErrClosed
	}
	return nil
}

// readFailed ends the connection after a read error err, which every
// later read returns. At the end of the stream without a close frame the
// peer may still read: what was written goes out first, then the end of
// the stream, as in a closing handshake without the close frames. Any
// other error closes the connection at once.
func (c *Conn) readFailed(err error) error {
	c.mu.Lock()
	eof := false
	switch {
	case c.timedOut:
		err = c.closeTimeoutErr()
	case c.state == stateClosed && c.endErr != nil:
		err = c.endErr
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		err, eof = errConnEOF, true
	case errors.Is(err, net.ErrClosed) && c.state == stateClosed:
		err = net.ErrClosed
	default:
		err = fmt.Errorf("wsconn: read: %w", err)
	}
	var wake asyncio.Wakeups
	closeNow := false
	if eof && c.state != stateClosed {
		if c.endErr == nil {
			c.endErr = err
		}
		c.flags.Or(flagDoomed)
		if c.state < stateEnding {
			c.out.WakeAll(&wake)
			c.state = stateEnding
			c.closingLocked().by = now() + int64(c.cfg.closeTimeout)
			c.armLocked()
		}
	} else {
		closeNow = c.closedLocked(err)
	}
	c.takeShutWaitLocked(&wake)
	c.mu.Unlock()
	c.rd.err = err
	wake.Notify()
	switch {
	case closeNow:
		c.closeSocket()
	case eof:
		c.endLater(c.rd.self)
	}
	return err
}

// writeFailedLocked is the error that ends a connection whose writes
// failed.
func (c *Conn) writeFailedLocked(err error) error {
	if c.endErr != nil {
		return c.endErr
	}
	return err
}

// endLater finishes the closing handshake without the caller waiting:
// at once when the socket takes the close frame, else on a goroutine
// that exists until the handshake is over, at most CloseTimeout. A
// blocking read (self) finishes it itself before it returns.
func (c *Conn) endLater(self bool) {
	if ready, err := c.drive(nil); ready || err != nil || self {
		return
	}
	c.mu.Lock()
	start := !c.finisher && c.state != stateClosed && !c.served
	c.finisher = c.finisher || start
	if start {
		c.blocking().wg.Add(1)
	}
	c.mu.Unlock()
	if start {
		go c.finishClose()
	}
}

// finishClose is the goroutine of endLater.
func (c *Conn) finishClose() {
	defer c.blk.Load().wg.Done()
	c.finishClosing()
}

// finishClosing drives a closing handshake that began to its end, at most
// CloseTimeout, and then closes the connection.
func (c *Conn) finishClosing() {
	c.mu.Lock()
	open := c.state == stateOpen || c.state == stateClosed
	c.mu.Unlock()
	if open {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.closeTimeout)
	defer cancel()
	_, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
		ready, err := c.drive(t)
		return unit(ready, err)
	})
	if err != nil {
		c.abort(err)
	}
}

// Close closes the connection at once, without a closing handshake:
// frames not yet sent are dropped ([Conn.Undelivered] counts their
// bytes), waiting writes fail and a read in progress returns. Close waits
// for the goroutines of the Conn to exit. Closing again does nothing.
func (c *Conn) Close() error {
	err := c.abort(net.ErrClosed)
	c.waitGoroutines()
	return err
}

// abort closes the connection at once, ending it with err unless it
// ended already.
func (c *Conn) abort(err error) error {
	c.mu.Lock()
	closeNow := c.closedLocked(err)
	var wake asyncio.Wakeups
	c.takeShutWaitLocked(&wake)
	c.mu.Unlock()
	wake.Notify()
	if !closeNow {
		return nil
	}
	return c.closeSocket()
}

// closeSocket closes the socket, once: it leaves the reactor first, then
// the send queue closes the connection, and the readers are woken.
func (c *Conn) closeSocket() error {
	c.rmu.Lock()
	reg := c.reg
	c.reg = nil
	c.rmu.Unlock()
	if reg != nil {
		reg.Close()
	}
	err := c.out.Close()
	if c.tls != nil {
		c.mu.Lock()
		c.tls.drop()
		c.mu.Unlock()
	}
	c.releaseCompression()
	c.wakeReaders()
	return err
}

// releaseCompression gives back the compressor and, unless a reader holds
// the read side (its next read releases it), the decompressor: with
// context takeover they hold most of a megabyte, which a closed Conn
// that the application keeps must not.
func (c *Conn) releaseCompression() {
	if c.z == nil {
		return
	}
	c.mu.Lock()
	c.z.w.Release()
	c.mu.Unlock()
	if c.rd.held.CompareAndSwap(false, true) {
		c.z.r.Release()
		c.releaseRead()
	}
}
