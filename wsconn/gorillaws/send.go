package gorillaws

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/pollws/pollws/asyncio"
	"github.com/pollws/pollws/internal/pool"
)

// Limits of one write to the connection: the sender takes up to maxBatch
// queued frames, and no more than maxBatchBytes of them unless the first
// is larger, and writes them with one vectored write.
const (
	maxBatch      = 32
	maxBatchBytes = 64 << 10
)

// run is the sender goroutine: it writes the waiting pongs and then the
// queued frames in order, a batch at a time, until the queue is empty,
// the close frame is written, or the writer failed or closed.
func (w *Writer) run() {
	defer w.wg.Done()
	var (
		batch  [maxBatch]item
		pongs  [maxPongs][2 + 125]byte
		frames [maxPongs + maxBatch][]byte
		wake   asyncio.Wakeups
	)
	w.mu.Lock()
	for {
		if w.err != nil || w.state >= stateClosingConn {
			w.running = false
			w.dropLocked()
			w.mu.Unlock()
			wake.Notify()
			return
		}
		nf := 0
		if w.pongs != nil && w.pongs.n > 0 {
			for w.pongs.n > 0 {
				p := &pongs[nf]
				frames[nf] = p[:w.pongs.pop(p)]
				nf++
			}
			w.pongRoom.Broadcast()
		}
		nb, size := 0, 0
		for w.q != nil && w.q.n > 0 && nb < maxBatch {
			if nb > 0 && size+len(w.q.peek().frame) > maxBatchBytes {
				break
			}
			batch[nb] = w.q.pop()
			frames[nf] = batch[nb].frame
			size += len(frames[nf])
			nf++
			nb++
			if batch[nb-1].close {
				break
			}
		}
		if nf == 0 {
			w.running = false
			w.releaseLocked()
			w.mu.Unlock()
			wake.Notify()
			return
		}
		closing := nb > 0 && batch[nb-1].close
		w.writing = true
		w.mu.Unlock()
		wake.Notify()

		err := w.send(frames[:nf], closing)

		w.mu.Lock()
		w.writing = false
		cost := 0
		for i := range nb {
			cost += batch[i].cost
			batch[i].release()
		}
		w.queued -= cost
		switch {
		case err != nil:
			w.undelivered += int64(cost)
			w.failLocked(err)
		case w.err != nil:
			// Close cut in while the frames were written; they were delivered.
		case closing:
			w.running = false
			w.closeSentLocked() // unlocks
			return
		}
		wake = w.wakeLocked()
	}
}

// send writes frames to the connection in one vectored write, under
// WriteTimeout, or CloseTimeout when they end with the close frame.
func (w *Writer) send(frames [][]byte, closing bool) error {
	var deadline time.Time
	switch {
	case w.writeTimeout > 0:
		deadline = time.Now().Add(w.writeTimeout)
	case closing:
		deadline = time.Now().Add(w.closeTimeout)
	}
	// Over a connection upgraded elsewhere gorilla may have set a write
	// deadline of its own, for a close frame it wrote.
	if !deadline.IsZero() || w.deadlineSet || !w.upgraded {
		w.out.SetWriteDeadline(deadline)
		w.deadlineSet = !deadline.IsZero()
	}
	switch {
	case len(frames) == 1:
		_, err := w.out.Write(frames[0])
		return err
	case w.vectored:
		b := net.Buffers(frames)
		_, err := b.WriteTo(w.out)
		return err
	}
	// One write, so one TLS record and one system call, rather than one
	// per frame.
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	buf := pool.Get(n)
	p := (*buf)[:0]
	for _, f := range frames {
		p = append(p, f...)
	}
	_, err := w.out.Write(p)
	pool.Put(buf)
	return err
}

// vectored reports whether c writes net.Buffers with one system call
// (writev), as the net package's TCP and Unix connections do.
func vectored(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// failLocked makes err the writer's sticky error and drops the queue.
func (w *Writer) failLocked(err error) {
	if w.err != nil {
		return
	}
	w.dropLocked()
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		w.err = fmt.Errorf("gorillaws: write timed out after %v, %d bytes undelivered: %w", w.writeTimeout, w.undelivered, os.ErrDeadlineExceeded)
		return
	}
	w.err = fmt.Errorf("gorillaws: write failed, %d bytes undelivered: %w", w.undelivered, err)
}

// dropLocked drops the queued frames, except the ones being written,
// which the sender accounts for, and the pongs.
func (w *Writer) dropLocked() {
	w.dropPongsLocked()
	if w.q == nil {
		return
	}
	for w.q.n > 0 {
		it := w.q.pop()
		w.queued -= it.cost
		w.undelivered += int64(it.cost)
		it.release()
	}
	w.releaseLocked()
}

// releaseLocked gives the empty rings back to their pools.
func (w *Writer) releaseLocked() {
	if w.q != nil && w.q.n == 0 {
		queues.Put(w.q)
		w.q = nil
	}
	if w.pongs != nil && w.pongs.n == 0 {
		pongRings.Put(w.pongs)
		w.pongs = nil
	}
}
