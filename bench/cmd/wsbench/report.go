package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// results holds every round's figures: scenario → server → figure index →
// one value per round.
type results struct {
	Date    string                            `json:"date"`
	Machine string                            `json:"machine"`
	Config  map[string]any                    `json:"config"`
	Servers []string                          `json:"servers"`
	Figures map[string][]string               `json:"figures"`
	Rounds  map[string]map[string][][]float64 `json:"rounds"`
	Median  map[string]map[string][]float64   `json:"median"`
	Latency latencyPlan                       `json:"latency"`
	Notes   map[string][]string               `json:"notes,omitempty"`
	cfg     config
}

// latencyPlan is how the latency runs were set up.
type latencyPlan struct {
	Rate     float64            `json:"rate"`
	How      string             `json:"how"`
	Peaks    map[string]float64 `json:"calibrated_peaks"`
	Excluded []string           `json:"excluded,omitempty"`
}

// figure is one value a scenario records per server and round.
type figure struct {
	name   string
	lower  bool // lower is better
	format func(float64) string
}

// ratio is a column of a figure divided by the same figure of the best
// peer ("peer") or of one server.
type ratio struct {
	fig int
	vs  string
}

// within is a column of one figure divided by another of the same server
// (num ÷ den), the median of the ratios within a round.
type within struct{ num, den int }

// spec is what a scenario records and how its table reads.
type spec struct {
	figures []figure
	ratios  []ratio
	within  []within
	charts  []int
}

var (
	msgsPerSec = figure{"msgs/s", false, humanize}
	serverUs   = figure{"server µs/msg", true, micros}
	clientUs   = figure{"client µs/msg", true, micros}
	bytesConn  = figure{"bytes/conn", true, humanize}
	freedConn  = figure{"bytes/conn freed", true, humanize}
	echoSpec   = spec{
		figures: []figure{msgsPerSec, serverUs, clientUs},
		ratios:  []ratio{{0, "peer"}, {1, "peer"}, {1, "rawtcp"}},
		charts:  []int{0, 1},
	}
	idleSpec = spec{
		figures: []figure{bytesConn, freedConn},
		ratios:  []ratio{{0, "peer"}, {1, "peer"}},
		charts:  []int{0, 1},
	}
)

var specs = map[string]spec{
	"echo":      echoSpec,
	"echo-tls":  echoSpec,
	"echo-many": echoSpec,
	"latency": {
		figures: []figure{msgsPerSec, {"p50 µs", true, micros}, {"p99 µs", true, micros}, serverUs, clientUs},
		ratios:  []ratio{{2, "peer"}, {2, "rawtcp"}, {3, "peer"}},
		charts:  []int{2},
	},
	"idle":     idleSpec,
	"idle-tls": idleSpec,
	"idle-max": {
		figures: []figure{{"held", false, count}, bytesConn, freedConn},
		ratios:  []ratio{{1, "peer"}, {2, "peer"}},
		charts:  []int{1, 2},
	},
	"broadcast": {
		figures: []figure{{"deliveries/s", false, humanize}, {"deliveries/s with stalled", false, humanize}, {"server RSS with stalled", true, humanize}},
		charts:  []int{0},
	},
	"backpressure": {
		figures: []figure{bytesConn},
		charts:  []int{0},
	},
	"echo-deflate": {
		figures: []figure{msgsPerSec, serverUs, clientUs, {"wire B/msg sent", true, count}, {"wire B/msg received", true, count}, bytesConn, freedConn},
		ratios:  []ratio{{0, "peer"}, {1, "peer"}, {4, "peer"}, {5, "peer"}},
		charts:  []int{0, 1},
	},
	"broadcast-nats": {
		figures: []figure{
			{"deliveries/s alone", false, humanize}, {"deliveries/s over NATS", false, humanize},
			{"bytes/sub alone", true, humanize}, {"bytes/sub over NATS", true, humanize},
			{"topic bytes/instance alone", true, humanize}, {"topic bytes/instance over NATS", true, humanize},
		},
		within: []within{{1, 0}, {3, 2}, {5, 4}},
	},
	"h2-memory": {
		figures: []figure{
			{"bytes/ws HTTP/1.1", true, humanize}, {"bytes/ws freed HTTP/1.1", true, humanize},
			{"bytes/ws HTTP/2", true, humanize}, {"bytes/ws freed HTTP/2", true, humanize},
			{"TCP conns HTTP/2", true, count},
		},
		within: []within{{2, 0}, {3, 1}},
	},
}

