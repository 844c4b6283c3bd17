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

// A PreparedMessage is compressed once for all the connections that
// compress alike, however many they are. Here a server sends one message
// to three clients: one without compression, which gets it as it is, and
// two with it, which get the same compressed bytes, made once.
func ExamplePreparedMessage() {
	msg := wsconn.NewPreparedMessage(wsconn.Text, []byte(strings.Repeat(`{"id":42,"status":"ok"},`, 100)))
	written := make(chan int64, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Upgrade(w, r, &wsconn.UpgradeOptions{Options: wsconn.Options{Compression: &wsconn.CompressionOptions{}}})
		if err != nil {
			return
		}
		defer c.Close()
		ctx := context.Background()
		if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) { return c.PollWritePrepared(t, msg) }); err != nil {
			return
		}
		if err := asyncio.Flush(ctx, c); err != nil {
			return
		}
		written <- c.Stats().Written
		c.ReadMessage(ctx) // until the client leaves
	}))
	defer srv.Close()

	ctx := context.Background()
	for _, compression := range []*wsconn.CompressionOptions{nil, {}, {}} {
		c, err := wsconn.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &wsconn.DialOptions{Options: wsconn.Options{Compression: compression}})
		if err != nil {
			log.Fatal(err)
		}
		m, err := c.ReadMessage(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("compression %v: read %d bytes; under 100 on the wire: %v\n", compression != nil, len(m.Data), <-written < 100)
		c.Close()
	}
	fmt.Println("compressed:", msg.Compressions(), "time")
	// Output:
	// compression false: read 2400 bytes; under 100 on the wire: false
	// compression true: read 2400 bytes; under 100 on the wire: true
	// compression true: read 2400 bytes; under 100 on the wire: true
	// compressed: 1 time
}
