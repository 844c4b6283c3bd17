package gorillaws

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/frame"
)

// ErrInvalidUTF8 is the error of a read through [Writer.NextReader] or
// [Writer.AppendMessage] that met a text message that is not UTF-8.
var ErrInvalidUTF8 = errors.New("gorillaws: text message is not valid UTF-8")

// NextReader returns the type of the next data message
// (websocket.TextMessage or BinaryMessage) and a reader of its payload,
// as the connection's NextReader does, and reports how the reads end to
// the Writer, which then reads the peer's close itself (see
// [Writer.ShutdownWith]).
//
// The reader of a text message checks that it is UTF-8 as its bytes
// arrive: at the first byte that no valid text can contain at its place
// (or at the end of a message cut inside a character) it fails with an
// error that matches [ErrInvalidUTF8], having queued close 1007 (invalid
// payload data) after the messages already queued, without waiting for
// the rest of the message.
//
// Any error ends the reads: every later call returns it. The reader is
// valid until the next call. NextReader and the reader are for one
// goroutine at a time, as gorilla's reads are; the Writer's other methods
// may be called meanwhile.
func (w *Writer) NextReader() (messageType int, r io.Reader, err error) {
	w.mu.Lock()
	err = w.readErr
	w.mu.Unlock()
	if err != nil {
		return 0, nil, err
	}
	messageType, r, err = w.c.NextReader()
	if err != nil {
		return messageType, nil, w.readFailed(err)
	}
	w.msg = messageReader{w: w, r: r, text: messageType == websocket.TextMessage}
	return messageType, &w.msg, nil
}

// AppendMessage reads the next data message, as [Writer.NextReader] does,
// appends its payload to p, and returns its type and the extended slice.
// p grows with the bytes that arrive, never by a length the peer merely
// announced; to bound the memory a connection keeps between messages,
// pass a small p again after a large message.
func (w *Writer) AppendMessage(p []byte) (messageType int, msg []byte, err error) {
	messageType, r, err := w.NextReader()
	if err != nil {
		return messageType, p, err
	}
	for {
		if len(p) == cap(p) {
			p = slices.Grow(p, max(cap(p), 512))
		}
		n, err := r.Read(p[len(p):cap(p)])
		p = p[:len(p)+n]
		switch {
		case err == io.EOF:
			return messageType, p, nil
		case err != nil:
			return messageType, p, err
		}
	}
}

// messageReader reads one message's payload through gorilla's reader,
// checking text as it arrives.
type messageReader struct {
	w    *Writer
	r    io.Reader // nil once the message ended
	text bool
	v    frame.UTF8
}

func (m *messageReader) Read(p []byte) (int, error) {
	if m.r == nil {
		m.w.mu.Lock()
		err := m.w.readErr
		m.w.mu.Unlock()
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	n, err := m.r.Read(p)
	if m.text {
		if i, ok := m.v.Check(p[:n]); !ok {
			m.r = nil
			return i, m.w.invalidText()
		}
		if err == io.EOF && !m.v.Done() {
			m.r = nil
			return n, m.w.invalidText()
		}
	}
	if err != nil {
		m.r = nil
		if err != io.EOF {
			err = m.w.readFailed(err)
		}
	}
	return n, err
}

// invalidText ends the reads with [ErrInvalidUTF8] and queues close 1007.
func (w *Writer) invalidText() error {
	err := fmt.Errorf("gorillaws: closing with 1007: %w", ErrInvalidUTF8)
	w.mu.Lock()
	w.readErr = err
	w.readEnded = true
	var wake asyncio.Wakeups
	if w.err == nil && w.state == stateOpen {
		wake = w.beginCloseLocked(closeFrame(websocket.CloseInvalidFramePayloadData, "invalid UTF-8"))
	}
	w.readStoppedLocked()
	w.mu.Unlock()
	wake.Notify()
	return err
}

// readFailed ends the reads with err, gorilla's read error. Over a
// connection upgraded elsewhere than in [Upgrade], an error on bad input
// means that gorilla has already written its close frame to the network:
// the queue is dropped, since nothing may follow that frame.
func (w *Writer) readFailed(err error) error {
	w.mu.Lock()
	w.readErr = err
	w.readEnded = true
	var wake asyncio.Wakeups
	if !w.upgraded && badInput(err) && w.err == nil && w.state < stateCloseSent {
		w.dropLocked()
		w.err = fmt.Errorf("gorillaws: gorilla closed the connection on bad input, %d bytes undelivered: %w", w.undelivered, err)
		w.state = stateCloseSent
		wake = w.takeAllLocked()
	}
	w.readStoppedLocked()
	w.mu.Unlock()
	wake.Notify()
	return err
}

// badInput reports whether err, from gorilla's reader, is bad input from
// the peer (a protocol error, a message over the read limit), rather than
// the peer's close or the connection's end.
func badInput(err error) bool {
	var ce *websocket.CloseError
	var ne net.Error
	return !errors.As(err, &ce) && !errors.As(err, &ne) &&
		!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed)
}
