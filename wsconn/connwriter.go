package wsconn

import (
	"net"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/sendq"
)

// ConnWriterOptions configures a [ConnWriter]. A nil *ConnWriterOptions
// means the defaults.
type ConnWriterOptions struct {
	// BufferSize is how many bytes the writer holds before a write
	// answers NotReady. Zero or less means 64 KiB.
	BufferSize int

	// WriteThrough sends bytes to the connection as soon as they are
	// accepted, instead of when the buffer fills or on PollFlush:
	// latency over throughput. The default is false.
	WriteThrough bool

	// WriteTimeout bounds how long a flush may wait on the connection:
	// over a socket, how long the socket may take none of the pending
	// bytes; over other connections, how long one Write of pending bytes
	// may take. When it runs out, the writer fails with an error that
	// wraps [os.ErrDeadlineExceeded] and says how many bytes were not
	// delivered. Zero, the default, means no limit.
	WriteTimeout time.Duration
}

// ConnWriter is an [asyncio.AsyncWriter] of bytes over a [net.Conn] with a
// bounded buffer: writes copy into the buffer and never block, and the
// bytes go to the connection when the buffer fills, on PollFlush or
// Shutdown, or at once with [ConnWriterOptions].WriteThrough.
//
// Over a TCP or Unix socket on Linux the send is a non-blocking writev of
// the buffered bytes from the caller's goroutine, so a batch of writes
// costs one system call; when the socket is full one goroutine waits for
// it and exits when the bytes are out. Over other connections, and on
// other systems, a goroutine does the blocking Write for as long as bytes
// are pending. An idle ConnWriter holds no goroutine and no buffer.
//
// NewConnWriter takes ownership of the connection: it must not be
// written to or closed but through the ConnWriter, though it may be read
// from. A ConnWriter is safe for use by multiple goroutines, and any
// number of them may wait on it.
type ConnWriter struct {
	w sendq.Writer
}

var (
	_ asyncio.AsyncWriter = (*ConnWriter)(nil)
	_ asyncio.BufWriter   = (*ConnWriter)(nil)
)

// NewConnWriter returns a [ConnWriter] over c configured by o; a nil o
// means the defaults. It takes no buffer until the first write.
func NewConnWriter(c net.Conn, o ...*ConnWriterOptions) *ConnWriter {
	var opts sendq.Options
	if len(o) > 0 && o[0] != nil {
		opts = sendq.Options{BufferSize: o[0].BufferSize, WriteThrough: o[0].WriteThrough, WriteTimeout: o[0].WriteTimeout}
	}
	cw := new(ConnWriter)
	cw.w.Init(c, opts)
	return cw
}

// Write writes p without blocking: it is [asyncio.TryWrite].
func (cw *ConnWriter) Write(p []byte) (int, error) { return asyncio.TryWrite(cw, p) }

// PollWrite copies as much of p as fits into the buffer and answers
// Ready(n), or NotReady when the buffer is full and the connection takes
// nothing. A large p written while nothing is pending may go to the
// socket directly, without the copy.
func (cw *ConnWriter) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	one := [1][]byte{p}
	q := sendq.Req{Body: one[:]}
	var wake asyncio.Wakeups
	n, ready, err := cw.w.Poll(t, &q, &wake)
	wake.Notify()
	return result(n, ready, err)
}

// WriteBuf writes from b and advances it by what was taken, with one
// vectored write of its chunks when b is an [asyncio.VectoredBuf].
func (cw *ConnWriter) WriteBuf(t *asyncio.Task, b asyncio.Buf) (asyncio.Async[int], error) {
	if b.Remaining() == 0 {
		return asyncio.Ready(0), nil
	}
	var chunks [8][]byte
	q := sendq.Req{Body: bufChunks(b, &chunks)}
	var wake asyncio.Wakeups
	n, ready, err := cw.w.Poll(t, &q, &wake)
	wake.Notify()
	if ready && err == nil {
		b.Advance(n)
	}
	return result(n, ready, err)
}

// bufChunks returns b's chunks at its cursor: up to len(dst) of them when
// b is vectored, its first chunk otherwise.
func bufChunks(b asyncio.Buf, dst *[8][]byte) [][]byte {
	if vb, ok := b.(asyncio.VectoredBuf); ok {
		return dst[:vb.Chunks(dst[:])]
	}
	dst[0] = b.Chunk()
	return dst[:1]
}

func result(n int, ready bool, err error) (asyncio.Async[int], error) {
	if !ready || err != nil {
		return asyncio.NotReady[int](), err
	}
	return asyncio.Ready(n), nil
}

func unit(ready bool, err error) (asyncio.Async[struct{}], error) {
	if !ready || err != nil {
		return asyncio.NotReady[struct{}](), err
	}
	return asyncio.Ready(struct{}{}), nil
}

// PollFlush answers Ready when every accepted byte has been written to the
// connection. Otherwise it writes what the socket takes now and answers
// NotReady; t is notified when the flush can go on.
func (cw *ConnWriter) PollFlush(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	var wake asyncio.Wakeups
	ready, err := cw.w.PollFlush(t, &wake)
	wake.Notify()
	return unit(ready, err)
}

// Shutdown flushes every accepted byte, then sends the connection's end:
// a FIN over TCP and Unix sockets, close_notify over TLS (CloseWrite), or
// a Close where the connection has no half-close. Writes fail with
// [asyncio.ErrShutdown] from the first call on. A NotReady Shutdown
// resumes when called again and sends the end once; after Ready it
// answers Ready at once. Shutdown does not close the connection: call
// [ConnWriter.Close] when done reading too.
func (cw *ConnWriter) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	var wake asyncio.Wakeups
	ready, err := cw.w.Shutdown(t, &wake)
	wake.Notify()
	return unit(ready, err)
}

// Close closes the connection at once. Bytes not yet delivered are
// dropped and counted by [ConnWriter.Undelivered]; waiting tasks are
// notified and every later call fails with [net.ErrClosed]. Close waits
// for the writer's goroutine, if any, to exit. Closing again does nothing
// and returns nil.
func (cw *ConnWriter) Close() error { return cw.w.Close() }

// Buffered returns the number of bytes accepted and not yet written to
// the connection.
func (cw *ConnWriter) Buffered() int { return cw.w.Buffered() }

// Undelivered returns the number of bytes accepted that the peer will not
// get: those never written to the connection, and, after a Close that
// cut a shutdown short over a socket on Linux, those the kernel still
// held in its send queue (SIOCOUTQ), which the close then resets. It
// counts what is known to be lost; elsewhere it is a lower bound.
func (cw *ConnWriter) Undelivered() int64 { return cw.w.Undelivered() }

// Stats counts what a writer did. Each field is read atomically, but not
// all of them at one instant.
type Stats struct {
	Accepted      int64 // bytes taken by writes (for a Conn, frames with their headers)
	Written       int64 // bytes written to the connection
	Reset         int64 // of those, what the kernel still held when a hard close reset the connection
	WriteSyscalls int64 // writes to the connection: writev system calls, or calls of its Write
	NotReady      int64 // polls that answered NotReady
}

func statsOf(w *sendq.Writer) Stats {
	s := w.Stats()
	return Stats{Accepted: s.Accepted, Written: s.Written, Reset: s.Reset, WriteSyscalls: s.WriteSyscalls, NotReady: s.NotReady}
}

// Stats returns the writer's counters.
func (cw *ConnWriter) Stats() Stats { return statsOf(&cw.w) }
