// Command wsbench measures pollws side by side with the WebSocket servers
// Go users pick today (gorilla/websocket, gobwas/ws, coder/websocket,
// nbio) and a raw-TCP ceiling, each a separate wsserver process on
// loopback, driven by the same load client (bench/internal/load), built
// to cost less per message than the servers it drives. Servers are
// interleaved within each round (A B C A B C …) so that ratios hold on a
// noisy machine; every figure is the median of the rounds. Beside
// messages a second it reports the CPU each server used per message
// (utime+stime from /proc), the figure noise on shared cores does not
// move, and the load client's own.
//
// The scenarios: echo and echo-tls (64 connections × 32 messages of 128 B
// in flight, plain and over TLS), echo-many (2,000 connections × 2),
// echo-deflate (64 connections × 8 JSON messages of 1 KiB in flight with
// permessage-deflate: CPU and bytes on the wire per message, and memory
// per idle compressed connection), latency (p50 and p99 of an open loop
// at one common rate), idle and idle-tls (server memory per idle
// connection at 10,000), idle-max (the most one process may hold here,
// 19,000), broadcast, broadcast-nats (1,000 subscribers on one pollws
// instance, then spread over 3 that share the topic through a NATS broker
// that cmd/natsbroker runs), backpressure, and h2-memory (server memory
// per WebSocket, 1,000 over one HTTP/2 connection against 1,000 over
// HTTP/1.1, both over TLS).
//
//	go run ./cmd/wsbench                       # full run (about 17 minutes on 2 cores, 3 rounds): table, JSON and SVG charts in ./report
//	go run ./cmd/wsbench -scenarios echo,idle  # some scenarios
//	go run ./cmd/wsbench -markdown ../BENCHMARKS.md
//	go run ./cmd/wsbench -smoke                # under a minute: proves the harness works
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/pollws/pollws/bench/internal/proc"
)

// allScenarios are the scenarios, in the order they run within a round.
var allScenarios = []string{"echo", "echo-tls", "echo-many", "echo-deflate", "latency", "idle", "idle-tls", "idle-max", "broadcast", "broadcast-nats", "backpressure", "h2-memory"}

type config struct {
	servers   []string
	scenarios []string
	rounds    int
	// echo is the echo and echo-tls load; many the echo-many load.
	echo, many echoConfig
	latency    latencyConfig
	// idle is the idle and idle-tls load; idleMax the idle-max load.
	idle, idleMax idleConfig
	bcast         broadcastConfig
	deflate       deflateConfig
	nats          natsConfig
	h2            h2Config
	bpConns       int
	bpSize        int
	bpFor         time.Duration
	out           string
	markdown      string
	smoke         bool
	// brokerBin is cmd/natsbroker, built when broadcast-nats runs.
	brokerBin string
}

