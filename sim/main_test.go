package sim

import (
	"testing"

	"go.uber.org/goleak"
)

// RunAll starts a goroutine per policy: none may outlive it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
