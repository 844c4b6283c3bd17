package fanout

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/buf"
	"github.com/pollws/pollws/wsconn"
)

// stepBudget is how many messages one poll of a subscriber writes before
// it yields its worker to the others.
const stepBudget = 64

// kickReason is the reason of the close frame a subscriber that keeps
// falling behind gets.
const kickReason = "too slow: overtaken too often"

// Subscriber is one subscription to a topic of a [Hub]: the hub's end of
// it, which writes the topic's messages to its connection.
//
// A Subscriber is also the connection's [asyncio.AsyncWriter], so that a
// shutdown.Group can own its end: every write, flush or shutdown through
// it, and Close, first stops the hub's writes and then acts on the
// connection. Messages the hub wrote before stay queued ahead of anything
// written after.
//
// A Subscriber is safe for use by multiple goroutines.
type Subscriber struct {
	h   *Hub
	t   *topic
	c   *wsconn.Conn
	key wsconn.PrepareKey // c's
	r   *buf.Reader
	n   counters

	// mu is held while the pump polls c, so that once Stop returns the
	// pump never touches c again. It guards the pump's state.
	mu      sync.Mutex
	job     asyncio.Job   // the pump's task, as the hub's executor keeps it
	task    *asyncio.Task // the pump's, on the hub's executor
	stopped bool
	err     error                  // why the pump stopped, when it failed
	has     bool                   // msg is a message to write
	msg     wsconn.PreparedMessage // its bytes are lent by r until its next read
	notice  []byte                 // a notice of missed messages to write before msg
	nbuf    [64]byte
	dirty   bool        // messages written since the last flush
	next    uint64      // index of the next message expected
	nextOff uint64      // payload bytes of the topic's stream before it
	kick    bool        // shutting down with 1008
	behind  []time.Time // the latest overtakes, oldest first
}

var _ asyncio.AsyncWriter = (*Subscriber)(nil)

// Stop stops the hub's writes to the subscriber: it leaves the topic, and
// once Stop returns the hub does not touch its connection again. Stopping
// again does nothing.
func (s *Subscriber) Stop() {
	s.mu.Lock()
	task := s.stopLocked(nil)
	s.mu.Unlock()
	if task != nil {
		task.Notify() // its next poll ends the pump's task
	}
}

// stopLocked stops the pump with s.mu held, and returns its task, which
// is to be notified once s.mu is released, unless the pump is polling.
func (s *Subscriber) stopLocked(err error) *asyncio.Task {
	if s.stopped {
		return nil
	}
	s.stopped, s.err = true, err
	s.has, s.notice = false, nil
	s.msg.Reset(wsconn.Binary, nil)
	s.r.Close()
	s.h.remove(s)
	return s.task
}

// Write stops the hub's writes and writes p to the connection as one
// binary message, without blocking.
func (s *Subscriber) Write(p []byte) (int, error) {
	s.Stop()
	return s.c.Write(p)
}

// PollWrite stops the hub's writes and polls the connection's PollWrite.
func (s *Subscriber) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	s.Stop()
	return s.c.PollWrite(t, p)
}

// PollFlush stops the hub's writes and polls the connection's PollFlush.
func (s *Subscriber) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	s.Stop()
	return s.c.PollFlush(t)
}

// Shutdown stops the hub's writes and closes the connection gracefully
// with status 1000, as [wsconn.Conn.Shutdown] does.
func (s *Subscriber) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	s.Stop()
	return s.c.Shutdown(t)
}

// ShutdownCode stops the hub's writes and closes the connection
// gracefully with code and reason, as [wsconn.Conn.ShutdownCode] does:
// it is the coded close a shutdown.Group looks for. When the hub had
// begun closing the subscriber with 1008, that shutdown goes on.
func (s *Subscriber) ShutdownCode(t *asyncio.Task, code int, reason string) (asyncio.Async[struct{}], error) {
	s.Stop()
	return s.c.ShutdownCode(t, code, reason)
}

// Close stops the hub's writes and closes the connection at once.
func (s *Subscriber) Close() error {
	s.Stop()
	return s.c.Close()
}

// Undelivered returns the bytes written to the connection that its peer
// will not get, as [wsconn.Conn.Undelivered] counts them.
func (s *Subscriber) Undelivered() int64 { return s.c.Undelivered() }

// poll is the pump's task on the hub's executor: Ready once the pump
// stopped.
func (s *Subscriber) poll(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	more, stopped := s.step(t)
	switch {
	case stopped:
		return asyncio.Ready(struct{}{}), nil
	case more:
		t.Notify() // polled again after the subscribers waiting meanwhile
	}
	return asyncio.NotReady[struct{}](), nil
}

// done ends the pump's task: when the hub's executor closed before the
// pump stopped, it stops it.
func (s *Subscriber) done(error) { s.Stop() }

// pump is a Subscriber as the task of its pump (asyncio.Poller), which
// keeps poll and done out of the Subscriber's methods.
type pump Subscriber

func (p *pump) Poll(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	return (*Subscriber)(p).poll(t)
}

func (p *pump) Done(err error) { (*Subscriber)(p).done(err) }

