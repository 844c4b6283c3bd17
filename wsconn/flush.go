package wsconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/pollws/pollws/asyncio"
)

// PollFlush answers Ready when every accepted byte has been written to
// the connection. Otherwise it writes what the socket takes now and
// answers NotReady; t is notified when the flush can go on.
func (w *ConnWriter) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return w.cwPollFlush(t, cwSlotApp)
}

// cwPollFlush is PollFlush for the task of slot.
func (w *ConnWriter) cwPollFlush(t *asyncio.Task, slot int) (asyncio.Async[struct{}], error) {
	r, wake, err := w.cwFlushWake(t, slot)
	cwNotify(wake)
	return r, err
}

// cwFlushWake is cwPollFlush that returns the tasks to notify instead of
// notifying them, for a caller that holds a lock of its own.
func (w *ConnWriter) cwFlushWake(t *asyncio.Task, slot int) (asyncio.Async[struct{}], [cwSlots]*asyncio.Task, error) {
	w.mu.Lock()
	ready, wake, err := w.cwFlushLocked(t, slot)
	w.mu.Unlock()
	return cwUnit(ready, err), wake, err
}

func cwUnit(ready bool, err error) asyncio.Async[struct{}] {
	if !ready || err != nil {
		return asyncio.NotReady[struct{}]()
	}
	return asyncio.Ready(struct{}{})
}

func (w *ConnWriter) cwFlushLocked(t *asyncio.Task, slot int) (ready bool, wake [cwSlots]*asyncio.Task, err error) {
	if w.err != nil {
		return false, wake, w.err
	}
	if w.cwPendingLocked() > 0 && w.raw != nil && !w.busy {
		if w.cwDrainLocked() || w.err != nil {
			wake = w.cwTakeTasksLocked(t)
		}
	}
	if w.err != nil {
		return false, wake, w.err
	}
	if w.cwPendingLocked() == 0 {
		return true, wake, nil
	}
	w.cwRegisterLocked(slot, t)
	w.cwStartLocked()
	w.notReady.Add(1)
	return false, wake, nil
}

// cwKick starts sending the pending bytes without waiting for them: a
// write now if the socket takes it, else a flush goroutine. A Conn kicks
// before a read waits on the socket.
func (w *ConnWriter) cwKick() {
	w.mu.Lock()
	var wake [cwSlots]*asyncio.Task
	if w.cwKickLocked() {
		wake = w.cwTakeTasksLocked(nil)
	}
	w.mu.Unlock()
	cwNotify(wake)
}

// cwKickLocked reports whether the waiting tasks are to be woken: it
// wrote bytes, or the socket failed (no flush will run to tell them).
func (w *ConnWriter) cwKickLocked() (wake bool) {
	if w.err != nil || w.busy || w.cwPendingLocked() == 0 {
		return false
	}
	if w.raw != nil {
		wake = w.cwDrainLocked() || w.err != nil
		if w.err != nil || w.cwPendingLocked() == 0 {
			return wake
		}
	}
	w.cwStartLocked()
	return wake
}

// cwDrainLocked writes pending bytes to the socket from the caller's
// goroutine until the socket would block or the queue is empty, and
// reports whether it wrote any. It must not run while the flush goroutine
// does (w.busy): that goroutine holds the socket's write lock while it
// waits.
func (w *ConnWriter) cwDrainLocked() bool {
	w.cbWrote, w.cbAgain = 0, false
	if err := w.raw.Write(w.tryFn); err != nil && w.err == nil {
		w.err = cwWrapErr(err)
	}
	return w.cbWrote > 0
}

// cwTry is tryFn: called by raw.Write with w.mu held; it never parks.
func (w *ConnWriter) cwTry(fd uintptr) bool {
	w.cbWrote, w.cbAgain = w.cwWritevLocked(fd)
	return true
}

// cwDirect is directFn: one writev of w.iov[:w.niov], with w.mu held.
func (w *ConnWriter) cwDirect(fd uintptr) bool {
	for {
		n, errno := cwWritev(fd, w.iov[:w.niov])
		w.syscalls.Add(1)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			w.cbWrote = 0
		case errno != 0:
			w.err = cwWrapErr(os.NewSyscallError("writev", errno))
		case n == 0:
			w.err = asyncio.ErrWriteZero
		default:
			w.cbWrote = n
		}
		return true
	}
}

