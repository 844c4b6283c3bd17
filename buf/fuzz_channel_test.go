package buf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/pollws/pollws/asyncio"
)

// The model of a channel for FuzzChannel: every frame ever reserved, in
// order, and each handle's cursor. The channel keeps the newest frames
// that fit, evicting the oldest readable frame no strong reader still
// needs; readers see frames up to the first one that is still reserved or
// behind an idle strong writer.
type modelFrame struct {
	writer  uint64
	data    []byte
	pending bool
	void    bool
	pos     uint64
}

type modelWriter struct {
	h      *Writer
	strong bool
	res    int // reserved frame, or -1
	slice  []byte
	hold   int
	closed bool
	wait   waitCheck
	waitN  int // bytes the waiting poll asked for
}

// A waitCheck records a poll that answered NotReady with a counting task:
// the task must be notified before the handle could make progress.
type waitCheck struct {
	task    *counter
	waiting bool
	since   int
}

// polled returns the task for a poll (nil for some polls) and forgets an
// earlier wait: the new poll replaces it.
func (w *waitCheck) polled(arg int) *asyncio.Task {
	w.waiting = false
	if arg%5 == 4 {
		return nil
	}
	return w.task.task
}

// notReady records that the poll answered NotReady with t.
func (w *waitCheck) notReady(t *asyncio.Task) {
	if t != nil {
		w.waiting, w.since = true, w.task.count()
	}
}

// check fails unless a handle that can make progress was notified.
func (w *waitCheck) check(t *testing.T, what string, progress bool) {
	if w.waiting && progress {
		if w.task.count() == w.since {
			t.Fatalf("%s can make progress but its task was not notified", what)
		}
		w.waiting = false
	}
}

type modelReader struct {
	h          *Reader
	strong     bool
	seq, off   int
	pos, start uint64
	read, lost uint64
	closed     bool
	lent       []byte // copy of the frame lent by the last PollFrame
	lentView   []byte
	wait       waitCheck
}

type channelModel struct {
	t                    *testing.T
	c                    *Channel
	size                 int
	drop                 bool
	frames               []modelFrame
	lo, pub              int
	pubPos               uint64
	writers              []*modelWriter
	readers              []*modelReader
	draining, terminated bool
	next                 byte
}

func (m *channelModel) publish() {
	limit := len(m.frames)
	if !m.draining && !m.terminated {
		for _, w := range m.writers {
			if w.strong && !w.closed {
				limit = min(limit, w.hold)
			}
		}
	}
	for m.pub < limit && !m.frames[m.pub].pending {
		m.frames[m.pub].pos = m.pubPos
		m.pubPos += uint64(len(m.frames[m.pub].data))
		m.pub++
	}
}

func (m *channelModel) used() int {
	n := 0
	for _, f := range m.frames[m.lo:] {
		n += len(f.data)
	}
	return n
}

// fits evicts the oldest frames that no strong reader needs until n more
// bytes fit, and reports whether they do.
func (m *channelModel) fits(n int) bool {
	lo, ok := m.evict(n)
	m.lo = lo
	return ok
}

// evict returns where lo would be after making room for n bytes, and
// whether they would fit.
func (m *channelModel) evict(n int) (int, bool) {
	minStrong := math.MaxInt
	for _, r := range m.readers {
		if r.strong && !r.closed {
			minStrong = min(minStrong, r.seq)
		}
	}
	lo, used := m.lo, m.used()
	for used+n > m.size {
		if lo == m.pub || lo >= minStrong {
			return lo, false
		}
		used -= len(m.frames[lo].data)
		lo++
	}
	return lo, true
}

// writerCanGo reports whether a poll by w for n bytes would not answer
// NotReady.
func (m *channelModel) writerCanGo(w *modelWriter, n int) bool {
	if m.writeErr(w) != nil || n > m.size {
		return true
	}
	_, ok := m.evict(n)
	return ok
}

// readerCanGo reports whether a read by r would not answer NotReady.
func (m *channelModel) readerCanGo(r *modelReader) bool {
	if m.terminated || r.closed {
		return true
	}
	seq := r.seq
	if seq < m.lo {
		if m.posOf(m.lo) > r.pos {
			return true // a *ReaderBehindError
		}
		seq = m.lo
	}
	for seq < m.pub && m.frames[seq].void {
		seq++
	}
	return seq < m.pub || (m.draining && seq == len(m.frames))
}

