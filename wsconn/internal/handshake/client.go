package handshake

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// requestReserved are the header fields of a request that extra headers
// may not set.
var requestReserved = []string{"Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"}

// NewRequest returns the opening handshake for the ws:// or wss:// URL u,
// to be written with [http.Request.Write], and the key it carries, which
// [CheckResponse] needs. The key is 16 random bytes, base64-encoded. The
// request offers protocols and exts, in order of preference, and carries
// extra header fields; a Host among them names the host the request is
// for instead of u's. Userinfo in u becomes basic authentication.
//
// The errors wrap [ErrURL], [ErrProtocols] (a subprotocol that is not a
// token), [ErrExtensions] or [ErrHeader] (as for [AppendResponse], with
// Sec-WebSocket-Key and Sec-WebSocket-Version also reserved).
func NewRequest(u *url.URL, protocols []string, exts []Extension, extra http.Header) (req *http.Request, key string, err error) {
	req, err = newRequest(u, protocols, exts, extra, requestReserved)
	if err != nil {
		return nil, "", err
	}
	var nonce [16]byte
	rand.Read(nonce[:]) // never fails: crypto/rand.Read aborts the program instead
	key = base64.StdEncoding.EncodeToString(nonce[:])
	req.Header["Upgrade"] = []string{"websocket"}
	req.Header["Connection"] = []string{"Upgrade"}
	req.Header["Sec-WebSocket-Key"] = []string{key}
	return req, key, nil
}

// NewConnectRequest returns the extended CONNECT (RFC 8441 section 4) that
// opens a WebSocket over HTTP/2 for the ws:// or wss:// URL u, for an
// HTTP/2 client that sends a CONNECT request with a ":protocol" header
// field as an extended CONNECT (golang.org/x/net/http2's Transport does):
// method CONNECT, :protocol websocket, Sec-WebSocket-Version 13, the
// offered protocols and exts and extra header fields, and no key, Upgrade
// or Connection. Its URL is u's with http or https for the scheme; its
// Body is nil. The errors are [NewRequest]'s; extra can set no
// pseudo-header, whose name is not a token.
func NewConnectRequest(u *url.URL, protocols []string, exts []Extension, extra http.Header) (*http.Request, error) {
	req, err := newRequest(u, protocols, exts, extra, requestReserved)
	if err != nil {
		return nil, err
	}
	req.Method = http.MethodConnect
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/2.0", 2, 0
	req.Header[":protocol"] = []string{"websocket"}
	return req, nil
}

// newRequest returns what the requests of both HTTP versions share: the
// target, Host, basic authentication, Sec-WebSocket-Version, the offers
// and the extra header fields, which may not be among reserved.
func newRequest(u *url.URL, protocols []string, exts []Extension, extra http.Header, reserved []string) (*http.Request, error) {
	target := *u
	switch u.Scheme {
	case "ws":
		target.Scheme = "http"
	case "wss":
		target.Scheme = "https"
	default:
		return nil, fmt.Errorf("%w: scheme %q", ErrURL, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: no host in %q", ErrURL, u.Redacted())
	}
	target.Fragment, target.RawFragment, target.User = "", "", nil
	if err := checkExtra(extra, reserved...); err != nil {
		return nil, err
	}
	h := make(http.Header, len(extra)+6)
	host := u.Host
	for name, vs := range extra {
		if strings.EqualFold(name, "Host") {
			if len(vs) > 0 {
				host = vs[0]
			}
			continue
		}
		for _, v := range vs {
			h.Add(name, v)
		}
	}
	h["Sec-WebSocket-Version"] = []string{"13"}
	for _, p := range protocols {
		if !isToken(p) {
			return nil, fmt.Errorf("%w: subprotocol %q is not a token", ErrProtocols, p)
		}
	}
	if len(protocols) > 0 {
		h["Sec-WebSocket-Protocol"] = []string{strings.Join(protocols, ", ")}
	}
	if len(exts) > 0 {
		v, err := FormatExtensions(exts)
		if err != nil {
			return nil, err
		}
		h["Sec-WebSocket-Extensions"] = []string{v}
	}
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &target,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       host,
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pass)
	}
	return req, nil
}

