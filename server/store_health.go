package server

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStoreFull is a write refused because the message store is out of
// space (JetStream's storage limits or a full disk): nothing was stored.
// The HTTP layer answers 507.
var ErrStoreFull = errors.New("the message store is full")

// storageError reports whether err is the store refusing a write for want
// of space: JetStream's insufficient resources (10023) or storage
// resources exceeded (10047), or a disk that is full.
func storageError(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) && (api.ErrorCode == 10023 || api.ErrorCode == 10047) {
		return true
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "insufficient resources") || strings.Contains(s, "insufficient storage") ||
		strings.Contains(s, "no space left on device")
}

// storeHealth is what /healthz says of the store: writable, or failing
// since a time with a reason. A write that succeeds clears it; while it
// fails, Health probes with one tiny write of its own, so that the store
// is seen to recover when space comes back even if no client writes.
type storeHealth struct {
	mu     sync.Mutex
	reason string
	since  time.Time
}

// failed records a write that failed for want of space.
func (h *storeHealth) failed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reason == "" {
		h.since = time.Now()
	}
	h.reason = err.Error()
}

// wrote records a write that succeeded.
func (h *storeHealth) wrote() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reason, h.since = "", time.Time{}
}

func (h *storeHealth) state() (reason string, since time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reason, h.since
}

// Health is the daemon's health for /healthz: ok, or why not (the store
// refuses writes for want of space). While the store fails it probes with
// a write of one small key to the accounts bucket, bounded by a second.
func (d *Daemon) Health(ctx context.Context) (ok bool, reason string) {
	r, since := d.store.state()
	if r == "" {
		return true, ""
	}
	if d.bus != nil && d.bus.accounts != nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := d.bus.accounts.Put(pctx, "health.probe", []byte(time.Now().UTC().Format(time.RFC3339Nano)))
		cancel()
		if err == nil {
			d.store.wrote()
			return true, ""
		}
		if storageError(err) {
			d.store.failed(err)
		}
	}
	return false, "store refuses writes since " + since.UTC().Format(time.RFC3339) + ": " + r
}
