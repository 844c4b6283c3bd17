package shutdown

import "syscall"

// platformGoneErrors are the system errors that say the peer is gone:
// Plan 9 names only the timeout among them.
var platformGoneErrors = []error{syscall.ETIMEDOUT}
