package buf

import (
	"fmt"
	"math"
	"math/bits"
	"sync"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/pool"
)

// Backpressure is what a [Channel]'s writers do when a frame does not fit.
type Backpressure uint8

const (
	// Park makes a writer wait (NotReady) until the slowest strong reader
	// has made room. With no strong reader it evicts the oldest frames,
	// overtaking weak readers, and waits only for frames that other
	// writers are still filling.
	Park Backpressure = iota

	// Drop never makes a writer wait: a frame that does not fit is refused
	// whole and the write answers Ready(0). Weak readers are overtaken as
	// with Park; strong readers never lose a frame.
	Drop
)

// String returns the name of b.
func (b Backpressure) String() string {
	switch b {
	case Park:
		return "Park"
	case Drop:
		return "Drop"
	}
	return fmt.Sprintf("Backpressure(%d)", uint8(b))
}

// maxChannelCap keeps the rounded capacity an int on every platform.
const maxChannelCap = 1 << (bits.UintSize - 2)

// A Channel is a many-to-many ring of frames in memory, bounded in bytes.
// Writers ([Writer]) append frames; each reader ([Reader]) reads, in
// order, the frames that become readable after it was created, at its own
// pace with its own monotonic cursor.
//
// Frames from concurrent writers never interleave: a frame is reserved
// whole ([Writer.PollReserveSlice], or [Writer.PollWrite] which reserves
// and fills in one call), and frames are read in reservation order, each
// with the id of the writer that sent it. A frame reserved but not yet
// committed holds back the frames reserved after it.
//
// The channel holds at most [Channel.Cap] bytes of frames (and a small
// fixed cost per frame); a frame lent to a reader after it left the
// channel is kept until the reader's next read, so memory is bounded by
// the capacity plus one frame per reader. Readers come in two kinds:
//
//   - A strong reader never loses a frame: writers may not evict a frame
//     it has not read. With [Park] back-pressure they wait for it, so the
//     channel goes as fast as its slowest strong reader; with [Drop] a
//     frame that does not fit is refused.
//   - A weak reader never holds writers back. When writers need the room,
//     they evict the oldest frames whether or not weak readers have read
//     them; a weak reader that was overtaken gets a [*ReaderBehindError]
//     saying how many bytes it lost, and goes on at the oldest frame left.
//
// Writers come in two kinds too. A weak writer holds a place in the order
// only while it has a frame reserved. A strong writer always holds one:
// readers see no frame reserved after a strong writer's last frame until
// it reserves its next frame or closes. An idle strong writer therefore
// holds every reader back; it is a gate that releases what other writers
// sent each time it writes. Use weak writers unless that is what you want.
//
// Readers see frames without copying: [Reader.PollFrame] lends a frame's
// bytes until the reader's next read, and the frame's storage is not
// reused while it is lent, even after writers overtake a weak reader, so a
// weak reader never slows writers down.
//
// [Channel.Drain] ends the channel gracefully and [Channel.Terminate] at
// once.
//
// A Channel and its handles are safe for use by multiple goroutines; each
// handle keeps one task, so use a handle from one goroutine at a time
// (Close excepted) and give each goroutine its own.
type Channel struct {
	mu   sync.Mutex
	size int // capacity in bytes, a power of two
	bp   Backpressure

	// Frames by sequence number: slots[seq&mask] for lo <= seq < hi. Frames
	// in [lo, pub) are readable, those in [pub, hi) are not yet: reserved,
	// or committed behind a frame that is still reserved or behind a strong
	// writer's place. Positions are assigned when frames become readable.
	slots   []*frame
	lo      uint64 // oldest frame held
	pub     uint64 // first frame readers cannot see
	hi      uint64 // next frame to reserve
	pubPos  uint64 // byte position of frame pub
	used    int    // bytes of the frames in [lo, hi)
	nextID  uint64 // last writer id handed out
	holding []*Writer

	// Strong readers, and the lowest sequence number they are at. The
	// minimum is recomputed lazily: when the last reader at it moves on,
	// it is marked dirty and waiting writers are notified.
	strong   []*Reader
	minSeq   uint64
	atMin    int
	minDirty bool

	readers waitSet // readers waiting for a frame
	writers waitSet // writers waiting for room

	draining   bool
	terminated bool
}

