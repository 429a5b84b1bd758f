package server

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaks a goroutine: the daemon's Shutdown must
// stop the embedded NATS server, the consumers, the personas and the HTTP
// server. When the environment asks for it, the test binary is instead the
// daemon of the crash test (see crash_test.go).
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	goleak.VerifyTestMain(m)
}
