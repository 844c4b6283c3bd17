package wsconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// A Conn is a sink for a Pump, through MessageSinkOf.
var _ TypedMessageWriter[MessageType] = (*Conn)(nil)

// pumpPair returns the server side of a connection over loopback TCP
// (TLS when useTLS is set) with the given buffer, and the client's end,
// which reads raw frames. The client's socket buffers are small, so that
// a client that does not read stalls the server soon.
func pumpPair(t *testing.T, useTLS bool, buffer int) (*Conn, net.Conn) {
	t.Helper()
	var s, c net.Conn
	if useTLS {
		ts, tc, _, _, err := wstest.NewTLS(true)
		if err != nil {
			t.Fatal(err)
		}
		s, c = ts, tc
	} else {
		ts, tc, err := wstest.NewTCP(true)
		if err != nil {
			t.Fatal(err)
		}
		s, c = ts, tc
	}
	t.Cleanup(func() { c.Close() })
	return Server(s, &Options{BufferSize: buffer}), c
}

// pumpPipe is pumpPair over net.Pipe, for tests in a synctest bubble.
func pumpPipe(t *testing.T, buffer int) (*Conn, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { b.Close() })
	return Server(a, &Options{BufferSize: buffer}), b
}

// pumpResult is what a client read: every message's type and payload,
// and how the stream ended.
type pumpResult struct {
	types []MessageType
	got   []string
	code  ws.StatusCode // of the server's close frame, 0 if none came
	err   error         // the read error that ended it, nil after a close frame
}

// pumpRead reads frames from c until the server's close frame, which it
// answers, counting each message in received.
func pumpRead(c net.Conn, received *atomic.Int64) <-chan pumpResult {
	res := make(chan pumpResult, 1)
	go func() {
		var r pumpResult
		for {
			f, err := ws.ReadFrame(c)
			if err != nil {
				r.err = err
				break
			}
			if f.Header.OpCode == ws.OpClose {
				r.code, _ = ws.ParseCloseFrameData(f.Payload)
				answer := ws.NewCloseFrame(f.Payload)
				ws.WriteFrame(c, ws.MaskFrameInPlace(answer))
				break
			}
			if f.Header.OpCode.IsData() {
				r.types = append(r.types, MessageType(f.Header.OpCode))
				r.got = append(r.got, string(f.Payload))
				if received != nil {
					received.Add(1)
				}
			}
		}
		res <- r
	}()
	return res
}

func (r pumpResult) check(t testing.TB, want []string, typ MessageType) {
	t.Helper()
	if r.err != nil || r.code != ws.StatusNormalClosure {
		t.Errorf("the client's read ended with close %d, %v; want close 1000", r.code, r.err)
	}
	if !slices.Equal(r.got, want) {
		t.Fatalf("the client read %d messages, want %d in order", len(r.got), len(want))
	}
	for i, got := range r.types {
		if got != typ {
			t.Fatalf("message %d of type %v, want %v", i, got, typ)
		}
	}
}

func pumpNoError(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func pumpCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pumpProducer gives total numbered messages of size bytes, as many per
// poll as the destination takes, and records every poll.
type pumpProducer struct {
	total, size int

	mu    sync.Mutex
	given int
	polls []pumpPoll
}

type pumpPoll struct {
	capacity int // -1: unknown
	finish   bool
}

func pumpMessage(i, size int) []byte {
	p := fmt.Appendf(nil, "m%06d", i)
	for len(p) < size {
		p = append(p, '.')
	}
	return p
}

func (p *pumpProducer) PollProduce(_ *asyncio.Task, dst *asyncio.Destination[[]byte], finish bool) (asyncio.Async[asyncio.StreamResult], error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, known := dst.Remaining()
	if !known {
		n = -1
	}
	p.polls = append(p.polls, pumpPoll{n, finish})
	for ; (!known || n > 0) && p.given < p.total; n-- {
		dst.Write(pumpMessage(p.given, p.size))
		p.given++
	}
	if p.given == p.total {
		return asyncio.Ready(asyncio.Dropped), nil
	}
	return asyncio.Ready(asyncio.Completed), nil
}

func (p *pumpProducer) stats() (given int, polls []pumpPoll) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.given, slices.Clone(p.polls)
}

// pumpWant returns the messages a pumpProducer gives, as strings.
func pumpWant(total, size int) []string {
	want := make([]string, total)
	for i := range want {
		want[i] = string(pumpMessage(i, size))
	}
	return want
}

