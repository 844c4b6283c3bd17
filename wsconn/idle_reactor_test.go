package wsconn

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The idle clients of TestReactorIdleConnections run in a process of
// their own (the test binary again), since a process may hold only so
// many descriptors: this environment variable makes it one.
const idleClientsEnv = "WSCONN_IDLE_CLIENTS"

func init() {
	if addr := os.Getenv(idleClientsEnv); addr != "" {
		n, _ := strconv.Atoi(os.Getenv(idleClientsEnv + "_N"))
		os.Exit(idleClients(addr, n))
	}
}

// idleClients opens n WebSocket connections to addr, exchanges one
// message on each, prints "ready", and holds them until stdin closes.
func idleClients(addr string, n int) int {
	conns := make([]net.Conn, 0, n)
	msg := maskedFrame([]byte("hello"))
	buf := make([]byte, 4096)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Println("dial", i, err)
			return 1
		}
		var key [16]byte
		rand.Read(key[:])
		fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", addr, base64.StdEncoding.EncodeToString(key[:]))
		br := bufio.NewReaderSize(c, 1024)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				fmt.Println("handshake", i, err)
				return 1
			}
			if line == "\r\n" {
				break
			}
		}
		if _, err := c.Write(msg); err != nil {
			fmt.Println("write", i, err)
			return 1
		}
		if _, err := io.ReadFull(br, buf[:7]); err != nil || string(buf[2:7]) != "hello" {
			fmt.Println("echo", i, err)
			return 1
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	runtime.KeepAlive(conns) // the connections stay open until then
	return 0
}

// maskedFrame is p as one masked binary frame from a client.
func maskedFrame(p []byte) []byte {
	f := []byte{0x82, 0x80 | byte(len(p)), 1, 2, 3, 4}
	for i, b := range p {
		f = append(f, b^f[2+i%4])
	}
	return f
}

// TestReactorIdleConnections serves many connections that each exchanged
// one message and went quiet: the server holds no goroutine for them
// (fewer than 50 in all) and little memory.
func TestReactorIdleConnections(t *testing.T) {
	idleConnections(t, func() string { return strings.TrimPrefix(newReactorServer(t, nil).URL, "http://") })
}

// TestServeListenerIdleConnections: the same with the handshakes read by
// ServeListener.
func TestServeListenerIdleConnections(t *testing.T) {
	idleConnections(t, func() string {
		return newListenServer(t, &ListenOptions{Handler: func(c *Conn, _ *http.Request) Handler { return &echoHandler{c: c} }}).addr
	})
}

// idleConnections opens many connections to the server that start
// starts and returns the address of, each of which exchanges one message
// and goes quiet, and checks that the server holds no goroutine for them
// (fewer than 50 in all). It logs the memory they take.
func idleConnections(t *testing.T, start func() string) {
	n := 10000
	if os.Getenv("WSCONN_HEAP") != "" {
		runtime.MemProfileRate = 1
	}
	if testing.Short() {
		n = 1000
	}
	addr := start()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), idleClientsEnv+"="+addr, idleClientsEnv+"_N="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("clients: %q, %v", line, err)
	}
	// The handlers wait for their next message; net/http's goroutines for
	// the upgraded requests have returned. Nothing signals that across the
	// processes: wait for the count to settle.
	deadline := time.Now().Add(30 * time.Second)
	goroutines := runtime.NumGoroutine()
	for goroutines >= 50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		goroutines = runtime.NumGoroutine()
	}
	runtime.GC()
	debug.FreeOSMemory()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perConn := float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse) / float64(n)
	t.Logf("%d idle connections: %d goroutines, %.0f bytes of heap and stacks per connection", n, goroutines, perConn)
	if goroutines >= 50 {
		t.Errorf("%d goroutines with %d idle connections, want fewer than 50", goroutines, n)
	}
	if p := os.Getenv("WSCONN_HEAP"); p != "" {
		f, _ := os.Create(p)
		pprof.WriteHeapProfile(f)
		f.Close()
	}
}
