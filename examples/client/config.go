package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"
)

// config holds the client's settings, one field per flag.
type config struct {
	url      string
	insecure bool // skip TLS certificate verification
	text     bool // send text messages
	binary   bool // send binary messages
	n        int  // messages to generate; 0: send stdin's lines
	stream   bool // pull stdin's lines through a buf.Stream with a wsconn.Pump
	size     int  // bytes per generated message
	conns    int  // connections the generated messages are spread over
	window   int  // messages in flight per connection
	check    bool // verify echoes and print a summary
	timeout  time.Duration
}

// parseFlags parses the command line into a config. Usage and errors go
// to stderr; -h gives flag.ErrHelp.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: client [flags]\n\nSends stdin's lines (or -n generated messages) to a WebSocket echo server and prints the echoes.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.url, "url", "ws://127.0.0.1:8080/ws", "WebSocket URL of the echo server (ws:// or wss://)")
	fs.BoolVar(&c.insecure, "insecure", false, "skip TLS certificate verification (wss:// with a self-signed certificate)")
	fs.BoolVar(&c.text, "text", false, "send text messages (the default for stdin's lines)")
	fs.BoolVar(&c.binary, "binary", false, "send binary messages (the default for generated messages)")
	fs.IntVar(&c.n, "n", 0, "generate this many messages instead of reading stdin")
	fs.BoolVar(&c.stream, "stream", false, "stream stdin's lines: a goroutine queues them in a buf.Stream, a wsconn.Pump pulls them when the connection can take more")
	fs.IntVar(&c.size, "size", 128, "bytes per generated message")
	fs.IntVar(&c.conns, "conns", 1, "connections to spread the generated messages over")
	fs.IntVar(&c.window, "window", 16, "messages in flight per connection before waiting for echoes")
	fs.BoolVar(&c.check, "check", false, "verify every echo byte for byte, print a summary, exit 1 on any mismatch")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for the connection, and for each echo")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	if u, err := url.Parse(c.url); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
		errs = append(errs, fmt.Errorf("-url %q is not a ws:// or wss:// URL", c.url))
	}
	if c.text && c.binary {
		errs = append(errs, errors.New("-text and -binary exclude each other"))
	}
	if c.stream && c.n > 0 {
		errs = append(errs, errors.New("-stream and -n exclude each other: -stream sends stdin's lines"))
	}
	if c.n < 0 || c.size < 0 || c.conns < 1 || c.window < 1 || c.timeout <= 0 {
		errs = append(errs, errors.New("-n and -size must not be negative; -conns, -window and -timeout must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, err)
		return c, err
	}
	return c, nil
}

// textMessages reports whether messages are sent as text.
func (c config) textMessages() bool {
	if c.text || c.binary {
		return c.text
	}
	return c.n == 0
}
