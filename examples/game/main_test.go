package game

import (
	"testing"

	"go.uber.org/goleak"
)

// Run starts a runtime, a driver and the players' loops; every test must leave none behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
