package shutdown_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/shutdown"
)

// Close flushes what the writer holds, then sends its end, then closes
// it.
func ExampleClose() {
	w, r := asyncio.Pipe(64)
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(r) // the peer, until the writer's end
		got <- string(b)
	}()
	ctx := context.Background()
	if err := asyncio.WriteAll(ctx, w, []byte("last words")); err != nil {
		panic(err)
	}
	err := shutdown.Close(ctx, w)
	fmt.Println(err, <-got)
	// Output: <nil> last words
}

// When the deadline passes before the peer took everything, Close
// closes hard and says how much did not leave.
func ExampleClose_deadline() {
	w, r := asyncio.Pipe(64)
	defer r.Close() // a peer that never reads
	if _, err := w.Write([]byte("never read")); err != nil {
		panic(err)
	}
	// A deadline already past; a server gives its peers a few seconds.
	ctx, cancel := context.WithDeadline(context.Background(), time.Now())
	defer cancel()

	err := shutdown.Close(ctx, w)
	var ue *shutdown.UndeliveredError
	if errors.As(err, &ue) {
		fmt.Println(ue.Bytes, "bytes undelivered; deadline:", errors.Is(err, context.DeadlineExceeded))
	}
	// Output: 10 bytes undelivered; deadline: true
}

// A Group admits connections through a Policy and reports each one's end
// to OnDone.
func ExampleGroup() {
	g := shutdown.NewGroup(&shutdown.GroupOptions{
		Policy: shutdown.Limits{MaxConcurrent: 1},
		OnDone: func(id uint64, err error) { fmt.Println("connection", id, "ended:", err) },
	})
	ctx := context.Background()

	w1, r1 := asyncio.Pipe(64)
	defer r1.Close()
	m, err := g.Add(ctx, w1, nil)
	fmt.Println("first:", err)

	w2, r2 := asyncio.Pipe(64)
	defer r2.Close()
	_, err = g.Add(ctx, w2, nil)
	fmt.Println("second:", err)

	m.Done(io.EOF) // the handler's read loop ended: the client left
	// Output:
	// first: <nil>
	// second: shutdown: connection refused, try again later
	// connection 1 ended: EOF
}

// Drain shuts every connection down, flushing first, and closes hard the
// ones whose peers do not take their bytes by the deadline.
func ExampleGroup_Drain() {
	g := shutdown.NewGroup(nil)
	for _, peerReads := range []bool{true, true, false} {
		w, r := asyncio.Pipe(64)
		defer r.Close()
		m, err := g.Add(context.Background(), w, nil)
		if err != nil {
			panic(err)
		}
		if _, err := w.Write([]byte("bye!")); err != nil {
			panic(err)
		}
		if peerReads {
			go func() {
				_, err := io.Copy(io.Discard, r)
				m.Done(err)
			}()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	fmt.Println(g.Drain(ctx))
	// Output: clean=2 forced=1 undelivered=4B errors=1 gone=0
}

// On SIGINT or SIGTERM, srv.Shutdown stops the listener and, through the
// hook, drains the WebSocket connections; Wait waits for the drain.
func ExampleGroup_RegisterOnShutdown() {
	g := shutdown.NewGroup(nil)
	srv := &http.Server{Handler: g.Handler(http.NotFoundHandler())} // g.Handler wraps the WebSocket endpoint
	g.RegisterOnShutdown(srv, 5*time.Second)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// A connection the server holds, with a message queued (a pipe here,
	// for brevity; a handler adds its upgraded connection the same way).
	w, r := asyncio.Pipe(64)
	m, err := g.Add(context.Background(), w, nil)
	if err != nil {
		panic(err)
	}
	if _, err := w.Write([]byte("goodbye")); err != nil {
		panic(err)
	}
	go func() {
		b, err := io.ReadAll(r)
		fmt.Printf("client got %q\n", b)
		m.Done(err)
	}()

	// Stands in for Ctrl-C: the example interrupts itself.
	p, _ := os.FindProcess(os.Getpid())
	if err := p.Signal(os.Interrupt); err != nil {
		panic(err)
	}

	<-ctx.Done()
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		panic(err)
	}
	report, err := g.Wait(sctx)
	fmt.Println(report, err)
	fmt.Println(<-served)
	// Output:
	// client got "goodbye"
	// clean=1 forced=0 undelivered=0B errors=0 gone=0 <nil>
	// http: Server closed
}
