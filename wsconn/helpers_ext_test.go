package wsconn_test

import (
	"bytes"
	"context"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/wsconn"
)

// readMessage reads a message with c.ReadMessage, for tests that compare
// with frames read by gobwas/ws: its opcode and a copy of its payload.
func readMessage(ctx context.Context, c *wsconn.Conn) (ws.OpCode, []byte, error) {
	m, err := c.ReadMessage(ctx)
	return ws.OpCode(m.Type), bytes.Clone(m.Data), err
}