func (m *channelModel) checkWaits() {
	for i, w := range m.writers {
		w.wait.check(m.t, fmt.Sprintf("writer %d", i), m.writerCanGo(w, w.waitN))
	}
	for i, r := range m.readers {
		r.wait.check(m.t, fmt.Sprintf("reader %d", i), m.readerCanGo(r))
	}
}

func (m *channelModel) posOf(seq int) uint64 {
	if seq == m.pub {
		return m.pubPos
	}
	return m.frames[seq].pos
}

func (m *channelModel) content(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = m.next
		m.next++
	}
	return p
}

// writeErr is the error a write by w must fail with, or nil.
func (m *channelModel) writeErr(w *modelWriter) error {
	switch {
	case m.terminated:
		return ErrAborted
	case w.closed:
		return ErrClosed
	case m.draining:
		return ErrDraining
	}
	return nil
}

func (m *channelModel) reserve(w *modelWriter, p []byte, pending bool) {
	w.res = len(m.frames)
	m.frames = append(m.frames, modelFrame{writer: w.h.ID(), data: p, pending: pending})
	if w.strong {
		w.hold = w.res
	}
	if !pending {
		m.commit(w)
	}
	m.publish()
}

func (m *channelModel) commit(w *modelWriter) {
	m.frames[w.res].pending = false
	if w.strong {
		w.hold = w.res + 1
	}
	w.res, w.slice = -1, nil
	m.publish()
}

func (m *channelModel) pollWrite(w *modelWriter, n, arg int) {
	t := m.t
	if w.res >= 0 {
		return // would panic
	}
	p := m.content(n)
	task := w.wait.polled(arg)
	res, err := w.h.PollWrite(task, p)
	want := m.writeErr(w)
	switch {
	case want != nil:
		if !errors.Is(err, want) {
			t.Fatalf("PollWrite: %v, want %v", err, want)
		}
	case n == 0:
		if err != nil || !res.Ready || res.Value != 0 {
			t.Fatalf("empty PollWrite = %+v, %v", res, err)
		}
	case n > m.size:
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("PollWrite of %d bytes into %d: %v", n, m.size, err)
		}
	case !m.fits(n):
		if err != nil || res.Ready != m.drop || res.Value != 0 {
			t.Fatalf("PollWrite of %d bytes that do not fit = %+v, %v", n, res, err)
		}
		if !m.drop {
			w.wait.notReady(task)
			w.waitN = n
		}
	default:
		if err != nil || !res.Ready || res.Value != n {
			t.Fatalf("PollWrite of %d bytes that fit = %+v, %v", n, res, err)
		}
		m.reserve(w, p, false)
	}
}

func (m *channelModel) pollReserve(w *modelWriter, n, arg int) {
	t := m.t
	if w.res >= 0 {
		return // would panic
	}
	task := w.wait.polled(arg)
	res, err := w.h.PollReserveSlice(task, n)
	want := m.writeErr(w)
	switch {
	case want != nil:
		if !errors.Is(err, want) {
			t.Fatalf("PollReserveSlice: %v, want %v", err, want)
		}
	case n > m.size:
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("PollReserveSlice of %d bytes into %d: %v", n, m.size, err)
		}
	case !m.fits(n):
		if err != nil || res.Ready != m.drop || len(res.Value) != 0 {
			t.Fatalf("PollReserveSlice of %d bytes that do not fit = %v, %v", n, res, err)
		}
		if !m.drop {
			w.wait.notReady(task)
			w.waitN = n
		}
	default:
		if err != nil || !res.Ready || len(res.Value) != n || !bytes.Equal(res.Value, make([]byte, n)) {
			t.Fatalf("PollReserveSlice of %d bytes that fit = %v, %v; want them zeroed", n, res, err)
		}
		w.slice = res.Value
		m.reserve(w, make([]byte, n), true)
	}
}

func (m *channelModel) doCommit(w *modelWriter) {
	t := m.t
	if w.res < 0 {
		if !m.terminated && !w.closed {
			return // would panic
		}
		if err := w.h.Commit(); err == nil {
			t.Fatal("Commit without a slice succeeded")
		}
		return
	}
	copy(w.slice, m.content(len(w.slice)))
	copy(m.frames[w.res].data, w.slice)
	err := w.h.Commit()
	if m.terminated {
		if !errors.Is(err, ErrAborted) {
			t.Fatalf("Commit after Terminate: %v", err)
		}
		w.res, w.slice = -1, nil
		return
	}
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	m.commit(w)
}

func (m *channelModel) closeWriter(w *modelWriter) {
	w.h.Close()
	if w.closed {
		return
	}
	w.closed = true
	if w.res >= 0 && !m.terminated {
		m.frames[w.res] = modelFrame{writer: w.h.ID(), void: true}
	}
	w.res, w.slice = -1, nil
	m.publish()
}

