package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for concurrent use, which tells a
// waiter when it grows.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // made on first use
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.changedLocked() <- struct{}{}:
	default:
	}
	return b.b.Write(p)
}

func (b *syncBuffer) changedLocked() chan struct{} {
	if b.changed == nil {
		b.changed = make(chan struct{}, 1)
	}
	return b.changed
}

// waitFor waits until the output holds s and returns it; it fails the
// test if a run reports its end on done first (one fewer is running), or
// after 20 seconds.
func (b *syncBuffer) waitFor(t *testing.T, s string, done <-chan int, running *int) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		b.mu.Lock()
		out, changed := b.b.String(), b.changedLocked()
		b.mu.Unlock()
		if strings.Contains(out, s) {
			return out
		}
		select {
		case <-changed:
		case code := <-done:
			*running--
			t.Fatalf("run returned %d before it printed %q: %q", code, s, out)
		case <-timeout:
			t.Fatalf("no %q printed within 20s: %q", s, out)
		}
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestFlags(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	want := config{addr: "127.0.0.1:8081", capacity: 1 << 20, maxBehind: 3, drain: 5 * time.Second}
	if err != nil || cfg != want {
		t.Errorf("defaults: %+v, %v; want %+v", cfg, err, want)
	}
	cfg, err = parseFlags(strings.Fields("-addr :0 -nats nats://h:1 -max-behind -1"), io.Discard)
	if err != nil || cfg.natsURL != "nats://h:1" || hubOptions(cfg, nil, nil).KickAfter != -1 || hubOptions(want, nil, nil).KickAfter != 4 {
		t.Errorf("parsed %+v, %v", cfg, err)
	}
	if o := hubOptions(cfg, nil, nil); o.Bus != nil {
		t.Error("an instance without a broker has a bus")
	}
	for _, args := range []string{"-nats a -nats-embedded b", "-capacity 10", "-drain 0", "extra", "-nope"} {
		var stderr bytes.Buffer
		if _, err := parseFlags(strings.Fields(args), &stderr); err == nil || stderr.Len() == 0 {
			t.Errorf("parseFlags(%q) = %v, stderr %q; want an error, explained", args, err, stderr.String())
		}
	}
	if code := run(context.Background(), []string{"-h"}, io.Discard, io.Discard); code != 0 {
		t.Errorf("run -h = %d, want 0", code)
	}
	if code := run(context.Background(), []string{"-drain", "0"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("run with a bad flag = %d, want 2", code)
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"-nats", "nats://127.0.0.1:1"}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "127.0.0.1:1") {
		t.Errorf("run with no broker = %d, %q; want 1 and why", code, stderr.String())
	}
}

// run with -nats-embedded starts a broker, joins it, serves until its
// context ends, then drains and returns 0; a second instance joins the
// first's broker.
func TestRunEmbedded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	var out1, out2 syncBuffer
	done := make(chan int, 2)
	running := 0
	t.Cleanup(func() {
		// A failed test still ends its instances before goleak looks.
		cancel()
		cancel2()
		for ; running > 0; running-- {
			<-done
		}
	})
	running++
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-nats-embedded", "127.0.0.1:0"}, &out1, io.Discard)
	}()
	const started = "start more instances with -nats "
	_, rest, _ := strings.Cut(out1.waitFor(t, started, done, &running), started)
	url, _, _ := strings.Cut(rest, "\n")
	running++
	go func() { done <- run(ctx2, []string{"-addr", "127.0.0.1:0", "-nats", url}, &out2, io.Discard) }()
	out2.waitFor(t, "serving on", done, &running)
	cancel2()
	running--
	if code := <-done; code != 0 || !strings.Contains(out2.String(), "joined the NATS broker at "+url) {
		t.Errorf("second instance: run = %d, output %q", code, out2.String())
	}
	cancel()
	running--
	if code := <-done; code != 0 || !strings.Contains(out1.String(), "drained: clean=0 forced=0") {
		t.Errorf("first instance: run = %d, output %q", code, out1.String())
	}
}
