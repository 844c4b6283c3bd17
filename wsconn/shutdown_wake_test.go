package wsconn

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/sendq"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// A writer parked on a full Conn must be woken when another goroutine
// begins the shutdown (as a shutdown.Group's drain does), and then get
// ErrShutdown; the shutdown's own wait must not replace the writer's task.
func TestShutdownWakesParkedWriter(t *testing.T) {
	for _, name := range []string{"Conn", "ConnWriter"} {
		t.Run(name, func(t *testing.T) {
			server, client := wstest.TCPPair(t, true) // the client never reads
			_ = client
			var w asyncio.AsyncWriter
			var q *sendq.Writer
			var shut func(*asyncio.Task) (asyncio.Async[struct{}], error)
			if name == "Conn" {
				c := Server(server, nil)
				defer c.Close()
				w, q = c, &c.out
				shut = func(t *asyncio.Task) (asyncio.Async[struct{}], error) {
					return c.ShutdownWith(t, StatusGoingAway, "")
				}
			} else {
				cw := NewConnWriter(server)
				defer cw.Close()
				w, q, shut = cw, &cw.w, cw.Shutdown
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			msg := make([]byte, 32<<10)
			parked := make(chan error, 1)
			go func() {
				for {
					if err := asyncio.WriteAll(ctx, w, msg); err != nil {
						parked <- err
						return
					}
				}
			}()
			// Wait until the writer is parked on a full socket.
			for {
				if q.Stats().NotReady > 0 {
					break
				}
				select {
				case err := <-parked:
					t.Fatalf("writer ended before the socket filled: %v", err)
				case <-time.After(time.Millisecond): // the writer runs on another goroutine; poll its counter
				}
			}
			task := asyncio.NewTask(func() {})
			if r, err := shut(task); err != nil || r.Ready {
				t.Fatalf("shutdown with a stalled peer = %+v, %v; want NotReady", r, err)
			}
			select {
			case err := <-parked:
				if !errors.Is(err, asyncio.ErrShutdown) {
					t.Fatalf("parked writer got %v; want ErrShutdown", err)
				}
			case <-ctx.Done():
				t.Fatal("the writer parked on a full socket was not woken when the shutdown began")
			}
		})
	}
}