func main() {
	var cfg config
	servers := flag.String("servers", "", "comma-separated servers (default: every wsserver implementation)")
	scenarios := flag.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios, of "+strings.Join(allScenarios, ","))
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds; each figure is the median")
	flag.IntVar(&cfg.echo.conns, "conns", 64, "echo: connections")
	flag.IntVar(&cfg.echo.size, "size", 128, "echo, echo-many, latency, idle: message size in bytes")
	flag.IntVar(&cfg.echo.window, "window", 32, "echo: messages in flight per connection")
	flag.IntVar(&cfg.many.conns, "manyconns", 2000, "echo-many: connections")
	flag.IntVar(&cfg.many.window, "manywindow", 2, "echo-many: messages in flight per connection")
	flag.DurationVar(&cfg.echo.duration, "duration", 5*time.Second, "echo, latency and broadcast: measured time per run")
	flag.IntVar(&cfg.latency.conns, "latconns", 64, "latency: connections")
	flag.Float64Var(&cfg.latency.rate, "latrate", 0, "latency: offered messages a second over all connections (default: chosen from a calibration)")
	latRef := flag.String("latref", "pollws,gobwas", "latency: the servers whose slowest calibrated peak sets the rate")
	flag.Float64Var(&cfg.latency.load, "latload", 0.5, "latency: the rate as a fraction of that peak")
	flag.IntVar(&cfg.idle.n, "idle", 10000, "idle, idle-tls: connections")
	flag.IntVar(&cfg.idleMax.n, "maxidle", 19000, "idle-max: connections (a process may hold 20,000 descriptors here)")
	flag.IntVar(&cfg.idle.perIP, "perip", 10000, "idle, idle-tls, idle-max: connections dialled from each source address 127.0.0.x")
	flag.IntVar(&cfg.bcast.subs, "subs", 1000, "broadcast: subscribers")
	flag.IntVar(&cfg.bcast.stalled, "stalled", 10, "broadcast: subscribers that never read, in the stalled run")
	flag.IntVar(&cfg.bcast.size, "bsize", 1024, "broadcast: message size in bytes")
	flag.IntVar(&cfg.bcast.window, "bwindow", 64, "broadcast: messages published ahead of the slowest reader")
	var dflt echoConfig
	var dIdle, dMsgs int
	flag.IntVar(&dflt.conns, "dconns", 64, "echo-deflate: connections")
	flag.IntVar(&dflt.window, "dwindow", 8, "echo-deflate: messages in flight per connection")
	flag.IntVar(&dflt.size, "dsize", 1024, "echo-deflate: JSON message size in bytes")
	flag.IntVar(&dMsgs, "dmsgs", 256, "echo-deflate: distinct JSON messages, sent in turn")
	flag.IntVar(&dIdle, "didle", 10000, "echo-deflate: idle compressed connections")
	flag.IntVar(&cfg.nats.instances, "natsinstances", 3, "broadcast-nats: pollws instances over the NATS broker")
	flag.IntVar(&cfg.h2.n, "h2ws", 1000, "h2-memory: WebSockets, over one HTTP/2 connection and over HTTP/1.1")
	flag.IntVar(&cfg.bpConns, "bpconns", 50, "backpressure: connections that never read")
	flag.IntVar(&cfg.bpSize, "bpsize", 16<<10, "backpressure: message size in bytes")
	flag.DurationVar(&cfg.bpFor, "bpfor", 3*time.Second, "backpressure: how long the clients write")
	flag.StringVar(&cfg.out, "out", "report", "directory for results.json, results.md and the SVG charts")
	flag.StringVar(&cfg.markdown, "markdown", "", "also write the Markdown report to this file")
	flag.BoolVar(&cfg.smoke, "smoke", false, "a run of under a minute with tiny loads, to prove the harness works")
	flag.Parse()
	cfg.echo.warmup = cfg.echo.duration / 5
	cfg.many = echoConfig{conns: cfg.many.conns, size: cfg.echo.size, window: cfg.many.window, warmup: cfg.echo.warmup, duration: cfg.echo.duration}
	cfg.latency.size, cfg.latency.tick = cfg.echo.size, time.Millisecond
	cfg.latency.warmup, cfg.latency.duration = cfg.echo.warmup, cfg.echo.duration
	cfg.latency.ref, cfg.latency.headroom = strings.Split(*latRef, ","), 1.25
	cfg.idle.size, cfg.idle.settle = cfg.echo.size, time.Second
	cfg.idleMax.size, cfg.idleMax.perIP, cfg.idleMax.settle = cfg.idle.size, cfg.idle.perIP, cfg.idle.settle
	cfg.bcast.warmup, cfg.bcast.duration = cfg.echo.warmup, cfg.echo.duration
	dflt.warmup, dflt.duration = cfg.echo.warmup, cfg.echo.duration
	dIdleCfg := idleConfig{n: dIdle, perIP: cfg.idle.perIP, settle: cfg.idle.settle}
	cfg.h2.size, cfg.h2.settle = cfg.echo.size, cfg.idle.settle
	if cfg.smoke {
		cfg.rounds = 1
		short := echoConfig{warmup: 100 * time.Millisecond, duration: 300 * time.Millisecond}
		cfg.echo = echoConfig{conns: 4, size: 128, window: 8, warmup: short.warmup, duration: short.duration}
		cfg.many = echoConfig{conns: 40, size: 128, window: 2, warmup: short.warmup, duration: short.duration}
		cfg.latency.conns, cfg.latency.warmup, cfg.latency.duration = 4, short.warmup, short.duration
		cfg.idle = idleConfig{n: 50, size: 128, perIP: 10000, settle: 100 * time.Millisecond}
		cfg.idleMax = idleConfig{n: 60, size: 128, perIP: 20, settle: 100 * time.Millisecond} // three source addresses
		cfg.bcast = broadcastConfig{subs: 20, stalled: 2, size: 1024, window: 16, warmup: short.warmup, duration: short.duration}
		dflt = echoConfig{conns: 4, size: 1024, window: 4, warmup: short.warmup, duration: short.duration}
		dMsgs, dIdleCfg = 16, idleConfig{n: 20, perIP: 10000, settle: 100 * time.Millisecond}
		cfg.h2 = h2Config{n: 20, size: 128, settle: 100 * time.Millisecond}
		cfg.bpConns, cfg.bpFor = 4, 300*time.Millisecond
		if cfg.out == "report" {
			cfg.out = ""
		}
	}
	cfg.nats.bcast = cfg.bcast
	cfg.nats.bcast.stalled, cfg.nats.bcast.settle = 0, cfg.idle.settle
	var err error
	if cfg.deflate, err = newDeflateConfig(dflt, dIdleCfg, dMsgs); err != nil {
		log.Fatalf("wsbench: echo-deflate: %v", err)
	}
	cfg.scenarios = strings.Split(*scenarios, ",")
	for _, sc := range cfg.scenarios {
		if !slices.Contains(allScenarios, sc) {
			log.Fatalf("wsbench: unknown scenario %q; have %s", sc, strings.Join(allScenarios, ","))
		}
	}
	if err := bench(cfg, *servers); err != nil {
		log.Fatal(err)
	}
}

