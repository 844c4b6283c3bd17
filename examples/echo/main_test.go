package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pollws/pollws/internal/exampletest"
)

func TestMain(m *testing.M) {
	exampletest.RunMainIfAsked(main)
	goleak.VerifyTestMain(m)
}

// TestRunAndInterrupt runs the command as `go run ./examples/echo` does,
// echoes a message through it, and interrupts it as Ctrl-C does: the open
// connection is closed with 1001, the drain report printed, and the
// process exits 0.
func TestRunAndInterrupt(t *testing.T) {
	exampletest.EchoThenInterrupt(t, "-addr", "127.0.0.1:0")
}

// TestRunWithTLSAndInterrupt is the same with -tls: the certificate made
// in memory is the one whose fingerprint the command printed.
func TestRunWithTLSAndInterrupt(t *testing.T) {
	exampletest.EchoThenInterrupt(t, "-addr", "127.0.0.1:0", "-tls")
}
