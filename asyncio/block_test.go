package asyncio_test

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollws/pollws/asyncio"
)

func TestAsyncZeroValueIsNotReady(t *testing.T) {
	var a asyncio.Async[int]
	if a.Ready || asyncio.NotReady[int]().Ready {
		t.Fatal("zero Async or NotReady() is Ready")
	}
	if r := asyncio.Ready(7); !r.Ready || r.Value != 7 {
		t.Fatalf("Ready(7) = %+v", r)
	}
}

func TestNilTaskNotifyIsNoop(t *testing.T) {
	var task *asyncio.Task
	task.Notify()
	asyncio.NewTask(nil).Notify()
}

func TestBlockOnFailsFastOnDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	polled := false
	_, err := asyncio.BlockOn(ctx, func(*asyncio.Task) (asyncio.Async[int], error) {
		polled = true
		return asyncio.Ready(1), nil
	})
	if !errors.Is(err, context.Canceled) || polled {
		t.Fatalf("BlockOn with a done ctx = %v (polled %v); want context.Canceled without a poll", err, polled)
	}
}

func TestBlockOnParksUntilNotified(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var polls atomic.Int32
		var saved atomic.Pointer[asyncio.Task]
		go func() {
			time.Sleep(time.Second) // fake time: the poller must stay parked until then
			saved.Load().Notify()
		}()
		v, err := asyncio.BlockOn(context.Background(), func(task *asyncio.Task) (asyncio.Async[string], error) {
			switch polls.Add(1) {
			case 1: // without a task: a poll that is ready at once needs none
				if task != nil {
					t.Errorf("first poll got a task")
				}
				return asyncio.NotReady[string](), nil
			case 2:
				if task == nil {
					t.Errorf("second poll got no task to register")
				}
				saved.Store(task)
				return asyncio.NotReady[string](), nil
			}
			return asyncio.Ready("done"), nil
		})
		if err != nil || v != "done" {
			t.Fatalf("BlockOn = %q, %v", v, err)
		}
		if n := polls.Load(); n != 3 {
			t.Fatalf("%d polls for one notification; want 3: without a task, with one, after the notification (no busy loop)", n)
		}
	})
}

func TestBlockOnNotifyDuringPollCausesAnotherPoll(t *testing.T) {
	polls := 0
	_, err := asyncio.BlockOn(context.Background(), func(task *asyncio.Task) (asyncio.Async[int], error) {
		polls++
		if polls == 1 {
			task.Notify() // a change between registering and returning NotReady
			return asyncio.NotReady[int](), nil
		}
		return asyncio.Ready(0), nil
	})
	if err != nil || polls != 2 {
		t.Fatalf("BlockOn = %v after %d polls; want success after 2", err, polls)
	}
}

func TestBlockOnHonoursDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		polls := 0
		start := time.Now()
		_, err := asyncio.BlockOn(ctx, func(*asyncio.Task) (asyncio.Async[int], error) {
			polls++
			return asyncio.NotReady[int](), nil
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("BlockOn past its deadline: %v; want DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed != 5*time.Second || polls != 2 {
			t.Fatalf("returned after %v and %d polls; want 5s and 2 polls (without a task, then with one)", elapsed, polls)
		}
	})
}

func TestBlockOnReturnsPollError(t *testing.T) {
	boom := errors.New("boom")
	_, err := asyncio.BlockOn(context.Background(), func(*asyncio.Task) (asyncio.Async[int], error) {
		return asyncio.NotReady[int](), boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("BlockOn = %v; want boom", err)
	}
}

// zeroWriter answers Ready(0) to every write: a writer that can take nothing.
type zeroWriter struct{ polls int }

func (z *zeroWriter) Write(p []byte) (int, error) { return asyncio.TryWrite(z, p) }
func (z *zeroWriter) PollWrite(*asyncio.Task, []byte) (asyncio.Async[int], error) {
	z.polls++
	return asyncio.Ready(0), nil
}
func (z *zeroWriter) PollFlush(*asyncio.Task) (asyncio.Async[struct{}], error) {
	return asyncio.Ready(struct{}{}), nil
}
func (z *zeroWriter) Shutdown(*asyncio.Task) (asyncio.Async[struct{}], error) {
	return asyncio.Ready(struct{}{}), nil
}

func TestWriteAllStopsOnReady0(t *testing.T) {
	z := &zeroWriter{}
	if err := asyncio.WriteAll(context.Background(), z, []byte("x")); !errors.Is(err, asyncio.ErrWriteZero) || z.polls != 1 {
		t.Fatalf("WriteAll to a writer answering Ready(0) = %v after %d polls; want ErrWriteZero after 1 (tokio #497)", err, z.polls)
	}
	if n, err := z.Write([]byte("x")); n != 0 || !errors.Is(err, asyncio.ErrWriteZero) {
		t.Fatalf("TryWrite = %d, %v; want ErrWriteZero", n, err)
	}
}

func TestWriteAllDeadlineSaysHowMuchWasTaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, r := asyncio.Pipe(4)
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := asyncio.WriteAll(ctx, w, []byte("0123456789"))
		if !errors.Is(err, context.DeadlineExceeded) || err.Error() != "asyncio: write: 4 of 10 bytes taken: context deadline exceeded" {
			t.Fatalf("WriteAll past its deadline: %v", err)
		}
	})
}

