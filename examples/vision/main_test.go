package vision

import (
	"testing"

	"go.uber.org/goleak"
)

// The persona run starts goroutines (the runtime's, the camera, the
// governor's sampler, the renderers): none may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
