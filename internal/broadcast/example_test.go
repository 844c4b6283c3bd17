package broadcast_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/internal/broadcast"
	"github.com/pollws/pollws/wsconn"
)

// A subscriber endpoint: the hub writes to each connection, the handler
// reads it until the client leaves.
func Example() {
	hub := broadcast.New(nil)
	defer hub.Close()
	joined := make(chan struct{})
	var handlers sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade answered the request
		}
		sub, err := hub.Subscribe(c)
		if err != nil {
			c.Close()
			return
		}
		defer sub.Close()
		joined <- struct{}{}
		for {
			if _, _, err := c.ReadMessage(context.Background()); err != nil {
				return // the client left
			}
		}
	}))
	defer handlers.Wait()
	defer srv.Close()

	ctx := context.Background()
	c, err := wsconn.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	<-joined

	for _, msg := range []string{"hello", "subscribers"} {
		if _, err := hub.Publish(ws.OpText, []byte(msg)); err != nil {
			log.Fatal(err)
		}
	}
	for range 2 {
		_, p, err := c.ReadMessage(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s\n", p)
	}
	st := hub.Stats()
	fmt.Println("published", st.Published, "delivered", st.Delivered)
	// Output:
	// hello
	// subscribers
	// published 2 delivered 2
}
