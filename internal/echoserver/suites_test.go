package echoserver

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"testing"

	"github.com/pollws/pollws/internal/echotest"
)

// run is Run with the examples' command-line flags, its log written to
// out: the shape the shared suites start a server with.
func run(ctx context.Context, args []string, out io.Writer) error {
	var cfg Config
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(out)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(out, nil))
	return Run(ctx, cfg, out)
}

// known are the cases of the shared suites this server fails today, and
// why. They are left to the rewrite of the echo on wsconn.
var known = echotest.Known{}

// TestSuites runs the shared end-to-end suites against the server.
func TestSuites(t *testing.T) { echotest.All(t, echotest.InProcess(run), known) }
