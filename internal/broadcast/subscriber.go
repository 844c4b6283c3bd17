package broadcast

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/buf"
	"github.com/pollws/pollws/wsconn"
)

// stepBudget is how many messages one poll of a subscriber writes before
// it yields the worker to the others.
const stepBudget = 64

// kickReason is the reason of the close frame a subscriber that keeps
// falling behind gets.
const kickReason = "too slow: overtaken too often"

// Subscriber is one subscription to a [Hub]: the hub's end of it, which
// writes the hub's messages to its connection.
//
// A Subscriber is also the connection's [asyncio.AsyncWriter], so that a
// shutdown.Group can own its end: every write, flush or shutdown through
// it, and Close, first stops the hub's writes ([Subscriber.Stop]) and
// then acts on the connection. Messages the hub wrote before stay queued
// ahead of anything written after.
//
// A Subscriber is safe for use by multiple goroutines.
type Subscriber struct {
	h    *Hub
	c    *wsconn.Conn
	r    *buf.Reader
	task *asyncio.Task
	n    counters

	// Guarded by h.mu: the worker queue's bookkeeping.
	queued  bool // in h.queue
	running bool // a worker polls it
	again   bool // notified while a worker polled it

	// mu is held while the pump polls c, so that once Stop returns the
	// pump never touches c again: c notifies one task per kind of wait,
	// so a second goroutine waiting on its writes (a shutdown.Group's)
	// would take the pump's wake-ups, or the pump its. It guards the
	// pump's state.
	mu      sync.Mutex
	stopped bool
	err     error     // why the pump stopped, when it failed
	has     bool      // data is a message to write
	op      ws.OpCode // its type
	data    []byte    // lent by r until its next read
	notice  []byte    // a missed notice to write before data
	nbuf    [64]byte
	dirty   bool        // messages written since the last flush
	last    uint64      // sequence number of the last message read
	lost    uint64      // bytes lost in overtakes not yet told
	kick    bool        // shutting down with 1008
	behind  []time.Time // the latest overtakes, oldest first
}

var _ asyncio.AsyncWriter = (*Subscriber)(nil)

// newTask returns the task that makes a worker poll s.
func newTask(h *Hub, s *Subscriber) *asyncio.Task {
	return asyncio.NewTask(func() { h.schedule(s) })
}

// SubscriberStats counts what the hub did for one subscriber.
type SubscriberStats struct {
	Delivered    uint64 // messages handed to the connection
	MissedFrames uint64 // messages missed, as told in notices
	MissedBytes  uint64 // their payload bytes
	Overtakes    uint64 // times the subscriber was overtaken
}

// Stats returns the subscriber's counters.
func (s *Subscriber) Stats() SubscriberStats {
	return SubscriberStats{
		Delivered:    s.n.delivered.Load(),
		MissedFrames: s.n.missedFrames.Load(),
		MissedBytes:  s.n.missedBytes.Load(),
		Overtakes:    s.n.overtakes.Load(),
	}
}

// Conn returns the subscriber's connection.
func (s *Subscriber) Conn() *wsconn.Conn { return s.c }

// Err returns why the hub stopped writing to the subscriber on its own: a
// write error, which closed the connection, or nil.
func (s *Subscriber) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stop stops the hub's writes to the subscriber: it leaves the hub, and
// once Stop returns the hub does not touch its connection again. Stopping
// again does nothing.
func (s *Subscriber) Stop() {
	s.mu.Lock()
	s.stopLocked(nil)
	s.mu.Unlock()
}

