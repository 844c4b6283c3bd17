package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"time"

	"github.com/gobwas/ws"
)

// proto is how the load client frames messages: WebSocket, or a 4-byte
// length prefix for the raw TCP ceiling.
type proto int

const (
	protoWS proto = iota
	protoRaw
)

func protoOf(impl string) proto {
	if impl == "rawtcp" {
		return protoRaw
	}
	return protoWS
}

// clientConn is one load-client connection with buffered I/O.
type clientConn struct {
	net.Conn
	proto proto
	br    *bufio.Reader
	bw    *bufio.Writer
	mask  [4]byte
	wbuf  []byte // owned by the writing goroutine
	rbuf  []byte // owned by the reading goroutine
}

// dial opens a connection to path on addr and, for WebSocket, upgrades it.
func dial(ctx context.Context, p proto, addr, path string) (*clientConn, error) {
	var c net.Conn
	var br *bufio.Reader
	var err error
	if p == protoWS {
		c, br, _, err = ws.Dialer{Timeout: 10 * time.Second}.Dial(ctx, "ws://"+addr+path)
	} else {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	if br == nil {
		br = bufio.NewReaderSize(c, 32<<10)
	}
	return &clientConn{Conn: c, proto: p, br: br, bw: bufio.NewWriterSize(c, 32<<10), mask: ws.NewMask()}, nil
}

// writeMsg buffers one message; the caller flushes.
func (c *clientConn) writeMsg(p []byte) error {
	if c.proto == protoRaw {
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(len(p)))
		c.bw.Write(hdr[:])
		_, err := c.bw.Write(p)
		return err
	}
	h := ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Mask: c.mask, Length: int64(len(p))}
	if err := ws.WriteHeader(c.bw, h); err != nil {
		return err
	}
	if cap(c.wbuf) < len(p) {
		c.wbuf = make([]byte, len(p))
	}
	m := c.wbuf[:len(p)]
	copy(m, p)
	ws.Cipher(m, c.mask, 0)
	_, err := c.bw.Write(m)
	return err
}

// readMsg reads one data message into the connection's buffer and returns
// it (valid until the next read), joining fragments; control frames are
// skipped.
func (c *clientConn) readMsg() ([]byte, error) {
	if c.proto == protoRaw {
		var hdr [4]byte
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			return nil, err
		}
		return c.readN(0, int64(binary.BigEndian.Uint32(hdr[:])))
	}
	var msg []byte
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			return nil, err
		}
		if h.OpCode.IsControl() {
			if _, err := c.br.Discard(int(h.Length)); err != nil {
				return nil, err
			}
			if h.OpCode == ws.OpClose {
				return nil, io.EOF
			}
			continue
		}
		if msg, err = c.readN(len(msg), h.Length); err != nil {
			return nil, err
		}
		if h.Fin {
			return msg, nil
		}
	}
}

// readN reads n more bytes after the first off bytes of the read buffer
// and returns the buffer's first off+n bytes.
func (c *clientConn) readN(off int, n int64) ([]byte, error) {
	end := off + int(n)
	if cap(c.rbuf) < end {
		c.rbuf = append(c.rbuf[:off], make([]byte, end-off)...)
	}
	p := c.rbuf[:end]
	_, err := io.ReadFull(c.br, p[off:])
	return p, err
}
