// Package proc reads what the side-by-side benchmarks measure of a
// process from Linux's /proc: resident memory and CPU time, and raises the
// process's own limit on open files.
package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat: USER_HZ,
// which Linux fixes at 100 in every architecture's user-space ABI.
const clockTick = 10 * time.Millisecond

// CPU returns the CPU time, user and system, that every thread of process
// pid has used, from /proc/PID/stat (in steps of 10 ms).
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return statCPU(string(b))
}

// statCPU returns utime+stime from the text of /proc/PID/stat.
func statCPU(stat string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces and
	// parentheses itself; the fields after the last ')' start at field 3.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("proc: stat without a command name")
	}
	f := strings.Fields(stat[i+1:])
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("proc: stat with %d fields after the command name", len(f))
	}
	u, err := strconv.ParseUint(f[utime], 10, 63)
	if err != nil {
		return 0, fmt.Errorf("proc: stat utime: %w", err)
	}
	s, err := strconv.ParseUint(f[stime], 10, 63)
	if err != nil {
		return 0, fmt.Errorf("proc: stat stime: %w", err)
	}
	return time.Duration(u+s) * clockTick, nil
}

// SelfCPU returns the CPU time, user and system, this process has used
// (in microseconds, from getrusage).
func SelfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("proc: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// RSS returns the resident set size of process pid in bytes, from
// /proc/PID/status.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return statusRSS(string(b))
}

func statusRSS(status string) (int64, error) {
	for line := range strings.SplitSeq(status, "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("proc: VmRSS: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("proc: no VmRSS in status")
}

// RaiseFileLimit raises this process's soft limit on open files to the
// hard limit and returns the limit now in force.
func RaiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("proc: RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("proc: raising RLIMIT_NOFILE: %w", err)
		}
	}
	return lim.Cur, nil
}
