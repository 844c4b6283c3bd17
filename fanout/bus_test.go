package fanout

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/wsconn"
)

// memBus is a Bus between hubs of one process, as a broker is between
// processes: each subscription has a bounded queue and a goroutine that
// delivers from it; a full queue drops the message. It can be told to lose
// messages and to refuse them.
type memBus struct {
	mu    sync.Mutex
	subs  map[string]map[*memSub]struct{}
	lose  int   // messages to lose, for every subscription, before delivering more
	fail  error // what Publish returns; nil: it delivers
	added chan string
}

type memSub struct {
	q    chan []byte
	done chan struct{}
}

func newMemBus() *memBus {
	return &memBus{subs: make(map[string]map[*memSub]struct{}), added: make(chan string, 64)}
}

func (b *memBus) Publish(topic string, msg []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	if b.lose > 0 {
		b.lose--
		return nil
	}
	for s := range b.subs[topic] {
		select {
		case s.q <- bytes.Clone(msg):
		default:
		}
	}
	return nil
}

func (b *memBus) Subscribe(topic string, deliver func([]byte)) (func(), error) {
	s := &memSub{q: make(chan []byte, 1024), done: make(chan struct{})}
	b.mu.Lock()
	if b.fail != nil {
		b.mu.Unlock()
		return nil, b.fail
	}
	if b.subs[topic] == nil {
		b.subs[topic] = make(map[*memSub]struct{})
	}
	b.subs[topic][s] = struct{}{}
	b.mu.Unlock()
	go func() {
		defer close(s.done)
		for msg := range s.q {
			deliver(msg)
		}
	}()
	select {
	case b.added <- topic:
	default:
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs[topic], s)
			if len(b.subs[topic]) == 0 {
				delete(b.subs, topic)
			}
			close(s.q)
			b.mu.Unlock()
			<-s.done
		})
	}, nil
}

// subscriptions returns the number of subscriptions to topic.
func (b *memBus) subscriptions(topic string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs[topic])
}

// wsconnPair returns the two ends of a WebSocket connection over loopback
// TCP, without a handshake.
func wsconnPair(t testing.TB) (server, client *wsconn.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	return wsconn.Server(s, nil), wsconn.Client(c, nil)
}

// tagged is message seq of publisher pub: pub, then seq, then filler.
func tagged(pub byte, seq uint64, size int) []byte {
	p := message(seq, max(size, 9))
	copy(p[1:], p[:8])
	p[0] = pub
	return p
}

