package wsconn

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// zAutobahnSizes are the payload sizes of Autobahn|Testsuite's sections
// 12 and 13.
var zAutobahnSizes = []int{16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072}

// zPayloads are the kinds of payload sent: JSON-like text, text that
// repeats, bytes that do not compress, and bytes that compress well.
var zPayloads = []struct {
	name string
	op   ws.OpCode
	make func(r *rand.Rand, n int) []byte
}{
	{"json", ws.OpText, zJSON},
	{"repeat", ws.OpText, func(_ *rand.Rand, n int) []byte {
		return []byte(strings.Repeat("Hello, permessage-deflate! ", n/27+1)[:n])
	}},
	{"random", ws.OpBinary, zRandom},
	{"zeros", ws.OpBinary, func(_ *rand.Rand, n int) []byte { return make([]byte, n) }},
}

// zEchoRun sends count messages of each size and payload kind through an
// echo server on z, compressed, in frames of at most frag bytes, and
// checks each echo.
func zEchoRun(t *testing.T, z *zRaw, sizes []int, count, frag int) {
	t.Helper()
	r := rand.New(rand.NewPCG(12, 13))
	sent := 0
	for _, n := range sizes {
		// A ping between messages: its pong must come uncompressed.
		z.writeFrames(t, ws.OpPing, 0, []byte("ping"), 0)
		for _, kind := range zPayloads {
			for range count {
				msg := kind.make(r, n)
				f := frag
				if f == 1 && n > 512 {
					f = 97 // one-byte frames only for small messages
				}
				z.write(t, kind.op, msg, true, f)
				op, got, err := z.read(t)
				if err != nil || op != kind.op || !bytes.Equal(got, msg) {
					t.Fatalf("%s message of %d bytes in frames of %d: echoed %v, %d bytes, %v", kind.name, n, f, op, len(got), err)
				}
				sent++
			}
		}
	}
	if z.compressed == 0 {
		t.Fatalf("the server compressed none of %d echoes", sent)
	}
}

// TestCompressAutobahn12 is Autobahn|Testsuite's section 12 against the
// server: messages of 16 B to 128 KiB, of several kinds, compressed by
// the client in one frame or fragmented, echoed by a compressing server,
// with context takeover and without.
func TestCompressAutobahn12(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		srv, wait := connEchoServer(t, false, &UpgradeOptions{Options: zOn(CompressionOptions{ContextTakeover: takeover})})
		url := "ws" + strings.TrimPrefix(srv.URL, "http")
		for _, frag := range []int{0, 1, 1000} {
			t.Run(fmt.Sprintf("takeover=%v/frag=%d", takeover, frag), func(t *testing.T) {
				z := zRawDial(t, url, 0, wsflate.Parameters{ClientMaxWindowBits: 1})
				if !z.ok {
					t.Fatal("the server declined permessage-deflate")
				}
				if z.p.ServerNoContextTakeover == takeover || z.p.ClientNoContextTakeover == takeover {
					t.Fatalf("answered %+v with ContextTakeover %v", z.p, takeover)
				}
				zEchoRun(t, z, zAutobahnSizes, 2, frag)
				z.conn.Close()
			})
		}
		wait()
	}
}

// TestCompressAutobahn13 is Autobahn|Testsuite's section 13 against the
// server: the client's offers of context takeover and window bits (8 to
// 15, for each direction), several offers at once, and the server's own
// bounds, each against a server with context takeover allowed and not.
func TestCompressAutobahn13(t *testing.T) {
	type offer = wsflate.Parameters
	cases := []struct {
		server CompressionOptions
		offers []offer
	}{
		// 13.1 to 13.7.
		{offers: []offer{{}}},
		{offers: []offer{{ServerNoContextTakeover: true}}},
		{offers: []offer{{ServerMaxWindowBits: 8}}},
		{offers: []offer{{ServerMaxWindowBits: 15}}},
		{offers: []offer{{ServerNoContextTakeover: true, ServerMaxWindowBits: 8}}},
		{offers: []offer{{ServerNoContextTakeover: true, ServerMaxWindowBits: 15}}},
		{offers: []offer{{ServerNoContextTakeover: true, ServerMaxWindowBits: 9}, {ServerNoContextTakeover: true}, {}}},
		{offers: []offer{{ClientNoContextTakeover: true, ClientMaxWindowBits: 1}}},
	}
	for bits := 8; bits <= 15; bits++ {
		b := wsflate.WindowBits(bits)
		cases = append(cases,
			struct {
				server CompressionOptions
				offers []offer
			}{offers: []offer{{ServerMaxWindowBits: b, ClientMaxWindowBits: b}}},
			struct {
				server CompressionOptions
				offers []offer
			}{server: CompressionOptions{MaxWindowBits: bits}, offers: []offer{{ClientMaxWindowBits: 1}}})
	}
	sizes := []int{16, 64, 256, 1024, 4096, 16384, 65536, 131072}
	for _, takeover := range []bool{false, true} {
		for _, tc := range cases {
			o := tc.server
			o.ContextTakeover = takeover
			t.Run(fmt.Sprintf("takeover=%v/bits=%d/offers=%s", takeover, o.MaxWindowBits, zOffer(tc.offers)), func(t *testing.T) {
				srv, wait := connEchoServer(t, false, &UpgradeOptions{Options: zOn(o)})
				t.Cleanup(wait) // after z's connection closes
				z := zRawDial(t, "ws"+strings.TrimPrefix(srv.URL, "http"), 0, tc.offers...)
				if !z.ok {
					t.Fatal("the server declined permessage-deflate")
				}
				zCheckAnswer(t, z.p, tc.offers, o)
				zEchoRun(t, z, sizes, 1, 0)
				z.conn.Close()
			})
		}
	}
}

// zCheckAnswer checks the server's answer p to the offers under its
// options o, as RFC 7692 has it: the first offer that can be honoured,
// no context takeover where asked for or where o does not allow it, and
// windows no larger than offered and than o's.
func zCheckAnswer(t *testing.T, p wsflate.Parameters, offers []wsflate.Parameters, o CompressionOptions) {
	t.Helper()
	first := offers[0]
	if first.ServerNoContextTakeover && !p.ServerNoContextTakeover {
		t.Errorf("answered %+v to %+v: server_no_context_takeover missing", p, first)
	}
	if !o.ContextTakeover && (!p.ServerNoContextTakeover || !p.ClientNoContextTakeover) {
		t.Errorf("answered %+v without ContextTakeover: context takeover allowed", p)
	}
	bits := 15
	if o.MaxWindowBits != 0 {
		bits = o.MaxWindowBits
	}
	if first.ServerMaxWindowBits != 0 {
		bits = min(bits, int(first.ServerMaxWindowBits))
	}
	if got := int(p.ServerMaxWindowBits); (got != 0 || bits < 15) && got != bits {
		t.Errorf("answered server_max_window_bits=%d, want %d", got, bits)
	}
	if got := int(p.ClientMaxWindowBits); got != 0 && (first.ClientMaxWindowBits == 0 || got > 15 || got < 8) {
		t.Errorf("answered client_max_window_bits=%d to an offer of %d", got, first.ClientMaxWindowBits)
	}
}
