package gorillaws

import (
	"sync"

	"github.com/gorilla/websocket"
)

// onPing is the connection's ping handler: it queues a pong with the
// ping's payload, to go out ahead of the queued messages and after the
// pongs already waiting, so that every ping gets its own pong, in order.
// At most maxPongs pongs wait: past that the handler waits for room, on
// the goroutine that reads the connection, so that a peer that pings
// faster than it reads is held back by its own reads instead of growing
// the queue or losing pongs. No pong is sent after the close frame.
func (w *Writer) onPing(data string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if w.err != nil || w.state > stateClosing {
			return nil
		}
		if w.pongs == nil {
			w.pongs = pongRings.Get().(*pongRing)
		}
		if w.pongs.n < maxPongs {
			break
		}
		w.pongRoom.Wait()
	}
	w.pongs.push(data)
	w.startLocked()
	return nil
}

// dropPongsLocked forgets the pongs waiting to go out, and wakes a ping
// handler waiting for room.
func (w *Writer) dropPongsLocked() {
	if w.pongs != nil {
		w.pongs.n = 0
		pongRings.Put(w.pongs)
		w.pongs = nil
	}
	w.pongRoom.Broadcast()
}

// pongRing is a FIFO of the payloads of pongs waiting to go out. Rings are
// pooled: a writer holds one only while pongs wait.
type pongRing struct {
	payload [maxPongs][125]byte
	size    [maxPongs]uint8
	head    int
	n       int
}

var pongRings = sync.Pool{New: func() any { return new(pongRing) }}

// push adds a pong with payload data (at most 125 bytes, as gorilla
// guarantees for a ping's); the ring must not be full.
func (r *pongRing) push(data string) {
	i := (r.head + r.n) % maxPongs
	r.size[i] = uint8(copy(r.payload[i][:], data))
	r.n++
}

// pop writes the oldest pong into f as a frame and returns the frame's
// length; the ring must not be empty.
func (r *pongRing) pop(f *[2 + 125]byte) int {
	n := copy(f[2:], r.payload[r.head][:r.size[r.head]])
	f[0], f[1] = 0x80|websocket.PongMessage, byte(n)
	r.head = (r.head + 1) % maxPongs
	r.n--
	return 2 + n
}
