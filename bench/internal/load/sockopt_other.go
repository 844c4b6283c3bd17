//go:build !linux

package load

import "syscall"

func bindAddressNoPort(_, _ string, _ syscall.RawConn) error { return nil }
