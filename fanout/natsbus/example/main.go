// Command example runs one instance of a broadcast service that shares its
// topics with other instances through a NATS broker: a message published
// on any instance reaches the subscribers of all of them, in order, and a
// message the broker loses on the way is counted and told to the
// subscribers that missed it.
//
// Two terminals, one broker started inside the first instance:
//
//	go run ./example -addr 127.0.0.1:8081 -nats-embedded 127.0.0.1:4222
//	go run ./example -addr 127.0.0.1:8082 -nats nats://127.0.0.1:4222
//
// Open http://127.0.0.1:8081/ and http://127.0.0.1:8082/: what one page
// publishes, both show. Without -nats or -nats-embedded the instance runs
// alone. Clients subscribe at /sub?topic=NAME and publish at
// /pub?topic=NAME (the topic "live" without ?topic=); /stats shows the
// hub's and the bus's counters. Ctrl-C drains: every connection is closed
// with 1001 after what it was sent, then the instance leaves the broker.
//
// Run from the module github.com/pollws/pollws/fanout/natsbus, which
// keeps NATS out of the main module; the single-instance example with a
// message generator and simulated slow subscribers is examples/broadcast
// in the main module.
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
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pollws/pollws/fanout"
	"github.com/pollws/pollws/fanout/natsbus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config holds the instance's settings, one field per flag.
type config struct {
	addr      string
	natsURL   string        // the broker to join; "" for none
	embedded  string        // address of a broker to start in the process; "" for none
	capacity  int           // bytes of messages the hub holds per topic
	maxBehind int           // overtakes a subscriber may have within a minute; negative: any number
	drain     time.Duration // graceful-drain deadline
}

// parseFlags parses the command line into a config. Usage and errors go
// to stderr; -h gives flag.ErrHelp.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8081", "listen address")
	fs.StringVar(&c.natsURL, "nats", "", "join the NATS broker at this URL (nats://host:port; several, comma-separated, for a cluster)")
	fs.StringVar(&c.embedded, "nats-embedded", "", "start a NATS broker in this process, listening on this host:port, and join it")
	fs.IntVar(&c.capacity, "capacity", 1<<20, "bytes of messages the hub holds per topic; a subscriber further behind is overtaken")
	fs.IntVar(&c.maxBehind, "max-behind", 3, "close a subscriber with 1008 when overtaken more than this many times within a minute (negative: never)")
	fs.DurationVar(&c.drain, "drain", 5*time.Second, "graceful-drain deadline on SIGINT/SIGTERM")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	if c.natsURL != "" && c.embedded != "" {
		errs = append(errs, errors.New("-nats and -nats-embedded exclude each other"))
	}
	if c.capacity < 1<<10 || c.drain <= 0 {
		errs = append(errs, errors.New("-capacity must be at least 1024 and -drain positive"))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, err)
		return c, err
	}
	return c, nil
}

// run is the command: it parses args, joins or starts the broker, serves
// until ctx ends, drains, and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	fail := func(err error) int {
		fmt.Fprintln(stderr, "example:", err)
		return 1
	}

	url := cfg.natsURL
	if cfg.embedded != "" {
		ns, err := startBroker(cfg.embedded)
		if err != nil {
			return fail(err)
		}
		defer ns.WaitForShutdown()
		defer ns.Shutdown() // after the bus left it
		url = ns.ClientURL()
		fmt.Fprintf(stdout, "NATS broker on %s: start more instances with -nats %s\n", url, url)
	}
	var bus *natsbus.Bus
	if url != "" {
		// The bus reconnects by itself; it logs outages, reconnections and
		// slow-consumer drops, and counts them in its Stats (see /stats).
		bus, err = natsbus.Connect(url, &natsbus.Options{Logger: log})
		if err != nil {
			return fail(err)
		}
		defer bus.Close() // after the hub
		fmt.Fprintf(stdout, "joined the NATS broker at %s\n", url)
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fail(err)
	}
	if err := newInstance(cfg, bus, log).serve(ctx, ln, stdout); err != nil {
		return fail(err)
	}
	return 0
}

// startBroker starts a NATS broker in the process, listening on addr.
func startBroker(addr string) (*server.Server, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-nats-embedded: %w", err)
	}
	p, err := net.LookupPort("tcp", port)
	if err != nil {
		return nil, fmt.Errorf("-nats-embedded: %w", err)
	}
	if p == 0 {
		p = server.RANDOM_PORT // nats-server takes 0 for its default port, 4222
	}
	ns, err := server.NewServer(&server.Options{Host: host, Port: p, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, fmt.Errorf("NATS broker: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("NATS broker: not listening on %s after 5s", addr)
	}
	return ns, nil
}

// hubOptions are the options of the instance's hub.
func hubOptions(cfg config, bus *natsbus.Bus, log *slog.Logger) *fanout.Options {
	o := &fanout.Options{Capacity: cfg.capacity, KickAfter: -1, Logger: log}
	if cfg.maxBehind >= 0 {
		o.KickAfter = cfg.maxBehind + 1 // the overtake after the tolerated ones closes
	}
	if bus != nil {
		o.Bus = bus // a nil *natsbus.Bus in the interface would not be "no bus"
	}
	return o
}
