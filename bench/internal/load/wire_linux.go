package load

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// socketBytes returns the bytes TCP socket fd has sent and received, from
// TCP_INFO (tcpi_bytes_sent, Linux 4.19 on, counts retransmissions too,
// which loopback has none of).
func socketBytes(fd int) (sent, received int64, err error) {
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, 0, fmt.Errorf("load: TCP_INFO: %w", err)
	}
	return int64(ti.Bytes_sent), int64(ti.Bytes_received), nil
}
