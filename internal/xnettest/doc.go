// Package xnettest holds the tests of pollws with golang.org/x/net/http2's
// Transport as the HTTP/2 client of wsconn.DialOptions: a module of its
// own, so that the main module does not require golang.org/x/net. Run
// them from this directory with go test ./...
package xnettest
