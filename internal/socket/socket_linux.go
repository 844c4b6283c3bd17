//go:build linux

package socket

import (
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const supported = true

// rawMax is the most bytes a read or writev moves with a raw system call,
// one the runtime's scheduler is not told of. On a non-blocking socket
// the call returns at once, in the time it takes to copy what the kernel
// has or takes; for a few kilobytes that is a few microseconds, less than
// telling the scheduler costs: a goroutine that stays in a system call
// past a tick of the runtime's monitor has its processor handed to
// another thread, which a short call then takes back, and a server that
// makes a call per connection does it all the time (with 2,000 echoing
// connections, 12 % of the CPU per message, bench's echo-many). Larger
// transfers tell the scheduler, as they may take longer.
const rawMax = 64 << 10

func read(fd int, p []byte) (int, syscall.Errno) {
	call := unix.Syscall
	if len(p) <= rawMax {
		call = unix.RawSyscall
	}
	for {
		n, _, errno := call(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), 0
	}
}

func writev(fd int, v [][]byte) (int, syscall.Errno) {
	var iov [MaxVec]unix.Iovec
	k, total := 0, 0
	for _, b := range v {
		if len(b) > 0 && k < len(iov) {
			iov[k].Base = &b[0]
			iov[k].SetLen(len(b))
			k++
			total += len(b)
		}
	}
	if k == 0 {
		return 0, 0
	}
	call := unix.Syscall
	if total <= rawMax {
		call = unix.RawSyscall
	}
	for {
		n, _, errno := call(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), 0
	}
}

// peek answers true once a read would not block.
func peek(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		return true
	}
}

// pollOut answers true once a write would not block.
func pollOut(fd uintptr) bool {
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		n, err := unix.Poll(fds[:], 0)
		if err == syscall.EINTR {
			continue
		}
		return err != nil || n > 0
	}
}

func readErr(n int, errno syscall.Errno) error {
	switch {
	case errno == syscall.EAGAIN:
		return ErrWouldBlock
	case errno != 0:
		return os.NewSyscallError("read", errno)
	case n == 0:
		return io.EOF
	}
	return nil
}

func writeErr(n int, errno syscall.Errno) error {
	switch {
	case errno == syscall.EAGAIN:
		return ErrWouldBlock
	case errno != 0:
		return os.NewSyscallError("writev", errno)
	}
	return nil
}

func outQueue(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	if err != nil {
		return -1
	}
	return n
}
