package load

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// reactorWait bounds each epoll wait, so that a loop sees ctx end.
const reactorWait = 20 // ms

// reactorEcho serves conns' closed loops from one epoll loop per CPU;
// errNoReactor when a connection is not plain TCP.
func reactorEcho(ctx context.Context, conns []*Conn, opt EchoOptions) error {
	for _, c := range conns {
		if _, ok := c.Conn.(*net.TCPConn); !ok || c.fd >= 0 {
			return errNoReactor
		}
	}
	loops := make([]*reactor, min(runtime.GOMAXPROCS(0), len(conns)))
	for i := range loops {
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return fmt.Errorf("load: epoll: %w", err)
		}
		defer unix.Close(ep)
		loops[i] = &reactor{ep: ep, opt: opt, byFD: map[int32]*echoState{}}
	}
	for i, c := range conns {
		if err := c.detach(); err != nil {
			return err
		}
		if err := loops[i%len(loops)].add(c); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, r := range loops {
		wg.Go(func() {
			if err := r.run(ctx); err != nil && ctx.Err() == nil {
				once.Do(func() { first = err })
				cancel()
			}
		})
	}
	wg.Wait()
	return first
}

// reactor is one loop's epoll set and the connections in it. It is used
// by the one goroutine that runs it.
type reactor struct {
	ep     int
	opt    EchoOptions
	byFD   map[int32]*echoState
	active int
}

// echoState is one connection's closed loop on a reactor.
type echoState struct {
	c  *Conn
	f  sender
	ck verifier
	// pending is what the socket did not take yet, written when it is
	// writable again (EPOLLOUT is watched while it is not empty).
	pending []byte
}

func (r *reactor) add(c *Conn) error {
	f, ck, err := c.loop(&r.opt)
	if err != nil {
		return err
	}
	r.byFD[int32(c.fd)] = &echoState{c: c, f: f, ck: ck}
	r.active++
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
	if err := unix.EpollCtl(r.ep, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		return fmt.Errorf("load: epoll_ctl: %w", err)
	}
	return nil
}

func (r *reactor) run(ctx context.Context) error {
	for _, st := range r.byFD {
		if err := r.write(st, st.f.Stamp(r.opt.first(), Now())); err != nil {
			return err
		}
	}
	events := make([]unix.EpollEvent, 256)
	for r.active > 0 && ctx.Err() == nil {
		n, err := unix.EpollWait(r.ep, events, reactorWait)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("load: epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			st := r.byFD[ev.Fd]
			if st == nil {
				continue // done with before this event
			}
			if ev.Events&unix.EPOLLOUT != 0 && len(st.pending) > 0 {
				if err := r.flush(st); err != nil {
					return err
				}
			}
			if ev.Events&^unix.EPOLLOUT != 0 {
				if err := r.read(st); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// read reads what the connection has, checks the echoes and sends as
// many new messages.
func (r *reactor) read(st *echoState) error {
	if err := st.c.rd.Fill(); err != nil {
		return err
	}
	now := Now()
	k, err := st.c.drain(st.ck, now, false, nil)
	if err != nil {
		return err
	}
	if k == 0 {
		return nil
	}
	if k = r.opt.more(k, st.ck, st.f); k < 0 {
		r.active--
		delete(r.byFD, int32(st.c.fd))
		return unix.EpollCtl(r.ep, unix.EPOLL_CTL_DEL, st.c.fd, nil)
	}
	if k == 0 {
		return nil
	}
	return r.write(st, st.f.Stamp(k, now))
}

// write sends b after what is pending, keeping what the socket does not
// take.
func (r *reactor) write(st *echoState, b []byte) error {
	if len(st.pending) > 0 {
		st.pending = append(st.pending, b...)
		return nil
	}
	n, err := writeFD(st.c.fd, b)
	if err != nil {
		return err
	}
	if n < len(b) {
		st.pending = append(st.pending[:0], b[n:]...)
		return r.watch(st, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLOUT)
	}
	return nil
}

// flush sends what is pending.
func (r *reactor) flush(st *echoState) error {
	n, err := writeFD(st.c.fd, st.pending)
	if err != nil {
		return err
	}
	st.pending = st.pending[:copy(st.pending, st.pending[n:])]
	if len(st.pending) == 0 {
		return r.watch(st, unix.EPOLLIN|unix.EPOLLRDHUP)
	}
	return nil
}

func (r *reactor) watch(st *echoState, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(st.c.fd)}
	if err := unix.EpollCtl(r.ep, unix.EPOLL_CTL_MOD, st.c.fd, &ev); err != nil {
		return fmt.Errorf("load: epoll_ctl: %w", err)
	}
	return nil
}

// writeFD writes b to the non-blocking socket fd and returns how much it
// took; a full socket takes nothing and is no error.
func writeFD(fd int, b []byte) (int, error) {
	n, err := unix.Write(fd, b)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return 0, nil
	case err != nil:
		return 0, err
	}
	return n, nil
}

// fdReader reads from a non-blocking socket: a read that would block
// reads nothing and is no error (the reactor reads again when epoll says
// the socket is readable).
type fdReader int

func (f fdReader) Read(p []byte) (int, error) {
	n, err := unix.Read(int(f), p)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return 0, nil
	case err != nil:
		return 0, err
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// detach takes the connection's socket from the Go runtime's poller: a
// duplicate of its descriptor, non-blocking, is the connection's from now
// on, and the original is closed.
func (c *Conn) detach() error {
	rc, err := c.Conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return err
	}
	if derr != nil {
		return fmt.Errorf("load: dup: %w", derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	c.Conn.Close()
	c.fd = fd
	c.rd.r = fdReader(fd)
	return nil
}

// closeFD closes a detached connection's socket.
func (c *Conn) closeFD() error { return unix.Close(c.fd) }
