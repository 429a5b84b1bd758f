package persona

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned when delivering to, or spawning in, a runtime that
// has shut down.
var ErrClosed = errors.New("persona: runtime closed")

// RuntimeOptions configures a Runtime. The zero value is valid.
type RuntimeOptions struct {
	// Logger receives handler failures and life-cycle notes (default: the
	// slog default logger).
	Logger *slog.Logger
	// Observer receives every event of every persona (default none).
	Observer Observer
	// Governor scales every cadence and raises thresholds for non-urgent
	// work under load (default: none, always nominal, catch-up allowed).
	Governor Governor
	// Budget reports the compute budget's level 0..1 at now (default:
	// always 1). A low budget slows cadences (seed: x2 below 0.5).
	Budget func(now time.Time) float64
}

// Runtime starts, supervises and stops many personas, of any payload types.
// It owns every goroutine its personas run. Create it with NewRuntime, add
// personas with Spawn, call Start, deliver work, and Shutdown. All methods
// are safe for concurrent use.
type Runtime struct {
	log *slog.Logger
	obs Observer
	gov Governor
	bud func(time.Time) float64

	ctx    context.Context // the lifetime of the personas' loops and handlers
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stopping atomic.Bool
	mu       sync.Mutex // guards closed, started, members, byName
	closed   bool
	started  bool
	members  []member
	byName   map[string]member
}

// NewRuntime returns a runtime with no personas.
func NewRuntime(opts RuntimeOptions) *Runtime {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runtime{
		log: opts.Logger, obs: opts.Observer, gov: opts.Governor, bud: opts.Budget,
		ctx: ctx, cancel: cancel, byName: make(map[string]member),
	}
}

func (rt *Runtime) add(m member) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return ErrClosed
	}
	if _, dup := rt.byName[m.Name()]; dup {
		return fmt.Errorf("persona: spawn: duplicate name %q", m.Name())
	}
	if rt.started {
		if w, n := m.deps(); len(w) > 0 || len(n) > 0 {
			return fmt.Errorf("persona: spawn %q: dependencies must be declared before Start", m.Name())
		}
	}
	rt.members = append(rt.members, m)
	rt.byName[m.Name()] = m
	if rt.started {
		m.start()
	}
	return nil
}

// goLocked starts f as a goroutine owned by the runtime, unless it is
// shutting down.
func (rt *Runtime) goLocked(f func()) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return false
	}
	rt.wg.Go(f)
	return true
}

// Start begins every persona's life. Items delivered before Start wait in
// the inboxes until now.
func (rt *Runtime) Start() error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return ErrClosed
	}
	if rt.started {
		rt.mu.Unlock()
		return nil
	}
	rt.started = true
	ms := append([]member(nil), rt.members...)
	rt.mu.Unlock()
	for _, m := range ms {
		m.start()
	}
	return nil
}

// Report is what Shutdown found: per persona, what was still queued or
// deferred (reported, not dropped) and the final accounts.
type Report struct {
	Leftovers []Leftover `json:"leftovers"`
}

// Pending returns how many items were still queued or deferred.
func (r Report) Pending() int {
	n := 0
	for _, l := range r.Leftovers {
		n += len(l.Queued) + len(l.Deferred)
	}
	return n
}

// Shutdown stops every persona: no new loop or timer starts, running loops
// end after their current item, and it waits for them. If ctx ends first,
// handlers' contexts are cancelled and Shutdown waits for them to return,
// then reports ctx's error. The report lists every item left behind.
func (rt *Runtime) Shutdown(ctx context.Context) (Report, error) {
	rt.stopping.Store(true)
	rt.mu.Lock()
	rt.closed = true
	ms := append([]member(nil), rt.members...)
	rt.mu.Unlock()
	for _, m := range ms {
		m.stop()
	}
	done := make(chan struct{})
	go func() { rt.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		rt.cancel()
		<-done
		err = fmt.Errorf("persona: shutdown: %w", ctx.Err())
	}
	rt.cancel()
	var rep Report
	for _, m := range ms {
		rep.Leftovers = append(rep.Leftovers, m.remaining())
	}
	return rep, err
}

// Snapshots returns every persona's snapshot, in the order they were added.
func (rt *Runtime) Snapshots() []Snapshot {
	rt.mu.Lock()
	ms := append([]member(nil), rt.members...)
	rt.mu.Unlock()
	out := make([]Snapshot, len(ms))
	for i, m := range ms {
		out[i] = m.Snapshot()
	}
	return out
}

// Snapshot returns one persona's snapshot.
func (rt *Runtime) Snapshot(name string) (Snapshot, bool) {
	rt.mu.Lock()
	m, ok := rt.byName[name]
	rt.mu.Unlock()
	if !ok {
		return Snapshot{}, false
	}
	return m.Snapshot(), true
}

func (rt *Runtime) adjust() Adjustment {
	if rt.gov == nil {
		return Adjustment{CadenceMultiplier: 1, CatchUp: true}
	}
	return rt.gov.Adjust()
}

func (rt *Runtime) budget(now time.Time) float64 {
	if rt.bud == nil {
		return 1
	}
	return rt.bud(now)
}
