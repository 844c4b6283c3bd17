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
func newCoder() impl {
	return impl{echo: func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
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
	}}
}
