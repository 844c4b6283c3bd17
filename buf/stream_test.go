package buf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
)

func TestStreamKeepsBoundariesAndEmptyChunks(t *testing.T) {
	w, r := NewStream()
	ctx := t.Context()
	want := []string{"a", "", "bc", ""}
	for _, c := range want {
		if err := w.Write(ctx, []byte(c)); err != nil {
			t.Fatalf("Write(%q): %v", c, err)
		}
	}
	w.Close()
	var got []string
	for {
		c, err := r.Read(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		got = append(got, string(c))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
	for range 2 { // end of stream is sticky
		if _, err := r.PollRead(nil); err != io.EOF {
			t.Fatalf("PollRead after end: %v, want io.EOF", err)
		}
	}
}

func TestStreamCapacity(t *testing.T) {
	tests := []struct{ ask, want int }{{-1, 1}, {0, 1}, {1, 1}, {5, 5}}
	for _, tt := range tests {
		_, r := NewStreamSize(tt.ask)
		if got := r.Cap(); got != tt.want {
			t.Errorf("NewStreamSize(%d): Cap %d, want %d", tt.ask, got, tt.want)
		}
	}
	if _, r := NewStream(); r.Cap() != 16 {
		t.Errorf("NewStream: Cap %d, want 16", r.Cap())
	}
}

func TestStreamBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, r := NewStreamSize(1)
		ctx := t.Context()
		if err := w.Write(ctx, []byte("1")); err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- w.Write(ctx, []byte("2")) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Write to a full stream returned %v, want it to wait", err)
		default:
		}
		if c, err := r.Read(ctx); string(c) != "1" || err != nil {
			t.Fatalf("Read = %q, %v; want 1", c, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("waiting Write: %v", err)
		}
		if c, err := r.Read(ctx); string(c) != "2" || err != nil {
			t.Fatalf("Read = %q, %v; want 2", c, err)
		}
	})
}

func TestStreamEndsAfterEveryWriterCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w1, r := NewStream()
		w2 := w1.Clone()
		ctx := t.Context()
		w1.Write(ctx, []byte("1"))
		w2.Write(ctx, []byte("2"))
		w1.Close()

		got := make(chan string)
		go func() {
			var s []string
			for {
				c, err := r.Read(ctx)
				if err != nil {
					s = append(s, err.Error())
					break
				}
				s = append(s, string(c))
			}
			got <- strings.Join(s, ",")
		}()
		synctest.Wait()
		select {
		case s := <-got:
			t.Fatalf("reader ended (%s) while a writer is open", s)
		default:
		}
		w2.Write(ctx, []byte("3"))
		w2.Close()
		if s, want := <-got, "1,2,3,EOF"; s != want {
			t.Fatalf("reader saw %s, want %s", s, want)
		}
	})
}

func TestStreamWriteToGoneReader(t *testing.T) {
	w, r := NewStream()
	r.Close()
	chunk := []byte("x")
	for range 2 { // sticky
		_, err := w.PollWrite(nil, chunk)
		var we *WriteError
		if !errors.As(err, &we) || !errors.Is(err, ErrNoReader) {
			t.Fatalf("PollWrite after reader Close: %v, want a *WriteError for ErrNoReader", err)
		}
		if &we.Chunk[0] != &chunk[0] {
			t.Fatal("WriteError does not hand back the chunk written")
		}
	}
	if _, err := r.PollRead(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("PollRead after Close: %v, want ErrClosed", err)
	}
}

func TestStreamWaitingWriteFailsWhenReaderCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, r := NewStreamSize(1)
		ctx := t.Context()
		w.Write(ctx, []byte("queued"))
		done := make(chan error)
		go func() { done <- w.Write(ctx, []byte("waiting")) }()
		synctest.Wait()
		r.Close()
		var we *WriteError
		if err := <-done; !errors.As(err, &we) || string(we.Chunk) != "waiting" || we.Err != ErrNoReader {
			t.Fatalf("waiting Write: %v, want a *WriteError with its chunk and ErrNoReader", err)
		}
	})
}

func TestStreamCloseReleasesOwnWaitingWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, r := NewStreamSize(1)
		defer r.Close()
		ctx := t.Context()
		w.Write(ctx, []byte("queued"))
		done := make(chan error)
		go func() { done <- w.Write(ctx, []byte("waiting")) }()
		synctest.Wait()
		w.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatalf("waiting Write after its writer closed: %v, want ErrClosed", err)
		}
		if c, _ := r.Read(ctx); string(c) != "queued" {
			t.Fatalf("Read = %q, want the chunk queued before Close", c)
		}
		if _, err := r.Read(ctx); err != io.EOF {
			t.Fatalf("Read after the only writer closed: %v, want io.EOF", err)
		}
	})
}

func TestStreamContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, r := NewStreamSize(1)
		ctx, cancel := context.WithCancel(t.Context())
		w.Write(ctx, nil)
		done := make(chan error, 2)
		go func() { done <- w.Write(ctx, nil) }()
		go func() {
			_, r2 := NewStream()
			_, err := r2.Read(ctx)
			done <- err
		}()
		synctest.Wait()
		cancel()
		for range 2 {
			if err := <-done; err != context.Canceled {
				t.Fatalf("blocked call after cancel: %v, want context.Canceled", err)
			}
		}
		if r.Len() != 1 {
			t.Fatalf("Len = %d after a cancelled write, want 1", r.Len())
		}
	})
}

func TestStreamTasks(t *testing.T) {
	w, r := NewStreamSize(1)
	a, b := newCounter(), newCounter()

	// The later task replaces the earlier one.
	r.PollRead(a.task)
	r.PollRead(b.task)
	w.PollWrite(nil, []byte("1"))
	if a.count() != 0 || b.count() != 1 {
		t.Fatalf("reader tasks notified %d, %d times; want 0, 1", a.count(), b.count())
	}

	// Spurious polls of a full stream keep one waiter per writer.
	w2 := w.Clone()
	for range 100 {
		w.PollWrite(a.task, nil)
		w2.PollWrite(b.task, nil)
	}
	if n := w.s.waiting.len(); n != 2 {
		t.Fatalf("%d writers waiting after 200 polls by 2 writers, want 2", n)
	}
	r.PollRead(nil)
	if a.count() != 1 || b.count() != 2 {
		t.Fatalf("writer tasks notified %d, %d times; want 1, 2", a.count(), b.count())
	}

	// A nil task arranges nothing, and takes the writer out.
	w.PollWrite(nil, []byte("2"))
	w.PollWrite(a.task, []byte("3"))
	w.PollWrite(nil, []byte("3"))
	r.PollRead(nil)
	if a.count() != 1 {
		t.Fatalf("task replaced by nil was notified")
	}
}

func TestStreamString(t *testing.T) {
	w, r := NewStreamSize(4)
	w.PollWrite(nil, []byte("a"))
	w2 := w.Clone()
	tests := []struct {
		got, want string
	}{
		{fmt.Sprint(w), "buf.StreamWriter(open, 1/4 chunks, 2 writers)"},
		{fmt.Sprintf("%v", r), "buf.StreamReader(open, 1/4 chunks, 2 writers)"},
	}
	w.Close()
	w2.Close()
	tests = append(tests, struct{ got, want string }{fmt.Sprint(w), "buf.StreamWriter(closed, 1/4 chunks, 0 writers)"})
	tests = append(tests, struct{ got, want string }{fmt.Sprint(r), "buf.StreamReader(writers closed, 1/4 chunks, 0 writers)"})
	r.Close()
	tests = append(tests, struct{ got, want string }{fmt.Sprint(r), "buf.StreamReader(closed, 0/4 chunks, 0 writers)"})
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
	if c := w.Clone(); fmt.Sprint(c) != "buf.StreamWriter(closed, 0/4 chunks, 0 writers)" {
		t.Errorf("clone of a closed writer: %v", c)
	}
}

