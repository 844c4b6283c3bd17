package pollws_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/pollws/pollws/asyncio"
)

// chunks produces fixed-size chunks of a payload.
type chunks struct {
	rest []byte
	size int
}

func (c *chunks) PollProduce(_ *asyncio.Task, dst *asyncio.Destination[[]byte], _ bool) (asyncio.Async[asyncio.StreamResult], error) {
	if len(c.rest) == 0 {
		return asyncio.Ready(asyncio.Dropped), nil
	}
	for len(c.rest) > 0 {
		n := min(c.size, len(c.rest))
		if dst.Write(c.rest[:n]) == 0 {
			break
		}
		c.rest = c.rest[n:]
	}
	return asyncio.Ready(asyncio.Completed), nil
}

// TestProducerThroughPipe pulls a producer only as fast as a bounded pipe
// drains, writes each batch with one vectored WriteBuf, and shuts down:
// the reader gets every byte, then io.EOF.
func TestProducerThroughPipe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	payload := bytes.Repeat([]byte("pollws "), 100_000)
	w, r := asyncio.Pipe(4 << 10)
	pl := asyncio.NewPuller[[]byte](&chunks{rest: payload, size: 1000})

	errc := make(chan error, 1)
	go func() {
		var b asyncio.BytesBuf
		for {
			batch, err := pl.Pull(nil, 4, false)
			if err == io.EOF {
				errc <- asyncio.Shutdown(ctx, w)
				return
			}
			if err != nil || !batch.Ready {
				errc <- err
				return
			}
			b.Reset(batch.Value...)
			for b.Remaining() > 0 {
				if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
					return asyncio.WriteBuf(t, w, &b)
				}); err != nil {
					errc <- err
					return
				}
			}
		}
	}()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("reader got %d bytes (%v); want the %d produced", len(got), err, len(payload))
	}
	if err := <-errc; err != nil {
		t.Fatalf("writer: %v", err)
	}
}
