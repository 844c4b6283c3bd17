package wsconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/pollws/pollws/internal/socket"
	"github.com/pollws/pollws/wsconn/internal/deflate"
	"github.com/pollws/pollws/wsconn/internal/handshake"
)

// DialOptions configures [Dial]. A nil *DialOptions means the defaults.
type DialOptions struct {
	// Options configures the Conn.
	Options

	// TLSConfig configures TLS for wss:// URLs; nil means the defaults of
	// crypto/tls. Dial uses a copy whose ServerName, if empty, is the
	// URL's host and whose NextProtos is http/1.1.
	TLSConfig *tls.Config

	// Header holds extra headers for the handshake request, such as
	// Origin; a Host in it replaces the URL's. It may not set Upgrade,
	// Connection or the Sec-WebSocket-* fields, which the handshake
	// writes.
	Header http.Header

	// Protocols are the subprotocols offered to the server, in order of
	// preference.
	Protocols []string

	// NetDial, if set, makes the TCP connection (for wss:// too: TLS runs
	// over what it returns), for a proxy, a local address or socket
	// options. Nil means a net.Dialer's DialContext.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)

	// HTTP2, if set, opens the WebSocket as a stream of an HTTP/2
	// connection (RFC 8441), where the server offers that: an HTTP/2
	// client that sends a CONNECT request with a ":protocol" header field
	// as an extended CONNECT, such as golang.org/x/net/http2's Transport,
	// which also keeps one connection per server for all the WebSockets
	// and requests it carries. It dials its own connections: TLSConfig
	// and NetDial are not used for them. When its round trip fails without
	// an answer (the server speaks no HTTP/2 or offers no extended
	// CONNECT, or was not reached), Dial goes on over HTTP/1.1 on a
	// connection of its own, as without HTTP2: to a server known not to
	// offer it, that costs a connection attempt per Dial. An answer other
	// than 2xx fails Dial. Nil, the default, dials HTTP/1.1.
	HTTP2 http.RoundTripper
}

// dialMaxResponse bounds the bytes Dial reads for the server's answer to
// the handshake.
const dialMaxResponse = 1 << 20

// Dial connects to the WebSocket server at url (ws:// or wss://) and
// returns the client side of the connection. ctx bounds the connection
// and the opening handshake. The server's answer must switch protocols
// with the right Sec-WebSocket-Accept, and choose no subprotocol but one
// of [DialOptions.Protocols]; else Dial fails with an error that says what
// the server answered. With [DialOptions].HTTP2 set, Dial first asks for
// the WebSocket as an HTTP/2 stream, whose answer must be 2xx.
//
// With [Options].Compression set, Dial offers permessage-deflate. A server
// may decline it, and the connection goes uncompressed; an answer the
// offer does not allow (RFC 7692 section 7) fails Dial.
func Dial(ctx context.Context, url string, o *DialOptions) (*Conn, error) {
	if o == nil {
		o = new(DialOptions)
	}
	d, err := dial(ctx, url, o)
	if err != nil {
		return nil, fmt.Errorf("wsconn: dial %s: %w", url, err)
	}
	return d.newConn(&o.Options, true), nil
}

func dial(ctx context.Context, rawURL string, o *DialOptions) (d opened, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return d, err
	}
	if o.HTTP2 == nil {
		return dialHTTP1(ctx, u, o)
	}
	d, fallback, h2err := dialStream(ctx, u, o)
	if !fallback {
		return d, h2err
	}
	d, err = dialHTTP1(ctx, u, o)
	if err != nil {
		err = fmt.Errorf("%w (%v)", err, h2err)
	}
	return d, err
}

// dialHTTP1 opens a WebSocket to u with an HTTP/1.1 upgrade on a
// connection of its own.
func dialHTTP1(ctx context.Context, u *url.URL, o *DialOptions) (d opened, err error) {
	dopts := o.Compression.deflateOptions()
	exts := extensionsOf(deflate.Offer(dopts))
	req, key, err := handshake.NewRequest(u, o.Protocols, exts, o.Header)
	if err != nil {
		return d, err
	}
	port := u.Port()
	switch {
	case port != "":
	case u.Scheme == "wss":
		port = "443"
	default:
		port = "80"
	}
	netDial := o.NetDial
	if netDial == nil {
		netDial = new(net.Dialer).DialContext
	}
	conn, err := netDial(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return d, err
	}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()

	// When ctx ends, a deadline in the past ends the handshake's reads and
	// writes. That happens only after ctx is done, so an error it causes
	// is always reported as ctx's.
	raw := conn
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(connPast) })
	defer func() {
		switch {
		case stop():
		case err != nil:
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		default:
			err = context.Cause(ctx)
		}
	}()

	if u.Scheme == "wss" {
		tc, err := clientTLS(ctx, conn, u, o.TLSConfig)
		if err != nil {
			return d, err
		}
		conn = tc
	}
	if err := req.Write(conn); err != nil {
		return d, err
	}
	limit := &io.LimitedReader{R: conn, N: dialMaxResponse}
	br := bufio.NewReader(limit)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		if limit.N == 0 {
			err = fmt.Errorf("the server's answer is longer than %d bytes", dialMaxResponse)
		}
		return d, fmt.Errorf("reading the handshake's answer: %w", err)
	}
	resp.Body.Close()
	neg, err := handshake.CheckResponse(resp, key, o.Protocols, exts)
	if err != nil {
		return d, err
	}
	d.deflate, d.compress, err = deflate.CheckResponse(neg.Extensions, dopts)
	if err != nil {
		return d, err
	}
	d.conn, d.protocol, d.pre = conn, neg.Protocol, leftover(br)
	return d, nil
}

// clientTLS makes the TLS handshake over conn, for u, with a copy of cfg
// if not nil; over TCP, the socket under TLS is one a Reactor may serve
// without a goroutine.
func clientTLS(ctx context.Context, conn net.Conn, u *url.URL, cfg *tls.Config) (net.Conn, error) {
	if cfg == nil {
		cfg = new(tls.Config)
	} else {
		cfg = cfg.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	cfg.NextProtos = []string{"http/1.1"}
	if tcp, ok := conn.(*net.TCPConn); ok {
		if sc := socket.Wrap(tcp); sc != nil {
			conn = sc
		}
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}
