//go:build !linux

package socket

import (
	"net"
	"net/netip"
)

// Elsewhere than Linux no StreamListener is made, so no Stream exists and
// the functions below are never reached.

func dupFD(int) (int, error)        { panic("socket: not supported on this system") }
func localAddr(int) netip.AddrPort  { panic("socket: not supported on this system") }
func closeFD(int) error             { panic("socket: not supported on this system") }
func shutdownWrite(int) error       { panic("socket: not supported on this system") }
func lingerZero(int) error          { panic("socket: not supported on this system") }
func dupConn(int) (net.Conn, error) { panic("socket: not supported on this system") }

type acceptOptions struct{}

func readAcceptOptions(*net.TCPConn) (*acceptOptions, error) {
	panic("socket: not supported on this system")
}

func (l *StreamListener) acceptWaiting(*acceptOptions) (*Stream, error) {
	panic("socket: not supported on this system")
}
