// Package natstest runs a real NATS broker inside a test process, on a
// loopback port, and restarts it on the same port, so that clients that
// reconnect find it again.
package natstest

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Broker is a nats-server embedded in the test process. It is safe for
// use by multiple goroutines.
type Broker struct {
	t    testing.TB
	port int

	mu  sync.Mutex
	srv *server.Server // nil while stopped
}

// Start starts a broker on a free loopback port; it stops when the test
// ends.
func Start(t testing.TB) *Broker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	b := &Broker{t: t, port: port}
	b.Restart()
	t.Cleanup(b.Stop)
	return b
}

// URL returns the broker's client URL.
func (b *Broker) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", b.port) }

// Stop shuts the broker down, closing every client connection, and waits
// until it is down. Stopping a stopped broker does nothing.
func (b *Broker) Stop() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts the broker again on its port, after Stop, and waits
// until it takes connections. Clients that lost it reconnect.
func (b *Broker) Restart() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		return
	}
	// The port may be in TIME_WAIT for a moment after Stop: retry briefly.
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var srv *server.Server
		srv, err = server.NewServer(&server.Options{Host: "127.0.0.1", Port: b.port, NoLog: true, NoSigs: true})
		if err != nil {
			break
		}
		srv.Start()
		if srv.ReadyForConnections(5 * time.Second) {
			b.srv = srv
			return
		}
		srv.Shutdown()
		srv.WaitForShutdown()
		err = fmt.Errorf("the broker did not start on port %d", b.port)
	}
	b.t.Fatalf("natstest: %v", err)
}
