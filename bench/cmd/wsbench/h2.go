package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"golang.org/x/net/http2"

	"github.com/pollws/pollws/wsconn"
)

// h2Config is the h2-memory scenario: n WebSockets over TLS that each
// exchange one message of size bytes and then idle, all on one HTTP/2
// connection or each on an HTTP/1.1 connection of its own.
type h2Config struct {
	n, size int
	settle  time.Duration
}

// h2Result is the growth of a server's resident memory per WebSocket, as
// in idleResult, and how many TCP connections carried the WebSockets.
type h2Result struct {
	Settled, Freed float64
	Conns          int
}

// runH2Memory opens cfg.n WebSockets to s (started with -tls -h2 and
// GODEBUG=http2xconnect=1) with wsconn.Dial, over one HTTP/2 connection
// (golang.org/x/net/http2's Transport, extended CONNECT) when overH2, or
// over HTTP/1.1, and measures the server's memory per WebSocket.
func runH2Memory(ctx context.Context, s *server, cfg h2Config, overH2 bool) (h2Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	before, err := freeAll([]*server{s})
	if err != nil {
		return h2Result{}, err
	}
	o := &wsconn.DialOptions{TLSConfig: s.tls, Options: wsconn.Options{PingInterval: -1, IdleTimeout: -1}}
	if overH2 {
		cfg := s.tls.Clone()
		cfg.NextProtos = []string{"h2"}
		// x/net deprecates its Transport for net/http's, whose HTTP/2
		// client refuses a request with a :protocol field: extended
		// CONNECT needs this one.
		//lint:ignore SA1019 net/http's Transport sends no extended CONNECT
		tr := &http2.Transport{TLSClientConfig: cfg, StrictMaxConcurrentStreams: true}
		//lint:ignore SA1019 as above
		defer tr.CloseIdleConnections()
		o.HTTP2 = tr
	}
	msg := bytes.Repeat([]byte{'w'}, cfg.size)
	conns, err := dialN(ctx, cfg.n, func(ctx context.Context, _ int) (*wsconn.Conn, error) {
		c, err := wsconn.Dial(ctx, "wss://"+s.addr+"/ws", o)
		if err != nil {
			return nil, err
		}
		if err := exchange(ctx, c, msg); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return h2Result{}, fmt.Errorf("%s: %w", s.impl, err)
	}
	// A WebSocket over an HTTP/2 stream has its TCP connection's address;
	// one over HTTP/1.1 a connection, and an address, of its own.
	tcp := map[string]bool{}
	for _, c := range conns {
		tcp[c.LocalAddr().String()] = true
	}
	if overH2 && len(tcp) != 1 {
		return h2Result{}, fmt.Errorf("%s: %d WebSockets over HTTP/2 went over %d TCP connections, want 1 (does the server offer extended CONNECT?)", s.impl, len(conns), len(tcp))
	}
	time.Sleep(cfg.settle) // the server's handshakes finish and its garbage is collected; nothing to wait on across processes
	settled, err := s.rss()
	if err != nil {
		return h2Result{}, err
	}
	freed, err := freeAll([]*server{s})
	if err != nil {
		return h2Result{}, err
	}
	n := float64(len(conns))
	return h2Result{Settled: float64(settled-before) / n, Freed: float64(freed-before) / n, Conns: len(tcp)}, nil
}

// exchange sends msg on c and reads its echo, checked.
func exchange(ctx context.Context, c *wsconn.Conn, msg []byte) error {
	if _, err := c.Write(msg); err != nil {
		return err
	}
	m, err := c.ReadMessage(ctx)
	if err != nil {
		return err
	}
	if m.Type != wsconn.Binary || !bytes.Equal(m.Data, msg) {
		return fmt.Errorf("an echo of %d bytes that differs from the %d sent", len(m.Data), len(msg))
	}
	return nil
}

// h2Note is the report's note on the servers that took no part.
const h2Note = "pollws only: gorilla, gobwas, coder and nbio accept no WebSocket over HTTP/2 (RFC 8441); their upgrades want an HTTP/1.1 GET with a Sec-WebSocket-Key, which an extended CONNECT has not."
