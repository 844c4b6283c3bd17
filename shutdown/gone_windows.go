package shutdown

import "syscall"

// platformGoneErrors are the socket errors that say the peer is gone.
// Windows sockets return these numbers, not the values package syscall
// invents for the Unix names ECONNRESET and the rest.
var platformGoneErrors = []error{
	syscall.WSAECONNRESET,         // the peer reset the connection
	syscall.WSAECONNABORTED,       // the connection was aborted under the writer
	syscall.ERROR_NETNAME_DELETED, // a reset, as overlapped I/O reports it
	syscall.Errno(10060),          // WSAETIMEDOUT: the peer stopped answering TCP
}
