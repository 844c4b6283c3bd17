// Command wsserver is one side-by-side benchmark server: an echo on /ws and,
// where the implementation has one, a broadcast hub (/pub publishes each
// message it receives to every subscriber of /sub). wsbench starts one
// process per implementation; a new implementation is one file that
// registers itself in impls.
//
//	wsserver -impl gorilla -addr 127.0.0.1:0 [-tls]
//
// It prints "listening ADDR" once it accepts connections (with -tls, first
// "cert BASE64" with the DER of the certificate it generated for the run),
// answers SIGUSR1 by returning free memory to the system
// (debug.FreeOSMemory) and printing "freed", and exits on SIGINT or
// SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"syscall"

	"github.com/pollws/pollws/bench/internal/proc"
)

// impl is one server implementation: one of echo, raw or engine.
type impl struct {
	// echo serves the WebSocket echo through net/http.
	echo http.HandlerFunc
	// listener, if set, wraps the TCP listener net/http serves (under TLS
	// too), as the implementation's docs advise.
	listener func(net.Listener) (net.Listener, error)
	// sub and pub serve the broadcast hub; nil when there is none.
	sub, pub http.HandlerFunc
	// raw serves a raw TCP listener instead of HTTP.
	raw func(net.Listener)
	// engine serves the WebSocket echo on ln with a server of the
	// implementation's own instead of net/http, over TLS with tlsConf
	// when it is not nil, and returns the function that stops it.
	engine func(ln net.Listener, tlsConf *tls.Config) (stop func(), err error)
}

var impls = map[string]func() impl{}

func main() {
	name := flag.String("impl", "gorilla", "implementation")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	useTLS := flag.Bool("tls", false, "serve TLS with a certificate generated for the run")
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
	if _, err := proc.RaiseFileLimit(); err != nil {
		log.Fatal(err)
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
	var tlsConf *tls.Config
	if *useTLS {
		cert, err := selfSigned()
		if err != nil {
			log.Fatal(err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}}
		fmt.Printf("cert %s\n", base64.StdEncoding.EncodeToString(cert.Certificate[0]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	freed := freeOnSignal(ctx)
	defer func() { <-freed }()
	switch {
	case im.engine != nil:
		stopEngine, err := im.engine(ln, tlsConf)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("listening %s\n", ln.Addr())
		<-ctx.Done()
		stopEngine()
	case im.raw != nil:
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf)
		}
		go im.raw(ln)
		fmt.Printf("listening %s\n", ln.Addr())
		<-ctx.Done()
		ln.Close()
	default:
		mux := http.NewServeMux()
		if im.listener != nil {
			if ln, err = im.listener(ln); err != nil {
				log.Fatal(err)
			}
		}
		mux.Handle("/ws", im.echo)
		if im.sub != nil {
			mux.Handle("/sub", im.sub)
			mux.Handle("/pub", im.pub)
		}
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf) // HTTP/1.1 only: no "h2" offered
		}
		srv := &http.Server{Handler: mux}
		go srv.Serve(ln)
		fmt.Printf("listening %s\n", ln.Addr())
		<-ctx.Done()
		srv.Close()
	}
}

// freeOnSignal answers each SIGUSR1 by returning free memory to the
// system and printing "freed", until ctx is done; the channel it returns
// is closed when it has stopped. Every implementation answers the same
// way, so the memory measured after it is comparable.
func freeOnSignal(ctx context.Context) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(sig)
		for {
			select {
			case <-sig:
				debug.FreeOSMemory()
				fmt.Println("freed")
			case <-ctx.Done():
				return
			}
		}
	}()
	return done
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
