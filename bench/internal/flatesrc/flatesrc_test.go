package flatesrc

import (
	"bytes"
	"compress/flate"
	"io"
	"testing"
	"testing/iotest"

	kflate "github.com/klauspost/compress/flate"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// compress is msg compressed as a permessage-deflate sender does: a sync
// flush, its tail stripped.
func compress(t *testing.T, msg []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	w.Write(msg)
	w.Flush()
	p, ok := bytes.CutSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
	if !ok {
		t.Fatal("a sync flush without its tail")
	}
	return p
}

func TestInflates(t *testing.T) {
	msgs := [][]byte{nil, []byte("a"), bytes.Repeat([]byte(`{"key":"value","n":12345},`), 200)}
	for i, msg := range msgs {
		var r Reader
		for name, fr := range map[string]io.ReadCloser{"compress/flate": flate.NewReader(nil), "klauspost": kflate.NewReader(nil)} {
			for round := range 2 { // reused, as a pool reuses it
				r.Reset(compress(t, msg))
				if err := fr.(flate.Resetter).Reset(&r, nil); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(fr)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("%s, message %d, round %d: %d bytes, %v; want the %d sent", name, i, round, len(got), err, len(msg))
				}
			}
		}
	}
}

func TestReadsAsAReaderShould(t *testing.T) {
	var r Reader
	r.Reset([]byte("payload"))
	want := append([]byte("payload"), tail[:]...)
	if err := iotest.TestReader(&r, want); err != nil {
		t.Fatal(err)
	}
	r.Reset([]byte("xy"))
	var got []byte
	for {
		c, err := r.ReadByte()
		if err == io.EOF {
			break
		}
		got = append(got, c)
	}
	if !bytes.Equal(got, append([]byte("xy"), tail[:]...)) {
		t.Fatalf("ReadByte read %x", got)
	}
}
