// Package gorillaws gives a gorilla/websocket connection the poll
// contract of [asyncio.AsyncWriter], for servers already on gorilla: a
// [Writer] queues whole messages in a bounded queue and never blocks, and
// one goroutine, which exists only while the queue is not empty, writes
// them to the connection.
//
// It is the only package of the module that imports
// github.com/gorilla/websocket, so that programs that do not use gorilla
// do not link it.
package gorillaws
