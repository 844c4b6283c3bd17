package gorillaws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// clientFrame encodes a frame as a client sends it, masked, with first
// header byte b0 (FIN, RSV and opcode bits).
func clientFrame(b0 byte, payload []byte) []byte { return wstest.Frame(b0, payload, true) }

// echoLoop is an application's read loop that echoes every message
// through w; the error that ended it arrives on the channel.
func echoLoop(t *testing.T, c *websocket.Conn, w *Writer) <-chan error {
	end := make(chan error, 1)
	ctx := testCtx(t)
	go func() {
		for {
			typ, p, err := c.ReadMessage()
			if err == nil {
				_, err = asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
					return w.PollWriteMessage(t, typ, p)
				})
			}
			if err != nil {
				end <- err
				return
			}
		}
	}()
	return end
}

// serverFrame is a frame the client read.
type serverFrame struct {
	op      ws.OpCode
	payload []byte
}

func (f serverFrame) String() string {
	if f.op == ws.OpClose && len(f.payload) >= 2 {
		return fmt.Sprintf("close %d", binary.BigEndian.Uint16(f.payload))
	}
	return fmt.Sprintf("%v of %d bytes", f.op, len(f.payload))
}

// readFrames reads frames until a close frame or the end of the
// connection.
func readFrames(r io.Reader) ([]serverFrame, error) {
	var got []serverFrame
	for {
		f, err := ws.ReadFrame(r)
		if err != nil {
			return got, err
		}
		got = append(got, serverFrame{f.Header.OpCode, f.Payload})
		if f.Header.OpCode == ws.OpClose {
			return got, nil
		}
	}
}

// TestGorillaCloseFollowsQueuedEcho: bad input arrives right after
// messages whose echoes are queued behind a client that does not read
// yet. gorilla answers it with a close frame of its own (1002 for a
// protocol error, 1009 for a message over the read limit); that close goes
// out after the echoes, not ahead of them, and the connection ends.
func TestGorillaCloseFollowsQueuedEcho(t *testing.T) {
	const limit = 1 << 20
	for _, tc := range []struct {
		name string
		bad  []byte
		code int
	}{
		{"RSV2", clientFrame(0x80|0x20|byte(ws.OpText), []byte("RSV2")), websocket.CloseProtocolError},
		{"opcode 0xB", clientFrame(0x80|0xb, nil), websocket.CloseProtocolError},
		{"unmasked", []byte{0x80 | byte(ws.OpText), 1, 'x'}, websocket.CloseProtocolError},
		{"over the read limit", clientFrame(0x80|byte(ws.OpBinary), make([]byte, limit+1)), websocket.CloseMessageTooBig},
	} {
		for _, useTLS := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tls=%v", tc.name, useTLS), func(t *testing.T) {
				s := newTestServer(t, useTLS)
				conn, r, _, server := s.dialGobwas(t)
				tcpConn(server.NetConn()).SetReadBuffer(1 << 20) // this client sends more than control frames
				server.SetReadLimit(limit)
				w := New(server, &Options{QueueBytes: 4 << 20})
				defer w.Close()
				appRead := echoLoop(t, server, w)

				big := bytes.Repeat([]byte("b"), 256<<10)
				in := bytes.Join([][]byte{
					clientFrame(0x80|byte(ws.OpBinary), big),
					clientFrame(0x80|byte(ws.OpText), []byte("queued")),
					tc.bad,
				}, nil)
				if _, err := conn.Write(in); err != nil {
					t.Fatal(err)
				}
				if err := <-appRead; err == nil || websocket.IsCloseError(err) {
					t.Fatalf("application read ended with %v, want gorilla's error", err)
				}

				conn.SetDeadline(time.Now().Add(10 * time.Second))
				got, err := readFrames(r)
				want := []serverFrame{{ws.OpBinary, big}, {ws.OpText, []byte("queued")}, {ws.OpClose, nil}}
				ok := err == nil && len(got) == len(want)
				for i := 0; ok && i < len(want)-1; i++ {
					ok = got[i].op == want[i].op && bytes.Equal(got[i].payload, want[i].payload)
				}
				if ok {
					last := got[len(got)-1].payload
					ok = len(last) >= 2 && int(binary.BigEndian.Uint16(last)) == tc.code
				}
				if !ok {
					t.Fatalf("client read %v, %v; want the echoes of %d and 6 bytes, then close %d", got, err, len(big), tc.code)
				}
				if _, err := conn.Write(clientFrame(0x80|byte(ws.OpClose), binary.BigEndian.AppendUint16(nil, uint16(tc.code)))); err != nil {
					t.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, r); err != nil && !errors.Is(err, io.EOF) {
					t.Fatalf("after the close handshake: %v after %d bytes, want the connection closed", err, n)
				}
			})
		}
	}
}
