//go:build !linux

package reactor

import (
	"errors"
	"fmt"
)

// poller has no implementation here: New fails, and callers wait on a
// goroutine per connection.
type poller struct{}

func (p *poller) open() error {
	return fmt.Errorf("reactor: no epoll on this system: %w", errors.ErrUnsupported)
}
func (p *poller) add(fd uintptr, id uint64) error { return errors.ErrUnsupported }
func (p *poller) del(fd uintptr) error            { return errors.ErrUnsupported }
func (p *poller) wake()                           {}
func (p *poller) close() error                    { return nil }
func (r *Reactor) loop(done chan struct{})        { close(done) }
