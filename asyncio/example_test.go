package asyncio_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/pollws/pollws/asyncio"
)

// A Pipe bounds what a writer may queue. WriteAll parks between
// notifications while the reader drains it; Shutdown flushes, then the
// reader sees io.EOF.
func ExamplePipe() {
	w, r := asyncio.Pipe(8) // at most 8 unread bytes
	ctx := context.Background()
	go func() {
		if err := asyncio.WriteAll(ctx, w, []byte("more than eight bytes")); err != nil {
			panic(err)
		}
		if err := asyncio.Shutdown(ctx, w); err != nil {
			panic(err)
		}
	}()
	got, err := io.ReadAll(r)
	fmt.Printf("%q %v\n", got, err)
	// Output: "more than eight bytes" <nil>
}

// Polls that cannot make progress answer NotReady and notify the task
// later; a poll loop decides what to do meanwhile.
func ExampleAsyncWriter_pollWrite() {
	w, r := asyncio.Pipe(4)
	woken := make(chan struct{}, 1)
	task := asyncio.NewTask(func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	})

	res, _ := w.PollWrite(task, []byte("abcdef"))
	fmt.Println("first:", res.Ready, res.Value) // a partial write is Ready
	res, _ = w.PollWrite(task, []byte("ef"))
	fmt.Println("full:", res.Ready) // NotReady: the task will be notified

	go io.CopyN(io.Discard, r, 4)
	<-woken
	res, _ = w.PollWrite(task, []byte("ef"))
	fmt.Println("after the reader drained:", res.Ready, res.Value)
	// Output:
	// first: true 4
	// full: false
	// after the reader drained: true 2
}

// WriteBuf writes several chunks and advances the Buf by what was taken.
func ExampleWriteBuf() {
	w, r := asyncio.Pipe(16)
	b := asyncio.NewBytesBuf([]byte("GET / HTTP/1.1\r\n"), []byte("Host: x\r\n\r\n"))
	for b.Remaining() > 0 {
		res, err := asyncio.WriteBuf(nil, w, b)
		if err != nil || !res.Ready {
			break
		}
		fmt.Println("took", res.Value, "left", b.Remaining())
		io.CopyN(io.Discard, r, int64(res.Value))
	}
	// Output:
	// took 16 left 11
	// took 11 left 0
}

// words produces the words of a sentence, a few at a time.
type words struct{ rest []string }

func (p *words) PollProduce(_ *asyncio.Task, dst *asyncio.Destination[string], finish bool) (asyncio.Async[asyncio.StreamResult], error) {
	if len(p.rest) == 0 {
		return asyncio.Ready(asyncio.Dropped), nil
	}
	n := dst.Write(p.rest...)
	p.rest = p.rest[n:]
	return asyncio.Ready(asyncio.Completed), nil
}

// A Puller polls a StreamProducer for as many items as the consumer can
// take, and checks the producer keeps its rules.
func ExamplePuller() {
	pl := asyncio.NewPuller[string](&words{rest: strings.Fields("no goroutine parked on a slow client")})
	for {
		res, err := pl.Pull(nil, 3, false)
		if err == io.EOF {
			break
		}
		fmt.Println(res.Value)
	}
	// Output:
	// [no goroutine parked]
	// [on a slow]
	// [client]
}
