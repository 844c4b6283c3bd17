package main

import (
	"testing"

	"github.com/pollws/pollws/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, main) }

// TestCommand runs the command as `go run ./examples/echo` does, over
// plain TCP and with -tls, echoes a message through it, and interrupts it
// as Ctrl-C does with the connection open: close 1001, a clean drain
// report, exit status 0.
func TestCommand(t *testing.T) { exampletest.EchoCommand(t) }
