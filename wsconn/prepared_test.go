package wsconn

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/handlertest"
	"github.com/pollws/pollws/wsconn/internal/deflate"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// pSend writes m on c, parked until c takes it, and flushes.
func pSend(c *Conn, m *PreparedMessage) error {
	ctx := context.Background()
	_, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) { return c.PollWritePrepared(t, m) })
	if err == nil {
		_, err = asyncio.BlockOn(ctx, c.PollFlush)
	}
	return err
}

// pServer serves, on every connection upgraded under o, the messages
// msgs, the same PreparedMessages for all, then reads until the client
// leaves. It returns the WebSocket URL.
func pServer(t *testing.T, o *UpgradeOptions, msgs []*PreparedMessage) string {
	t.Helper()
	var handlers handlertest.Group
	srv := httptest.NewServer(handlers.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, o)
		if err != nil {
			return
		}
		defer c.Close()
		for _, m := range msgs {
			if err := pSend(c, m); err != nil {
				t.Errorf("sending a prepared message: %v", err)
				return
			}
		}
		for {
			if _, err := c.ReadMessage(context.Background()); err != nil {
				return
			}
		}
	})))
	t.Cleanup(func() {
		srv.Close()
		handlers.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// pInflate inflates the payload of a message that permessage-deflate
// compressed, with compress/flate.
func pInflate(z []byte) ([]byte, error) {
	in := append(bytes.Clone(z), 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff)
	return io.ReadAll(flate.NewReader(bytes.NewReader(in)))
}

// TestPreparedEveryWindow: one set of prepared messages goes to clients
// that agreed on every server window from 8 to 15 bits, on the default
// one, and on no compression. Each compressing client gets the JSON-like
// message compressed, in exactly the bytes of the form of its window,
// which inflate to the message; the others get it as it is. Random bytes
// and a message below MinSize go uncompressed to all. Each window's form
// is compressed once, whatever the number of clients that need it.
func TestPreparedEveryWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	text := NewPreparedMessage(Text, zJSON(r, 1024))
	noise := NewPreparedMessage(Binary, zRandom(r, 1024))
	small := NewPreparedMessage(Text, zJSON(r, 100))
	msgs := []*PreparedMessage{text, noise, small}
	url := pServer(t, &UpgradeOptions{Options: zOn(CompressionOptions{})}, msgs)

	type offer = wsflate.Parameters
	offers := [][]offer{nil, {{}}, {{ServerNoContextTakeover: true, ClientNoContextTakeover: true}}}
	for bits := 8; bits <= 15; bits++ {
		offers = append(offers, []offer{{ServerMaxWindowBits: wsflate.WindowBits(bits)}}, []offer{{ServerMaxWindowBits: wsflate.WindowBits(bits)}})
	}
	for _, o := range offers {
		name := "none"
		if len(o) > 0 {
			name = zOffer(o)
		}
		t.Run(name, func(t *testing.T) {
			z := zRawDial(t, url, 0, o...)
			if z.ok != (len(o) > 0) {
				t.Fatalf("offered %v, compression agreed: %v", o, z.ok)
			}
			bits := 15
			if b := int(z.p.ServerMaxWindowBits); b != 0 {
				bits = b
			}
			for i, m := range msgs {
				f, err := ws.ReadFrame(z.br)
				if err != nil {
					t.Fatal(err)
				}
				compressed := f.Header.Rsv&ws.Rsv(true, false, false) != 0
				if want := z.ok && m == text; compressed != want || !f.Header.Fin || f.Header.OpCode != ws.OpCode(m.Type()) {
					t.Fatalf("message %d: %+v, want compressed: %v", i, f.Header, want)
				}
				got := f.Payload
				if compressed {
					form, _ := deflate.NewForm(1, bits)
					want, err := form.Compress(nil, m.Data())
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("message %d: %d compressed bytes, not those of a window of %d bits (%d bytes, %v)", i, len(got), bits, len(want), err)
					}
					if got, err = pInflate(got); err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
				}
				if !bytes.Equal(got, m.Data()) {
					t.Fatalf("message %d: read %d bytes, not the %d sent", i, len(got), len(m.Data()))
				}
			}
		})
	}
	// A form per window; the default window and its explicit offer share
	// one. Random bytes were found not to shrink once per form.
	if got := text.Compressions(); got != 8 {
		t.Errorf("the JSON-like message was compressed %d times, want 8", got)
	}
	if got := noise.Compressions(); got != 8 {
		t.Errorf("the random message was compressed %d times, want 8", got)
	}
	if got := small.Compressions(); got != 0 {
		t.Errorf("the message below MinSize was compressed %d times", got)
	}
}

