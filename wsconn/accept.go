package wsconn

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/pollws/pollws/wsconn/internal/deflate"
	"github.com/pollws/pollws/wsconn/internal/handshake"
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

	// Header holds extra headers for the response. It may not set
	// Upgrade, Connection or the Sec-WebSocket-* fields, which the
	// handshake writes: such a Header fails every Upgrade with 500.
	Header http.Header
}

// Upgrade upgrades an HTTP request to a WebSocket connection and returns
// its server side, after checking the request as RFC 6455 asks. A request
// that is not a WebSocket handshake gets 426 Upgrade Required; one that
// is, but with another method than GET, 405 Method Not Allowed; a
// malformed handshake 400 Bad Request (such as a Sec-WebSocket-Key that is
// missing, given twice, or not the base64 encoding of 16 bytes), or 426
// with Sec-WebSocket-Version: 13 for a version other than 13; a refused
// origin 403 Forbidden. Connection and Upgrade are token lists that may
// span several header lines, so Connection: keep-alive, Upgrade and
// Upgrade: h2c, websocket are WebSocket handshakes. On each refusal
// Upgrade returns an error and the handler must not write to w. A refused
// WebSocket handshake closes the connection after the answer, so nothing
// the client sent behind its request is read as HTTP; a request that asks
// for no WebSocket at all leaves the connection to net/http.
//
// Bytes the client sends after its request are read as the connection's
// first frames, even those it sent before the 101 came (RFC 6455 section
// 4.1 asks a client to wait for it): whether they came in the request's
// packets or after the 101 was written is a matter of timing the server
// cannot tell reliably, so refusing them would refuse such clients only
// sometimes.
//
// With [Options].Compression set, Upgrade accepts the first
// permessage-deflate offer of the client that it can honour and answers
// it; an offer it cannot read is declined, never a failed handshake.
//
// Over HTTP/1 the Conn outlives the handler. A server that keeps many
// connections open should serve each on a goroutine of its own and return
// from the handler: until it returns, net/http keeps its goroutine for the
// connection and about 10 KiB of buffers that the Conn never uses, more
// than an idle Conn costs by itself. net/http cancels r.Context() when the
// handler returns, so the goroutine needs a context of its own, such as
// context.WithoutCancel(r.Context()).
//
// Over HTTP/2, Upgrade accepts an extended CONNECT (RFC 8441: method
// CONNECT, :protocol websocket), which browsers send when the server
// offers it; Go's net/http offers it only in a process started with
// GODEBUG=http2xconnect=1 in its environment. Upgrade answers 200 with the
// negotiation, and the Conn runs over the request's stream: the request's
// body is its input, w its output (flushed after each write), and it
// behaves as over TCP, its closing handshake ending with the stream. It is
// refused as above where that applies (426 for a CONNECT for another
// protocol, 403 for another origin, 400 for a malformed request), and a
// refusal ends only the stream. net/http ends the stream when the handler
// returns: the handler must not return before [Conn.HandlerDone] is
// closed, which it is at once over HTTP/1, so a handler that waits for it
// serves both.
func Upgrade(w http.ResponseWriter, r *http.Request, o *UpgradeOptions) (*Conn, error) {
	if o == nil {
		o = new(UpgradeOptions)
	}
	hs, err := onOwnStack(func() (opened, error) { return upgrade(w, r, o) })
	if err != nil {
		return nil, fmt.Errorf("wsconn: upgrade: %w", err)
	}
	return hs.newConn(&o.Options, false), nil
}

