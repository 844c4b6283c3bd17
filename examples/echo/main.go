// Command echo is the pollws echo server: every WebSocket message comes
// back with its type, text that is not UTF-8 is closed with 1007, and the
// peer's close code is echoed.
//
//	go run ./examples/echo              # http://127.0.0.1:8080/ and ws://127.0.0.1:8080/ws
//	go run ./examples/echo -tls         # https and wss with a self-signed certificate
//	go run ./examples/echo -compress=false  # no permessage-deflate, even with clients that offer it
//
// With -tls the server speaks HTTP/2 too, and a browser opens its
// WebSocket as a stream of the page's own connection (RFC 8441) when the
// process was started with GODEBUG=http2xconnect=1, which Go's net/http
// needs to offer it; without it every WebSocket goes over HTTP/1.1.
//
// GET / serves a page that runs an echo in the browser. Connections are
// served by a wsconn.Reactor: once upgraded, a connection is handed over
// and the HTTP handler returns, so a connection waiting for its client
// holds no goroutine and no buffer (-goroutines serves each on a
// goroutine of its own instead). Ctrl-C drains gracefully: the replies
// already queued go out, every connection is closed with 1001, and the
// drain report is printed.
//
// The code reads top to bottom: main.go (flags, serving, draining),
// listen.go (TCP or TLS, and a bound on connections), server.go (the
// WebSocket endpoint and its echo).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	addr       string
	tls        bool
	certFile   string
	keyFile    string
	maxMessage int64
	maxConns   int
	drain      time.Duration
	ping       time.Duration
	idle       time.Duration
	goroutines bool
	compress   bool
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.BoolVar(&c.tls, "tls", false, "serve HTTPS/WSS with a self-signed certificate made in memory")
	fs.StringVar(&c.certFile, "cert", "", "serve HTTPS/WSS with this certificate file (PEM; with -key)")
	fs.StringVar(&c.keyFile, "key", "", "the private key file (PEM) for -cert")
	fs.Int64Var(&c.maxMessage, "max-message", 32<<20, "largest message accepted, in bytes; larger ones are closed with 1009")
	fs.IntVar(&c.maxConns, "max-conns", 0, "most TCP connections held at once, page requests included (0: no limit); a few are kept for page requests")
	fs.DurationVar(&c.drain, "drain", 5*time.Second, "graceful-drain deadline on SIGINT/SIGTERM")
	fs.DurationVar(&c.ping, "ping", 30*time.Second, "keepalive: ping a client that sent nothing for this long (0: no pings)")
	fs.DurationVar(&c.idle, "idle", 2*time.Minute, "close a connection that sent nothing, not even a pong, for this long (0: never)")
	fs.BoolVar(&c.goroutines, "goroutines", false, "serve each connection on a goroutine of its own with blocking reads, instead of the reactor")
	fs.BoolVar(&c.compress, "compress", true, "compress messages (permessage-deflate, without context takeover) with clients that offer it, as browsers do")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.maxMessage <= 0 || c.maxConns < 0 || c.drain <= 0 || c.ping < 0 || c.idle < 0 {
		return c, errors.New("-max-message and -drain must be positive; -max-conns, -ping and -idle not negative")
	}
	if (c.certFile == "") != (c.keyFile == "") {
		return c, errors.New("-cert and -key go together")
	}
	return c, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

// run serves the echo until ctx ends, then drains: the HTTP server stops
// accepting, every WebSocket connection is shut down with close 1001
// after its queued replies went out, and the ones still open at the
// deadline are closed hard. It prints where it listens, its log and the
// drain report to out.
func run(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := parseFlags(args, out)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(out, nil))
	ln, url, err := listen(cfg, out)
	if err != nil {
		return err
	}
	s, err := newServer(cfg, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer s.close()
	srv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute, // a keep-alive connection holds one of -max-conns
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	s.group.RegisterOnShutdown(srv, cfg.drain)
	fmt.Fprintf(out, "echo listening on %s  (WebSocket: %sws)\n", url, "ws"+url[len("http"):])

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintf(out, "draining %d connections (deadline %v)…\n", s.open.Load(), cfg.drain)
	dctx, cancel := context.WithTimeout(context.Background(), cfg.drain+time.Second)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	rep, err := s.group.Wait(dctx)
	fmt.Fprintf(out, "drained: %v notechoed=%d\n", rep, s.notEchoed.Load())
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
