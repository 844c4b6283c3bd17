package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"testing"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// deflateEcho upgrades c with negotiate deciding on the extensions, and
// echoes every data message, compressed (with gobwas's wsflate over
// compress/flate) when it came compressed, through tamper when it is not
// nil.
func deflateEcho(negotiate func(httphead.Option) (httphead.Option, error), tamper func(i int, p []byte) []byte) func(net.Conn) {
	return func(c net.Conn) {
		u := ws.Upgrader{Negotiate: negotiate}
		if _, err := u.Upgrade(c); err != nil {
			return
		}
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			f, err := ws.ReadFrame(br)
			if err != nil || f.Header.OpCode == ws.OpClose {
				return
			}
			f = ws.UnmaskFrameInPlace(f)
			if f, err = wsflate.DecompressFrame(f); err != nil {
				return
			}
			if tamper != nil {
				f.Payload = tamper(i, f.Payload)
			}
			if f, err = wsflate.CompressFrame(ws.NewFrame(f.Header.OpCode, true, f.Payload)); err != nil {
				return
			}
			if ws.WriteFrame(c, f) != nil {
				return
			}
		}
	}
}

// agree accepts permessage-deflate without context takeover.
func agree(opt httphead.Option) (httphead.Option, error) {
	e := wsflate.Extension{Parameters: wsflate.DefaultParameters}
	return e.Negotiate(opt)
}

func testCorpus(t testing.TB, n int) *Corpus {
	t.Helper()
	msgs, err := JSONMessages(n, 1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := NewCorpus(msgs)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func TestEchoCorpusDeflated(t *testing.T) {
	cp := testCorpus(t, 16)
	addr := serve(t, nil, deflateEcho(agree, nil))
	for _, name := range []string{"Echo", "EchoAll"} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, WebSocket, addr, &DialOptions{Deflate: true})
			s0, r0, err := c.WireBytes()
			if err != nil {
				t.Fatal(err)
			}
			opt := &EchoOptions{Window: 4, Messages: 100, Corpus: cp}
			if name == "Echo" {
				err = c.Echo(context.Background(), opt)
			} else {
				err = EchoAll(context.Background(), []*Conn{c}, opt)
			}
			if err != nil {
				t.Fatal(err)
			}
			s1, r1, err := c.WireBytes()
			if err != nil {
				t.Fatal(err)
			}
			if c.Received() != 100 {
				t.Fatalf("received %d, want 100", c.Received())
			}
			// Compressed both ways: well under the 1 KiB of each message,
			// and at least the compressed payloads.
			_, deflated := cp.Size()
			least := int64(100/cp.Len()*deflated) * 9 / 10
			for dir, n := range map[string]int64{"sent": s1 - s0, "received": r1 - r0} {
				if n > 100*700 || n < least {
					t.Errorf("%s %d bytes for 100 compressed messages of 1 KiB, want %d to %d", dir, n, least, 100*700)
				}
			}
		})
	}
}

func TestEchoCorpusPlain(t *testing.T) {
	cp := testCorpus(t, 8)
	c := dial(t, WebSocket, serve(t, nil, wsEcho), nil)
	if err := c.Echo(context.Background(), &EchoOptions{Window: 3, Messages: 50, Corpus: cp}); err != nil {
		t.Fatal(err)
	}
	if err := c.ExchangeCorpus(cp); err != nil {
		t.Fatal(err)
	}
	if c.Received() != 51 {
		t.Fatalf("received %d, want 51", c.Received())
	}
}

func TestEchoCorpusCatchesWrongEchoes(t *testing.T) {
	cp := testCorpus(t, 8)
	for _, tc := range []struct {
		name   string
		tamper func(i int, p []byte) []byte
	}{
		{"a byte changed", func(i int, p []byte) []byte {
			if i == 10 {
				p[100] ^= 1
			}
			return p
		}},
		{"another message", func(i int, p []byte) []byte {
			if i == 10 {
				return cp.Message(0)
			}
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, WebSocket, serve(t, nil, deflateEcho(agree, tc.tamper)), &DialOptions{Deflate: true})
			err := c.Echo(context.Background(), &EchoOptions{Window: 2, Messages: 40, Corpus: cp})
			if !errors.Is(err, ErrWrongEcho) {
				t.Fatalf("Echo: %v, want ErrWrongEcho", err)
			}
		})
	}
}

func TestDialDeflateRefused(t *testing.T) {
	for _, tc := range []struct {
		name      string
		negotiate func(httphead.Option) (httphead.Option, error)
	}{
		{"declined", nil},
		{"context kept", func(httphead.Option) (httphead.Option, error) {
			return httphead.Option{Name: []byte(wsflate.ExtensionName)}, nil
		}},
		{"client window bounded", func(httphead.Option) (httphead.Option, error) {
			p := wsflate.DefaultParameters
			p.ClientMaxWindowBits = 10
			return p.Option(), nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, nil, deflateEcho(tc.negotiate, nil))
			_, err := Dial(context.Background(), WebSocket, addr, &DialOptions{Deflate: true})
			if !errors.Is(err, ErrDeflate) {
				t.Fatalf("Dial: %v, want ErrDeflate", err)
			}
		})
	}
}

