package natsbus_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pollws/pollws/fanout"
	"github.com/pollws/pollws/fanout/natsbus"
	"github.com/pollws/pollws/wsconn"
)

// Two instances share a topic through one broker: a message published on
// the first reaches a subscriber of the second.
func Example() {
	// A broker for the example; in production nats-server runs on its own.
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	ns.Start()
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		log.Fatal("the broker did not start")
	}

	// Each instance has a bus and a hub over it.
	var hubs [2]*fanout.Hub
	for i := range hubs {
		bus, err := natsbus.Connect(ns.ClientURL(), nil)
		if err != nil {
			log.Fatal(err)
		}
		defer bus.Close()
		hubs[i] = fanout.New(&fanout.Options{Bus: bus})
		defer hubs[i].Close()
	}

	// The second instance serves subscribers.
	joined := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		sub, err := hubs[1].Subscribe("news", c)
		if err != nil {
			c.Close()
			return
		}
		defer sub.Close()
		joined <- struct{}{}
		for {
			if _, err := c.ReadMessage(context.Background()); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c, err := wsconn.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	<-joined

	// The first instance publishes.
	if err := hubs[0].Publish("news", wsconn.Text, []byte("hello from instance 0")); err != nil {
		log.Fatal(err)
	}
	m, err := c.ReadMessage(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", m.Data)
	// Output:
	// hello from instance 0
}
