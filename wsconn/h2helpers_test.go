package wsconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/handlertest"
	"github.com/pollws/pollws/wsconn/internal/handshake"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// xconnectSetting is the GODEBUG setting with which net/http's HTTP/2
// server offers extended CONNECT. net/http reads GODEBUG once, when the
// process starts: a test that needs the setting, or its absence, runs in
// a process of its own when this one's differs ([inXConnect]).
const xconnectSetting = "http2xconnect=1"

// xconnectOn reports whether this process's net/http offers extended
// CONNECT; net/http looks for the setting the same way.
func xconnectOn() bool { return strings.Contains(os.Getenv("GODEBUG"), xconnectSetting) }

// inXConnect reports whether t runs in this process: whether its net/http
// offers extended CONNECT when on is set, or does not when it is unset.
// Otherwise it runs t in a new process of the test binary whose GODEBUG
// has the setting added or removed, fails t if t failed there, skips it
// if it was skipped, and reports false: the caller returns.
func inXConnect(t *testing.T, on bool) bool {
	t.Helper()
	if xconnectOn() == on {
		return true
	}
	var pattern []string
	for _, part := range strings.Split(t.Name(), "/") {
		pattern = append(pattern, "^"+regexp.QuoteMeta(part)+"$")
	}
	var env []string
	var settings []string
	for _, kv := range os.Environ() {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			env = append(env, kv)
			continue
		}
		for s := range strings.SplitSeq(v, ",") {
			if s != "" && !strings.HasPrefix(s, "http2xconnect=") {
				settings = append(settings, s)
			}
		}
	}
	if on {
		settings = append(settings, xconnectSetting)
	}
	godebug := "GODEBUG=" + strings.Join(settings, ",")
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(pattern, "/"), "-test.v", "-test.count=1")
	cmd.Env = append(env, godebug)
	out, err := cmd.CombinedOutput()
	switch {
	case err != nil:
		t.Fatalf("in a process with %s: %v\n%s", godebug, err, out)
	case strings.Contains(string(out), "--- SKIP: "+t.Name()+" "):
		t.Skipf("skipped in a process with %s:\n%s", godebug, out)
	case !strings.Contains(string(out), "--- PASS: "+t.Name()+" "):
		t.Fatalf("%s did not run in a process with %s:\n%s", t.Name(), godebug, out)
	}
	t.Logf("passed in a process with %s", godebug)
	return false
}

// h2Server is a TLS server that speaks HTTP/2 and HTTP/1.1, as a server
// for browsers does, and counts the connections it accepted. Its handlers
// are waited for at the end of the test, after its connections were
// closed: a handler that waits for a Conn over one of their streams must
// then return.
type h2Server struct {
	*httptest.Server
	handlers  handlertest.Group
	conns     atomic.Int32
	clientTLS *tls.Config // trusts the server's certificate
}

func newH2Server(t *testing.T, h http.Handler) *h2Server {
	t.Helper()
	cert, roots, err := wstest.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	s := &h2Server{clientTLS: &tls.Config{RootCAs: roots}}
	s.Server = httptest.NewUnstartedServer(s.handlers.Wrap(h))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	s.EnableHTTP2 = true
	s.Config.ErrorLog = log.New(testLog{t}, "server: ", 0)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.StartTLS()
	t.Cleanup(func() {
		s.CloseClientConnections()
		s.Close()
		s.handlers.Wait()
	})
	return s
}

// testLog writes a server's log lines to its test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// wsURL returns the wss:// URL of path on s.
func (s *h2Server) wsURL(path string) string { return "wss://" + s.Listener.Addr().String() + path }

// h2Client returns net/http's own HTTP/2 client over one new TLS
// connection to s, for [DialOptions].HTTP2: every request it carries goes
// over that connection, and none dials another. net/http's Transport
// refuses a request with a :protocol header field, but the HTTP/2 client
// it sets up in TLSNextProto["h2"] for a connection whose TLS chose h2
// (the same code as golang.org/x/net/http2's Transport) takes it.
func (s *h2Server) h2Client(t *testing.T) http.RoundTripper {
	t.Helper()
	tr := &http.Transport{}
	tr.CloseIdleConnections() // sets up the HTTP/2 client
	up := tr.TLSNextProto["h2"]
	if up == nil {
		t.Fatal("net/http set up no HTTP/2 client in Transport.TLSNextProto")
	}
	cfg := s.clientTLS.Clone()
	cfg.NextProtos = []string{"h2"}
	addr := s.Listener.Addr().String()
	tc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		tc.Close()
		t.Fatalf("TLS chose %q, want h2", p)
	}
	rt := up(addr, tc)
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		tc.Close()
	})
	return rt
}

