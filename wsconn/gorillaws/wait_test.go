package gorillaws

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
)

// TestManyWaitersAllComplete: eight goroutines wait on one full writer,
// each in BlockOn; once the client reads, every one of them completes.
func TestManyWaitersAllComplete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			budget  = 1000
			size    = 400
			waiters = 8
		)
		server, client := pipePair(t) // the client does not read yet
		w := New(server, &Options{QueueBytes: budget})
		defer w.Close()
		queued := 0
		for ; ; queued++ {
			r, err := w.PollWriteMessage(nil, websocket.BinaryMessage, make([]byte, size))
			noError(t, err, "PollWriteMessage")
			if !r.Ready {
				break
			}
			synctest.Wait() // the writer goroutine takes the first message and blocks
		}

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		errs := make(chan error, waiters)
		for i := range waiters {
			go func() {
				msg := fmt.Appendf(make([]byte, 0, size), "waiter %d", i)
				_, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
					return w.PollWriteMessage(t, websocket.BinaryMessage, msg)
				})
				errs <- err
			}()
		}
		synctest.Wait() // every waiter got NotReady and parked

		read := make(chan error, 1)
		go func() {
			for range queued + waiters {
				if _, _, err := client.ReadMessage(); err != nil {
					read <- err
					return
				}
			}
			read <- nil
		}()
		failed := 0
		for range waiters {
			if err := <-errs; err != nil {
				failed++
				t.Errorf("waiter: %v", err)
			}
		}
		if failed > 0 {
			t.Errorf("%d of %d waiters did not complete", failed, waiters)
			client.Close() // the messages of the waiters that hung never come
		}
		if err := <-read; err != nil && failed == 0 {
			t.Fatalf("client read: %v", err)
		}
	})
}
