package handshake

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Request is an opening handshake that [ParseRequest] accepted.
type Request struct {
	// Key is the Sec-WebSocket-Key, 24 characters; empty for an extended
	// CONNECT, which has none.
	Key string
	// Protocols are the subprotocols the client offers, in its order of
	// preference.
	Protocols []string
	// Extensions are the extensions the client offers, in its order.
	Extensions []Extension
	// HTTP2 is set for an extended CONNECT over HTTP/2 (RFC 8441), which
	// is answered with [WriteConnectResponse] instead of a 101.
	HTTP2 bool
}

// keyEncoding decodes a Sec-WebSocket-Key: standard base64 with padding,
// and no bits set past the last byte.
var keyEncoding = base64.StdEncoding.Strict()

// ParseRequest checks that r is a WebSocket opening handshake and returns
// what it asks for, or a [*RequestError] that says why not and how to
// answer.
//
// Over HTTP/1 (RFC 6455 section 4.2.1), r must carry Upgrade: websocket
// and Connection: Upgrade as elements of their token lists, on any line
// and in any case (else [ErrNotWebSocket], 426), have the method GET
// ([ErrMethod], 405) and the version HTTP/1.1 or later ([ErrHTTPVersion],
// 400), a Host ([ErrHost], 400), exactly one Sec-WebSocket-Key whose value
// is the base64 encoding of 16 bytes ([ErrKey], 400), and
// Sec-WebSocket-Version 13 ([ErrVersion], 426; 400 when given twice).
//
// Over HTTP/2 (RFC 8441 section 5), r must be a CONNECT whose :protocol is
// websocket (else [ErrNotWebSocket], 426), with an authority ([ErrHost])
// and Sec-WebSocket-Version 13; it has no key, and one it carries is
// ignored.
//
// In both, Sec-WebSocket-Protocol must be a list of tokens
// ([ErrProtocols], 400) and Sec-WebSocket-Extensions must parse
// ([ErrExtensions], 400). ParseRequest does not look at the Origin: see
// [SameOrigin].
func ParseRequest(r *http.Request) (*Request, error) {
	req := new(Request)
	if r.ProtoMajor >= 2 {
		if r.Method != http.MethodConnect || !strings.EqualFold(r.Header.Get(":protocol"), "websocket") {
			return nil, requestError(http.StatusUpgradeRequired, ErrNotWebSocket, "%s over %s without :protocol websocket", r.Method, r.Proto)
		}
		req.HTTP2 = true
	} else {
		if !hasToken(r.Header.Values("Upgrade"), "websocket") || !hasToken(r.Header.Values("Connection"), "upgrade") {
			return nil, requestError(http.StatusUpgradeRequired, ErrNotWebSocket, "%s %s without Upgrade: websocket and Connection: Upgrade", r.Method, r.URL)
		}
		if r.Method != http.MethodGet {
			return nil, requestError(http.StatusMethodNotAllowed, ErrMethod, "%s", r.Method)
		}
		if !r.ProtoAtLeast(1, 1) {
			return nil, requestError(http.StatusBadRequest, ErrHTTPVersion, "%s", r.Proto)
		}
	}
	if r.Host == "" {
		return nil, requestError(http.StatusBadRequest, ErrHost, "")
	}
	if !req.HTTP2 {
		key, err := requestKey(r.Header.Values("Sec-WebSocket-Key"))
		if err != nil {
			return nil, err
		}
		req.Key = key
	}
	switch vs := r.Header.Values("Sec-WebSocket-Version"); {
	case len(vs) > 1:
		return nil, requestError(http.StatusBadRequest, ErrVersion, "%d header lines", len(vs))
	case len(vs) == 0:
		return nil, requestError(http.StatusUpgradeRequired, ErrVersion, "none given")
	case vs[0] != "13":
		return nil, requestError(http.StatusUpgradeRequired, ErrVersion, "%q", vs[0])
	}
	var err error
	if req.Protocols, err = tokenList(r.Header.Values("Sec-WebSocket-Protocol")); err != nil {
		return nil, requestError(http.StatusBadRequest, ErrProtocols, "%v", err)
	}
	if req.Extensions, err = parseExtensions(r.Header.Values("Sec-WebSocket-Extensions")); err != nil {
		return nil, requestError(http.StatusBadRequest, ErrExtensions, "%v", err)
	}
	return req, nil
}

func requestKey(vs []string) (string, error) {
	if len(vs) != 1 {
		return "", requestError(http.StatusBadRequest, ErrKey, "%d header lines", len(vs))
	}
	// Strict decoding still skips line breaks: the length check rules
	// them out, as 16 bytes take exactly 24 characters.
	if b, err := keyEncoding.DecodeString(vs[0]); len(vs[0]) != 24 || err != nil || len(b) != 16 {
		return "", requestError(http.StatusBadRequest, ErrKey, "%q", vs[0])
	}
	return vs[0], nil
}

