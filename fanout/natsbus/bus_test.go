package natsbus

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pollws/pollws/fanout/natsbus/internal/natstest"
)

// events collects what a bus reports.
type events struct {
	errs       chan error
	reconnects chan struct{}
}

func newEvents() *events {
	return &events{errs: make(chan error, 64), reconnects: make(chan struct{}, 64)}
}

func (e *events) options(o *Options) *Options {
	o.OnError = func(err error) { e.errs <- err }
	o.OnReconnect = func() { e.reconnects <- struct{}{} }
	return o
}

func (e *events) wantError(t *testing.T, target error) error {
	t.Helper()
	select {
	case err := <-e.errs:
		if !errors.Is(err, target) {
			t.Fatalf("reported %v, want an error wrapping %v", err, target)
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("no error reported, want one wrapping %v", target)
	}
	return nil
}

func (e *events) wantReconnect(t *testing.T) {
	t.Helper()
	select {
	case <-e.reconnects:
	case err := <-e.errs:
		t.Fatalf("reported %v, want a reconnection", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no reconnection reported")
	}
}

func connect(t *testing.T, url string, o *Options) *Bus {
	t.Helper()
	b, err := Connect(url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// collector gathers what a subscription delivers.
type collector struct {
	mu   sync.Mutex
	msgs [][]byte
	more chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) deliver(msg []byte) {
	c.mu.Lock()
	c.msgs = append(c.msgs, append([]byte(nil), msg...))
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// wait waits until n messages came, and returns them.
func (c *collector) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.msgs)
		c.mu.Unlock()
		if got >= n {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.msgs
		}
		select {
		case <-c.more:
		case <-timeout:
			t.Fatalf("%d messages delivered, want %d", got, n)
		}
	}
}

func numbered(seq uint64, size int) []byte {
	p := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(p, seq)
	return p
}

// Messages on a topic reach every bus subscribed to it, in order, and no
// other; topics that are no subject token are carried too.
func TestPublishSubscribe(t *testing.T) {
	broker := natstest.Start(t)
	pub := connect(t, broker.URL(), nil)
	sub := connect(t, broker.URL(), nil)
	topics := []string{"news", "a.b *>", "émoji 🙂", "x"}
	got := make([]*collector, len(topics))
	for i, topic := range topics {
		got[i] = newCollector()
		stop, err := sub.Subscribe(topic, got[i].deliver)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
	}
	other := connect(t, broker.URL(), &Options{Prefix: "other.app"})
	stray := newCollector()
	stopStray, err := other.Subscribe("news", stray.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer stopStray()
	sub.nc.Flush() // the subscriptions reached the broker
	other.nc.Flush()

	const n = 1000
	for seq := uint64(1); seq <= n; seq++ {
		for i, topic := range topics[:3] {
			if err := pub.Publish(topic, numbered(seq*10+uint64(i), 100)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range topics[:3] {
		msgs := got[i].wait(t, n)
		for k, m := range msgs {
			if want := uint64(k+1)*10 + uint64(i); binary.BigEndian.Uint64(m) != want || len(m) != 100 {
				t.Fatalf("topic %q: message %d is %d, want %d", topics[i], k, binary.BigEndian.Uint64(m), want)
			}
		}
	}
	pub.nc.Flush()
	sub.nc.Flush()
	other.nc.Flush()
	if n, m := got[3].len(), stray.len(); n != 0 || m != 0 {
		t.Errorf("%d messages on a silent topic, %d under another prefix; want none", n, m)
	}
	if st := pub.Stats(); st.Published != 3*n || st.PublishErrors != 0 || !st.Connected {
		t.Errorf("publisher's Stats = %+v, want %d published", st, 3*n)
	}
	if st := sub.Stats(); st.Received != 3*n || st.Subscriptions != 4 || st.Dropped != 0 {
		t.Errorf("subscriber's Stats = %+v, want %d received on 4 subscriptions", st, 3*n)
	}
}

// An outage is reported as it starts and ends; while it lasts Err says so
// and, without a reconnect buffer, Publish fails; then the subscriptions
// resume by themselves.
func TestOutageIsReportedAndReconnectionResumes(t *testing.T) {
	broker := natstest.Start(t)
	pe, se := newEvents(), newEvents()
	pub := connect(t, broker.URL(), pe.options(&Options{ReconnectBuffer: -1, ReconnectWait: 50 * time.Millisecond}))
	sub := connect(t, broker.URL(), se.options(&Options{ReconnectWait: 50 * time.Millisecond}))
	got := newCollector()
	stop, err := sub.Subscribe("t", got.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sub.nc.Flush()
	if err := pub.Publish("t", numbered(1, 8)); err != nil {
		t.Fatal(err)
	}
	got.wait(t, 1)

	broker.Stop()
	perr := pe.wantError(t, ErrDisconnected)
	se.wantError(t, ErrDisconnected)
	if err := pub.Err(); !errors.Is(err, ErrDisconnected) || err != perr {
		t.Errorf("Err during the outage = %v, want the error reported, %v", err, perr)
	}
	if err := pub.Publish("t", numbered(2, 8)); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Publish during the outage without a buffer: %v, want ErrDisconnected", err)
	}

	broker.Restart()
	pe.wantReconnect(t)
	se.wantReconnect(t)
	if err := pub.Err(); err != nil {
		t.Errorf("Err after the reconnection = %v, want nil", err)
	}
	sub.nc.Flush() // the subscription was sent again before the handler ran
	if err := pub.Publish("t", numbered(3, 8)); err != nil {
		t.Fatal(err)
	}
	msgs := got.wait(t, 2)
	if len(msgs) != 2 || binary.BigEndian.Uint64(msgs[1]) != 3 {
		t.Errorf("delivered %d messages, the last %x; want 1 and 3", len(msgs), msgs[len(msgs)-1])
	}
	for _, c := range []struct {
		name string
		st   Stats
	}{{"publisher", pub.Stats()}, {"subscriber", sub.Stats()}} {
		if c.st.Disconnects != 1 || c.st.Reconnects != 1 || !c.st.Connected {
			t.Errorf("%s's Stats = %+v, want 1 disconnect, 1 reconnect, connected", c.name, c.st)
		}
	}
	if st := pub.Stats(); st.PublishErrors != 1 || st.Published != 2 {
		t.Errorf("publisher's Stats = %+v, want 2 published and 1 error", st)
	}
}

// A subscription that takes messages more slowly than they come drops
// them past its pending bound: reported, and counted exactly.
func TestSlowConsumerIsCountedAndReported(t *testing.T) {
	broker := natstest.Start(t)
	ev := newEvents()
	pub := connect(t, broker.URL(), nil)
	sub := connect(t, broker.URL(), ev.options(&Options{PendingBytes: 16 << 10}))
	release := make(chan struct{})
	got := newCollector()
	var once sync.Once
	stop, err := sub.Subscribe("t", func(msg []byte) {
		once.Do(func() { <-release })
		got.deliver(msg)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sub.nc.Flush()
	const n = 200
	for seq := uint64(1); seq <= n; seq++ {
		if err := pub.Publish("t", numbered(seq, 1<<10)); err != nil {
			t.Fatal(err)
		}
	}
	pub.nc.Flush()
	err = ev.wantError(t, ErrSlowConsumer)
	close(release)
	// Every message was either delivered or dropped; wait for the sum.
	var st Stats
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st = sub.Stats()
		if st.Received+st.Dropped == n || time.Now().After(deadline) {
			break
		}
	}
	if st.Dropped == 0 || st.Received+st.Dropped != n || st.SlowConsumers == 0 {
		t.Errorf("Stats = %+v, want %d received or dropped, some dropped", st, n)
	}
	msgs := got.wait(t, int(st.Received))
	last := uint64(0)
	for _, m := range msgs {
		if seq := binary.BigEndian.Uint64(m); seq <= last {
			t.Fatalf("message %d after %d", seq, last)
		} else {
			last = seq
		}
	}
	t.Logf("reported %q; %d delivered in order, %d dropped", err, st.Received, st.Dropped)
}

func TestBadInput(t *testing.T) {
	for _, p := range []string{".", "a..b", "a.*", "a b", "a.>"} {
		if _, err := Connect("nats://127.0.0.1:1", &Options{Prefix: p}); err == nil {
			t.Errorf("Connect with prefix %q succeeded", p)
		}
	}
	if _, err := Connect("nats://127.0.0.1:1", nil); err == nil {
		t.Error("Connect to a port nobody listens on succeeded")
	}
	broker := natstest.Start(t)
	b := connect(t, broker.URL(), nil)
	b.Close()
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.Publish("t", []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if _, err := b.Subscribe("t", func([]byte) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if err := b.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Err after Close: %v, want ErrClosed", err)
	}
}

func TestSubject(t *testing.T) {
	for _, tc := range []struct{ topic, want string }{
		{"news", "p.t.news"},
		{"Room_42-b", "p.t.Room_42-b"},
		{"a.b", "p.b.YS5i"},
		{"*", "p.b.Kg"},
		{">", "p.b.Pg"},
		{"a b", "p.b.YSBi"},
	} {
		if got := subject("p", tc.topic); got != tc.want {
			t.Errorf("subject(%q) = %q, want %q", tc.topic, got, tc.want)
		}
	}
	if err := checkPrefix("app.fanout-1"); err != nil {
		t.Error(err)
	}
}
