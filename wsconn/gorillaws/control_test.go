package gorillaws

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
)

// TestEveryPingGetsItsPong sends pings back to back while the writer is
// stuck on a message the client does not read yet: every ping gets its
// own pong, in order, after that message. The pongs waiting to go out are
// bounded: past the bound the application's read loop waits in the ping
// handler, so a message sent after the pings is not read until the client
// reads.
func TestEveryPingGetsItsPong(t *testing.T) {
	for _, pings := range []int{10, 40} {
		t.Run(fmt.Sprint(pings), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				server, client := pipePair(t)
				w := New(server, nil)
				defer w.Close()
				synced := make(chan struct{})
				appRead := make(chan error, 1)
				go func() {
					for {
						typ, p, err := server.ReadMessage()
						if err != nil {
							appRead <- err
							return
						}
						if typ == websocket.TextMessage && string(p) == "sync" {
							close(synced)
						}
					}
				}()
				_, err := w.PollWriteMessage(nil, websocket.BinaryMessage, []byte("first"))
				noError(t, err, "PollWriteMessage")
				synctest.Wait() // the writer goroutine is stuck writing it

				var want []string
				sent := make(chan error, 1)
				go func() {
					for i := range pings {
						if err := client.WriteControl(websocket.PingMessage, fmt.Appendf(nil, "ping %d", i), time.Now().Add(time.Hour)); err != nil {
							sent <- err
							return
						}
					}
					sent <- client.WriteMessage(websocket.TextMessage, []byte("sync"))
				}()
				for i := range pings {
					want = append(want, fmt.Sprintf("ping %d", i))
				}
				synctest.Wait()
				select {
				case <-synced:
					if pings > maxPongs {
						t.Fatalf("the read loop went past %d unanswered pings: the pongs waiting to go out are not bounded", pings)
					}
				default:
					if pings <= maxPongs {
						t.Fatalf("the read loop waits with only %d pongs waiting to go out", pings)
					}
				}

				var pongs []string
				client.SetPongHandler(func(data string) error { pongs = append(pongs, data); return nil })
				read := readInBackground(client)
				noError(t, <-sent, "client write")
				<-synced
				noError(t, asyncio.Shutdown(context.Background(), w), "Shutdown")
				(<-read).check(t, []string{"first"}, websocket.CloseNormalClosure)
				if !slices.Equal(pongs, want) {
					t.Errorf("client got %d pongs %q, want %d %q", len(pongs), pongs, len(want), want)
				}
				if err := <-appRead; !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
					t.Errorf("application read ended with %v, want the client's answer to the close", err)
				}
			})
		})
	}
}