func TestExchangeCorpusReleasesBuffers(t *testing.T) {
	cp := testCorpus(t, 4)
	c := dial(t, WebSocket, serve(t, nil, deflateEcho(agree, nil)), &DialOptions{Deflate: true})
	if err := c.ExchangeCorpus(cp); err != nil {
		t.Fatal(err)
	}
	if c.rd.buf != nil || c.rd.plain != nil {
		t.Fatalf("read buffers of %d and %d bytes kept, want none", len(c.rd.buf), cap(c.rd.plain))
	}
}

// mustHeader parses the header of the frame at the start of b.
func mustHeader(t testing.TB, b []byte) ws.Header {
	t.Helper()
	h, err := ws.ReadHeader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// frameLen is the length of the frame at the start of b.
func frameLen(t testing.TB, b []byte) int {
	h := mustHeader(t, b)
	return ws.HeaderSize(h) + int(h.Length)
}

// deflatedFrames is a server's frames of payload compressed, split into
// frames frames.
func deflatedFrames(t testing.TB, payload []byte, frames int) []byte {
	t.Helper()
	comp, err := wsflate.DefaultHelper.Compress(payload)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for k := range frames {
		part := comp[k*len(comp)/frames : (k+1)*len(comp)/frames]
		op := ws.OpContinuation
		if k == 0 {
			op = ws.OpText
		}
		f := ws.NewFrame(op, k == frames-1, part)
		f.Header.Rsv = ws.Rsv(k == 0, false, false)
		if err := ws.WriteFrame(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func TestReaderInflates(t *testing.T) {
	cp := testCorpus(t, 3)
	var stream []byte
	for i, frames := range []int{1, 3, 1} {
		stream = append(stream, deflatedFrames(t, cp.Message(i), frames)...)
	}
	stream = append(stream, encode(t, WebSocket, []message{{data: []byte("plain"), frames: 2}})...)
	rd := NewReader(&chunkReader{b: stream, n: 100}, WebSocket, 16, 1<<20)
	rd.SetDeflate(true)
	got, err := readAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	checkMessages(t, got, []message{{data: cp.Message(0)}, {data: cp.Message(1)}, {data: cp.Message(2)}, {data: []byte("plain")}})
}

func TestReaderDeflateBadInput(t *testing.T) {
	cp := testCorpus(t, 1)
	rsv1OnContinuation := deflatedFrames(t, cp.Message(0), 2)
	rsv1OnContinuation[frameLen(t, rsv1OnContinuation)] |= rsv1
	bomb, err := wsflate.DefaultHelper.Compress(make([]byte, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var bombFrame bytes.Buffer
	f := ws.NewFrame(ws.OpBinary, true, bomb)
	f.Header.Rsv = ws.Rsv(true, false, false)
	ws.WriteFrame(&bombFrame, f)
	corrupt := deflatedFrames(t, cp.Message(0), 1)
	corrupt[frameLen(t, corrupt)-int(mustHeader(t, corrupt).Length)] = 0xff // a reserved block type
	for _, tc := range []struct {
		name    string
		stream  []byte
		deflate bool
		want    error
	}{
		{"compressed without the extension", deflatedFrames(t, cp.Message(0), 1), false, ErrFrame},
		{"RSV1 on a continuation", rsv1OnContinuation, true, ErrFrame},
		{"RSV2", []byte{0x81 | 0x20, 0}, true, ErrFrame},
		{"a bomb over the limit", bombFrame.Bytes(), true, ErrTooLarge},
		{"not DEFLATE", corrupt, true, ErrInflate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := NewReader(bytes.NewReader(tc.stream), WebSocket, 16, 64<<10)
			rd.SetDeflate(tc.deflate)
			if _, err := rd.ReadMessage(); !errors.Is(err, tc.want) {
				t.Fatalf("ReadMessage: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReaderInflatesWithoutAllocating(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops inflaters on purpose")
	}
	cp := testCorpus(t, 1)
	frame := deflatedFrames(t, cp.Message(0), 1)
	rd := NewReader(&loopReader{b: frame}, WebSocket, 4<<10, 1<<20)
	rd.SetDeflate(true)
	read := func() {
		m, err := rd.ReadMessage()
		if err != nil || len(m) != len(cp.Message(0)) {
			t.Fatalf("ReadMessage: %d bytes, %v", len(m), err)
		}
	}
	read()
	if n := testing.AllocsPerRun(200, read); n > 0.05 {
		t.Fatalf("%.2f allocations per inflated message, want none", n)
	}
}
