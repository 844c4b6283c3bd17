// Package wsconn writes to network connections without parking the
// caller: a [ConnWriter] over any [net.Conn] (TCP, Unix sockets,
// [crypto/tls.Conn], [net.Pipe]) and a WebSocket [Conn] whose frames go
// through one.
//
// Every writer here is an [asyncio.AsyncWriter]: a write either makes
// progress at once or answers NotReady and notifies the caller's
// [asyncio.Task] when it can go on. Nothing grows without bound: a
// ConnWriter holds at most its buffer (64 KiB by default), or one message
// larger than that when nothing else is queued.
//
// A ConnWriter copies writes into its buffer and sends them when the
// buffer fills, on PollFlush or Shutdown, or at once with
// [ConnWriterOptions.WriteThrough]. Over a TCP or Unix socket the send is
// a non-blocking writev of the buffered bytes from the caller's goroutine,
// so a batch of pipelined messages costs one system call. When the socket
// is full, one goroutine waits for it to drain and exits when the bytes
// are out; over other connections a goroutine does the blocking Write for
// as long as bytes are pending. An idle ConnWriter holds no goroutine and
// no buffer: the buffer's storage goes back to a pool when it drains.
//
// A [Conn] is a WebSocket connection, server side ([Server], [Upgrade]) or
// client side ([Client], [Dial]). Its messages are written frame by frame
// into a ConnWriter ([Conn.PollWriteMessage], [Conn.MessageWriter]) and
// read with [Conn.NextMessage] or [Conn.ReadMessage], which block. A read
// flushes pending writes before it waits on the socket, so an echo loop
// batches its replies without calling Flush. Reads answer pings, validate
// text and frames, and end with a *[CloseError] when the peer closes.
// [Conn.Shutdown] flushes, sends a close frame, waits for the peer's
// close, then closes the socket.
package wsconn
