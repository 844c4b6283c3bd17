package fanout

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/internal/handlertest"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn"
)

func TestPublishReachesEverySubscriberInOrder(t *testing.T) {
	s := newHubServer(t, nil, nil, 0, 0)
	clients := make([]*websocket.Conn, 3)
	for i := range clients {
		clients[i], _ = s.dial(t, "news", 0)
	}
	const n = 200
	for seq := uint64(1); seq <= n; seq++ {
		typ := wsconn.Binary
		if seq%2 == 0 {
			typ = wsconn.Text
		}
		publish(t, s.hub, "news", typ, message(seq, 100))
	}
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for seq := uint64(1); seq <= n; seq++ {
			typ, p, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("client %d, message %d: %v", i, seq, err)
			}
			wantType := websocket.BinaryMessage
			if seq%2 == 0 {
				wantType = websocket.TextMessage
			}
			if typ != wantType || string(p) != string(message(seq, 100)) {
				t.Fatalf("client %d: got message type %d seq %d, want type %d seq %d", i, typ, binary.BigEndian.Uint64(p), wantType, seq)
			}
		}
	}
	st := s.hub.Stats()
	if st.Published != n || st.Delivered != 3*n || st.MissedFrames != 0 || st.Subscribers != 3 || st.Topics != 1 {
		t.Errorf("Stats = %+v, want %d published, %d delivered, none missed, 3 subscribers of 1 topic", st, n, 3*n)
	}
}

// Each topic's subscribers get that topic's messages and no other's; a
// topic without subscribers costs nothing.
func TestTopicsAreSeparate(t *testing.T) {
	s := newHubServer(t, nil, nil, 0, 0)
	a, _ := s.dial(t, "a", 0)
	b, _ := s.dial(t, "b", 0)
	publish(t, s.hub, "nobody", wsconn.Binary, message(99, 10))
	for seq := uint64(1); seq <= 10; seq++ {
		publish(t, s.hub, "a", wsconn.Binary, message(seq, 10))
		publish(t, s.hub, "b", wsconn.Binary, message(100+seq, 10))
	}
	for _, tc := range []struct {
		c     *websocket.Conn
		first uint64
	}{{a, 1}, {b, 101}} {
		seqs, notices, err := readSeqs(tc.c, tc.first+9, nil)
		if err != nil || len(notices) != 0 || len(seqs) != 10 || seqs[0] != tc.first {
			t.Errorf("subscriber from %d read %v, notices %v, %v", tc.first, seqs, notices, err)
		}
	}
	if st := s.hub.Stats(); st.Topics != 2 || st.Published != 21 || st.Delivered != 20 {
		t.Errorf("Stats = %+v, want 2 topics, 21 published, 20 delivered", st)
	}
	s.hub.mu.Lock()
	n := len(s.hub.topics)
	s.hub.mu.Unlock()
	if n != 2 {
		t.Errorf("the hub holds %d topics, want the 2 with subscribers", n)
	}
}

// A subscriber that stops reading is overtaken; when it reads again it
// is told exactly what it missed, and the rest comes in order. A
// subscriber that keeps up misses nothing.
func TestOvertakenSubscriberIsToldWhatItMissed(t *testing.T) {
	s := newHubServer(t, nil, &Options{Capacity: 8 << 10, KickAfter: -1}, 1<<10, 4<<10)
	slow, _ := s.dial(t, "t", 4<<10)
	fast, _ := s.dial(t, "t", 0)

	// The fast subscriber is never more than 2*window messages behind
	// (about 3.5 KiB), well within the hub's 8 KiB.
	const n, size, window = 2000, 100, 16
	progress := make(chan uint64, n)
	type result struct {
		seqs []uint64
		err  error
	}
	done := make(chan result, 1)
	go func() {
		seqs, _, err := readSeqs(fast, n, progress)
		done <- result{seqs, err}
	}()
	var got uint64
	var r *result
	for seq := uint64(1); seq <= n; seq++ {
		publish(t, s.hub, "t", wsconn.Binary, message(seq, size))
		for seq%window == 0 && got+window < seq && r == nil {
			select {
			case got = <-progress:
			case res := <-done:
				r = &res
			}
		}
	}
	if r == nil {
		res := <-done
		r = &res
	}
	if r.err != nil {
		t.Fatalf("fast subscriber: %v", r.err)
	}
	for i, seq := range r.seqs {
		if seq != uint64(i+1) {
			t.Fatalf("fast subscriber: message %d has seq %d", i+1, seq)
		}
	}

	seqs, notices, err := readSeqs(slow, n, nil)
	if err != nil {
		t.Fatalf("slow subscriber: %v", err)
	}
	if len(notices) == 0 {
		t.Fatal("the slow subscriber was never overtaken")
	}
	want, k, missed := uint64(1), 0, uint64(0)
	for _, seq := range seqs {
		if seq == 0 {
			nt := notices[k]
			k++
			if nt.Frames == 0 || nt.Bytes != nt.Frames*size {
				t.Errorf("notice %+v, want frames > 0 and bytes = frames*%d", nt, size)
			}
			want += nt.Frames
			missed += nt.Frames
			continue
		}
		if seq != want {
			t.Fatalf("slow subscriber: got seq %d, want %d (notices %+v)", seq, want, notices)
		}
		want++
	}
	st := s.hub.Stats()
	if got := uint64(len(seqs)-len(notices)) + missed; got != n || st.MissedFrames != missed {
		t.Errorf("slow subscriber: %d received + %d missed = %d, want %d; hub counted %d missed", len(seqs)-len(notices), missed, got, n, st.MissedFrames)
	}
	t.Logf("slow subscriber: %d messages received, %d missed in %d notices %+v", len(seqs)-len(notices), missed, len(notices), notices)
}

