package load

import (
	"encoding/binary"
	"fmt"
	"io"
)

// WebSocket opcodes the reader tells apart.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
)

// Reader reads messages from a connection into one buffer it reuses,
// parsing frame headers by hand: one read system call brings in as many
// messages as have arrived, and none allocates. Control frames are
// skipped, a close frame ends the stream with [io.EOF], and a fragmented
// message is joined in a second buffer, also reused. On a connection that
// agreed on permessage-deflate without context takeover
// ([Reader.SetDeflate]), a message whose first frame has RSV1 set is
// inflated into a third buffer, also reused. A Reader is used by one
// goroutine at a time.
type Reader struct {
	r     io.Reader
	proto Proto
	size  int // the buffer's size when it is (re)allocated
	limit int
	buf   []byte
	start int // buf[start:end] is read and not yet parsed
	end   int
	// need is how many bytes from start the frame being parsed needs.
	need int
	// err is the first read error, returned once the bytes before it are
	// parsed; perr the first parse error, returned by every later call.
	err  error
	perr error
	// joining is true while a fragmented message is being joined in msg;
	// joinDeflated when that message is compressed.
	joining, joinDeflated bool
	msg                   []byte
	// deflate accepts compressed messages, inflated into plain.
	deflate bool
	plain   []byte
}

// NewReader returns a Reader of messages framed for p from r, with a
// buffer of size bytes, grown for a message that needs more; a message
// longer than limit bytes is an error ([ErrTooLarge]).
func NewReader(r io.Reader, p Proto, size, limit int) *Reader {
	return &Reader{r: r, proto: p, size: max(size, 16), limit: limit}
}

// SetDeflate has the reader accept compressed messages (RSV1 on a
// message's first frame) and inflate them, each on its own, as
// permessage-deflate without context takeover on the server's side
// sends them.
func (r *Reader) SetDeflate(on bool) { r.deflate = on }

// Fill reads from the connection once, into the room after the bytes not
// yet parsed, first moving them to the front of the buffer, or to a larger
// one when the frame they start needs more room than the buffer has. The
// messages returned by [Reader.Next] before are invalid afterwards.
func (r *Reader) Fill() error {
	if r.perr != nil {
		return r.perr
	}
	if r.err != nil {
		return r.err
	}
	if r.start == r.end {
		r.start, r.end = 0, 0
	}
	if r.buf == nil || r.start+r.need > len(r.buf) || r.end == len(r.buf) {
		want := max(r.need, r.size)
		if pending := r.end - r.start; pending > 0 && pending == len(r.buf) {
			want = max(want, 2*pending) // full of bytes Next was not asked about
		}
		b := r.buf
		if len(b) < want {
			b = make([]byte, want)
		}
		r.end = copy(b, r.buf[r.start:r.end])
		r.start, r.buf = 0, b
	}
	n, err := r.r.Read(r.buf[r.end:])
	r.end += n
	if err != nil {
		r.err = err
		if n > 0 {
			return nil // the bytes first; the error on the next Fill
		}
	}
	return err
}

// Next returns the next complete message already read, or ok false when
// what is buffered holds none; it never reads. The message is valid until
// the next [Reader.Fill], or the next Next for one that was inflated.
func (r *Reader) Next() (msg []byte, ok bool, err error) {
	if r.perr != nil {
		return nil, false, r.perr
	}
	if r.proto == Raw {
		msg, ok, err = r.nextRaw()
	} else {
		msg, ok, err = r.nextWebSocket()
	}
	r.perr = err
	return msg, ok, err
}

