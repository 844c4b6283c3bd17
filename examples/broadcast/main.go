// Command broadcast serves live streams of messages, one per topic, to
// many WebSocket subscribers through package fanout: each topic's messages
// sit once in a bounded ring, a slow subscriber is overtaken instead of
// slowing the others, told what it missed, and closed with status 1008
// when it keeps falling behind.
//
//	go run ./examples/broadcast                      # http://127.0.0.1:8081/
//	go run ./examples/broadcast -rate 1000 -slow 3   # faster, with 3 simulated slow subscribers
//
// GET / serves a page that subscribes and shows the stream live. Clients
// subscribe at /sub?topic=NAME and every message sent to /pub?topic=NAME
// is published on that topic; without ?topic= both use the topic "live",
// on which the built-in generator publishes -rate messages a second of
// -size bytes (each starts with its number and the time it was sent). A
// subscriber that missed messages gets the text message
// {"type":"missed","frames":N,"bytes":B} before the next one; one
// overtaken more than -max-behind times within -behind-window is closed
// with 1008. Subscribers that offer permessage-deflate, as browsers do,
// get their messages compressed, each message compressed once per topic
// however many subscribers get it (-compress=false turns it off; /stats
// counts the compressions). Ctrl-C drains gracefully: every connection is closed with
// 1001 after what it was sent is flushed, and the drain report is
// printed.
//
// This instance serves its own process. To run several instances that
// share their topics through a NATS broker, a fanout.Bus, see the example
// in the module github.com/pollws/pollws/fanout/natsbus, which keeps NATS
// out of this module:
//
//	cd fanout/natsbus
//	go run ./example -addr 127.0.0.1:8081 -nats-embedded 127.0.0.1:4222
//	go run ./example -addr 127.0.0.1:8082 -nats nats://127.0.0.1:4222
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command: it parses args, serves until ctx ends, drains, and
// returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		fmt.Fprintln(stderr, "broadcast:", err)
		return 1
	}
	if err := newServer(cfg, log).serve(ctx, ln, stdout); err != nil {
		fmt.Fprintln(stderr, "broadcast:", err)
		return 1
	}
	return 0
}
