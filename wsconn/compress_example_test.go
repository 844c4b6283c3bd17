package wsconn_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn"
)

// Compression is an option of both ends: Upgrade accepts the client's
// offer of permessage-deflate, Dial makes one, and the messages then go
// compressed both ways when they are worth it. Here a JSON-like message
// of 10 KB crosses the connection in a few hundred bytes.
func ExampleCompressionOptions() {
	compression := &wsconn.CompressionOptions{} // no context takeover: nothing held between messages
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, &wsconn.UpgradeOptions{Options: wsconn.Options{Compression: compression}})
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			ctx := context.Background()
			for {
				m, err := c.ReadMessage(ctx)
				if err != nil {
					return
				}
				if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
					return c.PollWriteMessage(t, m.Type, m.Data)
				}); err != nil {
					return
				}
			}
		}()
	}))
	defer srv.Close()

	ctx := context.Background()
	c, err := wsconn.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &wsconn.DialOptions{Options: wsconn.Options{Compression: compression}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	msg := strings.Repeat(`{"id":42,"status":"ok","items":[1,2,3]},`, 250)
	if _, err := c.PollWriteMessage(nil, wsconn.Text, []byte(msg)); err != nil {
		log.Fatal(err)
	}
	m, err := c.ReadMessage(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("echoed whole:", string(m.Data) == msg)
	fmt.Println("sent in under 500 bytes:", len(msg), c.Stats().Written < 500)
	// Output:
	// echoed whole: true
	// sent in under 500 bytes: 10000 true
}
