// Package handshake is the WebSocket opening handshake as plain functions
// over net/http types: the server's validation of a request and its answer,
// the client's request and its check of the answer, for HTTP/1.1 upgrades
// (RFC 6455 section 4) and for HTTP/2 extended CONNECT (RFC 8441).
//
// A server calls [ParseRequest], then checks the origin ([SameOrigin] or
// its own rule) and picks a subprotocol ([ChooseProtocol]). Over HTTP/1.1
// it hijacks the connection and writes [AppendResponse]'s 101; over HTTP/2
// it answers with [WriteConnectResponse] and keeps the stream. A request
// that fails gets the answer its [*RequestError] names ([RequestError.Refuse]).
//
// A client sends [NewRequest]'s request, reads the answer with
// [net/http.ReadResponse] and checks it with [CheckResponse]; over HTTP/2
// it sends [NewConnectRequest]'s through an HTTP/2 client and checks the
// answer with [CheckConnectResponse].
//
// Header fields follow RFC 7230: Connection, Upgrade, Sec-WebSocket-Protocol
// and Sec-WebSocket-Extensions are comma-separated lists that may span
// several header lines, with empty elements ignored; tokens compare without
// regard to case where RFC 6455 says so. Everything here is a function of
// its arguments: safe for use by multiple goroutines.
package handshake