// cwWritevLocked writes the queue to fd until it is empty or fd would
// block (again), and returns how many bytes it wrote. An error is stored
// in w.err.
func (w *ConnWriter) cwWritevLocked(fd uintptr) (wrote int, again bool) {
	for w.err == nil && w.cwPendingLocked() > 0 {
		k := w.cwGatherLocked()
		n, errno := cwWritev(fd, w.iov[:k])
		clear(w.iov[:k])
		w.syscalls.Add(1)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return wrote, true
		case errno != 0:
			w.err = cwWrapErr(os.NewSyscallError("writev", errno))
			return wrote, false
		case n == 0:
			w.err = asyncio.ErrWriteZero
			return wrote, false
		}
		w.cwConsumeLocked(n)
		wrote += n
	}
	return wrote, false
}

// cwStartLocked starts the flush goroutine unless it runs: over a socket
// it waits until the socket is writable and writes the queue out; over
// any other connection it writes the queue with the connection's Write.
// It exits when the queue is empty, so an idle writer has no goroutine.
func (w *ConnWriter) cwStartLocked() {
	if w.busy || w.closed || w.err != nil {
		return
	}
	w.busy = true
	w.wg.Add(1)
	if w.raw != nil {
		go w.cwWait()
	} else {
		go w.cwFlusher()
	}
}

// cwWait is the flush goroutine over a socket. The runtime's poller parks
// it inside raw.Write until the socket is writable.
func (w *ConnWriter) cwWait() {
	defer w.wg.Done()
	if w.timeout > 0 {
		_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	}
	err := w.raw.Write(w.waitFn)
	if w.timeout > 0 {
		_ = w.conn.SetWriteDeadline(time.Time{})
	}
	w.mu.Lock()
	w.busy = false
	if err != nil && w.err == nil && !w.closed {
		w.err = w.cwFlushErrLocked(err)
	}
	w.cwExitLocked()
}

// cwWaitWritable is waitFn: raw.Write calls it when the socket may be
// writable; it answers false to wait again.
func (w *ConnWriter) cwWaitWritable(fd uintptr) bool {
	w.mu.Lock()
	if w.err != nil || w.closed {
		w.mu.Unlock()
		return true
	}
	wrote, again := w.cwWritevLocked(fd)
	var wake [cwSlots]*asyncio.Task
	if wrote > 0 || w.err != nil {
		wake = w.cwTakeTasksLocked(nil)
		if again && w.timeout > 0 {
			_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		}
	}
	done := !again || w.err != nil
	w.mu.Unlock()
	cwNotify(wake)
	return done
}

// cwFlusher is the flush goroutine over a connection without a socket
// of its own (TLS, pipes): it writes the queue with blocking Writes, one
// segment at a time, then sends the end when Shutdown asked for it.
func (w *ConnWriter) cwFlusher() {
	defer w.wg.Done()
	w.mu.Lock()
	for w.err == nil && !w.closed {
		if w.cwGatherLocked() == 0 {
			if w.state != cwShutting {
				break
			}
			w.mu.Unlock()
			err := w.cwEnd()
			w.mu.Lock()
			if err != nil && w.err == nil {
				w.err = cwWrapErr(err)
			}
			if w.err == nil {
				w.state = cwShut
			}
			break
		}
		seg := w.iov[0]
		clear(w.iov[:])
		w.mu.Unlock()
		if w.timeout > 0 {
			_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		}
		n, err := w.conn.Write(seg)
		w.syscalls.Add(1)
		w.mu.Lock()
		if w.closed {
			break
		}
		if n > 0 {
			w.cwConsumeLocked(n)
		}
		switch {
		case err != nil && w.err == nil:
			w.err = w.cwFlushErrLocked(err)
		case n == 0 && err == nil:
			w.err = asyncio.ErrWriteZero
		}
		wake := w.cwTakeTasksLocked(nil)
		w.mu.Unlock()
		cwNotify(wake)
		w.mu.Lock()
	}
	w.busy = false
	w.cwExitLocked()
}

