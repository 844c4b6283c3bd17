package main

import (
	"crypto/tls"
	"testing"

	"github.com/pollws/pollws/internal/echotest"
)

var start = echotest.InProcess(run)

// TestFlags runs the tests of the example's flags (-max-conns, -ping,
// -idle, -drain, -cert and -key) and of its memory under peers that claim
// or send large messages.
func TestFlags(t *testing.T) {
	echotest.Flags(t, start, &echotest.FlagsOptions{
		WSLimit: wsLimit,
		Cert: func(hosts ...string) (tls.Certificate, error) {
			c, _, err := selfSigned(hosts...)
			return c, err
		},
	})
}
