package load

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindAddressNoPort lets a dial that binds a source address choose its
// port at connect time, so that ports are unique per destination rather
// than per source address: without it a few tens of thousands of
// connections, and those in TIME_WAIT, exhaust the source's range.
func bindAddressNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
