//go:build !linux

package vision

import (
	"errors"
	"time"
)

// timeStage runs f and returns the wall time it took: on this platform there
// is no portable per-thread CPU clock, and a pure stage function running on
// one goroutine is busy for all of it unless the machine is shared.
func timeStage(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// stageClock names the clock timeStage reads, for the report.
const stageClock = "wall time"

// processCPU is not measured on this platform.
func processCPU() (time.Duration, error) { return 0, errors.ErrUnsupported }
