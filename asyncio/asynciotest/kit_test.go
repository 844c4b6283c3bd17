package asynciotest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/asyncio/asynciotest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// broken wraps a Pipe's writer and breaks one rule of the contract.
type broken struct {
	*asyncio.PipeWriter
	bug string
}

func (b *broken) Write(p []byte) (int, error) { return asyncio.TryWrite(b, p) }

func (b *broken) PollWrite(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	r, err := b.PipeWriter.PollWrite(t, p)
	if r.Ready || err != nil || len(p) == 0 {
		return r, err
	}
	switch b.bug {
	case "ready0":
		return asyncio.Ready(0), nil
	case "wouldblock":
		return r, asyncio.ErrWouldBlock
	case "selfnotify":
		t.Notify()
	}
	return r, err
}

func (b *broken) Shutdown(t *asyncio.Task) (asyncio.Async[struct{}], error) {
	r, err := b.PipeWriter.Shutdown(t)
	if b.bug == "shutdowntwice" && r.Ready {
		b.bug = "done"
	} else if b.bug == "done" {
		return r, asyncio.ErrShutdown
	}
	return r, err
}

// TestBrokenWriter runs the kit on a broken writer; it is meant to fail and
// runs only inside TestKitCatchesBrokenWriters.
func TestBrokenWriter(t *testing.T) {
	bug := os.Getenv("POLLWS_KIT_BUG")
	if bug == "" {
		t.Skip("runs only as a child of TestKitCatchesBrokenWriters")
	}
	asynciotest.TestWriter(t, func() (asyncio.AsyncWriter, asynciotest.Peer, func(), error) {
		w, r := asyncio.Pipe(4096)
		return &broken{w, bug}, r, func() { r.Close() }, nil
	})
}

func TestKitCatchesBrokenWriters(t *testing.T) {
	for _, tc := range []struct{ bug, rule, says string }{
		{"ready0", "B3_EmptyWriteWhenFullIsReady0", "would loop forever"},
		{"wouldblock", "A6_WouldBlockIsNotReadyNeverError", "never an error"},
		{"selfnotify", "A3_NoSelfNotifyBusyLoop", "busy loop"},
		{"shutdowntwice", "D3_ShutdownIsIdempotent", "want Ready at once"},
	} {
		t.Run(tc.bug, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenWriter$/^"+tc.rule+"$", "-test.v")
			cmd.Env = append(os.Environ(), "POLLWS_KIT_BUG="+tc.bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the kit passed a writer with bug %q:\n%s", tc.bug, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenWriter/"+tc.rule) || !strings.Contains(string(out), tc.says) {
				t.Fatalf("bug %q: want rule %s to fail saying %q; got:\n%s", tc.bug, tc.rule, tc.says, out)
			}
		})
	}
}
