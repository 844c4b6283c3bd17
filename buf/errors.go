package buf

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by operations on a handle after its own Close.
	ErrClosed = errors.New("buf: use of closed handle")

	// ErrNoReader is the cause of a [*WriteError]: the stream's reader is
	// closed, so no chunk can be delivered any more.
	ErrNoReader = errors.New("buf: stream reader is closed")

	// ErrAborted is returned by every operation on a [Channel] and its
	// handles after [Channel.Terminate].
	ErrAborted = errors.New("buf: channel terminated")

	// ErrDraining is returned by writes to a [Channel] that is draining
	// (see [Channel.Drain]).
	ErrDraining = errors.New("buf: channel is draining")

	// ErrTooLarge is returned by a write of a frame larger than the
	// [Channel]'s capacity: it could never fit.
	ErrTooLarge = errors.New("buf: frame larger than channel capacity")
)

// WriteError is the error of a [StreamWriter] write that failed. It hands
// the chunk back to the caller. Err is [ErrNoReader] or [ErrClosed].
type WriteError struct {
	Chunk []byte // the chunk that was not written
	Err   error
}

// Error says why the write failed and how long the chunk was.
func (e *WriteError) Error() string {
	return fmt.Sprintf("%v: %d-byte chunk not written", e.Err, len(e.Chunk))
}

// Unwrap returns e.Err.
func (e *WriteError) Unwrap() error { return e.Err }

// ReaderBehindError is returned by a weak [Reader] that writers overtook:
// frames it had not read yet were evicted to make room. The reader has
// already moved to the oldest frame still held, so its next read goes on
// from there.
//
// Positions count bytes since the channel began. Lost is how many bytes
// the reader missed and Pos is where it resumes, at the start of a frame,
// so Pos-Lost is where it was. The bytes a reader read plus every Lost it
// was told always add up to how far it has moved ([Reader.Pos] less its
// position when it was created).
type ReaderBehindError struct {
	Lost uint64 // bytes the reader missed
	Pos  uint64 // byte position of the frame it resumes at
}

// Error says how many bytes were lost and where the reader resumes.
func (e *ReaderBehindError) Error() string {
	return fmt.Sprintf("buf: reader overtaken: %d bytes lost, resuming at byte %d", e.Lost, e.Pos)
}