// cwExitLocked ends a flush goroutine: it frees the queue of a closed
// writer, which the goroutine may have been writing from, unlocks, and
// notifies every waiting task.
func (w *ConnWriter) cwExitLocked() {
	if w.closed {
		w.cwReleaseLocked()
	}
	wake := w.cwTakeTasksLocked(nil)
	w.mu.Unlock()
	cwNotify(wake)
}

// cwEnd sends the connection's end: TLS close_notify or a FIN where it
// has a half-close, else it closes the connection.
func (w *ConnWriter) cwEnd() error {
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

// cwFlushErrLocked is the sticky error for a flush that failed with err.
func (w *ConnWriter) cwFlushErrLocked(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("wsconn: flush: %d bytes not delivered: no progress for %v: %w",
			w.cwPendingLocked(), w.timeout, err)
	}
	return cwWrapErr(err)
}

func cwWrapErr(err error) error {
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
// answers Ready at once. Shutdown does not close the connection: call
// [ConnWriter.Close] when done reading too.
func (w *ConnWriter) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return w.cwShutdown(t, cwSlotShutdown)
}

// cwShutdown is Shutdown for the task of slot.
func (w *ConnWriter) cwShutdown(t *asyncio.Task, slot int) (asyncio.Async[struct{}], error) {
	r, wake, err := w.cwShutdownWake(t, slot)
	cwNotify(wake)
	return r, err
}

// cwShutdownWake is cwShutdown that returns the tasks to notify.
func (w *ConnWriter) cwShutdownWake(t *asyncio.Task, slot int) (asyncio.Async[struct{}], [cwSlots]*asyncio.Task, error) {
	w.mu.Lock()
	ready, wake, err := w.cwShutdownLocked(t, slot)
	w.mu.Unlock()
	return cwUnit(ready, err), wake, err
}

func (w *ConnWriter) cwShutdownLocked(t *asyncio.Task, slot int) (ready bool, wake [cwSlots]*asyncio.Task, err error) {
	if w.state == cwShut {
		return true, wake, nil
	}
	if w.err != nil {
		return false, wake, w.err
	}
	if w.state == cwOpen {
		// A write waiting for room will now fail: wake it to see that.
		wake[cwSlotApp] = w.cwTakeSlotLocked(cwSlotApp, t)
	}
	w.state = cwShutting
	if w.raw != nil && !w.busy {
		ready, fwake, err := w.cwFlushLocked(t, slot)
		wake = cwMergeWake(wake, fwake)
		if !ready || err != nil {
			return ready, wake, err
		}
		if err := w.conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			w.err = cwWrapErr(err)
			return false, wake, w.err
		}
		w.state = cwShut
		return true, wake, nil
	}
	w.cwRegisterLocked(slot, t)
	w.cwStartLocked()
	w.notReady.Add(1)
	return false, wake, nil
}

// Close closes the connection at once. Bytes not yet written are dropped
// ([ConnWriter.Undelivered] counts them); waiting tasks are notified and
// every later call fails with [net.ErrClosed]. Close waits for the flush
// goroutine to exit. Closing again does nothing and returns nil.
func (w *ConnWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	if w.err == nil {
		w.err = net.ErrClosed
	}
	if !w.busy {
		w.cwReleaseLocked()
	}
	wake := w.cwTakeTasksLocked(nil)
	w.mu.Unlock()
	cwNotify(wake)
	err := cwCloseConn(w.conn)
	w.wg.Wait()
	return err
}

// cwCloseConn closes c without a goodbye: for TLS, the transport goes
// first, so Close does not wait to send close_notify.
func cwCloseConn(c net.Conn) error {
	if tc, ok := c.(*tls.Conn); ok {
		err := tc.NetConn().Close()
		_ = tc.Close()
		return err
	}
	return c.Close()
}

// cwReleaseLocked drops the queue and gives its storage back.
func (w *ConnWriter) cwReleaseLocked() {
	w.ring.Reset()
	w.big = nil
	w.ctlOff, w.ctlN, w.ctlAt = 0, 0, 0
}
