package wsconn

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/wsconn/internal/deflate"
	"github.com/pollws/pollws/wsconn/internal/frame"
)

// ErrPreparedEncoding: the bytes given to [PreparedMessage.ResetBinary]
// are not an encoding that [PreparedMessage.AppendBinary] makes.
var ErrPreparedEncoding = errors.New("wsconn: malformed prepared message")

// maxForms is the most compressed forms a message can have: one per
// level with a window of 15 bits, and one per smaller window.
const maxForms = 9 + 7

// PreparedMessage is a message encoded once for many connections, as a
// broadcast sends it: [Conn.PollWritePrepared] sends it on any number of
// Conns, and those whose permessage-deflate makes the same bytes share one
// compression of it.
//
// A Conn without compression sends the data as it is. A Conn that
// compresses without context takeover, the default of
// [CompressionOptions], sends the message's compressed form for its
// parameters: its level and the window its peer agreed to (a server's
// server_max_window_bits, a client's client_max_window_bits). The first
// Conn that needs a form compresses the data, once; every later Conn of
// that form sends the same bytes (a client masks its copy with its own
// key). Conns with the same [PrepareKey] need the same form;
// [PreparedMessage.Prepare] makes it ahead of the writes. A Conn that
// compresses with context takeover compresses the data itself, as
// [Conn.PollWriteMessage] does: its window holds its own earlier
// messages, so its bytes are its alone.
//
// As with PollWriteMessage, a message below a Conn's MinSize goes out
// uncompressed. So does a message that compression does not make
// smaller (random or already compressed data): the peer reads it the
// same, and the decision is made once for all.
//
// A PreparedMessage keeps the data it was made with, which must not
// change while it is in use; its compressed forms take about what they
// hold. It is safe for use by multiple goroutines, except
// [PreparedMessage.Reset] and [PreparedMessage.ResetBinary], which must
// not run while another call uses it. When a Conn writes it, the Conn's
// lock is taken before the message's.
type PreparedMessage struct {
	typ  MessageType
	data []byte

	mu    sync.Mutex
	forms []preparedForm // each made once; its bytes never change while m is in use
	arena []byte         // the forms compressed here, back to back
	made  int            // compressions made here since m was made or reset
}

// preparedForm is a message compressed in one form: z, or, when z is
// empty, the finding that compression does not pay, and the message goes
// as it is.
type preparedForm struct {
	form deflate.Form
	z    []byte
}

var _ encoding.BinaryAppender = (*PreparedMessage)(nil)

// NewPreparedMessage returns the message of type typ, [Text] or [Binary],
// holding data, which it keeps without copying. It compresses nothing
// until a Conn needs a compressed form or [PreparedMessage.Prepare] is
// called. Writing a message of another type fails.
func NewPreparedMessage(typ MessageType, data []byte) *PreparedMessage {
	return &PreparedMessage{typ: typ, data: data}
}

// Reset makes m the message of type typ holding data, forgetting its
// compressed forms but keeping their memory for the next ones; see
// [NewPreparedMessage]. It must not run while m is in use.
func (m *PreparedMessage) Reset(typ MessageType, data []byte) {
	m.typ, m.data = typ, data
	m.forms, m.arena, m.made = m.forms[:0], m.arena[:0], 0
}

// Type returns the message's type.
func (m *PreparedMessage) Type() MessageType { return m.typ }

// Data returns the message's payload, uncompressed, which the caller
// must not change.
func (m *PreparedMessage) Data() []byte { return m.data }

// Compressions returns how many times m compressed its data since it was
// made or reset: at most once per form. A Conn with context takeover
// compresses with its own compressor, which this does not count.
func (m *PreparedMessage) Compressions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.made
}

