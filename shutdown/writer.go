package shutdown

import "github.com/pollws/pollws/asyncio"

// Close codes a [Group] sends through [CodeShutdowner], as RFC 6455
// numbers them.
const (
	// CodeGoingAway (1001) ends connections that are drained
	// ([Group.Drain]) or reached their lifetime ([ErrLifetime]): the
	// server ends them, and the client may reconnect at once.
	CodeGoingAway = 1001

	// CodePolicyViolation (1008) ends connections that were idle for too
	// long ([ErrIdle]): the client broke the server's idle policy.
	CodePolicyViolation = 1008
)

// CodeShutdowner is a writer whose end carries a status code and a
// reason, as a WebSocket close frame does. [Group] shuts such a writer
// down with ShutdownCode instead of [asyncio.AsyncWriter]'s Shutdown,
// passing [CodeGoingAway] or [CodePolicyViolation] and a short reason.
//
// ShutdownCode is Shutdown whose end carries code and reason: it flushes
// every accepted byte, then sends its end with them, and follows
// Shutdown's contract in every other way (a NotReady ShutdownCode resumes
// when called again, whatever its arguments, and sends one end; after
// Ready it answers Ready at once; writes fail with [asyncio.ErrShutdown]
// once it began; errors are sticky). A code or reason the writer cannot
// send is an error, returned without starting the shutdown.
type CodeShutdowner interface {
	ShutdownCode(t *asyncio.Task, code int, reason string) (asyncio.Async[struct{}], error)
}

// UndeliveredReporter is a writer that counts the bytes its peer will not
// get. [Close] and [Group] ask it when they close the writer hard, after
// the close, when the count is final, and report the count in
// [UndeliveredError].Bytes and [Report].Undelivered.
//
// Undelivered returns every byte the writer accepted that the peer will
// not get: after a hard close, what the writer's own buffer still held
// and, for a writer over a socket, what the kernel's send queue still
// held when the writer closed it, since a close with unread input sends a
// reset that destroys that queue. Writers over sockets read the send
// queue with the SIOCOUTQ ioctl on Linux; where it cannot be read the
// count leaves it out and is a lower bound. The count may include the
// writer's own end (a queued close frame). Before a hard close it may
// count bytes still on their way. It must be safe to call while the
// writer's other methods run.
//
// A writer that cannot count this offers [BufferedReporter] instead.
type UndeliveredReporter interface {
	Undelivered() int64
}

// BufferedReporter is the fallback of [UndeliveredReporter]: a writer
// that tells how many accepted bytes its own buffer holds. [Close] and
// [Group] ask it just before they close the writer hard, since closing
// may discard the buffer. The writer refuses new bytes once its shutdown
// began (Close and Group always poll the shutdown first), so the count
// can only fall before the close; but it leaves out what a socket's send
// queue held, so it is a lower bound of what was lost. It must be safe to
// call while the writer's other methods run.
//
// A writer with neither method is counted as unknown: -1 in
// [UndeliveredError].Bytes, nothing in [Report].Undelivered.
type BufferedReporter interface {
	Buffered() int
}

// shutdownCode polls w's shutdown, with code and reason when w takes them.
func shutdownCode(t *asyncio.Task, w asyncio.AsyncWriter, code int, reason string) (asyncio.Async[struct{}], error) {
	if c, ok := w.(CodeShutdowner); ok {
		return c.ShutdownCode(t, code, reason)
	}
	return w.Shutdown(t)
}
