package cluster

import (
	"testing"

	"go.uber.org/goleak"
)

// runWithLeakCheck runs the tests and then checks that none leaked a
// goroutine: every node the harness started must be shut down with its
// test, and every client closed. TestMain (daemons_test.go) builds the
// daemon binary first.
func runWithLeakCheck(m *testing.M) int {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			println("goleak:", err.Error())
			return 1
		}
	}
	return code
}
