package fanout

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/internal/handlertest"
	"github.com/pollws/pollws/wsconn"
)

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

// hubServer serves the subscribers of a hub at /sub?topic=name.
type hubServer struct {
	hub      *Hub
	srv      *httptest.Server
	url      string
	handlers handlertest.Group
	subs     chan *Subscriber // each new subscriber
	ended    chan *Subscriber // each subscriber whose handler ended
}

// newHubServer starts a server for hub h (a new one with options o when
// h is nil) whose subscribers' connections have a write buffer of
// writeBuf bytes (0: the default) and a send buffer of sendBuf bytes (0:
// the system's).
func newHubServer(t testing.TB, h *Hub, o *Options, writeBuf, sendBuf int) *hubServer {
	t.Helper()
	return newHubServerUpgrading(t, h, o, &wsconn.UpgradeOptions{Options: wsconn.Options{BufferSize: writeBuf}}, sendBuf)
}

// newHubServerUpgrading is newHubServer whose subscribers' connections
// are upgraded under opts, with a close timeout of 2 s.
func newHubServerUpgrading(t testing.TB, h *Hub, o *Options, opts *wsconn.UpgradeOptions, sendBuf int) *hubServer {
	t.Helper()
	if h == nil {
		h = New(o)
	}
	s := &hubServer{hub: h, subs: make(chan *Subscriber, 64), ended: make(chan *Subscriber, 64)}
	opts.CloseTimeout = 2 * time.Second
	s.srv = httptest.NewUnstartedServer(s.handlers.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, opts)
		if err != nil {
			return
		}
		sub, err := s.hub.Subscribe(r.URL.Query().Get("topic"), c)
		if err != nil {
			c.Close()
			return
		}
		select {
		case s.subs <- sub:
		default:
		}
		for {
			if _, err := c.ReadMessage(context.Background()); err != nil {
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
	s.url = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/sub?topic="
	t.Cleanup(func() {
		s.hub.Close()
		s.srv.CloseClientConnections()
		s.srv.Close()
		s.handlers.Wait()
	})
	return s
}

// dial connects a gorilla client to topic with a receive buffer of
// recvBuf bytes (0: the system's), and waits until the hub has
// subscribed it.
func (s *hubServer) dial(t testing.TB, topic string, recvBuf int) (*websocket.Conn, *Subscriber) {
	t.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok && recvBuf > 0 {
			tc.SetReadBuffer(recvBuf)
		}
		return c, err
	}}
	return s.dialWith(t, topic, &d)
}

// dialWith connects a client that d dials to topic, and waits until the
// hub has subscribed it.
func (s *hubServer) dialWith(t testing.TB, topic string, d *websocket.Dialer) (*websocket.Conn, *Subscriber) {
	t.Helper()
	c, _, err := d.Dial(s.url+topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, s.subscribed(t)
}

// subscribed waits until the hub has subscribed the next client, and
// returns its Subscriber.
func (s *hubServer) subscribed(t testing.TB) *Subscriber {
	t.Helper()
	select {
	case sub := <-s.subs:
		return sub
	case <-time.After(10 * time.Second):
		t.Fatal("the hub did not subscribe the client")
	}
	return nil
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

func publish(t testing.TB, h *Hub, topic string, typ wsconn.MessageType, p []byte) {
	t.Helper()
	if err := h.Publish(topic, typ, p); err != nil {
		t.Fatal(err)
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
