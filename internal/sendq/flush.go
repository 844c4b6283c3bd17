package sendq

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/socket"
)

// PollFlush answers Ready when every accepted byte has been written to the
// connection. Otherwise it writes what the socket takes now and answers
// NotReady; t is notified when the flush can go on.
func (w *Writer) PollFlush(t *asyncio.Task, wake *asyncio.Wakeups) (ready bool, err error) {
	w.mu.Lock()
	ready, err = w.flushLocked(t, wake)
	w.mu.Unlock()
	return ready, err
}

func (w *Writer) flushLocked(t *asyncio.Task, wake *asyncio.Wakeups) (bool, error) {
	if w.err != nil {
		return false, w.err
	}
	if w.pendingLocked() > 0 && w.sock != nil && !w.busy {
		if w.drainLocked() || w.err != nil {
			w.waiters.TakeInto(wake)
		}
	}
	if w.err != nil {
		return false, w.err
	}
	if w.pendingLocked() == 0 {
		return true, nil
	}
	w.waiters.Add(t)
	w.startLocked()
	w.notReady++
	return false, nil
}

// Kick starts sending the pending bytes without waiting for them: a write
// now if the socket takes it, else a flush that goes on by itself. A
// connection kicks before its read waits, so that replies to everything
// read so far leave together.
func (w *Writer) Kick(wake *asyncio.Wakeups) {
	w.mu.Lock()
	if w.kickLocked() {
		w.waiters.TakeInto(wake)
	}
	w.mu.Unlock()
}

// kickLocked reports whether the waiting tasks are to be woken: it wrote
// bytes, or the connection failed (no flush will run to tell them).
func (w *Writer) kickLocked() (wake bool) {
	if w.err != nil || w.busy || w.pendingLocked() == 0 {
		return false
	}
	if w.sock != nil {
		wake = w.drainLocked() || w.err != nil
		if w.err != nil || w.pendingLocked() == 0 {
			return wake
		}
	}
	w.startLocked()
	return wake
}

// drainLocked writes pending bytes to the socket from the caller's
// goroutine until the socket would block or the queue is empty, and
// reports whether it wrote any. It must not run while the flush goroutine
// does (w.busy).
func (w *Writer) drainLocked() bool {
	wrote, _ := w.writevLocked()
	return wrote > 0
}

// writevLocked writes the queue to the socket until it is empty or would
// block (again), and returns how many bytes it wrote. An error is stored
// in w.err.
func (w *Writer) writevLocked() (wrote int, again bool) {
	var v [socket.MaxVec][]byte
	for w.err == nil && w.pendingLocked() > 0 {
		k := w.gatherLocked(&v)
		n, err := w.sock.Writev(v[:k])
		w.syscalls++
		switch {
		case err == socket.ErrWouldBlock:
			return wrote, true
		case err != nil:
			w.failLocked(err)
			return wrote, false
		case n == 0:
			w.err = asyncio.ErrWriteZero
			return wrote, false
		}
		w.consumeLocked(n)
		wrote += n
	}
	return wrote, false
}

func (w *Writer) failLocked(err error) {
	if w.err == nil {
		w.err = wrapErr(err)
	}
}

// SetEdged says that a reactor reports the socket's writable edges
// (through [Writer.Edge]): a full socket then waits for the next edge
// instead of a goroutine.
func (w *Writer) SetEdged() {
	w.mu.Lock()
	w.edged = w.sock != nil
	w.mu.Unlock()
}

// Edge is what the reactor calls on each writable edge of the socket: it
// goes on writing after the socket had no room. The socket said it would
// block under the lock that set awaiting, so an edge that comes later
// finds awaiting set.
func (w *Writer) Edge() {
	w.mu.Lock()
	var wake asyncio.Wakeups
	if w.awaiting && !w.busy {
		wrote, again := w.writevLocked()
		w.awaiting = again && w.err == nil && !w.closed
		if wrote > 0 || w.err != nil {
			w.waiters.TakeInto(&wake)
		}
	}
	w.mu.Unlock()
	wake.Notify()
}

// startLocked makes sure the pending bytes go on by themselves: over a
// socket that a reactor watches, by its next writable edge (every caller
// found the socket full under the lock it holds); over another socket, by
// a goroutine that waits until it is writable and writes the queue out;
// over any other connection, by a goroutine that writes the queue with
// the connection's Write. The goroutine exits when the queue is empty, so
// an idle writer has none.
func (w *Writer) startLocked() {
	if w.busy || w.closed || w.err != nil {
		return
	}
	if w.edged {
		w.awaiting = true
		return
	}
	w.busy = true
	w.wg.Add(1)
	if w.sock != nil {
		go w.wait()
	} else {
		go w.flusher()
	}
}

// wait is the flush goroutine over a socket that no reactor watches: it
// parks in the runtime's poller until the socket is writable, writes
// what it can, and exits once the queue is empty.
func (w *Writer) wait() {
	defer w.wg.Done()
	var wake asyncio.Wakeups
	for {
		if w.timeout > 0 {
			_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		}
		err := w.sock.WaitWritable()
		w.mu.Lock()
		if err != nil && w.err == nil && !w.closed {
			w.err = w.flushErrLocked(err)
		}
		again := false
		if w.err == nil && !w.closed {
			var wrote int
			wrote, again = w.writevLocked()
			if wrote > 0 {
				w.waiters.TakeInto(&wake)
			}
		}
		if !again || w.err != nil || w.closed {
			if w.timeout > 0 {
				_ = w.conn.SetWriteDeadline(time.Time{})
			}
			w.busy = false
			w.exitLocked(&wake)
			return
		}
		w.mu.Unlock()
		wake.Notify()
	}
}

