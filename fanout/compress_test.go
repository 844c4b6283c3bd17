package fanout

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/wsconn"
)

// countingConn counts the bytes read from a connection: what came on
// the wire, compressed or not.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countingDial dials TCP and counts what is read into n.
func countingDial(n *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, n}, nil
	}
}

// compressing is the upgrade of subscribers that accept permessage-deflate
// under o.
func compressing(o wsconn.CompressionOptions) *wsconn.UpgradeOptions {
	return &wsconn.UpgradeOptions{Options: wsconn.Options{Compression: &o}}
}

// jsonLike returns a JSON-like text message of n bytes, the kind that
// compresses to about a third.
func jsonLike(r *rand.Rand, n int) []byte {
	var b strings.Builder
	names := []string{"price", "volume", "symbol", "bid", "ask", "ts"}
	for b.Len() < n {
		fmt.Fprintf(&b, `{"%s":%d,"%s":"X%d","%s":%d.%02d},`, names[r.IntN(len(names))], r.IntN(1e6),
			names[r.IntN(len(names))], r.IntN(100), names[r.IntN(len(names))], r.IntN(1000), r.IntN(100))
	}
	return []byte(b.String()[:n])
}

// reader is a subscriber's client as the tests read it: a gorilla client
// or a wsconn one, and the bytes that came on its wire.
type reader struct {
	name string
	wire *atomic.Int64
	read func() (wsconn.MessageType, []byte, error)
}

func gorillaReader(t *testing.T, s *hubServer, topic string, compress bool) reader {
	wire := new(atomic.Int64)
	c, _ := s.dialWith(t, topic, &websocket.Dialer{EnableCompression: compress, NetDialContext: countingDial(wire)})
	c.SetReadLimit(1 << 20)
	return reader{fmt.Sprintf("gorilla compress=%v", compress), wire, func() (wsconn.MessageType, []byte, error) {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		typ, p, err := c.ReadMessage()
		return wsconn.MessageType(typ), p, err
	}}
}

