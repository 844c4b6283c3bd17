package wsconn

import (
	"context"
	"net"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/asyncio/asynciotest"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// zGorillaPair upgrades the server end of an established connection with
// Upgrade under o, for a gorilla client with EnableCompression on the
// other end, which reads it as a stream.
func zGorillaPair(server, client net.Conn, tcp *net.TCPConn, o *UpgradeOptions) (*Conn, *wstest.GorillaStream, error) {
	type result struct {
		c   *Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := zUpgrade(server, o)
		ch <- result{c, err}
	}()
	d := websocket.Dialer{
		EnableCompression: true,
		NetDialContext:    func(context.Context, string, string) (net.Conn, error) { return client, nil },
	}
	gc, resp, err := d.Dial("ws://127.0.0.1/", nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		client.Close()
	}
	r := <-ch
	if err == nil {
		err = r.err
	}
	if err != nil {
		if r.c != nil {
			r.c.Close()
		}
		server.Close()
		client.Close()
		return nil, nil, err
	}
	return r.c, &wstest.GorillaStream{WS: gc, TCP: tcp}, nil
}

// TestCompressConformance runs the writers' kit on compressing Conns:
// the server side, read by gorilla with compression (no context
// takeover), over TCP and TLS, and the client side with context
// takeover and without, read by a server of this package. The kit's
// messages do not compress: from 256 bytes they go out as stored blocks,
// each larger than the message, which tests the room a compressed write
// needs.
func TestCompressConformance(t *testing.T) {
	on := func(o CompressionOptions, size int) Options { x := zOn(o); x.BufferSize = size; return x }
	for _, tc := range []struct {
		name string
		mk   asynciotest.MakeWriter
	}{
		{"Server/TCP", func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
			s, cl, err := wstest.NewTCP(true)
			if err != nil {
				return nil, nil, nil, err
			}
			c, peer, err := zGorillaPair(s, cl, cl, &UpgradeOptions{Options: on(CompressionOptions{}, 0)})
			if err != nil {
				return nil, nil, nil, err
			}
			return c, peer, func() { c.Close(); peer.Close() }, nil
		}},
		{"Server/TLS", func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
			s, cl, _, tcp, err := wstest.NewTLS(true)
			if err != nil {
				return nil, nil, nil, err
			}
			c, peer, err := zGorillaPair(s, cl, tcp, &UpgradeOptions{Options: on(CompressionOptions{MinSize: -1}, 1<<20)})
			if err != nil {
				return nil, nil, nil, err
			}
			return c, peer, func() { c.Close(); peer.Close() }, nil
		}},
		{"Client/TCP", zClientKit(CompressionOptions{})},
		{"Client/TCP/takeover", zClientKit(CompressionOptions{ContextTakeover: true, MinSize: -1})},
	} {
		t.Run(tc.name, func(t *testing.T) { asynciotest.TestWriter(t, tc.mk) })
	}
}

// zClientKit makes compressing clients under o whose messages a server of
// this package reads, with small socket buffers.
func zClientKit(o CompressionOptions) asynciotest.MakeWriter {
	return func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
		s, cl, err := wstest.NewTCP(false)
		if err != nil {
			return nil, nil, nil, err
		}
		cl.SetWriteBuffer(wstest.SendBuffer)
		s.SetReadBuffer(wstest.RecvBuffer)
		srv, c, err := zPairOver(s, cl, &UpgradeOptions{Options: zOn(o)}, &DialOptions{Options: zOn(o)})
		if err != nil {
			return nil, nil, nil, err
		}
		peer := &zStream{c: srv, tcp: s}
		return c, peer, func() { c.Close(); peer.Close() }, nil
	}
}
