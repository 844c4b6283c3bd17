package wsconn

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/frame"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// TestSteadyStateAllocs: once warm, writing, flushing and reading
// messages allocate nothing. The race detector allocates on its own, so
// the test means something only without it (scripts/test runs it so).
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s, cl := wstest.TCPPair(t, false)
	c := Server(s, &Options{PingInterval: -1, IdleTimeout: -1})
	defer c.Close()
	go io.Copy(io.Discard, cl) // the client reads what the server writes

	msg := bytes.Repeat([]byte("m"), 128)
	// What the client sends: masked frames the server reads, many at once.
	var in bytes.Buffer
	for range 64 {
		h := frame.Header{Fin: true, Op: frame.OpBinary, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: int64(len(msg))}
		var hb [frame.MaxHeader]byte
		in.Write(hb[:frame.Put(&hb, &h)])
		p := bytes.Clone(msg)
		frame.Mask(p, h.Mask, 0)
		in.Write(p)
	}
	batch := in.Bytes()
	round := func() {
		if _, err := cl.Write(batch); err != nil {
			t.Fatal(err)
		}
		for range 64 {
			m, err := c.ReadMessage(bgCtx)
			if err != nil {
				t.Fatal(err)
			}
			if r, err := c.PollWriteMessage(nil, m.Type, m.Data); err != nil || !r.Ready {
				t.Fatalf("PollWriteMessage = %+v, %v", r, err)
			}
		}
		if r, err := c.PollFlush(nil); err != nil || !r.Ready {
			t.Fatalf("PollFlush = %+v, %v", r, err)
		}
	}
	round() // warm the pools
	if allocs := testing.AllocsPerRun(20, round); allocs != 0 {
		t.Errorf("reading, echoing and flushing 64 messages: %v allocations, want 0", allocs)
	}
}

// TestTLSSteadyStateAllocs: once warm, small messages written over TLS
// on a socket, staged and encrypted in records of up to 16 KiB, allocate
// nothing: the stage stays within its pooled buffer.
func TestTLSSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	server, client, _, _, err := wstest.NewTLSSocket(false)
	if err != nil {
		t.Fatal(err)
	}
	c := Server(server, &Options{PingInterval: -1, IdleTimeout: -1})
	defer c.Close()
	go io.Copy(io.Discard, client) // the client reads what the server writes

	msg := bytes.Repeat([]byte("m"), 100)
	round := func() {
		for range 400 { // about 40 KiB: the stage fills and is encrypted more than once
			for {
				r, err := c.PollWriteMessage(nil, Binary, msg)
				if err != nil {
					t.Fatal(err)
				}
				if r.Ready {
					break
				}
				if err := asyncio.Flush(bgCtx, c); err != nil { // room, the way a full queue makes it
					t.Fatal(err)
				}
			}
		}
		if err := asyncio.Flush(bgCtx, c); err != nil {
			t.Fatal(err)
		}
	}
	round() // warm the pools
	if allocs := testing.AllocsPerRun(20, round); allocs != 0 {
		t.Errorf("writing and flushing 400 messages over TLS: %v allocations, want 0", allocs)
	}
}

// TestConfigShared: connections with equal options share one config,
// found without an allocation, and the cache stays bounded when options
// differ per connection.
func TestConfigShared(t *testing.T) {
	o := &Options{BufferSize: 12345, PingInterval: 7 * time.Second}
	a, b := newConfig(o), newConfig(&Options{BufferSize: 12345, PingInterval: 7 * time.Second})
	if a != b {
		t.Fatal("equal options got two configs")
	}
	if n := testing.AllocsPerRun(100, func() { newConfig(o) }); n != 0 && !raceEnabled {
		t.Errorf("finding a known config allocates %v times", n)
	}
	for i := range 2 * maxConfigs {
		c := newConfig(&Options{BufferSize: 1 + i})
		if c.bufferSize != 1+i {
			t.Fatalf("options %d got a config of buffer size %d", i, c.bufferSize)
		}
	}
	configsMu.RLock()
	n := len(configs)
	configsMu.RUnlock()
	if n > maxConfigs {
		t.Fatalf("%d configs cached, at most %d wanted", n, maxConfigs)
	}
}
