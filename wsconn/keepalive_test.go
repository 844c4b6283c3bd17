package wsconn

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
)

// peerFrames reads the server's frames from c, as a client, and sends each
// with the fake time it came at; the channel closes when the stream ends.
type stamped struct {
	f  ws.Frame
	at time.Time
}

func peerFrames(c net.Conn) <-chan stamped {
	ch := make(chan stamped, 16)
	go func() {
		defer close(ch)
		for {
			f, err := ws.ReadFrame(c)
			if err != nil {
				return
			}
			ch <- stamped{f, time.Now()}
		}
	}()
	return ch
}

func pong(t *testing.T, c net.Conn, p []byte) {
	t.Helper()
	if err := ws.WriteFrame(c, ws.MaskFrameInPlace(ws.NewPongFrame(p))); err != nil {
		t.Fatal(err)
	}
}

// TestKeepalivePingsAndIdle follows one connection's timer in fake time:
// a ping after PingInterval of silence, none while the peer's pongs come,
// and the close 1008 exactly IdleTimeout after the last byte from the
// peer, which ends the blocked read with ErrIdle.
func TestKeepalivePingsAndIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ping, idle = 10 * time.Second, 25 * time.Second
		a, b := net.Pipe()
		defer b.Close()
		c := Server(a, &Options{PingInterval: ping, IdleTimeout: idle})
		defer c.Close()
		readErr := make(chan error, 1)
		go func() {
			_, err := c.ReadMessage(context.Background())
			readErr <- err
		}()
		frames := peerFrames(b)
		start := time.Now()

		// Three rounds: a ping PingInterval after the last bytes the peer
		// sent, answered at once.
		last := start
		for i := range 3 {
			s := <-frames
			if s.f.Header.OpCode != ws.OpPing {
				t.Fatalf("round %d: frame %v, want a ping", i, s.f.Header.OpCode)
			}
			if d := s.at.Sub(last); d != ping {
				t.Fatalf("round %d: ping %v after the peer's last bytes, want %v", i, d, ping)
			}
			pong(t, b, s.f.Payload)
			last = time.Now()
		}

		// Silent from now on: a ping every PingInterval, then the close.
		s := <-frames
		for i := time.Duration(1); i*ping < idle; i++ {
			if s.f.Header.OpCode != ws.OpPing || s.at.Sub(last) != i*ping {
				t.Fatalf("frame %v after %v, want a ping after %v", s.f.Header.OpCode, s.at.Sub(last), i*ping)
			}
			s = <-frames
		}
		if s.f.Header.OpCode != ws.OpClose {
			t.Fatalf("frame %v, want the close", s.f.Header.OpCode)
		}
		if d := s.at.Sub(last); d != idle {
			t.Errorf("closed %v after the peer's last bytes, want the IdleTimeout %v", d, idle)
		}
		if code, _ := ws.ParseCloseFrameData(s.f.Payload); code != ws.StatusPolicyViolation {
			t.Errorf("close code %d, want 1008", code)
		}
		if err := <-readErr; !errors.Is(err, ErrIdle) {
			t.Errorf("the blocked read returned %v, want ErrIdle", err)
		}
		if _, ok := <-frames; ok {
			t.Error("a frame after the close")
		}
	})
}

// TestKeepaliveMessagesCountAsLife: bytes of any kind from the peer keep
// the connection open, and no ping goes out while they come.
func TestKeepaliveMessagesCountAsLife(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ping, idle = 10 * time.Second, 15 * time.Second
		a, b := net.Pipe()
		defer b.Close()
		c := Server(a, &Options{PingInterval: ping, IdleTimeout: idle})
		defer c.Close()
		go func() {
			for {
				if _, err := c.ReadMessage(context.Background()); err != nil {
					return
				}
			}
		}()
		frames := peerFrames(b)
		for range 10 {
			time.Sleep(ping - time.Second)
			if err := ws.WriteFrame(b, ws.MaskFrameInPlace(ws.NewTextFrame([]byte("alive")))); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		select {
		case s := <-frames:
			t.Fatalf("frame %v while the peer talked", s.f.Header.OpCode)
		default:
		}
	})
}

// TestKeepaliveOff: with both off, no timer runs and nothing is sent,
// however long the peer is silent.
func TestKeepaliveOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		c := Server(a, &Options{PingInterval: -1, IdleTimeout: -1})
		defer c.Close()
		if b := c.blk.Load(); b != nil && b.timer != nil {
			t.Error("a timer runs with nothing to check")
		}
		frames := peerFrames(b)
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		select {
		case s := <-frames:
			t.Fatalf("frame %v with keepalive off", s.f.Header.OpCode)
		default:
		}
	})
}

// TestIdleCloseOverEachTransport: on a real connection whose read is
// blocked, the idle timeout sends the close 1008 before the connection
// ends, and the read returns ErrIdle; over TLS too, whose read the
// timer can end only with a deadline.
func TestIdleCloseOverEachTransport(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tls, sock bool
	}{{"tcp", false, false}, {"tls", true, false}, {"tls-socket", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			const idle = 100 * time.Millisecond
			c, peer, err := connServerPairOver(tc.tls, tc.sock, &Options{IdleTimeout: idle, PingInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			defer peer.Close()
			start := time.Now()
			readErr := make(chan error, 1)
			go func() {
				_, err := c.ReadMessage(context.Background())
				readErr <- err
			}()
			_, _, perr := peer.WS.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(perr, &ce) || ce.Code != int(StatusPolicyViolation) {
				t.Fatalf("the peer read %v, want close 1008", perr)
			}
			if d := time.Since(start); d < idle {
				t.Errorf("closed after %v, before the idle timeout %v", d, idle)
			}
			if err := <-readErr; !errors.Is(err, ErrIdle) {
				t.Errorf("the blocked read returned %v, want ErrIdle", err)
			}
		})
	}
}
