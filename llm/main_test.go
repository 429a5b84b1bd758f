package llm

import (
	"testing"

	"go.uber.org/goleak"
)

// The package starts no goroutines of its own, but its tests run HTTP servers
// and clients: goleak proves every connection is shut down with them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
