package wsconn

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gobwas/ws"
)

// UpgradeOptions configures [Upgrade]. A nil *UpgradeOptions means the
// defaults.
type UpgradeOptions struct {
	// Options configures the Conn.
	Options

	// CheckOrigin reports whether the request's Origin is allowed; a
	// refused request gets 403 Forbidden. Nil allows requests without an
	// Origin header (clients other than browsers) and those whose Origin
	// has the request's host (same origin).
	CheckOrigin func(r *http.Request) bool

	// Protocols are the subprotocols the server speaks: the first one the
	// client offers that is in the list is chosen. Nil chooses none.
	Protocols []string

	// Header holds extra headers for the response.
	Header http.Header
}

// Upgrade upgrades an HTTP request to a WebSocket connection and returns
// its server side. A request that is not a WebSocket handshake gets 426
// Upgrade Required; a malformed handshake 400 Bad Request (426 for an
// unsupported version); a refused origin 403 Forbidden; in each case
// Upgrade returns an error and the handler must not write to w.
//
// The Conn outlives the handler. A server that keeps many connections open
// should serve each on a goroutine of its own and return from the handler:
// until it returns, net/http keeps its goroutine for the connection and
// about 10 KiB of buffers that the Conn never uses, more than an idle Conn
// costs by itself. net/http cancels r.Context() when the handler returns,
// so the goroutine needs a context of its own, such as
// context.WithoutCancel(r.Context()).
func Upgrade(w http.ResponseWriter, r *http.Request, o *UpgradeOptions) (*Conn, error) {
	if o == nil {
		o = new(UpgradeOptions)
	}
	if !connHasToken(r.Header, "Connection", "upgrade") || !connHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this is a WebSocket endpoint", http.StatusUpgradeRequired)
		return nil, fmt.Errorf("wsconn: upgrade: %s %s is not a WebSocket handshake", r.Method, r.URL)
	}
	check := o.CheckOrigin
	if check == nil {
		check = connSameOrigin
	}
	if !check(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return nil, fmt.Errorf("wsconn: upgrade: origin %q not allowed", r.Header.Get("Origin"))
	}
	u := ws.HTTPUpgrader{Header: o.Header}
	if len(o.Protocols) > 0 {
		u.Protocol = func(p string) bool { return slices.Contains(o.Protocols, p) }
	}
	conn, rw, hs, err := connUpgrade(u, r, w)
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("wsconn: upgrade: %w", err)
	}
	var pre []byte
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		pre = bytes.Clone(b)
	}
	c := newConn(conn, pre, &o.Options, false)
	c.subprotocol = hs.Protocol
	return c, nil
}

// connUpgrade runs u.Upgrade on a goroutine of its own and waits for it.
// The hijack and the response take more stack than a read loop does: run
// on the handler's goroutine, they would grow its stack (to 8 KiB behind
// an http.ServeMux), and a goroutine keeps its stack for as long as it
// uses more than a quarter of it, so every idle connection would pay for
// the handshake it made once.
func connUpgrade(u ws.HTTPUpgrader, r *http.Request, w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, ws.Handshake, error) {
	type result struct {
		conn  net.Conn
		rw    *bufio.ReadWriter
		hs    ws.Handshake
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		var x result
		defer func() {
			// A panic is raised again on the handler's goroutine, where
			// net/http's recovery for the handler applies.
			x.panic = recover()
			done <- x
		}()
		x.conn, x.rw, x.hs, x.err = u.Upgrade(r, w)
	}()
	x := <-done
	if x.panic != nil {
		panic(x.panic)
	}
	return x.conn, x.rw, x.hs, x.err
}

// connHasToken reports whether the comma-separated header key holds
// token, in any case.
func connHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// connSameOrigin allows requests without an Origin and those whose Origin
// has the request's host.
func connSameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}
