package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/buf"
	"github.com/pollws/pollws/wsconn"
)

func TestStreamLinesAreEchoed(t *testing.T) {
	s := newEchoServer(t, false, nil)
	in := "hello\nworld, ünïcode\n\nlast line without newline"
	code, out, errOut := runArgs(t, []string{"-url", s.url, "-stream"}, in)
	if code != 0 || out != "hello\nworld, ünïcode\n\nlast line without newline\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	code, out, errOut = runArgs(t, []string{"-url", s.url, "-stream", "-check", "-binary"}, in)
	if code != 0 || !strings.HasPrefix(out, "hello\n") || counts(t, out) != "sent 4, received 4, mismatches 0" {
		t.Errorf("-check: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := s.conns.Load(); got != 2 {
		t.Errorf("the server saw %d connections, want 2", got)
	}
}

// Many lines, some larger than the connection's buffer, a wide window:
// the stream fills, the pump pulls as the connection drains, and every
// echo comes back in order.
func TestStreamManyLines(t *testing.T) {
	s := newEchoServer(t, false, nil)
	var in bytes.Buffer
	const lines = 3000
	for i := range lines {
		size := 200
		if i%500 == 7 {
			size = 70000
		}
		in.Write(generate(nil, 0, i, size))
		in.WriteByte('\n')
	}
	code, out, errOut := runArgs(t, []string{"-url", s.url, "-stream", "-check", "-window", "256"}, in.String())
	want := fmt.Sprintf("sent %d, received %d, mismatches 0", lines, lines)
	if code != 0 || counts(t, out) != want || !strings.HasPrefix(out, in.String()) {
		t.Errorf("exit %d, stderr %q, summary %q; want %q and every line echoed in order", code, errOut, counts(t, out), want)
	}
}

// Lines written to a pipe one at a time each come back before the next
// is written: the pump sends a line as soon as the stream has it, without
// waiting for later lines to fill the connection's buffer.
func TestStreamFromPipe(t *testing.T) {
	s := newEchoServer(t, false, nil)
	cfg, err := parseFlags([]string{"-url", s.url, "-stream", "-timeout", "5s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, cfg, inR, outW, &errOut)
		outW.Close()
		inR.Close() // a test that failed early may still be writing
		done <- code
	}()

	echoes := bufio.NewScanner(outR)
	for i := range 20 {
		line := fmt.Sprintf("line %d: %s", i, strings.Repeat("·", i))
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			t.Fatalf("writing line %d: %v", i, err)
		}
		if !echoes.Scan() {
			t.Fatalf("no echo of line %d before the client ended", i)
		}
		if got := echoes.Text(); got != line {
			t.Fatalf("echo %q; want %q", got, line)
		}
	}
	inW.Close()
	if echoes.Scan() {
		t.Errorf("an echo %q after the last line", echoes.Text())
	}
	if code := <-done; code != 0 {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}

// A line that is not UTF-8 sent as text makes the server close the
// connection with 1007; the run ends with the error and exit code 1.
func TestStreamInvalidTextLine(t *testing.T) {
	s := newEchoServer(t, false, nil)
	code, out, errOut := runArgs(t, []string{"-url", s.url, "-stream"}, "ok\n\xff\xfe\nafter\n")
	if code != 1 || !strings.Contains(errOut, "1007") || !strings.HasPrefix(out, "ok\n") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1, the first echo, and close 1007", code, out, errOut)
	}
}

// The producer gives every chunk queued, up to the pump's capacity; holds
// a chunk a probe found; answers NotReady when the stream is empty,
// Cancelled when asked to finish then, and Dropped at the end.
func TestStreamProducer(t *testing.T) {
	w, r := buf.NewStream()
	pl := asyncio.NewPuller[[]byte](&streamProducer{r: r})
	// pull returns what a Pull gave: "NotReady", or Ready's items.
	pull := func(n int, finish bool) (string, error) {
		got, err := pl.Pull(nil, n, finish)
		if !got.Ready {
			return "NotReady", err
		}
		var s []string
		for _, p := range got.Value {
			s = append(s, string(p))
		}
		return fmt.Sprintf("Ready%q", s), err
	}
	check := func(what string, got string, err error, want string, wantErr error) {
		t.Helper()
		if got != want || err != wantErr {
			t.Errorf("%s: %s, %v; want %s, %v", what, got, err, want, wantErr)
		}
	}

	got, err := pull(4, false)
	check("empty stream", got, err, "NotReady", nil)
	got, err = pull(4, true)
	check("empty stream, finishing", got, err, "NotReady", asyncio.ErrCancelled)

	for _, c := range []string{"a", "", "c", "d", "e"} {
		if err := w.Write(context.Background(), []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	got, err = pull(0, false)
	check("probe", got, err, "Ready[]", nil)
	got, err = pull(2, false)
	check("two", got, err, `Ready["a" ""]`, nil)
	got, err = pull(-1, false)
	check("the rest", got, err, `Ready["c" "d" "e"]`, nil)
	got, err = pull(4, false)
	check("drained", got, err, "NotReady", nil)
	w.Close()
	got, err = pull(4, false)
	check("the end", got, err, "NotReady", io.EOF)
}

// When the pump waits for the next line, the poll has flushed every line
// it wrote: nothing waits in the connection's buffer for later lines.
func TestPumpSendsWhileWaiting(t *testing.T) {
	s := newEchoServer(t, false, nil)
	cfg, err := parseFlags([]string{"-url", s.url}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, r := buf.NewStream()
	p := wsconn.NewPump(&streamProducer{r: r}, wsconn.MessageSinkOf(c, wsconn.Text), nil)
	poll := p.Poll
	if err := w.Write(ctx, []byte("one line, and more to come")); err != nil {
		t.Fatal(err)
	}
	if got, err := poll(asyncio.NewTask(func() {})); got.Ready || err != nil {
		t.Fatalf("poll with the stream open = %v, %v; want NotReady", got, err)
	}
	if st := c.Stats(); st.Accepted == 0 || st.Written != st.Accepted {
		t.Errorf("waiting for the next line: %d bytes of frames accepted, %d written; want all written", st.Accepted, st.Written)
	}
	m, err := c.ReadMessage(ctx)
	if err != nil || string(m.Data) != "one line, and more to come" {
		t.Errorf("echo %q, %v", m.Data, err)
	}
	w.Close()
	if _, err := asyncio.BlockOn(ctx, poll); err != nil {
		t.Errorf("pump after the end of the stream: %v", err)
	}
	if err := hangUp(c, true); err != nil {
		t.Errorf("close: %v", err)
	}
}
