package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrDataLocked is returned by Daemon.Start when another process holds the
// data directory: two daemons on one directory would each run an embedded
// JetStream over the same files and lose or double messages.
var ErrDataLocked = errors.New("data directory in use")

// dataLock is an exclusive flock on a file in the data directory, taken
// before the embedded server starts and released at teardown. The kernel
// drops it when the process dies, so a daemon killed with SIGKILL never
// blocks the next start.
type dataLock struct {
	f *os.File
}

const lockFile = "persona.lock"

// lockData takes dir's lock or says who holds it.
func lockData(dir string) (*dataLock, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: lock: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = "process " + strconv.Itoa(pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by %s (one daemon per data directory; stop it, or give this one another --data)", ErrDataLocked, dir, holder)
		}
		return nil, fmt.Errorf("data directory %s: lock: %w", dir, err)
	}
	// Who holds it, for the next one to name.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataLock{f: f}, nil
}

// release drops the lock; the file stays, empty of meaning until the next
// holder writes its pid.
func (l *dataLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
