package wsconn

import (
	"fmt"
	"net"

	"github.com/pollws/pollws/internal/socket"
)

// ListenerOptions configures [NewListener]. A nil *ListenerOptions means
// the defaults.
type ListenerOptions struct {
	// MaxConns bounds the connections accepted and not yet closed,
	// whatever they carry (page requests too): when they are this many,
	// Accept waits for one to close, and new clients wait in the kernel's
	// backlog. Zero means no limit.
	MaxConns int
}

// NewListener returns a listener of TCP connections that a [Reactor]
// serves without a goroutine also under TLS: give it to an http.Server,
// directly or through tls.NewListener or ServeTLS. Its connections are
// ordinary TCP connections for the HTTP server and its TLS handshakes;
// once a WebSocket is upgraded on one over TLS, crypto/tls reads it
// without parking and writes into the connection's bounded buffer, so
// that the reactor drives it as it drives plain TCP. Without it, a
// WebSocket over TLS waits on a goroutine while it waits for bytes.
//
// ln must be a TCP listener, as net.Listen("tcp", …) returns.
func NewListener(ln net.Listener, o *ListenerOptions) (net.Listener, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("wsconn: NewListener of a %T, not a TCP listener", ln)
	}
	max := 0
	if o != nil {
		max = o.MaxConns
	}
	return socket.NewListener(tl, max), nil
}
