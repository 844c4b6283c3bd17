package soak

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn"
)

const (
	clients    = 200
	maxMessage = 256 << 10 // the largest message a client sends and the server accepts
	// writeBound is the most a server Conn may hold unsent: its buffer
	// (64 KiB), or one message larger than that, plus one control frame.
	writeBound = maxMessage + ws.MaxHeaderSize + ws.MaxHeaderSize + ws.MaxControlFramePayloadSize
	// heapBound is what the whole test process (server and clients) may
	// have in use: a server that buffered without bound, with 200 clients
	// writing up to 256 KiB messages as fast as loopback takes them, would
	// pass it within seconds.
	heapBound = 512 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// The client kinds: every fifth client reads slowly, every tenth resets
// its connection at a random time, every fortieth stops reading late in
// the run and so is still behind when the drain's deadline comes.
type kind int

const (
	normal kind = iota
	slow
	reset
	stall
)

func kindOf(i int) kind {
	switch {
	case i%5 == 0:
		return slow
	case i%10 == 1:
		return reset
	case i%40 == 3:
		return stall
	}
	return normal
}

func (k kind) String() string { return [...]string{"normal", "slow", "reset", "stall"}[k] }

// TestSoak runs 200 gorilla clients against an echo served by a
// wsconn.Reactor for
// about 30 s (3 s with -short), then drains the server, and accounts for
// every message the server accepted: a client that stayed received every
// one, intact and in order; a connection the drain closed hard counted
// what it dropped, and the drain's report says as much; a client that
// vanished received an intact prefix. Throughout, no server Conn holds
// more unsent bytes than its bound, and the process's heap stays bounded.
func TestSoak(t *testing.T) {
	duration := 30 * time.Second
	if testing.Short() {
		duration = 3 * time.Second
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SOAK_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("SOAK_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (replay with SOAK_SEED=%d)", seed, seed)

	srv := startServer(t)
	url := "ws://" + srv.addr + "/ws"
	seedRNG := rand.New(rand.NewPCG(seed, 0))
	block := make([]byte, 2*maxMessage) // random bytes that payloads are cut from
	for i := range block {
		block[i] = byte(seedRNG.IntN(256))
	}

	released := make(chan struct{}) // stalled clients read again
	stop := make(chan struct{})     // clients send no more

	cs := make([]*client, clients)
	var wg sync.WaitGroup
	for i := range cs {
		c := &client{id: i, kind: kindOf(i), rng: rand.New(rand.NewPCG(seed, uint64(i)))}
		var err error
		c.conn, _, err = websocket.DefaultDialer.Dial(url, http.Header{"X-Soak-Client": {strconv.Itoa(i)}})
		if err != nil {
			t.Fatalf("client %d: dial: %v", i, err)
		}
		cs[i] = c
	}
	for _, c := range cs {
		resetAt := time.Duration(float64(duration) * (0.2 + 0.6*c.rng.Float64()))
		stallAt := time.Now().Add(duration * 4 / 5)
		wg.Go(func() { c.write(block, stop) })
		wg.Go(func() { c.read(stallAt, released) })
		if c.kind == reset {
			wg.Go(func() {
				time.Sleep(resetAt) // a random moment of the run
				c.resetConn()
			})
		}
	}

	// Watch the server's buffers and the heap until the drain is over.
	watchDone := make(chan struct{})
	var peakConn, peakTotal, peakHeap atomic.Int64
	var watch sync.WaitGroup
	watch.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for n := 0; ; n++ {
			var total int64
			for _, sc := range srv.snapshot() {
				st := sc.c.Stats()
				held := st.Accepted - st.Written
				total += held
				storeMax(&peakConn, held)
			}
			storeMax(&peakTotal, total)
			if n%4 == 0 {
				runtime.ReadMemStats(&ms)
				storeMax(&peakHeap, int64(ms.HeapInuse))
			}
			select {
			case <-tick.C:
			case <-watchDone:
				return
			}
		}
	})

	time.Sleep(duration) // the load runs for this long; nothing to wait on
	close(stop)
	// The server ends every reset client's connection on its own; wait
	// for that, so that the drain finds the others only.
	for _, c := range cs {
		if c.kind == reset {
			sc := srv.conn(c.id)
			select {
			case <-sc.ended:
			case <-time.After(10 * time.Second):
				t.Fatalf("client %d reset its connection; the server's connection did not end", c.id)
			}
		}
	}
	live := 0
	for _, sc := range srv.snapshot() {
		select {
		case <-sc.ended:
		default:
			live++
		}
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	report := srv.group.Drain(drainCtx)
	cancel()
	close(released)
	wg.Wait()
	close(watchDone)
	watch.Wait()
	srv.close(t)
	t.Logf("drain: %v", report)

	// Account for every message.
	var sent, accepted, delivered, undelivered, lostWithPeer int64
	var forced int
	var forcedBytes int64
	for _, c := range cs {
		sc := srv.conn(c.id)
		st := sc.c.Stats()
		a := sc.accepted.Load()
		sent += int64(len(c.sent))
		accepted += a
		delivered += int64(c.received)
		if c.err != nil {
			t.Errorf("client %d (%v): %v", c.id, c.kind, c.err)
		}
		if int64(c.received) > a {
			t.Errorf("client %d (%v): received %d echoes, the server accepted %d", c.id, c.kind, c.received, a)
			continue
		}
		// Accepted counts the echoes and at most one control frame (the
		// close): the server wrote nothing it was not asked to.
		if extra := st.Accepted - sc.acceptedWire.Load(); extra < 0 || extra > 2*(2+ws.MaxControlFramePayloadSize) {
			t.Errorf("client %d (%v): the writer accepted %d bytes, %d more than the echoes' frames", c.id, c.kind, st.Accepted, extra)
		}
		wireReceived := c.wireReceived()
		if wireReceived > st.Written {
			t.Errorf("client %d (%v): received %d bytes of frames, the server wrote %d", c.id, c.kind, wireReceived, st.Written)
		}
		missing := a - int64(c.received)
		switch {
		case c.kind == reset:
			// The peer vanished: what the server wrote after the peer's
			// last read went with it.
			lostWithPeer += missing
		case sc.forced.Load():
			// Closed hard at the drain's deadline, which the report
			// counts: what the writer still held is counted in bytes;
			// what it had written and the close cut off is reported with
			// the connection.
			forced++
			forcedBytes += sc.c.Undelivered()
			undelivered += missing
		case missing != 0 || sc.c.Undelivered() != 0:
			t.Errorf("client %d (%v): closed cleanly, the server accepted %d echoes and holds %d bytes, the client received %d",
				c.id, c.kind, a, sc.c.Undelivered(), c.received)
		}
	}
	if report.Clean+report.Forced+report.Gone != live {
		t.Errorf("drain: %d clean + %d forced + %d gone, want the %d connections live at the drain", report.Clean, report.Forced, report.Gone, live)
	}
	// OnDone gets an UndeliveredError for every connection closed hard,
	// also for one the report counts as gone because its peer left while
	// the drain waited: the forced ones are at most those, and at least
	// those less the gone.
	if report.Forced > forced || report.Forced+report.Gone < forced || report.Undelivered != forcedBytes {
		t.Errorf("drain: report counts %d forced and %d gone connections and %d undelivered bytes; the connections closed hard are %d, holding %d bytes",
			report.Forced, report.Gone, report.Undelivered, forced, forcedBytes)
	}
	if p := peakConn.Load(); p > writeBound {
		t.Errorf("a server connection held %d unsent bytes, over its bound of %d", p, writeBound)
	}
	if p := peakHeap.Load(); p > heapBound {
		t.Errorf("the heap reached %d bytes, over %d", p, heapBound)
	}
	if accepted == 0 || delivered == 0 {
		t.Errorf("no traffic: %d accepted, %d delivered", accepted, delivered)
	}
	t.Logf("%d clients for %v: %d messages sent, %d accepted by the server, %d delivered and verified, "+
		"%d undelivered on the %d connections the drain closed hard (reported, with the %d bytes they still held), "+
		"%d written to peers that vanished; peak unsent per connection %d B (bound %d), all connections %d B, heap %d MiB",
		clients, duration, sent, accepted, delivered, undelivered, report.Forced, report.Undelivered,
		lostWithPeer, peakConn.Load(), writeBound, peakTotal.Load(), peakHeap.Load()>>20)
}

func storeMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// client is one gorilla client: a writer that sends random messages and
// records each one's size and checksum, and a reader that checks the
// echoes against them, in order.
type client struct {
	id   int
	kind kind
	rng  *rand.Rand // the writer's; the reader has its own
	conn *websocket.Conn

	mu       sync.Mutex
	sent     []sentMessage
	received int   // echoes checked, by the reader
	err      error // the first echo that did not match
}

type sentMessage struct {
	size int
	crc  uint32
}

// size picks a message size from 0 to maxMessage: either end now and
// then, otherwise log-uniform, so small messages are common and large
// ones frequent enough.
func size(rng *rand.Rand) int {
	switch p := rng.Float64(); {
	case p < 0.05:
		return 0
	case p < 0.10:
		return maxMessage
	}
	return int(math.Exp(rng.Float64() * math.Log(maxMessage)))
}

func (c *client) write(block []byte, stop <-chan struct{}) {
	p := make([]byte, maxMessage)
	for seq := uint64(0); ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		n := size(c.rng)
		off := c.rng.IntN(len(block) - maxMessage)
		msg := p[:n]
		copy(msg, block[off:off+n])
		if n >= 8 {
			binary.BigEndian.PutUint64(msg, seq)
		}
		c.mu.Lock()
		c.sent = append(c.sent, sentMessage{n, crc32.Checksum(msg, crcTable)})
		c.mu.Unlock()
		if err := c.conn.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			return // the connection ended; the reader tells how
		}
	}
}

