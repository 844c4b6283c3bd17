package main

import (
	"testing"

	"github.com/pollws/pollws/internal/echotest"
	"github.com/pollws/pollws/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, main) }

// TestCommand runs the command as `go run ./examples/echo-gorilla` does, over
// plain TCP and with -tls, echoes a message through it, and interrupts it
// as Ctrl-C does with the connection open: close 1001, a clean drain
// report, exit status 0.
func TestCommand(t *testing.T) { exampletest.EchoCommand(t) }

// known are the cases of the shared suites this server fails, and why.
var known = echotest.Known{
	"BadInput/frames/close payload of 1 byte": onebyteClose,
	"Autobahn/7.3.2": onebyteClose,
}

const onebyteClose = "gorilla reads a close payload of 1 byte as a close without a code, and its close handler cannot tell them apart"

// TestSuites runs the shared end-to-end suites against the server in
// this process.
func TestSuites(t *testing.T) { echotest.All(t, echotest.InProcess(run), known) }

// TestSuitesCommand runs the shared suites against the command, as a
// user runs it.
func TestSuitesCommand(t *testing.T) { echotest.All(t, echotest.Command(), known) }
