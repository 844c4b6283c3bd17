package main

import (
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

func init() { impls["gorilla"] = newGorilla }

// newGorilla is gorilla/websocket as its examples show it: the echo
// example's read-write loop, and the chat example's hub with one send
// channel and write pump per client. /deflate is the same echo with the
// Upgrader's EnableCompression, gorilla's permessage-deflate: no context
// takeover (the only mode it has), compress/flate at level 1, every
// message compressed.
func newGorilla(*options) (impl, error) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	upDeflate := websocket.Upgrader{CheckOrigin: up.CheckOrigin, EnableCompression: true}
	h := &gorillaHub{clients: make(map[*gorillaClient]bool)}
	return impl{
		echo:    func(w http.ResponseWriter, r *http.Request) { gorillaEcho(&up, w, r) },
		deflate: func(w http.ResponseWriter, r *http.Request) { gorillaEcho(&upDeflate, w, r) },
		sub: func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			cl := &gorillaClient{conn: c, send: make(chan []byte, 256)}
			h.register(cl)
			go cl.writePump()
			for { // read pump: only to see the close
				if _, _, err := c.ReadMessage(); err != nil {
					h.unregister(cl)
					return
				}
			}
		},
		pub: func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				h.broadcast(msg)
			}
		},
	}, nil
}

// gorillaEcho is the echo example's read-write loop.
func gorillaEcho(up *websocket.Upgrader, w http.ResponseWriter, r *http.Request) {
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

type gorillaClient struct {
	conn *websocket.Conn
	send chan []byte
}

// gorillaHub is the chat example's hub, with a mutex in place of its
// goroutine and channels (the same fan-out, one lock instead of three
// channel operations per message).
type gorillaHub struct {
	mu      sync.Mutex
	clients map[*gorillaClient]bool
}

func (h *gorillaHub) register(c *gorillaClient) {
	h.mu.Lock()
	h.clients[c] = true
	h.mu.Unlock()
}

func (h *gorillaHub) unregister(c *gorillaClient) {
	h.mu.Lock()
	if h.clients[c] {
		delete(h.clients, c)
		close(c.send)
	}
	h.mu.Unlock()
}

func (h *gorillaHub) broadcast(msg []byte) {
	h.mu.Lock()
	for c := range h.clients {
		select {
		case c.send <- msg:
		default: // a client that keeps up with nothing is dropped, as in the chat example
			delete(h.clients, c)
			close(c.send)
		}
	}
	h.mu.Unlock()
}

// writePump is the chat example's: drain the send channel, batching what
// is queued into one frame writer per message.
func (c *gorillaClient) writePump() {
	defer c.conn.Close()
	for msg := range c.send {
		c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.conn.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			return
		}
	}
	c.conn.WriteMessage(websocket.CloseMessage, []byte{})
}
