package socket_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/pollws/pollws/internal/socket"
)

// pair returns both ends of a loopback TCP connection, the first as a
// Socket.
func pair(t *testing.T) (*socket.Socket, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	s, ok := socket.Of(c)
	if !ok {
		if !socket.Supported {
			t.Skip("no raw sockets on this system")
		}
		t.Fatal("no socket for a TCP connection")
	}
	return s, peer
}

// TestSocketMovesBytesBothWays: writes of a few bytes and of more than the
// socket takes at once, reads of a few bytes and of a large buffer, each
// carries exactly the bytes given, in order; a read with nothing there
// answers ErrWouldBlock, and the peer's end is io.EOF.
func TestSocketMovesBytesBothWays(t *testing.T) {
	s, peer := pair(t)
	for _, size := range []int{1, 300, 64 << 10, 64<<10 + 1, 1 << 20} {
		// Writev: the slices in order, all of them, across partial
		// writes when the socket is full.
		msg := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		got := make(chan []byte, 1)
		go func() {
			b := make([]byte, 2*size)
			n, _ := io.ReadFull(peer, b[:2*size])
			got <- b[:n]
		}()
		v := [][]byte{msg[:size/2], nil, msg[size/2:], msg}
		sent := 0
		for sent < 2*size {
			n, err := s.Writev(skip(v, sent))
			switch {
			case errors.Is(err, socket.ErrWouldBlock):
				if err := s.WaitWritable(); err != nil {
					t.Fatal(err)
				}
			case err != nil:
				t.Fatalf("%d bytes: %v", size, err)
			}
			sent += n
		}
		if b := <-got; !bytes.Equal(b, append(msg[:size:size], msg...)) {
			t.Fatalf("%d bytes: the peer read %d other bytes", size, len(b))
		}

		// Read: nothing yet, then what the peer wrote, in any chunks.
		if _, err := s.Read(make([]byte, 16)); !errors.Is(err, socket.ErrWouldBlock) {
			t.Fatalf("a read with nothing sent: %v, want ErrWouldBlock", err)
		}
		go peer.Write(msg)
		var read []byte
		buf := make([]byte, min(max(size/3, 1), 16<<10))
		if size > 64<<10 {
			buf = make([]byte, 128<<10) // larger than the raw-call bound
		}
		for len(read) < size {
			n, err := s.Read(buf)
			switch {
			case errors.Is(err, socket.ErrWouldBlock):
				if err := s.WaitReadable(); err != nil {
					t.Fatal(err)
				}
			case err != nil:
				t.Fatalf("%d bytes: %v", size, err)
			}
			read = append(read, buf[:n]...)
		}
		if !bytes.Equal(read, msg) {
			t.Fatalf("%d bytes: read %d other bytes", size, len(read))
		}
	}
	peer.Close()
	if err := s.WaitReadable(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(make([]byte, 16)); err != io.EOF {
		t.Fatalf("a read after the peer closed: %v, want io.EOF", err)
	}
}

// skip returns v without its first n bytes.
func skip(v [][]byte, n int) [][]byte {
	var out [][]byte
	for _, b := range v {
		if n >= len(b) {
			n -= len(b)
			continue
		}
		out = append(out, b[n:])
		n = 0
	}
	return out
}
