package wsconn

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	kflate "github.com/klauspost/compress/flate"
)

// zRaw is a permessage-deflate client written apart from this package,
// the way Autobahn|Testsuite's fuzzing client is: gobwas/ws for the
// handshake and the frames, klauspost/compress for compressing (with the
// window agreed) and compress/flate for inflating (with the window of
// earlier messages as its dictionary under context takeover). It sends
// what a test asks for, fragmented or not, and reads the server's
// frames as they are.
type zRaw struct {
	conn net.Conn
	br   *bufio.Reader
	ok   bool               // the server accepted permessage-deflate
	p    wsflate.Parameters // what it answered

	w     *kflate.Writer // kept between messages with context takeover
	wbuf  bytes.Buffer
	level int
	hist  []byte // the window of the compressed messages read, with context takeover

	compressed int // messages read with RSV1
}

// zRawDial opens a connection to url offering the extensions in offers,
// in order (none: no offer), and compresses at level (0: 6).
func zRawDial(t testing.TB, url string, level int, offers ...wsflate.Parameters) *zRaw {
	t.Helper()
	var d ws.Dialer
	for _, o := range offers {
		d.Extensions = append(d.Extensions, o.Option())
	}
	conn, br, hs, err := d.Dial(context.Background(), url)
	if err != nil {
		t.Fatalf("dial offering %+v: %v", offers, err)
	}
	t.Cleanup(func() { conn.Close() })
	if br == nil {
		br = bufio.NewReader(conn)
	}
	z := &zRaw{conn: conn, br: br, level: level}
	if z.level == 0 {
		z.level = 6
	}
	for _, e := range hs.Extensions {
		if string(e.Name) == wsflate.ExtensionName {
			if err := z.p.Parse(e); err != nil {
				t.Fatalf("the server answered %s: %v", e, err)
			}
			z.ok = true
		}
	}
	return z
}

// clientBits is the window the client compresses with.
func (z *zRaw) clientBits() int {
	if b := int(z.p.ClientMaxWindowBits); b >= 8 {
		return b
	}
	return 15
}

