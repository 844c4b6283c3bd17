package frame

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPutParseRoundTripMatchesGobwas(t *testing.T) {
	for _, h := range []Header{
		{Fin: true, Op: OpText, Length: 0},
		{Fin: true, Op: OpBinary, Length: 125},
		{Fin: false, Op: OpText, Length: 126, Rsv: 4},
		{Fin: true, Op: OpContinuation, Length: 65535, Masked: true, Mask: [4]byte{1, 2, 3, 4}},
		{Fin: true, Op: OpBinary, Length: 65536},
		{Fin: true, Op: OpPing, Length: 7, Masked: true, Mask: [4]byte{9, 8, 7, 6}},
		{Fin: true, Op: OpBinary, Length: 1 << 40},
	} {
		var b [MaxHeader]byte
		n := Put(&b, &h)
		var want bytes.Buffer
		gh := ws.Header{Fin: h.Fin, Rsv: h.Rsv, OpCode: ws.OpCode(h.Op), Masked: h.Masked, Mask: h.Mask, Length: h.Length}
		if err := ws.WriteHeader(&want, gh); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b[:n], want.Bytes()) {
			t.Errorf("Put(%+v) = %x, gobwas writes %x", h, b[:n], want.Bytes())
		}
		for cut := range n {
			if _, k, err := Parse(b[:cut]); k != 0 || err != nil {
				t.Errorf("Parse of %d of %d header bytes = %d, %v; want 0, nil", cut, n, k, err)
			}
		}
		got, k, err := Parse(append(b[:n:n], 0xff))
		if err != nil || k != n || got != h {
			t.Errorf("Parse(Put(%+v)) = %+v, %d, %v", h, got, k, err)
		}
	}
	if _, _, err := Parse([]byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}); err != ErrLength {
		t.Errorf("a length with the top bit set: %v, want ErrLength", err)
	}
}

func TestMaskMatchesByteByByte(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for n := range 100 {
		for off := range 4 {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(i * 7)
			}
			want := bytes.Clone(p)
			for i := range want {
				want[i] ^= key[(off+i)&3]
			}
			Mask(p, key, off)
			if !bytes.Equal(p, want) {
				t.Fatalf("Mask of %d bytes at offset %d differs", n, off)
			}
		}
	}
}

func FuzzUTF8Pieces(f *testing.F) {
	f.Add([]byte("héllo wörld ☃ 𝄞"), []byte{1, 2, 3})
	f.Add([]byte{0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80, 0x65, 0x64}, []byte{5, 1})
	f.Add([]byte{0xf4, 0x90, 0x80, 0x80}, []byte{1})
	f.Fuzz(func(t *testing.T, text, cuts []byte) {
		var u UTF8
		ok := true
		rest := text
		for _, c := range cuts {
			k := min(int(c)%8, len(rest))
			if !u.Write(rest[:k]) {
				ok = false
				break
			}
			rest = rest[k:]
		}
		if ok {
			ok = u.Write(rest) && u.Done()
		}
		if want := utf8.Valid(text); ok != want {
			t.Fatalf("pieces of %x: valid %v, utf8.Valid %v", text, ok, want)
		}
	})
}

func TestUTF8FailsFast(t *testing.T) {
	// Each prefix can be no start of valid text: a reader must fail at it,
	// not wait for the message to end (Autobahn cases 6.3 and 6.4).
	for _, p := range [][]byte{
		{0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xf4, 0x90}, // past U+10FFFF
		{0xed, 0xa0},       // a surrogate
		{0xe0, 0x80},       // overlong
		{0xc0},             // overlong lead
		{0xf8},             // no such lead byte
		{0xe1, 0x80, 0x41}, // a truncated character before ASCII
	} {
		var u UTF8
		if u.Write(p) {
			t.Errorf("%x: accepted as the start of valid text", p)
		}
	}
	var u UTF8
	if !u.Write([]byte{0xf0, 0x9d}) || !u.Write([]byte{0x84}) || u.Done() || !u.Write([]byte{0x9e}) || !u.Done() {
		t.Error("a 4-byte character split three ways was not accepted")
	}
}

func TestValidCloseCode(t *testing.T) {
	for code, want := range map[uint16]bool{999: false, 1000: true, 1003: true, 1004: false, 1005: false, 1006: false,
		1007: true, 1014: true, 1015: false, 1016: false, 2999: false, 3000: true, 4999: true, 5000: false} {
		if got := ValidCloseCode(code); got != want {
			t.Errorf("ValidCloseCode(%d) = %v, want %v", code, got, want)
		}
	}
}

func BenchmarkMask(b *testing.B) {
	p := make([]byte, 128)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		Mask(p, [4]byte{1, 2, 3, 4}, 1)
	}
}
