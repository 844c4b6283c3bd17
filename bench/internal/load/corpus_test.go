package load

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

func TestJSONMessages(t *testing.T) {
	for _, size := range []int{MinJSONSize, 1024, 4096} {
		msgs, err := JSONMessages(64, size, 7)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for i, m := range msgs {
			if len(m) != size {
				t.Fatalf("size %d: message %d has %d bytes", size, i, len(m))
			}
			if !json.Valid(m) {
				t.Fatalf("size %d: message %d is not JSON: %s", size, i, m)
			}
			if seen[string(m)] {
				t.Fatalf("size %d: message %d repeats an earlier one", size, i)
			}
			seen[string(m)] = true
		}
		again, _ := JSONMessages(64, size, 7)
		other, _ := JSONMessages(64, size, 8)
		if !bytes.Equal(again[5], msgs[5]) || bytes.Equal(other[5], msgs[5]) {
			t.Fatalf("size %d: the messages are not a function of the seed", size)
		}
	}
	if _, err := JSONMessages(1, MinJSONSize-1, 1); !errors.Is(err, ErrSize) {
		t.Fatalf("JSONMessages below MinJSONSize: %v, want ErrSize", err)
	}
}

func TestCorpusCompressesLikeJSON(t *testing.T) {
	msgs, err := JSONMessages(256, 1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := NewCorpus(msgs)
	if err != nil {
		t.Fatal(err)
	}
	plain, deflated := cp.Size()
	// Realistic redundancy: JSON compresses well, but not as one string
	// repeated over and over does.
	if r := float64(deflated) / float64(plain); r < 0.25 || r > 0.6 {
		t.Fatalf("compressed to %.2f of the size, want JSON's 0.25-0.6", r)
	}
	for i := range cp.Len() {
		fr := flate.NewReader(io.MultiReader(bytes.NewReader(cp.Deflated(i)), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
		got, err := io.ReadAll(fr)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(got, cp.Message(i)) {
			t.Fatalf("message %d inflates to other bytes", i)
		}
	}
	if _, err := NewCorpus(nil); err == nil {
		t.Fatal("NewCorpus of no messages: no error")
	}
}
