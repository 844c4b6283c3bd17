//go:build linux

package socket

// AcceptWaiting is Accept's way without waiting, with the options the
// listener learned from its last accept through net (ok false before it
// has any): nil and no error when no connection waits.
func (l *StreamListener) AcceptWaiting() (st *Stream, ok bool, err error) {
	o := l.opts.Load()
	if o == nil {
		return nil, false, nil
	}
	st, err = l.acceptWaiting(o)
	return st, true, err
}
