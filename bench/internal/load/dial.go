package load

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

const (
	defaultPath       = "/"
	defaultTimeout    = 10 * time.Second
	defaultReadBuffer = 16 << 10
	defaultLimit      = 16 << 20
)

// DialOptions configures [Dial]; nil means the defaults.
type DialOptions struct {
	// Path is the WebSocket request's path; default "/".
	Path string
	// TLS, when not nil, runs TLS with this configuration over the
	// connection (wss:// for WebSocket); default nil, plain TCP.
	TLS *tls.Config
	// LocalIP is the connection's source address; default nil, the
	// kernel's choice. Over loopback, connections spread over 127.0.0.1,
	// 127.0.0.2, … have an ephemeral port range each.
	LocalIP net.IP
	// Timeout bounds the dial and the handshakes; default 10 s.
	Timeout time.Duration
	// ReadBuffer is the size of the read buffer in bytes; default 16 KiB.
	// It grows for a message that needs more.
	ReadBuffer int
	// Limit is the longest message accepted, in bytes, inflated; default
	// 16 MiB.
	Limit int
	// Deflate offers permessage-deflate (RFC 7692) with no context
	// takeover either way; default false, no extension. Dial fails with
	// [ErrDeflate] unless the server agrees to it, and to keep no context
	// itself. The connection's reads then inflate compressed messages,
	// and a [Corpus] goes out compressed.
	Deflate bool
}

// Conn is one load-client connection, dialled and, for WebSocket,
// upgraded. Its loops ([Conn.Echo], [Conn.Pace], [Conn.Exchange],
// [Conn.ReadMessage]) run one at a time; [Conn.Received] and Close may be
// called from any goroutine.
type Conn struct {
	net.Conn
	proto    Proto
	rd       *Reader
	received atomic.Int64
	// deflate is true when permessage-deflate was agreed.
	deflate bool
	// fd is the socket once [EchoAll]'s reactor took it from the Go
	// runtime's poller (the net.Conn is closed then); -1 before.
	fd        int
	closeOnce sync.Once
	closeErr  error
}

// Dial connects to addr and, for [WebSocket], upgrades the connection.
func Dial(ctx context.Context, p Proto, addr string, o *DialOptions) (*Conn, error) {
	var opt DialOptions
	if o != nil {
		opt = *o
	}
	if opt.Path == "" {
		opt.Path = defaultPath
	}
	if opt.Timeout <= 0 {
		opt.Timeout = defaultTimeout
	}
	if opt.ReadBuffer <= 0 {
		opt.ReadBuffer = defaultReadBuffer
	}
	if opt.Limit <= 0 {
		opt.Limit = defaultLimit
	}
	d := &net.Dialer{Timeout: opt.Timeout}
	if opt.LocalIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: opt.LocalIP}
		d.Control = bindAddressNoPort
	}
	var conn net.Conn
	var br *bufio.Reader
	switch p {
	case WebSocket:
		scheme := "ws://"
		if opt.TLS != nil {
			scheme = "wss://"
		}
		wd := ws.Dialer{Timeout: opt.Timeout, NetDial: d.DialContext, TLSConfig: opt.TLS}
		if opt.Deflate {
			wd.Extensions = []httphead.Option{deflateOffer.Option()}
		}
		c, r, hs, err := wd.Dial(ctx, scheme+addr+opt.Path)
		if err != nil {
			return nil, err
		}
		if opt.Deflate {
			if err := checkDeflate(hs.Extensions); err != nil {
				c.Close()
				if r != nil {
					ws.PutReader(r)
				}
				return nil, err
			}
		}
		conn, br = c, r
	case Raw:
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if opt.TLS != nil {
			if c, err = clientTLS(ctx, c, addr, opt); err != nil {
				return nil, err
			}
		}
		conn = c
	default:
		return nil, fmt.Errorf("load: unknown %v", p)
	}
	c := &Conn{Conn: conn, proto: p, rd: NewReader(conn, p, opt.ReadBuffer, opt.Limit), fd: -1, deflate: opt.Deflate && p == WebSocket}
	c.rd.SetDeflate(c.deflate)
	if br != nil { // it read past the handshake's response
		b, _ := br.Peek(br.Buffered())
		c.rd.prime(b)
		ws.PutReader(br)
	}
	return c, nil
}

// deflateOffer is the permessage-deflate offer of [DialOptions].Deflate.
var deflateOffer = wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}

// checkDeflate checks the extensions a server agreed to: permessage-deflate
// with no context takeover on its side (as offered: RFC 7692 section
// 7.1.1.1 has a server that accepts the offer say so), and no window
// bound on the client's side, which was not offered.
func checkDeflate(exts []httphead.Option) error {
	for _, e := range exts {
		if string(e.Name) != wsflate.ExtensionName {
			continue
		}
		var p wsflate.Parameters
		if err := p.Parse(e); err != nil {
			return fmt.Errorf("%w: %v", ErrDeflate, err)
		}
		if !p.ServerNoContextTakeover {
			return fmt.Errorf("%w: the server keeps its compression context (%s)", ErrDeflate, e)
		}
		if p.ClientMaxWindowBits.Defined() && p.ClientMaxWindowBits < 15 {
			return fmt.Errorf("%w: the server bounds the client's window, which was not offered (%s)", ErrDeflate, e)
		}
		return nil
	}
	return fmt.Errorf("%w: the server declined it", ErrDeflate)
}

func clientTLS(ctx context.Context, c net.Conn, addr string, opt DialOptions) (net.Conn, error) {
	cfg := opt.TLS
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			c.Close()
			return nil, err
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		if c.fd >= 0 {
			c.closeErr = c.closeFD()
		} else {
			c.closeErr = c.Conn.Close()
		}
	})
	return c.closeErr
}

// Proto is how the connection frames messages.
func (c *Conn) Proto() Proto { return c.proto }

// Received is how many echoes the connection's loops have received and
// checked.
func (c *Conn) Received() int64 { return c.received.Load() }

// ReadMessage returns the next message from the server, valid until the
// next read.
func (c *Conn) ReadMessage() ([]byte, error) { return c.rd.ReadMessage() }
