//go:build !linux

package socket

import "syscall"

// Elsewhere than Linux no connection has a Socket: Of answers false, and
// the functions below are never reached.
const supported = false

func read(int, []byte) (int, syscall.Errno)     { panic("socket: not supported on this system") }
func writev(int, [][]byte) (int, syscall.Errno) { panic("socket: not supported on this system") }
func peek(uintptr) bool                         { panic("socket: not supported on this system") }
func pollOut(uintptr) bool                      { panic("socket: not supported on this system") }
func readErr(int, syscall.Errno) error          { return ErrWouldBlock }
func writeErr(int, syscall.Errno) error         { return ErrWouldBlock }
func outQueue(int) int                          { return -1 }
