package fanout

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/pollws/pollws/buf"
	"github.com/pollws/pollws/wsconn"
)

// A topic's ring holds each message as a frame: its index in the topic's
// stream and the payload bytes of the stream before it (indexHeader),
// then the message encoded by [wsconn.PreparedMessage.AppendBinary], its
// compressed forms with it. Messages lost on the bus count in both
// numbers, so a subscriber finds every gap, whether the ring overtook it
// or the bus lost messages, as a jump in them. frameHeader is the least a
// frame holds besides the payload: the encoding adds plainEncoding bytes
// to a message without compressed forms.
const (
	indexHeader   = 8 + 8
	plainEncoding = 2
	frameHeader   = indexHeader + plainEncoding
)

// topic is one topic of a hub: while it has subscribers, the ring they
// read; with a bus, the numbering of what this hub sends and of what it
// received from each other hub.
//
// Guarded by the hub's h.mu: subs, keys, used, stopBus, and the
// transitions of ch between nil and a ring (made under mu too). Guarded
// by mu: the ring, gen and what the ring was sent. Guarded by sendMu: what
// was sent on the bus.
type topic struct {
	name    string
	subs    map[*Subscriber]struct{}
	keys    map[wsconn.PrepareKey]int // subscribers by the bytes their connections send
	used    bool                      // published to since the hub last looked for idle topics
	stopBus func()                    // ends the subscription to the bus

	// prep holds the keys that keys counts, for a publisher to prepare
	// its message's compressed forms without a lock.
	prep atomic.Pointer[[]wsconn.PrepareKey]

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
	return &topic{name: name, subs: make(map[*Subscriber]struct{}), keys: make(map[wsconn.PrepareKey]int), stream: rand.Uint64()}
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

// addKey counts a subscriber whose connection has key k, with h.mu held.
func (t *topic) addKey(k wsconn.PrepareKey) {
	t.keys[k]++
	if t.keys[k] == 1 {
		t.storeKeys()
	}
}

// dropKey uncounts a subscriber whose connection has key k, with h.mu
// held.
func (t *topic) dropKey(k wsconn.PrepareKey) {
	t.keys[k]--
	if t.keys[k] == 0 {
		delete(t.keys, k)
		t.storeKeys()
	}
}

// storeKeys publishes the keys of t.keys for prepare, with h.mu held.
func (t *topic) storeKeys() {
	ks := make([]wsconn.PrepareKey, 0, len(t.keys))
	for k := range t.keys {
		ks = append(ks, k)
	}
	t.prep.Store(&ks)
}

// prepare returns a message of typ holding p as the topic's ring is to
// hold it: with the compressed form of every key its subscribers have,
// made now, once each, and counted in h. It takes no lock: a subscriber
// that joins meanwhile may find its message without its form, and
// compresses it for itself. The caller gives the message back with
// release once it is in the ring.
func (t *topic) prepare(h *Hub, typ wsconn.MessageType, p []byte) *wsconn.PreparedMessage {
	m, _ := preparedPool.Get().(*wsconn.PreparedMessage)
	if m == nil {
		m = new(wsconn.PreparedMessage)
	}
	m.Reset(typ, p)
	keys := t.prep.Load()
	if keys == nil {
		return m
	}
	for _, k := range *keys {
		if err := m.Prepare(k); err != nil {
			h.log.Warn("fanout: compressing a message for its subscribers", "topic", t.name, "err", err)
		}
	}
	h.deflated.Add(uint64(m.Compressions()))
	return m
}

// release gives back a message that prepare made.
func release(m *wsconn.PreparedMessage) {
	m.Reset(wsconn.Binary, nil)
	preparedPool.Put(m)
}

// preparedPool holds the messages that prepare makes.
var preparedPool sync.Pool

// write puts a message into the ring, with t.mu held: its compressed
// forms too, unless they would not fit in the ring. Without subscribers
// it does nothing.
func (t *topic) write(m *wsconn.PreparedMessage) {
	if typ := m.Type(); t.ch == nil || typ != wsconn.Text && typ != wsconn.Binary {
		return // Publish and receive take no other type
	}
	n := m.BinaryLen()
	if indexHeader+n > t.ch.Cap() {
		m.Reset(m.Type(), m.Data()) // subscribers compress it for themselves
		n = m.BinaryLen()
	}
	// With no strong reader and one writer that commits before t.mu is
	// released, a reservation that fits the ring is always Ready.
	r, err := t.w.PollReserveSlice(nil, indexHeader+n)
	if err != nil || !r.Ready || len(r.Value) == 0 {
		return // terminated: the hub is closing
	}
	f := r.Value
	binary.BigEndian.PutUint64(f, t.index)
	binary.BigEndian.PutUint64(f[8:], t.off)
	m.AppendBinary(f[indexHeader:indexHeader]) // fails only for the types refused above
	if t.w.Commit() != nil {
		return
	}
	t.index++
	t.off += uint64(len(m.Data()))
}

// skip counts frames messages of bytes payload bytes lost before the
// next one, with t.mu held: the next subscriber reads will tell them.
func (t *topic) skip(frames, bytes uint64) {
	t.index += frames
	t.off += bytes
}

// roundCap returns the capacity of a ring made with capacity n.
func roundCap(n int) int { return 1 << bits.Len(uint(n-1)) }
