//go:build linux

package socket

import (
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// dupFD returns a duplicate of fd, closed on exec. It shares fd's file
// status: a non-blocking socket's duplicate does not block either.
func dupFD(fd int) (int, error) {
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("fcntl", err)
	}
	return d, nil
}

// localAddr returns the local address of fd, or an empty one.
func localAddr(fd int) netip.AddrPort {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

func closeFD(fd int) error {
	return os.NewSyscallError("close", unix.Close(fd))
}

func shutdownWrite(fd int) error {
	return os.NewSyscallError("shutdown", unix.Shutdown(fd, unix.SHUT_WR))
}

func lingerZero(fd int) error {
	return os.NewSyscallError("setsockopt", unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}))
}

// dupConn returns a net.Conn over a duplicate of fd, in the runtime's
// poller.
func dupConn(fd int) (net.Conn, error) {
	d, err := dupFD(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(d), "")
	defer f.Close()
	return net.FileConn(f) // a duplicate of its own, registered with the poller
}
