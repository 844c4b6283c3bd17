package gorillaws

import (
	"encoding/binary"
	"math/bits"
	"sync"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// item is one queued frame: a message, a prepared message's frame, a
// close frame, or bytes gorilla wrote itself.
type item struct {
	frame []byte  // the whole frame, header and payload
	buf   *[]byte // pooled storage of frame, from getBuf; nil when frame is not the writer's
	cost  int     // what the item counts against the budget: 0 for a close frame
	close bool    // a close frame: nothing is queued after it
}

func (it *item) release() {
	if it.buf != nil {
		putBuf(it.buf)
	}
	*it = item{}
}

// frameLen returns the length of a server frame (not masked) with a
// payload of n bytes.
func frameLen(n int) int {
	switch {
	case n <= 125:
		return 2 + n
	case n <= 0xffff:
		return 4 + n
	}
	return 10 + n
}

// payloadLen returns the length of the payload of f, a whole server
// frame.
func payloadLen(f []byte) int {
	switch f[1] & 0x7f {
	case 126:
		return len(f) - 4
	case 127:
		return len(f) - 10
	}
	return len(f) - 2
}

// newFrame returns an item holding a final frame of opcode op (gorilla's
// message types are the opcodes) with a payload of n bytes, and that
// payload, for the caller to fill.
func newFrame(op, n, cost int) (item, []byte) {
	buf := getBuf(frameLen(n))
	f := *buf
	f[0] = 0x80 | byte(op)
	var h int
	switch {
	case n <= 125:
		f[1], h = byte(n), 2
	case n <= 0xffff:
		f[1], h = 126, 4
		binary.BigEndian.PutUint16(f[2:], uint16(n))
	default:
		f[1], h = 127, 10
		binary.BigEndian.PutUint64(f[2:], uint64(n))
	}
	return item{frame: f, buf: buf, cost: cost}, f[h:]
}

// closeFrame returns the close frame for code and reason, with no payload
// for code 1005 (websocket.CloseNoStatusReceived).
func closeFrame(code int, reason string) item {
	n := 0
	if code != websocket.CloseNoStatusReceived {
		n = 2 + len(reason)
	}
	it, p := newFrame(websocket.CloseMessage, n, 0)
	if n > 0 {
		binary.BigEndian.PutUint16(p, uint16(code))
		copy(p[2:], reason)
	}
	it.close = true
	return it
}

// checkClose returns the error that refuses a close frame with code and
// reason, or nil.
func checkClose(code int, reason string) error {
	switch {
	case !sendableCode(code):
		return errCloseCode
	case len(reason) > 123 || !utf8.ValidString(reason) || (code == websocket.CloseNoStatusReceived && reason != ""):
		return errCloseReason
	}
	return nil
}

// sendableCode reports whether a close frame may carry code (RFC 6455
// section 7.4), 1005 standing for a close frame without one.
func sendableCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code == websocket.CloseNoStatusReceived,
		code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// closeCode returns the code of p, if p is a whole server close frame:
// 1005 when it carries none.
func closeCode(p []byte) (code int, ok bool) {
	if len(p) < 2 || p[0]&0x0f != websocket.CloseMessage || p[1]&0x80 != 0 || int(p[1]&0x7f) != len(p)-2 {
		return 0, false
	}
	if len(p) < 4 {
		return websocket.CloseNoStatusReceived, true
	}
	return int(binary.BigEndian.Uint16(p[2:])), true
}

// queue is a FIFO ring of items. Rings are pooled: a writer holds one
// only while it has frames queued.
type queue struct {
	items []item // len is a power of two
	head  int
	n     int
}

var queues = sync.Pool{New: func() any { return &queue{items: make([]item, 16)} }}

func (q *queue) push(it item) {
	if q.n == len(q.items) {
		items := make([]item, 2*len(q.items))
		for i := range q.n {
			items[i] = q.items[(q.head+i)&(len(q.items)-1)]
		}
		q.items, q.head = items, 0
	}
	q.items[(q.head+q.n)&(len(q.items)-1)] = it
	q.n++
}

func (q *queue) peek() *item { return &q.items[q.head] }

func (q *queue) pop() item {
	it := q.items[q.head]
	q.items[q.head] = item{}
	q.head = (q.head + 1) & (len(q.items) - 1)
	q.n--
	return it
}

// Frame buffers come from pools by power-of-two size class, from 64 B to
// maxBuf (1 MiB); larger ones are allocated for the frame.
const (
	minBufShift = 6
	maxBufShift = 20
	maxBuf      = 1 << maxBufShift
)

var bufs [maxBufShift - minBufShift + 1]sync.Pool

func bufClass(n int) int {
	return max(bits.Len(uint(n-1)), minBufShift) - minBufShift
}

// getBuf returns a buffer of length n > 0.
func getBuf(n int) *[]byte {
	if n > maxBuf {
		b := make([]byte, n)
		return &b
	}
	c := bufClass(n)
	if v := bufs[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(c+minBufShift))
	return &b
}

func putBuf(b *[]byte) {
	if c := cap(*b); c <= maxBuf && c == 1<<(bufClass(c)+minBufShift) {
		bufs[bufClass(c)].Put(b)
	}
}