func TestPumpDeliversInOrder(t *testing.T) {
	const total, size = 2000, 200
	for _, tc := range []struct {
		name string
		tls  bool
		typ  MessageType
	}{
		{"tcp/binary", false, Binary},
		{"tls/text", true, Text},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, client := pumpPair(t, tc.tls, 8<<10)
			defer w.Close()
			res := pumpRead(client, nil)
			prod := &pumpProducer{total: total, size: size}
			pump := NewPump(prod, MessageSinkOf(w, tc.typ), nil)
			ctx := pumpCtx(t)
			pumpNoError(t, pump.Run(ctx), "Run")
			if q := w.out.Buffered(); q != 0 {
				t.Errorf("Buffered %d after Run: the pump returned before the sink flushed", q)
			}
			pumpNoError(t, asyncio.Shutdown(ctx, w), "Shutdown")
			(<-res).check(t, pumpWant(total, size), tc.typ)
			if r, err := pump.Poll(nil); err != nil || !r.Ready {
				t.Errorf("Poll after the end = %+v, %v; want Ready", r, err)
			}
		})
	}
}

func TestPumpStalledClientStopsPulling(t *testing.T) {
	t.Run("pipe", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			const (
				total, size = 100, 100
				budget      = 1000
				batch       = 4
			)
			w, client := pumpPipe(t, budget) // the client does not read yet
			defer w.Close()
			prod := &pumpProducer{total: total, size: size}
			pump := NewPump(prod, MessageSinkOf(w, Binary), &PumpOptions{Batch: batch})
			ran := make(chan error, 1)
			go func() { ran <- pump.Run(context.Background()) }()

			synctest.Wait()
			given, polls := prod.stats()
			// The buffer holds about budget/size messages (frame headers
			// included), the pipe one being written; the pump holds the
			// rest of its last pull.
			if bound := budget/size + 1 + batch; given > bound || given < budget/(size+2) {
				t.Fatalf("producer gave %d messages to a stalled client, want %d to %d", given, budget/size, bound)
			}
			synctest.Wait()
			if again, pollsAgain := prod.stats(); again != given || len(pollsAgain) != len(polls) {
				t.Fatalf("producer polled while the client is stalled: %d messages in %d polls, then %d in %d", given, len(polls), again, len(pollsAgain))
			}

			read := pumpRead(client, nil)
			pumpNoError(t, <-ran, "Run")
			pumpNoError(t, asyncio.Shutdown(context.Background(), w), "Shutdown")
			(<-read).check(t, pumpWant(total, size), Binary)
		})
	})

	t.Run("tcp", func(t *testing.T) {
		const (
			total, size = 4000, 1 << 10
			budget      = 4 << 10
			batch       = 4
			// What may be in flight beyond the queue and the pump: the
			// server's send buffer, the client's receive buffer (the
			// kernel doubles both) and the client's read buffer, with a
			// margin of as much again for the kernel's accounting. The
			// producer would give 4000.
			inFlight = 2 * (2*wstest.SendBuffer + 2*wstest.RecvBuffer + 4096) / size
			bound    = budget/size + 1 + batch + inFlight
		)
		w, client := pumpPair(t, false, budget)
		defer w.Close()
		prod := &pumpProducer{total: total, size: size}
		pump := NewPump(prod, MessageSinkOf(w, Binary), &PumpOptions{Batch: batch})

		woken := make(chan struct{}, 1)
		task := asyncio.NewTask(func() {
			select {
			case woken <- struct{}{}:
			default:
			}
		})
		var received atomic.Int64
		poll := func() bool {
			t.Helper()
			r, err := pump.Poll(task)
			pumpNoError(t, err, "Poll")
			given, _ := prod.stats()
			if d := int64(given) - received.Load(); !r.Ready && d > bound {
				t.Fatalf("producer gave %d messages more than the client received, want at most %d", d, bound)
			}
			return r.Ready
		}
		if poll() { // the client does not read yet
			t.Fatal("pump finished with a stalled client")
		}

		res := pumpRead(client, &received)
		ctx := pumpCtx(t)
		for !poll() {
			select {
			case <-woken:
			case <-ctx.Done():
				t.Fatal("pump not woken")
			}
		}
		pumpNoError(t, asyncio.Shutdown(ctx, w), "Shutdown")
		(<-res).check(t, pumpWant(total, size), Binary)
	})
}

func TestPumpProbesFullSink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			total, size = 30, 100
			batch       = 10
			budget      = batch * (size + 2) // a batch of messages with their frame headers
		)
		w, client := pumpPipe(t, budget)
		defer w.Close()
		prod := &pumpProducer{total: total, size: size}
		pump := NewPump(prod, MessageSinkOf(w, Binary), &PumpOptions{Batch: batch})
		ran := make(chan error, 1)
		go func() { ran <- pump.Run(context.Background()) }()
		synctest.Wait()
		given, polls := prod.stats()
		// A pull, then a probe of the full sink: BlockOn's first poll has
		// no task, so the pump probes again with the one it waits on.
		want := []pumpPoll{{batch, false}, {0, false}, {0, false}}
		if given != batch || !slices.Equal(polls, want) {
			t.Fatalf("with a stalled client the producer gave %d messages in polls %+v, want %d in %+v", given, polls, batch, want)
		}
		read := pumpRead(client, nil)
		pumpNoError(t, <-ran, "Run")
		_, polls = prod.stats()
		for i, p := range polls {
			if p.capacity != 0 && p.capacity != batch {
				t.Errorf("poll %d asked for %d messages, want %d or a probe", i, p.capacity, batch)
			}
		}
		pumpNoError(t, asyncio.Shutdown(context.Background(), w), "Shutdown")
		(<-read).check(t, pumpWant(total, size), Binary)
	})
}

