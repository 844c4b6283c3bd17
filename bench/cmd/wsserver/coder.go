package main

import (
	"context"
	"net/http"

	"github.com/coder/websocket"
)

func init() { impls["coder"] = newCoder }

// newCoder is coder/websocket's echo as its docs write one: Read and Write,
// the whole-message calls (the counterparts of gorilla's ReadMessage and
// WriteMessage), with a context not derived from r.Context(), which the
// README advises against for a hijacked connection.
//
// Not the echo example's io.Copy from Reader to Writer: neither side
// implements io.WriterTo or io.ReaderFrom, so io.Copy allocates a fresh
// 32 KiB buffer for every message, and that garbage, not the library, held
// the echo to a fraction of gorilla's rate. And not r.Context(): every
// frame read or written with a cancelable context registers and removes a
// context.AfterFunc.
//
// /deflate is the same echo with CompressionNoContextTakeover: a pooled
// compress/flate writer at level 1 per message, messages from 512 bytes
// compressed (its default threshold in that mode).
func newCoder(*options) (impl, error) {
	plain := &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}
	deflate := &websocket.AcceptOptions{CompressionMode: websocket.CompressionNoContextTakeover}
	return impl{
		echo:    func(w http.ResponseWriter, r *http.Request) { coderEcho(plain, w, r) },
		deflate: func(w http.ResponseWriter, r *http.Request) { coderEcho(deflate, w, r) },
	}, nil
}

func coderEcho(o *websocket.AcceptOptions, w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, o)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	ctx := context.Background()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}
