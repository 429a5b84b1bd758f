package persona

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/personaos/persona/deps"
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
	// Linger is how long a persona's loop goroutine stays parked on its
	// wake-up channel with nothing to do before it is retired (default 1s).
	// A busy persona keeps its goroutine between items; an idle one holds
	// none. Negative: no linger, every rest gives the goroutine back.
	Linger time.Duration
	// DependencyTimeout is how long each pipeline stage may hold an item
	// before its dependents are released without it, marked Incomplete
	// (default 5s, deps.DefaultTimeout). See deps.Options.Timeout.
	DependencyTimeout time.Duration
	// MaxPipelineKeys bounds the items in flight through each pipeline
	// (default 10000, deps.DefaultMaxKeys): entering one more releases the
	// oldest to its remaining stages at once, Incomplete. Each pipeline
	// holds at most twice this many items, so size it to the payload: a
	// few hundred camera frames, thousands of chat messages.
	MaxPipelineKeys int
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

	linger  time.Duration
	parked  atomic.Int64 // loop goroutines parked on their wake-up channels
	reaping atomic.Bool  // the reaper goroutine runs
	quit    chan struct{}

	stopping atomic.Bool
	drainCh  chan struct{} // a persona that drains rested (Shutdown's drain)
	mu       sync.Mutex    // guards closed, started, members, byName, pipes
	closed   bool
	started  bool
	members  []member
	byName   map[string]member
	pipes    []pipe
	depOpts  deps.Options
}

// NewRuntime returns a runtime with no personas.
func NewRuntime(opts RuntimeOptions) *Runtime {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Linger == 0 {
		opts.Linger = time.Second
	}
	if opts.DependencyTimeout <= 0 {
		opts.DependencyTimeout = deps.DefaultTimeout
	}
	if opts.MaxPipelineKeys <= 0 {
		opts.MaxPipelineKeys = deps.DefaultMaxKeys
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runtime{
		log: opts.Logger, obs: opts.Observer, gov: opts.Governor, bud: opts.Budget,
		linger: opts.Linger, quit: make(chan struct{}), drainCh: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel, byName: make(map[string]member),
		depOpts: deps.Options{Timeout: opts.DependencyTimeout, MaxKeys: opts.MaxPipelineKeys},
	}
}

func (rt *Runtime) add(m member) error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return ErrClosed
	}
	if _, dup := rt.byName[m.Name()]; dup {
		rt.mu.Unlock()
		return fmt.Errorf("persona: spawn: duplicate name %q", m.Name())
	}
	if rt.started {
		if w, n := m.deps(); len(w) > 0 || len(n) > 0 {
			rt.mu.Unlock()
			return fmt.Errorf("persona: spawn %q: dependencies must be declared before Start", m.Name())
		}
	}
	rt.members = append(rt.members, m)
	rt.byName[m.Name()] = m
	started := rt.started
	rt.mu.Unlock()
	if started {
		// Outside rt.mu: starting may launch the loop, which takes it.
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
//
// First it checks the personas' dependencies (Options.WaitsFor and
// Notifies) and builds one pipeline per connected part of the graph. An
// unknown name, a cycle (the error spells it out, "a -> b -> a", and wraps
// deps.ErrCycle), payload types mixed within one pipeline, or items already
// delivered to a dependent (ErrNotSource) are errors, and then nothing
// starts. Items delivered to a source before Start enter its pipeline now.
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
	// Under mu, so that no persona with dependencies is spawned meanwhile.
	// Building reads only names, declarations, types and inbox counts and
	// takes no persona lock (the lock order is persona, then runtime).
	pipes, err := buildPipelines(rt, rt.members)
	if err != nil {
		rt.mu.Unlock()
		return fmt.Errorf("persona: start: %w", err)
	}
	rt.started = true
	rt.pipes = pipes
	ms := append([]member(nil), rt.members...)
	rt.mu.Unlock()
	for _, pp := range pipes {
		pp.attach()
	}
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

// Shutdown stops every persona. First it drains: every persona finishes
// the urgent work queued in its inbox (and any that arrives meanwhile),
// taking no ordinary item, until none is left or ctx ends. Then no new
// loop or timer starts, running loops end after their current item, and
// it waits for them. If ctx ends first, handlers' contexts are cancelled
// and Shutdown waits for them to return, then reports ctx's error. The
// report lists every item left behind, including items a pipeline
// released to a persona that no longer runs. Pipelines stop with the
// personas; coordination streams belong to the caller, who closes them
// after Shutdown.
func (rt *Runtime) Shutdown(ctx context.Context) (Report, error) {
	rt.drain(ctx)
	rt.stopping.Store(true)
	rt.mu.Lock()
	if !rt.closed {
		close(rt.quit)
	}
	rt.closed = true
	ms := append([]member(nil), rt.members...)
	pipes := rt.pipes
	rt.mu.Unlock()
	for _, m := range ms {
		m.stop()
	}
	// Stop the pipelines' timers before waiting for the loops. A release in
	// flight only pushes into an inbox and never waits for a loop, so this
	// cannot deadlock; after it, a loop's last Finish is a no-op.
	for _, pp := range pipes {
		pp.close()
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

// drain lets every persona finish its queued urgent work, until each has
// (it says so when it rests: drainTick) or ctx ends.
func (rt *Runtime) drain(ctx context.Context) {
	rt.mu.Lock()
	if rt.closed || !rt.started {
		rt.mu.Unlock()
		return
	}
	ms := append([]member(nil), rt.members...)
	rt.mu.Unlock()
	for _, m := range ms {
		m.drain()
	}
	for {
		done := true
		for _, m := range ms {
			if !m.drained() {
				done = false
				break
			}
		}
		if done {
			return
		}
		select {
		case <-rt.drainCh:
		case <-ctx.Done():
			return
		}
	}
}

// drainTick says that a draining persona rested: Shutdown's drain looks
// again. A tick already pending covers this one.
func (rt *Runtime) drainTick() {
	select {
	case rt.drainCh <- struct{}{}:
	default:
	}
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

// parkedAdd counts parked loop goroutines and starts the reaper when the
// first one parks. It may be called with a persona's mu held.
func (rt *Runtime) parkedAdd(d int64) {
	if rt.parked.Add(d) > 0 && d > 0 && rt.reaping.CompareAndSwap(false, true) {
		if !rt.goLocked(rt.reap) {
			rt.reaping.Store(false)
		}
	}
}

// reap retires loop goroutines parked longer than the linger. It runs only
// while some goroutine is parked, so an idle runtime has no timer at all.
func (rt *Runtime) reap() {
	t := time.NewTimer(rt.linger)
	defer t.Stop()
	for {
		select {
		case <-rt.quit:
			rt.reaping.Store(false)
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-rt.linger / 2)
		rt.mu.Lock()
		ms := append([]member(nil), rt.members...)
		rt.mu.Unlock()
		for _, m := range ms {
			m.retire(cutoff)
		}
		if rt.parked.Load() == 0 {
			rt.reaping.Store(false)
			// A persona that parked after the check above saw the reaper
			// running and did not start another: look once more.
			if rt.parked.Load() == 0 || !rt.reaping.CompareAndSwap(false, true) {
				return
			}
		}
		t.Reset(rt.linger)
	}
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
