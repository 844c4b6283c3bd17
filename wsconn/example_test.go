package wsconn_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn"
)

// A ConnWriter buffers writes and sends them with one system call when
// flushed; Shutdown flushes and sends the end of the stream.
func ExampleConnWriter() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := l.Accept()
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		fmt.Printf("received %q\n", b)
	})

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	w := wsconn.NewConnWriter(c)
	defer w.Close()
	for _, s := range []string{"one ", "two ", "three"} {
		if _, err := w.Write([]byte(s)); err != nil { // never blocks
			log.Fatal(err)
		}
	}
	fmt.Println("buffered:", w.Buffered())
	if err := asyncio.Shutdown(context.Background(), w); err != nil {
		log.Fatal(err)
	}
	wg.Wait()
	fmt.Println("write system calls:", w.Stats().WriteSyscalls)
	// Output:
	// buffered: 13
	// received "one two three"
	// write system calls: 1
}

// An echo server: the read flushes the replies queued since the last
// read, so the loop needs no Flush of its own.
func ExampleUpgrade() {
	handled := make(chan struct{}) // one client: closed when its handler returns
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handled)
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade answered the request
		}
		defer c.Close()
		ctx := r.Context()
		for {
			op, p, err := c.ReadMessage(ctx)
			if err != nil {
				return // the client closed: the close frame was answered
			}
			if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
				return c.PollWriteMessage(t, op, p)
			}); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	defer func() { <-handled }()

	ctx := context.Background()
	c, err := wsconn.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.PollWriteMessage(nil, ws.OpText, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	op, p, err := c.ReadMessage(ctx) // flushes "hello" first
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%v %q\n", op == ws.OpText, p)
	if err := asyncio.Shutdown(ctx, c); err != nil {
		log.Fatal(err)
	}
	fmt.Println("closed with", c.CloseCode())
	// Output:
	// true "hello"
	// closed with 1000
}

// A server for many connections serves each on a goroutine of its own and
// returns from the handler, so that net/http frees what it holds for the
// request; the goroutine takes a context that the handler's return does
// not cancel.
func ExampleUpgrade_ownGoroutine() {
	served := make(chan struct{}) // one client: closed when its goroutine ends
	serve := func(ctx context.Context, c *wsconn.Conn) {
		defer close(served)
		defer c.Close()
		for {
			op, p, err := c.ReadMessage(ctx)
			if err != nil {
				return
			}
			if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
				return c.PollWriteMessage(t, op, p)
			}); err != nil {
				return
			}
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		go serve(context.WithoutCancel(r.Context()), c)
	}))
	defer srv.Close()

	ctx := context.Background()
	c, err := wsconn.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.PollWriteMessage(nil, ws.OpText, []byte("still here")); err != nil {
		log.Fatal(err)
	}
	_, p, err := c.ReadMessage(ctx) // answered after the handler returned
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", p)
	if err := asyncio.Shutdown(ctx, c); err != nil {
		log.Fatal(err)
	}
	<-served
	fmt.Println("closed with", c.CloseCode())
	// Output:
	// "still here"
	// closed with 1000
}
