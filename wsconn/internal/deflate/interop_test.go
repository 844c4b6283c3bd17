package deflate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/wsconn/internal/handshake"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// endpoint is one end of a WebSocket connection, framed by hand with
// gobwas's frame functions and compressed with this package's codec: the
// part of wsconn this package is for, against real peers over loopback.
type endpoint struct {
	conn   net.Conn
	br     *bufio.Reader
	client bool
	c      *Compressor
	d      *Decompressor
	// frames counts the frames read with RSV1 set.
	compressed int
}

func newEndpoint(conn net.Conn, br *bufio.Reader, client bool, p Params, o *Options) *endpoint {
	return &endpoint{conn: conn, br: br, client: client, c: NewCompressor(p, client, o), d: NewDecompressor(p, client)}
}

func (e *endpoint) release() {
	e.c.Release()
	e.d.Release()
}

// writeMessage sends msg in frames of at most frag bytes of payload (0:
// one frame), compressed with RSV1 on the first frame when the
// compressor says so.
func (e *endpoint) writeMessage(op ws.OpCode, msg []byte, frag int) error {
	payload, rsv := msg, byte(0)
	if e.c.ShouldCompress(len(msg)) {
		z, err := e.c.Compress(make([]byte, 0, MaxCompressedLen(len(msg))), msg)
		if err != nil {
			return err
		}
		payload, rsv = z, ws.Rsv(true, false, false)
	}
	frames := split(payload, frag)
	var buf bytes.Buffer
	for i, f := range frames {
		h := ws.Header{Fin: i == len(frames)-1, Rsv: rsv, OpCode: op, Length: int64(len(f))}
		if i > 0 {
			h.OpCode, h.Rsv = ws.OpContinuation, 0
		}
		f = append([]byte(nil), f...)
		if e.client {
			h.Masked = true
			h.Mask = ws.NewMask()
			ws.Cipher(f, h.Mask, 0)
		}
		if err := ws.WriteHeader(&buf, h); err != nil {
			return err
		}
		buf.Write(f)
	}
	_, err := e.conn.Write(buf.Bytes())
	return err
}

// readMessage reads the next data message, answering pings, and inflates
// it as its payload arrives, a few hundred bytes at a time.
func (e *endpoint) readMessage(limit int) (ws.OpCode, []byte, error) {
	var (
		op         ws.OpCode
		compressed bool
		out        []byte
	)
	grow := func() {
		grown := make([]byte, len(out), min(2*cap(out)+256, limit))
		copy(grown, out)
		out = grown
	}
	for {
		h, err := ws.ReadHeader(e.br)
		if err != nil {
			return 0, nil, err
		}
		if h.OpCode.IsControl() {
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(e.br, p); err != nil {
				return 0, nil, err
			}
			if h.OpCode == ws.OpClose {
				return ws.OpClose, p, io.EOF
			}
			continue
		}
		if h.OpCode != ws.OpContinuation {
			op, compressed = h.OpCode, h.Rsv&ws.Rsv(true, false, false) != 0
			if compressed {
				e.compressed++
			}
		}
		for off := int64(0); off < h.Length; {
			piece := make([]byte, min(h.Length-off, 300))
			if _, err := io.ReadFull(e.br, piece); err != nil {
				return 0, nil, err
			}
			if h.Masked {
				ws.Cipher(piece, h.Mask, int(off))
			}
			off += int64(len(piece))
			if !compressed {
				out = append(out, piece...)
				continue
			}
			for len(piece) > 0 {
				var n int
				out, n, err = e.d.Inflate(out, piece, limit)
				piece = piece[n:]
				if errors.Is(err, ErrShortBuffer) {
					grow()
				} else if err != nil {
					return 0, nil, err
				}
			}
		}
		if !h.Fin {
			continue
		}
		for compressed {
			out, err = e.d.Finish(out, limit)
			if !errors.Is(err, ErrShortBuffer) {
				break
			}
			grow()
		}
		return op, out, err
	}
}

// interopMessages are what the interop tests send: every size from 16 B
// to 128 KiB, text and binary, some below the compression threshold.
func interopMessages() [][]byte {
	r := rand.New(rand.NewPCG(21, 21))
	var msgs [][]byte
	for _, n := range []int{0, 16, 100, 200, 1024, 5000, 40000, 131072} {
		msgs = append(msgs, jsonMessage(r, n), binaryMessage(r, n, false))
	}
	return msgs
}

// serveHandshake answers a WebSocket handshake with Accept under o and
// hands the connection to echo, until the client goes.
func serveHandshake(t *testing.T, o *Options, echo func(*endpoint)) *httptest.Server {
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs, err := handshake.ParseRequest(r)
		if err != nil {
			var re *handshake.RequestError
			if errors.As(err, &re) {
				re.Refuse(w, r)
			}
			return
		}
		resp, p, ok := Accept(hs.Extensions, o)
		var exts []handshake.Extension
		if ok {
			exts = append(exts, resp)
		}
		answer, err := handshake.AppendResponse(nil, hs.Key, "", exts, nil)
		if err != nil {
			t.Error(err)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer conn.Close()
		if _, err := conn.Write(answer); err != nil {
			return
		}
		e := newEndpoint(conn, brw.Reader, false, p, o)
		defer e.release()
		echo(e)
	}))
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return srv
}