// NewChannel returns a channel that holds capacity bytes of frames,
// rounded up to a power of two, whose writers follow bp when a frame does
// not fit. It panics if capacity is less than 1.
func NewChannel(capacity int, bp Backpressure) *Channel {
	if capacity < 1 || capacity > maxChannelCap {
		panic(fmt.Sprintf("buf: NewChannel capacity %d out of range", capacity))
	}
	if bp != Park && bp != Drop {
		panic(fmt.Sprintf("buf: NewChannel with unknown %v", bp))
	}
	return &Channel{size: 1 << pool.Class(capacity), bp: bp, slots: make([]*frame, 8)}
}

// Cap returns the capacity in bytes, a power of two.
func (c *Channel) Cap() int { return c.size }

// NewStrongWriter returns a writer that always holds its place: readers
// see no frame reserved after its last one until it writes again or
// closes. See [Channel] for when that is useful; an idle strong writer
// holds every reader back.
func (c *Channel) NewStrongWriter() *Writer { return c.newWriter(true) }

// NewWeakWriter returns a writer that holds a place only while it has a
// frame reserved. It is the writer to use unless a strong one is needed.
func (c *Channel) NewWeakWriter() *Writer { return c.newWriter(false) }

func (c *Channel) newWriter(strong bool) *Writer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	w := &Writer{c: c, id: c.nextID, strong: strong, hold: c.hi}
	if strong && !c.terminated && !c.draining {
		c.holding = append(c.holding, w)
	}
	return w
}

// NewStrongReader returns a reader that never loses a frame: writers may
// not evict a frame it has not read, so it slows every writer to its pace
// (with [Park]) or makes them drop frames (with [Drop]). It sees the frames
// that become readable after it was created.
func (c *Channel) NewStrongReader() *Reader { return c.newReader(true) }

// NewWeakReader returns a reader that never holds writers back: when it
// falls more than the channel's capacity behind, writers overtake it and
// its next read fails with a [*ReaderBehindError]. It sees the frames that
// become readable after it was created.
func (c *Channel) NewWeakReader() *Reader { return c.newReader(false) }

func (c *Channel) newReader(strong bool) *Reader {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Reader{c: c, strong: strong, seq: c.pub, pos: c.pubPos}
	if strong && !c.terminated {
		switch {
		case len(c.strong) == 0:
			c.minSeq, c.atMin, c.minDirty = r.seq, 1, false
		case !c.minDirty && r.seq == c.minSeq:
			c.atMin++
		}
		c.strong = append(c.strong, r)
		r.at = len(c.strong)
	}
	return r
}

// Drain starts ending the channel gracefully: writers may commit the
// frames they have reserved, but new frames are refused with
// [ErrDraining]; strong writers no longer hold readers back; and each
// reader, once it has read every frame, gets [io.EOF]. Every waiting task
// is notified. Drain returns [ErrAborted] after [Channel.Terminate], and
// does nothing more when called again.
func (c *Channel) Drain() error {
	c.mu.Lock()
	if c.terminated {
		c.mu.Unlock()
		return ErrAborted
	}
	if c.draining {
		c.mu.Unlock()
		return nil
	}
	c.draining = true
	c.holding = nil
	c.publish()
	wake := c.readers.take(nil)
	wake = c.writers.take(wake)
	c.mu.Unlock()
	notify(wake)
	return nil
}

// Terminate ends the channel at once: frames not yet read are dropped,
// every waiting task is notified, and every operation on every handle,
// also one that was waiting, fails with [ErrAborted]. A frame lent by
// [Reader.PollFrame] stays valid until that reader's next read. Terminate
// may follow [Channel.Drain], to cut a drain short; calling it again does
// nothing.
func (c *Channel) Terminate() {
	c.mu.Lock()
	if c.terminated {
		c.mu.Unlock()
		return
	}
	c.terminated = true
	for ; c.lo < c.hi; c.lo++ {
		c.slots[c.lo&c.mask()].unref()
		c.slots[c.lo&c.mask()] = nil
	}
	c.pub, c.used = c.hi, 0
	for _, r := range c.strong {
		r.at = 0
	}
	c.holding, c.strong = nil, nil
	wake := c.readers.take(nil)
	wake = c.writers.take(wake)
	c.mu.Unlock()
	notify(wake)
}

// String describes the channel, for %v.
func (c *Channel) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	state := "open"
	switch {
	case c.terminated:
		state = "terminated"
	case c.draining:
		state = "draining"
	}
	return fmt.Sprintf("buf.Channel(%s, %v, %d/%d bytes, %d frames)", state, c.bp, c.used, c.size, c.hi-c.lo)
}

func (c *Channel) mask() uint64 { return uint64(len(c.slots) - 1) }

