package wsconn

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// TestCompressEchoOwnPeers: a compressing client and server of this
// package agree and echo messages of every size, compressed both ways.
func TestCompressEchoOwnPeers(t *testing.T) {
	for _, o := range []CompressionOptions{{}, {ContextTakeover: true}, {MaxWindowBits: 9}, {ContextTakeover: true, MaxWindowBits: 8, MinSize: -1}} {
		t.Run("", func(t *testing.T) {
			srv, cli := zPair(t, &UpgradeOptions{Options: zOn(o)}, &DialOptions{Options: zOn(o)})
			if srv.z == nil || cli.z == nil {
				t.Fatalf("compression not agreed: server %v, client %v", srv.z != nil, cli.z != nil)
			}
			if srv.z.params != cli.z.params {
				t.Fatalf("server agreed %+v, client %+v", srv.z.params, cli.z.params)
			}
			var wg sync.WaitGroup
			wg.Go(func() { zEcho(srv) })
			r := rand.New(rand.NewPCG(1, 2))
			for _, n := range []int{0, 16, 300, 1024, 70000, 131072} {
				for _, typ := range []MessageType{Text, Binary} {
					msg := zJSON(r, n)
					if typ == Binary {
						msg = zRandom(r, n)
					}
					if err := zWrite(cli, typ, msg); err != nil {
						t.Fatal(err)
					}
					m, err := cli.ReadMessage(context.Background())
					if err != nil || m.Type != typ || !bytes.Equal(m.Data, msg) {
						t.Fatalf("echo of %d bytes: %v %d bytes, %v", n, m.Type, len(m.Data), err)
					}
				}
			}
			cli.Close()
			wg.Wait()
			t.Logf("%+v: server read %d compressed, sent %d; client sent %d, read %d", srv.z.params, srv.z.read, srv.z.sent, cli.z.sent, cli.z.read)
		})
	}
}

// TestCompressBackpressure: a client compressing with context takeover
// writes to a server that does not read, until its writes answer
// NotReady many times over; then the server reads. Every message must
// inflate to what was written: a message compressed and then refused, or
// compressed twice, would break the window the peer inflates with.
func TestCompressBackpressure(t *testing.T) {
	s, cl, err := wstest.NewTCP(false)
	if err != nil {
		t.Fatal(err)
	}
	cl.SetWriteBuffer(wstest.SendBuffer)
	s.SetReadBuffer(wstest.RecvBuffer)
	o := zOn(CompressionOptions{ContextTakeover: true, MinSize: 100})
	o.BufferSize = 4096
	srv, cli, err := zPairOver(s, cl, &UpgradeOptions{Options: zOn(CompressionOptions{ContextTakeover: true})}, &DialOptions{Options: o})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	defer cli.Close()

	r := rand.New(rand.NewPCG(5, 6))
	var msgs [][]byte
	for i := range 3000 {
		n := []int{50, 200, 1000, 3000, 9000}[i%5]
		if i%7 == 0 {
			msgs = append(msgs, zRandom(r, n))
		} else {
			msgs = append(msgs, zJSON(r, n))
		}
	}
	// Write until NotReady, with the server not reading.
	k, notReady := 0, 0
	wake := make(chan struct{}, 1)
	task := asyncio.NewTask(func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	for ; k < len(msgs) && notReady == 0; k++ {
		res, err := cli.PollWriteMessage(task, Binary, msgs[k])
		if err != nil {
			t.Fatal(err)
		}
		if !res.Ready {
			notReady++
			break
		}
	}
	if notReady == 0 {
		t.Fatalf("%d messages taken by a connection whose peer reads nothing", k)
	}
	var wg sync.WaitGroup
	readErr := make(chan error, 1)
	wg.Go(func() {
		for i, want := range msgs {
			m, err := srv.ReadMessage(context.Background())
			if err != nil {
				readErr <- fmt.Errorf("message %d: %w", i, err)
				return
			}
			if !bytes.Equal(m.Data, want) {
				readErr <- fmt.Errorf("message %d of %d bytes read as %d bytes", i, len(want), len(m.Data))
				return
			}
		}
		readErr <- nil
	})
	for k < len(msgs) {
		res, err := cli.PollWriteMessage(task, Binary, msgs[k])
		if err != nil {
			t.Fatal(err)
		}
		if !res.Ready {
			notReady++
			select {
			case <-wake:
			case err := <-readErr:
				t.Fatalf("the server stopped reading: %v", err)
			}
			continue
		}
		k++
	}
	if _, err := asyncio.BlockOn(context.Background(), cli.PollFlush); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	got := zCountsOf(cli)
	// A message that finds the buffer too full for the most its
	// compression can take, and room for it as it is (a few bytes less),
	// goes out uncompressed: rarely.
	if want := len(msgs) - len(msgs)/5; got.sent > want || got.sent < want*9/10 {
		t.Fatalf("%d messages sent compressed, want about %d", got.sent, want)
	}
	t.Logf("%d messages, %d NotReady answers, %d sent compressed", len(msgs), notReady, got.sent)
}

// TestCompressMessageWriterAndWriteBuf: on a compressing connection, a
// MessageWriter's fragments go out uncompressed and WriteBuf compresses
// its chunks as one message; both read back whole.
func TestCompressMessageWriterAndWriteBuf(t *testing.T) {
	srv, cli := zPair(t, &UpgradeOptions{Options: zOn(CompressionOptions{})}, &DialOptions{Options: zOn(CompressionOptions{})})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	whole := zJSON(r, 20000)

	mw := cli.MessageWriter(Text)
	if err := asyncio.WriteAll(ctx, mw, whole); err != nil {
		t.Fatal(err)
	}
	if _, err := asyncio.BlockOn(ctx, mw.Shutdown); err != nil {
		t.Fatal(err)
	}
	m, err := srv.ReadMessage(ctx)
	if err != nil || m.Type != Text || !bytes.Equal(m.Data, whole) {
		t.Fatalf("MessageWriter's message read as %v, %d bytes, %v", m.Type, len(m.Data), err)
	}
	if got := zCountsOf(srv).read; got != 0 {
		t.Fatalf("the server read %d compressed messages from a MessageWriter", got)
	}

	b := asyncio.NewBytesBuf(whole[:10], whole[10:5000], whole[5000:])
	if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) { return cli.WriteBuf(t, b) }); err != nil {
		t.Fatal(err)
	}
	if _, err := asyncio.BlockOn(ctx, cli.PollFlush); err != nil {
		t.Fatal(err)
	}
	m, err = srv.ReadMessage(ctx)
	if err != nil || m.Type != Binary || !bytes.Equal(m.Data, whole) {
		t.Fatalf("WriteBuf's message read as %v, %d bytes, %v", m.Type, len(m.Data), err)
	}
	if got := zCountsOf(srv).read; got != 1 {
		t.Fatalf("the server read %d compressed messages, want WriteBuf's", got)
	}
}
