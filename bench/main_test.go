package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// The measurements start runtimes and baseline goroutines: every one must
// be stopped when a measurement returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
