//go:build !windows && !plan9

package shutdown

import "syscall"

// platformGoneErrors are the socket errors that say the peer is gone.
var platformGoneErrors = []error{
	syscall.ECONNRESET,   // the peer reset the connection
	syscall.ECONNABORTED, // the connection was aborted under the writer
	syscall.EPIPE,        // a write after the peer closed (broken pipe)
	syscall.ETIMEDOUT,    // the peer stopped answering TCP (retransmission or keepalive gave up)
}
