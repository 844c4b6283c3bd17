package wsconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"github.com/gobwas/ws"
)

// DialOptions configures [Dial]. A nil *DialOptions means the defaults.
type DialOptions struct {
	// Options configures the Conn.
	Options

	// TLSConfig configures TLS for wss:// URLs; nil means the defaults of
	// crypto/tls.
	TLSConfig *tls.Config

	// Header holds extra headers for the handshake request, such as
	// Origin.
	Header http.Header

	// Protocols are the subprotocols offered to the server, in order of
	// preference.
	Protocols []string

	// NetDial, if set, makes the TCP connection (for wss:// too: TLS runs
	// over what it returns), for a proxy, a local address or socket
	// options. Nil means a net.Dialer's DialContext.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Dial connects to the WebSocket server at url (ws:// or wss://) and
// returns the client side of the connection. ctx bounds the connection
// and the opening handshake.
func Dial(ctx context.Context, url string, o *DialOptions) (*Conn, error) {
	if o == nil {
		o = new(DialOptions)
	}
	d := ws.Dialer{TLSConfig: o.TLSConfig, Protocols: o.Protocols, NetDial: o.NetDial}
	if o.Header != nil {
		d.Header = ws.HandshakeHeaderHTTP(o.Header)
	}
	conn, br, hs, err := d.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("wsconn: dial %s: %w", url, err)
	}
	var pre []byte
	if br != nil {
		if n := br.Buffered(); n > 0 {
			b, _ := br.Peek(n)
			pre = bytes.Clone(b)
		}
		ws.PutReader(br)
	}
	c := newConn(conn, pre, &o.Options, true)
	c.subprotocol = hs.Protocol
	return c, nil
}
