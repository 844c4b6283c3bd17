package buf_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/pollws/pollws/buf"
)

func ExampleNewStream() {
	ctx := context.Background()
	w, r := buf.NewStreamSize(4)
	w2 := w.Clone() // a second writer into the same stream

	w.Write(ctx, []byte("one"))
	w2.Write(ctx, []byte{}) // an empty chunk is data too
	w.Write(ctx, []byte("two"))
	w.Close()
	w2.Close()
	fmt.Println(r)

	for {
		chunk, err := r.Read(ctx)
		if err == io.EOF {
			break
		}
		fmt.Printf("%q\n", chunk)
	}
	// Output:
	// buf.StreamReader(writers closed, 3/4 chunks, 0 writers)
	// "one"
	// ""
	// "two"
}

func ExampleWriteError() {
	w, r := buf.NewStream()
	r.Close()

	err := w.Write(context.Background(), []byte("lost?"))
	var we *buf.WriteError
	if errors.As(err, &we) {
		fmt.Printf("%v\nchunk handed back: %q\n", err, we.Chunk)
	}
	// Output:
	// buf: stream reader is closed: 5-byte chunk not written
	// chunk handed back: "lost?"
}

func ExampleChannel() {
	ctx := context.Background()
	c := buf.NewChannel(16, buf.Park)
	w := c.NewWeakWriter()
	log := c.NewStrongReader() // never loses a frame
	live := c.NewWeakReader()  // never holds the writer back

	for _, msg := range []string{"alpha", "bravo", "charlie"} {
		w.Write(ctx, []byte(msg))
		f, _ := log.NextFrame(ctx) // the strong reader keeps up
		fmt.Printf("log: %s at byte %d\n", f.Data, f.Pos)
	}

	// The weak reader read nothing: "alpha" (5 bytes) was evicted to make
	// room for "charlie".
	_, err := live.NextFrame(ctx)
	var behind *buf.ReaderBehindError
	if errors.As(err, &behind) {
		fmt.Printf("live: lost %d bytes, resuming at byte %d\n", behind.Lost, behind.Pos)
	}
	f, _ := live.NextFrame(ctx)
	fmt.Printf("live: %s\n", f.Data)
	// Output:
	// log: alpha at byte 0
	// log: bravo at byte 5
	// log: charlie at byte 10
	// live: lost 5 bytes, resuming at byte 5
	// live: bravo
}

// A broadcast hands one copy of each message to every subscriber. Each
// subscriber is a weak reader, so a stalled one never slows the others;
// here each reads in its own goroutine.
func ExampleChannel_broadcast() {
	ctx := context.Background()
	c := buf.NewChannel(64<<10, buf.Park)
	hub := c.NewWeakWriter()
	subs := make([]*buf.Reader, 3)
	for i := range subs {
		subs[i] = c.NewWeakReader()
	}
	got := make([]string, len(subs))
	var wg sync.WaitGroup
	for i, r := range subs {
		wg.Go(func() {
			n, size := 0, 0
			for {
				f, err := r.NextFrame(ctx) // f.Data is lent until the next call
				if err != nil {            // io.EOF once drained
					break
				}
				n, size = n+1, size+len(f.Data)
			}
			got[i] = fmt.Sprintf("subscriber %d: %d messages, %d bytes", i, n, size)
		})
	}

	msg := make([]byte, 1<<10)
	for range 10 {
		hub.Write(ctx, msg)
	}
	c.Drain() // each subscriber ends once it has read everything
	wg.Wait()
	for _, s := range got {
		fmt.Println(s)
	}
	// Output:
	// subscriber 0: 10 messages, 10240 bytes
	// subscriber 1: 10 messages, 10240 bytes
	// subscriber 2: 10 messages, 10240 bytes
}

func ExampleWriter_ReserveSlice() {
	ctx := context.Background()
	c := buf.NewChannel(64, buf.Drop)
	w := c.NewWeakWriter()
	r := c.NewStrongReader()

	// Fill a frame in place: no other frame can come between its bytes.
	p, _ := w.ReserveSlice(ctx, 5)
	copy(p, "frame")
	w.Commit()

	f, _ := r.ReadFrame(ctx, nil) // a copy the caller owns
	fmt.Printf("%s from writer %d\n", f.Data, f.Writer)
	// Output:
	// frame from writer 1
}
