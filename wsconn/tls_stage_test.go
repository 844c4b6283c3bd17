package wsconn

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// TestTLSStagesSmallFrames: over TLS on a socket, a burst of small
// messages goes out in a few records, not a record each, and every
// message arrives.
func TestTLSStagesSmallFrames(t *testing.T) {
	const msgs, size = 200, 16
	server, client, _, tcpClient, err := wstest.NewTLSSocket(false)
	if err != nil {
		t.Fatal(err)
	}
	c := Server(server, nil)
	defer c.Close()
	defer client.Close()
	if c.tls == nil {
		t.Fatal("the Conn does not write through TLS over the socket")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := make([]byte, size)
	for i := range msgs {
		binary.BigEndian.PutUint32(p, uint32(i))
		if _, err := asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
			return c.PollWriteMessage(t, Binary, p)
		}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := asyncio.Flush(ctx, c); err != nil {
		t.Fatal(err)
	}

	// The raw bytes: TLS records, each a 5-byte header and its length.
	want := msgs * (2 + size)
	var records, plain int
	tcpClient.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [5]byte
	var body []byte
	for plain < want {
		if _, err := io.ReadFull(tcpClient, hdr[:]); err != nil {
			t.Fatalf("after %d records (%d of %d bytes of frames): %v", records, plain, want, err)
		}
		n := int(binary.BigEndian.Uint16(hdr[3:]))
		body = append(body[:0], make([]byte, n)...)
		if _, err := io.ReadFull(tcpClient, body); err != nil {
			t.Fatal(err)
		}
		records++
		// A TLS 1.3 record adds a content type byte and a 16-byte tag
		// to its plaintext. The session tickets the server sent after
		// its handshake come first and count as frames here, so the
		// loop may stop a record early, never late.
		plain += n - 17
	}
	if records > 8 {
		t.Fatalf("%d messages of %d bytes went out in %d TLS records; want a few", msgs, size, records)
	}
	t.Logf("%d messages of %d bytes in %d TLS records", msgs, size, records)
}