// upgrade checks the handshake r, answers it and returns the hijacked
// connection, or answers the refusal on w and returns why.
func upgrade(w http.ResponseWriter, r *http.Request, o *UpgradeOptions) (opened, error) {
	n, err := negotiate(r, o)
	if err != nil {
		refuse(w, r, err)
		return opened{}, err
	}
	if n.http2 {
		conn, err := acceptStream(w, r, n.protocol, n.exts, o.Header)
		if err != nil {
			return opened{}, err
		}
		return opened{conn: conn, protocol: n.protocol, compress: n.compress, deflate: n.params}, nil
	}
	resp, err := n.response(nil, o)
	if err != nil {
		refuse(w, r, err)
		return opened{}, err
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "the connection cannot be taken over", http.StatusInternalServerError)
		return opened{}, err
	}
	if _, err := conn.Write(resp); err != nil {
		conn.Close()
		return opened{}, err
	}
	return opened{conn: conn, pre: leftover(rw.Reader), protocol: n.protocol, compress: n.compress, deflate: n.params}, nil
}

// negotiation is what a server answers to a WebSocket handshake it
// accepts.
type negotiation struct {
	http2    bool   // an extended CONNECT over HTTP/2
	key      string // Sec-WebSocket-Key, over HTTP/1
	protocol string
	exts     []handshake.Extension
	compress bool
	params   deflate.Params
}

// negotiate checks the handshake r as o asks: a refusal is a
// *handshake.RequestError.
func negotiate(r *http.Request, o *UpgradeOptions) (negotiation, error) {
	req, err := handshake.ParseRequest(r)
	if err != nil {
		return negotiation{}, err
	}
	check := o.CheckOrigin
	if check == nil {
		check = handshake.SameOrigin
	}
	if !check(r) {
		return negotiation{}, &handshake.RequestError{Status: http.StatusForbidden, Err: handshake.ErrOrigin, Detail: fmt.Sprintf("%q", r.Header.Get("Origin"))}
	}
	protocol := handshake.ChooseProtocol(req.Protocols, o.Protocols)
	ext, params, compress := deflate.Accept(req.Extensions, o.Compression.deflateOptions())
	return negotiation{http2: req.HTTP2, key: req.Key, protocol: protocol, exts: extensionsOf(ext, compress), compress: compress, params: params}, nil
}

// errMisconfigured: UpgradeOptions.Header sets a field the handshake
// writes.
var errMisconfigured = errors.New("the server's WebSocket handshake is misconfigured")

// response appends the 101 that accepts the handshake over HTTP/1.
func (n negotiation) response(b []byte, o *UpgradeOptions) ([]byte, error) {
	b, err := handshake.AppendResponse(b, n.key, n.protocol, n.exts, o.Header)
	if err != nil {
		return b, fmt.Errorf("%w: UpgradeOptions.Header: %w", errMisconfigured, err)
	}
	return b, nil
}

// refuse answers r on w with why it is refused: the status of a
// *handshake.RequestError, 500 for a misconfigured server, else 400.
func refuse(w http.ResponseWriter, r *http.Request, err error) {
	var rerr *handshake.RequestError
	switch {
	case errors.As(err, &rerr):
		rerr.Refuse(w, r)
	case errors.Is(err, errMisconfigured):
		http.Error(w, errMisconfigured.Error(), http.StatusInternalServerError)
	default:
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

// onOwnStack runs f on a goroutine of its own and waits for it. The
// handshake (parsing, hijacking, the response) takes more stack than a
// read loop does: run on the handler's goroutine, it would grow that
// goroutine's stack, and a goroutine keeps its stack for as long as it
// uses more than a quarter of it, so every connection served on its
// handler's goroutine would pay for the handshake it made once. Measured
// with 2,000 such connections behind an http.ServeMux: 4.1 KiB of stack
// each this way, 4.3 KiB with the handshake run in place.
func onOwnStack[T any](f func() (T, error)) (T, error) {
	type result struct {
		v     T
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		var x result
		defer func() {
			// A panic is raised again on the caller's goroutine, where
			// net/http's recovery for the handler applies.
			x.panic = recover()
			done <- x
		}()
		x.v, x.err = f()
	}()
	x := <-done
	if x.panic != nil {
		panic(x.panic)
	}
	return x.v, x.err
}
