//go:build unix

package govern

import (
	"fmt"
	"syscall"
	"time"
)

// processCPUTime returns the user plus system CPU time of this process so
// far, from getrusage(RUSAGE_SELF).
func processCPUTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("govern: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
