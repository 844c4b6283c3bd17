package buf

import (
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/pollws/pollws/asyncio"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// counter is a task that counts its notifications.
type counter struct {
	n    atomic.Int32
	task *asyncio.Task
}

func newCounter() *counter {
	c := new(counter)
	c.task = asyncio.NewTask(func() { c.n.Add(1) })
	return c
}

func (c *counter) count() int { return int(c.n.Load()) }