// step writes what the subscriber has pending, then messages from the
// ring until it has none or the connection is full, then flushes. It
// reports whether it stopped for the budget with more to do, and whether
// the pump stopped. The executor never runs it twice at once.
func (s *Subscriber) step(t *asyncio.Task) (more, stopped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.task = t
	for i := 0; !s.stopped; i++ {
		if s.kick {
			s.pollKick(t)
			return false, s.stopped
		}
		if !s.writePending(t) {
			return false, s.stopped
		}
		if i == stepBudget {
			return true, false
		}
		f, err := s.r.PollFrame(t)
		var behind *buf.ReaderBehindError
		switch {
		case errors.As(err, &behind):
			s.overtaken()
		case err != nil: // the topic closed: the hub is closing
			s.stopLocked(nil)
		case f.Ready:
			if err := s.take(f.Value); err != nil {
				s.fail(err)
				return false, true
			}
		default:
			if s.dirty {
				r, err := s.c.PollFlush(t)
				if err != nil {
					s.fail(err)
					return false, true
				}
				s.dirty = !r.Ready
			}
			return false, false
		}
	}
	return false, true
}

// writePending writes the pending notice and message. It reports whether
// both are written; if not, the connection will notify the task, or the
// pump stopped.
func (s *Subscriber) writePending(t *asyncio.Task) bool {
	if s.notice != nil {
		r, err := s.c.PollWriteMessage(t, wsconn.Text, s.notice)
		if err != nil {
			s.fail(err)
			return false
		}
		if !r.Ready {
			return false
		}
		s.notice = nil
		s.dirty = true
	}
	if s.has {
		r, err := s.c.PollWritePrepared(t, &s.msg)
		if err != nil {
			s.fail(err)
			return false
		}
		if !r.Ready {
			return false
		}
		s.has = false
		s.dirty = true
		s.n.delivered.Add(1)
		if n := s.msg.Compressions(); n > 0 {
			s.h.deflated.Add(uint64(n)) // its form was not in the ring
		}
	}
	return true
}

// take makes the frame f the message to write next, after a notice of
// what was missed before it, if anything was: messages the ring overtook
// the subscriber on, or that the bus lost. The message shares the
// frame's bytes, its compressed forms included.
func (s *Subscriber) take(f buf.Frame) error {
	if len(f.Data) < frameHeader {
		return fmt.Errorf("fanout: a frame of %d bytes in the ring", len(f.Data))
	}
	if err := s.msg.ResetBinary(f.Data[indexHeader:]); err != nil {
		return fmt.Errorf("fanout: a message in the ring: %w", err)
	}
	index := binary.BigEndian.Uint64(f.Data)
	off := binary.BigEndian.Uint64(f.Data[8:])
	if index > s.next {
		frames, bytes := index-s.next, off-min(off, s.nextOff)
		s.notice = appendNotice(s.nbuf[:0], frames, bytes)
		s.n.missedFrames.Add(frames)
		s.n.missedBytes.Add(bytes)
	}
	s.has = true
	s.next, s.nextOff = index+1, off+uint64(len(s.msg.Data()))
	return nil
}

// overtaken records an overtake, which the next message's notice will
// tell, and starts closing the subscriber when it is one too many.
func (s *Subscriber) overtaken() {
	s.n.overtakes.Add(1)
	if s.h.kickAfter < 0 {
		return
	}
	now := s.h.now()
	if len(s.behind) == s.h.kickAfter {
		s.behind = append(s.behind[:0], s.behind[1:]...)
	}
	s.behind = append(s.behind, now)
	if len(s.behind) < s.h.kickAfter || now.Sub(s.behind[0]) > s.h.window {
		return
	}
	s.kick = true
	s.has, s.notice = false, nil
	s.msg.Reset(wsconn.Binary, nil)
	s.h.kicked.Add(1)
	s.h.log.Info("fanout: closing a subscriber that keeps falling behind",
		"topic", s.t.name, "remote", s.c.RemoteAddr().String(), "overtakes", len(s.behind), "window", s.h.window)
}

// pollKick polls the shutdown of a subscriber that keeps falling behind,
// with status 1008.
func (s *Subscriber) pollKick(t *asyncio.Task) {
	r, err := s.c.ShutdownWith(t, wsconn.StatusPolicyViolation, kickReason)
	switch {
	case err != nil:
		s.fail(err)
	case r.Ready:
		s.stopLocked(nil)
	}
}

// fail stops the pump after a write error and closes the connection, so
// that its reader sees the end too.
func (s *Subscriber) fail(err error) {
	s.stopLocked(err)
	level := slog.LevelDebug // the client left
	if !errors.Is(err, net.ErrClosed) && !errors.Is(err, asyncio.ErrShutdown) && !errors.Is(err, io.ErrUnexpectedEOF) {
		level = slog.LevelInfo
		if errors.Is(err, os.ErrDeadlineExceeded) {
			level = slog.LevelWarn
		}
	}
	s.h.log.Log(context.Background(), level, "fanout: subscriber lost",
		"topic", s.t.name, "remote", s.c.RemoteAddr().String(), "err", err)
	_ = s.c.Close()
}
