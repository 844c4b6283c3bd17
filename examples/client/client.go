package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
	"github.com/pollws/pollws/wsconn"
)

// maxLine is the longest line read from stdin.
const maxLine = 1 << 20

// closeTimeout bounds the closing handshake of each connection.
const closeTimeout = 5 * time.Second

// summary is what a run did.
type summary struct {
	conns      int
	sent       int
	received   int
	mismatches int
	elapsed    time.Duration
	latencies  []time.Duration
}

func (s *summary) add(x *exchange) {
	s.sent += x.sent
	s.received += x.received
	s.mismatches += x.mismatches
	s.latencies = append(s.latencies, x.latencies...)
}

// ok reports whether every message came back, unchanged when checked.
func (s *summary) ok() bool { return s.mismatches == 0 && s.received == s.sent }

// print writes the summary to w.
func (s *summary) print(w io.Writer) {
	fmt.Fprintf(w, "sent %d, received %d, mismatches %d\n", s.sent, s.received, s.mismatches)
	rate := 0.0
	if s.elapsed > 0 {
		rate = float64(s.received) / s.elapsed.Seconds()
	}
	elapsed := s.elapsed.Round(time.Millisecond)
	if s.elapsed < time.Second {
		elapsed = s.elapsed.Round(time.Microsecond)
	}
	fmt.Fprintf(w, "%d messages over %d connection(s) in %v: %.0f msgs/s\n", s.received, s.conns, elapsed, rate)
	if len(s.latencies) > 0 {
		slices.Sort(s.latencies)
		fmt.Fprintf(w, "latency p50 %v, p99 %v\n", percentile(s.latencies, 50), percentile(s.latencies, 99))
	}
}

// percentile returns the p-th percentile of sorted, by nearest rank.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i, 1)-1].Round(time.Microsecond)
}

// run is the command: it sends stdin's lines (see runLines and
// runStream), or cfg.n generated
// messages, to the echo server, and returns the exit code: 0 when every
// echo came back (and, with -check, matched), 1 otherwise.
func run(ctx context.Context, cfg config, stdin io.Reader, stdout, stderr io.Writer) int {
	var s summary
	var err error
	switch {
	case cfg.n > 0:
		s, err = runLoad(ctx, cfg)
	case cfg.stream:
		s, err = runStream(ctx, cfg, stdin, stdout)
	default:
		s, err = runLines(ctx, cfg, stdin, stdout)
	}
	if cfg.check || cfg.n > 0 {
		s.print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "client:", err)
		return 1
	}
	if !s.ok() {
		fmt.Fprintf(stderr, "client: %d of %d echoes missing, %d mismatched\n", s.sent-s.received, s.sent, s.mismatches)
		return 1
	}
	return 0
}

// dial connects to cfg.url within cfg.timeout.
func dial(ctx context.Context, cfg config) (*wsconn.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	o := &wsconn.DialOptions{}
	if cfg.insecure {
		o.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return wsconn.Dial(ctx, cfg.url, o)
}

// hangUp closes c: gracefully (close 1000, after every message went out)
// when the exchange went well, at once otherwise.
func hangUp(c *wsconn.Conn, graceful bool) error {
	if !graceful {
		c.Close()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return shutdown.Close(ctx, c)
}

// runLines sends each line of stdin as a message and writes each echo to
// stdout as a line.
func runLines(ctx context.Context, cfg config, stdin io.Reader, stdout io.Writer) (summary, error) {
	s := summary{conns: 1}
	c, err := dial(ctx, cfg)
	if err != nil {
		return s, err
	}
	x := newLineExchange(ctx, c, cfg, stdout)
	start := time.Now()
	sc := newLineScanner(stdin)
	var serr error
	for seq := 0; serr == nil && ctx.Err() == nil && sc.Scan(); seq++ {
		line := bytes.Clone(sc.Bytes())
		if serr = x.send(ctx, seq, line, true); serr == nil {
			serr = asyncio.Flush(ctx, c) // a line at a time: do not wait for more
		}
	}
	if serr == nil {
		serr = sc.Err()
	}
	if serr == nil {
		serr = context.Cause(ctx)
	}
	return s, x.finish(ctx, &s, start, serr)
}

// newLineExchange starts an exchange over c whose messages are lines:
// each echo must be the line sent, and is written to stdout as a line.
func newLineExchange(ctx context.Context, c *wsconn.Conn, cfg config, stdout io.Writer) *exchange {
	x := newExchange(ctx, c, cfg)
	x.expect = func(m inFlight, _ []byte) []byte { return m.p }
	out := bufio.NewWriter(stdout)
	x.echo = func(p []byte) error {
		out.Write(p)
		out.WriteByte('\n')
		return out.Flush()
	}
	return x
}

// newLineScanner returns a scanner of stdin's lines, up to maxLine bytes
// each.
func newLineScanner(stdin io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	return sc
}

// runLoad sends cfg.n generated messages of cfg.size bytes over cfg.conns
// connections, cfg.window in flight on each.
func runLoad(ctx context.Context, cfg config) (summary, error) {
	s := summary{conns: cfg.conns}
	conns := make([]*wsconn.Conn, 0, cfg.conns)
	for range cfg.conns {
		c, err := dial(ctx, cfg)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return s, err
		}
		conns = append(conns, c)
	}
	xs := make([]*exchange, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		count := cfg.n / cfg.conns
		if i < cfg.n%cfg.conns {
			count++
		}
		x := newExchange(ctx, c, cfg)
		x.expect = func(m inFlight, buf []byte) []byte { return generate(buf, i, m.seq, cfg.size) }
		xs[i] = x
		wg.Go(func() {
			buf := make([]byte, 0, cfg.size)
			var err error
			for seq := 0; seq < count && err == nil; seq++ {
				buf = generate(buf[:0], i, seq, cfg.size)
				err = x.send(ctx, seq, buf, false)
			}
			errs[i] = x.finish(ctx, nil, start, err)
		})
	}
	wg.Wait()
	s.elapsed = time.Since(start)
	for _, x := range xs {
		s.add(x)
	}
	return s, errors.Join(errs...)
}

// finish ends the exchange x, whose sender ended with sendErr, and its
// connection: gracefully when every echo came, even after an interrupt.
// It adds x's counts to s, if not nil, and returns the errors.
func (x *exchange) finish(ctx context.Context, s *summary, start time.Time, sendErr error) error {
	recvErr := x.wait(ctx)
	if s != nil {
		s.elapsed = time.Since(start)
		s.add(x)
	}
	return errors.Join(sendErr, recvErr, hangUp(x.c, recvErr == nil))
}

// generate appends message seq of connection conn, size bytes of
// printable ASCII (valid text) that depend on both, to buf.
func generate(buf []byte, conn, seq, size int) []byte {
	x := uint32(conn)*2654435761 + uint32(seq)*40503 + 1
	for range size {
		x = x*1664525 + 1013904223
		buf = append(buf, ' '+byte(x>>24)%95)
	}
	return buf
}