// TestStreamStress fans many writers into one reader through a small
// stream and checks that every chunk arrives once, in each writer's order.
func TestStreamStress(t *testing.T) {
	const writers, chunks = 8, 2000
	w, r := NewStreamSize(4)
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range writers {
		wi := w.Clone()
		wg.Go(func() {
			defer wi.Close()
			for j := range chunks {
				if err := wi.Write(ctx, fmt.Appendf(nil, "%d/%d", i, j)); err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
			}
		})
	}
	w.Close()
	next := make([]int, writers)
	for {
		c, err := r.Read(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var i, j int
		fmt.Sscanf(string(c), "%d/%d", &i, &j)
		if j != next[i] {
			t.Fatalf("writer %d: chunk %d after %d", i, j, next[i]-1)
		}
		next[i]++
	}
	wg.Wait()
	for i, n := range next {
		if n != chunks {
			t.Errorf("writer %d: %d chunks read, want %d", i, n, chunks)
		}
	}
}

// FuzzStream drives a stream from one goroutine with polls and compares
// it with a slice of chunks.
func FuzzStream(f *testing.F) {
	f.Add(uint8(2), []byte{0, 1, 0, 2, 0, 3, 1, 0, 2, 1, 3, 0, 1, 0, 1, 0})
	f.Add(uint8(1), []byte{0, 0, 0, 5, 4, 0, 0, 1, 1, 0})
	f.Fuzz(func(t *testing.T, size uint8, ops []byte) {
		capacity := int(size%8) + 1
		w0, r := NewStreamSize(capacity)
		writers := []*StreamWriter{w0}
		open := []bool{true}
		var queue [][]byte
		rclosed, seq := false, 0
		openWriters := func() int {
			n := 0
			for _, o := range open {
				if o {
					n++
				}
			}
			return n
		}
		for len(ops) >= 2 {
			op, arg := ops[0]%5, int(ops[1])
			ops = ops[2:]
			switch op {
			case 0: // write
				i := arg % len(writers)
				chunk := fmt.Appendf(nil, "%d", seq)[:arg%3] // sometimes empty
				seq++
				res, err := writers[i].PollWrite(nil, chunk)
				var we *WriteError
				switch {
				case !open[i] || rclosed:
					want := ErrClosed
					if open[i] {
						want = ErrNoReader
					}
					if !errors.As(err, &we) || we.Err != want || string(we.Chunk) != string(chunk) {
						t.Fatalf("write to writer %d (open %v, reader closed %v): %v", i, open[i], rclosed, err)
					}
				case len(queue) == capacity:
					if err != nil || res.Ready {
						t.Fatalf("write to a full stream: %v, %v; want NotReady", res, err)
					}
				default:
					if err != nil || !res.Ready {
						t.Fatalf("write with room: %v, %v; want Ready", res, err)
					}
					queue = append(queue, chunk)
				}
			case 1: // read
				res, err := r.PollRead(nil)
				switch {
				case rclosed:
					if !errors.Is(err, ErrClosed) {
						t.Fatalf("read after Close: %v", err)
					}
				case len(queue) > 0:
					if err != nil || !res.Ready || string(res.Value) != string(queue[0]) {
						t.Fatalf("read = %q, %v, %v; want %q", res.Value, res.Ready, err, queue[0])
					}
					queue = queue[1:]
				case openWriters() == 0:
					if err != io.EOF {
						t.Fatalf("read at end: %v, want io.EOF", err)
					}
				default:
					if err != nil || res.Ready {
						t.Fatalf("read of an empty stream: %v, %v; want NotReady", res, err)
					}
				}
			case 2: // clone
				i := arg % len(writers)
				writers = append(writers, writers[i].Clone())
				open = append(open, open[i])
			case 3: // close a writer
				i := arg % len(writers)
				writers[i].Close()
				open[i] = false
			case 4: // close the reader, rarely
				if arg%8 == 0 {
					r.Close()
					rclosed, queue = true, nil
				}
			}
			if !rclosed && r.Len() != len(queue) {
				t.Fatalf("Len = %d, want %d", r.Len(), len(queue))
			}
		}
	})
}
