package main

import (
	"context"
	stdtls "crypto/tls"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/lesismal/llib/std/crypto/tls"
	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

func init() { impls["nbio"] = newNbio }

// newNbio is nbio's nbhttp engine with its websocket upgrader, set up as
// nbio's websocket server example does: the default non-blocking I/O mode
// (connections served by nbio's epoll pollers, no goroutine per
// connection), ReleaseWebsocketPayload, and an OnMessage that echoes with
// the same message type. KeepaliveTime is 0, as nbio's own benchmark suite
// sets it: no other server here closes idle connections. The engine is
// handed the listener wsserver opened, through Config.Listen as that suite
// does; over TLS it runs nbio's own TLS (AddrsTLS) with the run's
// certificate. /deflate is a second upgrader with EnableCompression, nbio's
// permessage-deflate: no context takeover (the only mode it has),
// compress/flate at level 1 from a pool, every message compressed.
func newNbio(*options) (impl, error) {
	return impl{engine: func(ln net.Listener, tlsConf *stdtls.Config) (func(), error) {
		logging.Output = os.Stderr
		logging.SetLevel(logging.LevelError)
		mux := http.NewServeMux()
		for path, compress := range map[string]bool{"/ws": false, "/deflate": true} {
			up := websocket.NewUpgrader()
			up.KeepaliveTime = 0
			up.EnableCompression(compress)
			up.OnMessage(func(c *websocket.Conn, mt websocket.MessageType, data []byte) {
				c.WriteMessage(mt, data)
			})
			mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
				up.Upgrade(w, r, nil) // on failure the upgrader has answered
			})
		}
		conf := nbhttp.Config{
			Network:                 "tcp",
			Handler:                 mux,
			ReleaseWebsocketPayload: true,
			Listen:                  func(string, string) (net.Listener, error) { return ln, nil },
		}
		addrs := []string{ln.Addr().String()}
		if tlsConf != nil {
			conf.AddrsTLS = addrs
			conf.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{
				Certificate: tlsConf.Certificates[0].Certificate,
				PrivateKey:  tlsConf.Certificates[0].PrivateKey,
			}}}
		} else {
			conf.Addrs = addrs
		}
		e := nbhttp.NewEngine(conf)
		if err := e.Start(); err != nil {
			return nil, err
		}
		return func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			e.Shutdown(ctx)
		}, nil
	}}, nil
}
