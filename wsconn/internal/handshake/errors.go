package handshake

import (
	"errors"
	"fmt"
	"net/http"
)

// What is wrong with a request, as the Err of a [*RequestError].
var (
	// ErrNotWebSocket: the request does not ask for a WebSocket (no
	// Upgrade: websocket with Connection: Upgrade, nor an extended CONNECT
	// for websocket). Answered 426 Upgrade Required.
	ErrNotWebSocket = errors.New("handshake: not a WebSocket handshake")
	// ErrMethod: the request asks for a WebSocket with a method other than
	// GET. Answered 405 Method Not Allowed.
	ErrMethod = errors.New("handshake: method is not GET")
	// ErrHTTPVersion: the request asks for a WebSocket over HTTP/1.0.
	// Answered 400 Bad Request.
	ErrHTTPVersion = errors.New("handshake: HTTP version below 1.1")
	// ErrHost: the request has no Host. Answered 400 Bad Request.
	ErrHost = errors.New("handshake: no Host")
	// ErrKey: the request has no Sec-WebSocket-Key, several, or one that is
	// not the base64 encoding of 16 bytes. Answered 400 Bad Request.
	ErrKey = errors.New("handshake: Sec-WebSocket-Key is not one base64-encoded 16-byte value")
	// ErrVersion: the request's Sec-WebSocket-Version is missing or not 13
	// (answered 426 Upgrade Required with Sec-WebSocket-Version: 13), or
	// given on several lines (400 Bad Request).
	ErrVersion = errors.New("handshake: Sec-WebSocket-Version is not 13")
	// ErrProtocols: a Sec-WebSocket-Protocol element is not a token.
	// Answered 400 Bad Request.
	ErrProtocols = errors.New("handshake: malformed Sec-WebSocket-Protocol")
	// ErrExtensions: Sec-WebSocket-Extensions does not parse (RFC 6455
	// section 9.1). Answered 400 Bad Request.
	ErrExtensions = errors.New("handshake: malformed Sec-WebSocket-Extensions")
	// ErrOrigin: the request's origin is not allowed. Answered 403
	// Forbidden.
	ErrOrigin = errors.New("handshake: origin not allowed")
)

// Errors in what the caller asks to send.
var (
	// ErrHeader: an extra header has a name that is not a token, a value
	// with a line break or another control character, or the name of a
	// header the handshake writes itself.
	ErrHeader = errors.New("handshake: invalid extra header")
	// ErrURL: a client's URL is not ws:// or wss:// with a host.
	ErrURL = errors.New("handshake: URL is not ws:// or wss:// with a host")
)

// What is wrong with a server's answer, for [CheckResponse].
var (
	// ErrStatus: the server answered with a status other than 101
	// Switching Protocols (200 for an extended CONNECT).
	ErrStatus = errors.New("handshake: the server did not switch protocols")
	// ErrUpgrade: the answer lacks Upgrade: websocket or Connection:
	// Upgrade.
	ErrUpgrade = errors.New("handshake: the answer does not upgrade to websocket")
	// ErrAccept: the answer's Sec-WebSocket-Accept is missing or does not
	// match the key sent.
	ErrAccept = errors.New("handshake: wrong Sec-WebSocket-Accept")
	// ErrProtocolNotOffered: the server chose a subprotocol the client did
	// not offer, or several.
	ErrProtocolNotOffered = errors.New("handshake: the server chose a subprotocol that was not offered")
	// ErrExtensionNotOffered: the server accepted an extension the client
	// did not offer, or one twice.
	ErrExtensionNotOffered = errors.New("handshake: the server accepted an extension that was not offered")
)

// RequestError is why [ParseRequest] refused a request, and the HTTP
// answer the request is to get.
type RequestError struct {
	// Status is the HTTP status code of the answer.
	Status int
	// Err is one of the request sentinels: [ErrNotWebSocket], [ErrMethod],
	// [ErrHTTPVersion], [ErrHost], [ErrKey], [ErrVersion], [ErrProtocols],
	// [ErrExtensions], [ErrOrigin].
	Err error
	// Detail says what exactly was wrong; it may be empty.
	Detail string
}

func requestError(status int, err error, format string, args ...any) *RequestError {
	return &RequestError{Status: status, Err: err, Detail: fmt.Sprintf(format, args...)}
}

func (e *RequestError) Error() string {
	if e.Detail == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Detail
}

func (e *RequestError) Unwrap() error { return e.Err }

// Refuse answers the refused request r on w with e.Status, the headers
// the status asks for and the error as text. 426 for a version carries
// Sec-WebSocket-Version: 13, 405 Allow: GET. Over HTTP/1, a request that is
// not a WebSocket handshake gets Upgrade: websocket and Connection: Upgrade,
// and every other refusal ends the connection after the answer (Connection:
// close), so that bytes a client sent behind its request, counting on the
// upgrade, are never read as HTTP. Over HTTP/2, where those header fields
// are not allowed, only the stream ends: the connection carries others.
func (e *RequestError) Refuse(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	switch {
	case errors.Is(e.Err, ErrVersion) && e.Status == http.StatusUpgradeRequired:
		h.Set("Sec-WebSocket-Version", "13")
	case errors.Is(e.Err, ErrMethod):
		h.Set("Allow", http.MethodGet)
	}
	if r.ProtoMajor < 2 {
		if errors.Is(e.Err, ErrNotWebSocket) {
			h.Set("Upgrade", "websocket")
			h.Set("Connection", "Upgrade")
		} else {
			h.Set("Connection", "close")
		}
	}
	http.Error(w, e.Error(), e.Status)
}
