package wsconn

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/pollws/pollws/wsconn/internal/frame"
)

// MessageType is the type of a WebSocket message.
type MessageType uint8

// The message types (RFC 6455 section 5.6). Their values are the
// opcodes of the messages' first frames.
const (
	Text   MessageType = MessageType(frame.OpText)
	Binary MessageType = MessageType(frame.OpBinary)
)

// String returns "text", "binary", or the number of another value.
func (t MessageType) String() string {
	switch t {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// StatusCode is the status code of a close frame (RFC 6455 section 7.4).
type StatusCode uint16

// The status codes of RFC 6455 section 7.4.1 and the IANA registry.
// StatusNoStatusRcvd, StatusAbnormalClosure and StatusTLSHandshake are
// never sent: they report a close frame without a code, a connection that
// ended without a close frame, and a failed TLS handshake.
const (
	StatusNormalClosure   StatusCode = 1000
	StatusGoingAway       StatusCode = 1001
	StatusProtocolError   StatusCode = 1002
	StatusUnsupportedData StatusCode = 1003
	StatusNoStatusRcvd    StatusCode = 1005
	StatusAbnormalClosure StatusCode = 1006
	StatusInvalidPayload  StatusCode = 1007
	StatusPolicyViolation StatusCode = 1008
	StatusMessageTooBig   StatusCode = 1009
	StatusMandatoryExt    StatusCode = 1010
	StatusInternalError   StatusCode = 1011
	StatusServiceRestart  StatusCode = 1012
	StatusTryAgainLater   StatusCode = 1013
	StatusBadGateway      StatusCode = 1014
	StatusTLSHandshake    StatusCode = 1015
)

var statusNames = map[StatusCode]string{
	StatusNormalClosure:   "normal closure",
	StatusGoingAway:       "going away",
	StatusProtocolError:   "protocol error",
	StatusUnsupportedData: "unsupported data",
	StatusNoStatusRcvd:    "no status",
	StatusAbnormalClosure: "abnormal closure",
	StatusInvalidPayload:  "invalid payload data",
	StatusPolicyViolation: "policy violation",
	StatusMessageTooBig:   "message too big",
	StatusMandatoryExt:    "mandatory extension",
	StatusInternalError:   "internal error",
	StatusServiceRestart:  "service restart",
	StatusTryAgainLater:   "try again later",
	StatusBadGateway:      "bad gateway",
	StatusTLSHandshake:    "TLS handshake",
}

// String returns the code and its name, as "1001 going away".
func (c StatusCode) String() string {
	if name, ok := statusNames[c]; ok {
		return strconv.Itoa(int(c)) + " " + name
	}
	return strconv.Itoa(int(c))
}

// CloseError is the error a read returns when the peer closed the
// connection with a close frame: its status code (StatusNoStatusRcvd when
// the frame had none) and reason. Match it with [errors.As].
type CloseError struct {
	Code   StatusCode
	Reason string
}

// Error says that the peer closed the connection, with its status code
// and reason.
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("wsconn: the peer closed the connection with status %v", e.Code)
	}
	return fmt.Sprintf("wsconn: the peer closed the connection with status %v: %q", e.Code, e.Reason)
}

// Errors of a [Conn]. Match them with [errors.Is]; the errors returned
// wrap them with details.
var (
	// ErrProtocol: the peer broke the WebSocket protocol (RFC 6455). The
	// connection was closed with status 1002.
	ErrProtocol = errors.New("wsconn: protocol error")

	// ErrInvalidUTF8: a text message or a close reason from the peer is
	// not valid UTF-8. The connection was closed with status 1007.
	ErrInvalidUTF8 = errors.New("wsconn: invalid UTF-8")

	// ErrMessageTooBig: a message from the peer is larger than
	// [Options].MaxMessageSize. The connection was closed with status 1009.
	ErrMessageTooBig = errors.New("wsconn: message too big")

	// ErrIdle: nothing came from the peer, not even a pong, for
	// [Options].IdleTimeout. The connection was closed with status 1008.
	ErrIdle = errors.New("wsconn: the peer was silent for too long")

	// ErrMessageInProgress: a message cannot be written while a
	// [MessageWriter] of the same connection is open.
	ErrMessageInProgress = errors.New("wsconn: a fragmented message is being written")
)