// acceptGUID is the GUID of RFC 6455 section 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value that answers key: the
// base64 encoding of the SHA-1 of key and the GUID of RFC 6455.
func AcceptKey(key string) string {
	return string(appendAcceptKey(nil, key))
}

// appendAcceptKey appends [AcceptKey] of key to b. A key of the usual 24
// characters is hashed from the stack, so that answering a handshake
// allocates nothing but the response it appends to.
func appendAcceptKey(b []byte, key string) []byte {
	var sum [sha1.Size]byte
	if len(key) == 24 {
		var in [24 + len(acceptGUID)]byte
		copy(in[copy(in[:], key):], acceptGUID)
		sum = sha1.Sum(in[:])
	} else {
		sum = sha1.Sum([]byte(key + acceptGUID))
	}
	return base64.StdEncoding.AppendEncode(b, sum[:])
}

// ChooseProtocol returns the first of the subprotocols a client offers
// that the server supports, or "" when there is none.
func ChooseProtocol(offered, supported []string) string {
	for _, p := range offered {
		if slices.Contains(supported, p) {
			return p
		}
	}
	return ""
}

// SameOrigin reports whether r comes from no browser page (no Origin
// header) or from a page of r's own host: the Origin's host, port
// included, equals r.Host without regard to case. Several Origin lines are
// refused.
func SameOrigin(r *http.Request) bool {
	vs := r.Header.Values("Origin")
	if len(vs) == 0 {
		return true
	}
	if len(vs) > 1 {
		return false
	}
	u, err := url.Parse(vs[0])
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// responseReserved are the header fields of a 101 that extra headers may
// not set.
var responseReserved = []string{"Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"}

// AppendResponse appends to b the 101 Switching Protocols response that
// accepts a request with key, with the chosen subprotocol (none if empty),
// the accepted extensions and extra header fields. Extra fields must have
// token names and values without line breaks, and may not be among those
// the response sets itself (Upgrade, Connection and Sec-WebSocket-*);
// else the error wraps [ErrHeader]. An extension that is not made of
// tokens is an error wrapping [ErrExtensions].
func AppendResponse(b []byte, key, protocol string, exts []Extension, extra http.Header) ([]byte, error) {
	ext, err := checkNegotiation(protocol, exts, extra)
	if err != nil {
		return b, err
	}
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = append(appendAcceptKey(b, key), "\r\n"...)
	// The negotiated fields in the order of their names, as appendHeader
	// writes the extra ones.
	if ext != "" {
		b = appendLine(b, "Sec-WebSocket-Extensions", ext)
	}
	if protocol != "" {
		b = appendLine(b, "Sec-WebSocket-Protocol", protocol)
	}
	b = appendHeader(b, extra)
	return append(b, "\r\n"...), nil
}

// checkNegotiation checks extra and the server's choice of subprotocol and
// extensions, and returns the value of Sec-WebSocket-Extensions for exts
// ("" for none).
func checkNegotiation(protocol string, exts []Extension, extra http.Header) (string, error) {
	if err := checkExtra(extra, responseReserved...); err != nil {
		return "", err
	}
	if protocol != "" && !isToken(protocol) {
		return "", fmt.Errorf("%w: subprotocol %q is not a token", ErrProtocols, protocol)
	}
	if len(exts) == 0 {
		return "", nil
	}
	return FormatExtensions(exts)
}

// negotiationHeader returns the header fields that carry the server's
// choice of subprotocol and extensions, after checking them and extra.
func negotiationHeader(protocol string, exts []Extension, extra http.Header) (http.Header, error) {
	ext, err := checkNegotiation(protocol, exts, extra)
	if err != nil {
		return nil, err
	}
	h := make(http.Header, 2)
	if protocol != "" {
		h["Sec-WebSocket-Protocol"] = []string{protocol}
	}
	if ext != "" {
		h["Sec-WebSocket-Extensions"] = []string{ext}
	}
	return h, nil
}

// WriteConnectResponse accepts an extended CONNECT (RFC 8441 section 5):
// it answers 200 on w with the chosen subprotocol (none if empty), the
// accepted extensions and extra header fields, and flushes the answer so
// that the stream is open both ways. The request's body is then the
// client's bytes and w takes the server's. Extra fields are checked as by
// [AppendResponse]: when they or the choices are invalid, nothing is
// written. The error of the flush is returned too.
func WriteConnectResponse(w http.ResponseWriter, protocol string, exts []Extension, extra http.Header) error {
	neg, err := negotiationHeader(protocol, exts, extra)
	if err != nil {
		return err
	}
	h := w.Header()
	for name, vs := range extra {
		for _, v := range vs {
			h.Add(name, v)
		}
	}
	for name, vs := range neg {
		h.Set(name, vs[0])
	}
	w.WriteHeader(http.StatusOK)
	return http.NewResponseController(w).Flush()
}
