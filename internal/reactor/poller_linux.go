//go:build linux

package reactor

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// wakeID is the event id of the eventfd that wakes the event goroutine.
const wakeID = ^uint64(0)

const (
	readEvents  = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
	writeEvents = unix.EPOLLOUT | unix.EPOLLHUP | unix.EPOLLERR
	endEvents   = unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
)

// poller is an edge-triggered epoll set whose own descriptor is waited on
// through the runtime's poller, and an eventfd that wakes it.
type poller struct {
	epfd   int
	ep     *os.File // epfd, registered with the runtime's poller
	raw    syscall.RawConn
	evfd   int
	events []unix.EpollEvent
	n      int // events from the last epoll_wait
	waitFn func(fd uintptr) bool
}

func (p *poller) open() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("reactor: epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return fmt.Errorf("reactor: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET}
	setID(&ev, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return fmt.Errorf("reactor: epoll_ctl: %w", err)
	}
	// A non-blocking descriptor given to os.NewFile joins the runtime's
	// poller: waiting on it parks a goroutine, not a thread.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return fmt.Errorf("reactor: %w", err)
	}
	p.ep = os.NewFile(uintptr(epfd), "epoll")
	raw, err := p.ep.SyscallConn()
	if err != nil {
		p.ep.Close()
		unix.Close(evfd)
		return fmt.Errorf("reactor: %w", err)
	}
	p.epfd, p.raw, p.evfd = epfd, raw, evfd
	p.events = make([]unix.EpollEvent, 256)
	p.waitFn = p.tryWait
	return nil
}

func (p *poller) add(fd uintptr, id uint64) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET}
	setID(&ev, id)
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		return fmt.Errorf("reactor: epoll_ctl add: %w", err)
	}
	return nil
}

func (p *poller) del(fd uintptr) error {
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil); err != nil {
		return fmt.Errorf("reactor: epoll_ctl del: %w", err)
	}
	return nil
}

// wake makes the event goroutine look at the reactor's state.
func (p *poller) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(p.evfd, one[:])
}

func (p *poller) close() error {
	unix.Close(p.evfd)
	return p.ep.Close()
}

// tryWait takes the events that are ready without waiting, and answers
// false, to park until the set is readable, when there are none. The
// call never blocks, so it is a raw system call, which the scheduler is
// not told of (see the package socket's reads and writes).
func (p *poller) tryWait(uintptr) bool {
	for {
		r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.epfd),
			uintptr(unsafe.Pointer(&p.events[0])), uintptr(len(p.events)), 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		n := int(r)
		if errno != 0 {
			n = 0
		}
		p.n = n
		return n != 0
	}
}

// edge is what an event tells a registration's Edges.
type edge struct {
	to          Edges
	read, write bool
}

// loop is the event goroutine: it notifies the tasks of every event until
// no socket is registered or the reactor closes.
func (r *Reactor) loop(done chan struct{}) {
	defer close(done)
	p := &r.p
	var wake []edge
	for {
		if err := p.raw.Read(p.waitFn); err != nil {
			return // the reactor closed its descriptor
		}
		// Draining the set (a batch shorter than the buffer) before
		// parking again: an edge-triggered set read with events left
		// would not become readable again.
		woken := false
		r.mu.Lock()
		for _, ev := range p.events[:p.n] {
			id := eventID(&ev)
			if id == wakeID {
				woken = true
				continue
			}
			g := r.lookup(id)
			if g == nil {
				continue
			}
			if ev.Events&endEvents != 0 {
				g.ended.Store(true)
			}
			e := edge{to: g.edges, read: ev.Events&readEvents != 0, write: ev.Events&writeEvents != 0}
			if e.read || e.write {
				wake = append(wake, e)
			}
		}
		exit := r.n == 0 || r.closed
		if exit {
			r.running = false
		}
		r.mu.Unlock()
		if woken {
			var b [8]byte
			_, _ = unix.Read(p.evfd, b[:])
		}
		for i, e := range wake {
			if e.read {
				e.to.ReadEdge()
			}
			if e.write {
				e.to.WriteEdge()
			}
			wake[i] = edge{}
		}
		wake = wake[:0]
		if exit {
			return
		}
	}
}