// Prepare makes now the form that Conns of key k send, if they send m
// compressed and m has not made it yet, so that [Conn.PollWritePrepared]
// on them compresses nothing; for other keys it does nothing. A
// broadcaster that knows its Conns' keys calls it to compress at a time
// of its choosing, and before [PreparedMessage.AppendBinary], to carry
// the form in the encoding. An error is not expected from a working
// compressor.
func (m *PreparedMessage) Prepare(k PrepareKey) error {
	if k.mode != prepareShared || len(m.data) < k.minSize {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.makeLocked(k.form)
	return err
}

// formLocked returns the form f of m, if m has it.
func (m *PreparedMessage) formLocked(f deflate.Form) (z []byte, ok bool) {
	for _, pf := range m.forms {
		if pf.form == f {
			return pf.z, true
		}
	}
	return nil, false
}

// makeLocked returns the form f of m, compressing the data into m's
// arena if m has not that form yet.
func (m *PreparedMessage) makeLocked(f deflate.Form) ([]byte, error) {
	if z, ok := m.formLocked(f); ok {
		return z, nil
	}
	bound := deflate.MaxCompressedLen(len(m.data))
	if cap(m.arena)-len(m.arena) < bound {
		// The forms made so far keep the array they are in.
		m.arena = make([]byte, 0, max(bound, 2*cap(m.arena)))
	}
	start := len(m.arena)
	out, err := f.Compress(m.arena[start:start], m.data)
	if err != nil {
		return nil, fmt.Errorf("wsconn: compressing a prepared message: %w", err)
	}
	m.made++
	z := out[:len(out):len(out)]
	if len(z) >= len(m.data) {
		z = nil // compression does not pay
	}
	m.arena = m.arena[:start+len(z)]
	m.forms = append(m.forms, preparedForm{form: f, z: z})
	return z, nil
}

// The encoding of a PreparedMessage, which AppendBinary makes and
// ResetBinary reads:
//
//	type     1 byte, the MessageType
//	forms    1 byte, how many compressed forms follow, at most 16
//	entries  6 bytes per form: level, window bits, length (big-endian
//	         uint32; 0 when compression does not pay)
//	bytes    the forms' bytes, in the order of their entries
//	data     the rest: the payload, uncompressed
const preparedHead, preparedEntry = 2, 6

// BinaryLen returns how many bytes [PreparedMessage.AppendBinary] appends
// now: 2 more than the data for a message without compressed forms, and 6
// more per form plus its bytes.
func (m *PreparedMessage) BinaryLen() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := preparedHead + len(m.data)
	for _, pf := range m.forms {
		if encodable(pf.z) {
			n += preparedEntry + len(pf.z)
		}
	}
	return n
}

// encodable reports whether the encoding has room for the length of a
// form z; a form that has not stays out of it.
func encodable(z []byte) bool { return uint64(len(z)) <= math.MaxUint32 }

