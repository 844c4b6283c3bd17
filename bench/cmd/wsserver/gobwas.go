package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/klauspost/compress/flate"

	"github.com/pollws/pollws/bench/internal/flatesrc"
)

func init() { impls["gobwas"] = newGobwas }

// newGobwas is gobwas/ws's low-level API as its README shows it (ReadHeader,
// Cipher, WriteHeader; the connection served on a goroutine of its own and
// the handler returned), with a buffered writer flushed when the reader has
// nothing more buffered: the batching a tuned gobwas server does by hand.
//
// /deflate adds wsflate as its README shows it (an Extension negotiating
// no context takeover either way, the RSV1 bit set and cleared by
// SetBit and UnsetBit, a wsflate.Writer around a flate implementation of
// the application's choice), tuned the same way: the flate implementation
// is github.com/klauspost/compress/flate at level 1, the fastest a wsflate
// user can choose (pollws compresses with it the messages its own encoder
// does not take), and its writers and readers come from pools for the
// length of one message, so that an idle connection holds none.
//
// The inflation reads klauspost's reader directly, over the payload and
// the blocks that end it, where wsflate.Reader would: over a source that
// is an io.ByteReader, as a payload in memory is, wsflate.Reader's
// suffixed source (gobwas/ws v1.4.0) returns a stray zero byte when the
// source runs out inside ReadByte, which klauspost's reader, reading
// byte by byte, fails on for some messages ("corrupt input"); over one
// that is not, klauspost wraps it in a bufio.Reader of 4 KiB per message.
func newGobwas(*options) (impl, error) {
	return impl{
		echo: func(w http.ResponseWriter, r *http.Request) {
			conn, _, _, err := ws.UpgradeHTTP(r, w)
			if err != nil {
				return
			}
			go gobwasEcho(conn)
		},
		deflate: func(w http.ResponseWriter, r *http.Request) {
			e := wsflate.Extension{Parameters: wsflate.DefaultParameters}
			u := ws.HTTPUpgrader{Negotiate: e.Negotiate}
			conn, _, _, err := u.Upgrade(r, w)
			if err != nil {
				return
			}
			_, compress := e.Accepted()
			go gobwasDeflateEcho(conn, compress)
		},
	}, nil
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

// gobwasInflater is klauspost's flate reader and its source.
type gobwasInflater struct {
	fr  io.ReadCloser
	src flatesrc.Reader
}

var (
	gobwasInflaters = sync.Pool{New: func() any { return &gobwasInflater{fr: flate.NewReader(nil)} }}
	gobwasWriters   = sync.Pool{New: func() any {
		return wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
			fw, _ := flate.NewWriter(w, flate.BestSpeed) // a valid level: no error
			return fw
		})
	}}
)

// gobwasDeflateEcho is gobwasEcho with the data messages that come
// compressed inflated, and every data message's echo compressed when
// compress (the client agreed on permessage-deflate). The client sends
// single-frame messages; a fragment ends the connection.
func gobwasDeflateEcho(conn net.Conn, compress bool) {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 4096)
	bw := bufio.NewWriterSize(conn, 4096)
	var payload []byte
	var plain, packed bytes.Buffer
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
		h.Masked = false
		switch h.OpCode {
		case ws.OpClose:
			ws.WriteFrame(bw, ws.NewCloseFrame(payload))
			bw.Flush()
			return
		case ws.OpPing:
			h.OpCode = ws.OpPong
		case ws.OpPong:
			continue
		case ws.OpText, ws.OpBinary:
			if !h.Fin {
				return
			}
			var inflated bool
			if h, inflated, err = wsflate.UnsetBit(h); err != nil {
				return
			}
			if inflated {
				if !compress {
					return
				}
				f := gobwasInflaters.Get().(*gobwasInflater)
				f.src.Reset(payload)
				err := f.fr.(flate.Resetter).Reset(&f.src, nil)
				plain.Reset()
				if err == nil {
					_, err = plain.ReadFrom(f.fr)
				}
				f.src.Reset(nil)
				gobwasInflaters.Put(f)
				if err != nil {
					return
				}
				payload = append(payload[:0], plain.Bytes()...)
			}
			if compress {
				fw := gobwasWriters.Get().(*wsflate.Writer)
				packed.Reset()
				fw.Reset(&packed)
				_, err := fw.Write(payload)
				if err == nil {
					err = fw.Flush()
				}
				gobwasWriters.Put(fw)
				if err != nil {
					return
				}
				if h, err = wsflate.SetBit(h); err != nil {
					return
				}
				payload = append(payload[:0], packed.Bytes()...)
			}
			h.Length = int64(len(payload))
		default:
			return
		}
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
