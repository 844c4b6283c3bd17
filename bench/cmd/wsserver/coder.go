package main

import (
	"io"
	"net/http"

	"github.com/coder/websocket"
)

func init() { impls["coder"] = newCoder }

// newCoder is coder/websocket's echo example: a Reader and a Writer per
// message, joined by io.Copy.
func newCoder() impl {
	return impl{echo: func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(-1)
		ctx := r.Context()
		for {
			typ, rd, err := c.Reader(ctx)
			if err != nil {
				return
			}
			wr, err := c.Writer(ctx, typ)
			if err != nil {
				return
			}
			if _, err := io.Copy(wr, rd); err != nil {
				return
			}
			if err := wr.Close(); err != nil {
				return
			}
		}
	}}
}
