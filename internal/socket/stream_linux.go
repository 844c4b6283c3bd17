//go:build linux

package socket

import (
	"net"
	"net/netip"
	"os"
	"strconv"

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
	return addrPort(sa)
}

// addrPort returns the address of sa, an IP socket's, or an empty one.
func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a = a.WithZone(ifi.Name)
			} else {
				a = a.WithZone(strconv.Itoa(int(sa.ZoneId)))
			}
		}
		return netip.AddrPortFrom(a, uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// acceptOptions are the socket options net gives an accepted connection:
// TCP_NODELAY, and keep-alive probes as the listener was configured.
type acceptOptions struct {
	keepAlive             bool
	idle, interval, count int
}

// readAcceptOptions reads the options of tc, a connection net accepted.
func readAcceptOptions(tc *net.TCPConn) (*acceptOptions, error) {
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	o := new(acceptOptions)
	cerr := raw.Control(func(d uintptr) {
		fd := int(d)
		var ka int
		if ka, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE); err != nil || ka == 0 {
			return
		}
		o.keepAlive = true
		if o.idle, err = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); err != nil {
			return
		}
		if o.interval, err = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL); err != nil {
			return
		}
		o.count, err = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
	})
	if cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, os.NewSyscallError("getsockopt", err)
	}
	return o, nil
}

// set gives fd the options.
func (o *acceptOptions) set(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return err
	}
	if !o.keepAlive {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, o.idle); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, o.interval); err != nil {
		return err
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, o.count)
}

// acceptWaiting accepts a connection waiting on l's descriptor, with the
// options o, without waiting: nil and no error when none is waiting, or
// when the listener's descriptor cannot be used (its Accept then says
// why). It fails as net's accept does when the process is out of
// descriptors.
func (l *StreamListener) acceptWaiting(o *acceptOptions) (*Stream, error) {
	for {
		var (
			fd  = -1
			sa  unix.Sockaddr
			err error
		)
		if cerr := l.raw.Control(func(d uintptr) {
			fd, sa, err = unix.Accept4(int(d), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		}); cerr != nil {
			return nil, nil // closed: net's Accept reports it
		}
		switch err {
		case nil:
		case unix.EINTR, unix.ECONNABORTED:
			continue // the connection went before it was accepted
		case unix.EMFILE, unix.ENFILE:
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.ln.Addr(), Err: os.NewSyscallError("accept4", err)}
		default:
			return nil, nil // EAGAIN: none is waiting; else let net's accept report it
		}
		if err := o.set(fd); err != nil {
			unix.Close(fd) // reset or gone meanwhile: the next
			continue
		}
		return newStream(fd, addrPort(sa)), nil
	}
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
