package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/fanout"
	"github.com/pollws/pollws/wsconn"
)

func TestFlags(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{addr: "127.0.0.1:8081", rate: 100, size: 1024, slowRate: 20, maxBehind: 3, behindWindow: time.Minute,
		capacity: 1 << 20, writeBuffer: 64 << 10, sendBuffer: 128 << 10, writeTimeout: time.Minute, drain: 5 * time.Second, compress: true}
	if cfg != want {
		t.Errorf("defaults:\ngot  %+v\nwant %+v", cfg, want)
	}
	cfg, err = parseFlags(strings.Fields("-addr :0 -rate 5000 -size 64 -slow 3 -max-behind -1 -compress=false"), io.Discard)
	if err != nil || cfg.addr != ":0" || cfg.rate != 5000 || cfg.size != 64 || cfg.slow != 3 || cfg.kickAfter() != -1 || cfg.compress {
		t.Errorf("parsed %+v, %v", cfg, err)
	}
	for _, tc := range []struct {
		maxBehind, kickAfter int
	}{{0, 1}, {3, 4}, {-1, -1}, {-5, -1}} {
		if got := (config{maxBehind: tc.maxBehind}).kickAfter(); got != tc.kickAfter {
			t.Errorf("kickAfter for -max-behind %d = %d, want %d", tc.maxBehind, got, tc.kickAfter)
		}
	}
	for _, args := range []string{"-size 8", "-send-buffer -1", "-rate -1", "-slow-rate 0", "-capacity 100", "-drain 0", "-size 4096 -capacity 4096", "extra", "-nope"} {
		var stderr bytes.Buffer
		if _, err := parseFlags(strings.Fields(args), &stderr); err == nil || stderr.Len() == 0 {
			t.Errorf("parseFlags(%q) = %v, stderr %q; want an error, explained", args, err, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, io.Discard, &stderr); code != 0 || !strings.Contains(stderr.String(), "-max-behind") {
		t.Errorf("run -h = %d, usage %q", code, stderr.String())
	}
	if code := run(context.Background(), []string{"-size", "1"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("run with a bad flag = %d, want 2", code)
	}
}

// run serves until its context ends, then drains and returns 0.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-rate", "1000"}, &stdout, io.Discard) }()
	cancel()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(stdout.String(), "drained: clean=0 forced=0") {
			t.Errorf("run = %d, output %q", code, stdout.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return")
	}
}

func TestPageAndStats(t *testing.T) {
	ts := startServer(t, testConfig(t), 0, 0, nil)
	res, err := http.Get("http://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("/sub")) {
		t.Errorf("GET / = %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
	res, err = http.Get("http://" + ts.addr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st fanout.Stats
	err = json.NewDecoder(res.Body).Decode(&st)
	res.Body.Close()
	if err != nil || st.Capacity != 1<<20 {
		t.Errorf("GET /stats: %+v, %v", st, err)
	}
	res, err = http.Get("http://" + ts.addr + "/sub")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("GET /sub without an upgrade = %d, want 426", res.StatusCode)
	}
}

// What /pub receives reaches subscribers with its type; generated
// messages carry their number; the drain closes everyone with 1001.
func TestPublishAndDrain(t *testing.T) {
	cfg := testConfig(t)
	cfg.rate, cfg.size = 200, 64
	ts := startServer(t, cfg, 0, 0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := wsconn.Dial(ctx, "ws://"+ts.addr+"/sub", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ts.waitSubscribed(t, 1)
	pub, err := wsconn.Dial(ctx, "ws://"+ts.addr+"/pub", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if _, err := pub.PollWriteMessage(nil, wsconn.Text, []byte("hello, everyone")); err != nil {
		t.Fatal(err)
	}
	pubDone := make(chan error, 1)
	go func() { // flushes the message, then sees the drain's close
		_, err := pub.ReadMessage(ctx)
		pubDone <- err
	}()
	generated := 0
	for {
		m, err := sub.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := m.Data
		if m.Type == wsconn.Text {
			if string(p) != "hello, everyone" {
				t.Fatalf("text message %q", p)
			}
			break
		}
		if len(p) != cfg.size {
			t.Fatalf("generated message of %d bytes, want %d", len(p), cfg.size)
		}
		generated++
	}

	drained := make(chan error, 1)
	go func() { drained <- ts.shutdown(t) }()
	var err2 error
	for err2 == nil {
		_, err2 = sub.ReadMessage(ctx)
	}
	var ce *wsconn.CloseError
	if !errors.As(err2, &ce) || ce.Code != wsconn.StatusGoingAway {
		t.Errorf("subscriber's read ended with %v, want close 1001", err2)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if err := <-pubDone; !errors.As(err, &ce) || ce.Code != wsconn.StatusGoingAway {
		t.Errorf("publisher's read ended with %v, want close 1001", err)
	}
	if out := ts.out.String(); !strings.Contains(out, "drained: clean=2 forced=0") {
		t.Errorf("output %q, want a clean drain of 2 connections", out)
	}
	t.Logf("%d generated messages, then the published text, then close 1001", generated)
}

// events is a log handler that hands over the records with a message.
type events struct {
	slog.Handler
	msg string
	c   chan slog.Record
}

func (e events) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == e.msg {
		select {
		case e.c <- r:
		default:
		}
	}
	return e.Handler.Handle(ctx, r)
}

func (e events) WithAttrs(as []slog.Attr) slog.Handler {
	return events{e.Handler.WithAttrs(as), e.msg, e.c}
}

// A simulated slow subscriber falls behind a fast stream and is
// disconnected with 1008.
func TestSlowSubscriberIsDisconnected(t *testing.T) {
	cfg := testConfig(t)
	cfg.rate, cfg.size = 20000, 1024
	cfg.slow, cfg.slowRate = 1, 200
	cfg.capacity, cfg.writeBuffer, cfg.maxBehind = 64<<10, 16<<10, 1
	ev := events{slog.NewTextHandler(io.Discard, nil), "disconnected by the server", make(chan slog.Record, 1)}
	ts := startServer(t, cfg, 0, 0, ev)
	var r slog.Record
	select {
	case r = <-ev.c:
	case <-time.After(30 * time.Second):
		t.Fatalf("the slow subscriber was not disconnected; hub stats %+v", ts.hub.Stats())
	}
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	if attrs["code"] != "1008" {
		t.Errorf("slow subscriber disconnected with %v, want code 1008", attrs)
	}
	if st := ts.hub.Stats(); st.Kicked == 0 || st.Overtakes < 2 {
		t.Errorf("hub stats %+v, want a subscriber kicked after 2 overtakes", st)
	}
	t.Logf("slow subscriber disconnected: %v", attrs)
}

// /sub and /pub name a topic with ?topic=: its subscribers get what is
// published on it, and not the generator's topic.
func TestTopics(t *testing.T) {
	cfg := testConfig(t)
	cfg.rate = 500 // on "live", which the subscriber below must not see
	ts := startServer(t, cfg, 0, 0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := wsconn.Dial(ctx, "ws://"+ts.addr+"/sub?topic=room%201", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ts.waitSubscribed(t, 1)
	pub, err := wsconn.Dial(ctx, "ws://"+ts.addr+"/pub?topic=room%201", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, msg := range []string{"one", "two"} {
		if _, err := pub.PollWriteMessage(nil, wsconn.Text, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	if err := asyncio.Flush(ctx, pub); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "two"} {
		m, err := sub.ReadMessage(ctx)
		if err != nil || m.Type != wsconn.Text || string(m.Data) != want {
			t.Fatalf("read %v %q, %v; want text %q", m.Type, m.Data, err, want)
		}
	}
}
