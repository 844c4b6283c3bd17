package fanout_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/fanout"
	"github.com/pollws/pollws/wsconn"
)

// A subscriber endpoint: the hub writes the topic's messages to each
// connection, the handler reads it until the client leaves.
func Example() {
	hub := fanout.New(nil)
	defer hub.Close()
	joined := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade answered the request
		}
		sub, err := hub.Subscribe(r.URL.Query().Get("topic"), c)
		if err != nil {
			c.Close()
			return
		}
		defer sub.Close()
		joined <- struct{}{}
		for {
			if _, err := c.ReadMessage(context.Background()); err != nil {
				return // the client left
			}
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, err := wsconn.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"?topic=news", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	<-joined

	for _, msg := range []string{"hello", "subscribers"} {
		if err := hub.Publish("news", wsconn.Text, []byte(msg)); err != nil {
			log.Fatal(err)
		}
	}
	if err := hub.Publish("sports", wsconn.Text, []byte("nobody listens")); err != nil {
		log.Fatal(err)
	}
	for range 2 {
		m, err := c.ReadMessage(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %s\n", m.Type, m.Data)
	}
	st := hub.Stats()
	fmt.Println("published", st.Published, "delivered", st.Delivered)
	// Output:
	// text: hello
	// text: subscribers
	// published 3 delivered 2
}

// A connection leaves one topic for another: Stop hands it back to its
// owner, who subscribes it again.
func ExampleSubscriber_Stop() {
	hub := fanout.New(nil)
	defer hub.Close()
	subs := make(chan *fanout.Subscriber)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		sub, err := hub.Subscribe("lobby", c)
		if err != nil {
			c.Close()
			return
		}
		subs <- sub
		// The client's messages name the room to move to.
		for {
			m, err := c.ReadMessage(context.Background())
			if err != nil {
				sub.Close()
				return
			}
			sub.Stop()
			if sub, err = hub.Subscribe(string(m.Data), c); err != nil {
				c.Close()
				return
			}
			subs <- sub
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, err := wsconn.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	<-subs
	if err := asyncio.WriteAll(ctx, c, []byte("kitchen")); err != nil {
		log.Fatal(err)
	}
	if err := asyncio.Flush(ctx, c); err != nil {
		log.Fatal(err)
	}
	<-subs
	for _, topic := range []string{"lobby", "kitchen"} {
		if err := hub.Publish(topic, wsconn.Text, []byte("news from the "+topic)); err != nil {
			log.Fatal(err)
		}
	}
	m, err := c.ReadMessage(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", m.Data)
	// Output:
	// news from the kitchen
}
