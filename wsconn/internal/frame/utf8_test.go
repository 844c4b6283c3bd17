package frame

import (
	"testing"
	"unicode/utf8"
)

// firstInvalid is the model: the index of the first byte of p after
// which no bytes can make valid UTF-8, or len(p) if there is none. A
// prefix can be completed when it is valid up to a cut sequence that one
// of the continuation bytes below completes.
func firstInvalid(p []byte) int {
	for i := 1; i <= len(p); i++ {
		if !completable(p[:i]) {
			return i - 1
		}
	}
	return len(p)
}

func completable(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	for _, a := range edges {
		if utf8.Valid(append(p[:len(p):len(p)], a)) {
			return true
		}
		for _, b := range edges {
			if utf8.Valid(append(p[:len(p):len(p)], a, b)) {
				return true
			}
			for _, c := range edges {
				if utf8.Valid(append(p[:len(p):len(p)], a, b, c)) {
					return true
				}
			}
		}
	}
	return false
}

// edges are the bounds of every continuation byte range of table 3-7.
var edges = []byte{0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf}

// checkValidator feeds p to a UTF8 in pieces cut at cuts through Check
// and compares what it says with the model.
func checkValidator(t *testing.T, p []byte, cuts []int) {
	t.Helper()
	var v UTF8
	want := firstInvalid(p)
	pos := 0
	for _, end := range append(cuts, len(p)) {
		end = min(max(end, pos), len(p))
		n, ok := v.Check(p[pos:end])
		if !ok {
			if got := pos + n; got != want {
				t.Fatalf("%q cut at %v: invalid at byte %d, want %d", p, cuts, got, want)
			}
			return
		}
		pos = end
	}
	if want < len(p) {
		t.Fatalf("%q cut at %v: valid so far, want invalid at byte %d", p, cuts, want)
	}
	if got, want := v.Done(), utf8.Valid(p); got != want {
		t.Fatalf("%q cut at %v: Done() = %v, want %v", p, cuts, got, want)
	}
}

func TestUTF8Check(t *testing.T) {
	for _, s := range []string{
		"", "hello", "κόσμε", "\u0080", "\u07ff", "\u0800", "\uffff", "\U00010000", "\U0010ffff", "\ufffe",
		"\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd",
		// Invalid: Autobahn 6.x's classes.
		"\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xe0\x9f\xbf", "\xf0\x80\x80\xaf", "\xf0\x8f\xbf\xbf",
		"\xed\xa0\x80", "\xed\xbf\xbf", "\xed\xa0\x80\xed\xb0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xfe", "\xff",
		"\xc2", "\xe0\xa0", "\xf0\x90\x80", "\xc2\x41", "\xe1\x80\x41", "\xf1\x80\x80\x41", "\xf8\x88\x80\x80\x80",
		"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
		"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\xce\xba",
	} {
		p := []byte(s)
		checkValidator(t, p, nil)
		for i := range len(p) + 1 {
			checkValidator(t, p, []int{i})
			for j := i; j <= len(p); j++ {
				checkValidator(t, p, []int{i, j})
			}
		}
	}
}

func FuzzUTF8Check(f *testing.F) {
	f.Add([]byte("héllo wörld ✓ 🚀"), uint8(3), uint8(7))
	f.Add([]byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"), uint8(11), uint8(12))
	f.Add([]byte("\xf4\x8f\xbf\xbf\xf4\x90"), uint8(1), uint8(5))
	f.Fuzz(func(t *testing.T, p []byte, a, b uint8) {
		if len(p) > 64 {
			p = p[:64] // the model is slow
		}
		checkValidator(t, p, []int{int(a), int(b)})
	})
}

func BenchmarkUTF8Check(b *testing.B) {
	var text []byte
	for len(text) < 64<<10 {
		text = append(text, "héllo wörld ✓ 🚀 κόσμε, plain ASCII too. "...)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		var v UTF8
		if _, ok := v.Check(text); !ok {
			b.Fatal("invalid")
		}
	}
}
