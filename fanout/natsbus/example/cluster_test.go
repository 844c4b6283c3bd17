package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/fanout"
	"github.com/pollws/pollws/fanout/natsbus"
	"github.com/pollws/pollws/fanout/natsbus/internal/natstest"
)

const (
	msgSize   = 256 // bytes per message: the publisher, its number, filler
	topicName = "t"
)

// payload is message seq of publisher pub.
func payload(pub byte, seq uint64) []byte {
	p := make([]byte, msgSize)
	p[0] = pub
	binary.BigEndian.PutUint64(p[1:], seq)
	for i := 9; i < len(p); i++ {
		p[i] = byte(seq*7) + pub + byte(i)
	}
	return p
}

// smallSendBuffers is a listener that gives its first n connections a
// small send buffer, so that a subscriber that does not read stalls its
// server side soon.
type smallSendBuffers struct {
	net.Listener
	mu   sync.Mutex
	n    int
	size int
}

func (l *smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	l.mu.Lock()
	small := l.n > 0
	l.n--
	l.mu.Unlock()
	if tc, ok := c.(*net.TCPConn); ok && small {
		tc.SetWriteBuffer(l.size)
	}
	return c, err
}

// node is one instance of the example serving on a loopback port, with
// its own bus to the broker.
type node struct {
	*instance
	addr       string
	bus        *natsbus.Bus
	errs       chan error    // what the bus reported
	reconnects chan struct{} // each reconnection
	subscribed chan struct{} // a value per subscriber that joined
	out        syncBuffer
	stop       context.CancelFunc
	done       chan error
}

func startNode(t *testing.T, url string, stalled int) *node {
	t.Helper()
	n := &node{errs: make(chan error, 16), reconnects: make(chan struct{}, 16), subscribed: make(chan struct{}, 512), done: make(chan error, 1)}
	bus, err := natsbus.Connect(url, &natsbus.Options{
		ReconnectBuffer: -1, // messages published during an outage are refused: the other instances must count them
		ReconnectWait:   50 * time.Millisecond,
		OnError:         func(err error) { n.errs <- err },
		OnReconnect:     func() { n.reconnects <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	n.bus = bus
	cfg, err := parseFlags([]string{"-capacity", "64000", "-max-behind", "-1", "-drain", "2s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	n.instance = newInstance(cfg, bus, log)
	n.onSubscribe = func() { n.subscribed <- struct{}{} }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	n.stop = stop
	go func() { n.done <- n.serve(ctx, &smallSendBuffers{Listener: ln, n: stalled, size: 4 << 10}, &n.out) }()
	t.Cleanup(func() { n.shutdown(t) })
	return n
}

// shutdown drains the node and leaves the broker; later calls do nothing.
func (n *node) shutdown(t *testing.T) {
	t.Helper()
	if n.stop == nil {
		return
	}
	n.stop()
	n.stop = nil
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("the instance did not drain in time")
	}
	n.bus.Close()
}

func (n *node) dial(t *testing.T, path string, recvBuf int) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok && recvBuf > 0 {
			tc.SetReadBuffer(recvBuf)
		}
		return c, err
	}}
	c, _, err := d.Dial("ws://"+n.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantReport waits for the bus to report an error wrapping target, or a
// reconnection when target is nil.
func (n *node) wantReport(t *testing.T, target error) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case err := <-n.errs:
			if target != nil && errors.Is(err, target) {
				return
			}
			t.Logf("%s: bus reported %v", n.addr, err)
		case <-n.reconnects:
			if target == nil {
				return
			}
		case <-timeout:
			t.Fatalf("%s: the bus did not report %v", n.addr, target)
		}
	}
}

// tally is what one subscriber received: per publisher the next number
// it expects, what notices told it missed and it has not yet seen missing,
// and the first thing that broke the rules.
type tally struct {
	next     [2]uint64
	got      uint64
	told     uint64 // frames notices announced
	budget   uint64 // announced and not yet seen as a gap
	notices  int
	closedBy int // the close code the read ended with
	err      error
}

// take checks one message against the tally.
func (tl *tally) take(typ int, p []byte) error {
	if typ == websocket.TextMessage {
		var n fanout.Notice
		if err := json.Unmarshal(p, &n); err != nil || n.Type != "missed" || n.Frames == 0 || n.Bytes != n.Frames*msgSize {
			return fmt.Errorf("text message %q is not a notice of missed messages of %d bytes", p, msgSize)
		}
		tl.told += n.Frames
		tl.budget += n.Frames
		tl.notices++
		return nil
	}
	if len(p) != msgSize || p[0] > 1 {
		return fmt.Errorf("message of %d bytes from publisher %d", len(p), p[0])
	}
	pub, seq := p[0], binary.BigEndian.Uint64(p[1:])
	if !bytes.Equal(p, payload(pub, seq)) {
		return fmt.Errorf("message %d of publisher %d is corrupt", seq, pub)
	}
	want := tl.next[pub] + 1
	switch {
	case seq < want:
		return fmt.Errorf("message %d of publisher %d after %d: out of order", seq, pub, want-1)
	case seq-want > tl.budget:
		return fmt.Errorf("messages %d to %d of publisher %d missing, only %d announced", want, seq-1, pub, tl.budget)
	}
	tl.budget -= seq - want
	tl.next[pub] = seq
	tl.got++
	return nil
}

