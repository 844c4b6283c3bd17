package echotest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gobwas/ws"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLineWriter(t *testing.T) {
	w := &lineWriter{more: make(chan struct{}, 1)}
	for _, p := range []string{"self-signed certificate, SHA-256 fingerprint AB:CD\necho listening on http", "s://127.0.0.1:8443/  (WebSocket: wss://127.0.0.1:8443/ws)\nlevel=WARN", " msg=x\npartial"} {
		fmt.Fprint(w, p)
	}
	want := []string{"self-signed certificate, SHA-256 fingerprint AB:CD", "echo listening on https://127.0.0.1:8443/  (WebSocket: wss://127.0.0.1:8443/ws)", "level=WARN msg=x"}
	if got := w.lines(); !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
	if got := w.url(); got != "https://127.0.0.1:8443/" {
		t.Errorf("url = %q, want the first one printed", got)
	}
	s := &Server{URL: w.url()}
	if got := s.WSURL(); got != "wss://127.0.0.1:8443/ws" || !s.TLS() {
		t.Errorf("WSURL = %q, TLS = %v", got, s.TLS())
	}
}

// TestFrames reads the frames the suites write with gobwas's reader.
func TestFrames(t *testing.T) {
	p := bytes.Repeat([]byte("ab"), 70000)
	for _, tc := range []struct {
		in   [][]byte
		want []ws.Header
	}{
		{[][]byte{frame(bFin|bText, p[:125])}, []ws.Header{{Fin: true, OpCode: ws.OpText, Length: 125, Masked: true}}},
		{[][]byte{rawFrame(bFin|bRsv2|bBin, p[:126], true)}, []ws.Header{{Fin: true, Rsv: 0x2, OpCode: ws.OpBinary, Length: 126}}},
		{fragments(bText, p, 65536), []ws.Header{
			{OpCode: ws.OpText, Length: 65536, Masked: true},
			{OpCode: ws.OpContinuation, Length: 65536, Masked: true},
			{Fin: true, OpCode: ws.OpContinuation, Length: 140000 - 2*65536, Masked: true},
		}},
		{fragments(bText, nil, 10), []ws.Header{{Fin: true, OpCode: ws.OpText, Masked: true}}},
	} {
		r := bytes.NewReader(cat(tc.in...))
		var got []byte
		for i, want := range tc.want {
			f, err := ws.ReadFrame(r)
			if err != nil {
				t.Fatal(err)
			}
			if f.Header.Masked {
				ws.Cipher(f.Payload, f.Header.Mask, 0)
			}
			h := f.Header
			h.Mask = [4]byte{}
			if h != want {
				t.Errorf("frame %d: header %+v, want %+v", i, h, want)
			}
			got = append(got, f.Payload...)
		}
		if r.Len() != 0 {
			t.Errorf("%d bytes left after the frames", r.Len())
		}
		if len(tc.in) > 1 && !bytes.Equal(got, p) {
			t.Errorf("fragments carry %d bytes, want the %d cut", len(got), len(p))
		}
	}
}

func TestVerdict(t *testing.T) {
	known := Known{"S/fails": "a reason", "S/passes": "no longer true"}
	bad := errors.New("bad")
	for _, tc := range []struct {
		name       string
		err        error
		fail, skip bool
	}{
		{"S/fails", bad, false, true},
		{"S/passes", nil, true, false},
		{"S/unlisted", bad, true, false},
		{"S/fine", nil, false, false},
	} {
		fail, skip := verdict(known, tc.name, tc.err)
		if (fail != "") != tc.fail || (skip != "") != tc.skip {
			t.Errorf("verdict(%s, %v) = fail %q, skip %q; want fail %v, skip %v", tc.name, tc.err, fail, skip, tc.fail, tc.skip)
		}
	}
}
