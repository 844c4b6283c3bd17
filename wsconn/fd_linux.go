//go:build linux

package wsconn

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cwRawSupported reports whether a ConnWriter may write to a socket's file
// descriptor itself.
const cwRawSupported = true

// cwWritev writes the non-empty slices of v to fd with one writev. It
// never blocks: the runtime keeps network sockets in non-blocking mode.
func cwWritev(fd uintptr, v [][]byte) (int, syscall.Errno) {
	var iov [cwMaxVec]unix.Iovec
	k := 0
	for _, b := range v {
		if len(b) > 0 && k < len(iov) {
			iov[k].Base = &b[0]
			iov[k].SetLen(len(b))
			k++
		}
	}
	if k == 0 {
		return 0, 0
	}
	n, _, errno := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// connRecv reads from fd into p with one read, which never blocks.
func connRecv(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := unix.Syscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}
