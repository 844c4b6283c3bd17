package main

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/gobwas/ws"
)

func init() { impls["gobwas"] = newGobwas }

// newGobwas is gobwas/ws's low-level API as its README shows it (ReadHeader,
// Cipher, WriteHeader; the connection served on a goroutine of its own and
// the handler returned), with a buffered writer flushed when the reader has
// nothing more buffered: the batching a tuned gobwas server does by hand.
func newGobwas() impl {
	return impl{echo: func(w http.ResponseWriter, r *http.Request) {
		conn, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		go gobwasEcho(conn)
	}}
}

func gobwasEcho(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 4096)
	bw := bufio.NewWriterSize(conn, 4096)
	var payload []byte
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return
		}
		if int64(cap(payload)) < h.Length {
			payload = make([]byte, h.Length)
		}
		payload = payload[:h.Length]
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		if h.Masked {
			ws.Cipher(payload, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpClose:
			ws.WriteFrame(bw, ws.NewCloseFrame(payload))
			bw.Flush()
			return
		case ws.OpPing:
			h.OpCode = ws.OpPong
		case ws.OpPong:
			continue
		}
		h.Masked = false
		if err := ws.WriteHeader(bw, h); err != nil {
			return
		}
		if _, err := bw.Write(payload); err != nil {
			return
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}
