package shutdown_test

import (
	"context"
	"testing"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
)

// BenchmarkClose is Close of a writer with nothing pending: one poll and
// no wait. "new" counts a new Pipe per Close (its allocations are the
// Pipe's); "again" is Close alone, on a writer already shut down.
func BenchmarkClose(b *testing.B) {
	ctx := context.Background()
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w, _ := asyncio.Pipe(64)
			if err := shutdown.Close(ctx, w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("again", func(b *testing.B) {
		w, _ := asyncio.Pipe(64)
		b.ReportAllocs()
		for b.Loop() {
			if err := shutdown.Close(ctx, w); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAddDone is one connection's life in a group, without and with
// expiry timers.
func BenchmarkAddDone(b *testing.B) {
	for _, bb := range []struct {
		name string
		o    *shutdown.GroupOptions
	}{
		{"plain", nil},
		{"lifetime+idle", &shutdown.GroupOptions{Lifetime: time.Hour, Idle: time.Minute}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			g := shutdown.NewGroup(bb.o)
			w, r := asyncio.Pipe(64)
			defer r.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				m, err := g.Add(ctx, w, nil)
				if err != nil {
					b.Fatal(err)
				}
				m.Done(nil)
			}
		})
	}
}

// BenchmarkTouch is the per-message cost of idle expiry.
func BenchmarkTouch(b *testing.B) {
	g := shutdown.NewGroup(&shutdown.GroupOptions{Idle: time.Minute})
	w, r := asyncio.Pipe(64)
	defer r.Close()
	m, err := g.Add(context.Background(), w, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Done(nil)
	b.ReportAllocs()
	for b.Loop() {
		m.Touch()
	}
}

// BenchmarkDrain drains 1000 connections with nothing pending, each a
// task on the group's executor.
func BenchmarkDrain(b *testing.B) {
	const n = 1000
	ws := make([]asyncio.AsyncWriter, n)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		g := shutdown.NewGroup(nil)
		for i := range ws {
			w, _ := asyncio.Pipe(64)
			ws[i] = w
			m, err := g.Add(ctx, w, nil)
			if err != nil {
				b.Fatal(err)
			}
			context.AfterFunc(m.Context(), func() { m.Done(nil) }) // a handler that ends when told
		}
		b.StartTimer()
		if rep := g.Drain(ctx); rep.Clean != n {
			b.Fatalf("Drain = %v", rep)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/conn")
}
