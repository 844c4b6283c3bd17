package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"
	"golang.org/x/net/http2"

	"github.com/pollws/pollws/bench/internal/load"
	"github.com/pollws/pollws/wsconn"
)

// TestMain checks for leaks, but for the workers that nbio's task pool
// starts when the package is initialised, for the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/lesismal/nbio/taskpool.New.func3"))
}

// start serves implementation name with o on a loopback port (over TLS
// with tlsConf when not nil, and HTTP/2 with h2) until the test ends, and
// returns its address.
func start(t *testing.T, name string, o *options, tlsConf *tls.Config, h2 bool) string {
	t.Helper()
	im, err := impls[name](o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop, err := im.serve(ln, tlsConf, h2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		if im.close != nil {
			im.close()
		}
	})
	return ln.Addr().String()
}

func corpus(t *testing.T) *load.Corpus {
	t.Helper()
	msgs, err := load.JSONMessages(32, 1024, 5)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := load.NewCorpus(msgs)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// TestDeflate checks that every implementation with /deflate agrees on
// permessage-deflate, echoes what it inflated and compresses the echoes.
func TestDeflate(t *testing.T) {
	cp := corpus(t)
	for _, name := range implNames() {
		im, err := impls[name](&options{})
		if err != nil {
			t.Fatal(err)
		}
		if im.close != nil {
			im.close()
		}
		if im.deflate == nil && im.engine == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if name == "nbio" && raceEnabled {
				// nbio's listener goroutine hands each accepted connection
				// to a poller goroutine through epoll, an ordering the race
				// detector cannot see, so it reports nbio's own reads of
				// the connection's addresses now and then. scripts/test
				// runs this test without it too.
				t.Skip("nbio is tested without the race detector")
			}
			addr := start(t, name, &options{}, nil, false)
			c, err := load.Dial(context.Background(), load.WebSocket, addr, &load.DialOptions{Path: "/deflate", Deflate: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, r0, err := c.WireBytes()
			if err != nil {
				t.Fatal(err)
			}
			const n = 200
			if err := c.Echo(context.Background(), &load.EchoOptions{Window: 4, Messages: n, Corpus: cp}); err != nil {
				t.Fatal(err)
			}
			_, r1, err := c.WireBytes()
			if err != nil {
				t.Fatal(err)
			}
			if got := (r1 - r0) / n; got > 700 {
				t.Fatalf("%d bytes received per echo of 1 KiB, want compressed ones", got)
			}
		})
	}
}

// TestBroadcastOverNATS checks that two pollws instances joined to one
// broker deliver what is published on one to the subscribers of both.
func TestBroadcastOverNATS(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the broker does not accept clients")
	}
	a := start(t, "pollws", &options{nats: ns.ClientURL()}, nil, false)
	b := start(t, "pollws", &options{nats: ns.ClientURL()}, nil, false)
	ctx := context.Background()
	var subs []*load.Conn
	for _, addr := range []string{a, b} {
		c, err := load.Dial(ctx, load.WebSocket, addr, &load.DialOptions{Path: "/sub"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		subs = append(subs, c)
	}
	pub, err := load.Dial(ctx, load.WebSocket, a, &load.DialOptions{Path: "/pub"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f, err := load.NewFrames(load.WebSocket, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A subscriber joins its hub when its upgrade is done, and b's hub
	// the broker's subject with it: publish until both got a message.
	got := make(chan int, len(subs))
	for i, c := range subs {
		go func() {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if m, err := c.ReadMessage(); err == nil && len(m) == 64 {
				got <- i
			} else {
				got <- -1
			}
		}()
	}
	seen := map[int]bool{}
	deadline := time.After(10 * time.Second)
	for len(seen) < len(subs) {
		if _, err := pub.Write(f.Stamp(1, load.Now())); err != nil {
			t.Fatal(err)
		}
		select {
		case i := <-got:
			if i < 0 {
				t.Fatal("a subscriber's read failed")
			}
			seen[i] = true
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("subscribers %v got a message within 10 s, want both", seen)
		}
	}
}

// xconnect is the GODEBUG setting with which net/http offers extended
// CONNECT; net/http reads it when the process starts.
const xconnect = "http2xconnect=1"

// TestWebSocketsOverHTTP2 checks that pollws with -tls -h2 serves
// WebSockets as streams of one HTTP/2 connection. It runs in a process of
// its own that has GODEBUG=http2xconnect=1, unless this one has.
func TestWebSocketsOverHTTP2(t *testing.T) {
	if !strings.Contains(os.Getenv("GODEBUG"), xconnect) {
		cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
		cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") }),
			"GODEBUG="+strings.TrimPrefix(os.Getenv("GODEBUG")+","+xconnect, ","))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
			t.Fatalf("in a process with GODEBUG=%s: %v\n%s", xconnect, err, out)
		}
		return
	}
	cert, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	addr := start(t, "pollws", &options{}, &tls.Config{Certificates: []tls.Certificate{cert}}, true)
	//lint:ignore SA1019 net/http's Transport sends no extended CONNECT
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}}}
	//lint:ignore SA1019 as above
	defer tr.CloseIdleConnections()
	ctx := context.Background()
	local := map[string]bool{}
	for range 10 {
		c, err := wsconn.Dial(ctx, "wss://"+addr+"/ws", &wsconn.DialOptions{HTTP2: tr})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("over a stream")); err != nil {
			t.Fatal(err)
		}
		m, err := c.ReadMessage(ctx)
		if err != nil || string(m.Data) != "over a stream" {
			t.Fatalf("echo %q, %v", m.Data, err)
		}
		local[c.LocalAddr().String()] = true
	}
	if len(local) != 1 {
		t.Fatalf("10 WebSockets over %d TCP connections, want 1", len(local))
	}
}
