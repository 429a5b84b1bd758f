//go:build linux

package vision

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// timeStage runs f and returns the CPU time the calling thread spent in it,
// from CLOCK_THREAD_CPUTIME_ID. The goroutine is locked to its thread for the
// call so that both readings come from the same clock. Thread CPU time,
// unlike wall time, does not grow when other processes on a shared machine
// take the core away, which keeps the persona run (20 s of real time) and
// the baseline (a few seconds flat out) comparable.
func timeStage(f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0, ok0 := threadCPU()
	if !ok0 {
		start := time.Now()
		f()
		return time.Since(start)
	}
	f()
	t1, ok1 := threadCPU()
	if !ok1 || t1 < t0 {
		return 0
	}
	return t1 - t0
}

func threadCPU() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

// stageClock names the clock timeStage reads, for the report.
const stageClock = "thread CPU time"

// processCPU returns the user plus system CPU time of this process so far.
func processCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
