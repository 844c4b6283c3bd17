package gorillaws

import (
	"crypto/tls"
	"io"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/pool"
)

// state is where a Writer is in the life of its connection. It only moves
// forward, through the transitions below.
type state uint8

const (
	// stateOpen: messages are accepted.
	stateOpen state = iota
	// stateClosing: a close frame is queued (the Writer's, its answer to
	// the peer's, or gorilla's own): writes are refused. beginCloseLocked.
	stateClosing
	// stateCloseSent: the close frame was written; the connection closes
	// when the peer's close arrives or CloseTimeout passes.
	// closeSentLocked.
	stateCloseSent
	// stateClosingConn: the connection is being closed, gracefully by
	// closeConn or at once by Close.
	stateClosingConn
	// stateClosed: the connection is closed.
	stateClosed
)

// Shutdown is ShutdownWith(t, websocket.CloseNormalClosure, "").
func (w *Writer) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return w.ShutdownWith(t, websocket.CloseNormalClosure, "")
}

// ShutdownWith closes the connection gracefully: first it refuses new
// writes ([asyncio.ErrShutdown]) and writes every queued message, then it
// sends a close frame with code and reason, then it waits for the peer's
// close frame for up to [Options.CloseTimeout], and then it closes the
// connection. It is Ready when the connection is closed, also when the
// peer did not answer in time: every message was written by then.
//
// The peer's close frame is read by the application's read loop, whose
// read returns a *[websocket.CloseError] for it, or, with
// [Options.ReadClose] or once the application's reads through
// [Writer.NextReader] or [Writer.AppendMessage] ended, by the Writer
// itself. If the peer closed first, the Writer answered with its own
// close frame echoing the peer's code, and ShutdownWith waits for that
// answer to be written; likewise if gorilla queued a close frame of its
// own on bad input.
//
// A NotReady ShutdownWith resumes when called again, whatever its
// arguments: the first call chooses the close frame. After Ready it is
// Ready at once. A write error before the close frame is written is
// sticky, as is [net.ErrClosed] when [Writer.Close] cut the shutdown
// short. code 1005 (websocket.CloseNoStatusReceived) sends a close frame
// with no code; other codes that may not be sent, and reasons longer than
// 123 bytes or not UTF-8, are refused without starting the shutdown.
func (w *Writer) ShutdownWith(t *asyncio.Task, code int, reason string) (asyncio.Async[struct{}], error) {
	if err := checkClose(code, reason); err != nil {
		return asyncio.NotReady[struct{}](), err
	}
	w.mu.Lock()
	if w.err != nil {
		defer w.mu.Unlock()
		return asyncio.NotReady[struct{}](), w.err
	}
	if w.state == stateClosed {
		w.mu.Unlock()
		return asyncio.Ready(struct{}{}), nil
	}
	var wake asyncio.Wakeups
	if w.state == stateOpen {
		wake = w.beginCloseLocked(closeFrame(code, reason))
	}
	w.closeWait.Add(t)
	w.mu.Unlock()
	wake.Notify()
	return asyncio.NotReady[struct{}](), nil
}

// ShutdownCode is [Writer.ShutdownWith]: the name by which a package that
// closes connections without knowing their WebSocket library finds a
// writer's coded close.
func (w *Writer) ShutdownCode(t *asyncio.Task, code int, reason string) (asyncio.Async[struct{}], error) {
	return w.ShutdownWith(t, code, reason)
}

// beginCloseLocked is the transition from stateOpen to stateClosing: it
// queues the close frame it, after every frame already queued. It returns
// the tasks waiting for room, whose writes are now refused.
func (w *Writer) beginCloseLocked(it item) asyncio.Wakeups {
	w.state = stateClosing
	w.pushLocked(it)
	return w.wakeLocked()
}

// closeSentLocked is the transition from stateClosing to stateCloseSent,
// made by the sender once the close frame is written; it unlocks w.mu.
// The connection then closes now if the peer's close came first; after
// the peer's close if nothing else reads the connection, this goroutine
// reading it; else when the application's read loop sees the peer's close
// or CloseTimeout passes.
func (w *Writer) closeSentLocked() {
	w.state = stateCloseSent
	w.dropPongsLocked()
	wake := w.wakeLocked()
	switch {
	case w.peerClosed:
		w.mu.Unlock()
		wake.Notify()
		w.closeConn()
	case w.readsCloseLocked():
		w.mu.Unlock()
		wake.Notify()
		w.awaitPeerClose()
		w.closeConn()
	default:
		w.closeTimer = time.AfterFunc(w.closeTimeout, w.closeConn)
		w.mu.Unlock()
		wake.Notify()
	}
}

// readsCloseLocked reports whether the Writer itself must read the peer's
// close: because nothing else reads the connection ([Options.ReadClose]),
// or the application's reads ended, or gorilla's reader failed.
func (w *Writer) readsCloseLocked() bool {
	return w.readClose || w.readEnded || w.readerFailed
}

// readStoppedLocked is called when the Writer learns that nothing will
// read the peer's close any more. If the close frame was sent and the
// connection waits for the peer's answer, a goroutine of the Writer reads
// it, so that the connection does not wait out CloseTimeout.
func (w *Writer) readStoppedLocked() {
	if w.state != stateCloseSent || w.peerClosed || w.closeTimer == nil {
		return
	}
	w.stopTimerLocked()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.awaitPeerClose()
		w.closeConn()
	}()
}