// TestPreparedGorillaClient: gorilla's client with EnableCompression
// reads prepared messages of every kind, from servers of several
// compression options.
func TestPreparedGorillaClient(t *testing.T) {
	types, data := zInteropMessages()
	for _, o := range []CompressionOptions{{}, {MaxWindowBits: 10, MinSize: -1}, {ContextTakeover: true}, {Level: 9}} {
		t.Run(fmt.Sprintf("%+v", o), func(t *testing.T) {
			msgs := make([]*PreparedMessage, len(data))
			for i := range data {
				msgs[i] = NewPreparedMessage(types[i], data[i])
			}
			url := pServer(t, &UpgradeOptions{Options: zOn(o)}, msgs)
			for range 3 {
				d := websocket.Dialer{EnableCompression: true}
				gc, resp, err := d.Dial(url, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
					t.Fatalf("the server answered %q", resp.Header.Get("Sec-WebSocket-Extensions"))
				}
				gc.SetReadLimit(1 << 20)
				for i, m := range msgs {
					typ, got, err := gc.ReadMessage()
					if err != nil || typ != int(m.Type()) || !bytes.Equal(got, m.Data()) {
						t.Fatalf("message %d of %d bytes: type %d, %d bytes, %v", i, len(m.Data()), typ, len(got), err)
					}
				}
				gc.Close()
			}
			made := 0
			for _, m := range msgs {
				made += m.Compressions()
			}
			// gorilla asks for no context takeover: one form, made once
			// per message that reaches MinSize, for the 3 clients.
			want := zCompressible(data)
			if o.MinSize < 0 {
				want = len(data)
			}
			if made != want {
				t.Errorf("%d compressions of %d messages for 3 clients, want %d", made, len(msgs), want)
			}
		})
	}
}

// TestPreparedGobwasClient: gobwas's client with wsflate reads prepared
// messages, compressed where they shrink.
func TestPreparedGobwasClient(t *testing.T) {
	types, data := zInteropMessages()
	msgs := make([]*PreparedMessage, len(data))
	for i := range data {
		msgs[i] = NewPreparedMessage(types[i], data[i])
	}
	url := pServer(t, &UpgradeOptions{Options: zOn(CompressionOptions{MinSize: -1})}, msgs)
	offer := wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}
	var d ws.Dialer
	d.Extensions = append(d.Extensions, offer.Option())
	conn, br, hs, err := d.Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if len(hs.Extensions) != 1 || string(hs.Extensions[0].Name) != wsflate.ExtensionName {
		t.Fatalf("the server accepted %v", hs.Extensions)
	}
	var rd io.Reader = conn
	if br != nil {
		rd = br
	}
	compressed := 0
	for i, m := range msgs {
		f, err := ws.ReadFrame(rd)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := wsflate.IsCompressed(f.Header); ok {
			compressed++
			if f, err = wsflate.DecompressFrame(f); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		if f.Header.OpCode != ws.OpCode(m.Type()) || !bytes.Equal(f.Payload, m.Data()) {
			t.Fatalf("message %d of %d bytes: %v, %d bytes", i, len(m.Data()), f.Header.OpCode, len(f.Payload))
		}
	}
	// Random bytes, and text too short to shrink, go as they are.
	want := 0
	form, _ := deflate.NewForm(1, 15)
	for _, d := range data {
		if z, _ := form.Compress(nil, d); len(z) < len(d) {
			want++
		}
	}
	if want < len(msgs)/2-1 || compressed != want {
		t.Errorf("%d messages came compressed, want %d", compressed, want)
	}
}