// readErr is the error a read by r must fail with before looking for
// data, or nil. It moves an overtaken reader.
func (m *channelModel) readErr(r *modelReader) error {
	switch {
	case m.terminated:
		return ErrAborted
	case r.closed:
		return ErrClosed
	case r.seq < m.lo:
		resume := m.posOf(m.lo)
		err := &ReaderBehindError{Lost: resume - r.pos, Pos: resume}
		r.lost += err.Lost
		r.seq, r.off, r.pos = m.lo, 0, resume
		if err.Lost > 0 {
			return err
		}
	}
	m.skipVoid(r)
	return nil
}

// skipVoid moves r past readable frames that were given up.
func (m *channelModel) skipVoid(r *modelReader) {
	for r.seq < m.pub && m.frames[r.seq].void {
		r.seq++
	}
}

func (m *channelModel) checkErr(op string, got, want error) {
	t := m.t
	var gb, wb *ReaderBehindError
	if errors.As(want, &wb) {
		if !errors.As(got, &gb) || *gb != *wb {
			t.Fatalf("%s: %v, want %v", op, got, want)
		}
		return
	}
	if !errors.Is(got, want) {
		t.Fatalf("%s: %v, want %v", op, got, want)
	}
}

func (m *channelModel) checkLent(r *modelReader) {
	if r.lent != nil && !bytes.Equal(r.lent, r.lentView) {
		m.t.Fatalf("lent frame changed from %v to %v before the reader's next call", r.lent, r.lentView)
	}
	r.lent, r.lentView = nil, nil
}

func (m *channelModel) pollFrame(r *modelReader, arg int) {
	t := m.t
	m.checkLent(r)
	task := r.wait.polled(arg)
	res, err := r.h.PollFrame(task)
	if want := m.readErr(r); want != nil {
		m.checkErr("PollFrame", err, want)
		return
	}
	if r.seq < m.pub {
		f := m.frames[r.seq]
		want := Frame{Writer: f.writer, Pos: f.pos + uint64(r.off), Data: f.data[r.off:]}
		got := res.Value
		if err != nil || !res.Ready || got.Writer != want.Writer || got.Pos != want.Pos || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("PollFrame = %+v, %v, %v; want %+v", got, res.Ready, err, want)
		}
		r.read += uint64(len(want.Data))
		r.seq, r.off, r.pos = r.seq+1, 0, f.pos+uint64(len(f.data))
		m.skipVoid(r)
		r.lent, r.lentView = bytes.Clone(got.Data), got.Data
		return
	}
	if m.draining && r.seq == len(m.frames) {
		if err != io.EOF {
			t.Fatalf("PollFrame at the end of a drained channel: %v", err)
		}
		return
	}
	if err != nil || res.Ready {
		t.Fatalf("PollFrame with nothing to read = %+v, %v", res, err)
	}
	r.wait.notReady(task)
}

func (m *channelModel) pollRead(r *modelReader, k, arg int) {
	t := m.t
	m.checkLent(r)
	p := make([]byte, k)
	task := r.wait.polled(arg)
	res, err := r.h.PollRead(task, p)
	if want := m.readErr(r); want != nil {
		m.checkErr("PollRead", err, want)
		return
	}
	var want []byte
	for len(want) < k && r.seq < m.pub {
		f := m.frames[r.seq]
		c := min(k-len(want), len(f.data)-r.off)
		want = append(want, f.data[r.off:r.off+c]...)
		r.off += c
		r.pos += uint64(c)
		if r.off == len(f.data) {
			r.seq, r.off = r.seq+1, 0
			m.skipVoid(r)
		}
	}
	r.read += uint64(len(want))
	switch {
	case len(want) > 0 || k == 0:
		if err != nil || !res.Ready || !bytes.Equal(p[:res.Value], want) {
			t.Fatalf("PollRead(%d) = %+v, %v, %v; want %v", k, res, err, p[:res.Value], want)
		}
	case m.draining && r.seq == len(m.frames):
		if err != io.EOF {
			t.Fatalf("PollRead at the end of a drained channel: %v", err)
		}
	default:
		if err != nil || res.Ready {
			t.Fatalf("PollRead with nothing to read = %+v, %v", res, err)
		}
		r.wait.notReady(task)
	}
}

