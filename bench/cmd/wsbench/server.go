package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pollws/pollws/bench/internal/load"
	"github.com/pollws/pollws/bench/internal/proc"
)

// build builds the command ./cmd/name into dir and returns its path.
func build(dir, name string) (string, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	return bin, nil
}

// xconnect is the GODEBUG setting with which net/http's HTTP/2 server
// offers extended CONNECT (RFC 8441), read when the process starts.
const xconnect = "http2xconnect=1"

// server is one running wsserver process.
type server struct {
	impl string
	addr string
	// tls trusts the certificate the server generated; nil for plain TCP.
	tls *tls.Config
	cmd *exec.Cmd
	// lines carries what the server prints after its address; closed at
	// its exit.
	lines chan string
}

// launch is how a wsserver process is started, beyond its -impl.
type launch struct {
	tls bool
	// h2 offers HTTP/2 beside HTTP/1.1 (with tls), and WebSockets over
	// its streams: the process runs with GODEBUG=http2xconnect=1.
	h2 bool
	// nats is the URL of the NATS broker the broadcast hub joins; "" for
	// none.
	nats string
}

// startServer starts bin with -impl (and -tls) and waits for it to print
// its address.
func startServer(ctx context.Context, bin, impl string, useTLS bool) (*server, error) {
	return launchServer(ctx, bin, impl, launch{tls: useTLS})
}

// launchServer starts bin with -impl as l says and waits for it to print
// its address.
func launchServer(ctx context.Context, bin, impl string, l launch) (*server, error) {
	args := []string{"-impl", impl, "-addr", "127.0.0.1:0"}
	if l.tls {
		args = append(args, "-tls")
	}
	var env []string
	if l.h2 {
		args = append(args, "-h2")
		env = withGODEBUG(os.Environ(), xconnect)
	}
	if l.nats != "" {
		args = append(args, "-nats", l.nats)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	return start(impl, cmd, l.tls)
}

// startBroker starts the NATS broker bin (cmd/natsbroker) and waits for
// it to print its address.
func startBroker(ctx context.Context, bin string) (*server, error) {
	return start("natsbroker", exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0"), false)
}

// withGODEBUG returns env with setting added to its GODEBUG.
func withGODEBUG(env []string, setting string) []string {
	var out []string
	godebug := setting
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			if v != "" {
				godebug = v + "," + setting
			}
			continue
		}
		out = append(out, kv)
	}
	return append(out, "GODEBUG="+godebug)
}

// start starts cmd, a process that prints "listening ADDR" once it
// accepts connections (with wantCert, first its certificate), and waits
// for that line; impl names it in the figures.
func start(impl string, cmd *exec.Cmd, wantCert bool) (*server, error) {
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{impl: impl, cmd: cmd, lines: make(chan string, 16)}
	go func() { // owned by the process: its stdout ends when it exits
		defer close(s.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	fail := func(err error) (*server, error) {
		s.stop()
		return nil, fmt.Errorf("%s %s: %w", filepath.Base(cmd.Path), strings.Join(cmd.Args[1:], " "), err)
	}
	for s.addr == "" {
		line, err := s.line(10 * time.Second)
		if err != nil {
			return fail(err)
		}
		if der, ok := strings.CutPrefix(line, "cert "); ok {
			if s.tls, err = trust(der); err != nil {
				return fail(err)
			}
		}
		if addr, ok := strings.CutPrefix(line, "listening "); ok {
			s.addr = addr
		}
	}
	if wantCert && s.tls == nil {
		return fail(errors.New("no certificate printed"))
	}
	return s, nil
}

// trust returns a client configuration that trusts the base64 DER
// certificate der.
func trust(der string) (*tls.Config, error) {
	raw, err := base64.StdEncoding.DecodeString(der)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(raw)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{RootCAs: pool}, nil
}

// line returns the next line the server prints, waiting at most d.
func (s *server) line(d time.Duration) (string, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case l, ok := <-s.lines:
		if !ok {
			return "", errors.New("exited")
		}
		return l, nil
	case <-t.C:
		return "", fmt.Errorf("nothing printed within %v", d)
	}
}

// stop ends the server with SIGTERM, then SIGKILL after 5 s. Stopping
// again does nothing.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for range s.lines { // drain, so the process is not blocked writing
		}
		s.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// proto is how the load client frames messages for the server.
func (s *server) proto() load.Proto {
	if s.impl == "rawtcp" {
		return load.Raw
	}
	return load.WebSocket
}

// freeOSMemory asks the server to return its free memory to the system
// (SIGUSR1: every implementation runs debug.FreeOSMemory) and waits until
// it has.
func (s *server) freeOSMemory() error {
	if err := s.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return err
	}
	for {
		line, err := s.line(30 * time.Second)
		if err != nil {
			return fmt.Errorf("%s: SIGUSR1: %w", s.impl, err)
		}
		if line == "freed" {
			return nil
		}
	}
}

// rss returns the server's resident set size in bytes.
func (s *server) rss() (int64, error) { return proc.RSS(s.cmd.Process.Pid) }

// cpu returns the CPU time, user and system, the server has used.
func (s *server) cpu() (time.Duration, error) { return proc.CPU(s.cmd.Process.Pid) }
