package shutdown

import (
	"errors"
	"io"
	"net"
)

// goneErrors are the errors that say a connection's peer is gone, as
// [Report].Gone documents them: these, and the system's own errors for a
// reset, an abort, a broken pipe and a timeout (platformGoneErrors).
var goneErrors = append([]error{
	io.EOF,              // the peer ended the stream
	io.ErrUnexpectedEOF, // the peer ended the stream mid-frame, or without a close frame
	io.ErrClosedPipe,    // a write after the peer closed an in-memory pipe (net.Pipe, asyncio.Pipe)
	net.ErrClosed,       // the writer closed itself (its read side found the peer gone)
}, platformGoneErrors...)

// peerGone reports whether err, a writer's shutdown error, says that the
// peer is gone.
func peerGone(err error) bool {
	for _, target := range goneErrors {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
