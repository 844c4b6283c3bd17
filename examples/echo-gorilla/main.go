// Command echo-gorilla is the echo example for servers already on
// gorilla/websocket: the same server, flags and behaviour as examples/echo,
// with replies written through a gorillaws.Writer.
//
//	go run ./examples/echo-gorilla              # http://127.0.0.1:8080/ and ws://127.0.0.1:8080/ws
//	go run ./examples/echo-gorilla -tls         # https and wss with a self-signed certificate
//
// GET / serves a page that runs an echo in the browser. Ctrl-C drains
// gracefully: pending replies are flushed, every connection is closed with
// 1001, and the drain report is printed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/pollws/pollws/internal/echoserver"
)

func main() {
	var cfg echoserver.Config
	cfg.RegisterFlags(flag.CommandLine)
	flag.Parse()
	cfg.Backend = echoserver.Gorilla
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := echoserver.Run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "echo-gorilla:", err)
		os.Exit(1)
	}
}
