package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/fanout"
	"github.com/pollws/pollws/wsconn"
)

// payload returns the test's message seq: its number, then filler that
// depends on it.
func payload(seq uint64, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint64(p, seq)
	for i := 8; i < len(p); i++ {
		p[i] = byte(seq*7) + byte(i)
	}
	return p
}

// heapInuse returns the bytes of heap in use once garbage is collected.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC() // and what the first one left in sync.Pool victim caches
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// With 1,000 subscribers of which 10 never read, the 990 others receive
// every message, in order, while the publisher never waits for the 10;
// the server's memory stays flat however far the 10 fall behind; and when
// the 10 read again they are told exactly what they missed.
func TestStalledSubscribersDoNotHoldBackTheOthers(t *testing.T) {
	const (
		subs     = 1000
		stalled  = 10
		readers  = subs - stalled
		messages = 200  // to every subscriber, the readers checking each
		more     = 5000 // then to the stalled ones alone
		size     = 1 << 10
		// The publisher runs at most window messages ahead of the slowest
		// reading subscriber: 48 KiB, within the hub's 64 KiB, so a
		// reader is never overtaken. The stalled ones are far behind.
		window   = 48
		capacity = 64 << 10
		writeBuf = 16 << 10 // each subscriber's connection buffer
		sockBuf  = 4 << 10  // socket buffers of the stalled subscribers
	)
	cfg := testConfig(t)
	cfg.capacity, cfg.writeBuffer, cfg.maxBehind = capacity, writeBuf, -1
	cfg.sendBuffer = 0                 // the test's listener sets the stalled ones'
	cfg.writeTimeout = 5 * time.Minute // the stalled ones must not be dropped
	ts := startServer(t, cfg, stalled, sockBuf, nil)

	// The stalled subscribers connect first: the listener gives their
	// server side a small send buffer.
	var stuck, reading []*websocket.Conn
	for range stalled {
		stuck = append(stuck, ts.dial(t, "/sub", sockBuf))
	}
	for range readers {
		reading = append(reading, ts.dial(t, "/sub", 0))
	}
	ts.waitSubscribed(t, subs)
	pub := ts.dial(t, "/pub", 0)

	// reached[seq] closes once every reading subscriber has message seq.
	var counts [messages + 1]atomic.Int32
	var reached [messages + 1]chan struct{}
	for i := range reached {
		reached[i] = make(chan struct{})
	}
	errc := make(chan error, readers)
	var wg sync.WaitGroup
	for i, c := range reading {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			for seq := uint64(1); seq <= messages; seq++ {
				typ, p, err := c.ReadMessage()
				switch {
				case err != nil:
					errc <- fmt.Errorf("subscriber %d, message %d: %w", i, seq, err)
					return
				case typ != websocket.BinaryMessage || !bytes.Equal(p, payload(seq, size)):
					errc <- fmt.Errorf("subscriber %d: message %d is %d bytes of type %d starting %x, want seq %d", i, seq, len(p), typ, p[:min(len(p), 8)], seq)
					return
				}
				if counts[seq].Add(1) == readers {
					close(reached[seq])
				}
			}
		})
	}

	heap0 := heapInuse()
	start := time.Now()
	for seq := uint64(1); seq <= messages; seq++ {
		if seq > window {
			select {
			case <-reached[seq-window]:
			case err := <-errc:
				t.Fatal(err)
			case <-time.After(60 * time.Second):
				t.Fatalf("readers did not get message %d in time", seq-window)
			}
		}
		if err := pub.WriteMessage(websocket.BinaryMessage, payload(seq, size)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	heap1 := heapInuse()
	st := ts.hub.Stats()

	// Every reading subscriber received every message, checked above in
	// order and byte for byte; the hub handed each stalled one only what
	// its connection could hold.
	perStalled := (st.Delivered - readers*messages) / stalled
	t.Logf("%d subscribers: %d readers got all %d messages of %d bytes (%d deliveries) in %v; the %d stalled ones were handed %d messages each",
		subs, readers, messages, size, readers*messages, elapsed.Round(time.Millisecond), stalled, perStalled)
	if st.Published != messages || st.Delivered < readers*messages || perStalled >= messages {
		t.Errorf("hub stats %+v: want %d published, at least %d delivered, stalled subscribers stuck", st, messages, readers*messages)
	}

	// What the server holds grew by at most the hub's capacity and each
	// stalled subscriber's connection buffer and lent message, doubled
	// for the allocator's size classes, plus what the runtime keeps for
	// the goroutines that waited on full sockets meanwhile (their
	// descriptors are never freed): 1 KiB a connection.
	bound1 := int64(2*(capacity+stalled*(writeBuf+2*size)) + subs<<10)
	growth1 := int64(heap1) - int64(heap0)
	t.Logf("heap in use: %d KiB before, %d KiB after %d messages (%+d KiB, bound %d KiB); subscribers' connections hold %d KiB unsent",
		heap0>>10, heap1>>10, messages, growth1>>10, bound1>>10, st.Buffered>>10)
	if growth1 > bound1 {
		t.Errorf("heap in use grew by %d bytes, more than %d", growth1, bound1)
	}
	if max := int64(stalled * (writeBuf + size)); st.Buffered > max {
		t.Errorf("subscribers' connections hold %d bytes unsent, more than %d", st.Buffered, max)
	}

	// The readers leave; many more messages go to the stalled ones alone.
	// A server that queued each subscriber's backlog would now hold
	// stalled*more*size = 50 MB; this one holds what it held.
	for _, c := range reading {
		c.Close()
	}
	ts.waitLeft(t, readers)
	heap2 := heapInuse()
	for seq := uint64(messages + 1); seq <= messages+more; seq++ {
		if err := ts.hub.Publish(defaultTopic, wsconn.Binary, payload(seq, size)); err != nil {
			t.Fatal(err)
		}
	}
	heap3 := heapInuse()
	const bound3 = 512 << 10 // noise: 1% of what queues would hold
	growth3 := int64(heap3) - int64(heap2)
	t.Logf("heap in use: %d KiB before %d more messages (%d KiB) to the %d stalled subscribers, %d KiB after (%+d KiB, bound %d KiB; queues per subscriber would hold %d KiB more)",
		heap2>>10, more, more*size>>10, stalled, heap3>>10, growth3>>10, bound3>>10, stalled*more*size>>10)
	if growth3 > bound3 {
		t.Errorf("heap in use grew by %d bytes, more than %d", growth3, bound3)
	}

	// The stalled subscribers read now: each gets the messages it was
	// handed, a notice of what it missed, and the rest in order.
	const total = messages + more
	type tally struct {
		got, missed uint64
		notices     int
		err         error
	}
	tallies := make(chan tally, stalled)
	for _, c := range stuck {
		// A receive window smaller than the loopback's MSS opens in steps
		// that TCP's zero-window probes take up to seconds to see.
		c.NetConn().(*net.TCPConn).SetReadBuffer(256 << 10)
		go func() {
			var tl tally
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			want := uint64(1)
			for want <= total {
				typ, p, err := c.ReadMessage()
				if err != nil {
					tl.err = fmt.Errorf("at message %d: %w", want, err)
					break
				}
				if typ == websocket.TextMessage {
					var n fanout.Notice
					if err := json.Unmarshal(p, &n); err != nil || n.Type != "missed" || n.Frames == 0 || n.Bytes != n.Frames*size {
						tl.err = fmt.Errorf("at message %d: text %q is not a notice of missed messages", want, p)
						break
					}
					tl.missed += n.Frames
					tl.notices++
					want += n.Frames
					continue
				}
				if !bytes.Equal(p, payload(want, size)) {
					tl.err = fmt.Errorf("got message %d, want %d", binary.BigEndian.Uint64(p), want)
					break
				}
				tl.got++
				want++
			}
			tallies <- tl
		}()
	}
	for range stalled {
		tl := <-tallies
		switch {
		case tl.err != nil:
			t.Errorf("stalled subscriber: %v", tl.err)
		case tl.missed == 0 || tl.got+tl.missed != total:
			t.Errorf("stalled subscriber: received %d, told of %d missed; want some missed, %d in all", tl.got, tl.missed, total)
		default:
			t.Logf("stalled subscriber: received %d of %d messages, told in %d notice(s) it missed the other %d", tl.got, total, tl.notices, tl.missed)
		}
	}
}
