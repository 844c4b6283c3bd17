package gorillaws_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn"
	"github.com/pollws/pollws/wsconn/gorillaws"
)

// A gorilla server that writes through a Writer. The handler keeps a
// read loop, which sees the client's answer to the close frame and so
// lets Shutdown finish.
func ExampleNew() {
	handled := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		defer close(handled)
		c, err := gorillaws.Upgrade(&websocket.Upgrader{}, rw, r, nil)
		if err != nil {
			return
		}
		w := gorillaws.New(c, nil)
		defer w.Close()
		var reads sync.WaitGroup
		defer reads.Wait()
		reads.Go(func() {
			for {
				if _, _, err := w.AppendMessage(nil); err != nil {
					return
				}
			}
		})
		ctx := r.Context()
		for i := range 3 {
			if err := asyncio.WriteAll(ctx, w, fmt.Appendf(nil, "message %d", i)); err != nil {
				return
			}
		}
		if err := asyncio.Shutdown(ctx, w); err != nil {
			fmt.Println("shutdown:", err)
		}
	}))
	defer srv.Close()
	defer func() { <-handled }()

	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	for {
		_, p, err := client.ReadMessage()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(p))
	}
	// Output:
	// message 0
	// message 1
	// message 2
	// websocket: close 1000 (normal)
}

// An echo server: it reads each message into a buffer it reuses and
// queues it back with its type. Text that is not UTF-8 ends the reads
// with close 1007, after the echoes already queued.
func ExampleWriter_AppendMessage() {
	handled := make(chan struct{})
	invalid := make(chan bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		defer close(handled)
		c, err := gorillaws.Upgrade(&websocket.Upgrader{}, rw, r, nil)
		if err != nil {
			return
		}
		w := gorillaws.New(c, nil)
		defer w.Close()
		var buf []byte
		for {
			typ, p, err := w.AppendMessage(buf[:0])
			if err != nil {
				invalid <- errors.Is(err, gorillaws.ErrInvalidUTF8)
				break
			}
			buf = p
			if _, err := asyncio.BlockOn(r.Context(), func(t *asyncio.Task) (asyncio.Async[int], error) {
				return w.PollWriteMessage(t, typ, p)
			}); err != nil {
				break
			}
		}
		// The close frame is queued already: Shutdown waits for it to go
		// out and for the client's answer, which the Writer reads itself
		// now that the application stopped reading.
		if err := asyncio.Shutdown(r.Context(), w); err != nil {
			fmt.Println("shutdown:", err)
		}
	}))
	defer srv.Close()
	defer func() { <-handled }()

	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	client.WriteMessage(websocket.TextMessage, []byte("héllo"))
	client.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0xfe})
	client.WriteMessage(websocket.TextMessage, []byte{0xff, 0xfe})
	for {
		typ, p, err := client.ReadMessage()
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Printf("%d %q\n", typ, p)
	}
	fmt.Println("the server's read failed on invalid UTF-8:", <-invalid)
	// Output:
	// 1 "héllo"
	// 2 "\xff\xfe"
	// websocket: close 1007 (invalid payload data): invalid UTF-8
	// the server's read failed on invalid UTF-8: true
}

// A Writer is a sink a wsconn.Pump can drive (through MessageSinkOf).
var _ wsconn.TypedMessageWriter[int] = (*gorillaws.Writer)(nil)

// lines is a StreamProducer of the messages it holds.
type lines []string

func (l *lines) PollProduce(_ *asyncio.Task, dst *asyncio.Destination[[]byte], _ bool) (asyncio.Async[asyncio.StreamResult], error) {
	for len(*l) > 0 && dst.Write([]byte((*l)[0])) == 1 {
		*l = (*l)[1:]
	}
	if len(*l) == 0 {
		return asyncio.Ready(asyncio.Dropped), nil
	}
	return asyncio.Ready(asyncio.Completed), nil
}

// A Pump streams a producer's messages to a client as text messages,
// pulling only as fast as the connection takes them.
func ExampleWriter_pump() {
	handled := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		defer close(handled)
		c, err := gorillaws.Upgrade(&websocket.Upgrader{}, rw, r, nil)
		if err != nil {
			return
		}
		// No read loop here: Shutdown reads the client's answer itself.
		w := gorillaws.New(c, &gorillaws.Options{ReadClose: true})
		defer w.Close()
		p := &lines{"one", "two", "three"}
		pump := wsconn.NewPump(p, wsconn.MessageSinkOf(w, websocket.TextMessage), nil)
		if err := pump.Run(r.Context()); err != nil {
			fmt.Println("pump:", err)
		}
		_, err = asyncio.BlockOn(r.Context(), func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
			return w.ShutdownWith(t, websocket.CloseGoingAway, "done")
		})
		if err != nil {
			fmt.Println("shutdown:", err)
		}
	}))
	defer srv.Close()
	defer func() { <-handled }()

	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	for {
		typ, p, err := client.ReadMessage()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(typ == websocket.TextMessage, string(p))
	}
	// Output:
	// true one
	// true two
	// true three
	// websocket: close 1001 (going away): done
}

// Broadcasting one prepared message to every subscriber: each
// Writer queues it without copying, and a stalled subscriber only
// fills its own queue.
func ExampleWriter_PollWritePrepared() {
	const subscribers = 3
	var handlers sync.WaitGroup
	writers := make(chan *gorillaws.Writer, subscribers)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c, err := gorillaws.Upgrade(&websocket.Upgrader{}, rw, r, nil)
		if err != nil {
			return
		}
		writers <- gorillaws.New(c, &gorillaws.Options{ReadClose: true})
	}))
	defer srv.Close()
	defer handlers.Wait()

	var clients []*websocket.Conn
	for range subscribers {
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close()
		clients = append(clients, c)
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, []byte("news for all"))
	if err != nil {
		fmt.Println(err)
		return
	}
	for range subscribers {
		w := <-writers
		if r, err := w.PollWritePrepared(nil, pm); err != nil || !r.Ready {
			fmt.Println("subscriber is full:", err) // drop it, or wait with a Task
			w.Close()
			continue
		}
		handlers.Go(func() {
			if err := asyncio.Shutdown(context.Background(), w); err != nil {
				fmt.Println("shutdown:", err)
			}
		})
	}
	for i, c := range clients {
		_, p, err := c.ReadMessage()
		fmt.Println(i, string(p), err)
		_, _, err = c.ReadMessage()
		fmt.Println(i, err)
	}
	// Output:
	// 0 news for all <nil>
	// 0 websocket: close 1000 (normal)
	// 1 news for all <nil>
	// 1 websocket: close 1000 (normal)
	// 2 news for all <nil>
	// 2 websocket: close 1000 (normal)
}
