// Package buf holds the bounded buffers that queue bytes in pollws, so that
// nothing in the module can grow without bound.
//
// There are two, each a whole capability:
//
//   - A stream ([NewStream]) is a bounded stream of byte chunks from one or
//     more writers to one reader. A full stream makes writers wait; chunk
//     boundaries and each writer's order are kept; [StreamWriter.Clone]
//     fans several writers into one stream. Its reader is a natural
//     source for the pull side of package asyncio: the client in
//     examples/client (-stream) wraps it in an asyncio.StreamProducer that
//     a wsconn.Pump polls when the connection can take more.
//   - [Channel] is a many-to-many ring of frames with strong and weak
//     ends. Strong readers hold writers back; weak readers never do, and
//     are told how much they lost when writers overtake them. It is what a
//     broadcast uses to hand one copy of each message to many subscribers.
//
// # Polls
//
// Streams and channels follow the conventions of package asyncio: every
// operation that may have to wait has a poll form, which never blocks and
// answers [asyncio.NotReady] after arranging for its [asyncio.Task] to be
// notified, and a blocking form that takes a context and is built on
// [asyncio.BlockOn]. Would-block is NotReady, never an error. A nil Task
// is allowed in every poll; the poll then arranges no notification.
//
// Each handle (a writer or a reader) keeps one task: the one its latest
// poll passed. A handle is meant for one goroutine at a time; give each
// goroutine its own handle ([StreamWriter.Clone], [Channel.NewWeakWriter],
// ...). Close may be called from any goroutine.
//
// Errors are sentinels matched with [errors.Is], or types matched with
// [errors.As] ([*WriteError], [*ReaderBehindError]).
package buf