func (c *client) read(stallAt time.Time, released <-chan struct{}) {
	defer c.conn.Close()
	rng := rand.New(rand.NewPCG(uint64(c.id), 1))
	for {
		if c.kind == stall && time.Now().After(stallAt) {
			<-released
		}
		_, p, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.received >= len(c.sent) {
			c.err = fmt.Errorf("echo %d arrived before its message was sent", c.received)
		} else if m := c.sent[c.received]; len(p) != m.size || crc32.Checksum(p, crcTable) != m.crc {
			c.err = fmt.Errorf("echo %d: %d bytes, checksum %08x; sent %d bytes, checksum %08x", c.received, len(p), crc32.Checksum(p, crcTable), m.size, m.crc)
		}
		c.received++
		bad := c.err != nil
		c.mu.Unlock()
		if bad {
			return
		}
		if c.kind == slow {
			time.Sleep(time.Duration(1+rng.IntN(3)) * time.Millisecond) // a slow reader: the point of the test
		}
	}
}

// resetConn makes the client vanish: the connection is reset (SO_LINGER
// 0), with whatever the server sent it unread.
func (c *client) resetConn() {
	if tc, ok := c.conn.NetConn().(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.conn.NetConn().Close()
}

// wireReceived returns the bytes of the server frames that carried the
// echoes the client received.
func (c *client) wireReceived() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, m := range c.sent[:c.received] {
		n += frameSize(m.size)
	}
	return n
}

