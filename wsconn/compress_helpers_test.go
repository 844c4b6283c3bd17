package wsconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// zHijacker is the http.ResponseWriter that Upgrade needs over a
// connection whose request was read by hand: it hands the connection over.
type zHijacker struct {
	conn net.Conn
	brw  *bufio.ReadWriter
	h    http.Header
}

func (h *zHijacker) Header() http.Header         { return h.h }
func (h *zHijacker) Write(p []byte) (int, error) { return len(p), nil }
func (h *zHijacker) WriteHeader(int)             {}
func (h *zHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, h.brw, nil
}

// zUpgrade reads a handshake request from server and answers it with
// Upgrade under o, as a handler would.
func zUpgrade(server net.Conn, o *UpgradeOptions) (*Conn, error) {
	br := bufio.NewReader(server)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	w := &zHijacker{conn: server, brw: bufio.NewReadWriter(br, bufio.NewWriter(server)), h: http.Header{}}
	return Upgrade(w, req, o)
}

// zDialOver runs Dial under o over the established connection client.
func zDialOver(client net.Conn, o *DialOptions) (*Conn, error) {
	var d DialOptions
	if o != nil {
		d = *o
	}
	d.NetDial = func(context.Context, string, string) (net.Conn, error) { return client, nil }
	return Dial(context.Background(), "ws://127.0.0.1/", &d)
}

// zPairOver makes a WebSocket connection over the ends of an established
// connection: Upgrade under so on server, Dial under co on client.
func zPairOver(server, client net.Conn, so *UpgradeOptions, co *DialOptions) (srv, cli *Conn, err error) {
	type result struct {
		c   *Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := zUpgrade(server, so)
		ch <- result{c, err}
	}()
	cli, err = zDialOver(client, co)
	if err != nil {
		client.Close()
	}
	r := <-ch
	if err != nil || r.err != nil {
		if r.c != nil {
			r.c.Close()
		}
		server.Close()
		if cli != nil {
			cli.Close()
		}
		return nil, nil, fmt.Errorf("dial: %v, upgrade: %v", err, r.err)
	}
	return r.c, cli, nil
}

// zPair is zPairOver on loopback TCP; both ends close when the test ends.
func zPair(t testing.TB, so *UpgradeOptions, co *DialOptions) (srv, cli *Conn) {
	t.Helper()
	s, c, err := wstest.NewTCP(false)
	if err != nil {
		t.Fatal(err)
	}
	srv, cli, err = zPairOver(s, c, so, co)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.Close()
		srv.Close()
	})
	return srv, cli
}

// zOn is an UpgradeOptions or DialOptions' Options with compression
// under o.
func zOn(o CompressionOptions) Options { return Options{Compression: &o} }

// zEcho echoes every message of c with its type until a read fails, and
// returns that error.
func zEcho(c *Conn) error {
	for {
		m, err := c.ReadMessage(context.Background())
		if err != nil {
			return err
		}
		if err := zWrite(c, m.Type, m.Data); err != nil {
			return err
		}
	}
}

// zWrite writes one message, parked until the connection takes it.
func zWrite(c *Conn, typ MessageType, p []byte) error {
	_, err := asyncio.BlockOn(context.Background(), func(t *asyncio.Task) (asyncio.Async[int], error) {
		return c.PollWriteMessage(t, typ, p)
	})
	return err
}

// zJSON returns a JSON-like text message of n bytes: the kind of message
// permessage-deflate is for.
func zJSON(r *rand.Rand, n int) []byte {
	var b strings.Builder
	words := []string{"id", "name", "value", "status", "items", "price", "timestamp", "user", "true", "false", "null"}
	for b.Len() < n {
		fmt.Fprintf(&b, `{"%s":%d,"%s":"%s-%d","%s":[%d,%d]},`, words[r.IntN(len(words))], r.IntN(100000),
			words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(1000), words[r.IntN(len(words))], r.IntN(10), r.IntN(1000))
	}
	return []byte(b.String()[:n])
}

// zRandom returns n bytes that do not compress.
func zRandom(r *rand.Rand, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// zStream reads the messages a Conn receives as one byte stream, for the
// writers' conformance kit: the concatenation of their payloads, then
// io.EOF when the peer's close frame comes. Its Close resets the
// connection.
type zStream struct {
	c   *Conn
	tcp *net.TCPConn
	cur []byte
	own []byte // cur's storage: a Close from another goroutine reads into the Conn's buffer
	err error
}

func (s *zStream) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		m, err := s.c.ReadMessage(context.Background())
		if err != nil {
			if errors.As(err, new(*CloseError)) {
				err = io.EOF
			}
			s.err = err
			return 0, err
		}
		s.own = append(s.own[:0], m.Data...)
		s.cur = s.own
		if len(p) == 0 {
			return 0, nil
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

func (s *zStream) Close() error {
	if s.tcp != nil {
		_ = s.tcp.SetLinger(0)
	}
	return s.c.Close()
}
