package fanout

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"sync"

	"github.com/pollws/pollws/buf"
	"github.com/pollws/pollws/wsconn"
)

// frameHeader is what a topic puts before each message in its ring: the
// message's index in the topic's stream, the payload bytes of the stream
// before it, and its type. Messages lost on the bus count in both, so a
// subscriber finds every gap, whether the ring overtook it or the bus
// lost messages, as a jump in the numbers.
const frameHeader = 8 + 8 + 1

// topic is one topic of a hub: while it has subscribers, the ring they
// read; with a bus, the numbering of what this hub sends and of what it
// received from each other hub.
//
// Guarded by the hub's h.mu: subs, used, stopBus, and the transitions of
// ch between nil and a ring (made under mu too). Guarded by mu: the ring,
// gen and what the ring was sent. Guarded by sendMu: what was sent on the
// bus.
type topic struct {
	name    string
	subs    map[*Subscriber]struct{}
	used    bool   // published to since the hub last looked for idle topics
	stopBus func() // ends the subscription to the bus

	mu     sync.Mutex
	ch     *buf.Channel // nil while the topic has no subscriber
	w      *buf.Writer
	gen    uint64 // counts the subscriptions to the bus; a delivery of an older one is ignored
	index  uint64 // index of the next message in the ring
	off    uint64 // payload bytes of the messages before it, lost ones included
	remote map[uint64]*remote

	sendMu  sync.Mutex
	stream  uint64 // names this hub's messages on the topic, for as long as the topic exists
	sendSeq uint64 // sequence number of the last message sent on the bus
	sendOff uint64 // payload bytes of the messages sent before the next one
}

// remote is what a topic received from another hub: where its stream is.
type remote struct {
	stream uint64
	seq    uint64 // last sequence number received
	off    uint64 // payload bytes of the stream before the next message
}

func newTopic(name string) *topic {
	return &topic{name: name, subs: make(map[*Subscriber]struct{}), stream: rand.Uint64()}
}

// open makes the ring of a topic that gets its first subscriber, as
// subscription gen to the bus, with t.mu held.
func (t *topic) open(capacity int, gen uint64) {
	// No reader is strong, so a write never waits: it evicts the oldest
	// frames, overtaking the subscribers that had not read them.
	t.ch = buf.NewChannel(capacity, buf.Park)
	t.w = t.ch.NewWeakWriter()
	t.gen = gen
	t.remote = make(map[uint64]*remote)
}

// close drops the ring of a topic whose last subscriber left, with t.mu
// held. What other hubs sent is forgotten: the next subscription starts
// afresh.
func (t *topic) close() {
	t.ch.Terminate()
	t.ch, t.w, t.remote = nil, nil, nil
}

// write puts a message into the ring, with t.mu held. Without subscribers
// it does nothing.
func (t *topic) write(typ wsconn.MessageType, p []byte) {
	if t.ch == nil {
		return
	}
	// With no strong reader and one writer that commits before t.mu is
	// released, a reservation that fits the ring is always Ready.
	r, err := t.w.PollReserveSlice(nil, frameHeader+len(p))
	if err != nil || !r.Ready || len(r.Value) == 0 {
		return // terminated: the hub is closing
	}
	f := r.Value
	binary.BigEndian.PutUint64(f, t.index)
	binary.BigEndian.PutUint64(f[8:], t.off)
	f[16] = byte(typ)
	copy(f[frameHeader:], p)
	if t.w.Commit() != nil {
		return
	}
	t.index++
	t.off += uint64(len(p))
}

// skip counts frames messages of bytes payload bytes lost before the
// next one, with t.mu held: the next subscriber reads will tell them.
func (t *topic) skip(frames, bytes uint64) {
	t.index += frames
	t.off += bytes
}

// roundCap returns the capacity of a ring made with capacity n.
func roundCap(n int) int { return 1 << bits.Len(uint(n-1)) }
