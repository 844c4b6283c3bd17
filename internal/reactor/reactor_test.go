package reactor

import (
	"errors"
	"net"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/socket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns the two ends of a loopback TCP connection.
func pair(t testing.TB) (a, b *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String()) // completes in the backlog, before Accept
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// signal is a task that records its notifications in a channel.
type signal struct {
	task *asyncio.Task
	c    chan struct{}
}

func newSignal() *signal {
	s := &signal{c: make(chan struct{}, 1)}
	s.task = asyncio.NewTask(func() {
		select {
		case s.c <- struct{}{}:
		default:
		}
	})
	return s
}

func (s *signal) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-s.c:
	case <-time.After(10 * time.Second):
		t.Fatalf("no notification: %s", what)
	}
}

func (s *signal) drain() {
	select {
	case <-s.c:
	default:
	}
}

func newReactor(t *testing.T) *Reactor {
	t.Helper()
	r, err := New()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func register(t *testing.T, r *Reactor, c net.Conn, rd, wr *signal) (*Registration, *socket.Socket) {
	t.Helper()
	s, ok := socket.Of(c)
	if !ok {
		t.Skip("no raw socket on this system")
	}
	g, err := r.Register(s, rd.task, wr.task)
	if err != nil {
		t.Fatal(err)
	}
	return g, s
}

func TestReadableNotifies(t *testing.T) {
	r := newReactor(t)
	srv, cli := pair(t)
	rd, wr := newSignal(), newSignal()
	g, s := register(t, r, srv, rd, wr)
	defer g.Close()
	buf := make([]byte, 64)
	for i := range 3 {
		if _, err := s.Read(buf); !errors.Is(err, socket.ErrWouldBlock) {
			t.Fatalf("read before data: %v, want ErrWouldBlock", err)
		}
		rd.drain() // whatever came before the read is spent
		if _, err := cli.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		rd.wait(t, "the peer wrote")
		if n, err := s.Read(buf); err != nil || string(buf[:n]) != "hello" {
			t.Fatalf("round %d: read %q, %v", i, buf[:n], err)
		}
	}
}

func TestWritableNotifiesAfterFull(t *testing.T) {
	r := newReactor(t)
	srv, cli := pair(t)
	srv.SetWriteBuffer(16 << 10)
	rd, wr := newSignal(), newSignal()
	g, s := register(t, r, srv, rd, wr)
	defer g.Close()
	chunk := make([]byte, 64<<10)
	total := 0
	for {
		n, err := s.Writev([][]byte{chunk})
		total += n
		if errors.Is(err, socket.ErrWouldBlock) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	wr.drain()
	go func() {
		b := make([]byte, 1<<20)
		for got := 0; got < total; {
			n, err := cli.Read(b)
			if err != nil {
				return
			}
			got += n
		}
	}()
	wr.wait(t, "the peer read, making room")
	if _, err := s.Writev([][]byte{chunk[:1]}); err != nil {
		t.Fatalf("write after the writable edge: %v", err)
	}
}

func TestHangUpNotifiesReader(t *testing.T) {
	r := newReactor(t)
	srv, cli := pair(t)
	rd, wr := newSignal(), newSignal()
	g, s := register(t, r, srv, rd, wr)
	defer g.Close()
	buf := make([]byte, 8)
	s.Read(buf)
	rd.drain()
	cli.Close()
	rd.wait(t, "the peer hung up")
	if _, err := s.Read(buf); err == nil || errors.Is(err, socket.ErrWouldBlock) {
		t.Fatalf("read after hang-up: %v, want the end of the stream", err)
	}
}

// TestEndedAfterShortRead is the case Ended exists for: bytes and the
// peer's reset come together, one edge tells of both, and a read that
// takes the bytes (less than it asked for) leaves the error behind with
// no edge to come.
func TestEndedAfterShortRead(t *testing.T) {
	for _, how := range []string{"close", "reset"} {
		t.Run(how, func(t *testing.T) {
			r := newReactor(t)
			srv, cli := pair(t)
			rd, wr := newSignal(), newSignal()
			g, s := register(t, r, srv, rd, wr)
			defer g.Close()
			buf := make([]byte, 64)
			s.Read(buf)
			rd.drain()
			if g.Ended() {
				t.Fatal("Ended before the peer ended")
			}
			if _, err := cli.Write([]byte("last words")); err != nil {
				t.Fatal(err)
			}
			if how == "reset" {
				cli.SetLinger(0)
			}
			cli.Close()
			// Both arrive before the reactor's event goroutine can tell
			// them apart, or in two edges: either way, once the end was
			// told, Ended reports it.
			for !g.Ended() {
				rd.wait(t, "the peer ended")
			}
			// Reading on finds the end, not a wait that no edge would
			// end; over a close the bytes come first.
			var got []byte
			for {
				n, err := s.Read(buf)
				got = append(got, buf[:n]...)
				if errors.Is(err, socket.ErrWouldBlock) {
					t.Fatalf("read after the end was told: %v, with no edge to come", err)
				}
				if err != nil || n == 0 {
					break
				}
			}
			if how == "close" && string(got) != "last words" {
				t.Fatalf("read %q before the end, want the last words", got)
			}
		})
	}
}

func TestClosedRegistrationIsQuiet(t *testing.T) {
	r := newReactor(t)
	srv, cli := pair(t)
	rd, wr := newSignal(), newSignal()
	g, _ := register(t, r, srv, rd, wr)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	g.Close()
	rd.drain()
	cli.Write([]byte("x"))
	// A notification under way when Close returned is allowed; none may
	// follow an event that came after it. Give one a chance to show.
	time.Sleep(50 * time.Millisecond)
	select {
	case <-rd.c:
		t.Fatal("a closed registration was notified")
	default:
	}
}

func TestEventGoroutineOnlyWhileRegistered(t *testing.T) {
	r := newReactor(t)
	base := runtime.NumGoroutine()
	const n = 200
	regs := make([]*Registration, n)
	for i := range regs {
		srv, _ := pair(t)
		regs[i], _ = register(t, r, srv, newSignal(), newSignal())
	}
	if got := runtime.NumGoroutine() - base; got > 1 {
		t.Fatalf("%d registered sockets: %d more goroutines, want at most 1", n, got)
	}
	if r.Len() != n {
		t.Fatalf("Len = %d, want %d", r.Len(), n)
	}
	r.mu.Lock()
	done := r.done // closed when the event goroutine exits
	r.mu.Unlock()
	for _, g := range regs {
		g.Close()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the event goroutine still runs 10s after the last socket left")
	}
	// And it starts again for the next socket.
	srv, cli := pair(t)
	rd := newSignal()
	g, s := register(t, r, srv, rd, newSignal())
	defer g.Close()
	s.Read(make([]byte, 1))
	rd.drain()
	cli.Write([]byte("x"))
	rd.wait(t, "a socket registered after the event goroutine exited")
}

func TestCloseWakesEveryone(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Skip(err)
	}
	srv, _ := pair(t)
	rd, wr := newSignal(), newSignal()
	register(t, r, srv, rd, wr)
	rd.drain()
	wr.drain()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	rd.wait(t, "the reactor closed")
	wr.wait(t, "the reactor closed")
	s, _ := socket.Of(srv)
	if _, err := r.Register(s, nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Register after Close: %v, want ErrClosed", err)
	}
}

// recorder is an Edges and Expirer that records what it is told.
type recorder struct{ read, write, expired chan struct{} }

func newRecorder() *recorder {
	return &recorder{make(chan struct{}, 16), make(chan struct{}, 16), make(chan struct{}, 16)}
}

func (e *recorder) ReadEdge()  { e.read <- struct{}{} }
func (e *recorder) WriteEdge() { e.write <- struct{}{} }
func (e *recorder) Expired()   { e.expired <- struct{}{} }

func recv(t *testing.T, c chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("nothing told: %s", what)
	}
}

// Hand gives a registration's edges and deadline to other Edges, with the
// socket still in the set: the deadline set before is stopped, and what
// comes afterwards goes to the new Edges only.
func TestHandMovesEdgesAndDeadline(t *testing.T) {
	r := newReactor(t)
	srv, cli := pair(t)
	s, ok := socket.Of(srv)
	if !ok {
		t.Skip("no raw socket on this system")
	}
	before, after := newRecorder(), newRecorder()
	g, err := r.RegisterEdges(s, before)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	recv(t, before.write, "a connected socket is writable") // nothing is under way past it
	g.SetTimer(time.Hour)
	g.Hand(after)
	if n := r.Timers(); n != 0 {
		t.Fatalf("%d deadlines after Hand, want the one before stopped", n)
	}
	if r.Len() != 1 {
		t.Fatalf("%d registrations, want the one handed", r.Len())
	}
	g.SetTimer(time.Millisecond)
	recv(t, after.expired, "the deadline set after Hand")
	if _, err := cli.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	recv(t, after.read, "the peer wrote")
	select {
	case <-before.read:
		t.Fatal("a read edge reached the Edges the registration was handed from")
	case <-before.expired:
		t.Fatal("the deadline reached the Edges the registration was handed from")
	default:
	}
}
