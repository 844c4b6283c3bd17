package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/internal/broadcast"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn"
)

// slowReadBuffer is the socket receive buffer of a simulated slow
// subscriber: small, so that it falls behind in seconds rather than after
// the kernel buffered megabytes for it, but twice the loopback's MSS, so
// that TCP's silly-window avoidance does not stall it for seconds at a
// time when it reads.
const slowReadBuffer = 128 << 10

// slowSubscriber is simulated slow subscriber i: it reads cfg.slowRate
// messages per second from url until ctx ends. When the hub disconnects
// it for falling behind, it says so and subscribes again a second later.
func (s *server) slowSubscriber(ctx context.Context, i int, url string) {
	log := s.log.With("slow subscriber", i)
	pause := time.Duration(float64(time.Second) / s.cfg.slowRate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ctx.Err() == nil {
		c, err := dialSmall(ctx, url, slowReadBuffer)
		if err != nil {
			log.Warn("dial", "err", err)
		} else {
			got, missed, err := readSlowly(ctx, c, pause)
			var ce *wsconn.CloseError
			switch {
			case ctx.Err() != nil:
				cctx, cancel := context.WithTimeout(context.Background(), time.Second)
				shutdown.Close(cctx, c)
				cancel()
				return
			case errors.As(err, &ce):
				log.Info("disconnected by the server", "code", int(ce.Code), "reason", ce.Reason, "received", got, "missed", missed)
			default:
				log.Warn("read", "err", err, "received", got, "missed", missed)
			}
			c.Close()
		}
		timer.Reset(time.Second)
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
	}
}

// readSlowly reads messages from c, pausing after each, until ctx ends or
// the connection does. It returns how many messages it received and how
// many the hub said it missed.
func readSlowly(ctx context.Context, c *wsconn.Conn, pause time.Duration) (got, missed uint64, err error) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		op, p, err := c.ReadMessage(ctx)
		if err != nil {
			return got, missed, err
		}
		var n broadcast.Notice
		if op == ws.OpText && json.Unmarshal(p, &n) == nil && n.Type == "missed" {
			missed += n.Frames
		} else {
			got++
		}
		timer.Reset(pause)
		select {
		case <-ctx.Done():
			return got, missed, context.Cause(ctx)
		case <-timer.C:
		}
	}
}

// dialSmall connects to the WebSocket server at url with a socket
// receive buffer of rcvbuf bytes. wsconn.Dial has no hook for socket
// options, so it does the handshake with gobwas/ws and wraps the result.
func dialSmall(ctx context.Context, url string, rcvbuf int) (*wsconn.Conn, error) {
	d := ws.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(rcvbuf)
		}
		return c, err
	}}
	conn, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	if br != nil {
		// The server's first frames came with the handshake's response:
		// read them first.
		conn = &bufferedConn{Conn: conn, r: br}
	}
	return wsconn.Client(conn, nil), nil
}

// bufferedConn is a connection whose reads go through a buffered reader
// that holds bytes already read from it.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