// pumpScript plays one scripted answer per poll, and fails when polled
// past its script.
type pumpScript struct {
	steps []pumpStep
	polls int
}

type pumpStep struct {
	write []string
	res   asyncio.Async[asyncio.StreamResult]
}

func (s *pumpScript) PollProduce(_ *asyncio.Task, dst *asyncio.Destination[[]byte], _ bool) (asyncio.Async[asyncio.StreamResult], error) {
	if s.polls == len(s.steps) {
		return asyncio.NotReady[asyncio.StreamResult](), errors.New("polled past the script")
	}
	st := s.steps[s.polls]
	s.polls++
	for _, m := range st.write {
		dst.Write([]byte(m))
	}
	return st.res, nil
}

func TestPumpProducerErrors(t *testing.T) {
	var (
		completed = asyncio.Ready(asyncio.Completed)
		cancelled = asyncio.Ready(asyncio.Cancelled)
		notReady  = asyncio.NotReady[asyncio.StreamResult]()
		first     = pumpStep{write: []string{"a", "b"}, res: completed}
	)
	for _, tc := range []struct {
		name string
		bad  pumpStep
	}{
		{"NotReady after writing", pumpStep{write: []string{"c"}, res: notReady}},
		{"Completed with no items", pumpStep{res: completed}},
		{"Cancelled without finish", pumpStep{res: cancelled}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, client := pumpPair(t, false, 0)
			defer w.Close()
			read := pumpRead(client, nil)
			prod := &pumpScript{steps: []pumpStep{first, tc.bad}}
			pump := NewPump(prod, MessageSinkOf(w, Binary), nil)
			ctx := pumpCtx(t)
			err := pump.Run(ctx)
			var pe *asyncio.ProducerError
			if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), "wsconn: pump: ") {
				t.Fatalf("Run with a producer that breaks rule G: %v, want a wrapped *asyncio.ProducerError", err)
			}
			for range 2 {
				if _, again := pump.Poll(nil); again != err {
					t.Fatalf("Poll after %v: %v, want the same error", err, again)
				}
			}
			if prod.polls != 2 {
				t.Errorf("producer polled %d times, want 2 (none after the error)", prod.polls)
			}
			pumpNoError(t, asyncio.Shutdown(ctx, w), "Shutdown")
			(<-read).check(t, []string{"a", "b"}, Binary)
		})
	}
}

// pumpIdle has nothing to give until it is asked to finish.
type pumpIdle struct {
	mu       sync.Mutex
	polls    int
	finished bool
}

func (p *pumpIdle) PollProduce(_ *asyncio.Task, _ *asyncio.Destination[[]byte], finish bool) (asyncio.Async[asyncio.StreamResult], error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.polls++
	if finish {
		p.finished = true
		return asyncio.Ready(asyncio.Cancelled), nil
	}
	return asyncio.NotReady[asyncio.StreamResult](), nil
}

func TestPumpFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, _ := pumpPipe(t, 0)
		defer w.Close()
		prod := &pumpIdle{}
		pump := NewPump(prod, MessageSinkOf(w, Binary), nil)
		ran := make(chan error, 1)
		go func() { ran <- pump.Run(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-ran:
			t.Fatalf("Run returned %v before Finish, with an idle producer", err)
		default:
		}
		pump.Finish()
		synctest.Wait() // no time passes: Finish wakes the pump, which ends at once
		select {
		case err := <-ran:
			pumpNoError(t, err, "Run after Finish")
		default:
			t.Fatal("Run still running after Finish")
		}
		prod.mu.Lock()
		defer prod.mu.Unlock()
		if !prod.finished || prod.polls != 3 {
			t.Errorf("producer polled %d times, finish seen %v; want 3 polls (without a task, with one, then finishing)", prod.polls, prod.finished)
		}
	})
}

func TestPumpFinishBeforeRun(t *testing.T) {
	w, client := pumpPair(t, false, 0)
	defer w.Close()
	pumpRead(client, nil)
	prod := &pumpProducer{total: 10, size: 10}
	pump := NewPump(prod, MessageSinkOf(w, Binary), nil)
	pump.Finish()
	pumpNoError(t, pump.Run(pumpCtx(t)), "Run")
	given, polls := prod.stats()
	if given != 10 || len(polls) != 1 || !polls[0].finish {
		t.Errorf("producer gave %d messages in polls %+v; want 10 in one finishing poll", given, polls)
	}
}
