//go:build !unix

package govern

import (
	"errors"
	"time"
)

// processCPUTime is not available here; the Sampler then reports CPU as 0
// and relies on the other inputs.
func processCPUTime() (time.Duration, error) {
	return 0, errors.New("govern: process CPU time not supported on this platform")
}
