package gorillaws

import (
	"encoding/binary"
	"sync"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/pollws/pollws/internal/pool"
	"github.com/pollws/pollws/wsconn/internal/frame"
)

// item is one queued frame: a message, a prepared message's frame, a
// close frame, or bytes gorilla wrote itself.
type item struct {
	frame []byte  // the whole frame, header and payload
	buf   *[]byte // pooled storage of frame, from pool.Get; nil when frame is not the writer's
	cost  int     // what the item counts against the budget: 0 for a close frame
	close bool    // a close frame: nothing is queued after it
}

func (it *item) release() {
	if it.buf != nil {
		pool.Put(it.buf)
	}
	*it = item{}
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
	var hb [frame.MaxHeader]byte
	h := frame.Put(&hb, &frame.Header{Fin: true, Op: byte(op), Length: int64(n)})
	buf := pool.Get(h + n)
	f := *buf
	copy(f, hb[:h])
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
	case len(reason) > frame.MaxCloseReason || !utf8.ValidString(reason) || (code == websocket.CloseNoStatusReceived && reason != ""):
		return errCloseReason
	}
	return nil
}

// sendableCode reports whether a close frame may carry code (RFC 6455
// section 7.4), 1005 standing for a close frame without one.
func sendableCode(code int) bool {
	return code == websocket.CloseNoStatusReceived || code >= 0 && code <= 0xffff && frame.ValidCloseCode(uint16(code))
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
