// Command natsbroker is the NATS broker of wsbench's broadcast-nats
// scenario: a nats-server (github.com/nats-io/nats-server/v2) embedded in
// a process of its own, so that what it costs counts neither for the
// load client nor for the server instances it connects.
//
//	natsbroker -addr 127.0.0.1:0
//
// It prints "listening HOST:PORT" once it accepts clients, and exits on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address; port 0 for any free one")
	flag.Parse()
	ns, err := start(*addr)
	if err != nil {
		log.Fatalf("natsbroker: %v", err)
	}
	fmt.Printf("listening %s\n", ns.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	ns.Shutdown()
	ns.WaitForShutdown()
}

// start starts a broker listening on addr and waits until it accepts
// clients.
func start(addr string) (*server.Server, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", p, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT // nats-server takes 0 for its default, 4222
	}
	ns, err := server.NewServer(&server.Options{Host: host, Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, err
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("not accepting clients on %s after 10 s", addr)
	}
	return ns, nil
}