// Response is what a server chose in an answer that [CheckResponse]
// accepted.
type Response struct {
	// Protocol is the chosen subprotocol, empty for none.
	Protocol string
	// Extensions are the accepted extensions, in the server's order.
	Extensions []Extension
}

// CheckResponse checks a server's answer to an opening handshake sent with
// key, offering protocols and exts (RFC 6455 section 4.1): the status must
// be 101 ([ErrStatus]); Upgrade must hold websocket and Connection upgrade
// ([ErrUpgrade]); Sec-WebSocket-Accept must be exactly [AcceptKey] of key
// ([ErrAccept]); a subprotocol must be one of protocols
// ([ErrProtocolNotOffered]); each accepted extension must be one offered,
// by name, and accepted once ([ErrExtensionNotOffered]).
func CheckResponse(resp *http.Response, key string, protocols []string, exts []Extension) (Response, error) {
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return Response{}, fmt.Errorf("%w: %s %s", ErrStatus, resp.Proto, resp.Status)
	}
	if !hasToken(resp.Header.Values("Upgrade"), "websocket") {
		return Response{}, fmt.Errorf("%w: Upgrade is %q", ErrUpgrade, resp.Header.Values("Upgrade"))
	}
	if !hasToken(resp.Header.Values("Connection"), "upgrade") {
		return Response{}, fmt.Errorf("%w: Connection is %q", ErrUpgrade, resp.Header.Values("Connection"))
	}
	if vs, want := resp.Header.Values("Sec-WebSocket-Accept"), AcceptKey(key); len(vs) != 1 || vs[0] != want {
		return Response{}, fmt.Errorf("%w: got %q, want %q", ErrAccept, vs, want)
	}
	return negotiated(resp.Header, protocols, exts)
}

// CheckConnectResponse checks a server's answer to an extended CONNECT
// sent with [NewConnectRequest], offering protocols and exts (RFC 8441
// section 5): the status must be 2xx ([ErrStatus]); the subprotocol and
// extensions are checked as by [CheckResponse].
func CheckConnectResponse(resp *http.Response, protocols []string, exts []Extension) (Response, error) {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Response{}, fmt.Errorf("%w: %s %s", ErrStatus, resp.Proto, resp.Status)
	}
	return negotiated(resp.Header, protocols, exts)
}

// negotiated checks the server's choice of subprotocol and extensions in h
// against the offer.
func negotiated(h http.Header, protocols []string, exts []Extension) (Response, error) {
	var r Response
	chosen, err := tokenList(h.Values("Sec-WebSocket-Protocol"))
	switch {
	case err != nil:
		return Response{}, fmt.Errorf("%w: %v", ErrProtocols, err)
	case len(chosen) > 1:
		return Response{}, fmt.Errorf("%w: the server chose %q", ErrProtocolNotOffered, chosen)
	case len(chosen) == 1:
		if !slices.Contains(protocols, chosen[0]) {
			return Response{}, fmt.Errorf("%w: %q, offered %q", ErrProtocolNotOffered, chosen[0], protocols)
		}
		r.Protocol = chosen[0]
	}
	if r.Extensions, err = ParseExtensions(h.Values("Sec-WebSocket-Extensions")); err != nil {
		return Response{}, err
	}
	for i, e := range r.Extensions {
		named := func(x Extension) bool { return x.Name == e.Name }
		if !slices.ContainsFunc(exts, named) {
			return Response{}, fmt.Errorf("%w: %s", ErrExtensionNotOffered, e.Name)
		}
		if slices.ContainsFunc(r.Extensions[:i], named) {
			return Response{}, fmt.Errorf("%w: %s twice", ErrExtensionNotOffered, e.Name)
		}
	}
	return r, nil
}