func newResults(cfg config) *results {
	figs := map[string][]string{}
	for sc, sp := range specs {
		for _, f := range sp.figures {
			figs[sc] = append(figs[sc], f.name)
		}
	}
	return &results{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: machine(),
		Config: map[string]any{
			"rounds": cfg.rounds, "duration": cfg.echo.duration.String(),
			"echo_conns": cfg.echo.conns, "echo_size": cfg.echo.size, "echo_window": cfg.echo.window,
			"many_conns": cfg.many.conns, "many_window": cfg.many.window,
			"latency_conns": cfg.latency.conns, "latency_tick": cfg.latency.tick.String(),
			"latency_ref": cfg.latency.ref, "latency_load": cfg.latency.load,
			"idle_conns": cfg.idle.n, "idle_max_conns": cfg.idleMax.n,
			"idle_per_source_ip": cfg.idle.perIP, "idle_max_per_source_ip": cfg.idleMax.perIP,
			"broadcast_subs": cfg.bcast.subs, "broadcast_stalled": cfg.bcast.stalled, "broadcast_size": cfg.bcast.size,
			"backpressure_conns": cfg.bpConns, "backpressure_size": cfg.bpSize,
			"deflate_conns": cfg.deflate.echo.conns, "deflate_window": cfg.deflate.echo.window,
			"deflate_size": cfg.deflate.echo.size, "deflate_messages": cfg.deflate.msgs, "deflate_idle_conns": cfg.deflate.idle.n,
			"nats_instances": cfg.nats.instances, "nats_subs": cfg.nats.bcast.subs,
			"h2_websockets": cfg.h2.n,
		},
		Servers: cfg.servers,
		Figures: figs,
		Rounds:  map[string]map[string][][]float64{},
		Median:  map[string]map[string][]float64{},
		Notes:   map[string][]string{},
		cfg:     cfg,
	}
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s %s/%s", cpu, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// supports reports whether server s takes part in scenario sc.
func (r *results) supports(s, sc string) bool {
	switch sc {
	case "broadcast":
		return slices.Contains(broadcasters, s)
	case "latency":
		return !slices.Contains(r.Latency.Excluded, s)
	case "echo-deflate":
		return slices.Contains(deflaters, s)
	case "broadcast-nats", "h2-memory":
		return s == "pollws"
	}
	if s == "pollws-listen" {
		return !strings.HasSuffix(sc, "-tls") // ServeListener serves plain TCP
	}
	return true
}

// notePartakers notes, in the scenarios that not every server takes part
// in, which did not and why.
func (r *results) notePartakers() {
	for _, sc := range r.cfg.scenarios {
		switch sc {
		case "echo-deflate":
			for _, n := range deflateNotes(r.cfg.servers) {
				r.note(sc, n)
			}
		case "broadcast-nats":
			r.note(sc, natsNote)
		case "h2-memory":
			r.note(sc, h2Note)
		}
	}
}

// broadcasters are the servers with a broadcast hub.
var broadcasters = []string{"gorilla", "pollws"}

// isPeer reports whether server s is one of pollws's peers: not pollws's
// own and not the raw-TCP ceiling.
func isPeer(s string) bool { return !strings.HasPrefix(s, "pollws") && s != "rawtcp" }

func (r *results) add(scenario, server string, values ...float64) {
	if r.Rounds[scenario] == nil {
		r.Rounds[scenario] = map[string][][]float64{}
		r.Median[scenario] = map[string][]float64{}
	}
	rounds := r.Rounds[scenario][server]
	if rounds == nil {
		rounds = make([][]float64, len(values))
	}
	med := make([]float64, len(values))
	for i, v := range values {
		rounds[i] = append(rounds[i], v)
		med[i] = median(rounds[i])
	}
	r.Rounds[scenario][server] = rounds
	r.Median[scenario][server] = med
}

func (r *results) note(scenario, text string) {
	r.Notes[scenario] = append(r.Notes[scenario], text)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// get returns the median of figure i of scenario on server, and whether it
// was measured.
func (r *results) get(scenario, server string, i int) (float64, bool) {
	m, ok := r.Median[scenario][server]
	if !ok || i >= len(m) {
		return 0, false
	}
	return m[i], true
}

// bestPeer returns the peer with the best median of figure i in scenario.
func (r *results) bestPeer(scenario string, i int) (string, bool) {
	lower := specs[scenario].figures[i].lower
	best, bv := "", 0.0
	for _, s := range r.Servers {
		v, ok := r.get(scenario, s, i)
		if !ok || !isPeer(s) {
			continue
		}
		if best == "" || (lower && v < bv) || (!lower && v > bv) {
			best, bv = s, v
		}
	}
	return best, best != ""
}

// ratio returns figure i of a over the same of b in scenario: the median
// of the ratios within each round, where the two were measured close in
// time.
func (r *results) ratio(scenario string, i int, a, b string) (float64, bool) {
	ra, ok1 := r.Rounds[scenario][a]
	rb, ok2 := r.Rounds[scenario][b]
	if !ok1 || !ok2 || i >= len(ra) || i >= len(rb) {
		return 0, false
	}
	if len(ra[i]) != len(rb[i]) {
		x, _ := r.get(scenario, a, i)
		y, _ := r.get(scenario, b, i)
		return x / y, y != 0
	}
	var qs []float64
	for k := range ra[i] {
		if rb[i][k] != 0 {
			qs = append(qs, ra[i][k]/rb[i][k])
		}
	}
	if len(qs) == 0 {
		return 0, false
	}
	return median(qs), true
}

// within returns figure w.num of server s in scenario over its figure
// w.den: the median of the ratios within each round.
func (r *results) within(scenario, s string, w within) (float64, bool) {
	rounds, ok := r.Rounds[scenario][s]
	if !ok || w.num >= len(rounds) || w.den >= len(rounds) {
		return 0, false
	}
	var qs []float64
	for k := range rounds[w.num] {
		if d := rounds[w.den][k]; d != 0 {
			qs = append(qs, rounds[w.num][k]/d)
		}
	}
	if len(qs) == 0 {
		return 0, false
	}
	return median(qs), true
}

// vsName is the server a ratio column divides by: the best peer's name
// for "peer".
func (r *results) vsName(scenario string, q ratio) (string, bool) {
	if q.vs == "peer" {
		return r.bestPeer(scenario, q.fig)
	}
	_, ok := r.Median[scenario][q.vs]
	return q.vs, ok
}

func (r *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s, loopback, servers interleaved within each of %d rounds; each figure is the median, each ratio the median of the ratios within a round.\n\n", r.Date[:10], r.Machine, r.cfg.rounds)
	for _, sc := range r.cfg.scenarios {
		if r.Median[sc] == nil {
			continue
		}
		sp := specs[sc]
		fmt.Fprintf(&b, "### %s\n\n%s\n\n", sc, r.describe(sc))
		head := []string{"server"}
		for _, f := range sp.figures {
			head = append(head, f.name)
		}
		var cols []ratio
		for _, q := range sp.ratios {
			vs, ok := r.vsName(sc, q)
			if !ok {
				continue
			}
			cols = append(cols, q)
			head = append(head, fmt.Sprintf("%s ÷ %s", sp.figures[q.fig].name, vs))
		}
		for _, w := range sp.within {
			head = append(head, fmt.Sprintf("%s ÷ %s", sp.figures[w.num].name, sp.figures[w.den].name))
		}
		fmt.Fprintf(&b, "| %s |\n|---|%s\n", strings.Join(head, " | "), strings.Repeat("---:|", len(head)-1))
		for _, s := range r.Servers {
			m, ok := r.Median[sc][s]
			if !ok {
				continue
			}
			cells := []string{s}
			for i, v := range m {
				cells = append(cells, sp.figures[i].format(v))
			}
			for _, q := range cols {
				vs, _ := r.vsName(sc, q)
				if v, ok := r.ratio(sc, q.fig, s, vs); ok {
					cells = append(cells, fmt.Sprintf("%.2f×", v))
				} else {
					cells = append(cells, "–")
				}
			}
			for _, w := range sp.within {
				if v, ok := r.within(sc, s, w); ok {
					cells = append(cells, fmt.Sprintf("%.2f×", v))
				} else {
					cells = append(cells, "–")
				}
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
		}
		b.WriteString("\n")
		if sc == "idle-max" {
			b.WriteString(r.million())
		}
		for _, n := range r.Notes[sc] {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		if len(r.Notes[sc]) > 0 {
			b.WriteString("\n")
		}
	}
	b.WriteString(r.targets())
	return b.String()
}

// describe is the sentence under a scenario's heading: the load, and what
// its figures mean.
func (r *results) describe(sc string) string {
	c := r.cfg
	switch sc {
	case "echo", "echo-tls", "echo-many":
		e := c.echo
		if sc == "echo-many" {
			e = c.many
		}
		over := "plain TCP"
		if sc == "echo-tls" {
			over = "TLS (a certificate the server generated for the run; rawtcp is the length-prefixed echo over TLS)"
		}
		return fmt.Sprintf("%d connections, each keeping %d messages of %d B in flight, over %s; server µs/msg is the server process's CPU time (utime+stime, /proc) over the measured %v divided by the messages echoed, client µs/msg the same for the load client.",
			e.conns, e.window, e.size, over, e.duration)
	case "latency":
		l, p := c.latency, r.Latency
		s := fmt.Sprintf("Open loop: %d connections send %d B messages at one common rate, %s msgs/s in all (%s), written once per %v whatever the echoes do; a round trip runs from the write of a message to the read of its echo. One common rate, not each server's own half peak, so that every server is offered the same work and the load client (which shares the cores) does the same work beside each.",
			l.conns, l.size, humanize(p.Rate), p.How, l.tick)
		if l.rate <= 0 {
			s += fmt.Sprintf(" The rate is %.0f%% of the lowest closed-loop peak among %s, measured before the rounds: that server runs at %.0f%% load, the faster ones below.", 100*l.load, strings.Join(l.ref, " and "), 100*l.load)
		}
		if len(p.Excluded) > 0 {
			s += fmt.Sprintf(" Not run: %s, whose calibrated peak is below %.2f× the rate (they could not sustain it).", strings.Join(p.Excluded, ", "), l.headroom)
		}
		return s
	case "idle", "idle-tls", "idle-max":
		i := c.idle
		if sc == "idle-max" {
			i = c.idleMax
		}
		over := "plain TCP"
		if sc == "idle-tls" {
			over = "TLS"
		}
		return fmt.Sprintf("%d connections over %s, dialled from %d source address(es), each exchanging one %d B message and then idle; growth of the server's resident memory per connection. *bytes/conn*: %v after the last connection, what the process holds as it runs (including garbage not yet collected and free memory the runtime has not yet returned); *bytes/conn freed*: after the server ran debug.FreeOSMemory (SIGUSR1, the same for every server), what the connections keep live. Kernel socket memory is in neither.",
			i.n, over, (i.n+i.perIP-1)/max(i.perIP, 1), i.size, i.settle)
	case "broadcast":
		return fmt.Sprintf("One publisher and %d subscribers of %d B messages, the publisher at most %d messages ahead of the slowest reading subscriber; then again with %d subscribers that never read.",
			c.bcast.subs, c.bcast.size, c.bcast.window, c.bcast.stalled)
	case "backpressure":
		return fmt.Sprintf("%d clients write %d B messages for %v and never read the echoes; growth of the server's resident memory per connection.", c.bpConns, c.bpSize, c.bpFor)
	case "echo-deflate":
		d := c.deflate
		ratio := 0.0
		if d.corpus != nil {
			plain, deflated := d.corpus.Size()
			ratio = float64(deflated) / float64(plain)
		}
		return fmt.Sprintf("%d connections with permessage-deflate (no context takeover), each keeping %d text messages in flight: %d distinct JSON messages of %d B (events of a shop, made from a fixed seed; compress/flate's default level takes them to %.0f%% of their size), sent in turn, for %v; CPU per message as in echo. *wire B/msg*: TCP payload the load client's sockets sent and received per echoed message (TCP_INFO), frame headers included. *bytes/conn* and *freed*: %d connections that each exchanged one compressed message, then idle, measured as in idle on a fresh server.",
			d.echo.conns, d.echo.window, d.msgs, d.echo.size, 100*ratio, d.echo.duration, d.idle.n)
	case "broadcast-nats":
		n := c.nats
		return fmt.Sprintf("%d subscribers of %d B messages from one publisher, at most %d messages ahead of the slowest subscriber, on one pollws instance alone (no broker), then on %d instances that share the topic through one NATS broker (nats-server in a process of its own, cmd/natsbroker): the publisher on the first instance, the subscribers spread over all, the same run. *deliveries/s*: messages received by all subscribers a second, over %v. Memory, the instances' resident memory added up, each measured after the instances ran debug.FreeOSMemory: *topic bytes/instance* is the growth from no subscriber to one on each instance (the topic opened there: its ring and, over NATS, its subscription on the broker), per instance; *bytes/sub* the growth from there to all %d subscribers (%v after every one received a first message), per subscriber added.",
			n.bcast.subs, n.bcast.size, n.bcast.window, n.instances, n.bcast.duration, n.bcast.subs, n.bcast.settle)
	case "h2-memory":
		h := c.h2
		return fmt.Sprintf("%d WebSockets over TLS, each exchanging one %d B message and then idle: each on an HTTP/1.1 connection of its own, then, on a fresh server, all as streams of one HTTP/2 connection (RFC 8441 extended CONNECT through golang.org/x/net/http2's Transport; the server runs with GODEBUG=http2xconnect=1). Both dialled with pollws's wsconn.Dial. Growth of the server's resident memory per WebSocket, %v after the last one and after debug.FreeOSMemory, as in idle; *TCP conns HTTP/2* counts the connections the streams went over.",
			h.n, h.size, h.settle)
	}
	return ""
}

// million is what one million idle connections would cost, on paper,
// from the idle-max figures.
func (r *results) million() string {
	var parts []string
	for _, s := range r.Servers {
		settled, ok1 := r.get("idle-max", s, 1)
		freed, ok2 := r.get("idle-max", s, 2)
		if ok1 && ok2 {
			parts = append(parts, fmt.Sprintf("%s %.2f GiB (%.2f GiB freed)", s, settled*1e6/(1<<30), freed*1e6/(1<<30)))
		}
	}
	return "One million idle connections, on paper from the figures above (user-space memory only; the kernel adds its socket buffers and structures, and a process would need a descriptor limit above a million and about 36 source addresses to dial them over loopback): " + strings.Join(parts, "; ") + ".\n\n"
}

// targets renders the DESIGN.md performance targets against this run.
func (r *results) targets() string {
	var b strings.Builder
	b.WriteString("### Targets\n\n| target | measured | met |\n|---|---:|:---:|\n")
	row := func(name, measured string, ok, known bool) {
		switch {
		case !known:
			fmt.Fprintf(&b, "| %s | not measured | – |\n", name)
		case ok:
			fmt.Fprintf(&b, "| %s | %s | yes |\n", name, measured)
		default:
			fmt.Fprintf(&b, "| %s | %s | no |\n", name, measured)
		}
	}
	vsPeer := func(sc string, fig int, name string, limit float64, atMost bool) {
		peer, ok := r.bestPeer(sc, fig)
		v, known := r.ratio(sc, fig, "pollws", peer)
		known = known && ok
		met := v >= limit
		if atMost {
			met = v <= limit
		}
		if ok {
			name += " (" + peer + ")"
		}
		row(name, fmt.Sprintf("%.2f×", v), met, known)
	}
	vsPeer("echo", 1, "echo: pollws server CPU/msg ≤ 0.7× the best peer's", 0.7, true)
	v, ok := r.ratio("echo", 1, "pollws", "rawtcp")
	row("echo: pollws server CPU/msg ≤ 2× raw TCP's", fmt.Sprintf("%.2f×", v), v <= 2, ok)
	vsPeer("echo", 0, "echo: pollws msgs/s ≥ 1.3× the best peer's", 1.3, false)
	vsPeer("echo-tls", 1, "echo over TLS: pollws server CPU/msg ≤ 0.7× the best peer's", 0.7, true)
	vsPeer("echo-many", 1, fmt.Sprintf("echo, %d connections × %d: pollws server CPU/msg ≤ 0.7× the best peer's", r.cfg.many.conns, r.cfg.many.window), 0.7, true)
	v, ok = r.ratio("latency", 2, "pollws", "gobwas")
	row("latency: pollws p99 ≤ gobwas's", fmt.Sprintf("%.2f×", v), v <= 1, ok)
	x, ok := r.get("idle", "pollws", 0)
	row(fmt.Sprintf("idle: pollws ≤ 1.5 KiB per connection at %d (settled)", r.cfg.idle.n), humanize(x), x <= 1536, ok)
	v, ok = r.ratio("idle-tls", 0, "pollws", "gorilla")
	row("idle over TLS: pollws ≤ 0.5× gorilla", fmt.Sprintf("%.2f×", v), v <= 0.5, ok)
	x, ok = r.get("idle-max", "pollws", 0)
	row(fmt.Sprintf("idle: pollws holds %d connections in one process", r.cfg.idleMax.n), count(x), int(x) >= r.cfg.idleMax.n, ok)
	v, ok = r.ratio("broadcast", 0, "pollws", "gorilla")
	row("broadcast: pollws ≥ 3× gorilla's hub", fmt.Sprintf("%.2f×", v), v >= 3, ok)
	x, ok1 := r.get("broadcast", "pollws", 1)
	y, ok2 := r.get("broadcast", "pollws", 0)
	row(fmt.Sprintf("broadcast: %d stalled subscribers keep ≥ 0.9× of the rate", r.cfg.bcast.stalled), fmt.Sprintf("%.2f×", x/y), x/y >= 0.9, ok1 && ok2 && y > 0)
	vsPeer("echo-deflate", 1, "echo with permessage-deflate: pollws server CPU/msg ≤ 0.7× the best compressing peer's", 0.7, true)
	v, ok = r.within("broadcast-nats", "pollws", within{1, 0})
	row(fmt.Sprintf("broadcast over NATS: %d instances ≥ 0.5× one instance's deliveries/s", r.cfg.nats.instances), fmt.Sprintf("%.2f×", v), v >= 0.5, ok)
	v, ok = r.within("broadcast-nats", "pollws", within{3, 2})
	row(fmt.Sprintf("broadcast over NATS: memory per subscriber on %d instances within 10 %% of one instance's", r.cfg.nats.instances), fmt.Sprintf("%.2f×", v), math.Abs(v-1) <= 0.1, ok)
	v, ok = r.within("h2-memory", "pollws", within{2, 0})
	if ok {
		fmt.Fprintf(&b, "| %d WebSockets on one HTTP/2 connection: memory per WebSocket ÷ over HTTP/1.1 (no target set) | %.2f× | – |\n", r.cfg.h2.n, v)
	} else {
		fmt.Fprintf(&b, "| %d WebSockets on one HTTP/2 connection: memory per WebSocket ÷ over HTTP/1.1 (no target set) | not measured | – |\n", r.cfg.h2.n)
	}
	return b.String()
}

func humanize(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.2fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func micros(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func count(v float64) string { return fmt.Sprintf("%d", int(math.Round(v))) }

// write saves results.json, results.md and the SVG bar charts into dir.
func (r *results) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), j, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.markdown()), 0o644); err != nil {
		return err
	}
	for sc, byServer := range r.Median {
		for k, i := range specs[sc].charts {
			name := sc + ".svg"
			if k > 0 {
				name = sc + "-" + slug(specs[sc].figures[i].name) + ".svg"
			}
			if err := r.chart(filepath.Join(dir, name), sc, i, byServer); err != nil {
				return err
			}
		}
	}
	return nil
}

// slug is name with µ spelt u and every run of characters other than
// letters and digits replaced by one '-'.
func slug(name string) string {
	f := strings.FieldsFunc(strings.ReplaceAll(name, "µ", "u"), func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9')
	})
	return strings.Join(f, "-")
}

func (r *results) chart(path, scenario string, fig int, byServer map[string][]float64) error {
	var names []string
	var vals plotter.Values
	for _, s := range r.Servers {
		if m, ok := byServer[s]; ok && fig < len(m) {
			names = append(names, s)
			vals = append(vals, m[fig])
		}
	}
	p := plot.New()
	p.Title.Text = scenario
	p.Y.Label.Text = specs[scenario].figures[fig].name
	bars, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		return err
	}
	p.Add(bars)
	p.NominalX(names...)
	return p.Save(6*vg.Inch, 3.5*vg.Inch, path)
}