// bench runs the benchmark cfg describes on the servers named in servers
// (all when it is empty) and writes the report.
func bench(cfg config, servers string) error {
	if _, err := proc.RaiseFileLimit(); err != nil {
		return err
	}
	// WSBENCH_CPUPROFILE names a file for a CPU profile of the load
	// client's whole run, to check what it costs (WSSERVER_CPUPROFILE does
	// the same for the servers).
	if path := os.Getenv("WSBENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tmp, err := os.MkdirTemp("", "wsbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := build(tmp, "wsserver")
	if err != nil {
		return err
	}
	if slices.Contains(cfg.scenarios, "broadcast-nats") {
		if cfg.brokerBin, err = build(tmp, "natsbroker"); err != nil {
			return err
		}
	}
	all, err := exec.Command(bin, "-list").Output()
	if err != nil {
		return fmt.Errorf("wsserver -list: %w", err)
	}
	cfg.servers = strings.Fields(string(all))
	if servers != "" {
		cfg.servers = strings.Split(servers, ",")
	}
	res, err := run(ctx, bin, cfg)
	if err != nil {
		return err
	}
	md := res.markdown()
	fmt.Print(md)
	if cfg.out != "" {
		if err := res.write(cfg.out); err != nil {
			return err
		}
	}
	if cfg.markdown != "" {
		if err := os.WriteFile(cfg.markdown, []byte(md), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// step is one measurement: one scenario on one server in one round.
type step struct {
	round    int
	scenario string
	server   string
}

func run(ctx context.Context, bin string, cfg config) (*results, error) {
	res := newResults(cfg)
	if slices.Contains(cfg.scenarios, "latency") {
		if err := calibrate(ctx, bin, cfg, res); err != nil {
			return nil, err
		}
	}
	res.notePartakers()
	var steps []step
	for r := range cfg.rounds {
		for _, sc := range cfg.scenarios {
			for _, s := range cfg.servers {
				if res.supports(s, sc) {
					steps = append(steps, step{r, sc, s})
				}
			}
		}
	}
	bar := progressbar.NewOptions(len(steps),
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetVisibility(term.IsTerminal(int(os.Stderr.Fd()))),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish())
	for _, st := range steps {
		bar.Describe(fmt.Sprintf("round %d/%d %-12s %-15s", st.round+1, cfg.rounds, st.scenario, st.server))
		if err := runStep(ctx, bin, cfg, st, res); err != nil {
			if !isPeer(st.server) || ctx.Err() != nil {
				return nil, fmt.Errorf("round %d, %s: %w", st.round+1, st.scenario, err)
			}
			// A peer that fails a round is reported, not measured, in
			// that round; its medians come from the others.
			res.note(st.scenario, fmt.Sprintf("%s failed in round %d: %v.", st.server, st.round+1, err))
		}
		bar.Add(1)
	}
	bar.Finish()
	return res, nil
}

// calibrate measures each server's peak on the latency load, closed loop,
// and chooses the common rate of the latency runs and the servers that
// can sustain it.
func calibrate(ctx context.Context, bin string, cfg config, res *results) error {
	lc := cfg.latency
	peak := echoConfig{conns: lc.conns, size: lc.size, window: 32, warmup: lc.warmup, duration: min(lc.duration, 2*time.Second)}
	peaks := map[string]float64{}
	for _, name := range cfg.servers {
		s, err := startServer(ctx, bin, name, false)
		if err != nil {
			return err
		}
		r, err := runEcho(ctx, s, peak)
		s.stop()
		if err != nil {
			return fmt.Errorf("latency calibration: %w", err)
		}
		peaks[name] = r.MsgsPerSec
	}
	rate, how := chooseRate(lc, peaks)
	res.Latency = latencyPlan{Rate: rate, How: how, Peaks: peaks}
	for _, name := range cfg.servers {
		if peaks[name] < lc.headroom*rate {
			res.Latency.Excluded = append(res.Latency.Excluded, name)
		}
	}
	return nil
}

// launchFor is how the servers of scenario sc are started.
func launchFor(sc string) launch {
	if sc == "h2-memory" {
		return launch{tls: true, h2: true}
	}
	return launch{tls: strings.HasSuffix(sc, "-tls")}
}

func runStep(ctx context.Context, bin string, cfg config, st step, res *results) error {
	s, err := launchServer(ctx, bin, st.server, launchFor(st.scenario))
	if err != nil {
		return err
	}
	defer func() { s.stop() }() // s is replaced by a scenario's second run
	// restart replaces s by a new server, for a measurement that starts
	// from a fresh process.
	restart := func() error {
		s.stop()
		s, err = launchServer(ctx, bin, st.server, launchFor(st.scenario))
		return err
	}
	switch st.scenario {
	case "echo", "echo-tls", "echo-many":
		ec := cfg.echo
		if st.scenario == "echo-many" {
			ec = cfg.many
		}
		r, err := runEcho(ctx, s, ec)
		if err != nil {
			return err
		}
		res.add(st.scenario, st.server, r.MsgsPerSec, r.ServerUs, r.ClientUs)
	case "latency":
		r, err := runLatency(ctx, s, cfg.latency, res.Latency.Rate)
		if err != nil {
			return err
		}
		res.add(st.scenario, st.server, r.MsgsPerSec, r.P50, r.P99, r.ServerUs, r.ClientUs)
	case "idle", "idle-tls":
		r, err := runIdle(ctx, s, cfg.idle, false)
		if err != nil {
			return err
		}
		res.add(st.scenario, st.server, r.Settled, r.Freed)
	case "idle-max":
		r, err := runIdle(ctx, s, cfg.idleMax, true)
		if err != nil {
			return err
		}
		if r.Failed != nil {
			res.note(st.scenario, fmt.Sprintf("round %d: %s held %d of %d connections: %v", st.round+1, st.server, r.Held, cfg.idleMax.n, r.Failed))
		}
		res.add(st.scenario, st.server, float64(r.Held), r.Settled, r.Freed)
	case "broadcast":
		healthy := cfg.bcast
		healthy.stalled = 0
		r, err := runBroadcast(ctx, []*server{s}, healthy)
		if err != nil {
			return err
		}
		if err := restart(); err != nil {
			return err
		}
		rs, err := runBroadcast(ctx, []*server{s}, cfg.bcast)
		if err != nil {
			return err
		}
		res.add(st.scenario, st.server, r.DeliveriesPerSec, rs.DeliveriesPerSec, float64(rs.RSS))
	case "echo-deflate":
		r, err := runEchoDeflate(ctx, s, cfg.deflate)
		if err != nil {
			return err
		}
		if err := restart(); err != nil {
			return err
		}
		ir, err := runIdle(ctx, s, cfg.deflate.idle, false)
		if err != nil {
			return err
		}
		res.add(st.scenario, st.server, r.MsgsPerSec, r.ServerUs, r.ClientUs, r.WireSent, r.WireReceived, ir.Settled, ir.Freed)
	case "broadcast-nats":
		r, err := runBroadcastNATS(ctx, bin, cfg.brokerBin, s, cfg.nats)
		if err != nil {
			return err
		}
		res.add(st.scenario, st.server, r.alone.DeliveriesPerSec, r.over.DeliveriesPerSec, r.alone.PerSub, r.over.PerSub, r.alone.Topic, r.over.Topic)
	case "h2-memory":
		h1, err := runH2Memory(ctx, s, cfg.h2, false)
		if err != nil {
			return fmt.Errorf("over HTTP/1.1: %w", err)
		}
		if err := restart(); err != nil {
			return err
		}
		h2, err := runH2Memory(ctx, s, cfg.h2, true)
		if err != nil {
			return fmt.Errorf("over HTTP/2: %w", err)
		}
		res.add(st.scenario, st.server, h1.Settled, h1.Freed, h2.Settled, h2.Freed, float64(h2.Conns))
	case "backpressure":
		per, err := runBackpressure(ctx, s, cfg.bpConns, cfg.bpSize, cfg.bpFor)
		if err != nil {
			return err
		}
		res.add(st.scenario, st.server, per)
	}
	return nil
}
