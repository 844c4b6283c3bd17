package echotest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
)

// First header byte of a frame: FIN, RSV bits, opcode.
const (
	bFin  = 0x80
	bRsv1 = 0x40
	bRsv2 = 0x20
	bRsv3 = 0x10
	bCont = byte(ws.OpContinuation)
	bText = byte(ws.OpText)
	bBin  = byte(ws.OpBinary)
	bClos = byte(ws.OpClose)
	bPing = byte(ws.OpPing)
	bPong = byte(ws.OpPong)
)

var clientMask = [4]byte{0xa1, 0x02, 0x7e, 0x55}

// rawFrame encodes a frame with first header byte b0, masked as a client
// masks its frames unless unmasked is set.
func rawFrame(b0 byte, payload []byte, unmasked bool) []byte {
	b := []byte{b0, 0}
	switch n := len(payload); {
	case n <= 125:
		b[1] = byte(n)
	case n <= 0xffff:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	p := bytes.Clone(payload)
	if !unmasked {
		b[1] |= 0x80
		b = append(b, clientMask[:]...)
		ws.Cipher(p, clientMask, 0)
	}
	return append(b, p...)
}

// frame is a masked client frame.
func frame(b0 byte, payload []byte) []byte { return rawFrame(b0, payload, false) }

// text is a masked client frame of a text payload.
func text(b0 byte, s string) []byte { return rawFrame(b0, []byte(s), false) }

// closeBody is the payload of a close frame with code and reason.
func closeBody(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

func cat(b ...[]byte) []byte { return bytes.Join(b, nil) }

// clientTLS trusts any certificate: the servers under test make theirs.
var clientTLS = &tls.Config{InsecureSkipVerify: true}

// gorillaDial connects a gorilla client to s, reading messages of up to
// 64 MiB.
func gorillaDial(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: clientTLS, HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial(s.WSURL(), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", s.WSURL(), err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadLimit(64 << 20)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	return c
}

// rawConn is a WebSocket connection whose frames the test writes and
// reads itself: the handshake is gobwas's, everything after it is bytes.
type rawConn struct {
	net.Conn
	r io.Reader // what the server sends, starting with what the handshake buffered
}

// rawDial opens a rawConn to s. The connection is closed when t ends.
func rawDial(t *testing.T, s *Server) *rawConn {
	t.Helper()
	c, err := dialRaw(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialRaw(s *Server) (*rawConn, error) {
	d := ws.Dialer{Timeout: 10 * time.Second, TLSConfig: clientTLS}
	conn, br, _, err := d.Dial(context.Background(), s.WSURL())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", s.WSURL(), err)
	}
	c := &rawConn{Conn: conn, r: conn}
	if br != nil {
		c.r = io.MultiReader(br, conn)
	}
	return c, nil
}

// readFrame reads one frame the server sent, waiting at most wait.
func (c *rawConn) readFrame(wait time.Duration) (ws.Frame, error) {
	c.SetReadDeadline(time.Now().Add(wait))
	return ws.ReadFrame(c.r)
}

// serverClose reads what the server sends until its close frame or the
// end of the connection, and returns the close frame's status code (1005
// for one without a code), or 0 when none came.
func (c *rawConn) serverClose() (int, error) {
	for {
		f, err := c.readFrame(10 * time.Second)
		if err != nil {
			if connEnded(err) {
				return 0, nil
			}
			return 0, fmt.Errorf("reading the server's answer: %w", err)
		}
		if f.Header.OpCode == ws.OpClose {
			return closeCode(f.Payload), nil
		}
		// A pong, or data the server echoed.
	}
}

// closeCode returns the code of a close frame's payload, 1005 if it has
// none.
func closeCode(payload []byte) int {
	if len(payload) < 2 {
		return int(ws.StatusNoStatusRcvd)
	}
	return int(binary.BigEndian.Uint16(payload))
}

// connEnded reports whether err says the connection ended: EOF, or a
// reset.
func connEnded(err error) bool {
	var op *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &op) && !op.Timeout()
}