func (m *channelModel) newReader(strong bool) {
	r := &modelReader{strong: strong, seq: m.pub, pos: m.pubPos, start: m.pubPos, wait: waitCheck{task: newCounter()}}
	if strong {
		r.h = m.c.NewStrongReader()
	} else {
		r.h = m.c.NewWeakReader()
	}
	r.strong = strong && !m.terminated
	m.readers = append(m.readers, r)
}

func (m *channelModel) newWriter(strong bool) {
	w := &modelWriter{strong: strong && !m.terminated && !m.draining, res: -1, hold: len(m.frames), wait: waitCheck{task: newCounter()}}
	if strong {
		w.h = m.c.NewStrongWriter()
	} else {
		w.h = m.c.NewWeakWriter()
	}
	m.writers = append(m.writers, w)
}

// FuzzChannel drives a channel from one goroutine with polls and compares
// it with a model that keeps every frame in a slice. For weak readers it
// also checks that bytes read plus bytes lost add up to the bytes the
// reader went past.
func FuzzChannel(f *testing.F) {
	f.Add(uint8(3), false, []byte{0, 0, 5, 3, 0, 0, 0, 1, 7, 3, 1, 0, 4, 2, 3})
	f.Add(uint8(4), true, []byte{1, 0, 4, 0, 1, 9, 2, 0, 0, 3, 0, 0, 3, 2, 0, 5, 0, 0})
	f.Add(uint8(2), false, []byte{8, 3, 0, 0, 2, 3, 0, 0, 2, 3, 3, 0, 7, 0, 0, 3, 0, 0, 3, 1, 0})
	f.Add(uint8(5), false, []byte{8, 0, 1, 0, 3, 9, 0, 0, 4, 3, 2, 0, 7, 0, 1, 4, 0, 3, 7, 0, 16})
	// A strong reader moves past a frame given up while a writer waits,
	// then closes.
	f.Add(uint8(2), false, []byte{1, 0, 0, 5, 0, 0, 1, 1, 3, 8, 0, 3, 0, 2, 1, 3, 0, 0, 2, 1, 0, 6, 0, 0})
	f.Fuzz(func(t *testing.T, sizeLog uint8, drop bool, ops []byte) {
		size := 1 << (sizeLog % 7)
		bp := Park
		if drop {
			bp = Drop
		}
		m := &channelModel{t: t, c: NewChannel(size, bp), size: size, drop: drop}
		m.newWriter(false)
		m.newWriter(false)
		m.newReader(true)
		m.newReader(false)
		for len(ops) >= 3 {
			op, target, arg := ops[0]%9, int(ops[1]), int(ops[2])
			ops = ops[3:]
			w := m.writers[target%len(m.writers)]
			r := m.readers[target%len(m.readers)]
			switch op {
			case 0:
				m.pollWrite(w, arg%(size+2), arg)
			case 1:
				m.pollReserve(w, 1+arg%(size+1), arg)
			case 2:
				m.doCommit(w)
			case 3:
				m.pollFrame(r, arg)
			case 4:
				m.pollRead(r, arg%7, arg)
			case 5:
				m.closeWriter(w)
			case 6:
				m.checkLent(r)
				r.h.Close()
				r.closed = true
			case 7:
				switch arg % 16 {
				case 0:
					err := m.c.Drain()
					if m.terminated != (err != nil) {
						t.Fatalf("Drain: %v", err)
					}
					m.draining = true
					m.publish()
				case 1:
					m.c.Terminate()
					m.terminated = true
				}
			case 8:
				if arg%2 == 0 {
					m.newReader(arg%4 == 0)
				} else {
					m.newWriter(arg%4 == 1)
				}
			}
			m.checkWaits()
			if m.terminated {
				continue
			}
			c := m.c
			if c.lo != uint64(m.lo) || c.pub != uint64(m.pub) || c.hi != uint64(len(m.frames)) || c.used != m.used() {
				t.Fatalf("channel lo/pub/hi/used = %d/%d/%d/%d, model %d/%d/%d/%d",
					c.lo, c.pub, c.hi, c.used, m.lo, m.pub, len(m.frames), m.used())
			}
			for i, r := range m.readers {
				if r.h.Pos() != r.pos {
					t.Fatalf("reader %d: Pos %d, model %d", i, r.h.Pos(), r.pos)
				}
				if r.read+r.lost != r.pos-r.start {
					t.Fatalf("reader %d: read %d + lost %d != %d bytes gone past", i, r.read, r.lost, r.pos-r.start)
				}
				if r.strong && r.lost != 0 {
					t.Fatalf("strong reader %d lost %d bytes", i, r.lost)
				}
			}
		}
	})
}