// awaitPeerClose reads and discards messages until the peer's close frame
// arrives, reading fails, or CloseTimeout passes. When gorilla's reader
// has failed on bad input it can no longer find the close frame: then the
// Writer ends its side of the connection (TCP FIN, or TLS close_notify)
// and waits for the peer to end its own, so that the close frame is not
// lost to a reset.
func (w *Writer) awaitPeerClose() {
	w.c.SetReadDeadline(time.Now().Add(w.closeTimeout))
	w.mu.Lock()
	failed := w.readerFailed
	w.mu.Unlock()
	for !failed {
		_, _, err := w.c.NextReader()
		switch {
		case err == nil:
			continue
		case !badInput(err):
			return // the peer's close, or the connection's end
		}
		failed = true // gorilla keeps the error and reads no more
	}
	if cw, ok := w.out.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	io.Copy(io.Discard, w.out)
}

// closeConn closes the connection gracefully once the close frame was
// written and the peer's close arrived or CloseTimeout passed, and wakes
// the tasks waiting for it. Any number of callers may race to it; the
// first closes.
func (w *Writer) closeConn() {
	w.mu.Lock()
	if w.state >= stateClosingConn {
		w.mu.Unlock()
		return
	}
	w.state = stateClosingConn
	w.stopTimerLocked()
	w.dropPongsLocked()
	w.mu.Unlock()

	w.c.Close()

	w.mu.Lock()
	w.state = stateClosed
	wake := w.wakeLocked()
	w.mu.Unlock()
	wake.Notify()
}

// Close closes the connection at once, without a close frame: a write in
// progress fails, queued messages are dropped (see [Writer.Undelivered]),
// and the Writer's goroutines have exited when Close returns. Over TLS it
// closes the transport without close_notify. Writes and a Shutdown that
// had not yet sent its close frame fail with [net.ErrClosed]; after the
// close frame was sent, Shutdown is Ready. Close is safe to call more
// than once and concurrently with anything; later calls return nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.state >= stateClosingConn {
		w.mu.Unlock()
		w.wg.Wait()
		return nil
	}
	if w.err == nil && w.state < stateCloseSent {
		w.err = net.ErrClosed
	}
	w.dropLocked()
	w.state = stateClosingConn
	w.stopTimerLocked()
	wake := w.takeAllLocked()
	w.mu.Unlock()
	wake.Notify()

	nc := w.out
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	err := nc.Close()

	w.mu.Lock()
	w.state = stateClosed
	wake = w.takeAllLocked()
	w.mu.Unlock()
	wake.Notify()
	w.wg.Wait()
	return err
}

func (w *Writer) stopTimerLocked() {
	if w.closeTimer != nil {
		w.closeTimer.Stop()
		w.closeTimer = nil
	}
}

// onClose is the connection's close handler. When the peer closes first,
// the Writer begins its shutdown with the peer's code, so that its close
// frame follows the messages already queued; when the Writer's close
// frame was already sent, the closing handshake is complete and the
// connection closes.
func (w *Writer) onClose(code int, _ string) error {
	w.mu.Lock()
	w.peerClosed = true
	var wake asyncio.Wakeups
	switch {
	case w.err != nil || w.state >= stateClosingConn:
	case w.state == stateOpen:
		if !sendableCode(code) {
			code = websocket.CloseNoStatusReceived
		}
		wake = w.beginCloseLocked(closeFrame(code, ""))
	case w.state == stateCloseSent:
		w.mu.Unlock()
		w.closeConn()
		return nil
	}
	w.mu.Unlock()
	wake.Notify()
	return nil
}

// writeRaw queues bytes that gorilla wrote to the connection itself,
// after the frames already queued (see [Upgrade]): in practice the close
// frame it sends when it reads bad input. Such a close ends the queue as
// the Writer's own would; nothing written after a close frame is sent.
func (w *Writer) writeRaw(p []byte) (int, error) {
	w.mu.Lock()
	switch {
	case w.err != nil:
		defer w.mu.Unlock()
		return 0, w.err
	case w.state >= stateClosingConn:
		w.mu.Unlock()
		return 0, net.ErrClosed
	case w.state != stateOpen:
		if code, ok := closeCode(p); ok {
			w.noteGorillaCloseLocked(code)
		}
		w.mu.Unlock()
		return len(p), nil
	}
	var wake asyncio.Wakeups
	if code, ok := closeCode(p); ok {
		it := closeFrame(code, string(p[min(4, len(p)):]))
		if code == websocket.CloseProtocolError && string(p[4:]) == gorillaBadCloseReason {
			// RFC 6455 and Autobahn 7.5.1 want 1007 (invalid payload data)
			// for a close reason that is not UTF-8, as for text.
			it = closeFrame(websocket.CloseInvalidFramePayloadData, "invalid UTF-8 in the close reason")
		}
		w.noteGorillaCloseLocked(code)
		wake = w.beginCloseLocked(it)
	} else {
		buf := pool.Get(len(p))
		it := item{frame: *buf, buf: buf, cost: max(len(p), minCost)}
		copy(it.frame, p)
		w.pushLocked(it)
	}
	w.mu.Unlock()
	wake.Notify()
	return len(p), nil
}

// gorillaBadCloseReason is the reason of the close frame gorilla sends
// when the peer's close reason is not UTF-8.
const gorillaBadCloseReason = "invalid utf8 payload in close frame"

// noteGorillaCloseLocked records that gorilla wrote a close frame with
// code by itself: with 1002 or 1009 its reader failed on bad input, and
// returns that error to every later read.
func (w *Writer) noteGorillaCloseLocked(code int) {
	if code == websocket.CloseProtocolError || code == websocket.CloseMessageTooBig {
		w.readerFailed = true
		w.readStoppedLocked()
	}
}
