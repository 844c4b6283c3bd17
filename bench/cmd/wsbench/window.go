package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pollws/pollws/bench/internal/load"
	"github.com/pollws/pollws/bench/internal/proc"
)

// rate is what a measured window of a message load gives: messages a
// second, and the CPU the server and the load client each used per
// message meanwhile.
type rate struct {
	MsgsPerSec float64
	ServerUs   float64 // µs of server CPU per message
	ClientUs   float64 // µs of load-client CPU per message
	// WireSent and WireReceived are the bytes per message that the load
	// client's sockets sent and received (TCP payload), when measured.
	WireSent, WireReceived float64
}

// mark is the state of a run at one instant.
type mark struct {
	at         time.Time
	msgs       int64
	srv, cli   time.Duration
	sent, recv int64
}

// markNow marks the run now; with wire, it adds up what the connections'
// sockets sent and received.
func markNow(s *server, conns []*load.Conn, wire bool) (mark, error) {
	srv, err := s.cpu()
	if err != nil {
		return mark{}, err
	}
	cli, err := proc.SelfCPU()
	if err != nil {
		return mark{}, err
	}
	m := mark{at: time.Now(), msgs: received(conns), srv: srv, cli: cli}
	for _, c := range conns {
		if !wire {
			break
		}
		sent, recv, err := c.WireBytes()
		if err != nil {
			return mark{}, err
		}
		m.sent, m.recv = m.sent+sent, m.recv+recv
	}
	return m, nil
}

// measure lets the connections' loops run for warmup, then measures them
// for d, with recording (when not nil) true meanwhile, and with wire the
// bytes their sockets moved. An error from errc ends it early.
func measure(ctx context.Context, s *server, conns []*load.Conn, warmup, d time.Duration, errc <-chan error, recording *atomic.Bool, wire bool) (rate, error) {
	wait := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case err := <-errc:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := wait(warmup); err != nil {
		return rate{}, err
	}
	a, err := markNow(s, conns, wire)
	if err != nil {
		return rate{}, err
	}
	if recording != nil {
		recording.Store(true)
	}
	err = wait(d)
	if recording != nil {
		recording.Store(false)
	}
	if err != nil {
		return rate{}, err
	}
	b, err := markNow(s, conns, wire)
	if err != nil {
		return rate{}, err
	}
	n := float64(b.msgs - a.msgs)
	if n == 0 {
		return rate{}, fmt.Errorf("%s: no message came back in %v", s.impl, d)
	}
	return rate{
		MsgsPerSec:   n / b.at.Sub(a.at).Seconds(),
		ServerUs:     float64(b.srv-a.srv) / 1e3 / n,
		ClientUs:     float64(b.cli-a.cli) / 1e3 / n,
		WireSent:     float64(b.sent-a.sent) / n,
		WireReceived: float64(b.recv-a.recv) / n,
	}, nil
}
