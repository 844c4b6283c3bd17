package wsconn

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/pollws/pollws/internal/socket"
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
}

// dialMaxResponse bounds the bytes Dial reads for the server's answer to
// the handshake.
const dialMaxResponse = 1 << 20

// Dial connects to the WebSocket server at url (ws:// or wss://) and
// returns the client side of the connection. ctx bounds the connection
// and the opening handshake. The server's answer must switch protocols
// with the right Sec-WebSocket-Accept, and choose no subprotocol but one
// of [DialOptions.Protocols]; else Dial fails with an error that says what
// the server answered.
func Dial(ctx context.Context, url string, o *DialOptions) (*Conn, error) {
	if o == nil {
		o = new(DialOptions)
	}
	conn, pre, protocol, err := dial(ctx, url, o)
	if err != nil {
		return nil, fmt.Errorf("wsconn: dial %s: %w", url, err)
	}
	c := newConn(conn, pre, &o.Options, true)
	c.subprotocol = protocol
	return c, nil
}

func dial(ctx context.Context, rawURL string, o *DialOptions) (conn net.Conn, pre []byte, protocol string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, "", err
	}
	req, key, err := handshake.NewRequest(u, o.Protocols, nil, o.Header)
	if err != nil {
		return nil, nil, "", err
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
	conn, err = netDial(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, nil, "", err
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
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
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
		cfg := new(tls.Config)
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		if tcp, ok := conn.(*net.TCPConn); ok {
			if sc := socket.Wrap(tcp); sc != nil {
				conn = sc // so that a Reactor may serve it without a goroutine
			}
		}
		tc := tls.Client(conn, cfg)
		conn = tc
		if err := tc.HandshakeContext(ctx); err != nil {
			return conn, nil, "", err
		}
	}
	if err := req.Write(conn); err != nil {
		return conn, nil, "", err
	}
	limit := &io.LimitedReader{R: conn, N: dialMaxResponse}
	br := bufio.NewReader(limit)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		if limit.N == 0 {
			err = fmt.Errorf("the server's answer is longer than %d bytes", dialMaxResponse)
		}
		return conn, nil, "", fmt.Errorf("reading the handshake's answer: %w", err)
	}
	resp.Body.Close()
	neg, err := handshake.CheckResponse(resp, key, o.Protocols, nil)
	if err != nil {
		return conn, nil, "", err
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		pre = bytes.Clone(b)
	}
	return conn, pre, neg.Protocol, nil
}
