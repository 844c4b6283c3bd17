package deflate

import "errors"

var (
	// ErrShortBuffer: [Decompressor.Inflate] or [Decompressor.Finish]
	// filled the capacity of the buffer it was given and has more to
	// write. It is not sticky: call again with a larger buffer.
	ErrShortBuffer = errors.New("deflate: output buffer full")
	// ErrTooBig: a message inflates to more bytes than the limit (a
	// receiver closes the connection with status 1009).
	ErrTooBig = errors.New("deflate: message inflates beyond the limit")
	// ErrCorrupt: a message's payload is not a DEFLATE stream ended as
	// RFC 7692 requires (a receiver closes the connection, with status
	// 1007).
	ErrCorrupt = errors.New("deflate: corrupt compressed data")
	// ErrReleased: the compressor or decompressor was released.
	ErrReleased = errors.New("deflate: used after Release")
	// ErrResponse: a server's permessage-deflate response is not one the
	// client's offer allows (RFC 7692 section 7): the client fails the
	// handshake.
	ErrResponse = errors.New("deflate: invalid permessage-deflate response")
)
