//go:build !linux

package socket

import "syscall"

// Elsewhere than Linux no connection has a Socket: Of answers false, and
// the methods below are never reached.
const supported = false

func (s *Socket) doRead(fd uintptr) bool    { panic("socket: not supported on this system") }
func (s *Socket) doWrite(fd uintptr) bool   { panic("socket: not supported on this system") }
func (s *Socket) doPeek(fd uintptr) bool    { panic("socket: not supported on this system") }
func (s *Socket) doPollOut(fd uintptr) bool { panic("socket: not supported on this system") }

func readErr(int, syscall.Errno) error  { return ErrWouldBlock }
func writeErr(int, syscall.Errno) error { return ErrWouldBlock }
func outQueue(uintptr) int              { return -1 }
