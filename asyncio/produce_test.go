package asyncio_test

import (
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/pollws/pollws/asyncio"
)

// script is a producer that plays one scripted answer per poll.
type script struct {
	steps []step
	polls int
}

type step struct {
	write  []int // items to Write
	buffer []int // items to SetBuffer
	res    asyncio.Async[asyncio.StreamResult]
	err    error
}

func (s *script) PollProduce(_ *asyncio.Task, dst *asyncio.Destination[int], _ bool) (asyncio.Async[asyncio.StreamResult], error) {
	st := s.steps[s.polls]
	s.polls++
	dst.Write(st.write...)
	if st.buffer != nil {
		dst.SetBuffer(st.buffer)
	}
	return st.res, st.err
}

var (
	completed = asyncio.Ready(asyncio.Completed)
	dropped   = asyncio.Ready(asyncio.Dropped)
	cancelled = asyncio.Ready(asyncio.Cancelled)
	pending   = asyncio.NotReady[asyncio.StreamResult]()
)

type pull struct {
	n      int
	finish bool
	want   []int // nil with ready: a probe's Ready
	ready  bool
	err    error // target of errors.Is; for ProducerError, any *ProducerError
	polls  int   // producer polls after this pull
}

var errProducer = &asyncio.ProducerError{}

func TestPullerRuleG(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		pulls []pull
	}{
		{"items then end", []step{{write: []int{1, 2}, res: completed}, {write: []int{3}, res: dropped}},
			[]pull{{n: 5, want: []int{1, 2}, ready: true, polls: 1}, {n: 5, want: []int{3}, ready: true, polls: 2}, {n: 5, err: io.EOF, polls: 2}}},
		{"nothing yet is NotReady", []step{{res: pending}, {write: []int{9}, res: completed}},
			[]pull{{n: 1, polls: 1}, {n: 1, want: []int{9}, ready: true, polls: 2}}},
		{"unknown capacity takes all", []step{{write: []int{1, 2, 3}, res: completed}},
			[]pull{{n: -1, want: []int{1, 2, 3}, ready: true, polls: 1}}},
		{"items past capacity are kept and delivered first", []step{{buffer: []int{1, 2, 3}, res: completed}},
			[]pull{{n: 2, want: []int{1, 2}, ready: true, polls: 1}, {n: 2, want: []int{3}, ready: true, polls: 1}}},
		{"probe answered Completed", []step{{res: completed}},
			[]pull{{n: 0, ready: true, polls: 1}}},
		{"probe answered NotReady", []step{{res: pending}},
			[]pull{{n: 0, polls: 1}}},
		{"finish gets Cancelled", []step{{res: cancelled}},
			[]pull{{n: 4, finish: true, err: asyncio.ErrCancelled, polls: 1}}},
		{"dropped with nothing is the end", []step{{res: dropped}},
			[]pull{{n: 4, err: io.EOF, polls: 1}, {n: 4, err: io.EOF, polls: 1}}},
		{"NotReady after writing is an error", []step{{write: []int{1}, res: pending}},
			[]pull{{n: 4, err: errProducer, polls: 1}, {n: 4, err: errProducer, polls: 1}}},
		{"Completed with nothing for capacity is an error", []step{{res: completed}},
			[]pull{{n: 4, err: errProducer, polls: 1}}},
		{"Cancelled without finish is an error", []step{{res: cancelled}},
			[]pull{{n: 4, err: errProducer, polls: 1}}},
		{"producer error is sticky", []step{{res: pending, err: io.ErrUnexpectedEOF}},
			[]pull{{n: 4, err: io.ErrUnexpectedEOF, polls: 1}, {n: 4, err: io.ErrUnexpectedEOF, polls: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{steps: tc.steps}
			pl := asyncio.NewPuller[int](s)
			for i, p := range tc.pulls {
				r, err := pl.Pull(nil, p.n, p.finish)
				var pe *asyncio.ProducerError
				switch {
				case p.err == errProducer && !errors.As(err, &pe):
					t.Fatalf("pull %d: err %v, want a *ProducerError", i, err)
				case p.err != errProducer && !errors.Is(err, p.err):
					t.Fatalf("pull %d: err %v, want %v", i, err, p.err)
				case r.Ready != p.ready || !slices.Equal(r.Value, p.want):
					t.Fatalf("pull %d = %+v, want ready=%v %v", i, r, p.ready, p.want)
				case s.polls != p.polls:
					t.Fatalf("pull %d: %d producer polls so far, want %d", i, s.polls, p.polls)
				}
			}
		})
	}
}
