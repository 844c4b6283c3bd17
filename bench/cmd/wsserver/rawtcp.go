package main

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
)

func init() { impls["rawtcp"] = newRawTCP }

// newRawTCP is the ceiling: a length-prefixed echo over plain TCP with
// buffered I/O, flushed when the reader has nothing more buffered.
func newRawTCP(*options) (impl, error) {
	return impl{raw: func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go rawEcho(c)
		}
	}}, nil
}

func rawEcho(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	bw := bufio.NewWriterSize(c, 4096)
	var hdr [4]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if uint32(cap(payload)) < n {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		bw.Write(hdr[:])
		bw.Write(payload)
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}
