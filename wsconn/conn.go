package wsconn

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/reactor"
	"github.com/pollws/pollws/internal/sendq"
	"github.com/pollws/pollws/internal/socket"
	"github.com/pollws/pollws/wsconn/internal/deflate"
	"github.com/pollws/pollws/wsconn/internal/frame"
)

// Conn is a WebSocket connection, server or client side.
//
// Writes never block: [Conn.PollWriteMessage] takes a whole message into
// the connection's bounded buffer or answers NotReady, and the frames go
// out when the buffer fills, on a flush, or before a read waits. Reads
// come as polls, [Conn.PollReadMessage], which a [Reactor] drives for
// many connections on a few goroutines, or blocking, [Conn.ReadMessage],
// for a goroutine per connection. Either way a read answers pings, checks
// frames and text, and ends with a *[CloseError] when the peer closes.
// [Conn.Shutdown] closes gracefully: flush, close frame, the peer's
// close, then the end of the stream.
//
// An idle Conn holds no goroutine and no buffer: the read buffer is held
// only while bytes are pending, and the write buffer only while frames
// are.
//
// A Conn is safe for use by multiple goroutines, and any number of them
// may wait on its writes; one at a time reads (a second read waits for
// the first). Lock order: c.mu, then the send queue's lock; the read
// side is held by one reader, never while waiting for c.mu.
type Conn struct {
	out         sendq.Writer
	sock        *socket.Socket // nil: reads go through a goroutine
	tls         *tlsOut        // frames go through it, onto out, when TLS runs over a socket.Conn
	cfg         *config
	subprotocol *string // nil: none

	// Fields are in an order that leaves little padding: an idle
	// connection's size decides what ten thousand of them cost.
	mu       sync.Mutex
	client   bool
	state    closeState
	peerDone bool // the peer's close frame came
	timedOut bool // the closing handshake ran out of time
	logged   bool
	finisher bool     // a goroutine drives the closing handshake
	served   bool     // a Reactor serves the connection and drives its end
	notified bool     // close_notify was queued
	cl       *closing // once the connection began to close
	mw       *MessageWriter
	endErr   error         // why the connection ended; nil after a clean closing handshake
	flags    atomic.Uint32 // flagDoomed, flagWaiting
	budget   atomic.Int32  // bytes a served handler may still read in this poll; 0: no limit, -1: spent
	rticks   atomic.Uint32 // read edges that came (see rwait)
	rgoing   bool          // a goroutine waits for bytes (no reactor); guarded by rmu
	z        *compression  // permessage-deflate, when agreed; else nil

	rd reader

	// The read edges: tasks waiting for bytes, and how many edges came
	// (rticks).
	rmu   sync.Mutex
	rwait asyncio.WaitSet       // tasks waiting for bytes
	hwait *asyncio.WaitSet      // tasks waiting for the read side; nil until one did
	reg   *reactor.Registration // guarded by rmu

	blk      atomic.Pointer[blocking] // once a goroutine or a runtime timer was needed
	treg     *reactor.Registration    // whose deadline is the timer of a served connection; guarded by mu
	lastRecv atomic.Int64             // when bytes last came, as nanoseconds since epoch
	lastPing int64                    // guarded by mu
}

// The Conn's flags.
const (
	flagDoomed  = 1 << iota // the connection ended without its reader: reads find out why
	flagWaiting             // cl.wait is not empty
)

func (c *Conn) doomed() bool { return c.flags.Load()&flagDoomed != 0 }

func (c *Conn) waiting() bool { return c.flags.Load()&flagWaiting != 0 }

// blocking is what a Conn that no reactor serves keeps for its goroutines
// and its timer. A served connection needs neither, and keeps no room for
// them.
type blocking struct {
	wg    sync.WaitGroup // the Conn's goroutines
	timer *time.Timer    // the connection's timer; guarded by the Conn's mu
}

// blocking returns c's blocking, made on first use.
func (c *Conn) blocking() *blocking {
	if b := c.blk.Load(); b != nil {
		return b
	}
	c.blk.CompareAndSwap(nil, new(blocking))
	return c.blk.Load()
}

// waitGoroutines waits for c's goroutines to exit.
func (c *Conn) waitGoroutines() {
	if b := c.blk.Load(); b != nil {
		b.wg.Wait()
	}
}

// stopTimerLocked stops c's runtime timer, if it has one, with c.mu held.
func (c *Conn) stopTimerLocked() {
	if b := c.blk.Load(); b != nil && b.timer != nil {
		b.timer.Stop()
	}
}

