package handshake

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// sampleKey is the key of RFC 6455 section 1.3.
const sampleKey = "dGhlIHNhbXBsZSBub25jZQ=="

// readRequest parses a request as net/http's server does: the lines of
// head, joined with CRLF, then an empty line.
func readRequest(t *testing.T, head ...string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(strings.Join(head, "\r\n") + "\r\n\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// upgradeRequest is a valid handshake, lines replaced or added by
// changes: a change "Name: value" replaces the line of that name, or is
// added when no line has it; "-Name" removes it; "+Name: value" adds a
// line.
func upgradeRequest(t *testing.T, changes ...string) *http.Request {
	t.Helper()
	head := []string{
		"GET /chat HTTP/1.1",
		"Host: server.example.com",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Key: " + sampleKey,
		"Sec-WebSocket-Version: 13",
	}
	for _, c := range changes {
		name, _, _ := strings.Cut(strings.TrimLeft(c, "-+"), ":")
		switch {
		case strings.HasPrefix(c, "+"):
			head = append(head, c[1:])
		case strings.HasPrefix(c, "-"):
			head = deleteLine(head, name)
		case strings.HasPrefix(c, "GET") || strings.HasPrefix(c, "POST"):
			head[0] = c
		default:
			if i := findLine(head, name); i >= 0 {
				head[i] = c
			} else {
				head = append(head, c)
			}
		}
	}
	return readRequest(t, head...)
}

func findLine(head []string, name string) int {
	for i, l := range head {
		if strings.HasPrefix(strings.ToLower(l), strings.ToLower(name)+":") {
			return i
		}
	}
	return -1
}

func deleteLine(head []string, name string) []string {
	if i := findLine(head, name); i >= 0 {
		return append(head[:i], head[i+1:]...)
	}
	return head
}

// extendedConnect is an RFC 8441 request as net/http's HTTP/2 server
// hands it to a handler.
func extendedConnect(protocol string, header ...string) *http.Request {
	r := &http.Request{
		Method: http.MethodConnect, Proto: "HTTP/2.0", ProtoMajor: 2, Host: "server.example.com",
		Header: http.Header{":protocol": {protocol}, "Sec-Websocket-Version": {"13"}},
	}
	for _, h := range header {
		name, value, _ := strings.Cut(h, ": ")
		if strings.HasPrefix(name, "-") {
			r.Header.Del(name[1:])
			continue
		}
		r.Header.Add(name, value)
	}
	return r
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *http.Request
		want Request
	}{
		{"RFC 6455 example", upgradeRequest(t), Request{Key: sampleKey}},
		{"Connection over two lines", upgradeRequest(t, "Connection: keep-alive", "+Connection: Upgrade"), Request{Key: sampleKey}},
		{"Connection: keep-alive, Upgrade", upgradeRequest(t, "Connection: keep-alive, Upgrade"), Request{Key: sampleKey}},
		{"Upgrade: h2c, websocket", upgradeRequest(t, "Upgrade: h2c, websocket"), Request{Key: sampleKey}},
		{"Upgrade over two lines", upgradeRequest(t, "Upgrade: h2c", "+Upgrade: websocket"), Request{Key: sampleKey}},
		{"tokens in any case", upgradeRequest(t, "Upgrade: WebSocket", "Connection: UPGRADE"), Request{Key: sampleKey}},
		{"subprotocols in order", upgradeRequest(t, "Sec-WebSocket-Protocol: chat, , superchat", "+Sec-WebSocket-Protocol: v2.chat"),
			Request{Key: sampleKey, Protocols: []string{"chat", "superchat", "v2.chat"}}},
		{"extensions", upgradeRequest(t, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo"),
			Request{Key: sampleKey, Extensions: []Extension{{"permessage-deflate", []Param{{"client_max_window_bits", ""}}}, {"x-foo", nil}}}},
		{"extended CONNECT", extendedConnect("websocket"), Request{HTTP2: true}},
		{"extended CONNECT offering", extendedConnect("websocket", "Sec-WebSocket-Protocol: chat", "Sec-WebSocket-Extensions: permessage-deflate"),
			Request{HTTP2: true, Protocols: []string{"chat"}, Extensions: []Extension{{"permessage-deflate", nil}}}},
		{"extended CONNECT with a key ignores it", extendedConnect("websocket", "Sec-WebSocket-Key: x"), Request{HTTP2: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRequest(tc.r)
			if err != nil || !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("ParseRequest = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseRequestRefuses(t *testing.T) {
	h2get := extendedConnect("websocket")
	h2get.Method = http.MethodGet
	noHost := upgradeRequest(t)
	noHost.Host = ""
	for _, tc := range []struct {
		name   string
		r      *http.Request
		status int
		err    error
	}{
		{"plain GET", readRequest(t, "GET / HTTP/1.1", "Host: a"), http.StatusUpgradeRequired, ErrNotWebSocket},
		{"no Upgrade", upgradeRequest(t, "-Upgrade"), http.StatusUpgradeRequired, ErrNotWebSocket},
		{"no Connection", upgradeRequest(t, "-Connection"), http.StatusUpgradeRequired, ErrNotWebSocket},
		{"Upgrade: websocket2", upgradeRequest(t, "Upgrade: websocket2"), http.StatusUpgradeRequired, ErrNotWebSocket},
		{"Connection: Upgrade-Insecure", upgradeRequest(t, "Connection: Upgrade-Insecure"), http.StatusUpgradeRequired, ErrNotWebSocket},
		{"POST", upgradeRequest(t, "POST /chat HTTP/1.1", "Content-Length: 0"), http.StatusMethodNotAllowed, ErrMethod},
		{"HTTP/1.0", upgradeRequest(t, "GET /chat HTTP/1.0"), http.StatusBadRequest, ErrHTTPVersion},
		{"no Host", noHost, http.StatusBadRequest, ErrHost},
		{"no key", upgradeRequest(t, "-Sec-WebSocket-Key"), http.StatusBadRequest, ErrKey},
		{"two keys", upgradeRequest(t, "+Sec-WebSocket-Key: "+sampleKey), http.StatusBadRequest, ErrKey},
		{"two keys on a line", upgradeRequest(t, "Sec-WebSocket-Key: "+sampleKey+", "+sampleKey), http.StatusBadRequest, ErrKey},
		{"key not base64", upgradeRequest(t, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!!"), http.StatusBadRequest, ErrKey},
		{"key of 24 characters, not base64", upgradeRequest(t, "Sec-WebSocket-Key: this-is-no-base64-value!"), http.StatusBadRequest, ErrKey},
		{"key of 15 bytes", upgradeRequest(t, "Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2Rl"), http.StatusBadRequest, ErrKey},
		{"key of 17 bytes", upgradeRequest(t, "Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZmc="), http.StatusBadRequest, ErrKey},
		{"key without padding", upgradeRequest(t, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ"), http.StatusBadRequest, ErrKey},
		{"key with bits past its 16 bytes", upgradeRequest(t, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR=="), http.StatusBadRequest, ErrKey},
		{"key in URL encoding", upgradeRequest(t, "Sec-WebSocket-Key: _-_-_-_-_-_-_-_-_-_-_w=="), http.StatusBadRequest, ErrKey},
		{"version 8", upgradeRequest(t, "Sec-WebSocket-Version: 8"), http.StatusUpgradeRequired, ErrVersion},
		{"no version", upgradeRequest(t, "-Sec-WebSocket-Version"), http.StatusUpgradeRequired, ErrVersion},
		{"versions 13, 8", upgradeRequest(t, "Sec-WebSocket-Version: 13, 8"), http.StatusUpgradeRequired, ErrVersion},
		{"version on two lines", upgradeRequest(t, "+Sec-WebSocket-Version: 13"), http.StatusBadRequest, ErrVersion},
		{"subprotocol not a token", upgradeRequest(t, "Sec-WebSocket-Protocol: chat, super chat"), http.StatusBadRequest, ErrProtocols},
		{"malformed extensions", upgradeRequest(t, "Sec-WebSocket-Extensions: permessage-deflate;"), http.StatusBadRequest, ErrExtensions},
		{"HTTP/2 GET", h2get, http.StatusUpgradeRequired, ErrNotWebSocket},
		{"HTTP/2 CONNECT for another protocol", extendedConnect("connect-udp"), http.StatusUpgradeRequired, ErrNotWebSocket},
		{"HTTP/2 CONNECT without :protocol", extendedConnect("websocket", "-:protocol"), http.StatusUpgradeRequired, ErrNotWebSocket},
		{"HTTP/2 CONNECT, version 8", extendedConnect("websocket", "-Sec-WebSocket-Version", "Sec-WebSocket-Version: 8"), http.StatusUpgradeRequired, ErrVersion},
		{"HTTP/2 CONNECT, no version", extendedConnect("websocket", "-Sec-WebSocket-Version"), http.StatusUpgradeRequired, ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRequest(tc.r)
			var rerr *RequestError
			if !errors.As(err, &rerr) || rerr.Status != tc.status || !errors.Is(err, tc.err) {
				t.Fatalf("ParseRequest = %+v, %v; want a *RequestError with status %d wrapping %v", got, err, tc.status, tc.err)
			}
		})
	}
}

func TestRequestErrorMessage(t *testing.T) {
	_, err := ParseRequest(upgradeRequest(t, "+Sec-WebSocket-Key: "+sampleKey))
	if want := "handshake: Sec-WebSocket-Key is not one base64-encoded 16-byte value: 2 header lines"; err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestRefuse(t *testing.T) {
	h1, h2 := upgradeRequest(t), extendedConnect("websocket")
	for _, tc := range []struct {
		name   string
		r      *http.Request
		err    *RequestError
		header http.Header
	}{
		{"not WebSocket", h1, &RequestError{Status: 426, Err: ErrNotWebSocket}, http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}},
		{"version", h1, &RequestError{Status: 426, Err: ErrVersion}, http.Header{"Sec-Websocket-Version": {"13"}, "Connection": {"close"}}},
		{"version twice", h1, &RequestError{Status: 400, Err: ErrVersion}, http.Header{"Connection": {"close"}}},
		{"method", h1, &RequestError{Status: 405, Err: ErrMethod}, http.Header{"Allow": {"GET"}, "Connection": {"close"}}},
		{"key", h1, &RequestError{Status: 400, Err: ErrKey}, http.Header{"Connection": {"close"}}},
		{"origin", h1, &RequestError{Status: 403, Err: ErrOrigin}, http.Header{"Connection": {"close"}}},
		{"HTTP/2 not WebSocket", h2, &RequestError{Status: 426, Err: ErrNotWebSocket}, http.Header{}},
		{"HTTP/2 version", h2, &RequestError{Status: 426, Err: ErrVersion}, http.Header{"Sec-Websocket-Version": {"13"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tc.err.Refuse(w, tc.r)
			got := w.Result()
			if got.StatusCode != tc.err.Status {
				t.Errorf("status %d, want %d", got.StatusCode, tc.err.Status)
			}
			for _, name := range []string{"Upgrade", "Connection", "Sec-Websocket-Version", "Allow"} {
				if g, w := got.Header.Values(name), tc.header.Values(name); !reflect.DeepEqual(g, w) {
					t.Errorf("%s: %q, want %q", name, g, w)
				}
			}
			if body := w.Body.String(); body != tc.err.Error()+"\n" {
				t.Errorf("body %q, want the error", body)
			}
		})
	}
}

func TestAcceptKey(t *testing.T) {
	if got, want := AcceptKey(sampleKey), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Errorf("AcceptKey(%q) = %q, want %q (RFC 6455 section 1.3)", sampleKey, got, want)
	}
}

func TestChooseProtocol(t *testing.T) {
	for _, tc := range []struct {
		offered, supported []string
		want               string
	}{
		{nil, []string{"chat"}, ""},
		{[]string{"chat"}, nil, ""},
		{[]string{"other", "chat", "v2"}, []string{"v2", "chat"}, "chat"},
		{[]string{"Chat"}, []string{"chat"}, ""},
	} {
		if got := ChooseProtocol(tc.offered, tc.supported); got != tc.want {
			t.Errorf("ChooseProtocol(%q, %q) = %q, want %q", tc.offered, tc.supported, got, tc.want)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		host    string
		origins []string
		want    bool
	}{
		{"example.com", nil, true},
		{"example.com", []string{"https://example.com"}, true},
		{"Example.COM:8080", []string{"http://example.com:8080"}, true},
		{"example.com:8080", []string{"http://example.com"}, false},
		{"example.com", []string{"https://evil.example"}, false},
		{"example.com", []string{"null"}, false},
		{"example.com", []string{"https://example.com", "https://evil.example"}, false},
		{"example.com", []string{"://"}, false},
	} {
		r := &http.Request{Host: tc.host, Header: http.Header{"Origin": tc.origins}}
		if got := SameOrigin(r); got != tc.want {
			t.Errorf("SameOrigin(Host %q, Origin %q) = %v, want %v", tc.host, tc.origins, got, tc.want)
		}
	}
}

func TestAppendResponse(t *testing.T) {
	got, err := AppendResponse([]byte("x"), sampleKey, "chat",
		[]Extension{{"permessage-deflate", []Param{{"server_no_context_takeover", ""}}}},
		http.Header{"X-B": {"2"}, "X-A": {"1", "1b"}})
	want := "xHTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n" +
		"Sec-WebSocket-Protocol: chat\r\n" +
		"X-A: 1\r\nX-A: 1b\r\nX-B: 2\r\n\r\n"
	if err != nil || string(got) != want {
		t.Errorf("AppendResponse = %q, %v; want %q", got, err, want)
	}

	got, err = AppendResponse(nil, sampleKey, "", nil, nil)
	want = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	if err != nil || string(got) != want {
		t.Errorf("AppendResponse without choices = %q, %v; want %q", got, err, want)
	}

	for _, tc := range []struct {
		name     string
		protocol string
		exts     []Extension
		extra    http.Header
		err      error
	}{
		{"reserved header", "", nil, http.Header{"Sec-Websocket-Accept": {"x"}}, ErrHeader},
		{"reserved header in another case", "", nil, http.Header{"connection": {"close"}}, ErrHeader},
		{"line break in a value", "", nil, http.Header{"X-A": {"1\r\nX-B: 2"}}, ErrHeader},
		{"name not a token", "", nil, http.Header{"X A": {"1"}}, ErrHeader},
		{"subprotocol not a token", "a b", nil, nil, ErrProtocols},
		{"extension not a token", "", []Extension{{"a,b", nil}}, nil, ErrExtensions},
	} {
		if b, err := AppendResponse(nil, sampleKey, tc.protocol, tc.exts, tc.extra); !errors.Is(err, tc.err) || len(b) != 0 {
			t.Errorf("%s: AppendResponse = %q, %v; want nothing and an error wrapping %v", tc.name, b, err, tc.err)
		}
	}
}

// TestAppendResponseAllocations: a 101 with a subprotocol, into a buffer
// with room for it, allocates nothing. Every connection is answered so, and
// what it allocates is garbage the moment the response is written.
func TestAppendResponseAllocations(t *testing.T) {
	b := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if b, err = AppendResponse(b[:0], sampleKey, "chat", nil, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendResponse allocates %v times, want 0", allocs)
	}
	if !bytes.Contains(b, []byte("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n")) {
		t.Errorf("AppendResponse = %q", b)
	}
}

func TestWriteConnectResponse(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("X-Before", "kept")
	err := WriteConnectResponse(w, "chat", []Extension{{"permessage-deflate", nil}}, http.Header{"X-Extra": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp := w.Result()
	want := http.Header{
		"Sec-Websocket-Protocol":   {"chat"},
		"Sec-Websocket-Extensions": {"permessage-deflate"},
		"X-Extra":                  {"1"},
		"X-Before":                 {"kept"},
	}
	if resp.StatusCode != http.StatusOK || !w.Flushed || !reflect.DeepEqual(resp.Header, want) {
		t.Errorf("answer %d (flushed %v) with %v; want 200, flushed, with %v", resp.StatusCode, w.Flushed, resp.Header, want)
	}

	w = httptest.NewRecorder()
	if err := WriteConnectResponse(w, "", nil, http.Header{"Sec-WebSocket-Protocol": {"chat"}}); !errors.Is(err, ErrHeader) || w.Code != 200 || w.Flushed || len(w.Header()) != 0 {
		t.Errorf("with a reserved extra header: %v, and the recorder holds %d %v; want ErrHeader and nothing written", err, w.Code, w.Header())
	}
}
