// Command wsserver is one side-by-side benchmark server: an echo on /ws
// and, where the implementation has them, an echo with permessage-deflate
// (RFC 7692) on /deflate and a broadcast hub (/pub publishes each message
// it receives to every subscriber of /sub). wsbench starts one process per
// implementation; a new implementation is one file that registers itself
// in impls.
//
//	wsserver -impl gorilla -addr 127.0.0.1:0 [-tls [-h2]] [-nats URL]
//
// It prints "listening ADDR" once it accepts connections (with -tls, first
// "cert BASE64" with the DER of the certificate it generated for the run),
// answers SIGUSR1 by returning free memory to the system
// (debug.FreeOSMemory) and printing "freed", and exits on SIGINT or
// SIGTERM. With -h2 its TLS offers HTTP/2 too; a WebSocket goes over an
// HTTP/2 stream (RFC 8441) when the process runs with
// GODEBUG=http2xconnect=1. With -nats the broadcast hub shares its topic
// with the other instances on that NATS broker.
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
	// deflate serves the WebSocket echo with permessage-deflate, no
	// context takeover; nil when the implementation cannot compress.
	deflate http.HandlerFunc
	// listener, if set, wraps the TCP listener net/http serves (under TLS
	// too), as the implementation's docs advise.
	listener func(net.Listener) (net.Listener, error)
	// sub and pub serve the broadcast hub; nil when there is none.
	sub, pub http.HandlerFunc
	// raw serves a raw TCP listener instead of HTTP.
	raw func(net.Listener)
	// engine serves the WebSocket echoes on ln with a server of the
	// implementation's own instead of net/http, over TLS with tlsConf
	// when it is not nil, and returns the function that stops it.
	engine func(ln net.Listener, tlsConf *tls.Config) (stop func(), err error)
	// close releases what the implementation holds beside its
	// connections (a reactor, a hub, a broker's connection) once serving
	// stopped; nil when there is nothing.
	close func()
}

// options are what the command line asks of an implementation.
type options struct {
	// nats is the URL of the NATS broker the broadcast hub joins; "" for
	// none.
	nats string
}

var impls = map[string]func(*options) (impl, error){}

// h2Streams is how many streams an HTTP/2 connection may carry at once
// with -h2: more than the WebSockets a benchmark opens on one.
const h2Streams = 100_000

func main() {
	name := flag.String("impl", "gorilla", "implementation")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	useTLS := flag.Bool("tls", false, "serve TLS with a certificate generated for the run")
	h2 := flag.Bool("h2", false, "with -tls, offer HTTP/2 too (WebSockets over its streams need GODEBUG=http2xconnect=1)")
	var opts options
	flag.StringVar(&opts.nats, "nats", "", "the broadcast hub joins the NATS broker at this URL")
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
	if *h2 && !*useTLS {
		log.Fatal("wsserver: -h2 needs -tls")
	}
	if _, err := proc.RaiseFileLimit(); err != nil {
		log.Fatal(err)
	}
	im, err := mk(&opts)
	if err != nil {
		log.Fatalf("wsserver -impl %s: %v", *name, err)
	}
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
	stopServing, err := im.serve(ln, tlsConf, *h2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	<-ctx.Done()
	stopServing()
	if im.close != nil {
		im.close()
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
