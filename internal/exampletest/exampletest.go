// Package exampletest runs an example's main function in a process of its
// own, as a user's `go run` would, for the examples' tests.
package exampletest

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

// mainEnv, set in a test binary's environment, makes [RunMainIfAsked] run
// the example's main instead of the tests.
const mainEnv = "POLLWS_EXAMPLE_MAIN"

// Main is an example's TestMain: in a test binary that [Start] started,
// it runs the example's main and exits; otherwise it runs the tests and
// checks that they leave no goroutine behind.
func Main(m *testing.M, main func()) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// EchoCommand tests an echo example as a user runs it: over plain TCP
// and with -tls, each with [EchoThenInterrupt].
func EchoCommand(t *testing.T) {
	t.Run("plain", func(t *testing.T) { EchoThenInterrupt(t, "-addr", "127.0.0.1:0") })
	t.Run("tls", func(t *testing.T) { EchoThenInterrupt(t, "-addr", "127.0.0.1:0", "-tls") })
}

// Process is an example's main running in the test binary, started by
// [Start]. Its output is read as it comes, whether or not the test reads
// it, so the example never blocks on a full pipe.
type Process struct {
	cmd  *exec.Cmd
	read chan struct{} // closed when the output ended

	mu    sync.Mutex
	lines []string      // every line of output so far
	next  int           // lines[:next] were returned by Next
	more  chan struct{} // signalled when a line arrives
}

var urlRE = regexp.MustCompile(`(?:https?|wss?)://[^\s)]+`)

// Start runs the test binary again with args as the example's
// command-line flags, and returns it with the first URL that the example
// printed. The process is killed at the end of the test if still running.
func Start(t *testing.T, args ...string) (*Process, string) {
	t.Helper()
	return StartEnv(t, nil, args...)
}

// StartEnv is [Start] with env added to the process's environment, for
// what a program reads only as it starts (GODEBUG).
func StartEnv(t *testing.T, env []string, args ...string) (*Process, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), mainEnv+"=1"), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{cmd: cmd, read: make(chan struct{}), more: make(chan struct{}, 1)}
	go func() {
		defer close(p.read)
		s := bufio.NewScanner(stdout)
		s.Buffer(nil, 1<<20)
		for s.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, s.Text())
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		<-p.read
	})
	for {
		line, err := p.Next(10 * time.Second)
		if err != "" {
			t.Fatalf("the example printed no URL: %s; output:\n%s", err, p.Output())
		}
		if u := urlRE.FindString(line); u != "" {
			return p, u
		}
	}
}

// Next returns the next line of output, or why there is none.
func (p *Process) Next(wait time.Duration) (line, missing string) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if p.next < len(p.lines) {
			line = p.lines[p.next]
			p.next++
			p.mu.Unlock()
			return line, ""
		}
		p.mu.Unlock()
		select {
		case <-p.more:
		case <-p.read:
			p.mu.Lock()
			ended := p.next == len(p.lines)
			p.mu.Unlock()
			if ended {
				return "", "the output ended"
			}
		case <-timer.C:
			return "", "no output for " + wait.String()
		}
	}
}

// Lines returns every line of output so far, read by Next or not.
func (p *Process) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Output returns every line of output so far as one string.
func (p *Process) Output() string {
	if l := p.Lines(); len(l) > 0 {
		return strings.Join(l, "\n") + "\n"
	}
	return ""
}

// Interrupt sends SIGINT, as Ctrl-C does, waits for the output to end and
// returns it all with the process's exit error.
func (p *Process) Interrupt(t *testing.T) (string, error) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.read:
	case <-time.After(30 * time.Second):
		t.Errorf("the example's output did not end within 30s of SIGINT")
		p.cmd.Process.Kill()
		<-p.read
	}
	err := p.cmd.Wait()
	return p.Output(), err
}

// EchoThenInterrupt starts an echo example with args, echoes a text
// message through it with a gorilla client (over TLS, checking the
// certificate against the fingerprint the example printed), then
// interrupts it with the connection still open: the client must get close
// 1001, the example must print a drain report with the connection closed
// cleanly, and exit 0.
func EchoThenInterrupt(t *testing.T, args ...string) {
	t.Helper()
	p, page := Start(t, args...)
	url := "ws" + strings.TrimPrefix(page, "http") + "ws"
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	if strings.HasPrefix(page, "https") {
		m := regexp.MustCompile(`fingerprint ([0-9A-F:]+)`).FindStringSubmatch(p.Output())
		if m == nil {
			t.Fatalf("no certificate fingerprint in the output:\n%s", p.Output())
		}
		d.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if got := strings.ToUpper(hex.EncodeToString(sum[:])); got != strings.ReplaceAll(m[1], ":", "") {
				return fmt.Errorf("certificate SHA-256 %s, the example printed %s", got, m[1])
			}
			return nil
		}}
	}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("héllo")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if typ, msg, err := c.ReadMessage(); err != nil || typ != websocket.TextMessage || string(msg) != "héllo" {
		t.Fatalf("echo: %d %q %v", typ, msg, err)
	}

	ended := make(chan error, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, _, err := c.ReadMessage() // answers the close frame
		ended <- err
	}()
	out, err := p.Interrupt(t)
	if err != nil {
		t.Errorf("the example exited with %v; output:\n%s", err, out)
	}
	if err := <-ended; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("the client's connection ended with %v, want close 1001", err)
	}
	if !strings.Contains(out, "drained: clean=1 forced=0 undelivered=0B errors=0") {
		t.Errorf("no clean drain report in the output:\n%s", out)
	}
}