// stallAndRead publishes a burst of n messages numbered from *next to a
// client that does not read, which overtakes it, calling tick after each,
// then reads until the burst's last message or an error, and returns the
// notices read.
func stallAndRead(t *testing.T, h *Hub, c *websocket.Conn, next *uint64, n int, tick func()) ([]Notice, error) {
	t.Helper()
	for range n {
		*next++
		publish(t, h, "t", wsconn.Binary, message(*next, 100))
		if tick != nil {
			tick()
		}
	}
	_, notices, err := readSeqs(c, *next, nil)
	return notices, err
}

// A subscriber overtaken KickAfter times within the window is closed
// with 1008.
func TestSubscriberThatKeepsFallingBehindIsDisconnected(t *testing.T) {
	s := newHubServer(t, nil, &Options{Capacity: 4 << 10, KickAfter: 2, BehindWindow: time.Hour}, 1<<10, 4<<10)
	c, sub := s.dial(t, "t", 4<<10)
	var err error
	var seq uint64
	notices := 0
	for i := 0; err == nil && i < 10; i++ {
		var ns []Notice
		ns, err = stallAndRead(t, s.hub, c, &seq, 1000, nil)
		notices += len(ns)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || ce.Text != kickReason {
		t.Fatalf("read ended with %v, want close 1008 %q", err, kickReason)
	}
	if ended := <-s.ended; ended != sub {
		t.Fatal("another subscriber ended")
	}
	// The overtake that closes it is not told: no message follows.
	if st := s.hub.Stats(); st.Kicked != 1 || st.Overtakes != 2 || notices > 1 || st.Subscribers != 0 || st.Topics != 0 {
		t.Errorf("Stats = %+v, %d notices; want 1 kicked, 2 overtakes, at most 1 notice, no subscriber or topic left", st, notices)
	}
}

// Overtakes further apart than the window do not add up.
func TestOvertakesOutsideTheWindowAreForgiven(t *testing.T) {
	const kickAfter = 10
	h := New(&Options{Capacity: 4 << 10, KickAfter: kickAfter, BehindWindow: time.Second})
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	h.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	s := newHubServer(t, h, nil, 1<<10, 4<<10)
	// A receive buffer smaller than the loopback's MSS makes a resumed
	// reader wait for TCP's zero-window probes, up to a second or more;
	// this test needs overtakes, not stalls.
	c, sub := s.dial(t, "t", 256<<10)
	// A publish overtakes a subscriber at most once: with the clock
	// moving past the window at each, no two overtakes are within it.
	tick := func() {
		mu.Lock()
		now = now.Add(2 * time.Second)
		mu.Unlock()
	}
	var seq uint64
	for i := 0; sub.n.overtakes.Load() <= 2*kickAfter; i++ {
		if i == 1000 {
			t.Fatalf("only %d overtakes in %d bursts", sub.n.overtakes.Load(), i)
		}
		if _, err := stallAndRead(t, s.hub, c, &seq, 1000, tick); err != nil {
			t.Fatalf("after %d overtakes, each at least 2 s apart: %v", sub.n.overtakes.Load(), err)
		}
	}
	// With the clock stopped, they add up.
	var err error
	for i := 0; err == nil && i < 2*kickAfter; i++ {
		_, err = stallAndRead(t, s.hub, c, &seq, 1000, nil)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("read ended with %v, want close 1008", err)
	}
	<-s.ended
}

// executorWorkers counts the goroutines that poll tasks of an executor.
func executorWorkers() int {
	b := make([]byte, 1<<20)
	b = b[:runtime.Stack(b, true)]
	return strings.Count(string(b), "asyncio.(*Executor).run(")
}

// An idle hub holds no goroutine: workers run only while subscribers
// have messages to write.
func TestIdleHubHasNoWorkers(t *testing.T) {
	s := newHubServer(t, nil, nil, 0, 0)
	c, _ := s.dial(t, "t", 0)
	publish(t, s.hub, "t", wsconn.Text, []byte("hello"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "hello" {
		t.Fatalf("ReadMessage = %q, %v", p, err)
	}
	// Nothing signals a worker's exit: poll for it, briefly.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		n := executorWorkers()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still running after the hub went idle", n)
		}
	}
}

// A shutdown.Group drains subscribers with 1001, after the messages the
// hub wrote.
func TestGroupDrainsSubscribers(t *testing.T) {
	h := New(nil)
	defer h.Close()
	g := shutdown.NewGroup(nil)
	var handlers handlertest.Group
	added := make(chan struct{}, 8)
	srv := httptest.NewServer(handlers.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		sub, err := h.Subscribe("t", c)
		if err != nil {
			c.Close()
			return
		}
		m, err := g.Add(r.Context(), sub, nil)
		if err != nil {
			sub.Close()
			return
		}
		added <- struct{}{}
		for {
			if _, err = c.ReadMessage(context.Background()); err != nil {
				break
			}
		}
		m.Done(err)
	})))
	defer handlers.Wait()
	defer srv.Close()

	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	var clients []*websocket.Conn
	for range 3 {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		<-added
	}
	for i := range 100 {
		publish(t, h, "t", wsconn.Binary, message(uint64(i+1), 512))
	}
	// Each client reads the 100 messages, then expects the drain's close.
	read := make(chan error, len(clients))
	results := make(chan error, len(clients))
	for _, c := range clients {
		go func() {
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			for i := range 100 {
				if _, p, err := c.ReadMessage(); err != nil || binary.BigEndian.Uint64(p) != uint64(i+1) {
					read <- fmt.Errorf("message %d: %v", i+1, err)
					return
				}
			}
			read <- nil
			_, _, err := c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
				results <- fmt.Errorf("after 100 messages: %v, want close 1001", err)
				return
			}
			results <- nil
		}()
	}
	for range clients {
		if err := <-read; err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep := g.Drain(ctx)
	for range clients {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	if rep.Clean != 3 || rep.Forced != 0 {
		t.Errorf("drain report %v, want 3 clean", rep)
	}
}

// A stopped subscriber's connection is its owner's again: the hub writes
// no more to it, and it may be subscribed to another topic.
func TestStopThenSubscribeElsewhere(t *testing.T) {
	h := New(nil)
	s := newHubServer(t, h, nil, 0, 0)
	c, sub := s.dial(t, "a", 0)
	publish(t, h, "a", wsconn.Binary, message(1, 10))
	if seqs, _, err := readSeqs(c, 1, nil); err != nil || len(seqs) != 1 {
		t.Fatalf("read %v, %v; want message 1", seqs, err)
	}
	sub.Stop()
	sub.Stop()
	publish(t, h, "a", wsconn.Binary, message(2, 10))
	sub2, err := h.Subscribe("b", sub.c)
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Stop()
	publish(t, h, "b", wsconn.Binary, message(3, 10))
	seqs, notices, err := readSeqs(c, 3, nil)
	if err != nil || len(notices) != 0 || fmt.Sprint(seqs) != "[3]" {
		t.Errorf("read %v, notices %v, %v; want [3]", seqs, notices, err)
	}
}

func TestBadInput(t *testing.T) {
	h := New(&Options{Capacity: 64})
	if got, want := h.MaxMessage(), 64-frameHeader; got != want {
		t.Errorf("MaxMessage = %d, want %d", got, want)
	}
	for _, tc := range []struct {
		topic string
		typ   wsconn.MessageType
		size  int
		want  error
	}{
		{"t", wsconn.Binary, 100, ErrTooLarge},
		{"", wsconn.Binary, 1, ErrTopic},
		{strings.Repeat("x", 256), wsconn.Text, 1, ErrTopic},
		{"\xff", wsconn.Text, 1, ErrTopic},
		{"t", wsconn.MessageType(8), 1, nil}, // a close frame: an error of its own
	} {
		err := h.Publish(tc.topic, tc.typ, make([]byte, tc.size))
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Publish(%.10q, %v, %d bytes) = %v, want %v", tc.topic, tc.typ, tc.size, err, tc.want)
		}
	}
	if _, err := h.Subscribe("", nil); !errors.Is(err, ErrTopic) {
		t.Errorf("Subscribe to an empty topic: %v, want ErrTopic", err)
	}
	if _, err := h.Subscribe("t", nil); err == nil {
		t.Error("Subscribe of a nil connection succeeded")
	}
	h.Close()
	if err := h.Publish("t", wsconn.Binary, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	s, c := wsconnPair(t)
	defer s.Close()
	defer c.Close()
	if _, err := h.Subscribe("t", s); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNotice(t *testing.T) {
	for _, tc := range []struct{ frames, bytes uint64 }{{0, 0}, {1, 1024}, {1 << 40, 1<<64 - 1}} {
		var n Notice
		b := appendNotice(nil, tc.frames, tc.bytes)
		if err := json.Unmarshal(b, &n); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if want := (Notice{"missed", tc.frames, tc.bytes}); n != want {
			t.Errorf("%s decodes to %+v, want %+v", b, n, want)
		}
	}
}
