// Command wsbench measures pollws side by side with the WebSocket servers
// Go users pick today (gorilla/websocket, gobwas/ws, coder/websocket) and a
// raw-TCP ceiling, each a separate wsserver process on loopback, driven by
// the same load client. Servers are interleaved within each round (A B C A
// B C …) so that ratios hold on a noisy machine; every figure is the median
// of the rounds.
//
//	go run ./cmd/wsbench                       # full run: table, JSON and SVG charts in ./report
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
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

type config struct {
	servers   []string
	scenarios []string
	rounds    int
	echo      echoConfig
	idleConns int
	bcast     broadcastConfig
	bpConns   int
	bpSize    int
	bpFor     time.Duration
	settle    time.Duration
	out       string
	markdown  string
	smoke     bool
}

func main() {
	var cfg config
	servers := flag.String("servers", "", "comma-separated servers (default: every wsserver implementation)")
	scenarios := flag.String("scenarios", "echo,idle,broadcast,backpressure", "comma-separated scenarios")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds; each figure is the median")
	flag.IntVar(&cfg.echo.conns, "conns", 64, "echo: connections")
	flag.IntVar(&cfg.echo.size, "size", 128, "echo: message size in bytes")
	flag.IntVar(&cfg.echo.window, "window", 32, "echo: messages in flight per connection")
	flag.DurationVar(&cfg.echo.duration, "duration", 5*time.Second, "echo and broadcast: measured time per run")
	flag.IntVar(&cfg.idleConns, "idle", 10000, "idle: connections")
	flag.IntVar(&cfg.bcast.subs, "subs", 1000, "broadcast: subscribers")
	flag.IntVar(&cfg.bcast.stalled, "stalled", 10, "broadcast: subscribers that never read, in the stalled run")
	flag.IntVar(&cfg.bcast.size, "bsize", 1024, "broadcast: message size in bytes")
	flag.IntVar(&cfg.bcast.window, "bwindow", 64, "broadcast: messages published ahead of the slowest reader")
	flag.IntVar(&cfg.bpConns, "bpconns", 50, "backpressure: connections that never read")
	flag.IntVar(&cfg.bpSize, "bpsize", 16<<10, "backpressure: message size in bytes")
	flag.DurationVar(&cfg.bpFor, "bpfor", 3*time.Second, "backpressure: how long the clients write")
	flag.StringVar(&cfg.out, "out", "report", "directory for results.json, results.md and the SVG charts")
	flag.StringVar(&cfg.markdown, "markdown", "", "also write the Markdown report to this file")
	flag.BoolVar(&cfg.smoke, "smoke", false, "a run of under a minute with tiny loads, to prove the harness works")
	flag.Parse()
	cfg.echo.warmup = cfg.echo.duration / 5
	cfg.bcast.warmup, cfg.bcast.duration = cfg.echo.warmup, cfg.echo.duration
	cfg.settle = time.Second
	if cfg.smoke {
		cfg.rounds = 1
		cfg.echo = echoConfig{conns: 4, size: 128, window: 8, warmup: 100 * time.Millisecond, duration: 300 * time.Millisecond}
		cfg.idleConns = 50
		cfg.bcast = broadcastConfig{subs: 20, stalled: 2, size: 1024, window: 16, warmup: 100 * time.Millisecond, duration: 300 * time.Millisecond}
		cfg.bpConns, cfg.bpFor = 4, 300*time.Millisecond
		cfg.settle = 100 * time.Millisecond
		if cfg.out == "report" {
			cfg.out = ""
		}
	}
	cfg.scenarios = strings.Split(*scenarios, ",")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tmp, err := os.MkdirTemp("", "wsbench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	bin, err := buildServer(tmp)
	if err != nil {
		log.Fatal(err)
	}
	all, err := exec.Command(bin, "-list").Output()
	if err != nil {
		log.Fatal(err)
	}
	cfg.servers = strings.Fields(string(all))
	if *servers != "" {
		cfg.servers = strings.Split(*servers, ",")
	}
	res, err := run(ctx, bin, cfg)
	if err != nil {
		log.Fatal(err)
	}
	md := res.markdown()
	fmt.Print(md)
	if cfg.out != "" {
		if err := res.write(cfg.out); err != nil {
			log.Fatal(err)
		}
	}
	if cfg.markdown != "" {
		if err := os.WriteFile(cfg.markdown, []byte(md), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// step is one measurement: one scenario on one server in one round.
type step struct {
	round    int
	scenario string
	server   string
}

func run(ctx context.Context, bin string, cfg config) (*results, error) {
	var steps []step
	for r := range cfg.rounds {
		for _, sc := range cfg.scenarios {
			for _, s := range cfg.servers {
				if supports(s, sc) {
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
	res := newResults(cfg)
	for _, st := range steps {
		bar.Describe(fmt.Sprintf("round %d/%d %-12s %-15s", st.round+1, cfg.rounds, st.scenario, st.server))
		if err := measure(ctx, bin, cfg, st, res); err != nil {
			return nil, err
		}
		bar.Add(1)
	}
	bar.Finish()
	return res, nil
}

// supports reports whether server s takes part in scenario sc.
func supports(s, sc string) bool {
	switch sc {
	case "broadcast":
		return slices.Contains(broadcasters, s)
	case "idle", "backpressure", "echo":
		return true
	}
	return false
}

// broadcasters are the servers with a broadcast hub.
var broadcasters = []string{"gorilla", "pollws"}

func measure(ctx context.Context, bin string, cfg config, st step, res *results) error {
	s, err := startServer(ctx, bin, st.server)
	if err != nil {
		return err
	}
	defer func() { s.stop() }() // s is replaced by the stalled broadcast run
	switch st.scenario {
	case "echo":
		r, err := runEcho(ctx, s, cfg.echo)
		if err != nil {
			return err
		}
		res.add("echo", st.server, r.MsgsPerSec, r.P50, r.P99)
	case "idle":
		per, err := runIdle(ctx, s, cfg.idleConns, cfg.settle)
		if err != nil {
			return err
		}
		res.add("idle", st.server, per)
	case "broadcast":
		healthy := cfg.bcast
		healthy.stalled = 0
		r, err := runBroadcast(ctx, s, healthy)
		if err != nil {
			return err
		}
		s.stop()
		if s, err = startServer(ctx, bin, st.server); err != nil {
			return err
		}
		rs, err := runBroadcast(ctx, s, cfg.bcast)
		if err != nil {
			return err
		}
		res.add("broadcast", st.server, r.DeliveriesPerSec, rs.DeliveriesPerSec, float64(rs.RSS))
	case "backpressure":
		per, err := runBackpressure(ctx, s, cfg.bpConns, cfg.bpSize, cfg.bpFor)
		if err != nil {
			return err
		}
		res.add("backpressure", st.server, per)
	}
	return nil
}
