package echoserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Listen opens cfg's listener, with TLS when cfg asks for it, and returns
// the page's URL. With -tls it prints the certificate's fingerprint to out.
func Listen(cfg *Config, out io.Writer) (net.Listener, string, error) {
	cfg.defaults()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, "", err
	}
	scheme := "http"
	if cfg.TLS || cfg.CertFile != "" {
		var cert tls.Certificate
		if cfg.CertFile != "" {
			cert, err = tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		} else {
			host, _, _ := net.SplitHostPort(ln.Addr().String())
			var fp string
			cert, fp, err = SelfSigned(host, "localhost", "127.0.0.1", "::1")
			if err == nil {
				fmt.Fprintf(out, "self-signed certificate, SHA-256 fingerprint %s\n", fp)
			}
		}
		if err != nil {
			ln.Close()
			return nil, "", fmt.Errorf("echo: certificate: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
		scheme = "https"
	}
	return ln, scheme + "://" + ln.Addr().String() + "/", nil
}

// Run serves the echo on cfg.Addr until ctx ends, then drains: the HTTP
// server stops accepting, every WebSocket connection is shut down with
// close 1001 after its pending replies are flushed, and connections still
// open at the deadline are closed hard. It prints where it listens and the
// drain report to out.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	cfg.defaults()
	ln, url, err := Listen(&cfg, out)
	if err != nil {
		return err
	}
	s := New(cfg)
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	s.Group().RegisterOnShutdown(srv, cfg.Drain)
	fmt.Fprintf(out, "pollws echo (%s) listening on %s  (WebSocket: %sws)\n", cfg.Backend, url, wsURL(url))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintf(out, "draining %d connections (deadline %v)…\n", s.Stats().Open, cfg.Drain)
	dctx, cancel := context.WithTimeout(context.Background(), cfg.Drain+time.Second)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	rep, err := s.Group().Wait(dctx)
	fmt.Fprintf(out, "drained: %v\n", rep)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return err
}

func wsURL(httpURL string) string {
	if len(httpURL) > 5 && httpURL[:5] == "https" {
		return "wss" + httpURL[5:]
	}
	return "ws" + httpURL[4:]
}
