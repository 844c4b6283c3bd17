//go:build linux

package reactor

import "golang.org/x/sys/unix"

// The 64-bit user data of an epoll event follows its 32-bit events field;
// x/sys/unix names its halves Fd and Pad.
func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}
