package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// buildServer builds cmd/wsserver into dir and returns its path.
func buildServer(dir string) (string, error) {
	bin := filepath.Join(dir, "wsserver")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/wsserver")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building wsserver: %w", err)
	}
	return bin, nil
}

// server is one running wsserver process.
type server struct {
	impl string
	addr string
	cmd  *exec.Cmd
}

// startServer starts bin with -impl and waits for it to print its address.
func startServer(ctx context.Context, bin, impl string) (*server, error) {
	cmd := exec.CommandContext(ctx, bin, "-impl", impl, "-addr", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("wsserver -impl %s: no address (%q, %v)", impl, line, err)
	}
	return &server{impl: impl, addr: addr, cmd: cmd}, nil
}

// stop ends the server with SIGTERM, then SIGKILL after 5 s.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// rss returns the server's resident set size in bytes, from /proc.
func (s *server) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", s.cmd.Process.Pid)
}
