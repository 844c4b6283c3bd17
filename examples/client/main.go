// Command client sends messages to a WebSocket echo server and checks
// what comes back. It is a client on pollws: wsconn.Dial, messages
// written without blocking, echoes read with a context.
//
//	go run ./examples/client                       # each line of stdin as a text message; echoes to stdout
//	go run ./examples/client -check < lines.txt    # and verify each echo, with a summary
//	go run ./examples/client -stream < big.txt     # the lines pulled through a buf.Stream by a wsconn.Pump
//	go run ./examples/client -n 100000 -size 512 -conns 8 -window 32 -check
//	go run ./examples/client -url wss://127.0.0.1:8080/ws -insecure
//
// With -n it generates the messages, spread over -conns connections with
// at most -window in flight on each, and prints a summary: messages sent
// and received, mismatches, messages per second, p50 and p99 latency.
// -check verifies every echo byte for byte; the exit code is 1 when an
// echo is missing or, with -check, differs.
//
// With -stream the lines take the pull path (stream.go): a goroutine
// queues stdin's lines in a bounded buf.Stream, and a wsconn.Pump pulls
// them from it, through an asyncio.StreamProducer, only when the
// connection can take more. A server that reads slowly then holds back
// the reading of stdin, and nothing grows without bound.
//
// Reading stdin ends at end of input (Ctrl-D), then the connection closes
// gracefully; Ctrl-C ends the process. With -n, Ctrl-C stops sending,
// closes the connections and prints the summary so far.
package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2)
	}
	ctx := context.Background()
	stop := func() {}
	if cfg.n > 0 {
		// A read of stdin cannot be interrupted: only generated load
		// stops on a signal; otherwise the signal ends the process.
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	}
	code := run(ctx, cfg, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