// readers are the subscribers that read, each checking what it gets.
type readers struct {
	mu      sync.Mutex
	changed *sync.Cond
	tallies []*tally
	wg      sync.WaitGroup
}

func newReaders() *readers {
	r := &readers{}
	r.changed = sync.NewCond(&r.mu)
	return r
}

// start reads c until it ends, under tally i.
func (r *readers) start(c *websocket.Conn) {
	r.mu.Lock()
	tl := &tally{}
	r.tallies = append(r.tallies, tl)
	r.mu.Unlock()
	r.wg.Go(func() {
		for {
			typ, p, err := c.ReadMessage()
			r.mu.Lock()
			switch {
			case err != nil:
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					tl.closedBy = ce.Code
				} else if tl.err == nil {
					tl.err = err
				}
			case tl.err == nil:
				tl.err = tl.take(typ, p)
			}
			r.changed.Broadcast()
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	})
}

// wait waits until every tally in ts has message seq of pub or a later
// one, and fails the test when one broke the rules.
func (r *readers) wait(t *testing.T, ts []*tally, pub byte, seq uint64) {
	t.Helper()
	timer := time.AfterFunc(60*time.Second, func() {
		r.mu.Lock()
		r.changed.Broadcast()
		r.mu.Unlock()
	})
	defer timer.Stop()
	start := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		behind := 0
		for i, tl := range ts {
			if tl.err != nil {
				t.Fatalf("subscriber %d: %v", i, tl.err)
			}
			if tl.next[pub] < seq {
				behind++
			}
		}
		if behind == 0 {
			return
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("%d of %d subscribers did not get message %d of publisher %d in time", behind, len(ts), seq, pub)
		}
		r.changed.Wait()
	}
}