func (r *Reader) nextWebSocket() ([]byte, bool, error) {
	for {
		b := r.buf[r.start:r.end]
		if len(b) < 2 {
			r.need = 2
			return nil, false, nil
		}
		b0, b1 := b[0], b[1]
		fin, op := b0&0x80 != 0, b0&0x0f
		if b1&0x80 != 0 {
			return nil, false, fmt.Errorf("%w: masked frame from a server", ErrFrame)
		}
		rsv := b0 & 0x70
		deflated := rsv == rsv1 && r.deflate && (op == opText || op == opBinary)
		if rsv != 0 && !deflated {
			return nil, false, fmt.Errorf("%w: reserved bits %#x on opcode %#x", ErrFrame, rsv, op)
		}
		h, n := 2, uint64(b1&0x7f)
		switch n {
		case 126:
			if h = 4; len(b) < h {
				r.need = h
				return nil, false, nil
			}
			n = uint64(binary.BigEndian.Uint16(b[2:]))
		case 127:
			if h = 10; len(b) < h {
				r.need = h
				return nil, false, nil
			}
			n = binary.BigEndian.Uint64(b[2:])
		}
		if n > uint64(r.limit) {
			return nil, false, fmt.Errorf("%w: a frame of %d bytes, limit %d", ErrTooLarge, n, r.limit)
		}
		total := h + int(n)
		if len(b) < total {
			r.need = total
			return nil, false, nil
		}
		r.start += total
		r.need = 0
		p := b[h:total]
		switch op {
		case opText, opBinary:
			if r.joining {
				return nil, false, fmt.Errorf("%w: a new message inside a fragmented one", ErrFrame)
			}
			if fin {
				return r.message(p, deflated)
			}
			r.joining, r.joinDeflated, r.msg = true, deflated, append(r.msg[:0], p...)
		case opContinuation:
			if !r.joining {
				return nil, false, fmt.Errorf("%w: a continuation outside a fragmented message", ErrFrame)
			}
			if len(r.msg)+len(p) > r.limit {
				return nil, false, fmt.Errorf("%w: a message of over %d bytes", ErrTooLarge, r.limit)
			}
			if r.msg = append(r.msg, p...); fin {
				r.joining = false
				return r.message(r.msg, r.joinDeflated)
			}
		case opClose:
			return nil, false, io.EOF
		case 0x9, 0xa: // ping, pong: nothing to echo
		default:
			return nil, false, fmt.Errorf("%w: opcode %#x", ErrFrame, op)
		}
	}
}

// message returns the payload p of a whole message, inflated when it
// is compressed.
func (r *Reader) message(p []byte, deflated bool) ([]byte, bool, error) {
	if !deflated {
		return p, true, nil
	}
	var err error
	if r.plain, err = inflate(r.plain, p, r.limit); err != nil {
		return nil, false, err
	}
	return r.plain, true, nil
}

func (r *Reader) nextRaw() ([]byte, bool, error) {
	b := r.buf[r.start:r.end]
	if len(b) < 4 {
		r.need = 4
		return nil, false, nil
	}
	n := uint64(binary.BigEndian.Uint32(b))
	if n > uint64(r.limit) {
		return nil, false, fmt.Errorf("%w: a message of %d bytes, limit %d", ErrTooLarge, n, r.limit)
	}
	total := 4 + int(n)
	if len(b) < total {
		r.need = total
		return nil, false, nil
	}
	r.start += total
	r.need = 0
	return b[4:total], true, nil
}

// ReadMessage returns the next message, reading as needed; it is valid
// until the next read.
func (r *Reader) ReadMessage() ([]byte, error) {
	for {
		m, ok, err := r.Next()
		if ok || err != nil {
			return m, err
		}
		if err := r.Fill(); err != nil {
			if err == io.EOF && (r.start < r.end || r.joining) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// Release lets the buffers go when nothing unparsed is left in them, so
// that an idle connection holds none; the next [Reader.Fill] allocates
// again.
func (r *Reader) Release() {
	if r.start == r.end && !r.joining {
		r.buf, r.msg, r.plain, r.start, r.end = nil, nil, nil, 0, 0
	}
}

// prime hands the reader bytes already read from its connection (what a
// handshake's buffered reader read past the response).
func (r *Reader) prime(b []byte) {
	r.buf = make([]byte, max(r.size, len(b)))
	r.start, r.end = 0, copy(r.buf, b)
}