func (c *Channel) slot(seq uint64) *frame { return c.slots[seq&c.mask()] }

// push appends f as frame hi, growing the slots when they are full.
func (c *Channel) push(f *frame) uint64 {
	if c.hi-c.lo == uint64(len(c.slots)) {
		s := make([]*frame, 2*len(c.slots))
		m := uint64(len(s) - 1)
		for seq := c.lo; seq < c.hi; seq++ {
			s[seq&m] = c.slot(seq)
		}
		c.slots = s
	}
	seq := c.hi
	c.slots[seq&c.mask()] = f
	c.hi++
	c.used += f.n
	return seq
}

// posOf returns the byte position of frame seq, for lo <= seq <= pub.
func (c *Channel) posOf(seq uint64) uint64 {
	if seq == c.pub {
		return c.pubPos
	}
	return c.slot(seq).pos
}

// makeRoom evicts the oldest readable frames until n more bytes fit, but
// no frame a strong reader has not read. It reports whether they fit.
func (c *Channel) makeRoom(n int) bool {
	for c.used+n > c.size {
		if c.lo == c.pub || c.lo >= c.minStrong() {
			return false
		}
		f := c.slot(c.lo)
		c.slots[c.lo&c.mask()] = nil
		c.used -= f.n
		c.lo++
		f.unref()
	}
	return true
}

// minStrong returns the lowest frame a strong reader is at, or MaxUint64
// when there is no strong reader.
func (c *Channel) minStrong() uint64 {
	if len(c.strong) == 0 {
		return math.MaxUint64
	}
	if c.minDirty {
		c.minSeq, c.atMin = math.MaxUint64, 0
		for _, r := range c.strong {
			switch {
			case r.seq < c.minSeq:
				c.minSeq, c.atMin = r.seq, 1
			case r.seq == c.minSeq:
				c.atMin++
			}
		}
		c.minDirty = false
	}
	return c.minSeq
}

// leaveMin records that a strong reader at seq moves on or leaves. It
// reports whether the minimum may have risen, which may let writers go on.
func (c *Channel) leaveMin(seq uint64) bool {
	if c.minDirty || seq != c.minSeq {
		return false
	}
	c.atMin--
	if c.atMin > 0 {
		return false
	}
	c.minDirty = true
	return true
}

// publishAndWake publishes what it can. When frames became readable, it
// adds to wake the tasks of the readers waiting for them and of the
// writers waiting for room, since readable frames may be evicted.
func (c *Channel) publishAndWake(wake []*asyncio.Task) []*asyncio.Task {
	if c.publish() {
		wake = c.readers.take(wake)
		wake = c.writers.take(wake)
	}
	return wake
}

// publish makes readable the committed frames that no reserved frame and
// no strong writer's place holds back. It reports whether pub moved.
func (c *Channel) publish() bool {
	limit := c.hi
	for _, w := range c.holding {
		limit = min(limit, w.hold)
	}
	start := c.pub
	for c.pub < limit {
		f := c.slot(c.pub)
		if f.state == framePending {
			break
		}
		f.pos = c.pubPos
		c.pubPos += uint64(f.n)
		c.pub++
	}
	return c.pub != start
}

type frameState uint8

const (
	framePending   frameState = iota // reserved, being filled
	frameCommitted                   // filled
	frameVoid                        // given up before commit: skipped, 0 bytes
)

// A frame is one frame's storage and metadata. Frames are pooled by size
// class and reference counted under the channel's lock: the channel holds
// a reference while the frame is in its slots, the writer while it fills
// it, and each reader while it lends the frame's bytes. The storage is
// reused only when the last reference goes.
type frame struct {
	buf    []byte // storage; the frame's bytes are buf[:n]
	n      int
	pos    uint64
	writer uint64
	refs   int32
	state  frameState
}

var framePools [bits.UintSize]sync.Pool

// minFrameClass keeps tiny frames from each having a size class of their own.
const minFrameClass = 4

func frameClass(n int) int { return max(pool.Class(n), minFrameClass) }

func getFrame(n int) *frame {
	k := frameClass(n)
	f, ok := framePools[k].Get().(*frame)
	if !ok {
		f = &frame{buf: make([]byte, 1<<k)}
	}
	f.n = n
	return f
}

func (f *frame) unref() {
	f.refs--
	if f.refs == 0 {
		k := frameClass(len(f.buf))
		*f = frame{buf: f.buf}
		framePools[k].Put(f)
	}
}