func wsconnReader(t *testing.T, s *hubServer, topic string, o wsconn.CompressionOptions) reader {
	wire := new(atomic.Int64)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	c, err := wsconn.Dial(ctx, s.url+topic, &wsconn.DialOptions{Options: wsconn.Options{Compression: &o}, NetDial: countingDial(wire)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s.subscribed(t)
	return reader{fmt.Sprintf("wsconn %+v", o), wire, func() (wsconn.MessageType, []byte, error) {
		m, err := c.ReadMessage(ctx)
		return m.Type, m.Data, err
	}}
}

// publishRead publishes msg and has every reader read it, in parallel.
// It returns the bytes each read on its wire for it.
func publishRead(t *testing.T, h *Hub, topic string, typ wsconn.MessageType, msg []byte, readers []reader) []int64 {
	t.Helper()
	before := make([]int64, len(readers))
	for i, r := range readers {
		before[i] = r.wire.Load()
	}
	publish(t, h, topic, typ, msg)
	wire := make([]int64, len(readers))
	var wg sync.WaitGroup
	errs := make(chan error, len(readers))
	for i, r := range readers {
		wg.Go(func() {
			gotType, got, err := r.read()
			if err != nil || gotType != typ || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("reader %d (%s): type %v, %d bytes (equal: %v), %v; want %v, %d bytes", i, r.name, gotType, len(got), bytes.Equal(got, msg), err, typ, len(msg))
				return
			}
			wire[i] = r.wire.Load() - before[i]
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return wire
}

// The ring's frameHeader counts what wsconn's encoding adds to a message
// without compressed forms.
func TestPlainEncoding(t *testing.T) {
	m := wsconn.NewPreparedMessage(wsconn.Binary, []byte("abc"))
	if got := m.BinaryLen() - 3; got != plainEncoding {
		t.Errorf("the encoding adds %d bytes, plainEncoding is %d", got, plainEncoding)
	}
}

// A topic of 1,000 subscribers whose connections compress alike: each
// publish compresses the message once, and every subscriber's client
// reads it compressed and inflates it to the message.
func TestCompressedPublishCompressesOnce(t *testing.T) {
	const subs = 1000
	s := newHubServerUpgrading(t, nil, nil, compressing(wsconn.CompressionOptions{}), 0)
	readers := make([]reader, subs)
	for i := range readers {
		readers[i] = gorillaReader(t, s, "t", true)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3 {
		msg := jsonLike(r, 1024)
		wire := publishRead(t, s.hub, "t", wsconn.Text, msg, readers)
		for j, n := range wire {
			if n > int64(len(msg))*6/10 {
				t.Fatalf("message %d: subscriber %d read %d bytes on the wire for %d: not compressed", i, j, n, len(msg))
			}
		}
		if st := s.hub.Stats(); st.Deflated != uint64(i+1) || st.Delivered != uint64((i+1)*subs) {
			t.Fatalf("after %d messages to %d subscribers: %d compressions, %d delivered", i+1, subs, st.Deflated, st.Delivered)
		}
	}
}

// A topic whose subscribers compress in every way: without compression,
// with the default window, with a window of 10 bits, and with context
// takeover. Each reads every message right; the shared forms are made
// once per message that reaches MinSize, whether compression pays or
// not; what compresses comes compressed to all but the first kind.
func TestCompressedMixedTopic(t *testing.T) {
	s := newHubServerUpgrading(t, nil, nil, compressing(wsconn.CompressionOptions{ContextTakeover: true}), 0)
	var readers []reader
	kinds := []string{"plain", "15 bits", "10 bits", "takeover"}
	for range 2 {
		readers = append(readers,
			gorillaReader(t, s, "t", false),
			gorillaReader(t, s, "t", true),
			wsconnReader(t, s, "t", wsconn.CompressionOptions{MaxWindowBits: 10}),
			wsconnReader(t, s, "t", wsconn.CompressionOptions{ContextTakeover: true}))
	}
	r := rand.New(rand.NewPCG(3, 4))
	noise := make([]byte, 2048)
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	for _, tc := range []struct {
		typ     wsconn.MessageType
		msg     []byte
		shrinks bool // compressed, it is smaller
		forms   int  // shared forms compressed
	}{
		{wsconn.Text, jsonLike(r, 1024), true, 2},
		{wsconn.Text, jsonLike(r, 100), true, 0}, // below MinSize, 256 without takeover; 64 with it
		{wsconn.Binary, noise, false, 2},
		{wsconn.Text, jsonLike(r, 20000), true, 2},
		{wsconn.Text, jsonLike(r, 1024), true, 2},
	} {
		before := s.hub.Stats().Deflated
		wire := publishRead(t, s.hub, "t", tc.typ, tc.msg, readers)
		for i, n := range wire {
			kind := kinds[i%len(kinds)]
			minSize := 256
			if kind == "takeover" {
				minSize = 64
			}
			compressed := n < int64(len(tc.msg))
			want := kind != "plain" && tc.shrinks && len(tc.msg) >= minSize
			if compressed != want {
				t.Errorf("a message of %d bytes to a %s subscriber: %d bytes on the wire, compressed %v, want %v", len(tc.msg), kind, n, compressed, want)
			}
		}
		if got := s.hub.Stats().Deflated - before; got != uint64(tc.forms) {
			t.Errorf("a message of %d bytes: %d compressions, want %d", len(tc.msg), got, tc.forms)
		}
	}
}

// A subscriber that joined between the compression of a message and its
// entry into the ring finds it without its form: it compresses it for
// itself, counted. The next message has its form.
func TestCompressedFormMissingFromRing(t *testing.T) {
	s := newHubServerUpgrading(t, nil, nil, compressing(wsconn.CompressionOptions{}), 0)
	plain := gorillaReader(t, s, "t", false)
	s.hub.mu.Lock()
	tp := s.hub.topics["t"]
	s.hub.mu.Unlock()
	r := rand.New(rand.NewPCG(5, 6))
	msg := jsonLike(r, 2048)
	m := tp.prepare(s.hub, wsconn.Text, msg)
	late := gorillaReader(t, s, "t", true)
	tp.mu.Lock()
	tp.write(m)
	tp.mu.Unlock()
	release(m)
	for _, rd := range []reader{plain, late} {
		before := rd.wire.Load()
		typ, got, err := rd.read()
		if err != nil || typ != wsconn.Text || !bytes.Equal(got, msg) {
			t.Fatalf("%s: type %v, %d bytes, %v", rd.name, typ, len(got), err)
		}
		if n := rd.wire.Load() - before; (n < int64(len(msg))) != (rd.wire == late.wire) {
			t.Errorf("%s: %d bytes on the wire for %d", rd.name, n, len(msg))
		}
	}
	if got := s.hub.Stats().Deflated; got != 1 {
		t.Errorf("%d compressions, want the late subscriber's", got)
	}
	wire := publishRead(t, s.hub, "t", wsconn.Text, msg, []reader{plain, late})
	if got := s.hub.Stats().Deflated; got != 2 || wire[1] >= int64(len(msg)) {
		t.Errorf("the next message: %d compressions in all, %d bytes on the late subscriber's wire", got, wire[1])
	}
}

// A message whose compressed form would not fit in the ring beside it
// goes in without it; compressing subscribers compress it themselves.
func TestCompressedFormLargerThanTheRing(t *testing.T) {
	s := newHubServerUpgrading(t, nil, &Options{Capacity: 4 << 10}, compressing(wsconn.CompressionOptions{}), 0)
	rd := gorillaReader(t, s, "t", true)
	msg := jsonLike(rand.New(rand.NewPCG(7, 8)), s.hub.MaxMessage())
	wire := publishRead(t, s.hub, "t", wsconn.Text, msg, []reader{rd})
	// One compression at publish, whose result did not fit, and the
	// subscriber's own.
	if got := s.hub.Stats().Deflated; got != 2 || wire[0] >= int64(len(msg)) {
		t.Errorf("%d compressions, %d bytes on the wire for %d", got, wire[0], len(msg))
	}
}

// Messages from another instance are compressed once on arrival for the
// compressing subscribers here; the instance that published them, with
// no subscribers, compresses nothing.
func TestCompressedFromTheBus(t *testing.T) {
	bus := newMemBus()
	pub := New(&Options{Bus: bus})
	defer pub.Close()
	s := newHubServerUpgrading(t, New(&Options{Bus: bus}), nil, compressing(wsconn.CompressionOptions{}), 0)
	readers := []reader{gorillaReader(t, s, "t", true), gorillaReader(t, s, "t", true), gorillaReader(t, s, "t", false)}
	r := rand.New(rand.NewPCG(9, 10))
	msgs := make([][]byte, 10)
	for i := range msgs {
		msgs[i] = jsonLike(r, 1024)
		publish(t, pub, "t", wsconn.Text, msgs[i])
	}
	for i, rd := range readers {
		before := rd.wire.Load()
		for j, msg := range msgs {
			typ, got, err := rd.read()
			if err != nil || typ != wsconn.Text || !bytes.Equal(got, msg) {
				t.Fatalf("reader %d, message %d: type %v, %d bytes, %v", i, j, typ, len(got), err)
			}
		}
		if n, compressed := rd.wire.Load()-before, i < 2; (n < 10*1024*6/10) != compressed {
			t.Errorf("reader %d: %d bytes on the wire for 10 KiB, want compressed: %v", i, n, compressed)
		}
	}
	if got, sent := s.hub.Stats().Deflated, pub.Stats().Deflated; got != 10 || sent != 0 {
		t.Errorf("%d compressions where the messages arrived, %d where they were published; want 10 and 0", got, sent)
	}
}