// TestPreparedConcurrent: one PreparedMessage written at once by 100
// Conns, servers and clients, over TCP and TLS, without compression,
// with shared forms of three kinds, and with context takeover. Every
// peer reads the message; each shared form is compressed once; the
// shared bytes stay as they were (clients mask their own copy).
func TestPreparedConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	data := zJSON(r, 4096)
	m := NewPreparedMessage(Text, data)
	opts := []*CompressionOptions{nil, {}, {MaxWindowBits: 9}, {Level: 5}, {ContextTakeover: true}}
	type pair struct{ from, to *Conn }
	pairs := make([]pair, 100)
	var setup sync.WaitGroup
	errs := make(chan error, len(pairs))
	for i := range pairs {
		setup.Go(func() {
			o := Options{Compression: opts[i%len(opts)], CloseTimeout: 5 * time.Second}
			var s, c net.Conn
			var err error
			if i%10 == 9 {
				s, c, _, _, err = wstest.NewTLS(false)
			} else {
				s, c, err = wstest.NewTCP(false)
			}
			if err != nil {
				errs <- err
				return
			}
			srv, cli, err := zPairOver(s, c, &UpgradeOptions{Options: o}, &DialOptions{Options: o})
			if err != nil {
				errs <- err
				return
			}
			if i%2 == 0 {
				pairs[i] = pair{srv, cli}
			} else {
				pairs[i] = pair{cli, srv}
			}
		})
	}
	setup.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	defer func() {
		for _, p := range pairs {
			p.from.Close()
			p.to.Close()
		}
	}()
	keys := make(map[PrepareKey]int)
	for _, p := range pairs {
		keys[p.from.PrepareKey()]++
	}
	if len(keys) != 5 {
		t.Fatalf("%d keys among the writers, want 5: %v", len(keys), keys)
	}

	var wg sync.WaitGroup
	failed := make(chan error, 2*len(pairs))
	start := make(chan struct{})
	for i, p := range pairs {
		wg.Go(func() {
			<-start
			for range 3 {
				if err := pSend(p.from, m); err != nil {
					failed <- fmt.Errorf("pair %d: %w", i, err)
					return
				}
			}
		})
		wg.Go(func() {
			for range 3 {
				got, err := p.to.ReadMessage(context.Background())
				if err != nil || got.Type != Text || !bytes.Equal(got.Data, data) {
					failed <- fmt.Errorf("pair %d (%v): read %v, %d bytes, %v", i, p.from.PrepareKey(), got.Type, len(got.Data), err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(failed)
	for err := range failed {
		t.Error(err)
	}
	if got := m.Compressions(); got != 3 {
		t.Errorf("%d compressions for 3 shared forms", got)
	}
	for _, p := range pairs {
		k, sent := p.from.PrepareKey(), zCountsOf(p.from).sent
		if want := map[uint8]int{preparePlain: 0, prepareShared: 3, prepareOwn: 3}[k.mode]; sent != want {
			t.Errorf("a writer of key %v sent %d messages compressed, want %d", k, sent, want)
		}
	}
	for _, pf := range m.forms {
		if got, err := pInflate(pf.z); err != nil || !bytes.Equal(got, data) {
			t.Errorf("the shared form %+v no longer inflates to the message: %d bytes, %v", pf.form, len(got), err)
		}
	}
}

// TestPreparedNotReadyCompressesNothing: a write to a full connection
// answers NotReady and compresses nothing, however often it is polled;
// once the peer reads, the task is notified and the message goes,
// compressed once.
func TestPreparedNotReadyCompressesNothing(t *testing.T) {
	s, cl, err := wstest.NewTCP(true)
	if err != nil {
		t.Fatal(err)
	}
	o := zOn(CompressionOptions{})
	o.BufferSize = 4096
	srv, cli, err := zPairOver(s, cl, &UpgradeOptions{Options: o}, &DialOptions{Options: zOn(CompressionOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	defer cli.Close()

	r := rand.New(rand.NewPCG(41, 42))
	data := zJSON(r, 1024)
	filler := zRandom(r, 200) // below MinSize: sent as it is
	wake := make(chan struct{}, 1)
	task := asyncio.NewTask(func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	sent := 0
	for {
		res, err := srv.PollWriteMessage(task, Binary, filler)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Ready {
			break
		}
		if sent++; sent > 10000 {
			t.Fatal("a connection whose peer reads nothing took 10 MB")
		}
	}
	m := NewPreparedMessage(Text, data)
	for range 5 {
		res, err := srv.PollWritePrepared(task, m)
		if err != nil || res.Ready {
			t.Fatalf("a write to a full connection: %+v, %v", res, err)
		}
	}
	if got := m.Compressions(); got != 0 {
		t.Fatalf("%d compressions for writes that answered NotReady", got)
	}

	done := make(chan error, 1)
	go func() {
		for i := range sent + 1 {
			got, err := cli.ReadMessage(context.Background())
			if err != nil {
				done <- err
				return
			}
			if i == sent && !bytes.Equal(got.Data, data) {
				done <- fmt.Errorf("the prepared message read as %d other bytes", len(got.Data))
				return
			}
		}
		done <- nil
	}()
	for {
		res, err := srv.PollWritePrepared(task, m)
		if err != nil {
			t.Fatal(err)
		}
		if res.Ready {
			if res.Value != len(data) {
				t.Fatalf("Ready(%d), want Ready(%d)", res.Value, len(data))
			}
			break
		}
		select {
		case <-wake:
		case <-time.After(10 * time.Second):
			t.Fatal("the task was not notified as the peer read")
		}
	}
	if _, err := asyncio.BlockOn(context.Background(), srv.PollFlush); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, c := m.Compressions(), zCountsOf(cli); got != 1 || c.read != 1 {
		t.Errorf("%d compressions, %d messages read compressed; want 1 and 1", got, c.read)
	}
}

// TestPreparedBadInput: a nil message, a message of no type and a write
// after Shutdown give errors, twice; ResetBinary refuses what
// AppendBinary does not make and leaves the message as it was.
func TestPreparedBadInput(t *testing.T) {
	srv, cli := zPair(t, &UpgradeOptions{Options: zOn(CompressionOptions{})}, &DialOptions{Options: zOn(CompressionOptions{})})
	for range 2 {
		if _, err := cli.PollWritePrepared(nil, nil); err == nil {
			t.Error("a nil prepared message was written")
		}
		if _, err := cli.PollWritePrepared(nil, NewPreparedMessage(MessageType(9), []byte("x"))); err == nil {
			t.Error("a prepared message of type 9 was written")
		}
	}
	if _, err := NewPreparedMessage(MessageType(8), nil).AppendBinary(nil); err == nil {
		t.Error("a close frame was encoded as a prepared message")
	}
	go func() {
		for {
			if _, err := srv.ReadMessage(context.Background()); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	asyncio.BlockOn(ctx, cli.Shutdown)
	m := NewPreparedMessage(Text, zJSON(rand.New(rand.NewPCG(1, 1)), 1000))
	for range 2 {
		if _, err := cli.PollWritePrepared(nil, m); !errors.Is(err, asyncio.ErrShutdown) {
			t.Errorf("a write after Shutdown: %v, want ErrShutdown", err)
		}
	}
	if m.Compressions() != 0 {
		t.Error("a write after Shutdown compressed")
	}

	form, _ := deflate.NewForm(1, 15)
	k := PrepareKey{mode: prepareShared, form: form}
	if err := m.Prepare(k); err != nil {
		t.Fatal(err)
	}
	good, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{1}},
		{"type 8", append([]byte{8}, good[1:]...)},
		{"17 forms", append([]byte{1, 17}, good[2:]...)},
		{"entries cut", good[:5]},
		{"form longer than the rest", good[:8]},
		{"window 16", append([]byte{1, 1, 1, 16}, good[4:]...)},
		{"level at a small window", append([]byte{1, 1, 1, 9}, good[4:]...)},
		{"a form twice", append(append([]byte{1, 2}, good[2:8]...), append(append([]byte(nil), good[2:8]...), good[8:]...)...)},
	} {
		var v PreparedMessage
		v.Reset(Binary, []byte("kept"))
		if err := v.ResetBinary(tc.b); !errors.Is(err, ErrPreparedEncoding) {
			t.Errorf("%s: ResetBinary = %v, want ErrPreparedEncoding", tc.name, err)
		}
		if v.Type() != Binary || string(v.Data()) != "kept" {
			t.Errorf("%s: a refused encoding changed the message", tc.name)
		}
	}
}

// TestPreparedBinary: a message's encoding carries its forms; the message
// read back from it shares its bytes, sends its forms without
// compressing, and encodes to the same bytes. A form that does not fit
// its key is made apart, in the message's own memory.
func TestPreparedBinary(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	data := zJSON(r, 2000)
	m := NewPreparedMessage(Binary, data)
	f15, _ := deflate.NewForm(1, 15)
	f10, _ := deflate.NewForm(1, 10)
	for _, k := range []PrepareKey{{}, {mode: prepareOwn}, {mode: prepareShared, form: f15, minSize: 256}, {mode: prepareShared, form: f10, minSize: 5000}} {
		if err := m.Prepare(k); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Compressions(); got != 1 {
		t.Fatalf("%d compressions, want the one form whose MinSize the message reaches", got)
	}
	b, err := m.AppendBinary([]byte("head"))
	if err != nil || len(b)-4 != m.BinaryLen() || string(b[:4]) != "head" {
		t.Fatalf("AppendBinary appended %d bytes, BinaryLen says %d, %v", len(b)-4, m.BinaryLen(), err)
	}
	b = b[4:]
	var v PreparedMessage
	if err := v.ResetBinary(b); err != nil {
		t.Fatal(err)
	}
	if v.Type() != Binary || !bytes.Equal(v.Data(), data) || &v.Data()[0] != &b[len(b)-len(data)] {
		t.Fatalf("read back as %v, %d bytes (shared: %v)", v.Type(), len(v.Data()), &v.Data()[0] == &b[len(b)-len(data)])
	}
	again, _ := v.AppendBinary(nil)
	if !bytes.Equal(again, b) {
		t.Error("the message read back encodes to other bytes")
	}
	if err := v.Prepare(PrepareKey{mode: prepareShared, form: f15}); err != nil || v.Compressions() != 0 {
		t.Errorf("preparing a form the encoding carries: %d compressions, %v", v.Compressions(), err)
	}
	if err := v.Prepare(PrepareKey{mode: prepareShared, form: f10}); err != nil || v.Compressions() != 1 {
		t.Errorf("preparing a form the encoding lacks: %d compressions, %v", v.Compressions(), err)
	}
	for _, pf := range v.forms {
		if got, err := pInflate(pf.z); err != nil || !bytes.Equal(got, data) {
			t.Errorf("form %+v inflates to %d bytes, %v", pf.form, len(got), err)
		}
	}
	if !bytes.Equal(b, again) {
		t.Error("a form made for the message read back wrote into the encoding")
	}
}

// FuzzPreparedBinary: ResetBinary never panics, and what it accepts
// encodes back to the same bytes.
func FuzzPreparedBinary(f *testing.F) {
	m := NewPreparedMessage(Text, zJSON(rand.New(rand.NewPCG(1, 2)), 600))
	f10, _ := deflate.NewForm(1, 10)
	f15, _ := deflate.NewForm(3, 15)
	f.Add(must(m.AppendBinary(nil)))
	m.Prepare(PrepareKey{mode: prepareShared, form: f10})
	f.Add(must(m.AppendBinary(nil)))
	m.Prepare(PrepareKey{mode: prepareShared, form: f15})
	f.Add(must(m.AppendBinary(nil)))
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v PreparedMessage
		if err := v.ResetBinary(b); err != nil {
			if !errors.Is(err, ErrPreparedEncoding) {
				t.Fatalf("error %v does not wrap ErrPreparedEncoding", err)
			}
			return
		}
		got, err := v.AppendBinary(nil)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%x read back encodes to %x, %v", b, got, err)
		}
		if v.BinaryLen() != len(b) {
			t.Fatalf("BinaryLen %d of %d bytes", v.BinaryLen(), len(b))
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
