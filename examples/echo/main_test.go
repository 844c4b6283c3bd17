package main

import (
	"context"
	"io"
	"testing"

	"github.com/pollws/pollws/internal/echotest"
	"github.com/pollws/pollws/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, main) }

// TestCommand runs the command as `go run ./examples/echo` does, over
// plain TCP and with -tls, echoes a message through it, and interrupts it
// as Ctrl-C does with the connection open: close 1001, a clean drain
// report, exit status 0.
func TestCommand(t *testing.T) { exampletest.EchoCommand(t) }

// TestSuites runs the shared end-to-end suites (clients, peers, bad
// input, Autobahn-like cases) against the server in this process, on the
// reactor and with a goroutine per connection.
func TestSuites(t *testing.T) {
	t.Run("reactor", func(t *testing.T) { echotest.All(t, echotest.InProcess(run), nil) })
	goroutines := func(ctx context.Context, args []string, out io.Writer) error {
		return run(ctx, append(args, "-goroutines"), out)
	}
	t.Run("goroutines", func(t *testing.T) { echotest.All(t, echotest.InProcess(goroutines), nil) })
}

// TestSuitesCommand runs the shared suites against the command, as a
// user runs it.
func TestSuitesCommand(t *testing.T) { echotest.All(t, echotest.Command(), nil) }