// dial opens a connection with this package's offer under o and checks
// the server's answer with CheckResponse.
func dial(t *testing.T, rawURL string, o *Options) (*endpoint, Params) {
	u, _ := url.Parse(rawURL)
	u.Scheme = "ws"
	offer, _ := Offer(o)
	req, key, err := handshake.NewRequest(u, nil, []handshake.Extension{offer}, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := handshake.CheckResponse(resp, key, nil, []handshake.Extension{offer})
	if err != nil {
		t.Fatal(err)
	}
	p, ok, err := CheckResponse(got.Extensions, o)
	if err != nil || !ok {
		t.Fatalf("the server answered %q: %v, %v", resp.Header.Values("Sec-WebSocket-Extensions"), ok, err)
	}
	e := newEndpoint(conn, br, true, p, o)
	t.Cleanup(e.release)
	return e, p
}

func echoAll(e *endpoint) {
	for i := 0; ; i++ {
		op, msg, err := e.readMessage(1 << 20)
		if err != nil {
			return
		}
		if err := e.writeMessage(op, msg, []int{0, 1000}[i%2]); err != nil {
			return
		}
	}
}

// TestInteropGorillaClient: gorilla's client, with compression enabled,
// against a server that negotiates with Accept and echoes with this
// package's codec. gorilla compresses every message and sends large ones
// in frames of 4 KiB.
func TestInteropGorillaClient(t *testing.T) {
	for _, o := range []*Options{{}, {ContextTakeover: true}, {MaxWindowBits: 9, MinSize: -1}} {
		t.Run(fmt.Sprintf("%+v", *o), func(t *testing.T) {
			compressed := make(chan int, 1)
			srv := serveHandshake(t, o, func(e *endpoint) {
				echoAll(e)
				compressed <- e.compressed
			})
			d := websocket.Dialer{EnableCompression: true}
			conn, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(got, Name) {
				t.Fatalf("answered %q", got)
			}
			msgs := interopMessages()
			for i, msg := range msgs {
				typ := websocket.TextMessage
				if i%2 == 1 {
					typ = websocket.BinaryMessage
				}
				if err := conn.WriteMessage(typ, msg); err != nil {
					t.Fatal(err)
				}
				gotType, got, err := conn.ReadMessage()
				if err != nil || gotType != typ || !bytes.Equal(got, msg) {
					t.Fatalf("message %d of %d bytes: echoed %d bytes of type %d, %v", i, len(msg), len(got), gotType, err)
				}
			}
			conn.Close()
			if n := <-compressed; n != len(msgs) {
				t.Errorf("the server read %d compressed messages of %d", n, len(msgs))
			}
		})
	}
}

// TestInteropGorillaServer: a client that offers with Offer and checks
// with CheckResponse, against gorilla's server with compression enabled,
// which echoes each message compressed.
func TestInteropGorillaServer(t *testing.T) {
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		u := websocket.Upgrader{EnableCompression: true}
		conn, err := u.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			typ, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if err := conn.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	}))
	defer func() { srv.Close(); wg.Wait() }()
	for _, o := range []*Options{{}, {MinSize: -1}} {
		e, p := dial(t, srv.URL, o)
		if want := (Params{true, true, 15, 15}); p != want {
			t.Fatalf("agreed %+v, want %+v", p, want)
		}
		msgs := interopMessages()
		for i, msg := range msgs {
			if err := e.writeMessage(ws.OpBinary, msg, []int{0, 700}[i%2]); err != nil {
				t.Fatal(err)
			}
			op, got, err := e.readMessage(1 << 20)
			if err != nil || op != ws.OpBinary || !bytes.Equal(got, msg) {
				t.Fatalf("message %d of %d bytes: echoed %d bytes, op %v, %v", i, len(msg), len(got), op, err)
			}
		}
		if e.compressed != len(msgs) {
			t.Errorf("read %d compressed messages of %d", e.compressed, len(msgs))
		}
		e.conn.Close()
	}
}

// TestInteropGobwasServer: the same client against gobwas's server with
// wsflate, which inflates with compress/flate and compresses its echo at
// level 9, sending large messages in several frames.
func TestInteropGobwasServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { ln.Close(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				wstest.GobwasDeflateEcho(conn)
			}()
		}
	}()
	for _, o := range []*Options{{}, {MinSize: -1}} {
		e, p := dial(t, "http://"+ln.Addr().String()+"/", o)
		if want := (Params{true, true, 15, 15}); p != want {
			t.Fatalf("agreed %+v, want %+v", p, want)
		}
		msgs := interopMessages()
		for i, msg := range msgs {
			if err := e.writeMessage(ws.OpText, msg, []int{0, 3}[i%2]); err != nil {
				t.Fatal(err)
			}
			op, got, err := e.readMessage(1 << 20)
			if err != nil || op != ws.OpText || !bytes.Equal(got, msg) {
				t.Fatalf("message %d of %d bytes: echoed %d bytes, op %v, %v", i, len(msg), len(got), op, err)
			}
		}
		if e.compressed == 0 {
			t.Errorf("read no compressed message")
		}
		e.conn.Close()
	}
}