// AppendBinary appends to b the encoding of m, its compressed forms made
// so far included, from which [PreparedMessage.ResetBinary] makes the
// message again without copying and without compressing again: a
// broadcaster can keep one encoded message in a shared buffer and send it
// from there on every connection. It fails only for a message of no
// valid type.
func (m *PreparedMessage) AppendBinary(b []byte) ([]byte, error) {
	if m.typ != Text && m.typ != Binary {
		return b, fmt.Errorf("wsconn: encoding a prepared message of %v: not a message type", m.typ)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := 0
	for _, pf := range m.forms {
		if encodable(pf.z) {
			k++
		}
	}
	b = append(b, byte(m.typ), byte(k))
	for _, pf := range m.forms {
		if encodable(pf.z) {
			b = append(b, byte(pf.form.Level()), byte(pf.form.Bits()))
			b = binary.BigEndian.AppendUint32(b, uint32(len(pf.z)))
		}
	}
	for _, pf := range m.forms {
		if encodable(pf.z) {
			b = append(b, pf.z...)
		}
	}
	return append(b, m.data...), nil
}

// ResetBinary makes m the message that b, made by
// [PreparedMessage.AppendBinary], encodes, with its compressed forms.
// m shares b's bytes, which must not change while m is in use; forms it
// makes for other keys go to its own memory. Bytes that are not such an
// encoding give an error wrapping [ErrPreparedEncoding] and leave m as it
// was. Like [PreparedMessage.Reset], it must not run while m is in use.
func (m *PreparedMessage) ResetBinary(b []byte) error {
	bad := func(why string) error { return fmt.Errorf("%w: %s", ErrPreparedEncoding, why) }
	if len(b) < preparedHead {
		return bad(strconv.Itoa(len(b)) + " bytes")
	}
	typ, k := MessageType(b[0]), int(b[1])
	switch {
	case typ != Text && typ != Binary:
		return bad(fmt.Sprintf("type %v", typ))
	case k > maxForms:
		return bad(strconv.Itoa(k) + " forms")
	case len(b) < preparedHead+k*preparedEntry:
		return bad(fmt.Sprintf("%d bytes for %d forms", len(b), k))
	}
	var forms [maxForms]preparedForm
	off := preparedHead + k*preparedEntry
	for i := range k {
		e := b[preparedHead+i*preparedEntry:]
		f, ok := deflate.NewForm(int(e[0]), int(e[1]))
		if !ok || f.Level() != int(e[0]) {
			return bad(fmt.Sprintf("form of level %d with a window of %d bits", e[0], e[1]))
		}
		for _, g := range forms[:i] {
			if g.form == f {
				return bad(fmt.Sprintf("form of level %d with a window of %d bits twice", e[0], e[1]))
			}
		}
		n := binary.BigEndian.Uint32(e[2:])
		if uint64(n) > uint64(len(b)-off) {
			return bad(fmt.Sprintf("a form of %d bytes in %d", n, len(b)-off))
		}
		end := off + int(n)
		forms[i] = preparedForm{form: f, z: b[off:end:end]}
		off = end
	}
	m.Reset(typ, b[off:len(b):len(b)])
	m.forms = append(m.forms, forms[:k]...)
	return nil
}

// PrepareKey names what a [Conn] sends for a [PreparedMessage]: Conns
// with equal keys send the same bytes (a client's masked with its own
// key), so that one call of [PreparedMessage.Prepare] serves them all.
// Keys are comparable, made to count Conns by in a map; the zero key is
// that of a Conn without compression. A key is a value, safe to copy and
// share.
type PrepareKey struct {
	mode    uint8 // preparePlain, prepareShared or prepareOwn
	form    deflate.Form
	minSize int
}

const (
	preparePlain  = iota // no compression
	prepareShared        // compression without context takeover: a form shared by its key
	prepareOwn           // compression with context takeover: the Conn's own bytes
)

// PrepareKey returns the key of the bytes c sends for a
// [PreparedMessage]; it does not change during c's life.
func (c *Conn) PrepareKey() PrepareKey {
	if c.z == nil {
		return PrepareKey{}
	}
	f, ok := c.z.w.Form()
	if !ok {
		return PrepareKey{mode: prepareOwn}
	}
	return PrepareKey{mode: prepareShared, form: f, minSize: c.z.w.MinSize()}
}

// String describes k: "uncompressed", "own compression (context
// takeover)", or the level, window and MinSize of a shared form.
func (k PrepareKey) String() string {
	switch k.mode {
	case prepareShared:
		return fmt.Sprintf("deflate level %d, window %d bits, from %d bytes", k.form.Level(), k.form.Bits(), k.minSize)
	case prepareOwn:
		return "own compression (context takeover)"
	}
	return "uncompressed"
}

// PollWritePrepared writes m as one message in one frame, under exactly
// the contract of [Conn.PollWriteMessage]: all of it, Ready(the length of
// its data), or nothing, NotReady, having arranged for t to be notified
// when it can go on; a message larger than the buffer is taken only when
// nothing else is pending.
//
// What goes on the wire depends on c's compression, as
// [PreparedMessage] tells: the data, the shared compressed form of c's
// [PrepareKey] (compressed now if no Conn needed it before), or, with
// context takeover, c's own compression. No compression is done for a
// write that answers NotReady: when m has not yet c's form, it is made
// only once the buffer has room for the most it can take; with less room
// the message waits, or goes out uncompressed if room for it as it is
// came meanwhile.
//
// Writes after Shutdown began, or after the peer's close frame came, fail
// with [asyncio.ErrShutdown].
func (c *Conn) PollWritePrepared(t *asyncio.Task, m *PreparedMessage) (asyncio.Async[int], error) {
	switch {
	case m == nil:
		return asyncio.NotReady[int](), errors.New("wsconn: write of a nil prepared message")
	case m.typ != Text && m.typ != Binary:
		return asyncio.NotReady[int](), fmt.Errorf("wsconn: write of a prepared message of %v: not a message type", m.typ)
	}
	var wake asyncio.Wakeups
	c.mu.Lock()
	r, err := c.preparedLocked(t, m, &wake)
	c.mu.Unlock()
	wake.Notify()
	return r, err
}

// preparedLocked writes m whole, in the form c's compression gives it.
func (c *Conn) preparedLocked(t *asyncio.Task, m *PreparedMessage, wake *asyncio.Wakeups) (asyncio.Async[int], error) {
	op := byte(m.typ)
	one := [1][]byte{m.data}
	k := c.PrepareKey()
	switch {
	case k.mode == prepareOwn:
		return c.messageLocked(t, op, one[:], wake)
	case k.mode == preparePlain || !c.z.w.ShouldCompress(len(m.data)):
		return c.frameLocked(t, true, op, one[:], nil, wake)
	}
	if err := c.writableLocked(nil); err != nil {
		return asyncio.NotReady[int](), err
	}
	m.mu.Lock()
	z, ok := m.formLocked(k.form)
	m.mu.Unlock()
	if !ok {
		bound := frame.MaxHeader + deflate.MaxCompressedLen(len(m.data))
		if !c.roomLocked(bound, wake) {
			return c.frameLocked(t, true, op, one[:], nil, wake)
		}
		var err error
		m.mu.Lock()
		z, err = m.makeLocked(k.form)
		m.mu.Unlock()
		if err != nil {
			return asyncio.NotReady[int](), err
		}
	}
	if len(z) == 0 {
		return c.frameLocked(t, true, op, one[:], nil, wake)
	}
	one[0] = z
	if _, ready, err := c.putFrameLocked(t, true, rsv1, op, one[:], false, wake); !ready || err != nil {
		return asyncio.NotReady[int](), err
	}
	c.z.sent++
	return asyncio.Ready(len(m.data)), nil
}
