package natsbus

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// resubscribeTimeout bounds the wait for the broker to confirm the
// subscriptions sent again on reconnection.
const resubscribeTimeout = 5 * time.Second

// disconnected is the client's handler of a lost connection.
func (b *Bus) disconnected(nc *nats.Conn, cause error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	err := ErrDisconnected
	if cause != nil {
		err = fmt.Errorf("%w: %w", ErrDisconnected, cause)
	}
	b.err = err
	b.mu.Unlock()
	b.disconnects.Add(1)
	b.report(err)
}

// reconnected is the client's handler of a connection back after an
// outage; the client has sent the subscriptions again. A round trip to
// the broker (which reads a connection's commands in order) makes sure
// it has them before the reconnection is reported: a message published
// elsewhere after the report reaches this bus. If the round trip fails,
// the connection is gone again and its loss is reported in turn.
func (b *Bus) reconnected(nc *nats.Conn) {
	_ = nc.FlushTimeout(resubscribeTimeout)
	b.mu.Lock()
	b.err = nil
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return
	}
	b.reconnects.Add(1)
	if b.onReconnect != nil {
		b.onReconnect()
		return
	}
	b.log.Info("natsbus: reconnected to the broker", "url", nc.ConnectedUrlRedacted())
}

// asyncError is the client's handler of errors found outside a call:
// slow consumers, and errors the broker sent.
func (b *Bus) asyncError(nc *nats.Conn, sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) {
		b.slowConsumers.Add(1)
		subject, n := "", uint64(0)
		if sub != nil {
			subject, n = sub.Subject, dropped(sub)
		}
		b.report(fmt.Errorf("%w on %s (%d dropped so far)", ErrSlowConsumer, subject, n))
		return
	}
	b.errors.Add(1)
	b.report(fmt.Errorf("natsbus: %w", err))
}

// report hands err to OnError, or logs it.
func (b *Bus) report(err error) {
	if b.onError != nil {
		b.onError(err)
		return
	}
	b.log.Warn("natsbus: " + err.Error())
}