// compress returns msg compressed as permessage-deflate sends it.
func (z *zRaw) compress(t testing.TB, msg []byte) []byte {
	t.Helper()
	if z.w == nil || z.p.ClientNoContextTakeover {
		z.wbuf.Reset()
		var err error
		if bits := z.clientBits(); bits < 15 {
			z.w, err = kflate.NewWriterWindow(&z.wbuf, 1<<bits)
		} else {
			z.w, err = kflate.NewWriter(&z.wbuf, z.level)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	z.wbuf.Reset()
	if _, err := z.w.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := z.w.Flush(); err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(z.wbuf.Bytes())
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("the flush ended with %x", out[max(0, len(out)-4):])
	}
	return out[:len(out)-4]
}

// writeFrames sends payload as a message of op in frames of at most frag
// bytes (0: one frame), with rsv on the first.
func (z *zRaw) writeFrames(t testing.TB, op ws.OpCode, rsv byte, payload []byte, frag int) {
	t.Helper()
	var buf bytes.Buffer
	first := true
	for first || len(payload) > 0 {
		n := len(payload)
		if frag > 0 {
			n = min(n, frag)
		}
		h := ws.Header{Fin: n == len(payload), OpCode: op, Rsv: rsv, Length: int64(n), Masked: true, Mask: ws.NewMask()}
		if !first {
			h.OpCode, h.Rsv = ws.OpContinuation, 0
		}
		p := bytes.Clone(payload[:n])
		ws.Cipher(p, h.Mask, 0)
		if err := ws.WriteHeader(&buf, h); err != nil {
			t.Fatal(err)
		}
		buf.Write(p)
		payload, first = payload[n:], false
	}
	if _, err := z.conn.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// write sends msg as a message of op, compressed or not, in frames of at
// most frag bytes of payload.
func (z *zRaw) write(t testing.TB, op ws.OpCode, msg []byte, compressed bool, frag int) {
	t.Helper()
	if compressed {
		z.writeFrames(t, op, ws.Rsv(true, false, false), z.compress(t, msg), frag)
		return
	}
	z.writeFrames(t, op, 0, msg, frag)
}

// read returns the next data message, inflated, or the close frame's
// code as an error.
func (z *zRaw) read(t testing.TB) (ws.OpCode, []byte, error) {
	t.Helper()
	var op ws.OpCode
	var payload []byte
	compressed := false
	for {
		h, err := ws.ReadHeader(z.br)
		if err != nil {
			return 0, nil, err
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(z.br, p); err != nil {
			return 0, nil, err
		}
		if h.Masked {
			return 0, nil, fmt.Errorf("a masked frame from the server")
		}
		if h.OpCode.IsControl() && h.Rsv != 0 {
			return 0, nil, fmt.Errorf("RSV bits %#x on a control frame", h.Rsv)
		}
		switch {
		case h.OpCode == ws.OpClose:
			code := 0
			if len(p) >= 2 {
				code = int(binary.BigEndian.Uint16(p))
			}
			return ws.OpClose, p, &CloseError{Code: StatusCode(code)}
		case h.OpCode.IsControl():
			continue
		case h.OpCode != ws.OpContinuation:
			op = h.OpCode
			compressed = h.Rsv&ws.Rsv(true, false, false) != 0
		case h.Rsv != 0:
			return 0, nil, fmt.Errorf("RSV bits %#x on a continuation frame", h.Rsv)
		}
		payload = append(payload, p...)
		if h.Fin {
			break
		}
	}
	if !compressed {
		return op, payload, nil
	}
	z.compressed++
	// The tail the sender removed, then an empty final block, so that
	// the reader ends cleanly.
	in := append(payload, 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff)
	var r io.ReadCloser
	if !z.p.ServerNoContextTakeover && len(z.hist) > 0 {
		r = flate.NewReaderDict(bytes.NewReader(in), z.hist)
	} else {
		r = flate.NewReader(bytes.NewReader(in))
	}
	msg, err := io.ReadAll(r)
	if err != nil {
		return op, nil, fmt.Errorf("inflating a message of %d compressed bytes: %w", len(payload), err)
	}
	if !z.p.ServerNoContextTakeover {
		// Only the agreed window: a server that reaches further back
		// makes the next message fail to inflate.
		window := 1 << 15
		if b := z.p.ServerMaxWindowBits; b != 0 {
			window = 1 << b
		}
		z.hist = append(z.hist, msg...)
		if len(z.hist) > window {
			z.hist = bytes.Clone(z.hist[len(z.hist)-window:])
		}
	}
	return op, msg, nil
}

// wantClose reads until the server's close frame and checks its code.
func (z *zRaw) wantClose(t testing.TB, code StatusCode) {
	t.Helper()
	for {
		_, _, err := z.read(t)
		if ce, ok := err.(*CloseError); ok {
			if ce.Code != code {
				t.Fatalf("the server closed with %d, want %d", ce.Code, code)
			}
			return
		}
		if err != nil {
			t.Fatalf("reading for the server's close frame (%d): %v", code, err)
		}
	}
}

// zOffer describes offers for a subtest's name, as "snct,smwb=8|cmwb".
func zOffer(offers []wsflate.Parameters) string {
	var s []string
	for _, o := range offers {
		var ps []string
		if o.ServerNoContextTakeover {
			ps = append(ps, "snct")
		}
		if o.ClientNoContextTakeover {
			ps = append(ps, "cnct")
		}
		if o.ServerMaxWindowBits != 0 {
			ps = append(ps, fmt.Sprintf("smwb=%d", o.ServerMaxWindowBits))
		}
		switch o.ClientMaxWindowBits {
		case 0:
		case 1:
			ps = append(ps, "cmwb")
		default:
			ps = append(ps, fmt.Sprintf("cmwb=%d", o.ClientMaxWindowBits))
		}
		if len(ps) == 0 {
			ps = append(ps, "plain")
		}
		s = append(s, strings.Join(ps, ","))
	}
	return strings.Join(s, "|")
}