// Two hubs on one bus: each subscriber gets every message of both
// publishers, each in its order, and its own hub's messages once.
func TestBusCarriesMessagesBetweenHubs(t *testing.T) {
	bus := newMemBus()
	hubs := []*Hub{New(&Options{Bus: bus}), New(&Options{Bus: bus})}
	var clients []*websocket.Conn
	for _, h := range hubs {
		s := newHubServer(t, h, nil, 0, 0)
		for range 2 {
			c, _ := s.dial(t, "t", 0)
			clients = append(clients, c)
		}
	}
	if n := bus.subscriptions("t"); n != 2 {
		t.Fatalf("%d subscriptions to the bus, want one per hub", n)
	}
	const n = 300
	var wg sync.WaitGroup
	for i, h := range hubs {
		wg.Go(func() {
			for seq := uint64(1); seq <= n; seq++ {
				if err := h.Publish("t", wsconn.Binary, tagged(byte(i), seq, 64)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		var next [2]uint64
		for range 2 * n {
			typ, p, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("client %d after %v: %v", i, next, err)
			}
			if typ != websocket.BinaryMessage || len(p) != 64 || p[0] > 1 {
				t.Fatalf("client %d: unexpected message %d %x", i, typ, p)
			}
			pub, seq := p[0], binary.BigEndian.Uint64(p[1:])
			if next[pub]++; seq != next[pub] || !bytes.Equal(p, tagged(pub, seq, 64)) {
				t.Fatalf("client %d: got message %d of publisher %d, want %d", i, seq, pub, next[pub])
			}
		}
	}
	for i, h := range hubs {
		st := h.Stats()
		if st.Published != n || st.BusSent != n || st.BusReceived != n || st.Delivered != 4*n || st.BusMissed != 0 || st.BusInvalid != 0 {
			t.Errorf("hub %d: Stats = %+v, want %d published, sent and received, %d delivered", i, st, n, 4*n)
		}
	}
}

// Messages the bus loses are counted by the hub that misses them, and
// told to its subscribers, in messages and bytes, before the next one.
func TestBusLossIsCountedAndTold(t *testing.T) {
	bus := newMemBus()
	pub := New(&Options{Bus: bus})
	defer pub.Close()
	sub := New(&Options{Bus: bus})
	s := newHubServer(t, sub, nil, 0, 0)
	c, _ := s.dial(t, "t", 0)
	send := func(from, to uint64) {
		for seq := from; seq <= to; seq++ {
			publish(t, pub, "t", wsconn.Binary, message(seq, int(seq)))
		}
	}
	send(1, 10)
	bus.mu.Lock()
	bus.lose = 5
	bus.mu.Unlock()
	send(11, 20)
	seqs, notices, err := readSeqs(c, 20, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for seq := uint64(1); seq <= 20; seq++ {
		switch {
		case seq == 11:
			want = append(want, 0)
		case seq > 11 && seq <= 15:
		default:
			want = append(want, seq)
		}
	}
	if fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Fatalf("read %v, want %v", seqs, want)
	}
	if nt := notices[0]; nt.Frames != 5 || nt.Bytes != 11+12+13+14+15 {
		t.Errorf("notice %+v, want 5 messages of 65 bytes", nt)
	}
	if st := sub.Stats(); st.BusMissed != 5 || st.BusGaps != 1 || st.MissedFrames != 5 || st.BusReceived != 15 {
		t.Errorf("receiving hub's Stats = %+v, want 5 missed in 1 gap, told, and 15 received", st)
	}
}

// A bus that refuses a message fails Publish with ErrBus after the local
// subscribers got it; the other hubs count it as missed.
func TestBusRefusalIsReturnedAndCounted(t *testing.T) {
	bus := newMemBus()
	a, b := New(&Options{Bus: bus}), New(&Options{Bus: bus})
	sa := newHubServer(t, a, nil, 0, 0)
	sb := newHubServer(t, b, nil, 0, 0)
	ca, _ := sa.dial(t, "t", 0)
	cb, _ := sb.dial(t, "t", 0)
	publish(t, a, "t", wsconn.Binary, message(1, 8))
	down := errors.New("broker down")
	bus.mu.Lock()
	bus.fail = down
	bus.mu.Unlock()
	if err := a.Publish("t", wsconn.Binary, message(2, 8)); !errors.Is(err, ErrBus) || !errors.Is(err, down) {
		t.Errorf("Publish with the bus down: %v, want ErrBus wrapping the bus's error", err)
	}
	bus.mu.Lock()
	bus.fail = nil
	bus.mu.Unlock()
	publish(t, a, "t", wsconn.Binary, message(3, 8))
	if seqs, notices, err := readSeqs(ca, 3, nil); err != nil || fmt.Sprint(seqs) != "[1 2 3]" {
		t.Errorf("publisher's subscriber read %v %v, %v; want all", seqs, notices, err)
	}
	if seqs, notices, err := readSeqs(cb, 3, nil); err != nil || fmt.Sprint(seqs) != "[1 0 3]" || notices[0] != (Notice{"missed", 1, 8}) {
		t.Errorf("other subscriber read %v %v, %v; want 1, a notice of 1 message of 8 bytes, 3", seqs, notices, err)
	}
	if st := a.Stats(); st.BusErrors != 1 || st.BusSent != 2 {
		t.Errorf("publishing hub's Stats = %+v, want 1 bus error and 2 sent", st)
	}
}

// A hub is subscribed to a topic on the bus while the topic has local
// subscribers; a bus that fails the subscription fails Subscribe.
func TestBusSubscriptionFollowsSubscribers(t *testing.T) {
	bus := newMemBus()
	h := New(&Options{Bus: bus})
	defer h.Close()
	s1, c1 := wsconnPair(t)
	defer c1.Close()
	s2, c2 := wsconnPair(t)
	defer c2.Close()
	sub1, err := h.Subscribe("t", s1)
	if err != nil {
		t.Fatal(err)
	}
	sub2, err := h.Subscribe("t", s2)
	if err != nil {
		t.Fatal(err)
	}
	if n := bus.subscriptions("t"); n != 1 {
		t.Errorf("%d subscriptions with 2 subscribers, want 1", n)
	}
	sub1.Close()
	if n := bus.subscriptions("t"); n != 1 {
		t.Errorf("%d subscriptions with 1 subscriber, want 1", n)
	}
	sub2.Close()
	if n := bus.subscriptions("t"); n != 0 {
		t.Errorf("%d subscriptions with no subscriber, want 0", n)
	}
	down := errors.New("broker down")
	bus.mu.Lock()
	bus.fail = down
	bus.mu.Unlock()
	s3, c3 := wsconnPair(t)
	defer c3.Close()
	defer s3.Close()
	if _, err := h.Subscribe("t", s3); !errors.Is(err, ErrBus) || !errors.Is(err, down) {
		t.Errorf("Subscribe with the bus down: %v, want ErrBus wrapping the bus's error", err)
	}
}

// Topics published to but never subscribed are forgotten once many more
// come; those in use stay.
func TestIdleTopicsAreForgotten(t *testing.T) {
	bus := newMemBus()
	h := New(&Options{Bus: bus})
	defer h.Close()
	for i := range 10 * minSweep {
		publish(t, h, fmt.Sprint("topic ", i), wsconn.Text, []byte("x"))
		publish(t, h, "busy", wsconn.Text, []byte("x"))
	}
	h.mu.Lock()
	n := len(h.topics)
	_, busy := h.topics["busy"]
	h.mu.Unlock()
	if n > 2*minSweep || !busy {
		t.Errorf("%d topics held after %d were used once (busy held: %v), want at most %d", n, 10*minSweep, busy, 2*minSweep)
	}
}

func TestEnvelope(t *testing.T) {
	e := envelope{hub: 1, stream: 2, seq: 3, off: 4, typ: wsconn.Text, payload: []byte("hello")}
	b := appendEnvelope(nil, &e)
	var got envelope
	if !parseEnvelope(b, &got) || got.hub != 1 || got.stream != 2 || got.seq != 3 || got.off != 4 || got.typ != wsconn.Text || string(got.payload) != "hello" {
		t.Errorf("parse(append(%+v)) = %+v", e, got)
	}
	for _, bad := range [][]byte{nil, b[:envelopeHeader-1], append([]byte{2}, b[1:]...)} {
		if parseEnvelope(bad, &got) {
			t.Errorf("parse(%x) succeeded", bad)
		}
	}
	zero := appendEnvelope(nil, &envelope{seq: 0, typ: wsconn.Text})
	close := appendEnvelope(nil, &envelope{seq: 1, typ: 8})
	if parseEnvelope(zero, &got) || parseEnvelope(close, &got) {
		t.Error("an envelope with seq 0 or a close frame's type parsed")
	}
}

// Whatever comes from the bus, the hub never panics, and what it takes is
// a message as a hub sent it.
func FuzzReceive(f *testing.F) {
	f.Add(appendEnvelope(nil, &envelope{hub: 1, stream: 2, seq: 3, off: 4, typ: wsconn.Binary, payload: []byte("x")}))
	f.Add([]byte{1})
	h := New(&Options{Bus: newMemBus(), Capacity: 1 << 10})
	defer h.Close()
	h.mu.Lock()
	tp := h.addTopicLocked("t")
	h.mu.Unlock()
	tp.mu.Lock()
	tp.open(1<<10, 1)
	tp.mu.Unlock()
	r := tp.ch.NewWeakReader()
	defer r.Close()
	f.Fuzz(func(t *testing.T, msg []byte) {
		var e envelope
		ok := parseEnvelope(msg, &e) && len(e.payload) <= h.MaxMessage()
		before := h.busReceived.Load() + h.busInvalid.Load()
		h.receive(tp, 1, msg)
		if after := h.busReceived.Load() + h.busInvalid.Load(); !ok && after != before+1 {
			t.Fatalf("an invalid message was not counted as such")
		}
		for {
			fr, err := r.PollFrame(nil)
			if err != nil || !fr.Ready {
				break
			}
			if len(fr.Value.Data) < frameHeader {
				t.Fatalf("a frame of %d bytes", len(fr.Value.Data))
			}
		}
	})
}
