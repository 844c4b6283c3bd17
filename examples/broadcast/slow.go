package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"time"

	"github.com/pollws/pollws/fanout"
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
		m, err := c.ReadMessage(ctx)
		if err != nil {
			return got, missed, err
		}
		var n fanout.Notice
		if m.Type == wsconn.Text && json.Unmarshal(m.Data, &n) == nil && n.Type == "missed" {
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
// receive buffer of rcvbuf bytes.
func dialSmall(ctx context.Context, url string, rcvbuf int) (*wsconn.Conn, error) {
	return wsconn.Dial(ctx, url, &wsconn.DialOptions{
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetReadBuffer(rcvbuf)
			}
			return c, err
		},
	})
}
