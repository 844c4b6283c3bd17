package broadcast

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/pollws/pollws/internal/handlertest"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// smallBuffers is a listener whose connections have a small send buffer,
// so that a subscriber that does not read stalls its server side soon.
type smallBuffers struct {
	net.Listener
	send int
}

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && l.send > 0 {
		tc.SetWriteBuffer(l.send)
	}
	return c, err
}

// hubServer serves the subscribers of a hub at /sub.
type hubServer struct {
	hub      *Hub
	srv      *httptest.Server
	url      string
	handlers handlertest.Group
	subs     chan *Subscriber // each new subscriber
	ended    chan *Subscriber // each subscriber whose handler ended
}

// newHubServer starts a server whose subscribers' connections have a
// write buffer of writeBuf bytes (0: the default) and a send buffer of
// sendBuf bytes (0: the system's).
func newHubServer(t testing.TB, o *Options, writeBuf, sendBuf int) *hubServer {
	t.Helper()
	s := &hubServer{hub: New(o), subs: make(chan *Subscriber, 64), ended: make(chan *Subscriber, 64)}
	opts := &wsconn.UpgradeOptions{Options: wsconn.Options{
		Writer:       &wsconn.ConnWriterOptions{BufferSize: writeBuf},
		CloseTimeout: 2 * time.Second,
	}}
	s.srv = httptest.NewUnstartedServer(s.handlers.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, opts)
		if err != nil {
			return
		}
		sub, err := s.hub.Subscribe(c)
		if err != nil {
			c.Close()
			return
		}
		select {
		case s.subs <- sub:
		default:
		}
		for {
			if _, _, err := c.ReadMessage(context.Background()); err != nil {
				break
			}
		}
		sub.Close()
		select {
		case s.ended <- sub:
		default:
		}
	})))
	s.srv.Listener = smallBuffers{s.srv.Listener, sendBuf}
	s.srv.Start()
	s.url = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/sub"
	t.Cleanup(func() {
		s.hub.Close()
		s.srv.CloseClientConnections()
		s.srv.Close()
		s.handlers.Wait()
	})
	return s
}

// dial connects a gorilla client with a receive buffer of recvBuf bytes
// (0: the system's), and waits until the hub has subscribed it.
func (s *hubServer) dial(t testing.TB, recvBuf int) (*websocket.Conn, *Subscriber) {
	t.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok && recvBuf > 0 {
			tc.SetReadBuffer(recvBuf)
		}
		return c, err
	}}
	c, _, err := d.Dial(s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	select {
	case sub := <-s.subs:
		return c, sub
	case <-time.After(10 * time.Second):
		t.Fatal("the hub did not subscribe the client")
	}
	return nil, nil
}

// message returns the test's message seq: its number, then filler.
func message(seq uint64, size int) []byte {
	p := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(p, seq)
	for i := 8; i < len(p); i++ {
		p[i] = byte(seq) + byte(i)
	}
	return p
}

