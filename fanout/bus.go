package fanout

import (
	"encoding/binary"
	"sync"

	"github.com/pollws/pollws/wsconn"
)

// Bus carries messages between the hubs of several server instances, one
// stream per topic. A hub sends each message it publishes to the bus, and
// subscribes to a topic on the bus while the topic has local subscribers.
// Package github.com/pollws/pollws/fanout/natsbus is a Bus over NATS.
//
// The messages are the hub's own envelopes, opaque to the bus. A hub
// numbers them per topic, so a Bus need not be reliable: a message it
// loses is counted by the hubs that miss it, and told to their
// subscribers. It must keep each sender's order on a topic: the messages
// one hub published, in the order of its calls to Publish, reach deliver
// in that order.
//
// A Bus must be safe for use by multiple goroutines.
type Bus interface {
	// Publish sends msg to every hub subscribed to topic, this one
	// included (a hub ignores its own messages). It may wait for the
	// bus to take msg but not for the other hubs, and may keep msg only
	// until it returns. An error means msg was not sent.
	Publish(topic string, msg []byte) error

	// Subscribe has deliver called with every message published to
	// topic from now on, until stop is called: one call at a time, each
	// sender's messages in order, never from within Publish or
	// Subscribe. It may wait for the bus to confirm the subscription; the
	// hub calls it for a topic's first subscriber, and other hub calls
	// wait meanwhile. msg is valid only during the call, and deliver returns
	// quickly. After stop returns, deliver is called no more, except for
	// a call already under way.
	Subscribe(topic string, deliver func(msg []byte)) (stop func(), err error)
}

// The envelope of a message on the bus:
//
//	version  1 byte, envelopeVersion
//	hub      8 bytes, the sending hub's id
//	stream   8 bytes, names the sending hub's stream on the topic
//	seq      8 bytes, the message's number in the stream, from 1
//	off      8 bytes, the payload bytes of the stream before it
//	type     1 byte, the message type
//	payload  the rest
//
// A receiving hub that sees seq jump knows how many messages it missed,
// and from off how many bytes.
const (
	envelopeVersion = 1
	envelopeHeader  = 1 + 8 + 8 + 8 + 8 + 1
)

// envelope is a message on the bus, decoded.
type envelope struct {
	hub, stream, seq, off uint64
	typ                   wsconn.MessageType
	payload               []byte
}

// appendEnvelope appends the envelope of e to b.
func appendEnvelope(b []byte, e *envelope) []byte {
	b = append(b, envelopeVersion)
	b = binary.BigEndian.AppendUint64(b, e.hub)
	b = binary.BigEndian.AppendUint64(b, e.stream)
	b = binary.BigEndian.AppendUint64(b, e.seq)
	b = binary.BigEndian.AppendUint64(b, e.off)
	b = append(b, byte(e.typ))
	return append(b, e.payload...)
}

// parseEnvelope decodes msg, whose payload e then shares. It reports
// whether msg is an envelope a hub sent.
func parseEnvelope(msg []byte, e *envelope) bool {
	if len(msg) < envelopeHeader || msg[0] != envelopeVersion {
		return false
	}
	e.hub = binary.BigEndian.Uint64(msg[1:])
	e.stream = binary.BigEndian.Uint64(msg[9:])
	e.seq = binary.BigEndian.Uint64(msg[17:])
	e.off = binary.BigEndian.Uint64(msg[25:])
	e.typ = wsconn.MessageType(msg[33])
	e.payload = msg[envelopeHeader:]
	return e.seq > 0 && (e.typ == wsconn.Text || e.typ == wsconn.Binary)
}

// send sends a message on the bus, numbered in the hub's stream on t.
// A message the bus refuses keeps its number, so that other hubs count it
// as missed.
func (t *topic) send(h *Hub, typ wsconn.MessageType, p []byte) error {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	t.sendSeq++
	e := envelope{hub: h.id, stream: t.stream, seq: t.sendSeq, off: t.sendOff, typ: typ, payload: p}
	t.sendOff += uint64(len(p))
	b, _ := envelopes.Get().(*[]byte)
	if b == nil {
		b = new([]byte)
	}
	*b = appendEnvelope((*b)[:0], &e)
	err := h.bus.Publish(t.name, *b)
	envelopes.Put(b)
	return err
}

// envelopes holds the buffers envelopes are encoded into.
var envelopes sync.Pool

// receive takes a message from the bus for topic t's subscription gen:
// unless it is this hub's own or out of date, it goes into the ring after
// a count of what the sender's stream lost since its last message.
func (h *Hub) receive(t *topic, gen uint64, msg []byte) {
	var e envelope
	if !parseEnvelope(msg, &e) || len(e.payload) > h.MaxMessage() {
		h.busInvalid.Add(1)
		return
	}
	if e.hub == h.id {
		return // delivered by Publish already
	}
	m := t.prepare(h, e.typ, e.payload)
	defer release(m)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gen != gen || t.ch == nil {
		return // from a subscription that ended
	}
	r := t.remote[e.hub]
	switch {
	case r == nil || r.stream != e.stream:
		// A hub, or its stream on this topic, new to this subscription:
		// what it sent before is not ours to miss.
		r = &remote{stream: e.stream}
		t.remote[e.hub] = r
	case e.seq <= r.seq:
		h.busInvalid.Add(1) // a bus that broke the sender's order
		return
	case e.seq > r.seq+1:
		frames, bytes := e.seq-r.seq-1, e.off-min(e.off, r.off)
		t.skip(frames, bytes)
		h.busMissed.Add(frames)
		h.busGaps.Add(1)
		h.log.Warn("fanout: messages from another instance were lost on the bus",
			"topic", t.name, "messages", frames, "bytes", bytes)
	}
	r.seq, r.off = e.seq, e.off+uint64(len(e.payload))
	t.write(m)
	h.busReceived.Add(1)
}
