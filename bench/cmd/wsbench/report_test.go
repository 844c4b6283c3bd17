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
