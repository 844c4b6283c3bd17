package load

import (
	"errors"
	"net"
	"syscall"
)

// WireBytes returns how many bytes the connection's socket has sent and
// received: TCP payload, after TLS, as the kernel counts it, whatever
// loop wrote and read them. The difference between two calls is what
// went over the wire in between.
func (c *Conn) WireBytes() (sent, received int64, err error) {
	if c.fd >= 0 {
		return socketBytes(c.fd)
	}
	nc := c.Conn
	for {
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		nc = u.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0, 0, errors.New("load: no socket under the connection")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { sent, received, serr = socketBytes(int(fd)) }); err != nil {
		return 0, 0, err
	}
	return sent, received, serr
}
