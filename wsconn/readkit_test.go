package wsconn

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/gobwas/ws"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/asyncio/asynciotest"
	"github.com/pollws/pollws/wsconn/internal/wstest"
)

// messageReader reads the payloads of a Conn's messages as one stream,
// for the readers' kit: a message read is all or nothing, and shows
// through as NotReady until a whole message is there.
type messageReader struct {
	c    *Conn
	mu   sync.Mutex // several goroutines may poll it at once
	rest []byte     // what is left of the message in hand
	err  error
}

func (r *messageReader) PollRead(t *asyncio.Task, p []byte) (asyncio.Async[int], error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(p) == 0 {
		return asyncio.Ready(0), nil
	}
	for len(r.rest) == 0 {
		if r.err != nil {
			return asyncio.NotReady[int](), r.err
		}
		m, err := r.c.PollReadMessage(t)
		var ce *CloseError
		switch {
		case errors.As(err, &ce) && ce.Code == StatusNormalClosure:
			r.err = io.EOF
		case err != nil:
			r.err = err
		case !m.Ready:
			return asyncio.NotReady[int](), nil
		default:
			// Data is lent until the next read, which comes only once it
			// is used up.
			r.rest = m.Value.Data
		}
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return asyncio.Ready(n), nil
}

// clientSource sends what the kit delivers as a client's messages over
// the raw connection under a server Conn.
type clientSource struct {
	c   net.Conn
	tcp *net.TCPConn
}

func (s *clientSource) Deliver(p []byte) error {
	f := ws.NewBinaryFrame(append([]byte(nil), p...))
	return ws.WriteFrame(s.c, ws.MaskFrameInPlace(f))
}

func (s *clientSource) End() error {
	f := ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	return ws.WriteFrame(s.c, ws.MaskFrameInPlace(f))
}

func (s *clientSource) HangUp() error {
	s.tcp.SetLinger(0)
	return s.c.Close()
}

// TestConnReaderConformance runs the readers' kit on a server Conn's
// message reads: over TCP, over TLS on a socket.Conn, and served by a
// Reactor (reads woken by its epoll set, not by a goroutine).
func TestConnReaderConformance(t *testing.T) {
	mk := func(useTLS, served bool) asynciotest.MakeReader {
		return func() (asyncio.AsyncReader, asynciotest.Source, func(), error) {
			var s, c net.Conn
			var tcp *net.TCPConn
			if useTLS {
				ts, tc, _, tcpc, err := wstest.NewTLSSocket(false)
				if err != nil {
					return nil, nil, nil, err
				}
				s, c, tcp = ts, tc, tcpc
			} else {
				ts, tc, err := wstest.NewTCP(false)
				if err != nil {
					return nil, nil, nil, err
				}
				s, c, tcp = ts, tc, tc
			}
			conn := Server(s, &Options{PingInterval: -1, IdleTimeout: -1})
			var r *Reactor
			if served {
				var err error
				if r, err = NewReactor(nil); err != nil {
					return nil, nil, nil, err
				}
				// Watched by the reactor, read by the kit's polls.
				if err := conn.serveOn(r.r, nil); err != nil {
					return nil, nil, nil, err
				}
			}
			go io.Copy(io.Discard, c) // the server's close frame and pongs
			stop := func() {
				conn.Close()
				c.Close()
				if r != nil {
					r.Close()
				}
			}
			return &messageReader{c: conn}, &clientSource{c: c, tcp: tcp}, stop, nil
		}
	}
	t.Run("TCP", func(t *testing.T) { asynciotest.TestReader(t, mk(false, false)) })
	t.Run("TLSSocket", func(t *testing.T) { asynciotest.TestReader(t, mk(true, false)) })
	t.Run("Reactor", func(t *testing.T) { asynciotest.TestReader(t, mk(false, true)) })
}
