package wstest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"
)

// UpgradeGorilla runs the opening handshake over an established
// connection: server answers with gobwas/ws, client is a gorilla/websocket
// client. server is then ready for the server side of a WebSocket
// connection.
func UpgradeGorilla(server, client net.Conn) (*websocket.Conn, error) {
	errc := make(chan error, 1)
	go func() {
		_, err := ws.Upgrade(server)
		errc <- err
	}()
	d := websocket.Dialer{
		NetDialContext: func(context.Context, string, string) (net.Conn, error) { return client, nil },
	}
	wc, resp, err := d.Dial("ws://127.0.0.1/", nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		client.Close() // ends the upgrade
	}
	if uerr := <-errc; err == nil {
		err = uerr
	}
	if err != nil {
		server.Close()
		client.Close()
		return nil, err
	}
	return wc, nil
}

// UpgradeGobwas runs the opening handshake over an established
// connection with gobwas/ws on both sides, and returns the bytes the
// client read past the handshake (for the client side of a WebSocket
// connection over client).
func UpgradeGobwas(server, client net.Conn) (pre []byte, err error) {
	errc := make(chan error, 1)
	go func() {
		_, err := ws.Upgrade(server)
		errc <- err
	}()
	d := ws.Dialer{NetDial: func(context.Context, string, string) (net.Conn, error) { return client, nil }}
	_, br, _, err := d.Dial(context.Background(), "ws://127.0.0.1/")
	if err != nil {
		client.Close()
	}
	if uerr := <-errc; err == nil {
		err = uerr
	}
	if err != nil {
		server.Close()
		client.Close()
		return nil, err
	}
	if br != nil {
		b, _ := br.Peek(br.Buffered())
		pre = append(pre, b...)
		ws.PutReader(br)
	}
	return pre, nil
}

// GorillaStream reads the messages a gorilla/websocket client receives as
// one byte stream: the concatenation of their payloads, then io.EOF when
// the server's close frame comes (gorilla answers it). With One set, the
// stream is the payload of one message only. Its Close resets the TCP
// connection under it.
type GorillaStream struct {
	WS  *websocket.Conn
	TCP *net.TCPConn
	One bool

	r    io.Reader
	err  error
	seen bool
}

func (s *GorillaStream) Read(p []byte) (int, error) {
	for s.err == nil {
		if s.r == nil {
			if s.One && s.seen {
				s.err = io.EOF
				break
			}
			_, r, err := s.WS.NextReader()
			if err != nil {
				if ce := new(websocket.CloseError); errors.As(err, &ce) {
					err = io.EOF
				}
				s.err = err
				break
			}
			s.r, s.seen = r, true
		}
		n, err := s.r.Read(p)
		if err == io.EOF {
			s.r, err = nil, nil
		}
		if n > 0 || err != nil || len(p) == 0 {
			return n, err
		}
	}
	return 0, s.err
}

// Close resets the connection.
func (s *GorillaStream) Close() error {
	if s.TCP != nil {
		_ = s.TCP.SetLinger(0)
	}
	return s.WS.Close()
}

// GobwasStream reads, as the server side of a connection, the messages a
// client sends, as one byte stream, with gobwas/ws: the concatenation of
// their payloads, then io.EOF when the client's close frame comes (it is
// answered). Its Close resets the TCP connection under it.
type GobwasStream struct {
	Conn net.Conn
	TCP  *net.TCPConn

	rd    *wsutil.Reader
	ctl   wsutil.FrameHandlerFunc
	inMsg bool
	err   error
}

func (s *GobwasStream) Read(p []byte) (int, error) {
	if s.rd == nil {
		s.ctl = wsutil.ControlFrameHandler(s.Conn, ws.StateServerSide)
		s.rd = &wsutil.Reader{Source: s.Conn, State: ws.StateServerSide, OnIntermediate: s.ctl}
	}
	for s.err == nil {
		if !s.inMsg {
			h, err := s.rd.NextFrame()
			if err != nil {
				s.err = err
				break
			}
			if h.OpCode.IsControl() {
				if err := s.ctl(h, s.rd); err != nil {
					if errors.As(err, new(wsutil.ClosedError)) {
						err = io.EOF
					}
					s.err = err
				}
				continue
			}
			s.inMsg = true
		}
		n, err := s.rd.Read(p)
		if err == io.EOF {
			s.inMsg, err = false, nil
		}
		if n > 0 || err != nil || len(p) == 0 {
			return n, err
		}
	}
	return 0, s.err
}

// Close resets the connection.
func (s *GobwasStream) Close() error {
	if s.TCP != nil {
		_ = s.TCP.SetLinger(0)
	}
	return s.Conn.Close()
}

// GorillaHandler returns an HTTP handler that upgrades every request with
// gorilla/websocket (any origin) and runs serve on the connection, then
// closes it.
func GorillaHandler(serve func(*websocket.Conn)) http.Handler {
	u := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := u.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	})
}
