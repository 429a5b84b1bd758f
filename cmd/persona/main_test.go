package main

import (
	"testing"

	"go.uber.org/goleak"
)

// The commands start runtimes, simulations and servers: nothing they start
// may outlive them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
