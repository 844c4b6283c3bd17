package asyncio_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

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

// A read that finds nothing answers NotReady and notifies the task when
// bytes come; after the writer's end it answers io.EOF.
func ExampleAsyncReader_pollRead() {
	w, r := asyncio.Pipe(8)
	woken := make(chan struct{}, 1)
	task := asyncio.NewTask(func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	})
	buf := make([]byte, 8)

	res, err := r.PollRead(task, buf)
	fmt.Println("empty:", res.Ready, err) // NotReady: the task will be notified

	w.Write([]byte("hi"))
	<-woken
	res, err = r.PollRead(task, buf)
	fmt.Printf("after a write: %v %q %v\n", res.Ready, buf[:res.Value], err)

	w.Shutdown(nil) // nothing left unread: the end at once
	_, err = r.PollRead(task, buf)
	fmt.Println("after the end:", err)
	// Output:
	// empty: false <nil>
	// after a write: true "hi" <nil>
	// after the end: EOF
}

// An Executor polls tasks on a few goroutines that exist only while there
// is work. Each task here reads a pipe to its end, answering NotReady
// whenever the pipe is empty: no goroutine waits for it meanwhile.
func ExampleExecutor() {
	e := asyncio.NewExecutor(nil)
	defer e.Close()
	ctx := context.Background()
	names := []string{"ann", "bob", "cy"}
	got := make([]string, len(names))
	var wg sync.WaitGroup
	var writers []*asyncio.PipeWriter
	for i := range names {
		w, r := asyncio.Pipe(64)
		writers = append(writers, w)
		var msg []byte
		buf := make([]byte, 4)
		wg.Add(1)
		e.Spawn(func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
			for {
				res, err := r.PollRead(t, buf)
				switch {
				case err == io.EOF:
					got[i] = string(msg)
					return asyncio.Ready(struct{}{}), nil
				case err != nil:
					return asyncio.NotReady[struct{}](), err
				case !res.Ready:
					return asyncio.NotReady[struct{}](), nil // polled again when bytes come
				}
				msg = append(msg, buf[:res.Value]...)
			}
		}, func(err error) {
			if err != nil {
				fmt.Println(err)
			}
			wg.Done()
		})
	}
	for i, w := range writers {
		asyncio.WriteAll(ctx, w, []byte("hello, "+names[i]))
		asyncio.Shutdown(ctx, w) // returns once the task has read every byte
	}
	wg.Wait()
	for _, s := range got {
		fmt.Println(s)
	}
	// Output:
	// hello, ann
	// hello, bob
	// hello, cy
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