// h2Seen is what a server saw of one WebSocket.
type h2Seen struct {
	method, proto string
	remote        string     // the request's RemoteAddr
	msgs          int        // messages echoed
	code          StatusCode // the close code it ended with
	err           error      // why the echo ended
}

// h2Echo upgrades each request, from any origin, and echoes its messages
// until the peer closes, then sends what it saw on seen. It waits for
// the Conn before returning, as a handler over HTTP/2 must.
type h2Echo struct {
	opts *UpgradeOptions
	seen chan h2Seen
}

func newH2Echo() *h2Echo {
	return &h2Echo{
		opts: &UpgradeOptions{Protocols: []string{"echo"}, CheckOrigin: func(*http.Request) bool { return true }},
		seen: make(chan h2Seen, 100),
	}
}

func (e *h2Echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h2Seen{method: r.Method, proto: r.Proto, remote: r.RemoteAddr}
	c, err := Upgrade(w, r, e.opts)
	if err != nil {
		s.err = err
		e.seen <- s
		return
	}
	ctx := context.Background()
	for {
		op, p, err := readMessage(ctx, c)
		if err == nil {
			_, err = asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
				return c.PollWriteMessage(t, op, p)
			})
		}
		if err != nil {
			s.err = err
			break
		}
		s.msgs++
	}
	s.code = closeCode(c)
	c.Close()
	<-c.HandlerDone()
	e.seen <- s
}

// next returns what the server saw of the next WebSocket that ended.
func (e *h2Echo) next(t *testing.T) h2Seen {
	t.Helper()
	select {
	case s := <-e.seen:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("no WebSocket ended on the server within 30 s")
		return h2Seen{}
	}
}

// h2Open opens a WebSocket to url as an extended CONNECT through rt and
// returns the answer and the writing end of the request's body, without a
// Conn: the raw stream, for a peer of the tests' own.
func h2Open(ctx context.Context, rt http.RoundTripper, rawURL string) (*http.Response, net.Conn, context.CancelFunc, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, nil, err
	}
	req, err := handshake.NewConnectRequest(u, nil, nil, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	pr, pw := net.Pipe()
	req.Body = pr
	sctx, cancel := context.WithCancel(ctx)
	resp, err := rt.RoundTrip(req.WithContext(sctx))
	if err == nil && resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err = fmt.Errorf("answered %s", resp.Status)
	}
	if err != nil {
		cancel()
		pw.Close()
		return nil, nil, nil, err
	}
	return resp, pw, cancel, nil
}

// h2Peer is the client end of a WebSocket over an HTTP/2 stream, read
// with gobwas/ws as one byte stream: the payloads of the server's
// messages, then io.EOF at its close frame, which it answers. Its Close
// resets the stream, as a client that goes away does.
type h2Peer struct {
	body   io.ReadCloser
	w      net.Conn // the request's body
	cancel context.CancelFunc

	rd    *wsutil.Reader
	ctl   wsutil.FrameHandlerFunc
	inMsg bool
	err   error
	once  sync.Once
}

func (p *h2Peer) Read(b []byte) (int, error) {
	if p.rd == nil {
		p.ctl = wsutil.ControlFrameHandler(p.w, ws.StateClientSide)
		p.rd = &wsutil.Reader{Source: p.body, State: ws.StateClientSide, OnIntermediate: p.ctl}
	}
	for p.err == nil {
		if !p.inMsg {
			h, err := p.rd.NextFrame()
			if err != nil {
				p.err = err
				break
			}
			if h.OpCode.IsControl() {
				if err := p.ctl(h, p.rd); err != nil {
					if errors.As(err, new(wsutil.ClosedError)) {
						err = io.EOF
					}
					p.err = err
				}
				continue
			}
			p.inMsg = true
		}
		n, err := p.rd.Read(b)
		if err == io.EOF {
			p.inMsg, err = false, nil
		}
		if n > 0 || err != nil || len(b) == 0 {
			return n, err
		}
	}
	return 0, p.err
}

func (p *h2Peer) Close() error {
	p.once.Do(func() {
		p.cancel()
		p.body.Close()
		p.w.Close()
	})
	return nil
}
