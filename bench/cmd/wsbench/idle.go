package main

import (
	"context"
	"time"

	"github.com/pollws/pollws/bench/internal/load"
)

// idleConfig is the idle scenario: n connections that each exchange one
// message of size bytes, then idle.
type idleConfig struct {
	n, size int
	// perIP is how many connections dial from each source address.
	perIP  int
	settle time.Duration
	// corpus, when not nil, has the connections dial /deflate with
	// permessage-deflate and exchange the corpus's first message,
	// compressed both ways, instead.
	corpus *load.Corpus
}

// idleResult is the growth of a server's resident memory per idle
// connection: settled is what the process holds after cfg.settle, freed
// what it holds once it has returned its free memory to the system.
type idleResult struct {
	Held           int
	Settled, Freed float64 // bytes per connection
	// Failed is what ended the dials before all were held; nil if none.
	Failed error
}

// runIdle opens cfg.n connections to s that each exchange one message and
// idle, and measures the server's memory. With tolerate it measures what
// the server held when a dial or exchange failed, rather than fail.
func runIdle(ctx context.Context, s *server, cfg idleConfig, tolerate bool) (idleResult, error) {
	if err := s.freeOSMemory(); err != nil {
		return idleResult{}, err
	}
	before, err := s.rss()
	if err != nil {
		return idleResult{}, err
	}
	sp := dialSpec{
		path:  "/ws",
		perIP: cfg.perIP,
		then:  func(c *load.Conn) error { return c.Exchange(cfg.size) },
	}
	if cfg.corpus != nil {
		sp.path, sp.deflate = "/deflate", true
		sp.then = func(c *load.Conn) error { return c.ExchangeCorpus(cfg.corpus) }
	}
	conns, err := dialMany(ctx, s, cfg.n, sp)
	defer closeAll(conns)
	res := idleResult{Held: len(conns), Failed: err}
	if err != nil && (!tolerate || len(conns) == 0) {
		return idleResult{}, err
	}
	time.Sleep(cfg.settle) // the server's handshakes finish and its garbage is collected; nothing to wait on across processes
	settled, err := s.rss()
	if err != nil {
		return idleResult{}, err
	}
	if err := s.freeOSMemory(); err != nil {
		return idleResult{}, err
	}
	freed, err := s.rss()
	if err != nil {
		return idleResult{}, err
	}
	res.Settled = float64(settled-before) / float64(len(conns))
	res.Freed = float64(freed-before) / float64(len(conns))
	return res, nil
}
