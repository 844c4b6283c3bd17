package main

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"

	"github.com/pollws/pollws/wsconn"
)

func init() { impls["pollws-listen"] = newPollwsListen }

// newPollwsListen is pollws's echo served by wsconn's
// Reactor.ServeListener instead of net/http: the reactor reads and
// answers each opening handshake as it arrives, and hands the upgraded
// connection to the same echo handler as newPollws's, with wsconn's
// default options and compression offered (CompressionOptions'
// defaults: the load client asks for it on /deflate and not on /ws). It
// serves plain TCP only: ServeListener is for listeners of WebSockets
// alone, and TLS goes through net/http.
func newPollwsListen(*options) (impl, error) {
	r, err := wsconn.NewReactor(nil)
	if err != nil {
		return impl{}, err
	}
	return impl{
		engine: func(ln net.Listener, tlsConf *tls.Config) (func(), error) {
			if tlsConf != nil {
				return nil, errors.New("pollws-listen serves plain TCP only")
			}
			o := &wsconn.ListenOptions{
				UpgradeOptions: wsconn.UpgradeOptions{CheckOrigin: allowAll, Options: wsconn.Options{Compression: &wsconn.CompressionOptions{}}},
				Handler:        func(c *wsconn.Conn, _ *http.Request) wsconn.Handler { return &echo{c: c} },
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				r.ServeListener(ln, o)
			}()
			return func() {
				ln.Close()
				<-done
			}, nil
		},
		close: func() { r.Close() },
	}, nil
}
