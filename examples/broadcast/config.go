package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// config holds the server's settings, one field per flag.
type config struct {
	addr         string
	rate         float64       // messages per second the generator publishes; 0: none
	size         int           // bytes per generated message
	slow         int           // simulated slow subscribers
	slowRate     float64       // messages per second each slow subscriber reads
	maxBehind    int           // overtakes a subscriber may have within behindWindow; negative: any number
	behindWindow time.Duration // the window maxBehind counts in
	capacity     int           // bytes of messages the hub holds
	writeBuffer  int           // bytes each subscriber's connection buffers
	sendBuffer   int           // socket send buffer of each connection; 0: the system's
	writeTimeout time.Duration // how long a subscriber's socket may take nothing before it is dropped
	drain        time.Duration // graceful-drain deadline
	compress     bool          // accept permessage-deflate
}

// parseFlags parses the command line into a config. Usage and errors go
// to stderr; -h gives flag.ErrHelp.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("broadcast", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: broadcast [flags]\n\nServes a live message stream: the page at /, subscribers at /sub, publishers at /pub.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8081", "listen address")
	fs.Float64Var(&c.rate, "rate", 100, "messages per second the built-in generator publishes (0: none, only /pub)")
	fs.IntVar(&c.size, "size", 1024, "bytes per generated message (at least 16: a sequence number and a timestamp)")
	fs.IntVar(&c.slow, "slow", 0, "simulated slow subscribers: in-process clients that read slowly")
	fs.Float64Var(&c.slowRate, "slow-rate", 20, "messages per second each simulated slow subscriber reads")
	fs.IntVar(&c.maxBehind, "max-behind", 3, "disconnect a subscriber with 1008 when overtaken more than this many times within -behind-window (negative: never)")
	fs.DurationVar(&c.behindWindow, "behind-window", time.Minute, "the window -max-behind counts overtakes in")
	fs.IntVar(&c.capacity, "capacity", 1<<20, "bytes of messages the hub holds; a subscriber further behind is overtaken")
	fs.IntVar(&c.writeBuffer, "write-buffer", 64<<10, "bytes each subscriber's connection buffers")
	fs.IntVar(&c.sendBuffer, "send-buffer", 128<<10, "socket send buffer of each connection (0: the system's, which grows to megabytes, so that a slow subscriber is noticed late)")
	fs.DurationVar(&c.writeTimeout, "write-timeout", time.Minute, "drop a subscriber whose socket takes nothing for this long")
	fs.DurationVar(&c.drain, "drain", 5*time.Second, "graceful-drain deadline on SIGINT/SIGTERM")
	fs.BoolVar(&c.compress, "compress", true, "accept permessage-deflate, which browsers offer: each message is compressed once per topic, not once per subscriber")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments: %q", fs.Args())
		fmt.Fprintln(stderr, err)
		return c, err
	}
	var errs []error
	if c.rate < 0 {
		errs = append(errs, errors.New("-rate must not be negative"))
	}
	if c.size < 16 {
		errs = append(errs, errors.New("-size must be at least 16"))
	}
	if c.size > c.capacity-16 {
		errs = append(errs, errors.New("-size must be smaller than -capacity"))
	}
	if c.slow < 0 || c.slowRate <= 0 {
		errs = append(errs, errors.New("-slow must not be negative and -slow-rate must be positive"))
	}
	if c.capacity < 1<<10 || c.writeBuffer < 1<<10 || c.sendBuffer < 0 {
		errs = append(errs, errors.New("-capacity and -write-buffer must be at least 1024, -send-buffer not negative"))
	}
	if c.behindWindow <= 0 || c.writeTimeout <= 0 || c.drain <= 0 {
		errs = append(errs, errors.New("-behind-window, -write-timeout and -drain must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, err)
		return c, err
	}
	return c, nil
}

// kickAfter is broadcast.Options.KickAfter for maxBehind: the overtake
// after the tolerated ones disconnects.
func (c config) kickAfter() int {
	if c.maxBehind < 0 {
		return -1
	}
	return c.maxBehind + 1
}
