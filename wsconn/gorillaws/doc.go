// Package gorillaws gives a gorilla/websocket connection the poll
// contract of [asyncio.AsyncWriter], for servers already on gorilla: a
// [Writer] queues whole messages in a bounded queue and never blocks, and
// one goroutine, which exists only while the queue is not empty, writes
// them to the connection.
//
// Upgrade with [Upgrade] and make the Writer with [New]:
//
//	c, err := gorillaws.Upgrade(&upgrader, w, r, nil)
//	if err != nil {
//		return // Upgrade answered the request
//	}
//	gw := gorillaws.New(c, nil)
//	defer gw.Close()
//	for {
//		typ, p, err := gw.AppendMessage(buf[:0]) // or gw.NextReader(), or c.ReadMessage()
//		…
//		_, err = asyncio.BlockOn(ctx, func(t *asyncio.Task) (asyncio.Async[int], error) {
//			return gw.PollWriteMessage(t, typ, p)
//		})
//	}
//
// Every frame then goes out in the order it was queued: messages, the
// pong for each ping, and the close frame, whether the Writer's own
// ([Writer.ShutdownWith]), its answer to the peer's, or the one gorilla
// writes by itself on bad input.
//
// It is the only package of the module that imports
// github.com/gorilla/websocket, so that programs that do not use gorilla
// do not link it.
package gorillaws
