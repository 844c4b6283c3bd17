package gorillaws

import (
	"bufio"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Upgrade upgrades the HTTP server connection to the WebSocket protocol
// with u, as u.Upgrade(w, r, h) does, over a connection that lets a
// [Writer] made on it with [New] order every frame: the close frames that
// gorilla writes by itself when it reads bad input (1002 on a protocol
// error, 1009 on a message over the read limit) are queued after the
// messages the Writer accepted before them, instead of overtaking them,
// and nothing is written after them.
//
// The returned connection's NetConn is a wrapper of the hijacked
// connection; its NetConn method returns the hijacked connection itself,
// for socket options. Until New is called, the wrapper passes writes
// through.
func Upgrade(u *websocket.Upgrader, w http.ResponseWriter, r *http.Request, h http.Header) (*websocket.Conn, error) {
	return u.Upgrade(hijacker{w}, r, h)
}

// hijacker is the ResponseWriter Upgrade hands to gorilla: its Hijack
// wraps the connection.
type hijacker struct{ http.ResponseWriter }

func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &conn{Conn: c}, brw, nil
}

// conn is the connection gorilla writes to after [Upgrade]. Once a Writer
// is attached, gorilla's writes go to the Writer's queue, and its write
// deadlines, which would cut the Writer's own writes short, are ignored;
// reads and everything else go to the hijacked connection.
type conn struct {
	net.Conn
	w atomic.Pointer[Writer]
}

func (c *conn) Write(p []byte) (int, error) {
	if w := c.w.Load(); w != nil {
		return w.writeRaw(p)
	}
	return c.Conn.Write(p)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	if c.w.Load() != nil {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *conn) SetDeadline(t time.Time) error {
	if c.w.Load() != nil {
		return c.Conn.SetReadDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

// NetConn returns the hijacked connection.
func (c *conn) NetConn() net.Conn { return c.Conn }
