//go:build !linux

package load

import (
	"context"
	"errors"
)

func reactorEcho(context.Context, []*Conn, EchoOptions) error { return errNoReactor }

func (c *Conn) closeFD() error { return errors.ErrUnsupported }
