package gorillaws_test

import (
	"context"
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

// A gorilla server that writes through a Writer. The handler keeps
// gorilla's read loop, which sees the client's answer to the close frame
// and so lets Shutdown finish.
func ExampleNew() {
	handled := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		defer close(handled)
		c, err := (&websocket.Upgrader{}).Upgrade(rw, r, nil)
		if err != nil {
			return
		}
		w := gorillaws.New(c, nil)
		defer w.Close()
		var reads sync.WaitGroup
		defer reads.Wait()
		reads.Go(func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
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
		c, err := (&websocket.Upgrader{}).Upgrade(rw, r, nil)
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
		c, err := (&websocket.Upgrader{}).Upgrade(rw, r, nil)
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
