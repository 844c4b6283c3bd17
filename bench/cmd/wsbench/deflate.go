package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/pollws/pollws/bench/internal/load"
)

// deflaters are the servers with a permessage-deflate echo (/deflate),
// and why the others have none.
var (
	deflaters = []string{"coder", "gobwas", "gorilla", "nbio", "pollws", "pollws-listen"}
	noDeflate = map[string]string{"rawtcp": "not a WebSocket server", "pollws-gorilla": "gorillaws.Writer writes no compressed message (gorilla inflates what it reads)"}
)

// deflateConfig is the echo-deflate scenario: a closed-loop echo of the
// corpus's messages with permessage-deflate, then idle connections that
// each exchanged one.
type deflateConfig struct {
	echo echoConfig // size is the corpus's message size
	idle idleConfig
	// corpus is the messages, msgs of them.
	corpus *load.Corpus
	msgs   int
}

// newDeflateConfig makes the corpus of msgs JSON messages of size bytes.
func newDeflateConfig(echo echoConfig, idle idleConfig, msgs int) (deflateConfig, error) {
	ms, err := load.JSONMessages(msgs, echo.size, 1)
	if err != nil {
		return deflateConfig{}, err
	}
	cp, err := load.NewCorpus(ms)
	if err != nil {
		return deflateConfig{}, err
	}
	idle.corpus = cp
	return deflateConfig{echo: echo, idle: idle, corpus: cp, msgs: msgs}, nil
}

// runEchoDeflate drives the compressed echo on s: rate, CPU and the bytes
// on the wire per message.
func runEchoDeflate(ctx context.Context, s *server, cfg deflateConfig) (rate, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ec := cfg.echo
	conns, err := dialMany(ctx, s, ec.conns, dialSpec{path: "/deflate", deflate: true, readBuffer: echoReadBuffer(ec.size, ec.window)})
	defer closeAll(conns)
	if err != nil {
		return rate{}, err
	}
	errc := make(chan error, 1)
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() {
		defer close(done)
		if err := load.EchoAll(ctx, conns, &load.EchoOptions{Window: ec.window, Corpus: cfg.corpus}); err != nil {
			errc <- fmt.Errorf("%s: %w", s.impl, err)
		}
	}()
	return measure(ctx, s, conns, ec.warmup, ec.duration, errc, nil, true)
}

// deflateNotes are the report's notes on the servers that took no part
// and on the modes measured.
func deflateNotes(servers []string) []string {
	var notes []string
	for _, s := range servers {
		if why, ok := noDeflate[s]; ok && !slices.Contains(deflaters, s) {
			notes = append(notes, fmt.Sprintf("%s: not run: %s.", s, why))
		}
	}
	return append(notes,
		"Every server negotiated permessage-deflate with no context takeover either way, the only mode gorilla and nbio have (pollws, gobwas and coder can also keep the compression context; not measured here). pollws compresses with its own level-1 encoder (a message of up to 64 KiB without context takeover, as here; github.com/klauspost/compress/flate for any other) and inflates with its own decoder. gobwas's wsflate leaves the DEFLATE implementation to the application: here klauspost's compressor (level 1) and reader, from pools, the fastest choice. gorilla and coder use compress/flate at level 1, their only choice; nbio too, its default (it has hooks for another implementation, not used here).",
		"The load client compressed each message of the corpus once, with compress/flate at its default level, and sends those bytes; it inflates every echo (klauspost's flate reader) and compares it byte for byte with the message sent.")
}