// frameSize is the size of an unmasked frame with n bytes of payload.
func frameSize(n int) int64 {
	return int64(ws.HeaderSize(ws.Header{Length: int64(n)})) + int64(n)
}

// server is the echo under test, on wsconn.Conn, admitted by a group.
type server struct {
	addr    string
	http    *http.Server
	group   *shutdown.Group
	reactor *wsconn.Reactor
	serve   sync.WaitGroup

	mu       sync.Mutex
	conns    map[int]*serverConn
	byMember map[uint64]*serverConn
}

type serverConn struct {
	c            *wsconn.Conn
	accepted     atomic.Int64 // echoes the writer accepted
	acceptedWire atomic.Int64 // their frames' bytes
	ended        chan struct{}
	forced       atomic.Bool // the group closed it hard
}

func startServer(t *testing.T) *server {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := wsconn.NewReactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: l.Addr().String(), reactor: r, conns: map[int]*serverConn{}, byMember: map[uint64]*serverConn{}}
	s.group = shutdown.NewGroup(&shutdown.GroupOptions{OnDone: func(id uint64, err error) {
		var ue *shutdown.UndeliveredError
		if errors.As(err, &ue) {
			s.mu.Lock()
			s.byMember[id].forced.Store(true)
			s.mu.Unlock()
		}
	}})
	s.http = &http.Server{Handler: s.group.Handler(http.HandlerFunc(s.handle))}
	go s.http.Serve(l)
	return s
}

func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.Header.Get("X-Soak-Client"))
	if err != nil {
		http.Error(w, "no client id", http.StatusBadRequest)
		return
	}
	c, err := wsconn.Upgrade(w, r, &wsconn.UpgradeOptions{Options: wsconn.Options{MaxMessageSize: maxMessage}})
	if err != nil {
		return
	}
	m, err := s.group.Add(r.Context(), c, nil)
	if err != nil {
		c.Close()
		return
	}
	sc := &serverConn{c: c, ended: make(chan struct{})}
	s.mu.Lock()
	s.conns[id] = sc
	s.byMember[m.ID()] = sc
	s.mu.Unlock()
	s.serve.Add(1)
	e := &echo{sc: sc}
	if err := s.reactor.Serve(c, e, func(error) {
		close(sc.ended)
		m.Done(nil)
		s.serve.Done()
	}); err != nil {
		close(sc.ended)
		m.Done(err)
		s.serve.Done()
	}
}

// echo is the echo of examples/echo, served by the reactor: it reads a
// message once the last one's echo was taken, so a slow client slows its
// own reading; replies go out before the read waits.
type echo struct {
	sc      *serverConn
	m       wsconn.Message
	pending bool
}

func (e *echo) Poll(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	c := e.sc.c
	for {
		if e.pending {
			r, err := c.PollWriteMessage(t, e.m.Type, e.m.Data)
			if err != nil || !r.Ready {
				return asyncio.NotReady[struct{}](), err
			}
			e.sc.accepted.Add(1)
			e.sc.acceptedWire.Add(frameSize(len(e.m.Data)))
			e.m, e.pending = wsconn.Message{}, false // the message was the connection's to lend until the next read
		}
		r, err := c.PollReadMessage(t)
		if err != nil || !r.Ready {
			return asyncio.NotReady[struct{}](), err
		}
		e.m, e.pending = r.Value, true
	}
}

func (s *server) conn(id int) *serverConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[id]
}

func (s *server) snapshot() []*serverConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*serverConn, 0, len(s.conns))
	for _, sc := range s.conns {
		out = append(out, sc)
	}
	return out
}

func (s *server) close(t *testing.T) {
	if err := s.http.Close(); err != nil {
		t.Error(err)
	}
	s.serve.Wait()
	if err := s.reactor.Close(); err != nil {
		t.Error(err)
	}
}
