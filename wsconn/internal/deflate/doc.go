// Package deflate is permessage-deflate (RFC 7692) for wsconn: the
// negotiation of its parameters in the opening handshake, and the codec
// that compresses the messages an endpoint sends and inflates the ones it
// receives, under the poll contract: no goroutine, no blocking, memory
// that grows with what arrived and never beyond a limit.
package deflate
