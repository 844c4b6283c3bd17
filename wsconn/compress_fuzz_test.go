package wsconn

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/pollws/pollws/internal/handlertest"
)

// FuzzCompressedFragments sends one compressed message, its payload split
// into fragments at fuzz-chosen points, to a compressing server: the
// server reads the message as it was before compression, or, for text
// that is not valid UTF-8, fails with ErrInvalidUTF8.
func FuzzCompressedFragments(f *testing.F) {
	f.Add([]byte("hello, hello, hello"), []byte{}, true)
	f.Add([]byte(strings.Repeat("héllo wörld ", 50)), []byte{1, 2, 3, 40}, true)
	f.Add([]byte(strings.Repeat("ab", 1000)), []byte{0, 0, 5}, false)
	f.Add([]byte("valid \xff\xfe then not"), []byte{3}, true)
	f.Add([]byte(strings.Repeat("€", 300)+"\xe2\x82"), []byte{7, 9}, true)

	type result struct {
		m   Message
		err error
	}
	results := make(chan result, 1)
	var handlers handlertest.Group
	srv := httptest.NewServer(handlers.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, &UpgradeOptions{Options: Options{MaxMessageSize: 4096, Compression: &CompressionOptions{}}})
		if err != nil {
			return
		}
		defer c.Close()
		m, err := c.ReadMessage(context.Background())
		m.Data = bytes.Clone(m.Data)
		results <- result{m, err}
	})))
	defer func() {
		srv.Close()
		handlers.Wait()
	}()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	f.Fuzz(func(t *testing.T, msg, cuts []byte, text bool) {
		if len(msg) > 3000 || len(cuts) > 16 {
			return
		}
		z := zRawDial(t, url, 1, wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true})
		if !z.ok {
			t.Fatal("compression not agreed")
		}
		payload := z.compress(t, msg)
		bounds := []int{0}
		for _, c := range cuts {
			bounds = append(bounds, int(c)%(len(payload)+1))
		}
		slices.Sort(bounds)
		bounds = append(bounds, len(payload))
		op := ws.OpBinary
		if text {
			op = ws.OpText
		}
		var in []byte
		for k := 1; k < len(bounds); k++ {
			o, rsv := ws.OpContinuation, byte(0)
			if k == 1 {
				o, rsv = op, ws.Rsv(true, false, false)
			}
			in = append(in, zFrame(k == len(bounds)-1, o, rsv, payload[bounds[k-1]:bounds[k]])...)
		}
		if _, err := z.conn.Write(in); err != nil {
			t.Fatal(err)
		}
		got := <-results
		if text && !utf8.Valid(msg) {
			if !errors.Is(got.err, ErrInvalidUTF8) {
				t.Fatalf("invalid text in fragments %v: read %d bytes, %v; want ErrInvalidUTF8", bounds, len(got.m.Data), got.err)
			}
			return
		}
		if got.err != nil || got.m.Type != MessageType(op) || !bytes.Equal(got.m.Data, msg) {
			t.Fatalf("%d bytes in fragments %v of the compressed %d: read %v %d bytes, %v", len(msg), bounds, len(payload), got.m.Type, len(got.m.Data), got.err)
		}
	})
}