// flusher is the flush goroutine over a connection without a socket of
// its own (TLS, pipes): it writes the queue with blocking Writes, one
// segment at a time, then sends the end when Shutdown asked for it.
func (w *Writer) flusher() {
	defer w.wg.Done()
	var v [socket.MaxVec][]byte
	var wake asyncio.Wakeups
	w.mu.Lock()
	for w.err == nil && !w.closed {
		if w.gatherLocked(&v) == 0 {
			if w.state != stateShutting {
				break
			}
			w.mu.Unlock()
			err := w.end()
			w.mu.Lock()
			if err != nil {
				w.failLocked(err)
			}
			if w.err == nil {
				w.state = stateShut
			}
			break
		}
		seg := v[0]
		clear(v[:])
		w.mu.Unlock()
		if w.timeout > 0 {
			_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		}
		n, err := w.conn.Write(seg)
		w.mu.Lock()
		w.syscalls++
		if w.closed {
			break
		}
		if n > 0 {
			w.consumeLocked(n)
		}
		switch {
		case err != nil && w.err == nil:
			w.err = w.flushErrLocked(err)
		case n == 0 && err == nil:
			w.err = asyncio.ErrWriteZero
		}
		w.waiters.TakeInto(&wake)
		w.mu.Unlock()
		wake.Notify()
		w.mu.Lock()
	}
	w.busy = false
	w.exitLocked(&wake)
}

// exitLocked ends a flush goroutine: it frees the queue of a closed
// writer, which the goroutine may have been writing from, unlocks, and
// notifies every waiting task.
func (w *Writer) exitLocked(wake *asyncio.Wakeups) {
	if w.closed {
		w.releaseLocked()
	}
	w.waiters.TakeInto(wake)
	w.mu.Unlock()
	wake.Notify()
}

// end sends the connection's end: TLS close_notify or a FIN where it has
// a half-close, else it closes the connection.
func (w *Writer) end() error {
	if tc, ok := w.conn.(*tls.Conn); ok && !tc.ConnectionState().HandshakeComplete {
		if err := tc.Handshake(); err != nil {
			return err
		}
	}
	if cw, ok := w.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return w.conn.Close()
}

// flushErrLocked is the sticky error for a flush that failed with err.
func (w *Writer) flushErrLocked(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("wsconn: flush: %d bytes not delivered: no progress for %v: %w",
			w.pendingLocked(), w.timeout, err)
	}
	return wrapErr(err)
}

func wrapErr(err error) error {
	if errors.Is(err, asyncio.ErrWriteZero) {
		return err
	}
	return fmt.Errorf("wsconn: %w", err)
}

// Shutdown flushes every accepted byte, then sends the connection's end:
// a FIN over TCP and Unix sockets, close_notify over TLS (CloseWrite), or
// a Close where the connection has no half-close. Writes fail with
// [asyncio.ErrShutdown] from the first call on. A NotReady Shutdown
// resumes when called again and sends the end once; after Ready it
// answers Ready at once.
func (w *Writer) Shutdown(t *asyncio.Task, wake *asyncio.Wakeups) (ready bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == stateShut {
		return true, nil
	}
	if w.err != nil {
		return false, w.err
	}
	if w.state == stateOpen {
		// Writes waiting for room will now fail: wake them to see that.
		w.waiters.TakeInto(wake)
		w.state = stateShutting
	}
	if w.sock != nil && !w.busy {
		ready, err := w.flushLocked(t, wake)
		if !ready || err != nil {
			return ready, err
		}
		if err := w.sock.CloseWrite(); err != nil {
			w.err = wrapErr(err)
			return false, w.err
		}
		w.state = stateShut
		return true, nil
	}
	w.waiters.Add(t)
	w.startLocked()
	w.notReady++
	return false, nil
}

// Close closes the connection at once. Bytes not yet written are dropped
// and counted by [Writer.Undelivered]; waiting tasks are notified and
// every later call fails with [net.ErrClosed]. Close waits for the flush
// goroutine to exit. Closing again does nothing and returns nil.
//
// Over a socket, when the writer's end was sent after every byte
// (Shutdown was Ready), Close first discards input the peer sent, so that
// the close is not a reset that destroys what the kernel still sends.
// Otherwise, if the kernel's send queue still holds bytes, the close is a
// reset (they would reach a peer that did not read them in time, or not
// at all) and they count as undelivered too.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	clean := w.state == stateShut && w.err == nil
	if w.err == nil {
		w.err = net.ErrClosed
	}
	if !w.busy {
		w.releaseLocked()
	}
	var wake asyncio.Wakeups
	w.waiters.TakeInto(&wake)
	w.awaiting = false
	w.mu.Unlock()
	wake.Notify()
	if s := w.sock; s != nil {
		if clean {
			s.DiscardInput()
		} else if n := s.OutQueue(); n > 0 {
			w.mu.Lock()
			w.reset = int64(n)
			w.mu.Unlock()
			s.Reset()
		}
	}
	var err error
	switch c := w.conn.(type) {
	case *socket.Conn:
		err = c.Close() // gives its listener's place back too
	default:
		if w.sock != nil {
			err = w.sock.Close()
		} else {
			err = closeConn(w.conn)
		}
	}
	w.wg.Wait()
	return err
}

// closeConn closes c without a goodbye: for TLS, the transport goes
// first, so Close does not wait to send close_notify.
func closeConn(c net.Conn) error {
	if tc, ok := c.(*tls.Conn); ok {
		err := tc.NetConn().Close()
		_ = tc.Close()
		return err
	}
	return c.Close()
}

// releaseLocked drops the queue and gives its storage back.
func (w *Writer) releaseLocked() {
	w.ring.Reset()
	w.sp = nil
	w.prio = nil
}