func publish(t *testing.T, h *Hub, op ws.OpCode, p []byte) uint64 {
	t.Helper()
	seq, err := h.Publish(op, p)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func TestPublishReachesEverySubscriberInOrder(t *testing.T) {
	s := newHubServer(t, nil, 0, 0)
	clients := make([]*websocket.Conn, 3)
	for i := range clients {
		clients[i], _ = s.dial(t, 0)
	}
	const n = 200
	for seq := uint64(1); seq <= n; seq++ {
		op := ws.OpBinary
		if seq%2 == 0 {
			op = ws.OpText
		}
		if got := publish(t, s.hub, op, message(seq, 100)); got != seq {
			t.Fatalf("Publish returned seq %d, want %d", got, seq)
		}
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
	if st.Published != n || st.Delivered != 3*n || st.MissedFrames != 0 || st.Subscribers != 3 {
		t.Errorf("Stats = %+v, want %d published, %d delivered, none missed, 3 subscribers", st, n, 3*n)
	}
}

// readSeqs reads messages until the one numbered last, and returns the
// numbers read and the notices, in order (a notice as seq 0). It sends
// each number read to progress, if not nil.
func readSeqs(c *websocket.Conn, last uint64, progress chan<- uint64) (seqs []uint64, notices []Notice, err error) {
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		typ, p, err := c.ReadMessage()
		if err != nil {
			return seqs, notices, fmt.Errorf("after %d messages: %w", len(seqs), err)
		}
		if typ == websocket.TextMessage {
			var n Notice
			if err := json.Unmarshal(p, &n); err != nil || n.Type != "missed" {
				return seqs, notices, fmt.Errorf("text message %q is not a notice (%v)", p, err)
			}
			notices = append(notices, n)
			seqs = append(seqs, 0)
			continue
		}
		seq := binary.BigEndian.Uint64(p)
		seqs = append(seqs, seq)
		if progress != nil {
			progress <- seq
		}
		if seq == last {
			return seqs, notices, nil
		}
	}
}

// A subscriber that stops reading is overtaken; when it reads again it
// is told exactly what it missed, and the rest comes in order. A
// subscriber that keeps up misses nothing.
func TestOvertakenSubscriberIsToldWhatItMissed(t *testing.T) {
	s := newHubServer(t, &Options{Capacity: 8 << 10, KickAfter: -1}, 1<<10, 4<<10)
	slow, _ := s.dial(t, 4<<10)
	fast, _ := s.dial(t, 0)

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
		publish(t, s.hub, ws.OpBinary, message(seq, size))
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

// stallAndRead publishes a burst of n messages to a client that does not
// read, which overtakes it, calling tick after each, then reads until the
// burst's last message or an error, and returns the notices read.
func stallAndRead(t *testing.T, h *Hub, c *websocket.Conn, n int, tick func()) ([]Notice, error) {
	t.Helper()
	var last uint64
	for range n {
		last = publish(t, h, ws.OpBinary, message(h.Published()+1, 100))
		if tick != nil {
			tick()
		}
	}
	_, notices, err := readSeqs(c, last, nil)
	return notices, err
}

// A subscriber overtaken KickAfter times within the window is
// disconnected with 1008.
func TestSubscriberThatKeepsFallingBehindIsDisconnected(t *testing.T) {
	s := newHubServer(t, &Options{Capacity: 4 << 10, KickAfter: 2, BehindWindow: time.Hour}, 1<<10, 4<<10)
	c, sub := s.dial(t, 4<<10)
	var err error
	notices := 0
	for i := 0; err == nil && i < 10; i++ {
		var ns []Notice
		ns, err = stallAndRead(t, s.hub, c, 1000, nil)
		notices += len(ns)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || ce.Text != kickReason {
		t.Fatalf("read ended with %v, want close 1008 %q", err, kickReason)
	}
	if ended := <-s.ended; ended != sub {
		t.Fatal("another subscriber ended")
	}
	// The overtake that disconnects it is not told: no message follows.
	if st := s.hub.Stats(); st.Kicked != 1 || st.Overtakes != 2 || notices > 1 || st.Subscribers != 0 {
		t.Errorf("Stats = %+v, %d notices; want 1 kicked, 2 overtakes, at most 1 notice, no subscriber left", st, notices)
	}
}

// Overtakes further apart than the window do not add up.
func TestOvertakesOutsideTheWindowAreForgiven(t *testing.T) {
	const kickAfter = 10
	s := newHubServer(t, &Options{Capacity: 4 << 10, KickAfter: kickAfter, BehindWindow: time.Second}, 1<<10, 4<<10)
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	s.hub.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	// A receive buffer smaller than the loopback's MSS makes a resumed
	// reader wait for TCP's zero-window probes, up to a second or more;
	// this test needs overtakes, not stalls.
	c, sub := s.dial(t, 256<<10)
	// A publish overtakes a subscriber at most once: with the clock
	// moving past the window at each, no two overtakes are within it.
	tick := func() {
		mu.Lock()
		now = now.Add(2 * time.Second)
		mu.Unlock()
	}
	for i := 0; sub.Stats().Overtakes <= 2*kickAfter; i++ {
		if i == 1000 {
			t.Fatalf("only %d overtakes in %d bursts", sub.Stats().Overtakes, i)
		}
		if _, err := stallAndRead(t, s.hub, c, 1000, tick); err != nil {
			t.Fatalf("after %d overtakes, each at least 2 s apart: %v", sub.Stats().Overtakes, err)
		}
	}
	// With the clock stopped, they add up.
	var err error
	for i := 0; err == nil && i < 2*kickAfter; i++ {
		_, err = stallAndRead(t, s.hub, c, 1000, nil)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("read ended with %v, want close 1008", err)
	}
	<-s.ended
}

// An idle hub holds no goroutine: workers run only while subscribers
// have messages to write.
func TestIdleHubHasNoWorkers(t *testing.T) {
	s := newHubServer(t, nil, 0, 0)
	c, _ := s.dial(t, 0)
	publish(t, s.hub, ws.OpText, []byte("hello"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "hello" {
		t.Fatalf("ReadMessage = %q, %v", p, err)
	}
	// Nothing signals a worker's exit: poll for it, briefly.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.hub.mu.Lock()
		n := s.hub.workers
		s.hub.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still running after the hub went idle", n)
		}
	}
}

// A shutdown.Group drains subscribers with 1001, the hub's writes
// stopped first.
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
		sub, err := h.Subscribe(c)
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
			if _, _, err = c.ReadMessage(context.Background()); err != nil {
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
		publish(t, h, ws.OpBinary, message(uint64(i+1), 512))
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

func TestClosedHub(t *testing.T) {
	h := New(&Options{Capacity: 64})
	if _, err := h.Publish(ws.OpBinary, make([]byte, 100)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Publish of 100 bytes into 64: %v, want ErrTooLarge", err)
	}
	if _, err := h.Publish(ws.OpClose, nil); err == nil {
		t.Error("Publish of a close frame succeeded")
	}
	h.Close()
	if _, err := h.Publish(ws.OpBinary, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if _, err := h.Subscribe(nil); !errors.Is(err, ErrClosed) {
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
