package main

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartAcceptsClients(t *testing.T) {
	ns, err := start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	c, err := net.Dial("tcp", ns.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A NATS server greets each client with its INFO.
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "INFO {") {
		t.Fatalf("greeting %q, %v; want INFO", line, err)
	}
}

func TestStartRefusesABadAddress(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:port"} {
		if ns, err := start(addr); err == nil {
			ns.Shutdown()
			t.Errorf("start(%q): no error", addr)
		}
	}
}
