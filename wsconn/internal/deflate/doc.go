// Package deflate is permessage-deflate (RFC 7692) for wsconn: the
// negotiation of its parameters in the opening handshake, and the codec
// that compresses the messages an endpoint sends and inflates the ones it
// receives, under the poll contract: no goroutine, no blocking, memory
// that grows with what arrived and never beyond a limit.
//
// # Negotiation
//
// A server passes the client's offers to [Accept], which picks the first
// one it can honour under its [Options] and gives the extension to answer
// with and the agreed [Params]; an offer it cannot read is declined, never
// a failed handshake. A client sends [Offer]'s extension and checks the
// answer with [CheckResponse], whose error fails the handshake. A nil
// *Options is compression off. By default neither side keeps its window
// between messages (no context takeover), so an idle connection holds no
// compressor.
//
// # Sending
//
// [NewCompressor] makes an endpoint's compressor from the agreed Params.
// For each message, [Compressor.ShouldCompress] says whether it goes out
// compressed (with RSV1) or as it is; [Compressor.Compress] appends its
// compressed payload, the final 0x00 0x00 0xff 0xff removed, to a caller
// buffer, allocating nothing when that buffer has room for
// [MaxCompressedLen] bytes. A writer that answers NotReady when its buffer
// is full checks that room first and compresses only a message it will
// accept: with context takeover a compressed message is part of the window
// and must be sent.
//
// # Receiving
//
// [NewDecompressor] makes an endpoint's decompressor. The payload of a
// compressed message goes to [Decompressor.Inflate] piece by piece as its
// frames arrive, and the end of the message to [Decompressor.Finish]; both
// write into the caller's message buffer, within its capacity and within
// the caller's limit on the message's size:
//
//	for {
//		msg, n, err = d.Inflate(msg, p, limit)
//		p = p[n:]
//		if !errors.Is(err, deflate.ErrShortBuffer) {
//			break
//		}
//		msg = grow(msg) // a larger buffer, of limit bytes at most
//	}
//	// err is nil, ErrTooBig (close with 1009) or ErrCorrupt (1007)
//
// No compressed byte is kept: each piece is inflated at once. Inflated
// bytes count against the limit as they are produced, so a bomb stops
// with [ErrTooBig] having inflated at most the limit (DEFLATE inflates at
// most 1032 times: a 1 MiB message can claim 1 GiB, and stops at the
// limit after about limit/1032 bytes of its input).
//
// # Implementation
//
// Neither compress/flate nor github.com/klauspost/compress/flate can
// inflate input that arrives in pieces without a goroutine: their readers
// pull from an io.Reader, and an input that runs dry inside the stream is
// a sticky io.ErrUnexpectedEOF. The inflater here is a DEFLATE decoder
// (RFC 1951) written as a state machine that stops wherever its input or
// its output room runs out and goes on from there. It decodes straight
// into the message buffer, which serves as its window: without context
// takeover it needs no window of its own, and its decoding state (about
// 14 KiB of Huffman tables) comes from a pool for the length of a message.
// It accepts matches up to 32 KiB back within a message whatever window
// was agreed (a larger window than the sender's is always correct); with
// context takeover it keeps the last 1<<bits bytes of earlier messages,
// 512 at least, because zlib, asked for an 8-bit window, makes a 9-bit
// one. It is tested against compress/flate as a model (mutation tests and
// a fuzz target) and with streams that compress/flate, gorilla and
// gobwas write.
//
// A message without context takeover, the default, is compressed by this
// package's own encoder when it is at most 64 KiB and the level is 1 (the
// default) or the window is below 15 bits: level 1's method (greedy
// matches found through a hash table, then for each block the smallest
// of a dynamic, fixed or stored encoding), sized for a message rather
// than a stream. Its state is 90 KB from a pool, where flate's
// level 1 writer is 0.8 MB, so that a server compressing for many
// connections keeps it in the processor's cache. Its output is about as
// small as flate's level 1: 2 % smaller on this package's JSON-like test
// messages, 0.6 % larger on bench/'s corpus. Every other message (context
// takeover, larger messages, levels 2 to 9) goes to
// github.com/klauspost/compress/flate, chosen over compress/flate by
// measurement: it is about 2.5 times as fast at the same size, and only
// it can bound the window below 32 KiB (flate.NewWriterWindow), which
// server_max_window_bits and client_max_window_bits below 15 require.
// Time per message of JSON-like text, medians of 7 rounds of 2000
// messages (2 shared cores, so only the ratios hold), with go test
// -run '^$' -bench 'Compress/.*takeover=false' -benchtime 2000x -count 7:
//
//	message   this encoder     klauspost level 1   compress/flate level 1
//	size      time    out/in   time    out/in      time    out/in
//	128 B     2.6µs   0.81     2.3µs   0.85        6.2µs   0.81
//	1 KiB     5.2µs   0.35     5.6µs   0.36        15.6µs  0.37
//	8 KiB     23µs    0.26     23µs    0.26        59µs    0.28
//	128 KiB   (klauspost)      0.34ms  0.25        0.77ms  0.26
//
// In a server the difference is larger than alone: in the compressed echo
// of bench/ (1 KiB messages, 64 connections), the server's CPU per message
// fell by 14 % when this encoder replaced klauspost's (medians of 4
// alternating runs, 16.35 against 14.1µs), the smaller state staying in
// cache between messages. Compressing allocates nothing per message.
// Messages below [Options].MinSize (256 bytes by default) go out
// uncompressed: DEFLATE saves little there.
//
// Inflating the same 1 KiB messages takes 5.1µs here, 7.0µs with
// klauspost's reader and 12.4µs with compress/flate's (the whole message
// at once, as they need it); 128 KiB, 0.33ms, 0.34ms and 0.47ms. Fed in
// pieces of 1 KiB, this inflater takes the same time.
//
// # Memory
//
// Held per connection between messages, measured with runtime.MemStats
// around making 16 of each after a 1 KiB message (BenchmarkMemoryHeld):
//
//	                                 no context takeover   context takeover
//	Compressor (level 1)             64 B                  0.83 MB
//	Compressor, window below 15 bits 64 B                  1.09 MB
//	Decompressor                     96 B                  33 KB (32 KiB window)
//
// For comparison, a compress/flate writer at level 1 holds 1.21 MB, and
// the libraries' readers 38 KB (klauspost) and 41 KB (compress/flate).
// Context takeover thus costs about 0.86 MB per connection for the
// connection's life: an option, off by default. [Compressor.Release] gives
// the compressor back at any time (its next message starts a new window,
// which the peer reads like any other).
package deflate
