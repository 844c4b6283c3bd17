package main

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
)

// serve serves the implementation on ln, over TLS with tlsConf when it is
// not nil, and with h2 offers HTTP/2 too, and returns the function that
// stops it.
func (im impl) serve(ln net.Listener, tlsConf *tls.Config, h2 bool) (stop func(), err error) {
	if h2 && (tlsConf == nil || im.engine != nil || im.raw != nil) {
		return nil, errors.New("HTTP/2 needs TLS and net/http")
	}
	switch {
	case im.engine != nil:
		return im.engine(ln, tlsConf)
	case im.raw != nil:
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf)
		}
		go im.raw(ln) // ends when ln is closed
		return func() { ln.Close() }, nil
	}
	mux := http.NewServeMux()
	if im.listener != nil {
		if ln, err = im.listener(ln); err != nil {
			return nil, err
		}
	}
	mux.Handle("/ws", im.echo)
	if im.deflate != nil {
		mux.Handle("/deflate", im.deflate)
	}
	if im.sub != nil {
		mux.Handle("/sub", im.sub)
		mux.Handle("/pub", im.pub)
	}
	srv := &http.Server{Handler: mux}
	if h2 {
		tlsConf = tlsConf.Clone()
		tlsConf.NextProtos = []string{"h2", "http/1.1"}
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: h2Streams}
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf) // HTTP/1.1 only unless h2 offers "h2"
	}
	go srv.Serve(ln) // ends when srv is closed
	return func() { srv.Close() }, nil
}