func TestReadParksUntilBytesArrive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, r := asyncio.Pipe(8)
		defer r.Close()
		go func() {
			time.Sleep(time.Second)
			w.Write([]byte("hi"))
		}()
		start := time.Now()
		buf := make([]byte, 8)
		n, err := asyncio.Read(context.Background(), r, buf)
		if n != 2 || err != nil || string(buf[:n]) != "hi" {
			t.Fatalf("Read = %d, %v, %q; want 2 bytes \"hi\"", n, err, buf[:n])
		}
		if elapsed := time.Since(start); elapsed != time.Second {
			t.Fatalf("Read returned after %v; want 1s, when the bytes came", elapsed)
		}
	})
}

func TestReadHonoursDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, r := asyncio.Pipe(8)
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := asyncio.Read(ctx, r, make([]byte, 1))
		if n != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Read past its deadline = %d, %v; want DeadlineExceeded", n, err)
		}
		if n, err := asyncio.Read(ctx, r, make([]byte, 1)); n != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Read with a done ctx = %d, %v; want DeadlineExceeded at once", n, err)
		}
	})
}

func TestReadEndOfStreamAndEmptyBuffer(t *testing.T) {
	w, r := asyncio.Pipe(8)
	ctx := context.Background()
	if n, err := asyncio.Read(ctx, r, nil); n != 0 || err != nil {
		t.Fatalf("Read of an empty buffer = %d, %v; want 0, nil at once", n, err)
	}
	w.Write([]byte("x"))
	done := make(chan error, 1)
	go func() { done <- asyncio.Shutdown(ctx, w) }()
	buf := make([]byte, 4)
	if n, err := asyncio.Read(ctx, r, buf); n != 1 || err != nil {
		t.Fatalf("Read = %d, %v; want the 1 byte written", n, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range 2 {
		if n, err := asyncio.Read(ctx, r, buf); n != 0 || err != io.EOF {
			t.Fatalf("Read after the writer's end = %d, %v; want io.EOF, sticky", n, err)
		}
	}
}

// badReader answers every read with one fixed answer.
type badReader struct{ n int }

func (b badReader) PollRead(*asyncio.Task, []byte) (asyncio.Async[int], error) {
	return asyncio.Ready(b.n), nil
}

func TestReadRefusesAnswersBreakingRuleK(t *testing.T) {
	ctx := context.Background()
	if n, err := asyncio.Read(ctx, badReader{0}, make([]byte, 4)); n != 0 || !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Read from a reader answering Ready(0) = %d, %v; want io.ErrNoProgress", n, err)
	}
	if n, err := asyncio.Read(ctx, badReader{5}, make([]byte, 4)); n != 0 || err == nil {
		t.Fatalf("Read from a reader answering Ready(5) for 4 bytes = %d, %v; want an error", n, err)
	}
	if n, err := asyncio.Read(ctx, badReader{0}, nil); n != 0 || err != nil {
		t.Fatalf("Read of an empty buffer from a reader answering Ready(0) = %d, %v; want 0, nil", n, err)
	}
}

func TestReadReadyAtOnceAllocatesNothing(t *testing.T) {
	w, r := asyncio.Pipe(64)
	defer r.Close()
	ctx := context.Background()
	msg, buf := []byte("ping"), make([]byte, 4)
	allocs := testing.AllocsPerRun(100, func() {
		w.Write(msg)
		if n, err := asyncio.Read(ctx, r, buf); n != 4 || err != nil {
			t.Fatalf("Read = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Read of bytes already there: %v allocations, want 0", allocs)
	}
}
