package handshake

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// sendRequest writes req as a client does and reads it back as a server
// does.
func sendRequest(t *testing.T, req *http.Request) (raw string, r *http.Request) {
	t.Helper()
	var b bytes.Buffer
	if err := req.Write(&b); err != nil {
		t.Fatal(err)
	}
	raw = b.String()
	r, err := http.ReadRequest(bufio.NewReader(&b))
	if err != nil {
		t.Fatalf("reading %q: %v", raw, err)
	}
	return raw, r
}

// TestHandshakeRoundTrip runs both sides: the client's request is what
// ParseRequest accepts, and the server's 101 is what CheckResponse
// accepts, with the choices carried across.
func TestHandshakeRoundTrip(t *testing.T) {
	exts := []Extension{{"permessage-deflate", []Param{{"client_max_window_bits", ""}}}, {"x-other", nil}}
	req, key, err := NewRequest(mustURL(t, "ws://example.com:8080/chat?room=1#frag"), []string{"v2.chat", "chat"}, exts, http.Header{"Origin": {"http://example.com:8080"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, r := sendRequest(t, req)
	if !strings.HasPrefix(raw, "GET /chat?room=1 HTTP/1.1\r\nHost: example.com:8080\r\n") {
		t.Errorf("request starts %q", raw)
	}
	parsed, err := ParseRequest(r)
	if err != nil {
		t.Fatalf("ParseRequest of %q: %v", raw, err)
	}
	if want := (Request{Key: key, Protocols: []string{"v2.chat", "chat"}, Extensions: exts}); !reflect.DeepEqual(*parsed, want) {
		t.Errorf("the server sees %+v, want %+v", *parsed, want)
	}
	if !SameOrigin(r) {
		t.Errorf("Origin %q is not the same origin as Host %q", r.Header.Get("Origin"), r.Host)
	}

	accepted := exts[:1]
	b, err := AppendResponse(nil, parsed.Key, ChooseProtocol(parsed.Protocols, []string{"chat"}), accepted, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := CheckResponse(resp, key, []string{"v2.chat", "chat"}, exts)
	if want := (Response{Protocol: "chat", Extensions: accepted}); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("CheckResponse = %+v, %v; want %+v", got, err, want)
	}
}

func TestNewRequest(t *testing.T) {
	req1, key1, err := NewRequest(mustURL(t, "wss://user:pw@[::1]/"), nil, nil, http.Header{"Host": {"virtual.example"}, "X-Extra": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, r := sendRequest(t, req1)
	if r.Host != "virtual.example" || r.Header.Get("X-Extra") != "1" {
		t.Errorf("request %q: want Host virtual.example and X-Extra 1", raw)
	}
	if user, pw, ok := r.BasicAuth(); !ok || user != "user" || pw != "pw" {
		t.Errorf("request %q: want basic authentication user:pw", raw)
	}
	for _, name := range []string{"Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"} {
		if _, ok := r.Header[http.CanonicalHeaderKey(name)]; ok {
			t.Errorf("request %q: %s without an offer", raw, name)
		}
	}
	if _, err := ParseRequest(r); err != nil {
		t.Errorf("ParseRequest(%q) = %v", raw, err)
	}
	_, key2, err := NewRequest(mustURL(t, "ws://a/"), nil, nil, nil)
	if err != nil || key1 == key2 {
		t.Errorf("two keys %q and %q, %v; want different ones", key1, key2, err)
	}

	for _, tc := range []struct {
		url       string
		protocols []string
		exts      []Extension
		extra     http.Header
		err       error
	}{
		{"http://a/", nil, nil, nil, ErrURL},
		{"ws:///path", nil, nil, nil, ErrURL},
		{"ws://a/", []string{"a b"}, nil, nil, ErrProtocols},
		{"ws://a/", []string{""}, nil, nil, ErrProtocols},
		{"ws://a/", nil, []Extension{{"x;y", nil}}, nil, ErrExtensions},
		{"ws://a/", nil, nil, http.Header{"Sec-WebSocket-Key": {sampleKey}}, ErrHeader},
		{"ws://a/", nil, nil, http.Header{"sec-websocket-version": {"13"}}, ErrHeader},
		{"ws://a/", nil, nil, http.Header{"X-A": {"a\nb"}}, ErrHeader},
	} {
		if req, _, err := NewRequest(mustURL(t, tc.url), tc.protocols, tc.exts, tc.extra); !errors.Is(err, tc.err) {
			t.Errorf("NewRequest(%s, %q, %v, %v) = %v, %v; want an error wrapping %v", tc.url, tc.protocols, tc.exts, tc.extra, req, err, tc.err)
		}
	}
}

func TestCheckResponse(t *testing.T) {
	accept := "Sec-WebSocket-Accept: " + AcceptKey(sampleKey)
	offered := []Extension{{"permessage-deflate", nil}, {"x-b", nil}}
	for _, tc := range []struct {
		name string
		head []string
		want Response
		err  error
	}{
		{"101", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", accept}, Response{}, nil},
		{"tokens in any case, over lines", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: WebSocket", "Connection: keep-alive", "Connection: upgrade", accept}, Response{}, nil},
		{"chosen subprotocol", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", accept, "Sec-WebSocket-Protocol: chat"}, Response{Protocol: "chat"}, nil},
		{"accepted extensions", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", accept, "Sec-WebSocket-Extensions: x-b; p=1, permessage-deflate"},
			Response{Extensions: []Extension{{"x-b", []Param{{"p", "1"}}}, {"permessage-deflate", nil}}}, nil},
		{"200", []string{"HTTP/1.1 200 OK", "Content-Length: 0"}, Response{}, ErrStatus},
		{"403", []string{"HTTP/1.1 403 Forbidden", "Content-Length: 0"}, Response{}, ErrStatus},
		{"no Upgrade", []string{"HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", accept}, Response{}, ErrUpgrade},
		{"Upgrade: h2c", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: h2c", "Connection: Upgrade", accept}, Response{}, ErrUpgrade},
		{"no Connection", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", accept}, Response{}, ErrUpgrade},
		{"no accept", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"}, Response{}, ErrAccept},
		{"wrong accept", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: " + AcceptKey("other")}, Response{}, ErrAccept},
		{"accept in another case", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", strings.ToLower(accept)}, Response{}, ErrAccept},
		{"two accepts", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", accept, accept}, Response{}, ErrAccept},
		{"subprotocol not offered", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", accept, "Sec-WebSocket-Protocol: other"}, Response{}, ErrProtocolNotOffered},
		{"two subprotocols", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", accept, "Sec-WebSocket-Protocol: chat, v2"}, Response{}, ErrProtocolNotOffered},
		{"subprotocol not a token", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", accept, "Sec-WebSocket-Protocol: a b"}, Response{}, ErrProtocols},
		{"extension not offered", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", accept, "Sec-WebSocket-Extensions: x-c"}, Response{}, ErrExtensionNotOffered},
		{"extension twice", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", accept, "Sec-WebSocket-Extensions: x-b", "Sec-WebSocket-Extensions: x-b"}, Response{}, ErrExtensionNotOffered},
		{"malformed extensions", []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", accept, "Sec-WebSocket-Extensions: x-b;"}, Response{}, ErrExtensions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := strings.Join(tc.head, "\r\n") + "\r\n\r\n"
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := CheckResponse(resp, sampleKey, []string{"v2", "chat"}, offered)
			if tc.err == nil && (err != nil || !reflect.DeepEqual(got, tc.want)) {
				t.Fatalf("CheckResponse = %+v, %v; want %+v", got, err, tc.want)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("CheckResponse = %+v, %v; want an error wrapping %v", got, err, tc.err)
			}
		})
	}
}

func TestCheckResponseErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		head []string
		want string
	}{
		{[]string{"HTTP/1.1 200 OK"}, "handshake: the server did not switch protocols: HTTP/1.1 200 OK"},
		{[]string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: x"},
			`handshake: wrong Sec-WebSocket-Accept: got ["x"], want "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="`},
		{[]string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Protocol: other"},
			`handshake: the server chose a subprotocol that was not offered: "other", offered ["chat"]`},
	} {
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(strings.Join(tc.head, "\r\n")+"\r\n\r\n")), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := CheckResponse(resp, sampleKey, []string{"chat"}, nil); err == nil || err.Error() != tc.want {
			t.Errorf("CheckResponse error %q, want %q", err, tc.want)
		}
	}
}

// TestConnectRoundTrip: the client's extended CONNECT is what ParseRequest
// accepts as one, with the offers carried across, and it carries none of
// the HTTP/1 upgrade's fields.
func TestConnectRoundTrip(t *testing.T) {
	exts := []Extension{{"permessage-deflate", []Param{{"client_max_window_bits", ""}}}}
	req, err := NewConnectRequest(mustURL(t, "wss://user:pw@example.com/chat?room=1#frag"), []string{"v2", "chat"}, exts,
		http.Header{"Origin": {"https://example.com"}, "Host": {"other.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != http.MethodConnect || req.URL.String() != "https://example.com/chat?room=1" || req.Host != "other.example" {
		t.Errorf("request %s %s Host %s; want CONNECT https://example.com/chat?room=1 Host other.example", req.Method, req.URL, req.Host)
	}
	for _, name := range []string{"Upgrade", "Connection", "Sec-WebSocket-Key"} {
		if v, ok := req.Header[name]; ok {
			t.Errorf("an extended CONNECT carries %s: %q", name, v)
		}
	}
	if u, p, ok := req.BasicAuth(); !ok || u != "user" || p != "pw" {
		t.Errorf("basic authentication %q %q %v; want user pw", u, p, ok)
	}
	// An HTTP/2 client sends the field names in lower case; the server
	// reads them canonical.
	r := req.Clone(t.Context())
	r.Header = make(http.Header)
	for name, vs := range req.Header {
		for _, v := range vs {
			r.Header.Add(name, v)
		}
	}
	parsed, err := ParseRequest(r)
	if err != nil {
		t.Fatalf("ParseRequest: %v", err)
	}
	if want := (Request{HTTP2: true, Protocols: []string{"v2", "chat"}, Extensions: exts}); !reflect.DeepEqual(*parsed, want) {
		t.Errorf("the server sees %+v, want %+v", *parsed, want)
	}
	for _, extra := range []http.Header{{":protocol": {"x"}}, {"Sec-WebSocket-Key": {"x"}}, {"Connection": {"close"}}} {
		if _, err := NewConnectRequest(mustURL(t, "wss://example.com/"), nil, nil, extra); !errors.Is(err, ErrHeader) {
			t.Errorf("NewConnectRequest with extra %v = %v; want an error wrapping ErrHeader", extra, err)
		}
	}
	if _, err := NewConnectRequest(mustURL(t, "https://example.com/"), nil, nil, nil); !errors.Is(err, ErrURL) {
		t.Errorf("NewConnectRequest of an https URL = %v; want an error wrapping ErrURL", err)
	}
}

func TestCheckConnectResponse(t *testing.T) {
	offered := []Extension{{"permessage-deflate", nil}}
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		want   Response
		err    error
	}{
		{"200", 200, nil, Response{}, nil},
		{"any 2xx", 204, nil, Response{}, nil},
		{"chosen subprotocol and extension", 200, http.Header{"Sec-Websocket-Protocol": {"chat"}, "Sec-Websocket-Extensions": {"permessage-deflate"}},
			Response{Protocol: "chat", Extensions: []Extension{{"permessage-deflate", nil}}}, nil},
		{"101", 101, nil, Response{}, ErrStatus},
		{"403", 403, nil, Response{}, ErrStatus},
		{"501", 501, nil, Response{}, ErrStatus},
		{"subprotocol not offered", 200, http.Header{"Sec-Websocket-Protocol": {"other"}}, Response{}, ErrProtocolNotOffered},
		{"extension not offered", 200, http.Header{"Sec-Websocket-Extensions": {"x-c"}}, Response{}, ErrExtensionNotOffered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Status: http.StatusText(tc.status), Proto: "HTTP/2.0", Header: tc.header}
			got, err := CheckConnectResponse(resp, []string{"chat"}, offered)
			if tc.err == nil && (err != nil || !reflect.DeepEqual(got, tc.want)) {
				t.Fatalf("CheckConnectResponse = %+v, %v; want %+v", got, err, tc.want)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("CheckConnectResponse = %+v, %v; want an error wrapping %v", got, err, tc.err)
			}
		})
	}
}