// closing is the state of a closing handshake, which a connection holds
// only from its start. Guarded by c.mu.
type closing struct {
	code     StatusCode // of our close frame
	peerCode StatusCode // of the peer's close frame, once it came
	reason   string
	by       int64           // the deadline of the whole handshake, as nanoseconds since epoch; 0: none
	wait     asyncio.WaitSet // Shutdown polls waiting for the peer's close or the read side
}

var (
	_ asyncio.AsyncWriter = (*Conn)(nil)
	_ asyncio.BufWriter   = (*Conn)(nil)
)

// epoch is what connection times are measured from, monotonically.
var epoch = time.Now()

func now() int64 { return int64(time.Since(epoch)) }

// Server returns the server side of a WebSocket connection over c, whose
// opening handshake is done. It expects masked frames from the peer and
// sends unmasked ones. The Conn takes ownership of c.
func Server(c net.Conn, o *Options) *Conn { return newConn(c, nil, o, false) }

// Client returns the client side of a WebSocket connection over c, whose
// opening handshake is done. It masks the frames it sends and expects
// unmasked ones. The Conn takes ownership of c.
func Client(c net.Conn, o *Options) *Conn { return newConn(c, nil, o, true) }

// opened is a connection whose opening handshake is done, as Upgrade or
// Dial made it, and what the handshake agreed.
type opened struct {
	conn     net.Conn
	pre      []byte // read past the handshake
	protocol string
	compress bool           // permessage-deflate was agreed
	deflate  deflate.Params // what was agreed
	// served: a Reactor serves the Conn at once, and its timer starts
	// there, as a deadline of the reactor's.
	served bool
}

// leftover returns a copy of what br read past the handshake, which is
// the connection's first bytes; nil when there is none.
func leftover(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// newConn returns the Conn over h.
func (h opened) newConn(o *Options, client bool) *Conn {
	c := newConnTimer(h.conn, h.pre, o, client, !h.served)
	if p := h.protocol; p != "" {
		c.subprotocol = &p // most connections have none, and keep no string for it
	}
	c.negotiated(h.deflate, h.compress)
	return c
}

// newConn returns a Conn over c; pre holds bytes read from c past the
// handshake, which reads return first.
func newConn(c net.Conn, pre []byte, o *Options, client bool) *Conn {
	return newConnTimer(c, pre, o, client, true)
}

// newConnTimer is newConn that starts the connection's timer only when
// timer is set.
func newConnTimer(c net.Conn, pre []byte, o *Options, client, timer bool) *Conn {
	wc := &Conn{client: client, cfg: newConfig(o)}
	transport := c
	var sc *socket.Conn
	if tc, ok := c.(*tls.Conn); ok {
		// TLS over a connection of NewListener's (or Dial's): records go
		// into the send queue, written without parking, and reads that
		// would block say so: the connection needs no goroutine.
		if s, ok := tc.NetConn().(*socket.Conn); ok && s.Socket() != nil {
			wc.tls, transport, sc = &tlsOut{conn: tc}, s, s
		}
	}
	wc.out.Init(transport, sendq.Options{
		BufferSize:   wc.cfg.bufferSize,
		WriteTimeout: wc.cfg.writeTimeout,
		PriorityMax:  frame.MaxHeader + frame.MaxControlPayload,
	})
	wc.sock = wc.out.Socket()
	if sc != nil {
		sc.SetNonblocking(&wc.out)
	}
	if len(pre) > 0 {
		wc.rd.pre = &pending{b: pre}
	}
	wc.lastPing = now() // as if pinged at the start: times compare to it, wherever the clock starts
	wc.lastRecv.Store(wc.lastPing)
	if timer {
		wc.startTimer()
	}
	return wc
}

// Subprotocol returns the subprotocol negotiated by [Upgrade] or [Dial],
// or "".
func (c *Conn) Subprotocol() string {
	if c.subprotocol == nil {
		return ""
	}
	return *c.subprotocol
}

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.out.Conn().LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.out.Conn().RemoteAddr() }

// Undelivered returns the bytes of frames written that the peer will not
// get (see [ConnWriter.Undelivered]), frame headers included.
func (c *Conn) Undelivered() int64 {
	if c.tls == nil {
		return c.out.Undelivered()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Undelivered() + c.tls.dropped + int64(c.tls.staged())
}

// Stats returns the counters of the connection's writes.
func (c *Conn) Stats() Stats { return statsOf(&c.out) }
