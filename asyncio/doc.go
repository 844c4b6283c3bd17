// Package asyncio is the poll contract every pollws writer and reader
// keeps: writes that never block, never grow without bound, and never lose
// a byte they said they took; reads that never block and never park a
// goroutine to wait.
//
// The contract is tokio-io 0.1's AsyncWrite and AsyncRead, in Go. A poll
// either makes progress at once and answers [Ready], or answers [NotReady]
// having arranged for the [Task] it was given to be notified when progress
// is possible. Whoever polls decides what a wait means: an [Executor] polls
// thousands of tasks on a few goroutines, while [BlockOn], [Read],
// [WriteAll], [Flush] and [Shutdown] park one goroutine for code that
// prefers to block.
//
//	w, r := asyncio.Pipe(64 << 10)
//	if err := asyncio.WriteAll(ctx, w, msg); err != nil { … }
//	if err := asyncio.Shutdown(ctx, w); err != nil { … } // flushes first
//	n, err := asyncio.Read(ctx, r, buf)                   // or r.PollRead(task, buf)
//
// [AsyncWriter] and [AsyncReader] state the rules. Any number of tasks may
// wait on one writer or reader and every one is notified: implementations
// keep them in a [WaitSet] and notify them once their lock is released.
// The kits in package asynciotest, TestWriter and TestReader, check the
// rules for any implementation, the way golang.org/x/net/nettest checks a
// net.Conn. [Pipe] is the reference implementation of both.
//
// An [Executor] is a run queue of tasks polled by at most a few worker
// goroutines that exist only while there is work: a task is polled when
// spawned and again each time it is notified, by the readers and writers it
// waits on, a reactor or a timer, until it is done. A shutdown.Group runs
// the shutdown of each connection it closes as such a task.
//
// [Buf] and [WriteBuf] write several chunks with one vectored write.
// [StreamProducer] and [Puller] are the pull side: a producer of items
// polled only when its consumer can take more. wsconn.Pump drives a
// producer of messages into a connection; the client in examples/client
// (its -stream mode) makes one of a buf.Stream's reader.
package asyncio