// Three instances on one broker, 300 subscribers spread across them, ten
// of which never read, and publishers on two instances: every subscriber
// that reads gets every message of each publisher in order, at the pace
// of the readers, not of the stalled ones. The broker restarts: messages
// published meanwhile reach the publisher's own instance, the others
// count the gap and tell their subscribers, and delivery resumes by
// itself. Then an instance stops and the others carry on.
func TestThreeInstancesOverNATS(t *testing.T) {
	const (
		perNode = 100
		stalled = 10 // 4, 3 and 3 on the three instances
		batch   = 50 // messages per publisher between waits: the ring holds 250
	)
	stalledOn := [3]int{4, 3, 3}
	broker := natstest.Start(t)
	var nodes [3]*node
	for i := range nodes {
		nodes[i] = startNode(t, broker.URL(), stalledOn[i])
	}

	// Subscribers: the stalled ones first on each instance, for the small
	// send buffers; they never read until the end.
	rs := newReaders()
	var stuck [3][]*websocket.Conn
	var onNode [3][]*tally
	for i, n := range nodes {
		for range stalledOn[i] {
			stuck[i] = append(stuck[i], n.dial(t, "/sub?topic="+topicName, 4<<10))
		}
		for range perNode - stalledOn[i] {
			rs.start(n.dial(t, "/sub?topic="+topicName, 0))
			rs.mu.Lock()
			onNode[i] = append(onNode[i], rs.tallies[len(rs.tallies)-1])
			rs.mu.Unlock()
		}
		waitN(t, n.subscribed, perNode, "subscribers to join")
	}
	all := append(append(append([]*tally(nil), onNode[0]...), onNode[1]...), onNode[2]...)
	pubs := [2]*websocket.Conn{nodes[0].dial(t, "/pub?topic="+topicName, 0), nodes[1].dial(t, "/pub?topic="+topicName, 0)}
	var sent [2]uint64
	publish := func(pub byte, n int) {
		t.Helper()
		for range n {
			sent[pub]++
			if err := pubs[pub].WriteMessage(websocket.BinaryMessage, payload(pub, sent[pub])); err != nil {
				t.Fatal(err)
			}
		}
	}
	round := func(ts []*tally, rounds int) {
		t.Helper()
		for range rounds {
			publish(0, batch)
			publish(1, batch)
			rs.wait(t, ts, 0, sent[0])
			rs.wait(t, ts, 1, sent[1])
		}
	}

	// Every reader gets every message while ten subscribers stall.
	start := time.Now()
	round(all, 4)
	t.Logf("%d readers on 3 instances got %d messages of 2 publishers each in %v", len(all), sent[0]+sent[1], time.Since(start).Round(time.Millisecond))

	// The broker goes away: each instance reports the outage. What the
	// publishers send meanwhile reaches their own instance's subscribers.
	broker.Stop()
	for _, n := range nodes {
		n.wantReport(t, natsbus.ErrDisconnected)
		if err := n.bus.Err(); !errors.Is(err, natsbus.ErrDisconnected) {
			t.Errorf("%s: Err during the outage = %v", n.addr, err)
		}
	}
	const lost = 30
	publish(0, lost)
	publish(1, lost)
	rs.wait(t, onNode[0], 0, sent[0])
	rs.wait(t, onNode[1], 1, sent[1])

	// It comes back: the buses reconnect by themselves and delivery
	// resumes; the messages of the outage are counted as missed by the
	// instances that did not get them, and told to their subscribers.
	broker.Restart()
	for _, n := range nodes {
		n.wantReport(t, nil)
	}
	round(all, 2)
	for i, n := range nodes {
		hs, bs := n.hub.Stats(), n.bus.Stats()
		remote := uint64(lost) // one publisher elsewhere
		if i == 2 {
			remote = 2 * lost
		}
		if hs.BusMissed < remote || hs.BusGaps == 0 || bs.Disconnects != 1 || bs.Reconnects != 1 {
			t.Errorf("instance %d: hub %+v, bus %+v; want at least %d missed on the bus, 1 disconnect and 1 reconnect", i, hs, bs, remote)
		}
		if i < 2 && (bs.PublishErrors != lost || hs.BusErrors != lost) {
			t.Errorf("instance %d: %d messages refused by the bus, %d counted by the hub; want %d", i, bs.PublishErrors, hs.BusErrors, lost)
		}
	}
	rs.mu.Lock()
	for i, tl := range all {
		if wantTold := uint64(lost); tl.told < wantTold {
			t.Errorf("subscriber %d was told of %d missed messages, want at least %d", i, tl.told, wantTold)
		}
	}
	rs.mu.Unlock()

	// The third instance stops: its subscribers are closed with 1001 (the
	// stalled ones by force at the deadline), and the others carry on.
	nodes[2].shutdown(t)
	rs.mu.Lock()
	for i, tl := range onNode[2] {
		if tl.closedBy != websocket.CloseGoingAway {
			t.Errorf("subscriber %d of the stopped instance: closed with %d, want 1001 (%v)", i, tl.closedBy, tl.err)
		}
	}
	rs.mu.Unlock()
	carryOn := append(append([]*tally(nil), onNode[0]...), onNode[1]...)
	round(carryOn, 2)

	// The stalled subscribers of the running instances read at last: what
	// their connection held, then a notice of what they missed, then the
	// rest, in order; the instances overtook them instead of waiting.
	var stalledTallies []*tally
	for i := range 2 {
		for _, c := range stuck[i] {
			c.NetConn().(*net.TCPConn).SetReadBuffer(256 << 10)
			rs.start(c)
			rs.mu.Lock()
			stalledTallies = append(stalledTallies, rs.tallies[len(rs.tallies)-1])
			rs.mu.Unlock()
		}
	}
	rs.wait(t, stalledTallies, 0, sent[0])
	rs.wait(t, stalledTallies, 1, sent[1])
	for i := range 2 {
		if st := nodes[i].hub.Stats(); st.Overtakes < uint64(stalledOn[i]) {
			t.Errorf("instance %d: %d overtakes, want the %d stalled subscribers overtaken", i, st.Overtakes, stalledOn[i])
		}
	}

	rs.mu.Lock()
	total := sent[0] + sent[1]
	for i, tl := range append(carryOn, stalledTallies...) {
		if tl.got+tl.told != total || tl.budget != 0 {
			t.Errorf("subscriber %d: received %d, told of %d missed (%d not seen missing); want %d in all", i, tl.got, tl.told, tl.budget, total)
		}
	}
	for i, tl := range stalledTallies {
		if tl.notices == 0 {
			t.Errorf("stalled subscriber %d was never overtaken", i)
		}
	}
	rs.mu.Unlock()
	for _, c := range pubs {
		c.Close()
	}
	for i, n := range nodes[:2] {
		n.shutdown(t)
		if out := n.out.String(); !bytes.Contains([]byte(out), []byte("drained: clean=")) {
			t.Errorf("instance %d: output %q", i, out)
		}
	}
	rs.wg.Wait()
	t.Logf("in all %d messages per subscriber; instance stats: %+v", total, nodes[0].hub.Stats())
}

func waitN(t *testing.T, c <-chan struct{}, n int, what string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for i := range n {
		select {
		case <-c:
		case <-timeout:
			t.Fatalf("timed out waiting for %s: %d of %d", what, i, n)
		}
	}
}

// tWriter sends log lines to the test's log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
