package proc

import (
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		bad        bool
	}{
		{"plain", "1234 (wsserver) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 75 0 0 20 0 7 0 100 0 0", 3250 * time.Millisecond, false},
		{"a name with spaces and parentheses", "99 (a) b (c)) R 1 99 99 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 70 * time.Millisecond, false},
		{"no name", "1234 wsserver S 1", 0, true},
		{"too few fields", "1 (x) S 1 2 3", 0, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 4 0", 0, true},
	} {
		got, err := statCPU(tc.stat)
		if tc.bad {
			if err == nil {
				t.Errorf("%s: %v and no error", tc.name, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestStatusRSS(t *testing.T) {
	got, err := statusRSS("Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t5\n")
	if err != nil || got != 1234<<10 {
		t.Fatalf("%d, %v; want %d", got, err, 1234<<10)
	}
	if _, err := statusRSS("Name:\tx\n"); err == nil {
		t.Fatal("no VmRSS line: no error")
	}
}

func TestThisProcess(t *testing.T) {
	rss, err := RSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("RSS: %d, %v", rss, err)
	}
	start, err := SelfCPU()
	if err != nil {
		t.Fatal(err)
	}
	for { // burn CPU for both counters to see
		now, err := SelfCPU()
		if err != nil {
			t.Fatal(err)
		}
		if now-start >= 200*time.Millisecond {
			break
		}
	}
	cpu, err := CPU(os.Getpid())
	if err != nil || cpu < 150*time.Millisecond {
		t.Fatalf("CPU: %v, %v; want about the 200 ms getrusage counted (/proc counts in 10 ms steps)", cpu, err)
	}
	limit, err := RaiseFileLimit()
	if err != nil || limit == 0 {
		t.Fatalf("RaiseFileLimit: %d, %v", limit, err)
	}
}
