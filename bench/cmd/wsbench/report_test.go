package main

import (
	"math"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestChooseRate(t *testing.T) {
	peaks := map[string]float64{"pollws": 1e6, "gobwas": 8e5, "coder": 2e5}
	cfg := latencyConfig{ref: []string{"pollws", "gobwas"}, load: 0.5}
	if r, how := chooseRate(cfg, peaks); r != 4e5 || !strings.Contains(how, "gobwas") {
		t.Errorf("rate %v (%s), want half of gobwas's 800k", r, how)
	}
	cfg.ref = []string{"nbio"} // not calibrated: the slowest of all
	if r, how := chooseRate(cfg, peaks); r != 1e5 || !strings.Contains(how, "coder") {
		t.Errorf("rate %v (%s), want half of coder's 200k", r, how)
	}
	cfg.rate = 12345
	if r, _ := chooseRate(cfg, peaks); r != 12345 {
		t.Errorf("rate %v, want the fixed 12345", r)
	}
}

func TestRatiosAndBestPeer(t *testing.T) {
	r := newResults(config{rounds: 3, scenarios: []string{"echo"}, servers: []string{"gobwas", "gorilla", "pollws", "rawtcp"}})
	// msgs/s, server µs/msg, client µs/msg per round
	for _, round := range [][4][3]float64{
		{{100, 1.0, 0.5}, {50, 3.0, 0.5}, {120, 0.8, 0.5}, {200, 0.5, 0.5}},
		{{80, 1.0, 0.5}, {60, 2.0, 0.5}, {40, 0.5, 0.5}, {150, 0.4, 0.5}},
		{{90, 2.0, 0.5}, {40, 4.0, 0.5}, {99, 1.0, 0.5}, {180, 0.5, 0.5}},
	} {
		for i, s := range r.Servers {
			r.add("echo", s, round[i][:]...)
		}
	}
	if p, _ := r.bestPeer("echo", 0); p != "gobwas" {
		t.Errorf("best peer by msgs/s: %s, want gobwas (pollws and rawtcp are no peers)", p)
	}
	if p, _ := r.bestPeer("echo", 1); p != "gobwas" {
		t.Errorf("best peer by CPU: %s, want gobwas, the lowest", p)
	}
	// Within rounds pollws/gobwas is 1.2, 0.5, 1.1: the median is 1.1,
	// where the ratio of the medians would be 99/90.
	if v, ok := r.ratio("echo", 0, "pollws", "gobwas"); !ok || math.Abs(v-1.1) > 1e-9 {
		t.Errorf("ratio %v, %v; want the median of the rounds' ratios, 1.1", v, ok)
	}
	md := r.markdown()
	for _, want := range []string{"| msgs/s ÷ gobwas |", "server µs/msg ÷ rawtcp", "| pollws | 99 | 0.80 | 0.50 | 1.10× |"} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
}

func TestSlug(t *testing.T) {
	if got := slug("server µs/msg"); got != "server-us-msg" {
		t.Errorf("slug: %q", got)
	}
}

func TestWithinColumnsAndTargets(t *testing.T) {
	cfg := config{rounds: 3, scenarios: []string{"broadcast-nats", "h2-memory"}, servers: []string{"gorilla", "pollws"}}
	cfg.nats.instances, cfg.h2.n = 3, 1000
	r := newResults(cfg)
	// deliveries/s, bytes/sub and topic bytes/instance, alone and over NATS
	for _, round := range [][6]float64{
		{100, 60, 3000, 3200, 4000, 4300},
		{100, 40, 3000, 3600, 4000, 4800},
		{100, 55, 3000, 3150, 4000, 4200},
	} {
		r.add("broadcast-nats", "pollws", round[:]...)
		r.add("h2-memory", "pollws", 5000, 2000, 2500, 1500, 1)
	}
	// Within rounds over/alone is 0.6, 0.4, 0.55: the median is 0.55; the
	// memory per subscriber 1.067, 1.2, 1.05: 1.067.
	if v, ok := r.within("broadcast-nats", "pollws", within{1, 0}); !ok || math.Abs(v-0.55) > 1e-9 {
		t.Errorf("deliveries over NATS ÷ alone: %v, %v; want 0.55", v, ok)
	}
	if _, ok := r.within("broadcast-nats", "gorilla", within{1, 0}); ok {
		t.Error("a ratio for a server that did not run")
	}
	md := r.markdown()
	for _, want := range []string{
		"| deliveries/s over NATS ÷ deliveries/s alone |",
		"| pollws | 100 | 55 | 3.00k | 3.20k | 4.00k | 4.30k | 0.55× | 1.07× | 1.07× |",
		"| broadcast over NATS: 3 instances ≥ 0.5× one instance's deliveries/s | 0.55× | yes |",
		"| broadcast over NATS: memory per subscriber on 3 instances within 10 % of one instance's | 1.07× | yes |",
		"| 1000 WebSockets on one HTTP/2 connection: memory per WebSocket ÷ over HTTP/1.1 (no target set) | 0.50× | – |",
		"| echo with permessage-deflate: pollws server CPU/msg ≤ 0.7× the best compressing peer's | not measured | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
}

func TestDeflateTargetAgainstTheBestCompressingPeer(t *testing.T) {
	r := newResults(config{rounds: 1, scenarios: []string{"echo-deflate"}, servers: []string{"gobwas", "gorilla", "pollws"}})
	r.add("echo-deflate", "gobwas", 30000, 20, 15, 491, 528, 70000, 75000)
	r.add("echo-deflate", "gorilla", 15000, 50, 15, 491, 518, 87000, 80000)
	r.add("echo-deflate", "pollws", 40000, 13, 15, 491, 528, 57000, 68000)
	want := "| echo with permessage-deflate: pollws server CPU/msg ≤ 0.7× the best compressing peer's (gobwas) | 0.65× | yes |"
	if md := r.markdown(); !strings.Contains(md, want) {
		t.Errorf("the report lacks %q:\n%s", want, md)
	}
}

func TestNotesOnServersThatTakeNoPart(t *testing.T) {
	r := newResults(config{scenarios: []string{"echo-deflate", "h2-memory"}, servers: []string{"gobwas", "pollws", "pollws-gorilla", "rawtcp"}})
	r.notePartakers()
	notes := strings.Join(r.Notes["echo-deflate"], "\n")
	for _, s := range []string{"pollws-gorilla: not run", "rawtcp: not run"} {
		if !strings.Contains(notes, s) {
			t.Errorf("echo-deflate's notes lack %q:\n%s", s, notes)
		}
	}
	if strings.Contains(notes, "gobwas: not run") {
		t.Errorf("a note says gobwas did not run:\n%s", notes)
	}
	if len(r.Notes["h2-memory"]) != 1 || len(r.Notes["broadcast-nats"]) != 0 {
		t.Errorf("notes %q: want one for h2-memory and none for a scenario not run", r.Notes)
	}
}

func TestWithGODEBUG(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"PATH=/bin"}, "GODEBUG=http2xconnect=1"},
		{[]string{"GODEBUG=gctrace=1", "PATH=/bin"}, "GODEBUG=gctrace=1,http2xconnect=1"},
		{[]string{"GODEBUG="}, "GODEBUG=http2xconnect=1"},
	} {
		got := withGODEBUG(tc.env, xconnect)
		n := 0
		for _, kv := range got {
			if strings.HasPrefix(kv, "GODEBUG=") {
				n++
				if kv != tc.want {
					t.Errorf("withGODEBUG(%q): %q, want %q", tc.env, kv, tc.want)
				}
			}
		}
		if n != 1 {
			t.Errorf("withGODEBUG(%q): %d GODEBUG variables, want 1", tc.env, n)
		}
	}
}
