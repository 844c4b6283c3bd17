package main

import (
	"encoding/json"
	"fmt"
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
	Rounds  map[string]map[string][][]float64 `json:"rounds"`
	Median  map[string]map[string][]float64   `json:"median"`
	cfg     config
}

// figures names the values each scenario records, in order.
var figures = map[string][]string{
	"echo":         {"msgs/s", "p50 µs", "p99 µs"},
	"idle":         {"bytes/conn"},
	"broadcast":    {"deliveries/s", "deliveries/s with stalled", "server RSS with stalled"},
	"backpressure": {"bytes/conn"},
}

func newResults(cfg config) *results {
	return &results{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: machine(),
		Config: map[string]any{
			"rounds": cfg.rounds, "echo_conns": cfg.echo.conns, "echo_size": cfg.echo.size,
			"echo_window": cfg.echo.window, "duration": cfg.echo.duration.String(),
			"idle_conns": cfg.idleConns, "broadcast_subs": cfg.bcast.subs,
			"broadcast_stalled": cfg.bcast.stalled, "broadcast_size": cfg.bcast.size,
			"backpressure_conns": cfg.bpConns, "backpressure_size": cfg.bpSize,
		},
		Servers: cfg.servers,
		Rounds:  map[string]map[string][][]float64{},
		Median:  map[string]map[string][]float64{},
		cfg:     cfg,
	}
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s %s/%s", cpu, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

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

// ratio is a/b as text, or "–" when either is missing.
func (r *results) ratio(scenario string, i int, a, b string) (float64, string) {
	x, ok1 := r.get(scenario, a, i)
	y, ok2 := r.get(scenario, b, i)
	if !ok1 || !ok2 || y == 0 {
		return 0, "–"
	}
	return x / y, fmt.Sprintf("%.2f×", x/y)
}

func (r *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s, loopback, servers interleaved within each of %d rounds; each figure is the median.\n\n", r.Date[:10], r.Machine, r.cfg.rounds)
	for _, sc := range r.cfg.scenarios {
		if r.Median[sc] == nil {
			continue
		}
		fmt.Fprintf(&b, "### %s\n\n| server | %s |\n|---|%s\n", sc, strings.Join(figures[sc], " | "), strings.Repeat("---:|", len(figures[sc])))
		for _, s := range r.Servers {
			m, ok := r.Median[sc][s]
			if !ok {
				continue
			}
			cells := make([]string, len(m))
			for i, v := range m {
				cells[i] = humanize(v)
			}
			fmt.Fprintf(&b, "| %s | %s |\n", s, strings.Join(cells, " | "))
		}
		b.WriteString("\n")
	}
	b.WriteString("### Targets\n\n| target | measured | met |\n|---|---:|:---:|\n")
	target := func(name string, v float64, txt string, ok bool) {
		if txt == "–" {
			fmt.Fprintf(&b, "| %s | not measured | – |\n", name)
			return
		}
		mark := "no"
		if ok {
			mark = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, txt, mark)
	}
	v, t := r.ratio("echo", 0, "pollws", "gorilla")
	target("echo: pollws ≥ 1.5× gorilla", v, t, v >= 1.5)
	best := "gobwas"
	if a, _ := r.get("echo", "coder", 0); a > func() float64 { x, _ := r.get("echo", "gobwas", 0); return x }() {
		best = "coder"
	}
	v, t = r.ratio("echo", 0, "pollws", best)
	target("echo: pollws ≥ 1.0× best of gobwas/coder ("+best+")", v, t, v >= 1.0)
	v, t = r.ratio("echo", 0, "pollws", "rawtcp")
	target("echo: pollws ≥ 0.7× raw TCP", v, t, v >= 0.7)
	v, t = r.ratio("idle", 0, "pollws", "gorilla")
	target("idle memory: pollws ≤ 0.5× gorilla", v, t, v <= 0.5)
	v, t = r.ratio("broadcast", 0, "pollws", "gorilla")
	target("broadcast: pollws ≥ 2× gorilla's hub", v, t, v >= 2)
	if x, ok := r.get("broadcast", "pollws", 1); ok {
		y, _ := r.get("broadcast", "pollws", 0)
		target(fmt.Sprintf("broadcast: %d stalled subscribers keep ≥ 0.9× of the rate", r.cfg.bcast.stalled), x/y, fmt.Sprintf("%.2f×", x/y), x/y >= 0.9)
	} else {
		target("broadcast: stalled subscribers do not slow the rest", 0, "–", false)
	}
	return b.String()
}

func humanize(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// write saves results.json, results.md and one SVG bar chart per scenario
// figure into dir.
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
		if err := r.chart(filepath.Join(dir, sc+".svg"), sc, figures[sc][0], byServer); err != nil {
			return err
		}
	}
	return nil
}

func (r *results) chart(path, scenario, unit string, byServer map[string][]float64) error {
	var names []string
	var vals plotter.Values
	for _, s := range r.Servers {
		if m, ok := byServer[s]; ok {
			names = append(names, s)
			vals = append(vals, m[0])
		}
	}
	p := plot.New()
	p.Title.Text = scenario
	p.Y.Label.Text = unit
	bars, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		return err
	}
	p.Add(bars)
	p.NominalX(names...)
	return p.Save(6*vg.Inch, 3.5*vg.Inch, path)
}
