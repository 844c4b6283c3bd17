// Package asyncio is the poll contract every pollws writer keeps: writes
// that never block, never grow without bound, and never lose a byte they
// said they took.
//
// The contract is tokio-io 0.1's AsyncWrite, in Go. A poll either makes
// progress at once and answers [Ready], or answers [NotReady] having
// arranged for the [Task] it was given to be notified when progress is
// possible. Whoever polls decides what a wait means: a server loop polls
// thousands of writers from a few goroutines, while [BlockOn], [WriteAll],
// [Flush] and [Shutdown] park one goroutine for code that prefers to block.
//
//	w, r := asyncio.Pipe(64 << 10)
//	if err := asyncio.WriteAll(ctx, w, msg); err != nil { … }
//	if err := asyncio.Shutdown(ctx, w); err != nil { … } // flushes first
//
// [AsyncWriter] states the rules; the kit in package asynciotest checks
// them for any implementation. [Buf] and [WriteBuf] write several chunks
// with one vectored write. [StreamProducer] and [Puller] are the pull side:
// a producer of items polled only when its consumer can take more.
package asyncio
