//go:build !linux

package wsconn

import "syscall"

// cwRawSupported reports whether a ConnWriter may write to a socket's file
// descriptor itself. Where it may not, every connection is written with a
// flush goroutine that calls its Write.
const cwRawSupported = false

func cwWritev(fd uintptr, v [][]byte) (int, syscall.Errno) {
	panic("wsconn: writev is not supported on this system")
}

func connRecv(fd uintptr, p []byte) (int, syscall.Errno) {
	panic("wsconn: raw reads are not supported on this system")
}
