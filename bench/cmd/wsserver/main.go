// Command wsserver is one side-by-side benchmark server: an echo on /ws and,
// where the implementation has one, a broadcast hub (/pub publishes each
// message it receives to every subscriber of /sub). wsbench starts one
// process per implementation.
//
//	wsserver -impl gorilla -addr 127.0.0.1:0
//
// It prints "listening ADDR" once it accepts connections and exits on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"syscall"
)

// impl is one server implementation.
type impl struct {
	// echo serves the WebSocket echo; nil for raw TCP.
	echo http.HandlerFunc
	// sub and pub serve the broadcast hub; nil when there is none.
	sub, pub http.HandlerFunc
	// raw serves a raw TCP listener instead of HTTP.
	raw func(net.Listener)
}

var impls = map[string]func() impl{}

func main() {
	name := flag.String("impl", "gorilla", "implementation")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	list := flag.Bool("list", false, "print the implementations, one a line, and exit")
	flag.Parse()
	if *list {
		for _, n := range implNames() {
			fmt.Println(n)
		}
		return
	}
	mk, ok := impls[*name]
	if !ok {
		log.Fatalf("wsserver: unknown -impl %q; have %v", *name, implNames())
	}
	im := mk()
	// WSSERVER_CPUPROFILE names a file for a CPU profile of the whole run,
	// for a server started by wsbench, which passes no flags of its own.
	if path := os.Getenv("WSSERVER_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("listening %s\n", ln.Addr())
	if im.raw != nil {
		go im.raw(ln)
		<-ctx.Done()
		ln.Close()
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", im.echo)
	if im.sub != nil {
		mux.Handle("/sub", im.sub)
		mux.Handle("/pub", im.pub)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	<-ctx.Done()
	srv.Close()
}

// implNames returns the implementations, sorted.
func implNames() []string {
	var names []string
	for n := range impls {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