func (s *Subscriber) stopLocked(err error) {
	if s.stopped {
		return
	}
	s.stopped, s.err = true, err
	s.has, s.data, s.notice = false, nil, nil
	s.r.Close()
	s.h.remove(s)
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

// ShutdownWith stops the hub's writes and closes the connection
// gracefully with code and reason, as [wsconn.Conn.ShutdownWith] does.
// When the hub had begun disconnecting the subscriber (code 1008), that
// shutdown goes on.
func (s *Subscriber) ShutdownWith(t *asyncio.Task, code ws.StatusCode, reason string) (asyncio.Async[struct{}], error) {
	s.Stop()
	return s.c.ShutdownWith(t, code, reason)
}

// Close stops the hub's writes and closes the connection at once.
func (s *Subscriber) Close() error {
	s.Stop()
	return s.c.Close()
}

// Undelivered returns the bytes written to the connection and not yet
// sent.
func (s *Subscriber) Undelivered() int64 { return s.c.Undelivered() }

// step is the pump: it writes what the subscriber has pending, then
// messages from the channel until it has none or the connection is full,
// then flushes. It reports whether it stopped for the budget, with more
// to do. Only a worker calls it, never for one subscriber at once.
func (s *Subscriber) step() (more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; !s.stopped; i++ {
		if s.kick {
			s.pollKick()
			return false
		}
		if !s.writePending() {
			return false
		}
		if i == stepBudget {
			return true
		}
		f, err := s.r.PollFrame(s.task)
		var behind *buf.ReaderBehindError
		switch {
		case errors.As(err, &behind):
			s.overtaken(behind.Lost)
		case err != nil: // the hub is closing
			s.stopLocked(nil)
		case f.Ready:
			s.take(f.Value)
		default:
			if s.dirty {
				r, err := s.c.PollFlush(s.task)
				if err != nil {
					s.fail(err)
					return false
				}
				s.dirty = !r.Ready
			}
			return false
		}
	}
	return false
}

// writePending writes the pending notice and message. It reports whether
// both are written; if not, the connection will notify the task, or the
// pump stopped.
func (s *Subscriber) writePending() bool {
	if s.notice != nil {
		r, err := s.c.PollWriteMessage(s.task, ws.OpText, s.notice)
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
		r, err := s.c.PollWriteMessage(s.task, s.op, s.data)
		if err != nil {
			s.fail(err)
			return false
		}
		if !r.Ready {
			return false
		}
		s.has, s.data = false, nil
		s.dirty = true
		s.n.delivered.Add(1)
	}
	return true
}

// take makes the frame f the message to write next, after a notice of
// what was missed since the last one, if anything was.
func (s *Subscriber) take(f buf.Frame) {
	seq := binary.BigEndian.Uint64(f.Data)
	if gap := seq - s.last - 1; gap > 0 || s.lost > 0 {
		bytes := s.lost - min(s.lost, gap*frameHeader)
		s.notice = appendNotice(s.nbuf[:0], gap, bytes)
		s.n.missedFrames.Add(gap)
		s.n.missedBytes.Add(bytes)
		s.lost = 0
	}
	s.last = seq
	s.op, s.data, s.has = ws.OpCode(f.Data[8]), f.Data[frameHeader:], true
}

// overtaken records an overtake that lost the subscriber lost bytes, and
// starts disconnecting it when it is one too many.
func (s *Subscriber) overtaken(lost uint64) {
	s.lost += lost
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
	s.has, s.data, s.notice = false, nil, nil
	s.h.kicked.Add(1)
	s.h.log.Info("broadcast: disconnecting a subscriber that keeps falling behind",
		"remote", s.c.RemoteAddr().String(), "overtakes", len(s.behind), "window", s.h.window)
}

// pollKick polls the shutdown of a subscriber that keeps falling behind,
// with close code 1008.
func (s *Subscriber) pollKick() {
	r, err := s.c.ShutdownWith(s.task, ws.StatusPolicyViolation, kickReason)
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
	s.h.log.Log(context.Background(), level, "broadcast: subscriber lost",
		"remote", s.c.RemoteAddr().String(), "err", err)
	_ = s.c.Close()
}

// appendNotice appends the notice of frames messages (bytes payload bytes)
// missed to b.
func appendNotice(b []byte, frames, bytes uint64) []byte {
	b = append(b, `{"type":"missed","frames":`...)
	b = strconv.AppendUint(b, frames, 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendUint(b, bytes, 10)
	return append(b, '}')
}

// Notice is the message that tells a subscriber what it missed, sent as
// JSON text before the first message after the gap.
type Notice struct {
	Type   string `json:"type"`   // "missed"
	Frames uint64 `json:"frames"` // messages missed
	Bytes  uint64 `json:"bytes"`  // their payload bytes
}
