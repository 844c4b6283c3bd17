package wsconn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn"
)

// A ConnWriter buffers writes and sends them together when flushed;
// Shutdown flushes and sends the end of the stream.
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
	// Output:
	// buffered: 13
	// received "one two three"
}

// A server for many connections serves each on a goroutine of its own and
// returns from the handler, so that net/http frees what it holds for the
// request; the goroutine takes a context that the handler's return does
// not cancel. The read flushes the replies queued since the last read, so
// the loop needs no Flush of its own.
func ExampleUpgrade() {
	served := make(chan struct{}) // one client: closed when its goroutine ends
	serve := func(ctx context.Context, c *wsconn.Conn) {
		defer close(served)
		defer c.Close()
		for {
			m, err := c.ReadMessage(ctx)
			if err != nil {
				return // the client closed: its close frame was answered
			}
			if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
				return c.PollWriteMessage(t, m.Type, m.Data)
			}); err != nil {
				return
			}
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade answered the request
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
	if _, err := c.PollWriteMessage(nil, wsconn.Text, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	m, err := c.ReadMessage(ctx) // flushes "hello" first
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%v %q\n", m.Type, m.Data)
	if err := asyncio.Shutdown(ctx, c); err != nil {
		log.Fatal(err)
	}
	<-served
	_, err = c.ReadMessage(ctx)
	var ce *wsconn.CloseError
	fmt.Println("closed:", errors.As(err, &ce), ce.Code)
	// Output:
	// text "hello"
	// closed: true 1000 normal closure
}

// echo is one connection's handler as a Reactor polls it: a message is
// read once the last one's echo was taken, so a client that reads slower
// than it sends is held back by TCP instead of growing the server's
// memory.
type echo struct {
	c       *wsconn.Conn
	m       wsconn.Message
	pending bool // m was read and not yet echoed
}

func (e *echo) Poll(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	for {
		if e.pending {
			r, err := e.c.PollWriteMessage(t, e.m.Type, e.m.Data)
			if err != nil || !r.Ready {
				return asyncio.NotReady[struct{}](), err // NotReady: t is notified when the client reads
			}
			e.m, e.pending = wsconn.Message{}, false // m was lent until the next read
		}
		r, err := e.c.PollReadMessage(t)
		if err != nil || !r.Ready {
			return asyncio.NotReady[struct{}](), err // NotReady: t is notified when bytes come
		}
		e.m, e.pending = r.Value, true
	}
}

// A server on a Reactor hands each upgraded connection and its handler
// over and returns: a connection waiting for its client holds no
// goroutine and no buffer.
func ExampleReactor() {
	reactor, err := wsconn.NewReactor(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer reactor.Close()
	ended := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade answered the request
		}
		if err := reactor.Serve(c, &echo{c: c}, func(err error) { ended <- err }); err != nil {
			c.Close()
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, err := wsconn.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, s := range []string{"one", "two"} {
		if _, err := c.PollWriteMessage(nil, wsconn.Text, []byte(s)); err != nil {
			log.Fatal(err)
		}
	}
	for range 2 {
		m, err := c.ReadMessage(ctx) // the first read sends both
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s\n", m.Data)
	}
	if err := asyncio.Shutdown(ctx, c); err != nil {
		log.Fatal(err)
	}
	fmt.Println("handler ended:", <-ended)
	// Output:
	// one
	// two
	// handler ended: wsconn: the peer closed the connection with status 1000 normal closure
}

// A listener that serves WebSockets only can skip net/http: the reactor
// reads each opening handshake as it arrives, then serves the upgraded
// connection with the handler for its request.
func ExampleReactor_ServeListener() {
	reactor, err := wsconn.NewReactor(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer reactor.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ended := make(chan error, 1)
	served := make(chan error, 1)
	go func() {
		served <- reactor.ServeListener(ln, &wsconn.ListenOptions{
			Handler: func(c *wsconn.Conn, r *http.Request) wsconn.Handler {
				fmt.Println("upgraded", r.URL.Path)
				return &echo{c: c}
			},
			Done: func(_ *wsconn.Conn, err error) { ended <- err },
		})
	}()

	ctx := context.Background()
	c, err := wsconn.Dial(ctx, "ws://"+ln.Addr().String()+"/echo", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.PollWriteMessage(nil, wsconn.Text, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	m, err := c.ReadMessage(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", m.Data)
	if err := asyncio.Shutdown(ctx, c); err != nil {
		log.Fatal(err)
	}
	fmt.Println("handler ended:", <-ended)
	ln.Close()
	fmt.Println("ServeListener:", errors.Is(<-served, net.ErrClosed))
	// Output:
	// upgraded /echo
	// hello
	// handler ended: wsconn: the peer closed the connection with status 1000 normal closure
	// ServeListener: true
}
