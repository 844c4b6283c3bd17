// Package soak holds the module's soak test: 200 WebSocket clients
// against a wsconn server admitted by a shutdown.Group, with random
// message sizes, slow readers, peers that vanish and a final drain, in
// which every message the server accepted must be delivered or counted as
// undelivered. It has no API; run it with
//
//	go test ./internal/soak -v
//
// and shrink it with -short.
package soak
